"""Read the data set and the learning curves the way the procedure does, with evidence.

Three tools turn the judgement calls of the procedure into code:

* :func:`analyze_dataset` reads a data set: class balance, image sizes, polarity, noise,
  duplicates and train/test leakage, and recommends the pipeline steps that answer what it
  finds, each recommendation with the numbers that triggered it.
* :func:`diagnose_history` reads a training history (per-epoch loss and accuracy) and reports
  the symptoms of the procedure's learning-curve table: overfitting, underfitting, plateaus,
  divergence, oscillation, a stalled or too-easy validation set, a wrong initial loss.
* :func:`sanity_check` runs the two checks that catch a broken model before a long training
  run: the loss before training is that of an uninformed model, and the model can learn a
  small subset by heart.

Observations are :class:`Finding` objects: a code, a severity, the evidence (numbers), an
explanation and remedies. Epochs are counted from 1, as Keras prints them: epoch ``e`` is
entry ``e - 1`` of the history lists, and epoch 0 is the model before training.
"""

from __future__ import annotations

import hashlib
import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any

import cv2
import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_random_state, column_or_1d

from .._images import (
    as_uint8,
    check_flat_batch,
    check_image_batch,
    is_flat_batch,
    unflatten,
)

__all__ = [
    "DatasetReport",
    "Finding",
    "NoValidationWarning",
    "SanityCheck",
    "SanityReport",
    "analyze_dataset",
    "diagnose_history",
    "format_findings",
    "sanity_check",
]

_SEVERITIES = ("error", "warning", "info")
_WIDTH = 92  # text width of the printed reports


# --------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------


class NoValidationWarning(UserWarning):
    """Training ran without a validation set, or with one that lacks some classes.

    :class:`~skcharclf.KerasCharClassifier` warns this once per ``fit`` (of at least four
    epochs, the length the learning-curve diagnosis needs): its curves then cannot show
    overfitting (on the missing classes). The same fact is the ``"no_validation"`` or
    ``"validation_incomplete"`` finding of :func:`diagnose_history` in ``diagnosis_``, with
    what to do. To train without validation on purpose, filter it::

        warnings.filterwarnings("ignore", category=NoValidationWarning)
    """



