"""Learning-curve diagnosis: the symptoms of the procedure's table, read from a history.

Epochs are counted from 1, as Keras prints them: epoch ``e`` is entry ``e - 1`` of the
history lists, and epoch 0 is the model before training.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from ._curves import Curves, build_curves
from ._findings import Finding, by_severity, join_labels
from ._thresholds import DiagnosisThresholds

# The residual of a zigzag level +/- a from its 3-epoch moving average has standard
# deviation 4a/3: this factor turns that standard deviation back into the amplitude a.
_AMPLITUDE_PER_RESIDUAL_STD = 0.75
# What _swing reads on white noise, per unit of the noise's standard deviation.
_SWING_PER_NOISE_STD = 0.6


def _lr_evidence(curves: Curves, index: int = 0) -> dict[str, float]:
    if curves.learning_rate is None:
        return {}
    return {"learning_rate": float(curves.learning_rate[min(index, curves.n - 1)])}


def _relative_drop(start: float, end: float) -> float:
    return (start - end) / start if start > 0 else 0.0


def _smooth(values: np.ndarray) -> np.ndarray:
    """Centred 3-epoch moving average (2-epoch at the ends)."""
    padded = np.concatenate([[np.nan], values, [np.nan]])
    window = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    return np.nanmean(window, axis=0)


def _swing(values: np.ndarray) -> float:
    """Epoch-to-epoch swing of a curve: the amplitude ``a`` of a zigzag ``level +/- a``.

    Measured on the residual from the 3-epoch moving average, which a smooth trend barely
    leaves (unlike a straight-line fit of a curved descent) and a zigzag leaves at 4a/3.
    Random noise of standard deviation s reads as a swing of about 0.6 s.
    """
    residual = values[1:-1] - _smooth(values)[1:-1]
    return _AMPLITUDE_PER_RESIDUAL_STD * float(np.std(residual))


def _oscillation(values: np.ndarray) -> tuple[float, float, float]:
    """(share of epochs where the curve changes direction, swing, level change).

    The level change compares the means of the two halves: a noisy curve that still
    trends changes level by more than its swing.
    """
    steps = np.diff(values)
    flips = float(np.mean(steps[:-1] * steps[1:] < 0))
    half = len(values) // 2
    level_change = abs(float(values[:half].mean() - values[half:].mean()))
    return flips, _swing(values), level_change


def _tail(values: np.ndarray) -> np.ndarray:
    """The curve after its first third: where the initial descent is over."""
    return values[len(values) // 3 :]


def _rule_divergence(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    loss, val = curves.loss, curves.val_loss
    bad = ~np.isfinite(loss) if val is None else ~(np.isfinite(loss) & np.isfinite(val))
    remedies = [
        "Lower learning_rate by a factor of 10 (Adam usually trains well at 1e-3 or below), "
        "or measure where the loss starts to explode with skcharclf.lr_find(estimator, X, y) "
        "(CLI: skcharclf lr-find DATA) and train at the rate it suggests.",
        'Use a warm-up or decaying schedule: lr_schedule="onecycle", "cosine" or "plateau".',
        "If you raised batch_size or set scale_lr_with_batch=True, the effective learning "
        "rate grew with it.",
        'Check that the inputs are scaled (normalization="scale" or "standardize") and that '
        "no image holds extreme values.",
    ]
    explanation = (
        "A learning rate that is too high makes each update overshoot: the loss jumps up "
        "instead of down and can overflow to NaN. Very large inputs or weights initialised "
        "too large have the same effect."
    )
    if bad.any():
        first = int(np.argmax(bad))
        curve = "loss" if not np.isfinite(loss[first]) else "val_loss"
        value = loss[first] if curve == "loss" else val[first]
        evidence: dict[str, Any] = {"epoch": first + 1, curve: float(value)}
        if first > 0:
            evidence["last_finite_loss"] = float(loss[first - 1])
        return Finding(
            "divergence",
            "error",
            f"Training diverged: {curve} became {value} at epoch {first + 1}",
            {**evidence, **_lr_evidence(curves, first)},
            explanation,
            remedies,
            [first + 1],
        )
    for e in range(1, curves.n):
        previous_best = float(loss[:e].min())
        if loss[e] > t.divergence_factor * previous_best and loss[e] > loss[0]:
            return Finding(
                "divergence",
                "error",
                f"Training diverged: the loss jumped from {previous_best:.3g} to "
                f"{loss[e]:.3g} at epoch {e + 1}",
                {
                    "epoch": e + 1,
                    "loss": float(loss[e]),
                    "best_loss_before": previous_best,
                    **_lr_evidence(curves, e),
                },
                explanation,
                remedies,
                [e + 1],
            )
    if curves.chance is not None and loss[-1] > t.divergence_factor * curves.chance:
        return Finding(
            "divergence",
            "error",
            f"Training diverged: the loss ends at {loss[-1]:.3g}, far above the "
            f"{curves.chance:.3g} of a model that knows nothing",
            {
                "final_loss": float(loss[-1]),
                "uninformed_loss": curves.chance,
                **_lr_evidence(curves),
            },
            explanation,
            remedies,
            [curves.n],
        )
    return None


def _rule_initial_loss(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.initial_loss is None or curves.chance is None:
        return None
    return initial_loss_finding(curves.initial_loss, curves.chance, t.initial_loss_tolerance)


def initial_loss_finding(initial: float, expected: float, tolerance: float) -> Finding | None:
    """The ``"initial_loss"`` finding when ``initial`` is off ``expected`` by more than
    ``tolerance`` (relative); shared by the diagnosis and :func:`sanity_check`."""
    if expected <= 0:
        return None
    ratio = initial / expected
    if abs(ratio - 1.0) <= tolerance:
        return None
    evidence = {"initial_loss": initial, "expected": expected, "ratio": ratio}
    if ratio > 1:
        title = (
            f"The loss before training ({initial:.3g}) is {ratio:.1f}x that of a "
            f"model that knows nothing ({expected:.3g})"
        )
        explanation = (
            "An untrained network should spread its probability over the classes (loss ln C, "
            "or the entropy of the class priors when the biases start at the log priors). A "
            "much higher loss means it starts out confidently wrong: weights initialised too "
            "large, inputs that are not scaled to [0, 1], or probabilities passed to a loss "
            "that expects logits. Training then spends its first epochs undoing the start, or "
            "stalls."
        )
        remedies = [
            "Use He initialisation for ReLU layers and a Glorot-initialised output layer (the "
            "model builder's defaults); zero_init_residual=True for residual blocks.",
            'Scale the inputs: normalization="scale" (or "standardize").',
            'Start the output biases at the log class priors: bias_init="prior".',
        ]
    else:
        title = (
            f"The loss before training ({initial:.3g}) is well below that of a "
            f"model that knows nothing ({expected:.3g})"
        )
        explanation = (
            "An untrained network cannot know the labels, so its loss should be about ln C, "
            "or the entropy of the class priors when the output biases start at the log "
            "priors. A much lower value means the reference is wrong (pass class_priors when "
            'bias_init="prior", check n_classes) or the labels leak into the inputs.'
        )
        remedies = [
            "Pass class_priors (the class frequencies) when the output biases are initialised "
            "from them, or the right n_classes.",
            "Check that no feature encodes the label (a file name, a colour, a border drawn "
            "per class).",
        ]
    return Finding("initial_loss", "warning", title, evidence, explanation, remedies, [0])


def _is_fitted(curves: Curves, t: DiagnosisThresholds) -> bool:
    """Whether training already reached a low loss / high accuracy (then flat is fine)."""
    if curves.accuracy is not None:
        return bool(curves.accuracy[-1] >= t.underfit_accuracy)
    if curves.chance is not None:
        return bool(curves.loss.min() < t.fitted_loss_fraction * curves.chance)
    return False


def _rule_plateau(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.n < t.min_epochs or _is_fitted(curves, t):
        return None
    start = curves.initial_loss if curves.initial_loss is not None else float(curves.loss[0])
    drop = _relative_drop(start, float(curves.loss.min()))
    if drop >= t.plateau_tolerance:
        return None
    evidence = {
        "start_loss": start,
        "best_loss": float(curves.loss.min()),
        "relative_decrease": drop,
    }
    if curves.chance is not None:
        evidence["uninformed_loss"] = curves.chance
    if curves.accuracy is not None:
        evidence["final_accuracy"] = float(curves.accuracy[-1])
    return Finding(
        "plateau",
        "warning",
        f"The training loss is flat from the start: {100 * drop:.1f}% lower after "
        f"{curves.n} epochs",
        {**evidence, **_lr_evidence(curves)},
        "A loss that does not move from the first epoch means the updates are too small to "
        "matter: a learning rate far too low, or an initialisation under which gradients "
        "vanish (weights too small) or activations saturate (weights too large). A loss "
        "stuck exactly at ln C can also mean the labels do not match the images.",
        [
            "Raise learning_rate by a factor of 10 (Adam: try 1e-3), or use "
            'lr_schedule="onecycle", which ramps the rate up first; or measure from which rate '
            "the loss falls with skcharclf.lr_find(estimator, X, y) (CLI: skcharclf lr-find "
            "DATA), which suggests one in a few hundred steps.",
            "Check the initialisation: He for ReLU layers, zero_init_residual=True, Glorot for "
            "the output layer (the model builder's defaults).",
            "Check that images and labels stay aligned after shuffling and that the inputs are "
            'scaled (normalization="scale").',
        ],
        [1, curves.n],
    )


def _rule_underfitting(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.n < t.min_epochs:
        return None
    k = min(t.final_epochs, curves.n)
    evidence: dict[str, Any] = {"final_loss": float(curves.loss[-k:].mean())}
    if curves.val_loss is not None:
        evidence["final_val_loss"] = float(curves.val_loss[-k:].mean())
    if curves.accuracy is not None:
        train_score = float(curves.accuracy[-k:].mean())
        evidence["final_accuracy"] = train_score
        low = train_score < t.underfit_accuracy
        if curves.val_accuracy is not None:
            evidence["final_val_accuracy"] = float(curves.val_accuracy[-k:].mean())
            low = low and evidence["final_val_accuracy"] < t.underfit_accuracy
        title = (
            f"Underfitting: training accuracy is only {100 * train_score:.0f}% after "
            f"{curves.n} epochs"
        )
    elif curves.chance is not None:
        fitted = t.fitted_loss_fraction * curves.chance
        low = evidence["final_loss"] > fitted and (
            curves.val_loss is None or evidence["final_val_loss"] > fitted
        )
        evidence["uninformed_loss"] = curves.chance
        title = (
            f"Underfitting: the loss is still {evidence['final_loss']:.3g} after "
            f"{curves.n} epochs (an uninformed model: {curves.chance:.3g})"
        )
    else:
        return None
    if not low:
        return None
    third = max(1, curves.n // 3)
    recent_drop = _relative_drop(float(curves.loss[-third - 1]), float(curves.loss[-1]))
    evidence["loss_drop_last_third"] = recent_drop
    remedies = [
        'Use a bigger model: more filters or blocks_per_stage, or head="flatten" instead of "gap".',
        "Regularise less: lower dropout, l2 and weight_decay; use milder online_augmentation.",
        "Give the model better features: try Denoiser methods and ImageResizer modes.",
    ]
    explanation = (
        "Training and validation scores are both poor: the model does not fit even the "
        "training data. The procedure names three causes: an architecture too simple for "
        "the task, features that hide what separates the classes, and too much "
        "regularisation."
    )
    still_learning = recent_drop > t.still_learning_drop
    if still_learning:
        # A run cut short is not (yet) evidence of a model too weak for the data.
        remedies.insert(0, "Train for more epochs (or with a higher learning_rate) first.")
        explanation = (
            f"The loss fell another {100 * recent_drop:.0f}% in the last third of the run: "
            "training stopped before the model converged. " + explanation
        )
    return Finding(
        "underfitting",
        "info" if still_learning else "warning",
        title,
        evidence,
        explanation,
        remedies,
        [curves.n],
    )


def _rule_overfitting(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    val, loss = curves.val_loss, curves.loss
    best, rise, noise, rising = _val_rise(val, t)
    rising = rising and loss[-1] < loss[best]
    gap = None
    if curves.accuracy is not None and curves.val_accuracy is not None:
        gap = float(curves.accuracy[-1] - curves.val_accuracy[-1])
        memorised = curves.accuracy[-1] >= t.overfit_accuracy and gap >= t.overfit_gap
    else:
        memorised = False
    if not (rising or memorised):
        return None
    evidence: dict[str, Any] = {
        "best_val_epoch": best + 1,
        "best_val_loss": float(val[best]),
        "final_val_loss": float(val[-1]),
        "val_loss_rise": rise,
        "val_noise": noise,
        "final_loss": float(loss[-1]),
    }
    if gap is not None:
        evidence.update(
            final_accuracy=float(curves.accuracy[-1]),
            final_val_accuracy=float(curves.val_accuracy[-1]),
            accuracy_gap=gap,
        )
    if rising:
        title = (
            f"Overfitting: the validation loss rises {100 * rise:.0f}% after epoch {best + 1} "
            "while the training loss keeps falling"
        )
    else:
        title = (
            f"Overfitting: {100 * curves.accuracy[-1]:.0f}% training accuracy but "
            f"{100 * curves.val_accuracy[-1]:.0f}% on validation"
        )
    return Finding(
        "overfitting",
        "warning",
        title,
        evidence,
        "The model memorises the training images instead of learning what generalises: "
        "training accuracy approaches 100% while the validation loss turns up after its "
        "minimum and the gap between the curves widens.",
        [
            "Stop at the best epoch: early_stopping=True with a patience of a few epochs and "
            'checkpoint_selection="best".',
            "Regularise: dropout (after the heavy layers), l2 or weight_decay.",
            'Get more (artificial) data: online_augmentation="default", RareClassAugmenter '
            "for the rare classes, or real images.",
            "Use a smaller model (fewer filters or blocks), and check that the training data "
            "is shuffled.",
        ],
        [best + 1, curves.n],
    )


def _val_rise(val: np.ndarray, t: DiagnosisThresholds) -> tuple[int, float, float, bool]:
    """(best epoch index, rise since then, relative noise, whether it counts as rising).

    The minimum of a noisy curve is biased low, so the rise is read on the 3-epoch moving
    average and must exceed overfit_noise_factor times the epoch-to-epoch noise as well as
    overfit_rise.
    """
    smooth = _smooth(val)
    best = int(np.argmin(smooth))
    rise = float(smooth[-1] / smooth[best] - 1.0) if smooth[best] > 0 else 0.0
    noise = _swing(val) / _SWING_PER_NOISE_STD / max(float(np.median(val)), 1e-12)
    rising = len(val) - 1 - best >= 2 and rise > max(t.overfit_rise, t.overfit_noise_factor * noise)
    return best, rise, noise, rising


def _rule_val_stalled_early(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    val, loss = curves.val_loss, curves.loss
    if _relative_drop(float(val[0]), float(val.min())) < t.stall_tolerance:
        return None  # it never fell: not this symptom
    if _val_rise(val, t)[3]:
        return None  # it turns up again: overfitting, not a stall
    # The stall: the first epoch after which validation loss never improves by more than
    # stall_tolerance again.
    future_best = np.minimum.accumulate(val[::-1])[::-1]
    stalled = future_best >= (1.0 - t.stall_tolerance) * val
    stall = int(np.argmax(stalled))
    if stall > t.stall_fraction * (curves.n - 1) or curves.n - 1 - stall < t.min_epochs - 1:
        return None
    # Relative to the larger loss at the stall, so that a training loss creeping from 0.02
    # to 0.01 under a flat validation loss of 0.3 does not count as "still learning".
    train_drop = float(loss[stall] - loss[-1]) / max(float(loss[stall]), float(val[stall]))
    if train_drop < t.stall_train_drop:
        return None
    return Finding(
        "val_stalled_early",
        "warning",
        f"The validation loss stops improving at epoch {stall + 1} of {curves.n} while the "
        f"training loss falls another {100 * train_drop:.0f}%",
        {
            "stall_epoch": stall + 1,
            "val_loss_at_stall": float(val[stall]),
            "best_val_loss": float(val.min()),
            "train_loss_at_stall": float(loss[stall]),
            "final_loss": float(loss[-1]),
            "train_drop_after_stall": train_drop,
        },
        "The validation loss falls at first and then stops early while the training loss "
        "keeps going down: what the model still learns does not show on this validation set. "
        "The procedure reads this as a validation set that is too small or not representative "
        "of the training data.",
        [
            "Use a larger validation set (raise validation_fraction) drawn with a stratified "
            "split.",
            "Check that the validation images come from the same source and preprocessing as "
            "the training images (analyze_dataset(X_train, y_train, X_test=X_val)).",
            "Judge the model by cross-validation (cross_validate, FoldEnsembleClassifier) "
            "rather than one small split.",
        ],
        [stall + 1, curves.n],
    )


def _rule_train_oscillation(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    tail = _tail(curves.loss)
    if curves.n < t.min_epochs or len(tail) < 4:
        return None
    flips, amplitude, level_change = _oscillation(tail)
    scale = float(curves.loss[0])
    if not (
        flips >= t.oscillation_direction_changes
        and scale > 0
        and amplitude / scale >= t.oscillation_tolerance
    ):
        return None
    if level_change > t.oscillation_trend_factor * amplitude:
        return None  # a noisy curve that still trends downwards
    first = curves.n - len(tail) + 1
    return Finding(
        "train_oscillation",
        "warning",
        f"The training loss oscillates around {tail.mean():.3g} from epoch {first} on "
        "instead of decreasing",
        {
            "level": float(tail.mean()),
            "amplitude": amplitude,
            "relative_amplitude": amplitude / scale,
            "direction_changes": flips,
            **_lr_evidence(curves, curves.n - 1),
        },
        "The training loss neither falls nor settles: it swings up and down around one level. "
        "The procedure reads this as training data that is not representative (batches that "
        "differ too much from each other or from the validation data); a learning rate too "
        "high for the current stage of training does the same.",
        [
            "Shuffle the training data every epoch and stratify the train/validation split.",
            'Lower the learning rate as training goes on: lr_schedule="cosine" or "plateau".',
            "Use a larger batch_size for smoother gradient estimates.",
            "Check that online augmentation is not so strong that batches look unlike the "
            "validation data.",
        ],
        [first, curves.n],
    )


def _rule_val_oscillation(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    tail = _tail(curves.val_loss)
    if len(tail) < 4:
        return None
    flips, amplitude, _ = _oscillation(tail)
    level = float(np.median(tail))
    if not (
        flips >= t.oscillation_direction_changes
        and level > 0
        and amplitude / level >= t.val_oscillation_tolerance
    ):
        return None
    first = curves.n - len(tail) + 1
    return Finding(
        "val_oscillation",
        "warning",
        f"The validation loss swings by about {100 * amplitude / level:.0f}% from epoch to epoch",
        {
            "val_level": level,
            "amplitude": amplitude,
            "relative_amplitude": amplitude / level,
            "direction_changes": flips,
        },
        "Strong epoch-to-epoch swings of the validation loss mean small weight changes move "
        "many validation predictions across the decision boundary. The procedure names two "
        "causes: the batch size (small batches give noisy updates) and inputs that are not "
        "scaled.",
        [
            "Use a larger batch_size (and scale_lr_with_batch=True to keep the rate matched).",
            'Scale the inputs: normalization="scale" or "standardize".',
            'Lower the learning rate or decay it (lr_schedule="cosine"); checkpoint_averaging '
            "smooths the final weights.",
            "A very small validation set swings too: raise validation_fraction.",
        ],
        [first, curves.n],
    )


def _rule_val_below_train(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    # The first epoch's training loss is averaged while the model is still poor, so a lower
    # validation loss there is normal; "throughout" starts at epoch 2.
    loss, val = curves.loss[1:], curves.val_loss[1:]
    below = float(np.mean(val < loss))
    margin = float(np.median((loss - val) / np.maximum(loss, 1e-12)))
    if below < t.val_below_train_share or margin < t.val_below_train_margin:
        return None
    evidence = {"epochs_below": below, "median_relative_margin": margin}
    if curves.accuracy is not None and curves.val_accuracy is not None:
        evidence["final_accuracy"] = float(curves.accuracy[-1])
        evidence["final_val_accuracy"] = float(curves.val_accuracy[-1])
    return Finding(
        "val_below_train",
        "warning",
        f"The validation loss stays below the training loss (by {100 * margin:.0f}% at the "
        "median epoch)",
        evidence,
        "A model should not do better on images it has never seen. The procedure reads this "
        "as a bad split: a validation set that is easier than the training set, or that "
        "shares images with it. It is also expected when heavy regularisation (dropout, L2 "
        "in the loss) or augmentation acts only during training.",
        [
            "Check the split: stratified, random, from the same source; look for images shared "
            "between the sets with analyze_dataset(X_train, y_train, X_test=X_val).",
            "If dropout, l2 or online_augmentation are strong, this can be harmless; lower them "
            "if the model also underfits.",
        ],
        [2, curves.n],
    )


# What to do when the curves cannot show overfitting (no or an incomplete validation set).
_VALIDATION_REMEDIES = [
    "Give a validation set: validation_data=(X_val, y_val), rows preprocessed like the training "
    "rows (in a pipeline: pipeline[:-1].transform(X_val) after fitting), or early_stopping=True "
    '(or checkpoint_selection="best"), which holds out a stratified validation_fraction of the '
    "training images.",
    'With cross-validation or FoldEnsembleClassifier(validation="fold"), use fewer folds, so '
    "that every held-out fold holds images of every class.",
    "Get more images of the smallest classes: a stratified split keeps a class's only image "
    "for training, so a class needs at least two images (more for a small "
    "validation_fraction) to be validated.",
]


def _rule_no_validation(curves: Curves, t: DiagnosisThresholds) -> Finding | None:
    if curves.n < t.min_epochs:
        return None
    if curves.val_loss is None:
        return _no_validation_finding(curves, t)
    if curves.unvalidated_classes:
        return _incomplete_validation_finding(curves)
    return None


def _no_validation_finding(curves: Curves, t: DiagnosisThresholds) -> Finding:
    loss = curves.loss
    evidence: dict[str, Any] = {"n_epochs": curves.n, "final_loss": float(loss[-1])}
    explanation = (
        "Overfitting shows as a validation loss that turns up while the training loss keeps "
        "falling. The run has no validation curve, so the training curves alone cannot tell "
        "a model that learns what generalises from one that memorises its training images: "
        "the overfitting, stalled-validation and validation-oscillation rules did not run."
    )
    if curves.accuracy is not None:
        evidence["final_accuracy"] = float(curves.accuracy[-1])
        reached = np.flatnonzero(curves.accuracy >= t.overfit_accuracy)
        sign = (
            f"training accuracy reached {100 * curves.accuracy[reached[0]]:.0f}% at epoch "
            f"{reached[0] + 1}"
            if reached.size
            else None
        )
    else:
        limit = t.near_zero_loss * (curves.chance if curves.chance is not None else 1.0)
        reached = np.flatnonzero(loss < limit)
        sign = (
            f"the training loss fell to {float(loss[reached[0]]):.3g} at epoch {reached[0] + 1}"
            if reached.size
            else None
        )
    if sign is None:
        return Finding(
            "no_validation",
            "info",
            f"Overfitting cannot be judged: {curves.n} epochs without a validation curve",
            evidence,
            explanation,
            list(_VALIDATION_REMEDIES),
            [],
        )
    evidence["sign_epoch"] = int(reached[0]) + 1
    return Finding(
        "no_validation",
        "warning",
        f"Overfitting cannot be judged, and {sign} without a validation curve: the "
        "procedure's classic overfitting sign",
        evidence,
        "A model that fits every training image is most likely memorising them: the "
        "procedure's first try reached 100% training accuracy and far less on held-out "
        "images. " + explanation,
        [
            *_VALIDATION_REMEDIES,
            "If the validation curve confirms it, regularise: early_stopping=True, dropout, "
            'l2, online_augmentation="default", RareClassAugmenter for the rare classes.',
        ],
        [int(reached[0]) + 1, curves.n],
    )


def _incomplete_validation_finding(curves: Curves) -> Finding:
    missing = curves.unvalidated_classes
    return Finding(
        "validation_incomplete",
        "info",
        f"The validation set has no image of {len(missing)} class(es): overfitting on "
        f"{join_labels(missing)} cannot be judged",
        {"unvalidated_classes": missing},
        "The validation curves say nothing about classes without validation images, and "
        "these are usually the rare classes, which a network memorises first. A stratified "
        "split keeps every class's only image for training.",
        [
            "Give validation_data=(X_val, y_val) with images of every class, preprocessed "
            "like the training rows.",
            *_VALIDATION_REMEDIES[1:],
        ],
        [],
    )


_RULES = (
    _rule_initial_loss,
    _rule_plateau,
    _rule_underfitting,
    _rule_overfitting,
    _rule_val_stalled_early,
    _rule_train_oscillation,
    _rule_val_oscillation,
    _rule_val_below_train,
    _rule_no_validation,
)

# A finding that explains another one more specifically silences it.
_SILENCES = {"plateau": {"underfitting"}}


@validate_params(
    {
        "history": "no_validation",
        "n_classes": [Interval(Integral, 2, None, closed="left"), None],
        "initial_loss": [Interval(Real, 0, None, closed="left"), None],
        "class_priors": ["array-like", None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left"), None],
        "unvalidated_classes": ["array-like", None],
        "thresholds": [DiagnosisThresholds, None],
    },
    prefer_skip_nested_validation=True,
)
def diagnose_history(
    history: Any,
    *,
    n_classes: int | None = None,
    initial_loss: float | None = None,
    class_priors: Any = None,
    label_smoothing: float | None = None,
    unvalidated_classes: Any = None,
    thresholds: DiagnosisThresholds | None = None,
    **threshold_values: float,
) -> list[Finding]:
    """Diagnose a training run from its learning curves.

    Each rule looks for one symptom of the procedure's learning-curve table and, when it
    fires, returns a :class:`Finding` with the epochs and numbers that triggered it, what the
    symptom usually means and what to try. No rule fires on a healthy run: a training loss
    that falls smoothly, a validation loss that falls and then levels off slightly above it,
    accuracies that rise. Rules that read a trend wait for ``min_epochs`` epochs, so one- to
    three-epoch runs (a search's short trials) only get the divergence and initial-loss
    checks. See :ref:`learning_curves` for the rules side by side.

    Parameters
    ----------
    history : dict, keras History, or fitted estimator or pipeline
        Per-epoch lists under ``"loss"`` (required), ``"accuracy"``, ``"val_loss"``,
        ``"val_accuracy"`` and ``"learning_rate"`` (other keys, such as ``"f1_macro"``, are
        ignored; ``"acc"`` and ``"lr"`` are understood). An object with a ``history_``
        attribute (:class:`~skcharclf.KerasCharClassifier`, a pipeline ending in one) or a
        ``history`` attribute (Keras' ``History``) is read through it. From a fitted
        classifier, ``n_classes``, ``initial_loss`` and (with ``bias_init="prior"``)
        ``class_priors`` are taken from ``classes_``, ``initial_loss_`` and
        ``class_priors_`` unless given, and so is ``label_smoothing``; the initial loss only
        when its loss has a known uninformed value (not with focal loss).
    n_classes : int, optional
        Number of classes; the uninformed model's loss is then ln C.
    initial_loss : float, optional
        The training loss before the first update (``initial_loss_`` of the classifier).
    class_priors : array-like, optional
        Class frequencies. With ``bias_init="prior"`` an untrained model predicts the priors,
        so its expected loss is their entropy ``-sum(p * log p)`` instead of ln C.
    label_smoothing : float in [0, 1), optional
        The label smoothing ``e`` of a cross-entropy loss (uniform smoothing). The expected
        initial loss is then the cross-entropy of the smoothed targets,
        ``-sum(((1 - e) * p + e / C) * log p)`` (unchanged for uniform priors). Default: the
        classifier's with ``loss="ce"``, else 0 (the logit-adjusted losses smooth towards
        the priors, which leaves the expected loss unchanged).
    unvalidated_classes : array-like, optional
        Classes that have no image in the validation set (``unvalidated_classes_`` of the
        classifier, read from it by default). With validation curves and at least one such
        class, a ``"validation_incomplete"`` finding says that overfitting on them cannot be
        judged.
    thresholds : DiagnosisThresholds, optional
        When each rule fires; default: ``DiagnosisThresholds()``. See
        :class:`DiagnosisThresholds` for what each threshold means and its default.
    **threshold_values
        Any field of :class:`DiagnosisThresholds` by name (``min_epochs=6``,
        ``overfit_rise=0.2``, ...): replaces that field of ``thresholds``.

    Returns
    -------
    findings : list of Finding
        Most severe first; empty for a healthy run. Codes: ``"divergence"`` (error),
        ``"initial_loss"``, ``"plateau"``, ``"underfitting"``, ``"overfitting"``,
        ``"val_stalled_early"``, ``"train_oscillation"``, ``"val_oscillation"``,
        ``"val_below_train"`` (warnings); ``"no_validation"`` (info: without validation
        curves overfitting cannot be judged; a warning when the training accuracy reaches
        ``overfit_accuracy`` anyway, or, without accuracies, the loss falls below
        ``near_zero_loss`` (5%) of the uninformed loss: the procedure's classic overfitting
        sign) and
        ``"validation_incomplete"`` (info: see ``unvalidated_classes``). A diverged run gets
        only the divergence and initial-loss findings, whose causes come first.

    See Also
    --------
    format_findings : Print the findings.
    DiagnosisThresholds : When each rule fires.
    sanity_check : Check the initial loss and that the model can learn at all.

    Examples
    --------
    >>> from skcharclf.diagnostics import diagnose_history
    >>> history = {
    ...     "loss": [2.3, 2.3, 2.3, 2.3, 2.3, 2.3],
    ...     "accuracy": [0.1, 0.1, 0.11, 0.1, 0.1, 0.11],
    ... }
    >>> [finding.code for finding in diagnose_history(history, n_classes=10)]
    ['plateau', 'no_validation']
    """
    if class_priors is not None and n_classes is not None and len(class_priors) != n_classes:
        raise ValueError(f"class_priors has {len(class_priors)} entries but n_classes={n_classes}.")
    thresholds = _resolve_thresholds(thresholds, threshold_values)
    curves = build_curves(
        history, n_classes, initial_loss, class_priors, label_smoothing, unvalidated_classes
    )
    if curves.n == 0:
        return []
    divergence = _rule_divergence(curves, thresholds)
    if divergence is not None:
        initial = _rule_initial_loss(curves, thresholds)
        return [divergence] + ([initial] if initial is not None else [])
    findings = [f for f in (rule(curves, thresholds) for rule in _RULES) if f is not None]
    silenced = set().union(*(_SILENCES.get(f.code, set()) for f in findings))
    findings = [f for f in findings if f.code not in silenced]
    return by_severity(findings)


def _resolve_thresholds(
    thresholds: DiagnosisThresholds | None, values: dict[str, Any]
) -> DiagnosisThresholds:
    """``thresholds`` (default: the defaults) with the fields named in ``values`` replaced."""
    known = {f.name for f in dataclasses.fields(DiagnosisThresholds)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(
            f"diagnose_history() got unexpected keyword argument(s) {unknown}; the thresholds "
            f"it takes by name are the fields of DiagnosisThresholds: {sorted(known)}."
        )
    base = DiagnosisThresholds() if thresholds is None else thresholds
    return dataclasses.replace(base, **values) if values else base
