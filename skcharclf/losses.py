"""Losses for imbalanced classification from logits, and a streaming macro-F1 metric.

Every loss takes integer class indices ``y_true`` (shape ``(batch,)`` or ``(batch, 1)``) and
unnormalised logits ``y_pred`` ``(batch, n_classes)``, and is a serialisable
:class:`keras.losses.Loss` (``get_config``, registered under the ``"skcharclf"`` package), so a
saved model reloads with Keras's safe mode. All four are special cases of one cross-entropy::

    loss = - sum_c q_c * alpha_c * (1 - p_c) ** gamma * log p_c,   p = softmax(logits + delta)

with ``q`` the (optionally label-smoothed) one-hot target:

================================  =========  =========  ======================
loss                              ``gamma``  ``alpha``  ``delta``
================================  =========  =========  ======================
:class:`CrossEntropy`             0          1          0
:class:`FocalLoss`                ``gamma``  ``alpha``  0
:class:`LogitAdjustedLoss`        0          1          ``tau * log(prior)``
:class:`BalancedSoftmaxLoss`      0          1          ``log(prior)``
================================  =========  =========  ======================

:class:`HingeLoss` is the exception: one binary (squared) hinge loss per class on the logits,
the procedure's "SVM [hinge loss]".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._docstring import fill_doc
from ._tf import import_keras

__all__ = [
    "BalancedSoftmaxLoss",
    "CrossEntropy",
    "FocalLoss",
    "HingeLoss",
    "LabelAccuracy",
    "LogitAdjustedLoss",
    "MacroF1Score",
]

keras = import_keras()
ops = keras.ops

# Parameters the losses share, described once (see skcharclf._docstring).
_PARAMETERS = {
    "label_smoothing": """\
label_smoothing : float, default=0.0
    Mix ``label_smoothing`` of a uniform distribution into the one-hot targets.""",
    "class_priors": """\
class_priors : sequence of float
    Training frequency of every class, in the order of the class indices.""",
    "name": """\
name : str, optional
    Name of the loss.""",
}


def is_mixed(y_true: Any) -> bool:
    """Whether ``y_true`` holds mixed targets: rows ``(label_a, label_b, share_of_a)``."""
    return len(y_true.shape) == 2 and y_true.shape[-1] == 3


def hard_labels(y_true: Any) -> Any:
    """Integer labels of ``y_true``: the larger share's label (``label_a``) of mixed targets."""
    if is_mixed(y_true):
        y_true = y_true[:, 0]
    return ops.cast(ops.reshape(y_true, (-1,)), "int32")


