"""Sanity checks before a long run (skcharclf.diagnostics.sanity_check)."""

import json
import math

import numpy as np
import pytest
from _data import prototype_images, random_glyph
from _diagnostics_data import (
    _tiny_classifier,
)
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin

from skcharclf.diagnostics import (
    SanityReport,
    sanity_check,
)

# --------------------------------------------------------------------------------------------
# sanity_check with a stand-in estimator (fast; the real classifier is tested below)
# --------------------------------------------------------------------------------------------


class _StandIn(ClassifierMixin, BaseEstimator):
    """Exposes what sanity_check uses of KerasCharClassifier; memorises unless regularised."""

    def __init__(
        self,
        epochs=10,
        dropout=0.5,
        l2=1e-4,
        early_stopping=True,
        online_augmentation="light",
        validation_fraction=0.1,
        loss="focal",
        bias_init="zeros",
        init_scale=1.0,
        broken=False,
        random_state=None,
        verbose=0,
    ):
        self.epochs = epochs
        self.dropout = dropout
        self.l2 = l2
        self.early_stopping = early_stopping
        self.online_augmentation = online_augmentation
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.bias_init = bias_init
        self.init_scale = init_scale
        self.broken = broken
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        self.fit_params_ = self.get_params()
        self.classes_, counts = np.unique(y, return_counts=True)
        if self.bias_init == "prior":
            priors = counts / counts.sum()
            uninformed = -(priors * np.log(priors)).sum()
        else:
            uninformed = math.log(len(self.classes_))
        self.initial_loss_ = self.init_scale * uninformed
        self.history_ = {"loss": list(np.linspace(uninformed, 0.01, self.epochs))}
        self.X_, self.y_ = np.asarray(X).reshape(len(y), -1), np.asarray(y)
        return self

    def predict(self, X):
        if self.broken or self.dropout > 0:
            return np.full(len(X), self.classes_[0])
        X = np.asarray(X).reshape(len(X), -1)
        nearest = ((X[:, None, :] - self.X_[None]) ** 2).sum(-1).argmin(1)
        return self.y_[nearest]


def _flat_data(n=120, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64)).astype(np.float32), np.arange(n) % n_classes


def test_sanity_check_passes_and_switches_regularisation_off():
    X, y = _flat_data()
    estimator = _StandIn()
    report = sanity_check(estimator, X, y, n_subset=40, epochs=7)
    assert isinstance(report, SanityReport) and report.passed
    assert not hasattr(estimator, "classes_")  # the estimator itself stays unfitted
    initial = report["initial_loss"]
    assert initial.value == pytest.approx(math.log(4))
    assert initial.details["expected"] == pytest.approx(math.log(4))
    overfit = report["overfit_small_subset"]
    assert overfit.value == 1.0 and overfit.details["n_samples"] == 40
    assert overfit.details["epochs"] == 7
    text = str(report)
    assert text.startswith("Sanity checks: 2 of 2 passed")
    assert "[pass] initial_loss" in text and "[pass] overfit_small_subset" in text
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True


def test_sanity_check_settings_of_the_clones(monkeypatch):
    seen = []
    original = _StandIn.fit

    def recording_fit(self, X, y):
        seen.append((self.get_params(), np.unique(y, return_counts=True)[1]))
        return original(self, X, y)

    monkeypatch.setattr(_StandIn, "fit", recording_fit)
    X, y = _flat_data(n=200, n_classes=4)
    y[:120] = 0  # class 0 holds 150 of 200 images
    sanity_check(_StandIn(), X, y, n_subset=20, epochs=9, random_state=3)
    (initial, counts1), (overfit, counts2) = seen
    assert initial["epochs"] == 1 and initial["loss"] == "ce"
    assert overfit["epochs"] == 9 and overfit["loss"] == "focal"  # the user's loss is kept
    for params in (initial, overfit):
        assert params["dropout"] == 0 and params["l2"] == 0
        assert params["early_stopping"] is False and params["online_augmentation"] is None
        assert params["validation_fraction"] == 0
    assert counts1.sum() == 20 and len(counts1) == 4 and counts1[0] >= 14  # stratified
    assert np.array_equal(counts1, counts2)


