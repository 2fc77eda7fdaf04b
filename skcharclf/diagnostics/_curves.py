"""A training history read into float curves, with what the model says about its start."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._initial_loss import cross_entropy_scale, expected_initial_loss, initial_loss_reference
from .._utils import final_estimator
from ._findings import plain_label

# Other spellings Keras and older code use for the same curves.
_ALIASES = {
    "accuracy": ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy"),
    "learning_rate": ("learning_rate", "lr"),
}


@dataclasses.dataclass
class Curves:
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


def _history_source(history: Any) -> tuple[Mapping, Any]:
    """The history mapping of ``history`` and the estimator it came from (or None)."""
    if isinstance(history, Mapping):
        return history, None
    estimator = final_estimator(history)  # a pipeline's final step holds the history
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
    unvalidated = getattr(estimator, "unvalidated_classes_", None)
    if unvalidated is not None:
        context["unvalidated_classes"] = unvalidated
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    if not cross_entropy_scale(params):
        return context  # a hinge or custom loss: ln C is no reference for its values
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        context["n_classes"] = len(classes)
    prior_bias = params.get("bias_init") == "prior"
    priors = getattr(estimator, "class_priors_", None)
    if prior_bias and priors is None:
        return context  # the reference is the prior entropy, but the priors are unknown
    if prior_bias:
        context["class_priors"] = priors
    comparable, smoothing = initial_loss_reference(params)
    initial = getattr(estimator, "initial_loss_", None)
    if initial is not None and comparable:
        context["initial_loss"] = float(initial)
        context["label_smoothing"] = smoothing
    return context


def build_curves(
    history: Any,
    n_classes: int | None,
    initial_loss: float | None,
    class_priors: Any,
    label_smoothing: float | None = None,
    unvalidated_classes: Any = None,
) -> Curves:
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
    return Curves(
        loss=loss,
        accuracy=_curve(record, "accuracy", n),
        val_loss=_curve(record, "val_loss", n),
        val_accuracy=_curve(record, "val_accuracy", n),
        learning_rate=_curve(record, "learning_rate", n),
        chance=expected_initial_loss(n_classes, class_priors, label_smoothing),
        initial_loss=None if initial_loss is None else float(initial_loss),
        unvalidated_classes=None
        if unvalidated_classes is None
        else [plain_label(c) for c in np.asarray(unvalidated_classes, dtype=object).ravel()],
    )