@dataclass
class Finding:
    """One observation about a training run or a data set, with its evidence and remedies.

    Parameters
    ----------
    code : str
        A stable identifier of the rule that fired, e.g. ``"overfitting"``.
    severity : {"info", "warning", "error"}
        ``"error"``: the run is broken (diverged); ``"warning"``: a problem worth acting
        on; ``"info"``: worth knowing, usually handled by the default pipeline.
    title : str
        One line saying what was seen.
    evidence : dict
        The numbers behind the finding (floats, ints, or short lists of labels or indices).
    explanation : str
        What the symptom usually means.
    remedies : list of str
        What to try, most likely first.
    epochs : list of int
        The epochs the finding points at, counted from 1 (entry ``e - 1`` of the history
        lists); 0 is the model before training. Empty for data-set findings.

    See Also
    --------
    diagnose_history : Learning-curve findings.
    analyze_dataset : Data-set findings (the ``recommendations`` of the report).
    format_findings : Print a list of findings.

    Examples
    --------
    >>> from skcharclf.diagnostics import Finding
    >>> finding = Finding("plateau", "warning", "The loss does not move", {"loss_drop": 0.01})
    >>> print(finding)
    [warning] plateau: The loss does not move
      evidence: loss_drop=0.01
    """

    code: str
    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    remedies: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in _SEVERITIES:
            raise ValueError(f"severity must be one of {list(_SEVERITIES)}, got {self.severity!r}.")

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.code}: {self.title}"]
        if self.epochs:
            lines.append(f"  epochs: {_epoch_span(self.epochs)}")
        if self.evidence:
            evidence = ", ".join(f"{k}={_format_value(v)}" for k, v in self.evidence.items())
            lines.append(_wrap(f"evidence: {evidence}", "  ", "    "))
        if self.explanation:
            lines.append(_wrap(self.explanation, "  ", "  "))
        if self.remedies:
            lines.append("  what to try:")
            lines += [_wrap(remedy, "    - ", "      ") for remedy in self.remedies]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-serialisable dict (non-finite numbers become ``None``)."""
        return _to_builtin(asdict(self))


def format_findings(findings: Sequence[Finding]) -> str:
    """Format findings for printing, most severe first.

    Parameters
    ----------
    findings : sequence of Finding
        What :func:`diagnose_history` returns, or a report's ``recommendations``.

    Returns
    -------
    text : str
        One numbered block per finding, or a one-line all-clear.

    Examples
    --------
    >>> from skcharclf.diagnostics import diagnose_history, format_findings
    >>> curves = {"loss": [2.0, 1.2, 0.8, 0.6, 0.5], "val_loss": [2.1, 1.3, 0.9, 0.7, 0.6]}
    >>> print(format_findings(diagnose_history(curves)))
    No findings: the learning curves show none of the symptoms the diagnosis looks for.
    """
    if not findings:
        return "No findings: the learning curves show none of the symptoms the diagnosis looks for."
    ordered = sorted(findings, key=lambda f: _SEVERITIES.index(f.severity))
    return "\n\n".join(f"{k}. {finding}" for k, finding in enumerate(ordered, start=1))


def _epoch_span(epochs: Sequence[int]) -> str:
    if len(epochs) == 2 and epochs[1] > epochs[0] + 1:
        return f"{epochs[0]}-{epochs[1]}"
    return ", ".join(str(e) for e in epochs)


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text, width=_WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (Real, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [_format_value(v) for v in list(value)[:10]]
        return "[" + ", ".join(items) + (", ..." if len(value) > 10 else "") + "]"
    return str(value)


def _to_builtin(value: Any) -> Any:
    """Convert numpy scalars/arrays and nested containers to JSON-ready Python objects."""
    if isinstance(value, Mapping):
        return {_to_builtin(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_to_builtin(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (Real, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.str_):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Learning-curve diagnosis
# --------------------------------------------------------------------------------------------

# Other spellings Keras and older code use for the same curves.
_ALIASES = {
    "accuracy": ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy"),
    "learning_rate": ("learning_rate", "lr"),
}


@dataclass
class _Curves:
    """A history as float arrays of equal length, plus what is known about the model."""

    loss: np.ndarray
    accuracy: np.ndarray | None
    val_loss: np.ndarray | None
    val_accuracy: np.ndarray | None
    learning_rate: np.ndarray | None
    chance: float | None  # the loss of a model that predicts the class priors
    initial_loss: float | None
    unvalidated_classes: list | None = None  # classes without a validation sample

    @property
    def n(self) -> int:
        return len(self.loss)


@dataclass(frozen=True)
class _Thresholds:
    min_epochs: int
    divergence_factor: float
    initial_loss_tolerance: float
    plateau_tolerance: float
    underfit_accuracy: float
    overfit_accuracy: float
    overfit_rise: float
    overfit_gap: float
    stall_fraction: float
    stall_tolerance: float
    stall_train_drop: float
    oscillation_tolerance: float
    val_oscillation_tolerance: float
    val_below_train_margin: float


def _history_source(history: Any) -> tuple[Mapping, Any]:
    """The history mapping of ``history`` and the estimator it came from (or None)."""
    if isinstance(history, Mapping):
        return history, None
    estimator = history
    if hasattr(estimator, "steps"):  # a pipeline: its final step holds the history
        estimator = estimator.steps[-1][1]
    for attribute in ("history_", "history"):
        record = getattr(estimator, attribute, None)
        if isinstance(record, Mapping):
            return record, estimator
    raise TypeError(
        "history must be a dict of per-epoch lists, a Keras History (with .history) or a "
        f"fitted estimator or pipeline with .history_; got {type(history).__name__}."
    )


def _curve(record: Mapping, key: str, n: int | None) -> np.ndarray | None:
    for name in _ALIASES.get(key, (key,)):
        if record.get(name) is None:
            continue
        values = np.asarray(record[name], dtype=float).ravel()
        if len(values) or key == "loss":  # an empty optional curve counts as absent
            if n is not None and len(values) != n:
                raise ValueError(
                    f"history[{name!r}] has {len(values)} entries but history['loss'] has {n}; "
                    "every curve needs one value per epoch."
                )
            return values
    return None


def _expected_initial_loss(
    n_classes: int | None, class_priors: Any, label_smoothing: float = 0.0
) -> float | None:
    """Cross-entropy of a model that predicts the class priors (ln C when uniform).

    With label smoothing ``e`` the targets are ``(1 - e) * one_hot + e / C``, so the expected
    loss of that model is ``-sum(((1 - e) * p + e / C) * log p)``; for uniform priors it is
    still ln C.
    """
    if class_priors is not None:
        priors = np.asarray(class_priors, dtype=float).ravel()
        if priors.size < 2 or np.any(priors < 0) or priors.sum() <= 0:
            raise ValueError(
                "class_priors must hold one non-negative frequency per class (at least two "
                f"classes), got {class_priors!r}."
            )
        priors = priors / priors.sum()
        priors = priors[priors > 0]
        targets = (1.0 - label_smoothing) * priors + label_smoothing / priors.size
        return float(-(targets * np.log(priors)).sum())
    if n_classes is not None:
        return math.log(n_classes)
    return None


def _initial_loss_reference(params: dict[str, Any]) -> tuple[bool, float]:
    """Whether a classifier with these parameters has a known uninformed loss, and the
    uniform label smoothing that shifts it.

    Cross-entropy has one; the logit-adjusted losses too when the bias starts at the log
    priors. Only cross-entropy smooths towards the uniform distribution: the adjusted losses
    smooth towards the priors, which leaves the reference as it is.
    """
    loss = params.get("loss", "ce")
    comparable = loss == "ce" or (
        loss in ("logit_adjusted", "balanced_softmax") and params.get("bias_init") == "prior"
    )
    smoothing = float(params.get("label_smoothing", 0.0) or 0.0) if loss == "ce" else 0.0
    return comparable, smoothing


def _estimator_context(estimator: Any) -> dict[str, Any]:
    """What a fitted classifier knows that the diagnosis can use.

    The loss of an uninformed model is ln C for cross-entropy from zero biases, and the
    entropy of the class priors (``class_priors_``) when the biases start at the log
    priors, for cross-entropy and for the logit-adjusted and balanced-softmax losses (which
    add the log priors themselves); label smoothing of the cross-entropy shifts it by a known
    amount (the adjusted losses smooth towards the priors, which does not). Focal loss
    changes it: the initial-loss rule is then skipped. This mirrors ``KerasCharClassifier``'s
    own diagnosis.
    """
    if estimator is None:
        return {}
    context: dict[str, Any] = {}
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        context["n_classes"] = len(classes)
    unvalidated = getattr(estimator, "unvalidated_classes_", None)
    if unvalidated is not None:
        context["unvalidated_classes"] = unvalidated
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    prior_bias = params.get("bias_init") == "prior"
    priors = getattr(estimator, "class_priors_", None)
    if prior_bias and priors is None:
        return context  # the reference is the prior entropy, but the priors are unknown
    if prior_bias:
        context["class_priors"] = priors
    comparable, smoothing = _initial_loss_reference(params)
    initial = getattr(estimator, "initial_loss_", None)
    if initial is not None and comparable:
        context["initial_loss"] = float(initial)
        context["label_smoothing"] = smoothing
    return context


def _build_curves(
    history: Any,
    n_classes: int | None,
    initial_loss: float | None,
    class_priors: Any,
    label_smoothing: float | None = None,
    unvalidated_classes: Any = None,
) -> _Curves:
    record, estimator = _history_source(history)
    context = _estimator_context(estimator)
    loss = _curve(record, "loss", None)
    if loss is None:
        raise ValueError(
            "history has no 'loss' entry; it must map 'loss' (and optionally 'accuracy', "
            "'val_loss', 'val_accuracy', 'learning_rate') to per-epoch lists."
        )
    n = len(loss)
    if n_classes is None:
        n_classes = context.get("n_classes")
    if initial_loss is None:
        initial_loss = context.get("initial_loss")
    if class_priors is None:
        class_priors = context.get("class_priors")
    if label_smoothing is None:
        label_smoothing = context.get("label_smoothing", 0.0)
    if unvalidated_classes is None:
        unvalidated_classes = context.get("unvalidated_classes")
    return _Curves(
        loss=loss,
        accuracy=_curve(record, "accuracy", n),
        val_loss=_curve(record, "val_loss", n),
        val_accuracy=_curve(record, "val_accuracy", n),
        learning_rate=_curve(record, "learning_rate", n),
        chance=_expected_initial_loss(n_classes, class_priors, label_smoothing),
        initial_loss=None if initial_loss is None else float(initial_loss),
        unvalidated_classes=None
        if unvalidated_classes is None
        else [_label(c) for c in np.asarray(unvalidated_classes, dtype=object).ravel()],
    )


def _lr_evidence(curves: _Curves, index: int = 0) -> dict[str, float]:
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
    return 0.75 * float(np.std(residual))


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


def _rule_divergence(curves: _Curves, t: _Thresholds) -> Finding | None:
    loss, val = curves.loss, curves.val_loss
    bad = ~np.isfinite(loss) if val is None else ~(np.isfinite(loss) & np.isfinite(val))
    remedies = [
        "Lower learning_rate by a factor of 10 (Adam usually trains well at 1e-3 or below).",
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


def _rule_initial_loss(curves: _Curves, t: _Thresholds) -> Finding | None:
    if curves.initial_loss is None or curves.chance is None:
        return None
    return _initial_loss_finding(curves.initial_loss, curves.chance, t.initial_loss_tolerance)


def _initial_loss_finding(initial: float, expected: float, tolerance: float) -> Finding | None:
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


def _is_fitted(curves: _Curves, t: _Thresholds) -> bool:
    """Whether training already reached a low loss / high accuracy (then flat is fine)."""
    if curves.accuracy is not None:
        return bool(curves.accuracy[-1] >= t.underfit_accuracy)
    if curves.chance is not None:
        return bool(curves.loss.min() < 0.5 * curves.chance)
    return False


def _rule_plateau(curves: _Curves, t: _Thresholds) -> Finding | None:
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
            'lr_schedule="onecycle", which ramps the rate up first.',
            "Check the initialisation: He for ReLU layers, zero_init_residual=True, Glorot for "
            "the output layer (the model builder's defaults).",
            "Check that images and labels stay aligned after shuffling and that the inputs are "
            'scaled (normalization="scale").',
        ],
        [1, curves.n],
    )


def _rule_underfitting(curves: _Curves, t: _Thresholds) -> Finding | None:
    if curves.n < t.min_epochs:
        return None
    k = min(3, curves.n)
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
        low = evidence["final_loss"] > 0.5 * curves.chance and (
            curves.val_loss is None or evidence["final_val_loss"] > 0.5 * curves.chance
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
    still_learning = recent_drop > 0.1
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


def _rule_overfitting(curves: _Curves, t: _Thresholds) -> Finding | None:
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


def _val_rise(val: np.ndarray, t: _Thresholds) -> tuple[int, float, float, bool]:
    """(best epoch index, rise since then, relative noise, whether it counts as rising).

    The minimum of a noisy curve is biased low, so the rise is read on the 3-epoch moving
    average and must exceed three times the epoch-to-epoch noise as well as overfit_rise.
    """
    smooth = _smooth(val)
    best = int(np.argmin(smooth))
    rise = float(smooth[-1] / smooth[best] - 1.0) if smooth[best] > 0 else 0.0
    noise = _swing(val) / 0.6 / max(float(np.median(val)), 1e-12)
    rising = len(val) - 1 - best >= 2 and rise > max(t.overfit_rise, 3 * noise)
    return best, rise, noise, rising


def _rule_val_stalled_early(curves: _Curves, t: _Thresholds) -> Finding | None:
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


def _rule_train_oscillation(curves: _Curves, t: _Thresholds) -> Finding | None:
    tail = _tail(curves.loss)
    if curves.n < t.min_epochs or len(tail) < 4:
        return None
    flips, amplitude, level_change = _oscillation(tail)
    scale = float(curves.loss[0])
    if not (flips >= 0.5 and scale > 0 and amplitude / scale >= t.oscillation_tolerance):
        return None
    if level_change > 2 * amplitude:
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


def _rule_val_oscillation(curves: _Curves, t: _Thresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    tail = _tail(curves.val_loss)
    if len(tail) < 4:
        return None
    flips, amplitude, _ = _oscillation(tail)
    level = float(np.median(tail))
    if not (flips >= 0.5 and level > 0 and amplitude / level >= t.val_oscillation_tolerance):
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


def _rule_val_below_train(curves: _Curves, t: _Thresholds) -> Finding | None:
    if curves.val_loss is None or curves.n < t.min_epochs:
        return None
    # The first epoch's training loss is averaged while the model is still poor, so a lower
    # validation loss there is normal; "throughout" starts at epoch 2.
    loss, val = curves.loss[1:], curves.val_loss[1:]
    below = float(np.mean(val < loss))
    margin = float(np.median((loss - val) / np.maximum(loss, 1e-12)))
    if below < 0.9 or margin < t.val_below_train_margin:
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
# Without accuracies, a training loss below this fraction of the uninformed loss (or, with no
# reference, below this value) counts as "fallen towards 0".
_NEAR_ZERO_LOSS = 0.05


def _rule_no_validation(curves: _Curves, t: _Thresholds) -> Finding | None:
    if curves.n < t.min_epochs:
        return None
    if curves.val_loss is None:
        return _no_validation_finding(curves, t)
    if curves.unvalidated_classes:
        return _incomplete_validation_finding(curves)
    return None


def _no_validation_finding(curves: _Curves, t: _Thresholds) -> Finding:
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
        limit = _NEAR_ZERO_LOSS * (curves.chance if curves.chance is not None else 1.0)
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


def _incomplete_validation_finding(curves: _Curves) -> Finding:
    missing = curves.unvalidated_classes
    return Finding(
        "validation_incomplete",
        "info",
        f"The validation set has no image of {len(missing)} class(es): overfitting on "
        f"{_format_labels(missing)} cannot be judged",
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
        "min_epochs": [Interval(Integral, 2, None, closed="left")],
        "divergence_factor": [Interval(Real, 1, None, closed="neither")],
        "initial_loss_tolerance": [Interval(Real, 0, None, closed="neither")],
        "plateau_tolerance": [Interval(Real, 0, 1, closed="neither")],
        "underfit_accuracy": [Interval(Real, 0, 1, closed="both")],
        "overfit_accuracy": [Interval(Real, 0, 1, closed="both")],
        "overfit_rise": [Interval(Real, 0, None, closed="left")],
        "overfit_gap": [Interval(Real, 0, 1, closed="both")],
        "stall_fraction": [Interval(Real, 0, 1, closed="right")],
        "stall_tolerance": [Interval(Real, 0, 1, closed="neither")],
        "stall_train_drop": [Interval(Real, 0, 1, closed="neither")],
        "oscillation_tolerance": [Interval(Real, 0, None, closed="neither")],
        "val_oscillation_tolerance": [Interval(Real, 0, None, closed="neither")],
        "val_below_train_margin": [Interval(Real, 0, None, closed="left")],
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
    min_epochs: int = 4,
    divergence_factor: float = 2.0,
    initial_loss_tolerance: float = 0.5,
    plateau_tolerance: float = 0.05,
    underfit_accuracy: float = 0.8,
    overfit_accuracy: float = 0.98,
    overfit_rise: float = 0.1,
    overfit_gap: float = 0.1,
    stall_fraction: float = 0.34,
    stall_tolerance: float = 0.1,
    stall_train_drop: float = 0.5,
    oscillation_tolerance: float = 0.05,
    val_oscillation_tolerance: float = 0.2,
    val_below_train_margin: float = 0.1,
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
    min_epochs : int, default=4
        Epochs a trend rule needs before it may fire.
    divergence_factor : float, default=2.0
        ``"divergence"``: the loss jumps above this multiple of its best value so far (and
        above its first value), or ends above this multiple of the uninformed loss. NaN or
        infinite losses always count.
    initial_loss_tolerance : float, default=0.5
        ``"initial_loss"``: the initial loss may differ from the uninformed loss by this
        fraction of it.
    plateau_tolerance : float, default=0.05
        ``"plateau"``: fires when the best training loss is less than this fraction below
        the starting loss (``initial_loss``, else the first epoch's), and the model is not
        already fitted (final accuracy below ``underfit_accuracy``).
    underfit_accuracy : float, default=0.8
        ``"underfitting"``: the mean training (and validation) accuracy of the last three
        epochs is below this. Without accuracies: the loss stays above half the uninformed
        loss.
    overfit_accuracy : float, default=0.98
        ``"overfitting"``: training accuracy counted as "near 100%".
    overfit_rise : float, default=0.1
        ``"overfitting"``: the validation loss (3-epoch moving average) ends more than this
        fraction, and more than three times its epoch-to-epoch noise, above its minimum,
        while the training loss keeps falling.
    overfit_gap : float, default=0.1
        ``"overfitting"``: with training accuracy at least ``overfit_accuracy``, the
        validation accuracy is lower by at least this much.
    stall_fraction : float, default=0.34
        ``"val_stalled_early"``: the validation loss stops improving within this fraction of
        the run.
    stall_tolerance : float, default=0.1
        ``"val_stalled_early"``: "stops improving" means it never again gets more than this
        fraction lower (and does not turn up, which is overfitting).
    stall_train_drop : float, default=0.5
        ``"val_stalled_early"``: after the stall, the training loss still falls by at least
        this fraction of the larger of the two losses at the stall.
    oscillation_tolerance : float, default=0.05
        ``"train_oscillation"``: after the first third of the run, the training loss swings
        from epoch to epoch (the amplitude ``a`` of a zigzag ``level +/- a``, measured
        around its 3-epoch moving average) by at least this fraction of the first epoch's
        loss, changing direction at least every other epoch, with no clear downward trend.
    val_oscillation_tolerance : float, default=0.2
        ``"val_oscillation"``: the same for the validation loss, relative to its median
        level.
    val_below_train_margin : float, default=0.1
        ``"val_below_train"``: from epoch 2 on, the validation loss is below the training
        loss in at least 90% of the epochs, by at least this fraction at the median epoch.

    Returns
    -------
    findings : list of Finding
        Most severe first; empty for a healthy run. Codes: ``"divergence"`` (error),
        ``"initial_loss"``, ``"plateau"``, ``"underfitting"``, ``"overfitting"``,
        ``"val_stalled_early"``, ``"train_oscillation"``, ``"val_oscillation"``,
        ``"val_below_train"`` (warnings); ``"no_validation"`` (info: without validation
        curves overfitting cannot be judged; a warning when the training accuracy reaches
        ``overfit_accuracy`` anyway, or, without accuracies, the loss falls below 5% of the
        uninformed loss: the procedure's classic overfitting sign) and
        ``"validation_incomplete"`` (info: see ``unvalidated_classes``). A diverged run gets
        only the divergence and initial-loss findings, whose causes come first.

    See Also
    --------
    format_findings : Print the findings.
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
    thresholds = _Thresholds(
        min_epochs=min_epochs,
        divergence_factor=divergence_factor,
        initial_loss_tolerance=initial_loss_tolerance,
        plateau_tolerance=plateau_tolerance,
        underfit_accuracy=underfit_accuracy,
        overfit_accuracy=overfit_accuracy,
        overfit_rise=overfit_rise,
        overfit_gap=overfit_gap,
        stall_fraction=stall_fraction,
        stall_tolerance=stall_tolerance,
        stall_train_drop=stall_train_drop,
        oscillation_tolerance=oscillation_tolerance,
        val_oscillation_tolerance=val_oscillation_tolerance,
        val_below_train_margin=val_below_train_margin,
    )
    curves = _build_curves(
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
    return sorted(findings, key=lambda f: _SEVERITIES.index(f.severity))


# --------------------------------------------------------------------------------------------
# Dataset analysis
# --------------------------------------------------------------------------------------------

# A pixel counts as isolated (salt-and-pepper) when it differs from the median of its 3x3
# neighbourhood by more than this (on a 0-1 scale), resembles at most one of its eight
# neighbours and is the brightest or darkest of its neighbourhood. Salt on a light background
# is only ~0.1-0.3 brighter, hence the low value. The second condition keeps thin strokes,
# stroke ends and corners (two or more similar neighbours) out of the count, the third the
# intermediate pixels of anti-aliased or interpolated edges: clean characters score ~0.
_ISOLATED_DELTA = 0.2
# Near-duplicate thumbnails: padded to a square (keeping the aspect ratio), 12x12, after a
# 3x3 median filter, so re-encoded, re-scaled or lightly noised copies still match.
_THUMB_SIDE = 12
_CHUNK = 2048  # rows per block of the thumbnail similarity matrix


@dataclass
class _ImageFeatures:
    """Per-image statistics of one image batch."""

    heights: np.ndarray
    widths: np.ndarray
    mean_intensity: np.ndarray  # 0-1
    background: np.ndarray  # 0-1, median of the border
    isolated_fraction: np.ndarray
    laplacian_variance: np.ndarray
    hashes: list[bytes]
    thumbnails: np.ndarray  # (n, side*side), zero mean and unit norm (zero for blank images)


def _image_features(images: list[np.ndarray]) -> _ImageFeatures:
    """Compute every per-image statistic, vectorised over the images of each size."""
    n = len(images)
    # Each image in its own working dtype: uint8 (0-255) or float32 (0-1).
    scales = np.array([255.0 if im.dtype == np.uint8 else 1.0 for im in images], np.float32)
    heights = np.array([im.shape[0] for im in images])
    widths = np.array([im.shape[1] for im in images])
    hashes = [_image_hash(im) for im in images]
    background = np.empty(n)
    mean = np.empty(n)
    isolated = np.zeros(n)
    laplacian = np.zeros(n)
    thumbnails = np.zeros((n, _THUMB_SIDE * _THUMB_SIDE), dtype=np.float32)
    sizes: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        sizes.setdefault(im.shape, []).append(i)
    for index in sizes.values():
        stack = np.stack([images[i] for i in index]).astype(np.float32)
        stack /= scales[index, None, None]
        background[index] = _border_median(stack)
        # Bright ink on dark, as ImageResizer(polarity="auto") makes it, so that an inverted
        # copy of an image still matches and thumbnails compare ink with ink.
        stack = np.where(background[index, None, None] > 0.5, 1.0 - stack, stack)
        mean[index] = stack.mean(axis=(1, 2))
        median = _median3(stack)
        isolated[index], laplacian[index] = _noise_statistics(stack, median)
        thumbnails[index] = _thumbnails(median)
    return _ImageFeatures(
        heights, widths, mean, background, isolated, laplacian, hashes, thumbnails
    )


def _border_median(stack: np.ndarray) -> np.ndarray:
    """:func:`~skcharclf._images.estimate_background` of each image of a (k, H, W) stack.

    The same definition, computed for a whole stack at once: one call per image costs
    more than all the other statistics together.
    """
    k, h, w = stack.shape
    if h <= 2 or w <= 2:
        return np.median(stack.reshape(k, -1), axis=1)
    border = np.concatenate(
        [stack[:, 0], stack[:, -1], stack[:, 1:-1, 0], stack[:, 1:-1, -1]], axis=1
    )
    return np.median(border, axis=1)


def _image_hash(image: np.ndarray) -> bytes:
    """A digest of the size and the 8-bit pixels: equal for byte-identical images."""
    digest = hashlib.blake2b(np.array(image.shape, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(as_uint8(image)).tobytes())
    return digest.digest()


def _median3(stack: np.ndarray) -> np.ndarray:
    """3x3 median of each image of a (k, H, W) stack.

    The stack is filtered as one tall image: only the first and last row of each image see
    their neighbour image, and the statistics below use interior pixels only.
    """
    k, h, w = stack.shape
    if h < 3 or w < 3:
        return stack.copy()
    return cv2.medianBlur(np.ascontiguousarray(stack).reshape(k * h, w), 3).reshape(k, h, w)


def _noise_statistics(stack: np.ndarray, median: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isolated-pixel fraction and Laplacian variance of each image (interior pixels)."""
    k, h, w = stack.shape
    if h < 3 or w < 3:
        return np.zeros(k), np.zeros(k)
    centre = stack[:, 1:-1, 1:-1]
    neighbours = [
        stack[:, dy : dy + h - 2, dx : dx + w - 2]
        for dy in (0, 1, 2)
        for dx in (0, 1, 2)
        if (dy, dx) != (1, 1)
    ]
    similar = sum((np.abs(centre - n) <= _ISOLATED_DELTA).astype(np.int8) for n in neighbours)
    extreme = (centre >= np.maximum.reduce(neighbours)) | (centre <= np.minimum.reduce(neighbours))
    isolated = (np.abs(centre - median[:, 1:-1, 1:-1]) > _ISOLATED_DELTA) & (similar <= 1) & extreme
    laplacian = (
        stack[:, :-2, 1:-1]
        + stack[:, 2:, 1:-1]
        + stack[:, 1:-1, :-2]
        + stack[:, 1:-1, 2:]
        - 4.0 * centre
    )
    return isolated.mean(axis=(1, 2)), laplacian.var(axis=(1, 2))


