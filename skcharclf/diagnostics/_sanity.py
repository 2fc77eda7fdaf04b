"""Sanity checks before a long run: the initial loss, and learning a small subset by heart."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.validation import check_random_state

from .._format import format_value
from .._initial_loss import expected_initial_loss
from .._utils import check_labels, draw_seed, final_estimator
from ._findings import NoValidationWarning, to_builtin, wrap
from ._history import diagnose_history, initial_loss_finding

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
            details = ", ".join(f"{k}={format_value(v)}" for k, v in self.details.items())
            lines.append(wrap(details, "    ", "    "))
        if self.advice:
            lines.append(wrap(self.advice, "    ", "    "))
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
        return to_builtin({"passed": self.passed, "checks": [asdict(c) for c in self.checks]})

    def __str__(self) -> str:
        n_passed = sum(check.passed for check in self.checks)
        head = f"Sanity checks: {n_passed} of {len(self.checks)} passed"
        return "\n".join([head, *(textwrap.indent(str(c), "  ") for c in self.checks)])


def _configured_clone(estimator: Any, settings: Mapping[str, Any]) -> tuple[Any, Any]:
    """A clone with ``settings`` applied to its classifier (where it has those parameters)
    and, for a pipeline, its resampling steps switched off; and that classifier."""
    model = clone(estimator)
    final = final_estimator(model)
    known = final.get_params(deep=False)
    final.set_params(**{k: v for k, v in settings.items() if k in known})
    steps = getattr(model, "steps", [])[:-1]
    samplers = [name for name, step in steps if hasattr(step, "fit_resample")]
    if samplers:
        model.set_params(**dict.fromkeys(samplers, "passthrough"))
    return model, final


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
    final = final_estimator(estimator)
    if "epochs" not in final.get_params(deep=False):
        raise TypeError(
            "sanity_check needs a classifier trained by epochs (KerasCharClassifier or a "
            f"pipeline ending in one); the final step is a {type(final).__name__}."
        )
    y = check_labels(X, y, "samples")
    rng = check_random_state(random_state)
    seed = draw_seed(rng)
    subset = _stratified_subset(y, n_subset, rng)
    X_sub, y_sub = _safe_indexing(X, subset), y[subset]
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
        expected = expected_initial_loss(None, priors)
        reference = "entropy of the class priors"
    else:
        expected = expected_initial_loss(n_classes, None)
        reference = f"ln {n_classes}"
    finding = initial_loss_finding(initial, expected, tolerance)
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
