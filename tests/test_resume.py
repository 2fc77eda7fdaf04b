"""Resuming an interrupted fit from ``checkpoint_dir``: same epochs, same predictions.

The interruptions are real: a callback of the package raises (``KeyboardInterrupt`` as Ctrl-C
does, or an error) in the middle of an epoch, after the last epoch, or a subprocess is killed
with SIGKILL. The resumed fit is compared with an uninterrupted one of the same
``random_state``: on a CPU the predicted probabilities are identical (tolerance 0).
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from _data import TINY_CLASSIFIER, bar_chars

from skcharclf import KerasCharClassifier
from skcharclf.callbacks import DivergenceGuard
from skcharclf.cli import main

X, Y = bar_chars([24, 12, 6], [0, 3, 6])
# Four epochs of 3 batches, with the random layers whose seed-generator states must be
# restored (augmentation, dropout), batches mixed in the feed (cutmix) and a schedule that
# depends on the optimizer's step.
PARAMS = {
    **TINY_CLASSIFIER,
    "epochs": 4,
    "batch_size": 16,
    "online_augmentation": "light",
    "dropout": 0.2,
    "cutmix_alpha": 1.0,
    "lr_schedule": "onecycle",
}
# The stateful callbacks: the plateau schedule (it halves the optimizer's rate after epochs 5
# and 6), checkpoint averaging of the 2 best epochs (one before the interruption, one after),
# early stopping (which does not stop); square-root class sampling and SGD.
STATEFUL = {
    **TINY_CLASSIFIER,
    "epochs": 8,
    "batch_size": 16,
    "lr_schedule": "plateau",
    "patience": 3,
    "checkpoint_averaging": 2,
    "checkpoint_selection": "best",
    "early_stopping": True,
    "validation_fraction": 0.25,
    "class_sampling": "sqrt",
    "optimizer": "sgd",
    "learning_rate": 1.0,
}
STEPS_PER_EPOCH = 3  # 42 training images in batches of 16


def _fit(params, checkpoint_dir=None, X=X, y=Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NoValidationWarning of the tiny runs
        return KerasCharClassifier(**params, checkpoint_dir=checkpoint_dir).fit(X, y)


@contextlib.contextmanager
def _raise_in_epoch(monkeypatch, epoch, exception):
    """Raise ``exception`` after the first batch of ``epoch`` (counted from 0)."""
    original = DivergenceGuard.on_train_batch_end

    def interrupted(self, batch, logs=None):
        original(self, batch, logs)
        if self._epoch == epoch and batch == 0:
            raise exception

    with monkeypatch.context() as patch:
        patch.setattr(DivergenceGuard, "on_train_batch_end", interrupted)
        yield


def _saved_epoch(directory):
    with np.load(Path(directory) / "checkpoint.npz", allow_pickle=False) as file:
        return json.loads(str(file["meta"]))["epoch"]


@pytest.fixture(scope="module")
def reference():
    return _fit(PARAMS)


@pytest.fixture(scope="module")
def interrupted_dir(tmp_path_factory):
    """A checkpoint directory of a fit of ``PARAMS`` interrupted in its third epoch."""
    directory = tmp_path_factory.mktemp("interrupted") / "checkpoints"
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        _raise_in_epoch(monkeypatch, 2, KeyboardInterrupt()),
        pytest.raises(KeyboardInterrupt),
    ):
        _fit(PARAMS, directory)
    return directory


@pytest.fixture
def checkpoint_dir(interrupted_dir, tmp_path):
    """A private copy of ``interrupted_dir``."""
    return Path(shutil.copytree(interrupted_dir, tmp_path / "checkpoints"))


def test_interrupted_fit_keeps_the_completed_epochs_and_leaves_the_estimator_unfitted(
    interrupted_dir, monkeypatch, tmp_path
):
    assert sorted(os.listdir(interrupted_dir)) == ["checkpoint.npz"]
    assert _saved_epoch(interrupted_dir) == 2
    clf = KerasCharClassifier(**PARAMS, checkpoint_dir=tmp_path)
    with _raise_in_epoch(monkeypatch, 1, KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y)
    assert not hasattr(clf, "history_") and not hasattr(clf, "model_")
    assert _saved_epoch(tmp_path) == 1


def test_resumed_fit_continues_after_the_saved_epoch_and_predicts_as_an_uninterrupted_one(
    reference, checkpoint_dir
):
    resumed = _fit(PARAMS, checkpoint_dir)
    assert resumed.epochs_ == 4
    assert resumed.history_ == reference.history_  # 4 epochs: 2 restored, 2 trained
    assert int(resumed.model_.optimizer.iterations) == 4 * STEPS_PER_EPOCH
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))
    assert sorted(os.listdir(checkpoint_dir)) == ["DONE"]


def test_resume_reports_where_it_continues_when_verbose(checkpoint_dir, capsys):
    _fit({**PARAMS, "verbose": 2}, checkpoint_dir)
    out = capsys.readouterr().out
    assert f"Resuming the fit saved in {str(checkpoint_dir)!r} after epoch 2 of 4." in out
    assert "Epoch 3/4" in out and "Epoch 1/4" not in out


@pytest.fixture(scope="module")
def stateful_reference():
    return _fit(STATEFUL)


@pytest.mark.slow
@pytest.mark.parametrize("exception", [KeyboardInterrupt(), RuntimeError("disk on fire")])
def test_stateful_callbacks_resume_exactly(stateful_reference, exception, monkeypatch, tmp_path):
    rates = stateful_reference.history_["learning_rate"]
    assert rates[4] > rates[5] > rates[6]  # the plateau schedule acts on both sides
    with _raise_in_epoch(monkeypatch, 5, exception), pytest.raises(type(exception)):
        _fit(STATEFUL, tmp_path)
    assert _saved_epoch(tmp_path) == 5
    resumed = _fit(STATEFUL, tmp_path)
    assert resumed.history_ == stateful_reference.history_
    assert resumed.best_epoch_ == stateful_reference.best_epoch_
    expected = stateful_reference.predict_proba(X)
    np.testing.assert_array_equal(resumed.predict_proba(X), expected)


@pytest.mark.slow
def test_fit_interrupted_after_early_stopping_ended_it_trains_no_further(monkeypatch, tmp_path):
    # F1 of 1.0 on the validation set cannot improve: training stops after `patience` epochs.
    params = {
        **STATEFUL,
        "epochs": 12,
        "patience": 1,
        "monitor": "val_f1_macro",
        "lr_schedule": "constant",
        "learning_rate": 0.02,
        "optimizer": "adam",
        "checkpoint_averaging": None,
    }
    reference = _fit(params)
    assert len(reference.history_["loss"]) < 12  # early stopping ended it

    def interrupted(self, logs=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(DivergenceGuard, "on_train_end", interrupted, raising=False)
        with pytest.raises(KeyboardInterrupt):
            _fit(params, tmp_path)
    assert _saved_epoch(tmp_path) == len(reference.history_["loss"])
    resumed = _fit(params, tmp_path)
    assert resumed.history_ == reference.history_
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


@pytest.mark.slow
def test_random_state_none_resumes_the_draws_of_the_interrupted_fit(monkeypatch, tmp_path):
    params = {**PARAMS, "random_state": None}
    np.random.seed(7)  # noqa: NPY002 - random_state=None draws from NumPy's global generator
    reference = _fit(params)
    np.random.seed(7)  # noqa: NPY002
    with _raise_in_epoch(monkeypatch, 2, KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        _fit(params, tmp_path)
    np.random.seed(123)  # noqa: NPY002 - whatever the state now: the saved one is used
    resumed = _fit(params, tmp_path)
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


def test_a_directory_of_other_data_is_refused(checkpoint_dir):
    X_other = X.copy()
    X_other[0, 0] += 0.5
    with pytest.raises(ValueError, match="holds an interrupted fit on other data") as info:
        _fit(PARAMS, checkpoint_dir, X=X_other)
    assert "delete" in str(info.value)
    assert _saved_epoch(checkpoint_dir) == 2  # left as it was


def test_a_directory_of_other_parameters_is_refused_naming_them(checkpoint_dir):
    with pytest.raises(ValueError, match="of other parameters") as info:
        _fit({**PARAMS, "learning_rate": 0.01, "epochs": 5}, checkpoint_dir)
    message = str(info.value)
    assert "epochs=4 there, 5 here" in message
    assert "learning_rate=0.001 there, 0.01 here" in message
    # what does not change the computation may change
    resumed = _fit({**PARAMS, "verbose": 0, "n_threads": 1}, checkpoint_dir)
    assert resumed.epochs_ == 4


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        lambda path: path.write_bytes(b"not a checkpoint"),
        lambda path: np.savez(path, meta=np.array('{"format": "other"}')),
    ],
    ids=["truncated", "garbage", "foreign"],
)
def test_a_damaged_checkpoint_is_refused_with_what_to_do(checkpoint_dir, damage):
    damage(checkpoint_dir / "checkpoint.npz")
    with pytest.raises(ValueError, match=r"checkpoint\.npz cannot be resumed") as info:
        _fit(PARAMS, checkpoint_dir)
    assert "Delete it to train afresh" in str(info.value)


def test_a_checkpoint_of_a_newer_format_is_refused(checkpoint_dir):
    path = checkpoint_dir / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as file:
        arrays = {key: file[key] for key in file.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "version": 99}))
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(ValueError, match="format version 99, this skcharclf reads 1"):
        _fit(PARAMS, checkpoint_dir)


def test_a_completed_fit_marks_the_directory_done_and_the_next_fit_starts_afresh(tmp_path):
    _fit({**PARAMS, "epochs": 1}, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["DONE"]
    assert json.loads((tmp_path / "DONE").read_text())["completed"] is True
    # a done directory holds no fit to resume: other parameters train afresh, not refused
    other = _fit({**PARAMS, "epochs": 2}, tmp_path)
    assert len(other.history_["loss"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["DONE"]


def test_checkpoint_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* is a file, not a directory"):
        _fit(PARAMS, path)


# -- a real kill -------------------------------------------------------------------------------

_KILLED_FIT = textwrap.dedent(
    """
    import sys, time
    from skcharclf.callbacks import HistoryRecorder
    from test_resume import PARAMS, _fit

    record = HistoryRecorder.on_epoch_end

    def slow(self, epoch, logs=None):  # a second per epoch: time to be killed mid-fit
        record(self, epoch, logs)
        time.sleep(1.0)

    HistoryRecorder.on_epoch_end = slow
    _fit({**PARAMS, "epochs": 8}, sys.argv[1])
    """
)


@pytest.mark.slow
def test_a_fit_killed_with_sigkill_resumes(tmp_path):
    directory = tmp_path / "checkpoints"
    tests = Path(__file__).resolve().parent
    path = [str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_FIT, str(directory)], cwd=tests.parent, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (directory / "checkpoint.npz").exists() or _saved_epoch(directory) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    killed_at = _saved_epoch(directory)
    assert 3 <= killed_at < 8
    params = {**PARAMS, "epochs": 8}
    resumed = _fit(params, directory)
    reference = _fit(params)
    assert resumed.history_ == reference.history_
    assert int(resumed.model_.optimizer.iterations) == 8 * STEPS_PER_EPOCH
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))
    assert sorted(os.listdir(directory)) == ["DONE"]  # no temporary file of the killed write


def test_temporary_files_of_a_killed_write_are_removed(checkpoint_dir):
    stale = checkpoint_dir / ".checkpoint.0123abcd.partial.npz"
    stale.write_bytes(b"half a checkpoint")
    _fit(PARAMS, checkpoint_dir)
    assert sorted(os.listdir(checkpoint_dir)) == ["DONE"]


# -- command line ------------------------------------------------------------------------------


def _image_folder(root):
    rng = np.random.default_rng(0)
    for label, row in (("top", 2), ("bottom", 10)):
        (root / label).mkdir(parents=True)
        for k in range(8):
            image = (rng.random((14, 10)) * 60 + 180).astype(np.uint8)
            image[row : row + 2, 2:8] = 20
            assert cv2.imwrite(str(root / label / f"{k}.png"), image)
    return root


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_cli_checkpoint_dir_needs_a_random_state_for_the_augmenter(tmp_path):
    data = _image_folder(tmp_path / "data")
    argv = ["train", data, "--out", tmp_path / "m.skc", "--checkpoint-dir", tmp_path / "c"]
    status, _, err = _run(argv)
    assert status == 2
    assert "--checkpoint-dir needs --random-state N" in err and "augment" in err


@pytest.mark.slow
def test_cli_train_resumes_from_checkpoint_dir(tmp_path, monkeypatch):
    data = _image_folder(tmp_path / "data")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"size": [8, 8], "clf__filters": [4], "clf__batch_size": 8}))
    checkpoints = tmp_path / "checkpoints"
    argv = [
        "train", data, "--config", config, "--out", tmp_path / "m.skc", "--epochs", 3,
        "--random-state", 0, "--checkpoint-dir", checkpoints, "--quiet",
    ]
    with _raise_in_epoch(monkeypatch, 1, KeyboardInterrupt()):
        status, out, err = _run(argv)
    assert status == 130, err
    assert f"The epochs completed are saved in {str(checkpoints)!r}" in out
    assert _saved_epoch(checkpoints) == 1
    status, out, err = _run([*argv[:-1], "--verbose"])
    assert status == 0, err
    assert f"Resuming the fit saved in {str(checkpoints)!r} after epoch 1 of 3." in out
    assert sorted(os.listdir(checkpoints)) == ["DONE"]