def _thumbnails(stack: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm 12x12 thumbnails of a (k, H, W) stack padded to squares."""
    k, h, w = stack.shape
    side = max(h, w)
    square = np.zeros((k, side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[:, top : top + h, left : left + w] = stack
    area = _area_weights(side, _THUMB_SIDE)
    thumbs = (area @ square @ area.T).reshape(k, -1)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(thumbs, axis=1, keepdims=True)
    return np.divide(thumbs, norms, out=np.zeros_like(thumbs), where=norms > 1e-6)


def _area_weights(source: int, target: int) -> np.ndarray:
    """The (target, source) matrix of area resampling (what cv2.INTER_AREA does per axis).

    Output pixel i averages the input interval [i, i + 1) * source / target, each input
    pixel weighted by its overlap; one matrix product resizes a whole stack at once.
    """
    edges = np.arange(target + 1) * (source / target)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _similar_pairs(thumbnails: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of thumbnails whose correlation reaches ``threshold``."""
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(thumbnails), _CHUNK):
        # Only the upper triangle: rows start.., columns from start on.
        block = thumbnails[start : start + _CHUNK] @ thumbnails[start:].T
        hits = block >= threshold
        candidates = np.flatnonzero(hits.sum(axis=1) > 1)  # the diagonal always hits
        rows, cols = np.nonzero(hits[candidates])
        rows, cols = candidates[rows] + start, cols + start
        keep = cols > rows
        pairs += zip(rows[keep].tolist(), cols[keep].tolist(), strict=True)
    return pairs


