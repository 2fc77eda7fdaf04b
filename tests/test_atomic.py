"""All or nothing: a fit that does not complete changes nothing, a failed save loses no file.

Issue 11: SW3 (Ctrl-C during a re-fit left a half-trained network that still predicted), SW4
(the same through an ordinary error) and DL1 (a save cut short by a full disk or Ctrl-C
destroyed the previous good model file).
"""

import csv
import errno
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import zipfile

import cv2
import numpy as np
import pytest
from _data import BAR_SHAPE, TINY_CLASSIFIER, bar_chars
from imblearn.pipeline import Pipeline
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skcharclf import FoldEnsembleClassifier, ImageResizer
from skcharclf._atomic import atomic_output
from skcharclf._tf import import_keras
from skcharclf.classifier import KerasCharClassifier, TrainingDivergedError, load_model
from skcharclf.cli import main
from skcharclf.persistence import load_pipeline, save_pipeline
from skcharclf.report import make_report

keras = import_keras()

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SHAPE = BAR_SHAPE
TINY = {**TINY_CLASSIFIER, "epochs": 1}
REPO = pathlib.Path(__file__).resolve().parents[1]


X, Y = bar_chars((30, 20, 15, 10), rows=(0, 2, 4, 6))


class _StopAt(keras.callbacks.Callback):
    """Interrupt training when epoch ``epoch`` begins: raise, or send this process SIGINT."""

    def __init__(self, epoch, how):
        super().__init__()
        self.epoch, self.how = epoch, how

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            if self.how == "sigint":
                os.kill(os.getpid(), signal.SIGINT)  # Python turns it into KeyboardInterrupt
            raise KeyboardInterrupt


@pytest.fixture
def interrupt_at_epoch_2(monkeypatch):
    """Make the next fits stop at epoch 2 (the third), as a Ctrl-C would."""

    def stop(how="raise"):
        original = KerasCharClassifier._callbacks

        def callbacks(self, has_validation):
            return [*original(self, has_validation), _StopAt(2, how)]

        monkeypatch.setattr(KerasCharClassifier, "_callbacks", callbacks)

    return stop


def _state(clf):
    """Everything a user can see of a fitted classifier, copied."""
    return {
        "vars": dict(vars(clf)),
        "proba": clf.predict_proba(X),
        "pred": clf.predict(X),
        "classes": clf.classes_.copy(),
        "history": {k: list(v) for k, v in clf.history_.items()},
        "diagnosis": list(clf.diagnosis_),
        "weights": [w.copy() for w in clf.model_.get_weights()],
        "variables": [keras.ops.convert_to_numpy(v).copy() for v in clf.model_.variables],
        "trainable": [layer.trainable for layer in clf.model_._flatten_layers()],
        "optimizer": clf.model_.optimizer,
    }


def _assert_unchanged(clf, before):
    after_vars = vars(clf)
    assert after_vars.keys() == before["vars"].keys()
    params = clf.get_params(deep=False)  # the user's set_params before the fit stays
    for name, value in before["vars"].items():
        assert name in params or after_vars[name] is value, name
    np.testing.assert_array_equal(clf.classes_, before["classes"])
    assert clf.history_ == before["history"]
    assert clf.diagnosis_ == before["diagnosis"]
    for a, b in zip(clf.model_.get_weights(), before["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(clf.model_.variables, before["variables"], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    assert [layer.trainable for layer in clf.model_._flatten_layers()] == before["trainable"]
    assert clf.model_.optimizer is before["optimizer"]
    np.testing.assert_array_equal(clf.predict(X), before["pred"])
    np.testing.assert_array_equal(clf.predict_proba(X), before["proba"])


# --------------------------------------------------------------------------------------------
# SW3 / SW4: a fit that does not complete leaves the classifier exactly as it was
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["raise", "sigint"])
def test_interrupted_refit_leaves_the_fitted_classifier_unchanged(interrupt_at_epoch_2, how):
    clf = KerasCharClassifier(**TINY).fit(X, Y % 3)
    before = _state(clf)
    interrupt_at_epoch_2(how)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(epochs=50).fit(X, Y)
    assert clf.epochs == 50  # parameters are the user's: set_params stays
    _assert_unchanged(clf, before)


@pytest.mark.parametrize("freeze", [False, True])
def test_interrupted_warm_start_leaves_the_network_untouched(interrupt_at_epoch_2, freeze):
    clf = KerasCharClassifier(**TINY, batch_norm="frozen", freeze_backbone=freeze).fit(X, Y)
    before = _state(clf)
    interrupt_at_epoch_2()
    # Unfreezing the backbone flips trainable flags: they must come back too.
    clf.set_params(warm_start=True, epochs=50, freeze_backbone=not freeze)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y)
    _assert_unchanged(clf, before)


