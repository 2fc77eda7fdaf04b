"""Losses and the macro-F1 metric: values against references, configs that round-trip."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from skcharclf._tf import import_keras
from skcharclf.losses import (
    BalancedSoftmaxLoss,
    CrossEntropy,
    FocalLoss,
    LogitAdjustedLoss,
    MacroF1Score,
)

keras = import_keras()

# Keras 3.15 converts its tensors with a numpy-1 style __array__ (a Keras issue, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

RNG = np.random.RandomState(0)
LOGITS = RNG.normal(scale=2.0, size=(32, 4)).astype("float32")
LABELS = RNG.randint(0, 4, size=32)
PRIORS = np.array([0.5, 0.3, 0.15, 0.05])


def _value(loss, labels=LABELS, logits=LOGITS, **kwargs):
    return float(loss(labels, logits, **kwargs))


def _per_sample_ce(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def test_cross_entropy_matches_keras():
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert _value(CrossEntropy()) == pytest.approx(_value(reference), rel=1e-5)
    assert _value(CrossEntropy()) == pytest.approx(_per_sample_ce(LOGITS, LABELS).mean(), rel=1e-5)


def test_label_smoothing_matches_keras():
    onehot = np.eye(4, dtype="float32")[LABELS]
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    ours = _value(CrossEntropy(label_smoothing=0.2))
    assert ours == pytest.approx(_value(reference, labels=onehot), rel=1e-5)
    confident = np.array([[8.0, 0.0, 0.0, 0.0]], dtype="float32")
    # smoothing penalises over-confident correct predictions
    assert _value(CrossEntropy(0.2), np.array([0]), confident) > 10 * _value(
        CrossEntropy(), np.array([0]), confident
    )


def test_labels_as_column_and_float_are_accepted():
    expected = _value(CrossEntropy())
    assert _value(CrossEntropy(), labels=LABELS.reshape(-1, 1).astype("float32")) == pytest.approx(
        expected, rel=1e-6
    )


def test_focal_with_gamma_zero_is_cross_entropy():
    assert _value(FocalLoss(gamma=0.0)) == pytest.approx(_value(CrossEntropy()), rel=1e-6)
    assert _value(FocalLoss(gamma=0.0, label_smoothing=0.1)) == pytest.approx(
        _value(CrossEntropy(label_smoothing=0.1)), rel=1e-6
    )


def test_focal_down_weights_easy_samples():
    easy = np.array([[6.0, 0.0, 0.0, 0.0]], dtype="float32")
    hard = np.array([[0.0, 1.0, 0.0, 0.0]], dtype="float32")
    label = np.array([0])
    ce_easy, ce_hard = _value(CrossEntropy(), label, easy), _value(CrossEntropy(), label, hard)
    fl_easy, fl_hard = _value(FocalLoss(2.0), label, easy), _value(FocalLoss(2.0), label, hard)
    # (1 - p)^gamma shrinks a confident correct sample far more than a wrong one
    assert fl_easy / ce_easy < 1e-3
    assert fl_hard / ce_hard > 0.3
    p_true = np.exp(-ce_hard)
    assert fl_hard == pytest.approx((1 - p_true) ** 2 * ce_hard, rel=1e-5)


def test_focal_alpha_scalar_and_per_class():
    base = _value(FocalLoss(1.0))
    assert _value(FocalLoss(1.0, alpha=0.25)) == pytest.approx(0.25 * base, rel=1e-5)
    alpha = np.array([1.0, 2.0, 3.0, 4.0])
    per_sample = [
        float(FocalLoss(1.0)(LABELS[i : i + 1], LOGITS[i : i + 1])) * alpha[LABELS[i]]
        for i in range(len(LABELS))
    ]
    assert _value(FocalLoss(1.0, alpha=alpha)) == pytest.approx(np.mean(per_sample), rel=1e-5)


def test_logit_adjusted_adds_scaled_log_priors():
    adjusted = LOGITS + 0.5 * np.log(PRIORS).astype("float32")
    expected = _per_sample_ce(adjusted, LABELS).mean()
    assert _value(LogitAdjustedLoss(PRIORS, tau=0.5)) == pytest.approx(expected, rel=1e-5)
    assert _value(LogitAdjustedLoss(PRIORS, tau=0.0)) == pytest.approx(
        _value(CrossEntropy()), rel=1e-6
    )


def test_balanced_softmax_is_logit_adjustment_with_tau_one():
    assert _value(BalancedSoftmaxLoss(PRIORS)) == pytest.approx(
        _value(LogitAdjustedLoss(PRIORS, tau=1.0)), rel=1e-6
    )
    assert "tau" not in BalancedSoftmaxLoss(PRIORS).get_config()


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_logit_adjusted_smooths_towards_the_priors(tau):
    eps = 0.2
    adjusted = LOGITS + tau * np.log(PRIORS)
    shifted = adjusted - adjusted.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    floor = PRIORS**tau / (PRIORS**tau).sum()
    targets = (1 - eps) * np.eye(4)[LABELS] + eps * floor
    expected = -(targets * log_p).sum(axis=1).mean()
    loss = LogitAdjustedLoss(PRIORS, tau=tau, label_smoothing=eps)
    assert _value(loss) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(loss.smoothing_distribution(), floor, rtol=1e-6)
    # with the adjustment taken off, the smoothing floor is the same for every class, so it
    # does not tilt predictions towards the rare classes
    np.testing.assert_allclose(floor / PRIORS**tau, floor[0] / PRIORS[0] ** tau, rtol=1e-6)


def test_priors_are_normalised():
    loss = LogitAdjustedLoss([5, 3, 1.5, 0.5])
    np.testing.assert_allclose(loss.class_priors, PRIORS)


@pytest.mark.parametrize(
    "loss",
    [
        CrossEntropy(label_smoothing=0.1),
        FocalLoss(1.5, alpha=[0.5, 1.0, 1.5, 2.0]),
        FocalLoss(2.0, alpha=0.3),
        LogitAdjustedLoss(PRIORS, tau=0.7),
        BalancedSoftmaxLoss(PRIORS, label_smoothing=0.05),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_losses_serialise(loss):
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    assert _value(restored) == pytest.approx(_value(loss), rel=1e-6)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FocalLoss(gamma=-1.0), "gamma"),
        (lambda: CrossEntropy(label_smoothing=1.0), "label_smoothing"),
        (lambda: LogitAdjustedLoss([0.5, 0.0, 0.5]), "positive"),
    ],
)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sample_weight_scales_the_loss():
    weights = np.where(LABELS == 0, 2.0, 0.0).astype("float32")
    per_sample = _per_sample_ce(LOGITS, LABELS)
    expected = (per_sample * weights).sum() / len(LABELS)
    assert _value(CrossEntropy(), sample_weight=weights) == pytest.approx(expected, rel=1e-5)


def test_macro_f1_matches_sklearn_over_batches():
    rng = np.random.RandomState(1)
    labels = rng.randint(0, 5, size=200)
    logits = rng.normal(size=(200, 5)).astype("float32")
    logits[np.arange(200), labels] += rng.rand(200) * 2  # better than chance, not perfect
    labels[labels == 4] = 3  # class 4 is predicted but never true
    metric = MacroF1Score(5)
    for start in range(0, 200, 64):
        metric.update_state(labels[start : start + 64], logits[start : start + 64])
    expected = f1_score(labels, logits.argmax(axis=1), average="macro", zero_division=0)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    metric.reset_state()
    metric.update_state(labels[:10], np.eye(5, dtype="float32")[labels[:10]])
    assert float(metric.result()) == pytest.approx(1.0)


def test_macro_f1_leaves_out_absent_classes():
    metric = MacroF1Score(4)
    metric.update_state(np.array([0, 0, 1]), np.eye(4, dtype="float32")[[0, 1, 1]])
    # classes 2 and 3 never occur: the mean is over classes 0 and 1 only, like sklearn
    assert float(metric.result()) == pytest.approx(
        f1_score([0, 0, 1], [0, 1, 1], average="macro")
    )
    restored = MacroF1Score.from_config(metric.get_config())
    assert restored.n_classes == 4 and restored.name == "f1_macro"