def _groups_of(pairs: list[tuple[int, int]], n: int) -> list[list[int]]:
    """Connected groups (size >= 2) of the graph the pairs draw on n nodes."""
    if not pairs:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = np.array(pairs).T
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for node in np.unique(np.concatenate([rows, cols])).tolist():
        members.setdefault(int(labels[node]), []).append(node)
    return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


def _as_images(X: Any, image_shape: Any, name: str) -> list[np.ndarray]:
    """An image batch (ragged list, 3D, 4D) or a flat batch as a list of 2D images."""
    if is_flat_batch(X):
        flat, shape = check_flat_batch(np.asarray(X), image_shape)
        return list(unflatten(flat, shape))
    try:
        return list(check_image_batch(X, dense=False))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "min": float(values.min()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }


def _label(value: Any) -> Any:
    """A class label as a plain Python value (for dict keys and printing)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class DatasetReport:
    """What :func:`analyze_dataset` found in a data set.

    Per-class values are dicts keyed by class label, in the order of the sorted labels.

    Attributes
    ----------
    n_samples : int
        Number of images.
    class_counts : dict
        Images per class.
    imbalance_ratio : float
        Largest class count over smallest.
    rare_classes : list
        Classes with fewer than ``rare_threshold`` times the largest class's images.
    tiny_classes : list
        Classes with fewer than ``min_class_size`` images.
    height, width, aspect_ratio : dict
        ``{"min", "median", "max"}`` of image heights, widths and width / height.
    n_sizes : int
        Number of distinct (height, width) sizes; more than one means a ragged batch.
    mean_intensity : float
        Mean pixel value (0-1) after bringing every image to bright ink on dark.
    dark_on_light_fraction : float
        Share of images whose border is light (median > 0.5): dark ink on light paper.
    isolated_pixel_fraction : float
        Mean share of isolated pixels (salt-and-pepper noise) per image.
    isolated_pixel_fraction_by_class : dict
        The same per class.
    laplacian_variance : float
        Median variance of the 4-neighbour Laplacian (0-1 scale): grows with fine noise and
        sharp edges, shrinks with blur.
    laplacian_variance_by_class : dict
        The same per class.
    exact_duplicate_groups : list of list of int
        Indices of byte-identical images (same size, same 8-bit pixels), one list per group.
    conflicting_label_groups : list of list of int
        Exact-duplicate groups whose images carry different labels.
    near_duplicate_groups : list of list of int
        Images that are near copies (thumbnail correlation at least
        ``near_duplicate_correlation``) but not byte-identical; an exact-duplicate group
        takes part through its first image.
    n_test_samples : int or None
        Number of images of ``X_test``, if given.
    test_exact_duplicates : list of (int, int)
        ``(test index, train index)`` of test images identical to a training image.
    test_near_duplicates : list of (int, int)
        ``(test index, train index)`` of the other test images that nearly copy one.
    recommendations : list of Finding
        What to do about it, each with the evidence that triggered it.
    """

    n_samples: int
    class_counts: dict[Any, int]
    imbalance_ratio: float
    rare_classes: list[Any]
    tiny_classes: list[Any]
    height: dict[str, float]
    width: dict[str, float]
    aspect_ratio: dict[str, float]
    n_sizes: int
    mean_intensity: float
    dark_on_light_fraction: float
    isolated_pixel_fraction: float
    isolated_pixel_fraction_by_class: dict[Any, float]
    laplacian_variance: float
    laplacian_variance_by_class: dict[Any, float]
    exact_duplicate_groups: list[list[int]]
    conflicting_label_groups: list[list[int]]
    near_duplicate_groups: list[list[int]]
    n_test_samples: int | None
    test_exact_duplicates: list[tuple[int, int]]
    test_near_duplicates: list[tuple[int, int]]
    recommendations: list[Finding]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_counts)

    @property
    def ragged(self) -> bool:
        """Whether the images come in more than one size."""
        return self.n_sizes > 1

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict (class labels become keys as they are;
        ``json.dumps`` writes them as strings)."""
        return _to_builtin(asdict(self))

    def __str__(self) -> str:
        counts = np.array(list(self.class_counts.values()))
        lines = [
            f"Dataset analysis: {self.n_samples:,} images, {self.n_classes} classes",
            "",
            "Classes",
            f"  {'class':<12}{'count':>8}{'share':>9}{'isolated px':>14}{'Laplacian var':>16}",
        ]
        rare = set(self.rare_classes)
        for label, count in self.class_counts.items():
            name = f"{label}{' *' if label in rare else ''}"
            lines.append(
                f"  {name[:12]:<12}{count:>8,}{100 * count / counts.sum():>8.1f}%"
                f"{100 * self.isolated_pixel_fraction_by_class[label]:>13.2f}%"
                f"{self.laplacian_variance_by_class[label]:>16.4f}"
            )
        lines.append(f"  imbalance ratio (largest / smallest class): {self.imbalance_ratio:.1f}")
        if self.rare_classes:
            lines.append(f"  * rare classes: {_format_labels(self.rare_classes)}")
        lines += ["", "Image sizes"]
        for name, stats in (
            ("height", self.height),
            ("width", self.width),
            ("aspect", self.aspect_ratio),
        ):
            lines.append(
                f"  {name:<8}min {stats['min']:>7.4g}   median {stats['median']:>7.4g}"
                f"   max {stats['max']:>7.4g}"
            )
        lines.append(
            f"  {self.n_sizes} distinct size{'s' if self.n_sizes > 1 else ''}"
            + (" (ragged batch)" if self.ragged else "")
        )
        lines += [
            "",
            "Intensity and noise",
            f"  dark ink on light background: {100 * self.dark_on_light_fraction:.0f}% of images",
            f"  mean intensity (bright ink on dark): {self.mean_intensity:.3f}",
            f"  isolated pixels (salt and pepper): {100 * self.isolated_pixel_fraction:.2f}% "
            "of pixels per image (mean)",
            f"  Laplacian variance: {self.laplacian_variance:.4f} (median)",
            "",
            "Duplicates",
            f"  exact copies: {_group_text(self.exact_duplicate_groups)}"
            + (
                f", {len(self.conflicting_label_groups)} with conflicting labels"
                if self.conflicting_label_groups
                else ""
            ),
            f"  near copies: {_group_text(self.near_duplicate_groups)}",
        ]
        if self.n_test_samples is not None:
            lines.append(
                f"  test set ({self.n_test_samples:,} images): "
                f"{len(self.test_exact_duplicates)} exact and {len(self.test_near_duplicates)} "
                "near copies of training images"
            )
        lines += ["", "Recommendations"]
        if self.recommendations:
            lines.append(format_findings(self.recommendations))
        else:
            lines.append("  none: nothing in the data calls for action.")
        return "\n".join(lines)


