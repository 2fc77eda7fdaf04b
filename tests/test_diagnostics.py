"""Dataset analysis, learning-curve diagnosis and sanity checks (skcharclf.diagnostics)."""

import json
import math
import time

import cv2
import numpy as np
import pytest
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin

from skcharclf.diagnostics import (
    DatasetReport,
    Finding,
    NoValidationWarning,
    SanityReport,
    analyze_dataset,
    diagnose_history,
    format_findings,
    sanity_check,
)

# --------------------------------------------------------------------------------------------
# Synthetic learning curves: one healthy run and one run per symptom (30 epochs)
# --------------------------------------------------------------------------------------------

EPOCHS = np.arange(30)
ZIGZAG = np.where(EPOCHS % 2 == 0, 1.0, -1.0)


def _jitter(values, rng, scale=0.01):
    return values * (1 + scale * rng.standard_normal(len(values)))


def healthy(rng):
    """Smoothly falling training loss, validation loss levelling off slightly above it."""
    acc = 0.97 - 0.87 * np.exp(-EPOCHS / 4)
    return {
        "loss": _jitter(0.05 + 2.0 * np.exp(-EPOCHS / 4), rng),
        "val_loss": _jitter(0.12 + 2.04 * np.exp(-EPOCHS / 4), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.02,
    }


def overfitting(rng):
    val = 0.6 + 1.5 * np.exp(-EPOCHS / 3) + 0.06 * np.clip(EPOCHS - 8, 0, None)
    return {
        "loss": _jitter(0.001 + 2.0 * np.exp(-EPOCHS / 3), rng),
        "val_loss": _jitter(val, rng),
        "accuracy": 1.0 - 0.9 * np.exp(-EPOCHS / 3),
        "val_accuracy": 0.77 - 0.6 * np.exp(-EPOCHS / 3),
    }


def underfitting(rng):
    acc = 0.45 - 0.35 * np.exp(-EPOCHS / 6)
    return {
        "loss": _jitter(1.6 + 0.7 * np.exp(-EPOCHS / 6), rng),
        "val_loss": _jitter(1.7 + 0.6 * np.exp(-EPOCHS / 6), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.03,
    }


def plateau(rng):
    acc = 0.1 + 0.01 * rng.standard_normal(30)
    return {
        "loss": _jitter(np.full(30, 2.302), rng, 0.001),
        "val_loss": _jitter(np.full(30, 2.303), rng, 0.001),
        "accuracy": acc,
        "val_accuracy": acc,
    }


def divergence_nan(rng):
    history = healthy(rng)
    history["loss"][6:] = np.nan
    return history


def divergence_jump(rng):
    history = healthy(rng)
    history["loss"][10:] = [5.0, 30.0, 80.0, 1e3] + [1e4] * 16
    return history


def train_oscillation(rng):
    acc = 0.85 - 0.7 * np.exp(-EPOCHS / 2) - 0.05 * ZIGZAG * (EPOCHS > 6)
    return {
        "loss": 0.6 + 1.6 * np.exp(-EPOCHS / 2) + 0.25 * ZIGZAG * (EPOCHS > 6),
        "val_loss": _jitter(0.8 + 1.5 * np.exp(-EPOCHS / 2), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.03,
    }


def val_stalled_early(rng):
    return {
        "loss": _jitter(0.15 + 2.0 * np.exp(-EPOCHS / 6), rng),
        "val_loss": _jitter(0.9 + 1.3 * np.exp(-EPOCHS / 1.5), rng),
        "accuracy": 0.93 - 0.8 * np.exp(-EPOCHS / 6),
        "val_accuracy": 0.8 - 0.6 * np.exp(-EPOCHS / 1.5),
    }


def val_oscillation(rng):
    history = healthy(rng)
    history["val_loss"] = history["val_loss"] * (1 + 0.4 * ZIGZAG * (EPOCHS > 3))
    return history


def val_below_train(rng):
    history = healthy(rng)
    history["val_loss"] = history["loss"] * 0.7
    history["val_accuracy"] = np.minimum(history["accuracy"] + 0.03, 1.0)
    return history


SYMPTOMS = {
    "overfitting": overfitting,
    "underfitting": underfitting,
    "plateau": plateau,
    "divergence": divergence_nan,
    "train_oscillation": train_oscillation,
    "val_stalled_early": val_stalled_early,
    "val_oscillation": val_oscillation,
    "val_below_train": val_below_train,
}


def codes(findings):
    return [finding.code for finding in findings]


def as_lists(history):
    return {key: np.asarray(values).tolist() for key, values in history.items()}


# --------------------------------------------------------------------------------------------
# diagnose_history: each rule fires on its symptom and only there
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("initial_loss", [None, 2.35])
def test_healthy_run_has_no_findings(seed, initial_loss):
    history = as_lists(healthy(np.random.default_rng(seed)))
    assert diagnose_history(history, n_classes=10, initial_loss=initial_loss) == []


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("code", sorted(SYMPTOMS))
def test_each_rule_fires_on_its_symptom_alone(code, seed):
    history = as_lists(SYMPTOMS[code](np.random.default_rng(seed)))
    assert codes(diagnose_history(history, n_classes=10, initial_loss=2.35)) == [code]


def test_divergence_on_exploding_loss_is_an_error():
    findings = diagnose_history(divergence_jump(np.random.default_rng(0)), n_classes=10)
    assert codes(findings) == ["divergence"]
    assert findings[0].severity == "error"
    assert findings[0].epochs == [11]  # 1-based: the jump is at history index 10
    assert findings[0].evidence["loss"] == 5.0


def test_divergence_nan_points_at_first_bad_epoch_and_learning_rate():
    history = divergence_nan(np.random.default_rng(0))
    history["learning_rate"] = [10.0] * 30
    (finding,) = diagnose_history(history)
    assert finding.code == "divergence"
    assert finding.epochs == [7]
    assert math.isnan(finding.evidence["loss"])
    assert finding.evidence["learning_rate"] == 10.0
    assert "NaN" in finding.title or "nan" in finding.title
    assert any("learning_rate" in remedy for remedy in finding.remedies)


def test_divergence_when_loss_ends_far_above_chance():
    history = {"loss": [40.0, 35.0, 33.0, 31.0, 30.0], "accuracy": [0.1] * 5}
    (finding,) = diagnose_history(history, n_classes=10)
    assert finding.code == "divergence"
    assert finding.evidence["uninformed_loss"] == pytest.approx(math.log(10))


def test_divergence_is_found_in_a_two_epoch_history():
    assert codes(diagnose_history({"loss": [2.1, float("nan")]})) == ["divergence"]


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("symptom", sorted(set(SYMPTOMS) - {"divergence"}))
def test_short_histories_raise_no_trend_findings(symptom, n):
    history = SYMPTOMS[symptom](np.random.default_rng(0))
    short = {key: values[:n] for key, values in history.items()}
    assert diagnose_history(short, n_classes=10) == []


def test_overfitting_evidence_and_epochs():
    (finding,) = diagnose_history(overfitting(np.random.default_rng(0)))
    assert finding.severity == "warning"
    assert 8 <= finding.evidence["best_val_epoch"] <= 11
    assert finding.epochs == [finding.evidence["best_val_epoch"], 30]
    assert finding.evidence["val_loss_rise"] > 1.0
    assert finding.evidence["accuracy_gap"] == pytest.approx(0.23, abs=0.01)
    assert any("early_stopping" in remedy for remedy in finding.remedies)


def test_overfitting_from_accuracy_gap_alone():
    """Train accuracy at 100% and validation far below, even with a flat validation loss."""
    n = 10
    history = {
        "loss": np.linspace(1.0, 0.01, n),
        "val_loss": np.full(n, 0.9),
        "accuracy": np.linspace(0.7, 1.0, n),
        "val_accuracy": np.full(n, 0.77),
    }
    assert codes(diagnose_history(history)) == ["overfitting"]


def test_overfitting_ignores_validation_noise_around_a_flat_level():
    rng = np.random.default_rng(3)
    history = healthy(rng)
    history["val_loss"] = history["val_loss"] * (1 + 0.05 * rng.standard_normal(30))
    assert "overfitting" not in codes(diagnose_history(history))


def test_thresholds_are_parameters():
    history = overfitting(np.random.default_rng(0))
    assert diagnose_history(history, overfit_rise=5.0, overfit_gap=0.5) == []
    assert codes(diagnose_history(plateau(np.random.default_rng(0)), min_epochs=31)) == []
    assert codes(
        diagnose_history(
            healthy(np.random.default_rng(0)), plateau_tolerance=0.999, underfit_accuracy=1.0
        )
    ) == ["plateau"]


def test_underfitting_that_is_still_learning_is_info_with_more_epochs_first():
    epochs = np.arange(6)
    history = {
        "loss": 2.3 * np.exp(-epochs / 3),
        "accuracy": 0.7 - 0.6 * np.exp(-epochs / 3),
    }
    finding, no_validation = diagnose_history(history)
    assert no_validation.code == "no_validation"  # there is no validation curve
    assert finding.code == "underfitting"
    assert finding.severity == "info"
    assert "more epochs" in finding.remedies[0]
    (stuck,) = diagnose_history(underfitting(np.random.default_rng(0)))
    assert stuck.severity == "warning"


def test_underfitting_without_accuracy_uses_the_uninformed_loss():
    history = {"loss": [2.3, 2.0, 1.9, 1.85, 1.84, 1.84, 1.84, 1.84]}
    history["val_loss"] = history["loss"]
    assert diagnose_history(history) == []  # nothing to compare the loss with
    assert codes(diagnose_history(history, n_classes=10)) == ["underfitting"]


def test_plateau_is_not_reported_when_the_first_epoch_already_learned():
    history = {"loss": [0.9, 0.89, 0.89, 0.88, 0.88], "accuracy": [0.7, 0.7, 0.71, 0.71, 0.7]}
    with_start = diagnose_history(history, n_classes=10, initial_loss=2.3)
    assert "plateau" not in codes(with_start)
    assert "plateau" in codes(diagnose_history(history, n_classes=10))


@pytest.mark.parametrize(("initial", "direction"), [(9.0, "x that of"), (0.5, "well below")])
def test_initial_loss_far_from_ln_c(initial, direction):
    findings = diagnose_history(
        healthy(np.random.default_rng(0)), n_classes=10, initial_loss=initial
    )
    (finding,) = findings
    assert finding.code == "initial_loss"
    assert finding.epochs == [0]
    assert direction in finding.title
    assert finding.evidence["expected"] == pytest.approx(math.log(10))


def test_initial_loss_against_prior_entropy():
    priors = [0.7, 0.1, 0.1, 0.1]
    entropy = -sum(p * math.log(p) for p in priors)  # 0.94, far from ln 4 = 1.39
    history = {"loss": [0.9, 0.8]}
    assert diagnose_history(history, class_priors=priors, initial_loss=entropy) == []
    findings = diagnose_history(
        history, n_classes=4, initial_loss=entropy, initial_loss_tolerance=0.2
    )
    assert codes(findings) == ["initial_loss"]
    assert (
        diagnose_history(
            history, class_priors=priors, initial_loss=entropy, initial_loss_tolerance=0.2
        )
        == []
    )


def test_initial_loss_needs_a_reference():
    assert diagnose_history({"loss": [2.0, 1.0]}, initial_loss=50.0) == []


class _KerasHistory:
    def __init__(self, history):
        self.history = history


class _FittedClassifier:
    """What diagnose_history reads from a fitted KerasCharClassifier."""

    def __init__(self, history, initial_loss, **params):
        self.history_ = history
        self.initial_loss_ = initial_loss
        self.classes_ = np.arange(10)
        self.params = {"loss": "ce", "class_weight": None, "bias_init": "zeros", **params}

    def get_params(self, deep=True):
        return dict(self.params)


def test_history_from_keras_history_estimator_and_pipeline():
    history = as_lists(plateau(np.random.default_rng(0)))
    assert codes(diagnose_history(_KerasHistory(history))) == ["plateau"]
    fitted = _FittedClassifier(history, initial_loss=2.31)
    (finding,) = diagnose_history(fitted)
    assert finding.code == "plateau"
    assert finding.evidence["uninformed_loss"] == pytest.approx(math.log(10))  # classes_
    assert finding.evidence["start_loss"] == 2.31  # initial_loss_
    bad_start = _FittedClassifier(as_lists(healthy(np.random.default_rng(0))), 9.0)
    assert codes(diagnose_history(bad_start)) == ["initial_loss"]
    pipeline = Pipeline([("sampler", RandomOverSampler()), ("clf", bad_start)])
    assert codes(diagnose_history(pipeline)) == ["initial_loss"]
    assert codes(diagnose_history(pipeline, initial_loss=2.3)) == []  # arguments win


@pytest.mark.parametrize(
    "params",
    [
        {"bias_init": "prior"},
        {"loss": "focal"},
        {"loss": "logit_adjusted"},
    ],
)
def test_initial_loss_rule_skipped_when_reference_unknown(params):
    """Focal loss and prior biases with unknown priors change the reference."""
    fitted = _FittedClassifier(as_lists(healthy(np.random.default_rng(0))), 9.0, **params)
    assert diagnose_history(fitted) == []


@pytest.mark.parametrize("loss", ["ce", "logit_adjusted", "balanced_softmax"])
def test_initial_loss_from_estimator_with_prior_bias(loss):
    priors = np.array([0.91] + [0.01] * 9)
    entropy = float(-(priors * np.log(priors)).sum())  # 0.50, a fifth of ln 10
    history = as_lists(healthy(np.random.default_rng(0)))
    fitted = _FittedClassifier(history, entropy, bias_init="prior", loss=loss)
    fitted.class_priors_ = priors
    assert diagnose_history(fitted) == []
    fitted.initial_loss_ = math.log(10)
    (finding,) = diagnose_history(fitted)
    assert finding.code == "initial_loss"
    assert finding.evidence["expected"] == pytest.approx(entropy)


def test_label_smoothing_shifts_the_expected_initial_loss():
    priors = np.array([0.91] + [0.01] * 9)
    eps = 0.1
    smoothed = (1 - eps) * priors + eps / 10
    expected = float(-(smoothed * np.log(priors)).sum())  # 0.87, vs an entropy of 0.50
    history = {"loss": [0.9, 0.8]}
    tight = {"class_priors": priors, "initial_loss_tolerance": 0.2}
    assert diagnose_history(history, initial_loss=expected, label_smoothing=eps, **tight) == []
    (finding,) = diagnose_history(history, initial_loss=expected, **tight)
    assert finding.evidence["expected"] == pytest.approx(-(priors * np.log(priors)).sum())
    # uniform priors: ln C whatever the smoothing
    assert diagnose_history(history, n_classes=10, initial_loss=math.log(10),
                            label_smoothing=0.5, initial_loss_tolerance=0.01) == []
    # from a fitted classifier, its own label_smoothing is used
    fitted = _FittedClassifier(as_lists(healthy(np.random.default_rng(0))), expected,
                               bias_init="prior", label_smoothing=eps)
    fitted.class_priors_ = priors
    assert diagnose_history(fitted, initial_loss_tolerance=0.2) == []
    fitted.params["label_smoothing"] = 0.0
    assert codes(diagnose_history(fitted, initial_loss_tolerance=0.2)) == ["initial_loss"]
    with pytest.raises(ValueError, match="label_smoothing"):
        diagnose_history(history, label_smoothing=1.0)


def _without_validation(history):
    return {key: values for key, values in history.items() if not key.startswith("val_")}


def test_no_validation_curve_says_overfitting_cannot_be_judged():
    history = _without_validation(healthy(np.random.default_rng(0)))
    (finding,) = diagnose_history(history, n_classes=10)
    assert (finding.code, finding.severity) == ("no_validation", "info")
    assert finding.title == "Overfitting cannot be judged: 30 epochs without a validation curve"
    remedies = " ".join(finding.remedies)
    assert "validation_data=(X_val, y_val)" in remedies and "early_stopping=True" in remedies
    assert "fewer folds" in remedies and "more images" in remedies


def test_memorising_without_validation_is_the_classic_overfitting_sign():
    history = _without_validation(overfitting(np.random.default_rng(0)))
    (finding,) = diagnose_history(history, n_classes=10)
    assert (finding.code, finding.severity) == ("no_validation", "warning")
    assert "classic overfitting sign" in finding.title
    first = int(np.argmax(np.asarray(history["accuracy"]) >= 0.98)) + 1
    assert finding.epochs == [first, 30]
    assert finding.evidence["sign_epoch"] == first
    assert "training accuracy reached" in finding.title


def test_loss_towards_zero_without_accuracy_is_the_overfitting_sign_too():
    history = {"loss": list(2.3 * np.exp(-np.arange(12)))}
    (finding,) = diagnose_history(history, n_classes=10)
    assert (finding.code, finding.severity) == ("no_validation", "warning")
    assert "the training loss fell to" in finding.title


def test_short_run_without_validation_gets_no_validation_finding():
    history = {"loss": [2.0, 1.0, 0.5], "accuracy": [0.5, 0.9, 1.0]}
    assert diagnose_history(history) == []


def test_validation_without_some_classes_is_reported():
    history = as_lists(healthy(np.random.default_rng(0)))
    assert diagnose_history(history, unvalidated_classes=[]) == []
    (finding,) = diagnose_history(history, unvalidated_classes=np.array([2, 8]))
    assert (finding.code, finding.severity) == ("validation_incomplete", "info")
    assert finding.evidence == {"unvalidated_classes": [2, 8]}
    assert "overfitting on 2, 8 cannot be judged" in finding.title
    fitted = _FittedClassifier(history, initial_loss=2.3)
    fitted.unvalidated_classes_ = np.array(["a"], dtype=object)
    assert codes(diagnose_history(fitted)) == ["validation_incomplete"]
    json.dumps(diagnose_history(fitted)[0].to_dict())


def test_aliases_acc_and_lr():
    history = plateau(np.random.default_rng(0))
    history["acc"] = history.pop("accuracy")
    history["lr"] = [1e-7] * 30
    (finding,) = diagnose_history(history)
    assert finding.code == "plateau"
    assert finding.evidence["learning_rate"] == 1e-7
    assert finding.evidence["final_accuracy"] == pytest.approx(history["acc"][-1])


def test_empty_history_has_no_findings():
    assert diagnose_history({"loss": []}) == []


def test_history_errors():
    with pytest.raises(ValueError, match="no 'loss' entry"):
        diagnose_history({"accuracy": [0.5, 0.6]})
    with pytest.raises(ValueError, match=r"history\['val_loss'\] has 2 entries"):
        diagnose_history({"loss": [1.0, 0.9, 0.8], "val_loss": [1.0, 0.9]})
    with pytest.raises(TypeError, match="history must be a dict"):
        diagnose_history([1.0, 0.9])
    with pytest.raises(ValueError, match="min_epochs"):
        diagnose_history({"loss": [1.0]}, min_epochs=0)
    with pytest.raises(ValueError, match="class_priors has 3 entries but n_classes=4"):
        diagnose_history({"loss": [1.0]}, n_classes=4, class_priors=[0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="non-negative frequency"):
        diagnose_history({"loss": [1.0]}, class_priors=[1.0, -1.0])


# --------------------------------------------------------------------------------------------
# Finding and format_findings
# --------------------------------------------------------------------------------------------


def test_finding_text_and_dict():
    (finding,) = diagnose_history(overfitting(np.random.default_rng(0)))
    text = str(finding)
    assert text.startswith("[warning] overfitting: Overfitting")
    assert "epochs: " in text and "evidence: best_val_epoch=" in text
    assert "what to try:" in text
    record = finding.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert record["code"] == "overfitting" and isinstance(record["epochs"][0], int)


def test_finding_to_dict_makes_nan_json_null():
    (finding,) = diagnose_history(divergence_nan(np.random.default_rng(0)))
    record = finding.to_dict()
    assert record["evidence"]["loss"] is None
    json.dumps(record, allow_nan=False)


def test_finding_rejects_unknown_severity():
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding("x", "fatal", "title")


def test_format_findings_orders_by_severity_and_numbers():
    findings = [
        Finding("a", "info", "an info"),
        Finding("b", "error", "an error"),
        Finding("c", "warning", "a warning"),
    ]
    text = format_findings(findings)
    assert text.index("1. [error] b") < text.index("2. [warning] c") < text.index("3. [info] a")
    assert format_findings([]).startswith("No findings")


# --------------------------------------------------------------------------------------------
# analyze_dataset on synthetic ragged data
# --------------------------------------------------------------------------------------------


def _random_glyph(rng, height=24, dark_on_light=True):
    """A ragged character-like image: a few random strokes on a flat background."""
    width = int(rng.integers(8, 21))
    image = np.zeros((height, width), dtype=np.float32)
    for _ in range(3):
        p1 = (int(rng.integers(1, width - 1)), int(rng.integers(1, height - 1)))
        p2 = (int(rng.integers(1, width - 1)), int(rng.integers(1, height - 1)))
        cv2.line(image, p1, p2, 1.0, int(rng.integers(2, 4)))
    background, ink = rng.uniform(190, 235), rng.uniform(20, 60)
    if not dark_on_light:
        background, ink = 255 - background, 255 - ink
    return np.rint(background + image * (ink - background)).astype(np.uint8)


def _salt_and_pepper(image, rng, fraction=0.04):
    noisy = image.copy()
    hit = rng.random(image.shape) < fraction
    noisy[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)
    return noisy


@pytest.fixture(scope="module")
def ragged_set():
    """Classes a, b (40 each; b with salt-and-pepper noise) and c (6): with injected copies."""
    rng = np.random.default_rng(0)
    images = [_random_glyph(rng) for _ in range(86)]
    labels = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 6)
    for i in range(40, 80):
        images[i] = _salt_and_pepper(images[i], rng)
    images.append(images[0].copy())  # exact copy, same label: index 86
    labels = np.append(labels, "a")
    images.append(images[2].copy())  # exact copy, other label: index 87
    labels = np.append(labels, "c")
    brighter = np.clip(images[3].astype(int) + 12, 0, 255).astype(np.uint8)
    images.append(brighter)  # near copy of 3: index 88
    labels = np.append(labels, "a")
    test = [_random_glyph(rng) for _ in range(10)]
    test.append(images[5].copy())  # test 10 = train 5 exactly
    test.append(np.clip(images[7].astype(int) - 10, 0, 255).astype(np.uint8))  # near 7
    return images, labels, test


def test_analysis_of_ragged_synthetic_set(ragged_set):
    images, labels, test = ragged_set
    report = analyze_dataset(images, labels, X_test=test)
    assert isinstance(report, DatasetReport)
    assert report.n_samples == 89 and report.n_classes == 3
    assert report.class_counts == {"a": 42, "b": 40, "c": 7}
    assert report.imbalance_ratio == pytest.approx(6.0)
    assert report.rare_classes == ["c"] and report.tiny_classes == ["c"]
    assert report.ragged and report.n_sizes > 5
    assert report.height == {"min": 24, "median": 24, "max": 24}
    assert 8 <= report.width["min"] < report.width["max"] <= 20
    assert report.dark_on_light_fraction == 1.0
    noise = report.isolated_pixel_fraction_by_class
    assert noise["b"] > 0.01 and noise["a"] < 0.001
    assert report.exact_duplicate_groups == [[0, 86], [2, 87]]
    assert report.conflicting_label_groups == [[2, 87]]
    assert report.near_duplicate_groups == [[3, 88]]
    assert report.n_test_samples == 12
    assert report.test_exact_duplicates == [(10, 5)]
    assert report.test_near_duplicates == [(11, 7)]
    found = {finding.code: finding for finding in report.recommendations}
    assert set(found) == {
        "class_imbalance",
        "tiny_classes",
        "salt_and_pepper_noise",
        "varying_sizes",
        "dark_on_light",
        "duplicates",
        "conflicting_labels",
        "train_test_leakage",
    }
    assert found["class_imbalance"].evidence["rare_classes"] == ["c"]
    assert any("RareClassAugmenter" in r for r in found["class_imbalance"].remedies)
    assert any('class_weight="balanced"' in r for r in found["class_imbalance"].remedies)
    assert found["salt_and_pepper_noise"].evidence["noisiest_classes"][0] == "b"
    assert any('Denoiser(method="median"' in r for r in found["salt_and_pepper_noise"].remedies)
    assert any('mode="pad"' in r for r in found["varying_sizes"].remedies)
    assert "n_splits=5" in found["tiny_classes"].remedies[0]
    assert found["train_test_leakage"].evidence["leaked_fraction"] == pytest.approx(2 / 12)
    assert all(finding.epochs == [] for finding in report.recommendations)


def test_clean_same_size_light_on_dark_set_needs_nothing():
    rng = np.random.default_rng(1)
    images = np.stack(
        [cv2.resize(_random_glyph(rng, dark_on_light=False), (16, 24)) for _ in range(60)]
    )
    report = analyze_dataset(images, np.repeat([0, 1, 2], 20))
    assert not report.ragged and report.dark_on_light_fraction == 0.0
    assert report.isolated_pixel_fraction < 0.001
    assert report.rare_classes == [] and report.exact_duplicate_groups == []
    assert report.recommendations == []
    assert "none: nothing in the data calls for action" in str(report)


def test_polarity_fraction_of_a_mixed_set():
    rng = np.random.default_rng(2)
    images = [_random_glyph(rng, dark_on_light=k % 4 == 0) for k in range(40)]
    report = analyze_dataset(images, np.arange(40) % 2)
    assert report.dark_on_light_fraction == pytest.approx(0.25)
    (finding,) = [f for f in report.recommendations if f.code == "dark_on_light"]
    assert "mixed polarity" in finding.title and finding.severity == "info"


def test_inverted_copy_is_a_near_duplicate():
    rng = np.random.default_rng(3)
    images = [_random_glyph(rng) for _ in range(20)]
    images.append(255 - images[4])
    report = analyze_dataset(images, np.arange(21) % 2)
    assert report.near_duplicate_groups == [[4, 20]]


@pytest.mark.parametrize("shape", [(24, 13), (2, 9), (5, 1)])
def test_batched_background_matches_estimate_background(shape):
    """analyze_dataset computes the border median per stack; it must agree with _images."""
    from skcharclf._images import estimate_background
    from skcharclf.diagnostics import _border_median

    stack = np.random.default_rng(0).random((6, *shape)).astype(np.float32)
    expected = [estimate_background(image) for image in stack]
    np.testing.assert_allclose(_border_median(stack), expected, rtol=1e-6)


def test_flat_and_4d_batches(ragged_set):
    rng = np.random.default_rng(4)
    images = np.stack([cv2.resize(_random_glyph(rng), (16, 16)) for _ in range(30)])
    y = np.arange(30) % 3
    flat = analyze_dataset(1.0 - images.reshape(30, -1) / 255.0, y, image_shape=(16, 16))
    assert flat.height["max"] == 16 and flat.dark_on_light_fraction == 0.0
    rgb = analyze_dataset(np.repeat(images[..., None], 3, axis=-1), y)
    assert rgb.n_samples == 30 and rgb.dark_on_light_fraction == 1.0
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8\) holds 64 pixels"):
        analyze_dataset(images.reshape(30, -1), y, image_shape=(8, 8))


def test_report_text_and_json(ragged_set):
    images, labels, test = ragged_set
    report = analyze_dataset(images, labels, X_test=test)
    text = str(report)
    for section in (
        "Classes",
        "Image sizes",
        "Intensity and noise",
        "Duplicates",
        "Recommendations",
    ):
        assert f"\n{section}\n" in text
    assert "c *" in text and "imbalance ratio (largest / smallest class): 6.0" in text
    assert "test set (12 images): 1 exact and 1 near copies" in text
    record = report.to_dict()
    assert json.loads(json.dumps(record, allow_nan=False))["class_counts"] == {
        "a": 42,
        "b": 40,
        "c": 7,
    }
    assert record["recommendations"][0]["code"] == "class_imbalance"


def test_integer_labels_serialise():
    rng = np.random.default_rng(5)
    images = [_random_glyph(rng) for _ in range(12)]
    report = analyze_dataset(images, np.array([3, 7] * 6, dtype=np.int64))
    assert list(report.class_counts) == [3, 7]
    assert json.loads(json.dumps(report.to_dict()))["class_counts"] == {"3": 6, "7": 6}


def test_analysis_errors():
    rng = np.random.default_rng(6)
    images = [_random_glyph(rng) for _ in range(5)]
    with pytest.raises(ValueError, match="X holds 5 images but y has 4 labels"):
        analyze_dataset(images, [0, 1, 0, 1])
    with pytest.raises(TypeError, match="X: sample 2 is a str"):
        analyze_dataset([*images[:2], "nope"], [0, 1, 0])
    with pytest.raises(ValueError, match="X_test: sample 0 is an empty image"):
        analyze_dataset(images, [0, 1, 0, 1, 0], X_test=[np.zeros((0, 4), np.uint8)])
    with pytest.raises(ValueError, match="rare_threshold"):
        analyze_dataset(images, [0, 1, 0, 1, 0], rare_threshold=2.0)


def test_thousands_of_images_take_seconds_at_most():
    rng = np.random.default_rng(7)
    base = [_random_glyph(rng) for _ in range(200)]
    images = [_salt_and_pepper(base[i % 200], rng, 0.02) for i in range(3000)]
    start = time.perf_counter()
    report = analyze_dataset(images, np.arange(3000) % 10)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"{elapsed:.1f} s for 3,000 images"
    assert report.isolated_pixel_fraction > 0.005


# --------------------------------------------------------------------------------------------
# analyze_dataset on the built-in data
# --------------------------------------------------------------------------------------------


def test_analysis_of_builtin_digit_chars():
    from skcharclf.datasets import load_digit_chars

    data = load_digit_chars(test_size_per_class=20)
    report = analyze_dataset(data.data, data.target, X_test=data.data_test)
    assert report.rare_classes == [2, 5, 8]
    assert report.height["min"] == report.height["max"] == 32
    assert report.width["min"] >= 9 and report.width["max"] <= 28 and report.ragged
    assert report.dark_on_light_fraction == 1.0
    found = codes(report.recommendations)
    assert {"class_imbalance", "salt_and_pepper_noise", "varying_sizes"} <= set(found)
    assert "train_test_leakage" not in found  # held-out digits are different digits
    clean = analyze_dataset(data.clean_data, data.target)
    assert clean.isolated_pixel_fraction < 0.001
    assert "salt_and_pepper_noise" not in codes(clean.recommendations)


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

PROTOTYPES = np.random.RandomState(42).rand(3, 64)


def _tiny_images(n, seed, noise):
    """Three classes of 8x8 images: a fixed prototype per class plus uniform noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    return (PROTOTYPES[y] + noise * (rng.rand(n, 64) - 0.5)).astype(np.float32), y


def _tiny_classifier(**params):
    from skcharclf import KerasCharClassifier

    settings = {
        "image_shape": (8, 8),
        "filters": (8,),
        "lr_schedule": "constant",
        "random_state": 0,
        "n_threads": 1,
    }
    return KerasCharClassifier(**{**settings, **params})


@pytest.mark.slow
def test_real_run_with_learning_rate_too_low_plateaus():
    X, y = _tiny_images(120, 0, 1.0)
    with pytest.warns(NoValidationWarning, match="trained 5 epochs without a validation set"):
        clf = _tiny_classifier(learning_rate=1e-7, epochs=5, batch_size=32).fit(X, y)
    assert codes(clf.diagnosis_) == ["plateau", "no_validation"]
    finding, no_validation = diagnose_history(clf)
    assert no_validation.severity == "info"  # nothing memorised: it cannot be judged, that's all
    assert finding.code == "plateau"
    assert finding.evidence["relative_decrease"] < 0.01
    assert finding.evidence["learning_rate"] == pytest.approx(1e-7)
    assert finding.evidence["start_loss"] == pytest.approx(clf.initial_loss_)


@pytest.mark.slow
def test_real_run_with_huge_learning_rate_raises_carrying_the_divergence_finding():
    from skcharclf.classifier import TrainingDivergedError

    X, y = _tiny_images(120, 0, 1.0)
    with pytest.raises(TrainingDivergedError, match="Training diverged") as caught:
        _tiny_classifier(learning_rate=1e6, epochs=3, batch_size=32).fit(X, y)
    finding = caught.value.finding
    assert finding.code == "divergence" and finding.severity == "error"
    assert finding.epochs == [caught.value.epoch]
    assert codes(caught.value.findings)[0] == "divergence"


@pytest.mark.slow
def test_real_run_on_tiny_training_set_without_regularisation_overfits():
    X, y = _tiny_images(24, 1, 2.5)
    X_val, y_val = _tiny_images(300, 2, 2.5)
    clf = _tiny_classifier(
        learning_rate=3e-3, epochs=40, batch_size=8, validation_data=(X_val, y_val),
        online_augmentation=None, label_smoothing=0.0,
    ).fit(X, y)
    found = {finding.code: finding for finding in clf.diagnosis_}
    assert "overfitting" in found, codes(clf.diagnosis_)
    evidence = found["overfitting"].evidence
    assert evidence["final_accuracy"] >= 0.95
    assert evidence["final_val_loss"] > evidence["best_val_loss"]
    assert "val_below_train" not in found


@pytest.mark.slow
def test_real_run_with_easier_validation_distribution_is_a_split_problem():
    """Validation images much cleaner than the training images: val loss below train."""
    X, y = _tiny_images(240, 3, 1.5)
    X_val, y_val = _tiny_images(90, 4, 0.2)
    clf = _tiny_classifier(
        learning_rate=1e-2, epochs=10, batch_size=32, validation_data=(X_val, y_val)
    ).fit(X, y)
    found = {finding.code: finding for finding in clf.diagnosis_}
    assert "val_below_train" in found, codes(clf.diagnosis_)
    assert found["val_below_train"].evidence["epochs_below"] >= 0.9
    assert "overfitting" not in found


@pytest.mark.slow
def test_real_sanity_check_passes_for_a_sound_classifier():
    X, y = _tiny_images(120, 5, 1.0)
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
    images = [_random_glyph(rng) for _ in range(60)]
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