def test_sanity_check_detects_bad_initialisation_and_no_learning():
    X, y = _flat_data()
    report = sanity_check(_StandIn(init_scale=4.0, broken=True), X, y, epochs=3)
    assert not report.passed
    initial, overfit = report["initial_loss"], report["overfit_small_subset"]
    assert not initial.passed and initial.details["ratio"] == pytest.approx(4.0)
    assert "confidently wrong" in initial.advice
    assert not overfit.passed and overfit.value == pytest.approx(0.25, abs=0.03)
    assert "labels stay aligned" in overfit.advice
    assert "[FAIL] initial_loss" in str(report)


def test_sanity_check_expects_prior_entropy_with_prior_bias():
    X, y = _flat_data(n=100, n_classes=2)
    y[:70] = 0  # 85 / 15
    report = sanity_check(_StandIn(bias_init="prior"), X, y, n_subset=40)
    check = report["initial_loss"]
    assert check.passed
    assert "entropy of the class priors" in check.target
    assert check.details["expected"] < math.log(2) - 0.2


def test_sanity_check_on_a_pipeline_switches_samplers_off():
    X, y = _flat_data()
    pipeline = Pipeline([("augment", RandomOverSampler(random_state=0)), ("clf", _StandIn())])
    report = sanity_check(pipeline, X, y, n_subset=30, epochs=4)
    assert report.passed
    assert report["overfit_small_subset"].details["n_samples"] == 30


def test_sanity_check_subset_has_every_class_and_the_requested_size(monkeypatch):
    sizes = []
    original = _StandIn.fit

    def recording_fit(self, X, y):
        sizes.append(np.unique(y, return_counts=True)[1])
        return original(self, X, y)

    monkeypatch.setattr(_StandIn, "fit", recording_fit)
    X, y = _flat_data(n=1009, n_classes=10)
    y[:] = 0
    y[1000:] = np.arange(1, 10)  # one image in each of nine classes
    sanity_check(_StandIn(), X, y, n_subset=12, epochs=2)
    assert sizes[0].sum() == 12 and len(sizes[0]) == 10 and sizes[0][0] == 3


def test_sanity_check_errors():
    X, y = _flat_data()
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="trained by epochs"):
        sanity_check(LogisticRegression(), X, y)
    with pytest.raises(ValueError, match="X holds 120 samples but y has 3 labels"):
        sanity_check(_StandIn(), X, y[:3])
    with pytest.raises(ValueError, match="n_subset=3 is smaller than the number of classes"):
        sanity_check(_StandIn(), X, y, n_subset=3)


# --------------------------------------------------------------------------------------------
# Real training runs: KerasCharClassifier on tiny 8x8 images, induced to show each symptom
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_sanity_check_passes_for_a_sound_classifier():
    X, y = prototype_images(120, 5, 1.0)
    clf = _tiny_classifier(learning_rate=1e-2, batch_size=8, dropout=0.3, early_stopping=True)
    report = sanity_check(clf, X, y, epochs=15)
    assert report.passed, str(report)
    initial = report["initial_loss"]
    assert "entropy of the class priors" in initial.target  # bias_init="prior" by default
    assert initial.details["expected"] == pytest.approx(math.log(3), abs=0.01)
    assert report["overfit_small_subset"].value >= 0.95


@pytest.mark.slow
def test_real_sanity_check_of_a_pipeline_that_cannot_learn():
    from skcharclf import ImageResizer, RareClassAugmenter

    rng = np.random.default_rng(0)
    images = [random_glyph(rng) for _ in range(60)]
    y = np.array([0] * 30 + [1] * 20 + [2] * 10)
    pipeline = Pipeline(
        [
            ("resize", ImageResizer(size=(8, 8))),
            ("augment", RareClassAugmenter(image_shape=(8, 8), random_state=0)),
            ("clf", _tiny_classifier(learning_rate=1e-7, batch_size=16)),
        ]
    )
    report = sanity_check(pipeline, images, y, n_subset=30, epochs=4)
    assert report["initial_loss"].passed
    overfit = report["overfit_small_subset"]
    assert not overfit.passed and overfit.value < 0.8
    assert overfit.details["n_samples"] == 30  # the augmenter added no images
    assert "plateau" in overfit.details["diagnosis"]