def test_interrupted_first_fit_leaves_the_classifier_unfitted(interrupt_at_epoch_2):
    clf = KerasCharClassifier(**{**TINY, "epochs": 50})
    params = dict(vars(clf))
    interrupt_at_epoch_2()
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y)
    assert vars(clf) == params
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_bad_validation_data_fails_before_building_and_changes_nothing(monkeypatch):
    clf = KerasCharClassifier(**TINY).fit(X, Y % 3)
    before = _state(clf)

    def build(*args, **kwargs):
        raise AssertionError("the network was built before validation_data was checked")

    monkeypatch.setattr(KerasCharClassifier, "_initialize", build)
    clf.set_params(validation_data=(X[:10], np.full(10, 99)))
    with pytest.raises(ValueError, match=r"validation_data holds label\(s\) \[99\]"):
        clf.fit(X, Y)
    _assert_unchanged(clf, before)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        clf.set_params(validation_data=(X[:10],)).fit(X, Y)
    _assert_unchanged(clf, before)

    unfitted = KerasCharClassifier(**TINY, validation_data=(X[:10], np.full(10, 99)))
    with pytest.raises(ValueError, match="validation_data holds"):
        unfitted.fit(X, Y)
    with pytest.raises(NotFittedError):
        unfitted.predict(X)


def test_error_during_a_warm_start_fit_leaves_the_network_untouched():
    clf = KerasCharClassifier(**{**TINY, "batch_size": 16}).fit(X, Y)
    before = _state(clf)
    clf.set_params(warm_start=True, epochs=5, learning_rate=1e4)
    with pytest.raises(TrainingDivergedError, match="left as it was before this fit"):
        clf.fit(X, Y)
    _assert_unchanged(clf, before)


def test_failed_fit_restores_a_random_state_instance(interrupt_at_epoch_2):
    generator = np.random.RandomState(3)
    state = generator.get_state()
    interrupt_at_epoch_2()
    with pytest.raises(KeyboardInterrupt):
        KerasCharClassifier(**{**TINY, "epochs": 50, "random_state": generator}).fit(X, Y)
    after = generator.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


# -- the same for FoldEnsembleClassifier -----------------------------------------------------


class _Stoppable(LogisticRegression):
    """A logistic regression whose ``fit`` raises ``KeyboardInterrupt`` after ``fits`` fits."""

    calls = 0

    def __init__(self, stop_after=None, max_iter=500):
        super().__init__(max_iter=max_iter)
        self.stop_after = stop_after

    def fit(self, X, y, sample_weight=None):
        type(self).calls += 1
        if self.stop_after is not None and type(self).calls > self.stop_after:
            raise KeyboardInterrupt
        return super().fit(X, y, sample_weight)


def _ensemble_state(ensemble):
    return dict(vars(ensemble)), ensemble.predict_proba(X)


def _assert_ensemble_unchanged(ensemble, before):
    saved, proba = before
    assert vars(ensemble).keys() == saved.keys()
    params = ensemble.get_params(deep=False)
    for name, value in saved.items():
        assert name in params or vars(ensemble)[name] is value, name
    np.testing.assert_array_equal(ensemble.predict_proba(X), proba)


