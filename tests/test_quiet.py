"""Native start-up noise on file descriptor 2 is hidden; every other line and error still shows.

The stand-in tests put a fake ``keras`` package first on ``sys.path`` of a fresh interpreter: its
import writes TensorFlow's start-up lines to fd 2 from C (``write(2, ...)``), past Python's
``sys.stderr``, like the real one on a CPU with AVX-512. They exercise
:func:`skcharclf._tf.import_keras` itself, so they fail on any machine if the filter is removed.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import cv2
import numpy as np
import pytest

from skcharclf._quiet import IMAGE_DECODER_NOISE, TENSORFLOW_START_UP_NOISE, filtered_stderr
from skcharclf.datasets import load_image_folder, read_image

ABSL_PREAMBLE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
ONEDNN_NOTICE = (
    "I0000 00:00:1796097668.886478    9082 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`."
)
UNLISTED = "stand-in: a line nobody listed"

STAND_IN_KERAS = f"""
import ctypes
import os

_libc = ctypes.CDLL(None)


def _native_write(text):
    data = text.encode() + b"\\n"
    _libc.write(2, data, len(data))


_native_write({ABSL_PREAMBLE!r})
_native_write({ONEDNN_NOTICE!r})
_native_write({UNLISTED!r})
_native_write({ABSL_PREAMBLE!r})
if os.environ.get("STAND_IN") == "raise":
    raise RuntimeError("stand-in failed during import")
if os.environ.get("STAND_IN") == "abort":
    os.abort()


class backend:
    @staticmethod
    def backend():
        return "stand-in"
"""


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "STAND_IN")}
    env.update(extra)
    return env


def _python(code: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def _import_stand_in(tmp_path, after: str = "", **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text(STAND_IN_KERAS)
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from skcharclf._tf import import_keras
        keras = import_keras()
        assert keras.backend.backend() == "stand-in", keras.__file__
        print("imported", flush=True)
        {after}
        """
    return _python(code, _env(**env))


