"""The loss of a model that knows nothing, under each loss of :mod:`skcharclf.losses`.

Kept apart from :mod:`skcharclf.losses`, which builds Keras objects on import: the diagnosis
of a history (a dict of lists) must not start TensorFlow. The classifier's own diagnosis and
:mod:`skcharclf.diagnostics` both read this reference from here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def expected_initial_loss(
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


#: The ``loss`` names whose values are cross-entropies of the logits (adjusted or focused):
#: their curves can be compared with ln C, the loss of a model that knows nothing.
CROSS_ENTROPY_LOSSES = frozenset({"ce", "focal", "logit_adjusted", "balanced_softmax"})


def cross_entropy_scale(params: dict[str, Any]) -> bool:
    """Whether the loss of an estimator with these parameters is a cross-entropy (or it has
    no ``loss`` parameter). The hinge losses and the user's own losses are not: their values
    have no uninformed reference, so the diagnosis makes no comparison with one."""
    loss = params.get("loss", "ce")
    return isinstance(loss, str) and loss in CROSS_ENTROPY_LOSSES


def initial_loss_reference(params: dict[str, Any]) -> tuple[bool, float]:
    """Whether a classifier with these parameters has a known uninformed loss, and the
    uniform label smoothing that shifts it.

    Cross-entropy has one; the logit-adjusted losses too when the bias starts at the log
    priors. Only cross-entropy smooths towards the uniform distribution: the adjusted losses
    smooth towards the priors, which leaves the reference as it is.
    """
    loss = params.get("loss", "ce")
    if not isinstance(loss, str):  # the user's loss object: no known reference
        return False, 0.0
    comparable = loss == "ce" or (
        loss in ("logit_adjusted", "balanced_softmax") and params.get("bias_init") == "prior"
    )
    smoothing = float(params.get("label_smoothing", 0.0) or 0.0) if loss == "ce" else 0.0
    return comparable, smoothing