def test_interrupted_ensemble_refit_leaves_it_unchanged():
    ensemble = FoldEnsembleClassifier(_Stoppable(), cv=3, random_state=0).fit(X, Y % 3)
    before = _ensemble_state(ensemble)
    _Stoppable.calls = 0
    ensemble.set_params(estimator=_Stoppable(stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        ensemble.fit(X, Y)
    _assert_ensemble_unchanged(ensemble, before)

    _Stoppable.calls = 0
    unfitted = FoldEnsembleClassifier(_Stoppable(stop_after=1), cv=3)
    with pytest.raises(KeyboardInterrupt):
        unfitted.fit(X, Y)
    with pytest.raises(NotFittedError):
        unfitted.predict(X)


def test_ensemble_refit_refused_by_the_folds_leaves_it_unchanged():
    ensemble = FoldEnsembleClassifier(LogisticRegression(), cv=3, random_state=0).fit(X, Y)
    before = _ensemble_state(ensemble)
    rare = np.where(np.arange(Y.size) == 0, 7, Y)  # class 7 has one sample: 3 folds refuse it
    with pytest.raises(ValueError, match="7"):
        ensemble.fit(X, rare)
    _assert_ensemble_unchanged(ensemble, before)


# --------------------------------------------------------------------------------------------
# DL1: every file is written all or nothing
# --------------------------------------------------------------------------------------------


def _folder_listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_output_replaces_only_a_complete_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("good")
    for error in (OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_output(target) as partial:
            assert partial.parent == tmp_path and partial.name.startswith(".out.")
            partial.write_text("half of the new cont")
            raise error
        assert target.read_text() == "good"
        assert _folder_listing(tmp_path) == ["out.txt"]
    with atomic_output(target) as partial:
        partial.write_text("new")
    assert target.read_text() == "new" and _folder_listing(tmp_path) == ["out.txt"]


def test_atomic_output_keeps_permissions_and_follows_links(tmp_path, monkeypatch):
    previous = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "new.keras") as partial:
            assert partial.suffix == ".keras"  # Keras insists on the suffix
            partial.write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "new.keras").stat().st_mode & 0o777 == 0o640  # as for any new file
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o604)
    link = tmp_path / "link.txt"
    link.symlink_to(existing)
    with atomic_output(link) as partial:
        partial.write_text("new")
    assert link.is_symlink() and existing.read_text() == "new"
    assert existing.stat().st_mode & 0o777 == 0o604
    # A read-only file is refused as open() would (tested through os.access: root writes all).
    with monkeypatch.context() as patch:
        patch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(existing))
        with pytest.raises(PermissionError, match=r"existing\.txt"), atomic_output(existing):
            pass
    assert existing.read_text() == "new"
    missing = tmp_path / "missing" / "f"
    with pytest.raises(FileNotFoundError, match="missing/f'"), atomic_output(missing):
        pass


@pytest.fixture(scope="module")
def fitted():
    return KerasCharClassifier(**TINY).fit(X, Y)


def _partial_keras_save(self, filepath, *args, **kwargs):
    """Stand-in for ``keras.Model.save`` cut short by Ctrl-C after writing part of the file."""
    pathlib.Path(filepath).write_bytes(b"PK\x03\x04" + b"\0" * 1000)
    raise KeyboardInterrupt


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stage", ["network", "metadata"])
def test_failed_classifier_save_keeps_the_previous_file(fitted, tmp_path, monkeypatch, stage):
    path = tmp_path / "model.keras"
    fitted.save(path)
    good = path.read_bytes()
    if stage == "network":
        monkeypatch.setattr(keras.Model, "save", _partial_keras_save)
        error = KeyboardInterrupt
    else:
        monkeypatch.setattr(zipfile.ZipFile, "writestr", _full_disk)
        error = OSError
    with pytest.raises(error):
        fitted.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert _folder_listing(tmp_path) == ["model.keras"]
    np.testing.assert_array_equal(load_model(path).predict_proba(X), fitted.predict_proba(X))


def test_failed_pipeline_save_keeps_the_previous_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.skc"
    save_pipeline(fitted, path)
    good = path.read_bytes()
    monkeypatch.setattr(zipfile.ZipFile, "write", _full_disk)  # after the metadata is written
    with pytest.raises(OSError, match="No space"):
        save_pipeline(fitted, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert _folder_listing(tmp_path) == ["model.skc"]
    np.testing.assert_array_equal(load_pipeline(path).predict(X), fitted.predict(X))


def test_failed_report_keeps_the_previous_file(tmp_path, monkeypatch):
    digits = load_digits()
    X_digits, y_digits = digits.data[:300] / 16.0, digits.target[:300]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_digits, y_digits)
    path = make_report(model, X_digits[:100], y_digits[:100], tmp_path / "report.html")
    good = path.read_bytes()
    write_text = pathlib.Path.write_text

    def cut_short(self, data, *args, **kwargs):
        write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(pathlib.Path, "write_text", cut_short)
    with pytest.raises(OSError, match="too large"):
        make_report(model, X_digits[100:200], y_digits[100:200], path)
    assert path.read_bytes() == good
    assert _folder_listing(tmp_path) == ["report.html"]