def mix_losses(loss: Any, y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``loss(labels, y_pred)``; of mixed targets, the two labels' losses mixed by
    their shares (what mixup and cutmix mean for a loss that is not linear in its target)."""
    if not is_mixed(y_true):
        return loss(y_true, y_pred)
    share = ops.cast(y_true[:, 2], "float32")
    return share * loss(y_true[:, 0], y_pred) + (1.0 - share) * loss(y_true[:, 1], y_pred)


def _targets(
    y_true: Any, n_classes: int, label_smoothing: float, smoothing_to: Any = None
) -> Any:
    """Integer labels -> one-hot targets, smoothed towards ``smoothing_to`` (else uniform).

    Mixed targets (rows ``(label_a, label_b, share_of_a)`` from mixup or cutmix) become the
    mixture of the two one-hot rows.
    """
    if is_mixed(y_true):
        share = ops.cast(y_true[:, 2:3], "float32")
        onehot = share * ops.one_hot(ops.cast(y_true[:, 0], "int32"), n_classes) + (
            1.0 - share
        ) * ops.one_hot(ops.cast(y_true[:, 1], "int32"), n_classes)
    else:
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        onehot = ops.one_hot(labels, n_classes)
    if label_smoothing > 0:
        floor = 1.0 / n_classes if smoothing_to is None else smoothing_to
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing * floor
    return onehot


def _cross_entropy(
    y_true: Any,
    logits: Any,
    *,
    label_smoothing: float = 0.0,
    gamma: float = 0.0,
    alpha: Any = None,
    delta: Any = None,
    smoothing_to: Any = None,
) -> Any:
    logits = ops.cast(logits, "float32")
    if delta is not None:
        logits = logits + delta
    n_classes = logits.shape[-1]
    targets = _targets(y_true, n_classes, label_smoothing, smoothing_to)
    log_p = ops.log_softmax(logits, axis=-1)
    per_class = -targets * log_p
    if gamma > 0:
        per_class = per_class * ops.power(1.0 - ops.exp(log_p), gamma)
    if alpha is not None:
        per_class = per_class * alpha
    return ops.sum(per_class, axis=-1)


def _as_list(values: Any) -> list[float] | None:
    if values is None:
        return None
    return [float(v) for v in np.ravel(values)]


class _LogitLoss(keras.losses.Loss):
    """Shared constructor and config of the losses below."""

    def __init__(
        self, *, label_smoothing: float = 0.0, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="skcharclf")
@fill_doc(**_PARAMETERS)
class CrossEntropy(_LogitLoss):
    """Softmax cross-entropy from logits with integer labels and optional label smoothing.

    Parameters
    ----------
    %(label_smoothing)s
    %(name)s

    See Also
    --------
    FocalLoss : down-weights well-classified samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.losses import CrossEntropy
    >>> round(float(CrossEntropy()(np.array([0]), np.array([[0.0, 0.0]]))), 4)  # log(2)
    0.6931
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "cross_entropy", **kwargs: Any):
        super().__init__(label_smoothing=label_smoothing, name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _cross_entropy(y_true, y_pred, label_smoothing=self.label_smoothing)


@keras.saving.register_keras_serializable(package="skcharclf")
@fill_doc(**_PARAMETERS)
class FocalLoss(_LogitLoss):
    """Multi-class focal loss from logits (Lin et al., 2017).

    ``-alpha_y * (1 - p_y) ** gamma * log p_y``: the factor ``(1 - p_y) ** gamma`` shrinks
    the loss of samples the model already classifies well, so training focuses on the hard
    (often rare-class) ones. ``gamma=0`` and no ``alpha`` is plain cross-entropy.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter, ``>= 0``.
    alpha : float or sequence of float, optional
        Class weighting: one float for every class, or one weight per class (in the order of
        the class indices). ``None`` weights all classes by 1. (The classifier's
        ``focal_alpha="balanced"`` is resolved to per-class weights before it gets here.)
    %(label_smoothing)s
    %(name)s

    See Also
    --------
    CrossEntropy, LogitAdjustedLoss
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        name: str = "focal_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(label_smoothing=label_smoothing, name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}.")
        self.gamma = float(gamma)
        self.alpha = alpha if alpha is None or np.ndim(alpha) == 0 else _as_list(alpha)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        alpha = None if self.alpha is None else ops.convert_to_tensor(self.alpha, "float32")
        return _cross_entropy(
            y_true, y_pred, label_smoothing=self.label_smoothing, gamma=self.gamma, alpha=alpha
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="skcharclf")
@fill_doc(**_PARAMETERS)
class LogitAdjustedLoss(_LogitLoss):
    """Logit-adjusted softmax cross-entropy (Menon et al., 2021).

    Trains on ``logits + tau * log(prior)``: frequent classes get a head start inside the
    loss, so the model's own logits are pushed to separate rare classes by a larger margin and
    ``argmax(logits)`` targets the *balanced* error. Predict with the raw logits.

    Label smoothing mixes ``prior ** tau`` (normalised), not a uniform distribution, into the
    targets: that is uniform once the adjustment is taken off, so it does not favour any class
    at prediction. Uniform smoothing would: a rare class's share ``label_smoothing / C`` is
    large against its prior, so the raw logits would over-predict rare classes.

    Parameters
    ----------
    %(class_priors)s
    tau : float, default=1.0
        Strength of the adjustment; ``tau=0`` is plain cross-entropy.
    label_smoothing : float, default=0.0
        Mix ``label_smoothing`` of the distribution ``prior ** tau`` (normalised) into the
        one-hot targets.
    %(name)s

    See Also
    --------
    BalancedSoftmaxLoss : the same with ``tau=1``.
    """

    def __init__(
        self,
        class_priors: Sequence[float],
        tau: float = 1.0,
        label_smoothing: float = 0.0,
        name: str = "logit_adjusted_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(label_smoothing=label_smoothing, name=name, **kwargs)
        priors = np.asarray(class_priors, dtype=float)
        if priors.ndim != 1 or np.any(priors <= 0):
            raise ValueError("class_priors must be a 1-D sequence of positive frequencies.")
        self.class_priors = _as_list(priors / priors.sum())
        self.tau = float(tau)

    def logit_offsets(self) -> np.ndarray:
        """The ``delta`` added to the logits inside the loss."""
        return self.tau * np.log(np.asarray(self.class_priors, dtype="float32"))

    def smoothing_distribution(self) -> np.ndarray:
        """Where label smoothing puts its mass: ``prior ** tau``, normalised."""
        weights = np.asarray(self.class_priors, dtype="float64") ** self.tau
        return (weights / weights.sum()).astype("float32")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        delta = ops.convert_to_tensor(self.logit_offsets(), "float32")
        floor = ops.convert_to_tensor(self.smoothing_distribution(), "float32")
        return _cross_entropy(
            y_true, y_pred, label_smoothing=self.label_smoothing, delta=delta,
            smoothing_to=floor,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "class_priors": self.class_priors, "tau": self.tau}


@keras.saving.register_keras_serializable(package="skcharclf")
@fill_doc(**_PARAMETERS)
class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Balanced softmax cross-entropy (Ren et al., 2020).

    Cross-entropy on ``logits + log(prior)``; the logit-adjusted loss with ``tau=1``.

    Parameters
    ----------
    %(class_priors)s
    label_smoothing : float, default=0.0
        Mix ``label_smoothing`` of the class priors into the one-hot targets.
    %(name)s

    See Also
    --------
    LogitAdjustedLoss
    """

    def __init__(
        self,
        class_priors: Sequence[float],
        label_smoothing: float = 0.0,
        name: str = "balanced_softmax_loss",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("tau", None)
        super().__init__(
            class_priors, tau=1.0, label_smoothing=label_smoothing, name=name, **kwargs
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["tau"]
        return config


@keras.saving.register_keras_serializable(package="skcharclf")
@fill_doc(**_PARAMETERS)
class HingeLoss(keras.losses.Loss):
    """One-vs-rest hinge (or squared hinge) loss on the logits, from integer labels.

    Each logit ``z_c`` is the score of a binary SVM "class c against the rest": its target is
    ``t_c = +1`` for the sample's class and ``-1`` for the others, and the loss is the mean
    over the classes of ``max(0, 1 - t_c * z_c)`` (squared with ``squared=True``), as
    :class:`keras.losses.Hinge` computes it from ``+-1`` targets. A sample is classified
    with margin once its class's logit is at least 1 and every other logit at most -1.
    Mixed targets (mixup, cutmix) mix the losses of the two labels by their shares.

    The logits are margins, not log-probabilities: their softmax (the classifier's
    ``predict_proba``) ranks the classes as ``predict`` does, but is not calibrated.

    Parameters
    ----------
    squared : bool, default=False
        Square each hinge term (smooth, and punishes large violations more).
    %(name)s

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.losses import HingeLoss
    >>> float(HingeLoss()(np.array([0]), np.array([[1.0, -1.0]])))  # both margins met
    0.0
    >>> float(HingeLoss()(np.array([0]), np.array([[0.0, 0.0]])))
    1.0
    """

    def __init__(self, squared: bool = False, name: str | None = None, **kwargs: Any) -> None:
        default = "squared_hinge_loss" if squared else "hinge_loss"
        super().__init__(name=name or default, **kwargs)
        self.squared = bool(squared)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return mix_losses(self._hinge, y_true, ops.cast(y_pred, "float32"))

    def _hinge(self, labels: Any, logits: Any) -> Any:
        signs = 2.0 * _targets(labels, logits.shape[-1], 0.0) - 1.0
        violation = ops.relu(1.0 - signs * logits)
        return ops.mean(ops.square(violation) if self.squared else violation, axis=-1)

    def best_constant(self, priors: Any) -> np.ndarray:
        """The constant logit per class that minimises the loss when a class has frequency
        ``priors[c]``: ``2p - 1`` for the squared hinge, its sign for the hinge (-1 for a class
        of under half the samples)."""
        centred = 2.0 * np.asarray(priors, dtype=float) - 1.0
        return centred if self.squared else np.sign(centred)

    def get_config(self) -> dict:
        return {**super().get_config(), "squared": self.squared}


@keras.saving.register_keras_serializable(package="skcharclf")
class MacroF1Score(keras.metrics.Metric):
    """Macro-averaged F1 score of ``argmax(y_pred)``, accumulated over batches.

    Keeps a running confusion matrix, so one pass over the data gives the exact macro-F1 that
    :func:`sklearn.metrics.f1_score` (``average="macro"``) computes on the same predictions:
    classes absent from both the labels and the predictions are left out of the average.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    name : str, default="f1_macro"
        Name of the metric (its key in the training history).
    """

    def __init__(self, n_classes: int, name: str = "f1_macro", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes = int(n_classes)
        self.confusion = self.add_variable(
            shape=(self.n_classes, self.n_classes), initializer="zeros", name="confusion"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        labels = hard_labels(y_true)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        # One-hot outer product: (n_classes, batch) @ (batch, n_classes) = confusion counts.
        counts = ops.matmul(
            ops.transpose(ops.one_hot(labels, self.n_classes)),
            ops.one_hot(predicted, self.n_classes),
        )
        self.confusion.assign_add(ops.cast(counts, self.confusion.dtype))

    def result(self) -> Any:
        tp = ops.diagonal(self.confusion)
        support = ops.sum(self.confusion, axis=1)
        predicted = ops.sum(self.confusion, axis=0)
        denominator = support + predicted
        present = ops.cast(denominator > 0, "float32")
        f1 = 2.0 * tp / ops.maximum(denominator, 1.0)
        return ops.sum(f1 * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        self.confusion.assign(ops.zeros((self.n_classes, self.n_classes)))

    def get_config(self) -> dict:
        return {**super().get_config(), "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="skcharclf")
class LabelAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Accuracy of ``argmax(y_pred)`` against integer labels or mixed targets.

    With mixed targets (mixup, cutmix) a prediction counts as right when it names the label
    with the larger share.

    Parameters
    ----------
    name : str, default="accuracy"
        Name of the metric (its key in the training history).
    """

    def __init__(self, name: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Count the batch's right predictions (see the class docstring)."""
        return super().update_state(hard_labels(y_true), y_pred, sample_weight)
