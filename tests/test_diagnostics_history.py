"""Learning-curve diagnosis (skcharclf.diagnostics.diagnose_history)."""

import dataclasses
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _data import prototype_images
from _diagnostics_data import (
    SYMPTOMS,
    _tiny_classifier,
    as_lists,
    codes,
    divergence_jump,
    divergence_nan,
    healthy,
    overfitting,
    plateau,
    train_oscillation,
    underfitting,
)
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline

from skcharclf.diagnostics import (
    DiagnosisThresholds,
    NoValidationWarning,
    diagnose_history,
)

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


def test_thresholds_object_is_the_same_as_keyword_arguments():
    history = overfitting(np.random.default_rng(0))
    lenient = DiagnosisThresholds(overfit_rise=5.0, overfit_gap=0.5)
    assert diagnose_history(history, thresholds=lenient) == []
    assert diagnose_history(history, thresholds=DiagnosisThresholds()) == diagnose_history(history)
    # a keyword argument replaces that field of the thresholds object, the rest stays
    assert codes(diagnose_history(history, thresholds=lenient, overfit_gap=0.1)) == ["overfitting"]
    assert codes(diagnose_history(history, thresholds=lenient, overfit_rise=0.1)) == ["overfitting"]


def test_named_magic_numbers_steer_their_rules():
    (converged,) = diagnose_history(underfitting(np.random.default_rng(0)))
    assert converged.severity == "warning"  # the loss fell 2% in the last third
    (still,) = diagnose_history(underfitting(np.random.default_rng(0)), still_learning_drop=0.02)
    assert still.code == "underfitting" and still.severity == "info"
    oscillating = train_oscillation(np.random.default_rng(0))
    assert codes(diagnose_history(oscillating)) == ["train_oscillation"]
    assert codes(diagnose_history(oscillating, oscillation_trend_factor=1e-6)) == []
    history = overfitting(np.random.default_rng(0))
    (rising,) = diagnose_history(history)
    (gap_only,) = diagnose_history(history, overfit_noise_factor=1000.0)
    assert "rises" in rising.title and "training accuracy but" in gap_only.title


def test_thresholds_are_checked_once_where_they_are_made():
    with pytest.raises(ValueError, match="'overfit_gap' parameter of DiagnosisThresholds"):
        DiagnosisThresholds(overfit_gap=2.0)
    with pytest.raises(ValueError, match="'near_zero_loss' parameter of diagnose_history"):
        diagnose_history({"loss": [1.0]}, near_zero_loss=0.0)
    with pytest.raises(ValueError, match="'thresholds' parameter of diagnose_history"):
        diagnose_history({"loss": [1.0]}, thresholds={"min_epochs": 3})
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['overfit_rse'\]"):
        diagnose_history({"loss": [1.0]}, overfit_rse=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DiagnosisThresholds().min_epochs = 2


def test_diagnosing_a_history_does_not_start_tensorflow():
    """The initial-loss reference lives outside skcharclf.losses, which imports Keras."""
    code = (
        "import sys\n"
        "from skcharclf.diagnostics import diagnose_history\n"
        "diagnose_history({'loss': [2.3, 2.2, 2.1, 2.0]}, n_classes=10, initial_loss=2.3)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


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
# Real training runs: KerasCharClassifier on tiny 8x8 images, induced to show each symptom
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_run_with_learning_rate_too_low_plateaus():
    X, y = prototype_images(120, 0, 1.0)
    with warnings.catch_warnings():
        # nothing memorised: the no-validation finding is info only, and fit does not warn
        warnings.simplefilter("error", NoValidationWarning)
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

    X, y = prototype_images(120, 0, 1.0)
    with pytest.raises(TrainingDivergedError, match="Training diverged") as caught:
        _tiny_classifier(learning_rate=1e6, epochs=3, batch_size=32).fit(X, y)
    finding = caught.value.finding
    assert finding.code == "divergence" and finding.severity == "error"
    assert finding.epochs == [caught.value.epoch]
    assert codes(caught.value.findings)[0] == "divergence"


@pytest.mark.slow
def test_real_run_on_tiny_training_set_without_regularisation_overfits():
    X, y = prototype_images(24, 1, 2.5)
    X_val, y_val = prototype_images(300, 2, 2.5)
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
    X, y = prototype_images(240, 3, 1.5)
    X_val, y_val = prototype_images(90, 4, 0.2)
    clf = _tiny_classifier(
        learning_rate=1e-2, epochs=10, batch_size=32, validation_data=(X_val, y_val)
    ).fit(X, y)
    found = {finding.code: finding for finding in clf.diagnosis_}
    assert "val_below_train" in found, codes(clf.diagnosis_)
    assert found["val_below_train"].evidence["epochs_below"] >= 0.9
    assert "overfitting" not in found