def test_failed_predictions_csv_keeps_the_previous_file(tmp_path, monkeypatch, capsys):
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 255, (12, 10)).astype(np.uint8) for _ in range(12)]
    labels = np.arange(12) % 2
    pipeline = Pipeline(
        [("resize", ImageResizer(size=SHAPE)), ("clf", KerasCharClassifier(**TINY))]
    ).fit(images, labels)
    save_pipeline(pipeline, tmp_path / "model.skc")
    folder = tmp_path / "images"
    folder.mkdir()
    for k, image in enumerate(images[:3]):
        cv2.imwrite(str(folder / f"{k}.png"), image)
    output = tmp_path / "out" / "predictions.csv"
    output.parent.mkdir()
    argv = ["predict", str(tmp_path / "model.skc"), str(folder), "--output", str(output)]
    assert main(argv) == 0
    good = output.read_bytes()

    class CutShort:
        def __init__(self, handle, **kwargs):
            self.handle = handle

        def writerows(self, rows):
            self.handle.write("path,predi")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv, "writer", CutShort)
    assert main(argv) != 0
    capsys.readouterr()
    assert output.read_bytes() == good
    assert _folder_listing(output.parent) == ["predictions.csv"]


# --------------------------------------------------------------------------------------------
# The real thing, in a separate process: a file-size limit and a Ctrl-C from outside
# --------------------------------------------------------------------------------------------


def _python(code, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_save_under_a_file_size_limit_keeps_the_previous_file(tmp_path):
    clf = KerasCharClassifier(**{**TINY, "filters": (16, 32)}).fit(X, Y)
    model, pipeline = tmp_path / "model.keras", tmp_path / "model.skc"
    clf.save(model)
    save_pipeline(clf, pipeline)
    good = {path: path.read_bytes() for path in (model, pipeline)}
    assert min(len(content) for content in good.values()) > 40_000  # the limit cuts them
    child = _python(
        f"""
        import resource, signal
        from skcharclf.classifier import load_model
        from skcharclf.persistence import save_pipeline
        clf = load_model({str(model)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
        for save, path in ((clf.save, {str(model)!r}), (save_pipeline, {str(pipeline)!r})):
            try:
                save(clf, path) if save is save_pipeline else save(path)
            except OSError as exc:
                print("refused", exc.errno)
        """
    )
    out, err = child.communicate(timeout=300)
    assert out.split("\n")[:2] == [f"refused {errno.EFBIG}"] * 2, err
    for path, content in good.items():
        assert path.read_bytes() == content
    assert _folder_listing(tmp_path) == ["model.keras", "model.skc"]
    np.testing.assert_array_equal(load_model(model).predict(X), clf.predict(X))
    np.testing.assert_array_equal(load_pipeline(pipeline).predict(X), clf.predict(X))


@pytest.mark.slow
def test_ctrl_c_from_outside_during_a_refit_leaves_the_classifier_unchanged():
    child = _python(
        """
        import sys
        import numpy as np
        sys.path.insert(0, "tests")
        from test_atomic import TINY, X, Y, _assert_unchanged, _state, keras
        from skcharclf.classifier import KerasCharClassifier

        class Announce(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    print("training", flush=True)

        original = KerasCharClassifier._callbacks
        KerasCharClassifier._callbacks = lambda self, v: [*original(self, v), Announce()]
        clf = KerasCharClassifier(**TINY).fit(X, Y % 3)
        before = _state(clf)
        try:
            clf.set_params(epochs=10_000).fit(X, Y)
        except KeyboardInterrupt:
            _assert_unchanged(clf, before)
            print("unchanged", flush=True)
        """,
        cwd=REPO,
    )
    assert child.stdout.readline() == "training\n", child.stderr.read()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert out == "unchanged\n", err
    assert child.returncode == 0