def test_stand_in_start_up_lines_hidden_other_line_shown(tmp_path):
    result = _import_stand_in(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported\n"
    assert result.stderr == UNLISTED + "\n"


def test_error_during_import_shows_traceback(tmp_path):
    result = _import_stand_in(tmp_path, STAND_IN="raise")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: stand-in failed during import" in result.stderr
    assert UNLISTED in result.stderr
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr


def test_error_after_import_shows_traceback(tmp_path):
    result = _import_stand_in(tmp_path, after='raise ValueError("a genuine error after import")')
    assert result.returncode == 1
    assert result.stdout == "imported\n"
    assert result.stderr.startswith(UNLISTED + "\nTraceback (most recent call last)")
    assert result.stderr.rstrip().endswith("ValueError: a genuine error after import")
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr


def test_crash_during_import_is_reported(tmp_path):
    result = _import_stand_in(tmp_path, STAND_IN="abort")
    assert result.returncode < 0  # killed by SIGABRT
    assert "Fatal Python error: Aborted" in result.stderr
    assert "import_keras" in result.stderr


def test_log_level_zero_shows_every_start_up_line(tmp_path):
    result = _import_stand_in(tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [ABSL_PREAMBLE, ONEDNN_NOTICE, UNLISTED, ABSL_PREAMBLE]


def test_patterns_match_tensorflow_lines():
    lines = [
        ABSL_PREAMBLE,
        ONEDNN_NOTICE,
        "I0000 00:00:1796097684.471096    9696 cpu_feature_guard.cc:227] This TensorFlow binary "
        "is optimized to use available CPU instructions in performance-critical operations.",
        "To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other "
        "operations, rebuild TensorFlow with the appropriate compiler flags.",
        "E0000 00:00:1732000000.000000    1234 cuda_dnn.cc:8310] Unable to register cuDNN "
        "factory: Attempting to register factory for plugin cuDNN when one has already been "
        "registered",
        "E0000 00:00:1732000000.000000    1234 cuda_blas.cc:1418] Unable to register cuBLAS "
        "factory: Attempting to register factory for plugin cuBLAS when one has already been "
        "registered",
    ]
    for line in lines:
        assert any(p.match(line) for p in TENSORFLOW_START_UP_NOISE), line
    for line in [
        UNLISTED,
        "E0000 00:00:1796097684.471096    9696 some_kernel.cc:12] Out of memory",
        "Traceback (most recent call last):",
        "libpng error: IDAT: incorrect data check",
    ]:
        assert not any(p.match(line) for p in TENSORFLOW_START_UP_NOISE), line


def test_filtered_stderr_replays_python_and_large_output_in_order(capfd):
    chatty = b"".join(b"line %06d of unlisted native output\n" % i for i in range(5000))
    assert len(chatty) > 64 * 1024  # more than a pipe holds
    print("before", file=sys.stderr)
    with filtered_stderr(IMAGE_DECODER_NOISE):
        os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        print("python inside", file=sys.stderr)
        os.write(2, chatty)
        os.write(2, b"libpng error: IDAT: incorrect data check\n")
        os.write(2, b"no newline at the end")
    os.write(2, b"\nafter\n")
    err = capfd.readouterr().err
    assert err == "before\npython inside\n" + chatty.decode() + "no newline at the end\nafter\n"


def test_filtered_stderr_restores_fd_2_on_exception(capfd):
    with pytest.raises(KeyError), filtered_stderr(IMAGE_DECODER_NOISE):
        os.write(2, b"libpng error: hidden\nshown\n")
        raise KeyError("x")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "shown\nafter\n"


def test_nested_blocks_compose(capfd):
    with filtered_stderr(IMAGE_DECODER_NOISE):
        with filtered_stderr(IMAGE_DECODER_NOISE):  # already covered: no second capture
            os.write(2, b"libpng error: inner\ninner shown\n")
        with filtered_stderr(TENSORFLOW_START_UP_NOISE):
            os.write(2, (ABSL_PREAMBLE + "\nlibpng warning: tf block\ntf block shown\n").encode())
        os.write(2, b"libpng error: outer\nouter shown\n")
    assert capfd.readouterr().err == "inner shown\ntf block shown\nouter shown\n"


def _corrupt_png() -> bytes:
    image = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    data = bytearray(cv2.imencode(".png", image)[1].tobytes())
    data[data.index(b"IDAT") + 20] ^= 0xFF  # inside the compressed pixels
    return bytes(data)


def test_corrupt_png_leaves_nothing_on_stderr(tmp_path, capfd):
    data = _corrupt_png()
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None
    finally:
        cv2.utils.logging.setLogLevel(level)
    assert "libpng error" in capfd.readouterr().err  # what OpenCV alone leaves behind

    for label in "ab":
        (tmp_path / label).mkdir()
        cv2.imwrite(str(tmp_path / label / "ok.png"), np.full((8, 6), 200, np.uint8))
    (tmp_path / "a" / "bad.png").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bunch = load_image_folder(tmp_path, on_error="skip")
    assert bunch.skipped == [str(tmp_path / "a" / "bad.png")]
    assert capfd.readouterr().err == ""

    with pytest.warns(UserWarning, match=r"1 file\(s\) skipped.*bad\.png"):
        load_image_folder(tmp_path, on_error="warn")
    assert capfd.readouterr().err == ""

    with pytest.raises(ValueError, match="cannot be read as an image"):
        read_image(tmp_path / "a" / "bad.png")
    assert capfd.readouterr().err == ""


@pytest.mark.slow
def test_tensorflow_import_prints_nothing():
    result = _python(
        """
        from skcharclf._tf import import_keras
        assert import_keras().backend.backend() == "tensorflow"
        """,
        _env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


@pytest.mark.slow
def test_worker_and_cli_loading_a_fitted_model_print_nothing(tmp_path):
    """A loky worker unpickles a fitted pipeline, the CLI loads a saved one: both quietly."""
    fit = _python(
        f"""
        import os
        import pickle
        import cv2
        import numpy as np
        from joblib import Parallel, delayed
        from skcharclf import make_char_pipeline, save_pipeline

        rng = np.random.default_rng(0)
        X = list(rng.integers(0, 256, (30, 8, 8), dtype=np.uint8))
        y = np.repeat(np.arange(3), 10)
        pipe = make_char_pipeline(
            denoise="none", size=(8, 8), augment=None, filters=(4, 8), epochs=1, random_state=0
        ).fit(X, y)
        save_pipeline(pipe, {str(tmp_path / "model.skc")!r})
        cv2.imwrite({str(tmp_path / "char.png")!r}, X[0])

        def predict_elsewhere(model, images):
            return os.getpid(), model.predict(images)

        [(pid, pred)] = Parallel(n_jobs=2, backend="loky")(
            [delayed(predict_elsewhere)(pipe, X[:5])]
        )
        assert pid != os.getpid()
        assert np.array_equal(pred, pipe.predict(X[:5]))
        print("ok")
        """,
        _env(),
    )
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout == "ok\n" and fit.stderr == ""

    cli = subprocess.run(
        [sys.executable, "-m", "skcharclf", "predict", "model.skc", "char.png"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("path,prediction\n") and cli.stderr == ""