def _format_labels(labels: Sequence[Any]) -> str:
    return ", ".join(str(label) for label in labels)


def _group_text(groups: list[list[int]]) -> str:
    if not groups:
        return "none"
    n_images = sum(len(g) for g in groups)
    return f"{len(groups)} group{'s' if len(groups) > 1 else ''} ({n_images} images)"


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "X_test": ["array-like", None],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "rare_threshold": [Interval(Real, 0, 1, closed="neither")],
        "min_class_size": [Interval(Integral, 2, None, closed="left")],
        "noise_threshold": [Interval(Real, 0, 1, closed="neither")],
        "near_duplicate_correlation": [Interval(Real, 0, 1, closed="right")],
    },
    prefer_skip_nested_validation=True,
)
def analyze_dataset(
    X: Any,
    y: Any,
    *,
    X_test: Any = None,
    image_shape: str | tuple[int, int] = "auto",
    rare_threshold: float = 0.5,
    min_class_size: int = 10,
    noise_threshold: float = 0.005,
    near_duplicate_correlation: float = 0.995,
) -> DatasetReport:
    """Analyse a labelled set of character images and recommend what to do about it.

    The analysis covers the first step of the procedure: class balance (counts, imbalance
    ratio, rare and tiny classes), image sizes (height, width and aspect ratio; ragged or
    not), polarity and intensity, noise per class (isolated pixels, Laplacian variance),
    exact and near duplicates within the set, and copies shared with a test set (leakage).
    Each recommendation is a :class:`Finding` carrying the numbers that triggered it.
    About 2,000 images take well under a second.

    Parameters
    ----------
    X : image batch or flat batch
        A list of 2D images (sizes may differ), a 3D array ``(n, H, W)``, a 4D array
        ``(n, H, W, C)``, or a flat batch ``(n, H*W)`` with ``image_shape``.
    y : array-like of shape (n_samples,)
        Class labels.
    X_test : image batch or flat batch, optional
        A test (or validation) set to check for images shared with ``X``.
    image_shape : "auto" or (int, int), default="auto"
        Shape of the rows of a flat batch (ignored for image batches).
    rare_threshold : float in (0, 1), default=0.5
        A class is rare when it has fewer than this fraction of the largest class's images.
    min_class_size : int, default=10
        Classes with fewer images are *tiny*: too small for 5-fold cross-validation with a
        validation split.
    noise_threshold : float in (0, 1), default=0.005
        Mean isolated-pixel fraction above which salt-and-pepper noise is reported.
        A pixel is isolated when it differs by more than 0.2 (on a 0-1 scale) from the
        median of its 3x3 neighbourhood and resembles at most one of its eight neighbours;
        clean characters score about 0, characters with 1% of their pixels set to black or
        white about 0.006.
    near_duplicate_correlation : float in (0, 1], default=0.995
        Two images are near copies when the correlation of their 12x12 thumbnails (median
        filtered, brought to bright-on-dark, padded to a square) reaches this value:
        re-encoded, re-scaled, brightened, inverted or lightly noised copies of one image.
        The comparison grows with the square of the number of images.

    Returns
    -------
    report : DatasetReport
        Printable (``print(report)``), with ``to_dict()`` and ``recommendations``.
        Recommendation codes: ``"class_imbalance"``, ``"tiny_classes"``,
        ``"varying_sizes"``, ``"salt_and_pepper_noise"``, ``"dark_on_light"``,
        ``"duplicates"``, ``"conflicting_labels"``, ``"train_test_leakage"``.

    See Also
    --------
    diagnose_history : Read the learning curves of a training run.
    skcharclf.make_report : An HTML report that includes this analysis.

    Examples
    --------
    >>> from skcharclf import analyze_dataset
    >>> from skcharclf.datasets import load_digit_chars
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> report = analyze_dataset(X, y)
    >>> report.rare_classes
    [2, 5, 8]
    >>> [r.code for r in report.recommendations]  # doctest: +NORMALIZE_WHITESPACE
    ['class_imbalance', 'salt_and_pepper_noise', 'varying_sizes', 'dark_on_light']
    """
    images = _as_images(X, image_shape, "X")
    y = column_or_1d(y, warn=True)
    if len(y) != len(images):
        raise ValueError(f"X holds {len(images)} images but y has {len(y)} labels.")
    features = _image_features(images)
    classes, y_index, counts = np.unique(y, return_inverse=True, return_counts=True)
    labels = [_label(c) for c in classes]
    largest = counts.max()

    exact_groups, conflicting, near_groups, first_of = _duplicates(
        features, y_index, near_duplicate_correlation
    )
    n_test, test_exact, test_near = None, [], []
    if X_test is not None:
        test = _image_features(_as_images(X_test, image_shape, "X_test"))
        n_test = len(test.hashes)
        test_exact, test_near = _copies_in_test(
            test, features, first_of, near_duplicate_correlation
        )

    by_class = [np.flatnonzero(y_index == k) for k in range(len(classes))]
    report = DatasetReport(
        n_samples=len(images),
        class_counts={label: int(c) for label, c in zip(labels, counts, strict=True)},
        imbalance_ratio=float(largest / counts.min()),
        rare_classes=[
            lb for lb, c in zip(labels, counts, strict=True) if c < rare_threshold * largest
        ],
        tiny_classes=[lb for lb, c in zip(labels, counts, strict=True) if c < min_class_size],
        height=_summary(features.heights),
        width=_summary(features.widths),
        aspect_ratio=_summary(features.widths / features.heights),
        n_sizes=len(
            {(int(h), int(w)) for h, w in zip(features.heights, features.widths, strict=True)}
        ),
        mean_intensity=float(features.mean_intensity.mean()),
        dark_on_light_fraction=float(np.mean(features.background > 0.5)),
        isolated_pixel_fraction=float(features.isolated_fraction.mean()),
        isolated_pixel_fraction_by_class={
            lb: float(features.isolated_fraction[idx].mean())
            for lb, idx in zip(labels, by_class, strict=True)
        },
        laplacian_variance=float(np.median(features.laplacian_variance)),
        laplacian_variance_by_class={
            lb: float(np.median(features.laplacian_variance[idx]))
            for lb, idx in zip(labels, by_class, strict=True)
        },
        exact_duplicate_groups=exact_groups,
        conflicting_label_groups=conflicting,
        near_duplicate_groups=near_groups,
        n_test_samples=n_test,
        test_exact_duplicates=test_exact,
        test_near_duplicates=test_near,
        recommendations=[],
    )
    report.recommendations = _recommendations(
        report, features, min_class_size, noise_threshold, rare_threshold
    )
    return report


