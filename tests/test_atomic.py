"""All or nothing: a fit that does not complete changes nothing, a failed save loses no file.

Issue 11: SW3 (Ctrl-C during a re-fit left a half-trained network that still predicted), SW4
(the same through an ordinary error) and DL1 (a save cut short by a full disk or Ctrl-C
destroyed the previous good model file).
"""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skcharclf import FoldEnsembleClassifier
from skcharclf._tf import import_keras
from skcharclf.classifier import KerasCharClassifier, TrainingDivergedError

keras = import_keras()

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SHAPE = (8, 8)
TINY = {
    "image_shape": SHAPE,
    "filters": (4,),
    "epochs": 1,
    "batch_size": 32,
    "online_augmentation": None,
    "random_state": 0,
}
REPO = pathlib.Path(__file__).resolve().parents[1]


def _chars(n_per_class=(30, 20, 15, 10), seed=0):
    """Separable 8x8 "characters": a bright bar whose row is the class (0..3)."""
    rng = np.random.RandomState(seed)
    X, y = [], []
    for label, (count, row) in enumerate(zip(n_per_class, (0, 2, 4, 6), strict=True)):
        images = rng.rand(count, *SHAPE).astype("float32") * 0.3
        images[:, row : row + 2, 1:7] += 0.7
        X.append(images.reshape(count, -1))
        y += [label] * count
    return np.concatenate(X), np.array(y)


X, Y = _chars()


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
# The real thing, in a separate process: a Ctrl-C from outside
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
