"""Package-level behaviour: lazy public API, no TensorFlow at import, quiet training."""

import subprocess
import sys
import textwrap

import pytest

import skcharclf


def test_public_names_resolve():
    for name in skcharclf.__all__:
        assert getattr(skcharclf, name) is not None, name


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skcharclf.nope  # noqa: B018


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )


def test_import_does_not_load_tensorflow():
    result = _run(
        """
        import sys
        import skcharclf
        from skcharclf import Denoiser, ImageResizer, make_baseline_pipeline
        assert "tensorflow" not in sys.modules, "tensorflow imported eagerly"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
def test_training_prints_nothing():
    """A Keras fit and predict with default verbosity write nothing to stdout or stderr."""
    result = _run(
        """
        import numpy as np
        from skcharclf import KerasCharClassifier
        rng = np.random.default_rng(0)
        X = rng.random((60, 64), dtype=np.float32)
        y = np.repeat(np.arange(3), 20)
        clf = KerasCharClassifier(image_shape=(8, 8), filters=(4, 8), epochs=2, random_state=0)
        clf.fit(X, y).predict_proba(X)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