def _duplicates(
    features: _ImageFeatures, y_index: np.ndarray, correlation: float
) -> tuple[list[list[int]], list[list[int]], list[list[int]], dict[bytes, int]]:
    """Exact-copy groups, those of them with several labels, near-copy groups, and the
    first index of every distinct image by its digest."""
    first_of: dict[bytes, int] = {}
    members: dict[bytes, list[int]] = {}
    for i, digest in enumerate(features.hashes):
        first_of.setdefault(digest, i)
        members.setdefault(digest, []).append(i)
    exact = [m for m in members.values() if len(m) > 1]
    conflicting = [m for m in exact if len(np.unique(y_index[m])) > 1]
    # Near copies among distinct images only: an exact group takes part through its first.
    distinct = np.array(sorted(first_of.values()))
    pairs = _similar_pairs(features.thumbnails[distinct], correlation)
    near = [[int(distinct[k]) for k in group] for group in _groups_of(pairs, len(distinct))]
    return exact, conflicting, near, first_of


def _copies_in_test(
    test: _ImageFeatures, train: _ImageFeatures, first_of: dict[bytes, int], correlation: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(test index, train index) of test images identical to, or near copies of, a training
    image."""
    exact, unmatched = [], []
    for i, digest in enumerate(test.hashes):
        if digest in first_of:
            exact.append((i, first_of[digest]))
        else:
            unmatched.append(i)
    if not unmatched:
        return exact, []
    best = _best_match(test.thumbnails[unmatched], train.thumbnails)
    near = [(unmatched[k], j) for k, (j, r) in enumerate(best) if r >= correlation]
    return exact, near


def _best_match(queries: np.ndarray, references: np.ndarray) -> list[tuple[int, float]]:
    """For each query thumbnail: the index of the most correlated reference and the value."""
    best: list[tuple[int, float]] = []
    for start in range(0, len(queries), _CHUNK):
        block = queries[start : start + _CHUNK] @ references.T
        index = block.argmax(axis=1)
        best += zip(index.tolist(), block[np.arange(len(index)), index].tolist(), strict=True)
    return best


def _recommendations(
    report: DatasetReport,
    features: _ImageFeatures,
    min_class_size: int,
    noise_threshold: float,
    rare_threshold: float,
) -> list[Finding]:
    """The procedure's answers to what the analysis found, each with its evidence."""
    found: list[Finding] = []
    counts = report.class_counts
    largest_class = max(counts, key=counts.get)
    if report.rare_classes:
        found.append(
            Finding(
                "class_imbalance",
                "warning",
                f"{len(report.rare_classes)} rare class(es): {_format_labels(report.rare_classes)} "
                f"(imbalance ratio {report.imbalance_ratio:.1f})",
                {
                    "imbalance_ratio": report.imbalance_ratio,
                    "largest_class": largest_class,
                    "largest_count": counts[largest_class],
                    "rare_classes": report.rare_classes,
                    "rare_counts": [counts[c] for c in report.rare_classes],
                    "rare_threshold": rare_threshold,
                },
                "A model trained on imbalanced data favours the large classes: accuracy looks good "
                "while the rare classes are mostly missed. The procedure settled on augmenting the "
                "rare classes; class weights and a focal loss are the lighter alternatives.",
                [
                    "Top up the rare classes with augmented copies: RareClassAugmenter("
                    'sampling_strategy="not majority") as the "augment" step of the pipeline.',
                    'Or weigh the loss: KerasCharClassifier(class_weight="balanced") or '
                    'loss="focal" (also "logit_adjusted", "balanced_softmax").',
                    'Start the output biases at the log class priors: bias_init="prior".',
                    'Judge models by macro F1 or balanced accuracy (scoring="f1_macro"), not '
                    "accuracy, and stratify every split.",
                ],
            )
        )
    if report.tiny_classes:
        smallest = min(counts[c] for c in report.tiny_classes)
        found.append(
            Finding(
                "tiny_classes",
                "warning" if smallest >= 2 else "error",
                f"{len(report.tiny_classes)} class(es) with fewer than {min_class_size} images "
                f"(smallest: {smallest})",
                {
                    "tiny_classes": report.tiny_classes,
                    "counts": [counts[c] for c in report.tiny_classes],
                    "min_class_size": min_class_size,
                },
                "Stratified k-fold cross-validation needs at least k images of every class, and a "
                "validation split of a few percent leaves a tiny class with one image or none: "
                "its scores become noise.",
                [
                    f"Use fewer folds: StratifiedKFold(n_splits={max(2, min(5, smallest))}) or "
                    "fewer (at most the smallest class size).",
                    "Augment the tiny classes (RareClassAugmenter) and collect more images "
                    "of them.",
                    "Keep validation_fraction large enough to hold a few images of every class, or "
                    "pass validation_data.",
                ],
            )
        )
    if report.isolated_pixel_fraction > noise_threshold:
        by_class = report.isolated_pixel_fraction_by_class
        noisiest = sorted(by_class, key=by_class.get, reverse=True)[:3]
        found.append(
            Finding(
                "salt_and_pepper_noise",
                "warning",
                f"Salt-and-pepper noise: {100 * report.isolated_pixel_fraction:.2f}% isolated "
                "pixels per image on average",
                {
                    "isolated_pixel_fraction": report.isolated_pixel_fraction,
                    "noise_threshold": noise_threshold,
                    "noisy_image_fraction": float(
                        np.mean(features.isolated_fraction > noise_threshold)
                    ),
                    "noisiest_classes": noisiest,
                    "noisiest_fractions": [by_class[c] for c in noisiest],
                },
                "Isolated pixels that differ sharply from all their neighbours are impulse "
                "(salt-and-pepper) noise. A 3x3 median filter removes them while keeping stroke "
                "edges, which a Gaussian blur would smear.",
                [
                    'Add Denoiser(method="median", ksize=3) as the "denoise" step.',
                    'Search over the input variant: Denoiser(method=...) in ["none", "median", '
                    '"bilateral"] as a hyperparameter.',
                ],
            )
        )
    if report.ragged:
        found.append(
            Finding(
                "varying_sizes",
                "info",
                f"Images come in {report.n_sizes} sizes: width {report.width['min']:.0f}-"
                f"{report.width['max']:.0f}, height {report.height['min']:.0f}-"
                f"{report.height['max']:.0f}",
                {
                    "n_sizes": report.n_sizes,
                    "width": report.width,
                    "height": report.height,
                    "aspect_ratio": report.aspect_ratio,
                },
                "A network needs one input size. Stretching every image to a square distorts "
                "narrow characters (a 1 becomes a bar as wide as a 0) and throws away the width, "
                "which is itself informative; padding keeps the aspect ratio.",
                [
                    'Resize with ImageResizer(size=(32, 32), mode="pad"), which keeps the aspect '
                    'ratio; compare with mode="stretch" in a search.',
                ],
            )
        )
    if report.dark_on_light_fraction > 0:
        mixed = report.dark_on_light_fraction < 0.95
        found.append(
            Finding(
                "dark_on_light",
                "info",
                f"{100 * report.dark_on_light_fraction:.0f}% of the images are dark ink on a light "
                "background" + (" (mixed polarity)" if mixed else ""),
                {"dark_on_light_fraction": report.dark_on_light_fraction},
                "The models expect bright ink on a dark background (background 0 after scaling), "
                "so padding and zero-initialised borders read as background.",
                [
                    'Nothing to do: ImageResizer(polarity="auto") (the default) detects the '
                    "background of each image and inverts dark-on-light ones.",
                ],
            )
        )
    if report.exact_duplicate_groups or report.near_duplicate_groups:
        n_exact = sum(len(g) for g in report.exact_duplicate_groups)
        n_near = sum(len(g) for g in report.near_duplicate_groups)
        found.append(
            Finding(
                "duplicates",
                "info",
                f"{n_exact} images in exact-copy groups and {n_near} in near-copy groups",
                {
                    "exact_groups": len(report.exact_duplicate_groups),
                    "exact_images": n_exact,
                    "near_groups": len(report.near_duplicate_groups),
                    "near_images": n_near,
                    "first_group": (report.exact_duplicate_groups or report.near_duplicate_groups)[
                        0
                    ],
                },
                "Copies of one image that land on both sides of a cross-validation or validation "
                "split make the scores optimistic, and copies weigh their image more in training.",
                [
                    "Remove the copies, or keep each group in one fold: StratifiedGroupKFold with "
                    "the group index of each image.",
                ],
            )
        )
    if report.conflicting_label_groups:
        found.append(
            Finding(
                "conflicting_labels",
                "warning",
                f"{len(report.conflicting_label_groups)} group(s) of identical images carry "
                "different labels",
                {
                    "groups": len(report.conflicting_label_groups),
                    "first_group": report.conflicting_label_groups[0],
                },
                "Identical images with different labels are labelling errors (or classes that "
                "cannot be told apart): no model can get both right.",
                ["Check and fix the labels of these images, or drop them."],
            )
        )
    if report.test_exact_duplicates or report.test_near_duplicates:
        leaked = len(report.test_exact_duplicates) + len(report.test_near_duplicates)
        found.append(
            Finding(
                "train_test_leakage",
                "warning",
                f"{leaked} of {report.n_test_samples} test images copy a training image",
                {
                    "exact": len(report.test_exact_duplicates),
                    "near": len(report.test_near_duplicates),
                    "leaked_fraction": leaked / report.n_test_samples,
                    "first_pairs": [
                        list(p)
                        for p in (report.test_exact_duplicates + report.test_near_duplicates)[:5]
                    ],
                },
                "A test image that is (nearly) a copy of a training image measures memory, not "
                "generalisation: the test score is optimistic by about the share of leaked images.",
                [
                    "Drop the leaked test images, or split again by group so that copies stay on "
                    "one side (GroupShuffleSplit / StratifiedGroupKFold).",
                ],
            )
        )
    return found


# --------------------------------------------------------------------------------------------
# Sanity checks
# --------------------------------------------------------------------------------------------

# What "no regularisation, no augmentation, no early stopping" means for KerasCharClassifier;
# parameters the estimator does not have are left alone.
_UNREGULARISED = {
    "dropout": 0.0,
    "l2": 0.0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "early_stopping": False,
    "online_augmentation": None,
    "validation_fraction": 0.0,
    "validation_data": None,
    "checkpoint_averaging": None,
    "checkpoint_selection": "last",
}
# For the initial-loss check: plain cross-entropy, whose uninformed value is known.
_PLAIN_LOSS = {"loss": "ce", "class_weight": None, "label_smoothing": 0.0}


@dataclass
class SanityCheck:
    """The outcome of one sanity check.

    Attributes
    ----------
    name : str
        ``"initial_loss"`` or ``"overfit_small_subset"``.
    passed : bool
        Whether the measured value is within the target.
    value : float
        What was measured.
    target : str
        What it had to be, in words.
    details : dict
        Other numbers of the run.
    advice : str
        What a failure means and what to look at (empty when passed).
    """

    name: str
    passed: bool
    value: float
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    advice: str = ""

    def __str__(self) -> str:
        status = "pass" if self.passed else "FAIL"
        lines = [f"[{status}] {self.name}: {self.value:.4g} (target: {self.target})"]
        if self.details:
            details = ", ".join(f"{k}={_format_value(v)}" for k, v in self.details.items())
            lines.append(_wrap(details, "    ", "    "))
        if self.advice:
            lines.append(_wrap(self.advice, "    ", "    "))
        return "\n".join(lines)


@dataclass
class SanityReport:
    """The results of :func:`sanity_check`.

    Attributes
    ----------
    checks : list of SanityCheck
        One entry per check, in the order they ran.
    """

    checks: list[SanityCheck]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    def __getitem__(self, name: str) -> SanityCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return _to_builtin({"passed": self.passed, "checks": [asdict(c) for c in self.checks]})

    def __str__(self) -> str:
        n_passed = sum(check.passed for check in self.checks)
        head = f"Sanity checks: {n_passed} of {len(self.checks)} passed"
        return "\n".join([head, *(textwrap.indent(str(c), "  ") for c in self.checks)])


def _final_step(estimator: Any) -> tuple[Any, str]:
    """The classifier and the prefix its parameters take in ``set_params``."""
    if hasattr(estimator, "steps"):
        name, final = estimator.steps[-1]
        return final, f"{name}__"
    return estimator, ""


def _configured_clone(estimator: Any, settings: Mapping[str, Any]) -> tuple[Any, Any]:
    """A clone with ``settings`` applied to its classifier (where it has those parameters)
    and, for a pipeline, its resampling steps switched off."""
    model = clone(estimator)
    final, prefix = _final_step(model)
    known = final.get_params(deep=False)
    params = {f"{prefix}{k}": v for k, v in settings.items() if k in known}
    if hasattr(model, "steps"):
        samplers = [name for name, step in model.steps[:-1] if hasattr(step, "fit_resample")]
        params.update(dict.fromkeys(samplers, "passthrough"))
    model.set_params(**params)
    return model, _final_step(model)[0]


def _stratified_subset(y: np.ndarray, size: int, rng: np.random.RandomState) -> np.ndarray:
    """``size`` indices with every class present and the class shares kept otherwise."""
    if size >= len(y):
        return np.arange(len(y))
    classes, y_index, counts = np.unique(y, return_inverse=True, return_counts=True)
    if size < len(classes):
        raise ValueError(
            f"n_subset={size} is smaller than the number of classes ({len(classes)}); the "
            "subset needs at least one image per class."
        )
    quota = np.maximum(1, np.floor(size * counts / len(y)).astype(int))
    for _ in range(quota.sum() - size):  # the minimum of one per class can overshoot
        quota[np.argmax(quota)] -= 1
    chosen = [rng.permutation(np.flatnonzero(y_index == k))[:q] for k, q in enumerate(quota)]
    picked = np.concatenate(chosen)
    rest = np.setdiff1d(np.arange(len(y)), picked)
    extra = rng.permutation(rest)[: max(0, size - len(picked))]
    return np.sort(np.concatenate([picked, extra]))


def _take(X: Any, index: np.ndarray) -> Any:
    if isinstance(X, np.ndarray):
        return X[index]
    if hasattr(X, "iloc"):
        return X.iloc[index]
    return [X[i] for i in index]


@validate_params(
    {
        "estimator": [HasMethods(["fit", "get_params", "set_params"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "n_subset": [Interval(Integral, 2, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "target_accuracy": [Interval(Real, 0, 1, closed="right")],
        "initial_loss_tolerance": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def sanity_check(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    n_subset: int = 50,
    epochs: int = 100,
    target_accuracy: float = 0.95,
    initial_loss_tolerance: float = 0.5,
    random_state: int | np.random.RandomState | None = 0,
) -> SanityReport:
    """Check that a model starts where it should and can learn at all, before a long run.

    Two checks from the procedure, each on clones (``estimator`` itself is not fitted):

    1. **initial_loss**: a clone trained for one epoch with plain cross-entropy reports the
       loss it had before its first update (``initial_loss_``). An untrained model should
       predict uniformly, loss ln C, or the class priors, loss ``-sum(p log p)``, with
       ``bias_init="prior"``. A loss far off this means a broken initialisation or unscaled
       inputs.
    2. **overfit_small_subset**: a clone with no regularisation (``dropout=0``, ``l2=0``,
       ``weight_decay=0``, no label smoothing), no augmentation (``online_augmentation=None``,
       resampling steps of a pipeline switched off), no early stopping and no validation
       split is trained on a stratified subset of ``n_subset`` images for ``epochs`` epochs;
       it must then classify that subset with accuracy at least ``target_accuracy``, the
       procedure's first try ("fit until 100% training accuracy"). A model that cannot
       memorise 50 images has a bug: labels misaligned with images, a learning rate far
       off, a frozen backbone or a head that cannot express the classes.

    Parameters
    ----------
    estimator : KerasCharClassifier or Pipeline ending in one
        The (unfitted) model to check, with its parameters as you intend to train it.
    X : image batch or flat batch
        Training images in the form the estimator accepts.
    y : array-like of shape (n_samples,)
        Labels.
    n_subset : int, default=50
        Size of the subset to memorise (every class keeps at least one image).
    epochs : int, default=100
        Epochs of the memorisation run.
    target_accuracy : float, default=0.95
        Accuracy on the subset the memorisation run must reach.
    initial_loss_tolerance : float, default=0.5
        The initial loss may differ from the expected one by this fraction of it.
    random_state : int, RandomState instance or None, default=0
        Seeds the subset and the clones (where they take ``random_state``).

    Returns
    -------
    report : SanityReport
        ``report.passed``, ``report["initial_loss"]``, ``report["overfit_small_subset"]``;
        ``print(report)`` shows the numbers.

    See Also
    --------
    diagnose_history : Read the learning curves of a full run.
    """
    final, _ = _final_step(estimator)
    if "epochs" not in final.get_params(deep=False):
        raise TypeError(
            "sanity_check needs a classifier trained by epochs (KerasCharClassifier or a "
            f"pipeline ending in one); the final step is a {type(final).__name__}."
        )
    y = column_or_1d(y, warn=True)
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_samples != len(y):
        raise ValueError(f"X holds {n_samples} samples but y has {len(y)} labels.")
    rng = check_random_state(random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    subset = _stratified_subset(y, n_subset, rng)
    X_sub, y_sub = _take(X, subset), y[subset]
    common = {"random_state": seed, "verbose": 0}
    return SanityReport(
        [
            _check_initial_loss(estimator, X_sub, y_sub, common, initial_loss_tolerance),
            _check_overfit(estimator, X_sub, y_sub, {**common, "epochs": epochs}, target_accuracy),
        ]
    )


def _check_initial_loss(
    estimator: Any, X: Any, y: np.ndarray, common: dict, tolerance: float
) -> SanityCheck:
    settings = {**_UNREGULARISED, **_PLAIN_LOSS, **common, "epochs": 1}
    model, final = _configured_clone(estimator, settings)
    model.fit(X, y)
    initial = float(final.initial_loss_)
    n_classes = len(final.classes_)
    prior_bias = final.get_params(deep=False).get("bias_init") == "prior"
    if prior_bias:
        priors = getattr(final, "class_priors_", None)
        if priors is None:
            priors = np.unique(y, return_counts=True)[1] / len(y)
        expected = _expected_initial_loss(None, priors)
        reference = "entropy of the class priors"
    else:
        expected = _expected_initial_loss(n_classes, None)
        reference = f"ln {n_classes}"
    finding = _initial_loss_finding(initial, expected, tolerance)
    return SanityCheck(
        "initial_loss",
        finding is None,
        initial,
        f"{expected:.4g} ({reference}) +/- {100 * tolerance:.0f}%",
        {"expected": expected, "ratio": initial / expected, "n_classes": n_classes},
        "" if finding is None else f"{finding.explanation} Try: {' '.join(finding.remedies)}",
    )


def _check_overfit(
    estimator: Any, X: Any, y: np.ndarray, settings: dict, target: float
) -> SanityCheck:
    model, final = _configured_clone(estimator, {**_UNREGULARISED, **settings})
    with warnings.catch_warnings():
        # memorising the subset without a validation set is the point of this check
        warnings.simplefilter("ignore", NoValidationWarning)
        model.fit(X, y)
    accuracy = float(model.score(X, y))
    history = getattr(final, "history_", None) or {}
    details: dict[str, Any] = {"n_samples": len(y), "epochs": settings["epochs"]}
    if history.get("loss"):
        details["final_training_loss"] = float(history["loss"][-1])
    passed = accuracy >= target
    advice = ""
    if not passed:
        findings = diagnose_history(final) if history.get("loss") else []
        if findings:
            details["diagnosis"] = [f.code for f in findings]
        advice = (
            f"The model reaches only {100 * accuracy:.0f}% on the {len(y)} images it was "
            "trained on, with every regulariser off. Check that labels stay aligned with the "
            "images, that the learning rate is neither far too low nor too high, that the "
            "backbone is not frozen, and that the inputs are scaled; more epochs help a "
            "model that is still improving."
        )
    return SanityCheck(
        "overfit_small_subset",
        passed,
        accuracy,
        f"training accuracy >= {target:g}",
        details,
        advice,
    )
