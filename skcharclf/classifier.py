"""KerasCharClassifier: a residual CNN for character images as a scikit-learn classifier.

Every option of the user's model / compile / fit procedure is one constructor parameter, so
``GridSearchCV`` / ``RandomizedSearchCV`` / ``HalvingRandomSearchCV`` search them like any other
hyperparameter. The estimator is built on :class:`scikeras.wrappers.BaseWrapper`: scikeras
encodes the labels (:class:`~scikeras.utils.transformers.ClassifierLabelEncoder`), builds the
Keras model (through :meth:`KerasCharClassifier._keras_build_fn`), maps predictions back to the
labels and pickles the Keras model; this module adds scikit-learn conformance (tags, parameter
validation, feature-count checks, sparse rejection) and the training procedure.

scikeras is no longer maintained (announced July 2025). It is pinned exactly, and this is the
only module that imports it: moving to Keras's own ``keras.wrappers`` is a change to this file.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
import zipfile
from collections import deque
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._archive import (
    MAX_MODEL_BYTES,
    ArchiveError,
    Budget,
    open_archive,
    read_json_member,
    short_text,
    verify_members,
)
from ._atomic import atomic_output, restore_on_failure
from ._format import label_text, labels_text
from ._images import image_geometry, resolve_geometry
from ._tf import import_keras, limit_threads
from ._utils import draw_seed
from .losses import (
    BalancedSoftmaxLoss,
    CrossEntropy,
    FocalLoss,
    LogitAdjustedLoss,
    MacroF1Score,
)
from .models import build_char_model, copy_network, set_head_bias, set_normalization

keras = import_keras()

# scikeras imports Keras when it is imported: import it only after import_keras() has silenced
# TensorFlow's start-up logging.
from scikeras.utils.random_state import tensorflow_random_state  # noqa: E402
from scikeras.utils.transformers import ClassifierLabelEncoder  # noqa: E402
from scikeras.wrappers import BaseWrapper  # noqa: E402

__all__ = ["KerasCharClassifier", "OneCycleSchedule", "TrainingDivergedError", "load_model"]


def _pin_op_determinism_state() -> None:
    """Make TensorFlow read its op-determinism setting now, before scikeras touches it.

    scikeras's ``tensorflow_random_state`` (used for every fit) sets ``TF_DETERMINISTIC_OPS=1``,
    enables op determinism, and on exit disables it again only if it was off before. But
    TensorFlow reads that environment variable the first time anyone asks, so a first ask
    *inside* the context finds it on and it stays on for the rest of the process: every
    unseeded random op of the user's own TensorFlow code would then raise. Asking once here
    settles the state the process started with.
    """
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config

        config.is_op_determinism_enabled()


_pin_op_determinism_state()

_REFERENCE_BATCH = 64  # scale_lr_with_batch: learning_rate is the rate for this batch size
_INITIAL_LOSS_SAMPLES = 1024  # training samples the loss before training is measured on
_PREDICT_BATCH = 1024  # inference batch: large batches run faster on a CPU
# Compiling Keras's training step into a graph takes a few seconds, as long as ~10 eager steps
# of a small network: fits this short run eagerly (tests, the first rungs of a search).
_EAGER_STEPS = 8
# epochs="auto": the full budget from this many training pixel values (4 images of 32x32);
# below, toy-sized data (scikit-learn's test problems) trains proportionally fewer epochs.
_AUTO_EPOCHS = 20
_AUTO_EPOCHS_VALUES = 4096
# A training loss this many times that of the untrained network (or ln C) has exploded: the
# logits have grown without bound and the model is garbage even before the loss reaches NaN.
_EXPLOSION_FACTOR = 100.0
_FINITE_CHUNK = 8192  # rows per block when looking for the first NaN sample
_METADATA_ENTRY = "skcharclf.json"  # metadata file added to a saved .keras archive
_FORMAT = "skcharclf.KerasCharClassifier/1"


class TrainingDivergedError(RuntimeError):
    """Raised when training diverges: the loss became NaN or infinite, or exploded.

    Attributes
    ----------
    epoch : int
        Epoch (counted from 1) in which the loss stopped being finite.
    batch : int or None
        Batch (counted from 1) of that epoch, or None when a validation loss diverged.
    history : dict
        The learning curves up to and including the diverged epoch.
    findings : list of Finding
        The diagnosis of those curves (:func:`skcharclf.diagnostics.diagnose_history`).
    finding : Finding or None
        The ``"divergence"`` finding among them.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        batch: int | None,
        history: dict,
        findings: list,
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history
        self.findings = findings
        self.finding = next((f for f in findings if f.code == "divergence"), None)


@keras.saving.register_keras_serializable(package="skcharclf")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: cosine warm-up to the peak, then cosine annealing.

    Starts at ``max_learning_rate / div_factor``, rises over the first ``warmup_fraction`` of
    the steps, then falls to ``max_learning_rate / (div_factor * final_div_factor)``.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        warmup_fraction: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        peak = self.max_learning_rate
        start = peak / self.div_factor
        end = start / self.final_div_factor
        warmup = max(1.0, round(self.warmup_fraction * self.total_steps))
        rising = ops.minimum(step / warmup, 1.0)
        up = start + (peak - start) * (1.0 - ops.cos(math.pi * rising)) / 2.0
        falling = ops.clip((step - warmup) / max(self.total_steps - warmup, 1.0), 0.0, 1.0)
        down = end + (peak - end) * (1.0 + ops.cos(math.pi * falling)) / 2.0
        return ops.where(step < warmup, up, down)

    def get_config(self) -> dict:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


class _TrainingMonitor(keras.callbacks.Callback):
    """Records the per-epoch history, stops when the loss explodes, keeps checkpoints."""

    def __init__(
        self, *, keep: int | None, select: str, monitor: str | None, loss_limit: float
    ) -> None:
        super().__init__()
        self.loss_limit = loss_limit
        self.history: dict[str, list[float]] = {}
        self.diverged: tuple[int, int | None, str, float] | None = None
        self._keep = keep
        self._select = select
        self._monitor = monitor
        self._checkpoints: Any = deque(maxlen=keep) if keep and select == "last" else []
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(logs["loss"])
        if not math.isfinite(loss) or loss > self.loss_limit:
            self.diverged = (self._epoch + 1, batch + 1, "loss", loss)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        record = {key: float(value) for key, value in (logs or {}).items()}
        record.setdefault(
            "learning_rate",
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        )
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)
        if self.diverged is not None:
            return
        for key in ("loss", "val_loss"):
            if key in record and not math.isfinite(record[key]):
                self.diverged = (epoch + 1, None, key, record[key])
                self.model.stop_training = True
                return
        if self._keep:
            self._store(record)

    def _store(self, record: dict) -> None:
        weights = [w.copy() for w in self.model.get_weights()]
        if self._select == "last":
            self._checkpoints.append(weights)
            return
        sign = -1.0 if self._monitor == "val_f1_macro" else 1.0
        self._checkpoints.append((sign * record[self._monitor], self._epoch, weights))
        self._checkpoints.sort(key=lambda item: (item[0], item[1]))
        del self._checkpoints[self._keep :]

    def averaged_weights(self) -> list[np.ndarray] | None:
        """The mean of the kept checkpoints (integer state, e.g. seeds, from the last one)."""
        if not self._checkpoints:
            return None
        sets = (
            list(self._checkpoints)
            if self._select == "last"
            else [weights for _, _, weights in self._checkpoints]
        )
        averaged = []
        for arrays in zip(*sets, strict=True):
            if np.issubdtype(arrays[0].dtype, np.floating):
                averaged.append(np.mean(arrays, axis=0, dtype=np.float64).astype(arrays[0].dtype))
            else:
                averaged.append(arrays[-1])
        return averaged


def _first_bad_row(X: np.ndarray) -> int | None:
    """Index of the first row holding NaN or inf, without a full-size temporary."""
    # The float64 sum of a float32 array cannot overflow, so it is finite exactly when every
    # value is: one cheap pass for the common case.
    if np.isfinite(np.sum(X, dtype=np.float64)):
        return None
    for start in range(0, X.shape[0], _FINITE_CHUNK):
        bad = np.flatnonzero(~np.isfinite(X[start : start + _FINITE_CHUNK]).all(axis=1))
        if bad.size:
            return start + int(bad[0])
    return None


def _stratified_holdout(
    codes: np.ndarray, fraction: float, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, validation), stratified by class code.

    Every class keeps at least one training sample (a class with one sample stays entirely in
    training); the validation set holds ``round(fraction * n)`` samples, allocated to classes
    in proportion to their size.
    """
    counts = np.bincount(codes)
    quota = fraction * counts
    n_val = np.minimum(np.floor(quota).astype(int), np.maximum(counts - 1, 0))
    missing = round(fraction * codes.size) - int(n_val.sum())
    for c in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if missing <= 0:
            break
        if n_val[c] < counts[c] - 1:
            n_val[c] += 1
            missing -= 1
    val = [rng.permutation(np.flatnonzero(codes == c))[:k] for c, k in enumerate(n_val) if k]
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.intp)
    train_mask = np.ones(codes.size, dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx


def _pixel_statistics(X: np.ndarray, rows: np.ndarray) -> tuple[float, float, float, float]:
    """Min, max, mean and standard deviation of all pixels of ``X[rows]``, in blocks."""
    low, high, total, squares, count = np.inf, -np.inf, 0.0, 0.0, 0
    for start in range(0, rows.size, _FINITE_CHUNK):
        block = X[rows[start : start + _FINITE_CHUNK]].astype(np.float64)
        low, high = min(low, block.min()), max(high, block.max())
        total += block.sum()
        squares += np.square(block).sum()
        count += block.size
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    return float(low), float(high), float(mean), std


def _json_param(value: Any) -> tuple[bool, Any]:
    """Encode a parameter value for the metadata file; (False, None) when it cannot be."""
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, (Integral, Real)):
        return True, value.item() if hasattr(value, "item") else value
    if isinstance(value, os.PathLike):
        return True, os.fspath(value)
    if isinstance(value, (tuple, list)):
        encoded = [_json_param(v) for v in value]
        if all(ok for ok, _ in encoded):
            return True, {"tuple" if isinstance(value, tuple) else "list": [v for _, v in encoded]}
    if isinstance(value, dict):
        items = [(_json_param(k), _json_param(v)) for k, v in value.items()]
        if all(k[0] and v[0] for k, v in items):
            return True, {"dict": [[k[1], v[1]] for k, v in items]}
    return False, None


def _from_json_param(value: Any) -> Any:
    if isinstance(value, list):
        raise TypeError(f"untagged list {_short(value)} in the saved parameters")
    if not isinstance(value, dict):
        return value
    if value.keys() == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_from_json_param(v) for v in value["tuple"])
    if value.keys() == {"list"} and isinstance(value["list"], list):
        return [_from_json_param(v) for v in value["list"]]
    if value.keys() == {"dict"} and isinstance(value["dict"], list):
        return {_from_json_param(k): _from_json_param(v) for k, v in value["dict"]}
    raise TypeError(f"unexpected object {_short(value)} in the saved parameters")


class KerasCharClassifier(ClassifierMixin, BaseWrapper):
    """Residual convolutional network for small character images, as a scikit-learn classifier.

    Takes a *flat batch* (rows of flattened ``image_shape`` images, e.g. the output of
    :class:`~skcharclf.ImageResizer`) and trains a Keras network whose every design and training
    choice is a parameter below. The default is a small residual CNN sized for a CPU
    (24-48-96 filters behind a stride-2 stem, about 14 MFLOPs per 32x32 image), trained for 20
    epochs with Adam, a cosine learning-rate decay, the logit-adjusted loss (rare classes count
    as much as frequent ones), light online augmentation and a prior-initialised output layer.

    Parameters
    ----------
    image_shape : tuple of (int, int) or "auto", default="auto"
        ``(height, width)`` the rows of ``X`` were flattened from (the resizer's ``size``).
        ``"auto"`` takes it from ``X`` when ``X`` carries it (the
        :class:`~skcharclf.FlatImages` output of :class:`~skcharclf.ImageResizer`, passed on
        by :class:`~skcharclf.RareClassAugmenter`), else infers a square image when the
        number of features is a perfect square and a one-row image ``(1, n_features)``
        otherwise, so plain tabular data also works. A tuple that contradicts the geometry
        ``X`` carries is an error naming both steps.
    architecture : {"resnet", "cnn"} or callable, default="resnet"
        ``"resnet"``: stem convolution, then stages of residual blocks ("block A":
        conv-ReLU-conv plus an identity or 1x1 projection shortcut), halving the resolution
        between stages. ``"cnn"``: the same network without shortcuts. A callable is called as
        ``architecture((H, W, 1))`` and must return a :class:`keras.Model` body mapping images
        to feature maps or vectors (see :func:`skcharclf.models.build_char_model`).
    filters : tuple of int, default=(24, 48, 96)
        Filters of each stage; its length is the number of stages.
    blocks_per_stage : int, default=1
        Residual (or plain) blocks per stage.
    head : {"gap", "flatten"}, default="gap"
        Global average pooling (few parameters) or flattening (many) before the
        ``Dense(n_classes)`` output layer.
    batch_norm : {"none", "frozen", "trainable"}, default="none"
        Batch normalization after every convolution: none, frozen (``trainable=False``, a fixed
        affine map that adds no trainable weights) or trainable.
    dropout : float in [0, 1), default=0.0
        Dropout rate after every stage (after its activation) and, with ``head="flatten"``,
        before the output layer. Never after global average pooling.
    l2 : float, default=0.0
        L2 penalty on every kernel (added to the loss).
    zero_init_residual : bool, default=True
        Initialise the last convolution of every residual branch to zeros, so each block
        starts as the identity.
    bias_init : {"prior", "zeros"}, default="prior"
        Output bias at the start of training. ``"prior"``: the log of the training class
        frequencies (as the loss sees them, after ``sample_weight`` and ``class_weight``), so the
        untrained network already predicts the class priors and does not spend its first
        epochs learning the imbalance. ``"zeros"``: uniform.
    loss : {"ce", "focal", "logit_adjusted", "balanced_softmax"}, default="logit_adjusted"
        Cross-entropy from logits, focal loss (:class:`~skcharclf.losses.FocalLoss`),
        logit-adjusted loss (:class:`~skcharclf.losses.LogitAdjustedLoss`) or balanced softmax
        (:class:`~skcharclf.losses.BalancedSoftmaxLoss`). The logit-adjusted loss targets the
        balanced error: on long-tailed data it recalls rare classes much better than
        cross-entropy, and on balanced data it *is* cross-entropy.
    focal_gamma : float, default=2.0
        Focusing parameter of the focal loss (``0`` is cross-entropy).
    focal_alpha : float, array-like, dict, "balanced" or None, default=None
        Class weighting inside the focal loss: one float for all classes, one value per class
        (in the order of ``classes_``, or a dict keyed by label; missing labels get 1), or
        ``"balanced"`` (inverse class frequency, mean 1 over the training samples).
    tau : float, default=1.0
        Strength of the logit adjustment (``loss="logit_adjusted"``).
    label_smoothing : float in [0, 1), default=0.1
        Mix this much of a uniform distribution into the one-hot targets (with the
        logit-adjusted and balanced-softmax losses: of the class priors, which is uniform
        once the adjustment is taken off; see :class:`~skcharclf.losses.LogitAdjustedLoss`).
        The default 0.1 keeps the network from driving its logits to extremes on a few
        hundred images; with ``online_augmentation="default"`` it lifts the default pipeline
        on the built-in long-tailed data by about 1.3 macro-F1 points (see
        ``benchmarks/bench_quality.py``). Predicted probabilities are a little less extreme;
        ``0`` gives plain one-hot targets.
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into the sample weights (``"balanced"``: inversely
        proportional to class frequencies).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        Adam, AdamW (Adam with decoupled weight decay) or SGD with Nesterov momentum 0.9.
    learning_rate : float, default=1e-3
        Peak learning rate (for batches of 64 when ``scale_lr_with_batch=True``).
    lr_schedule : {"constant", "cosine", "exponential", "step", "plateau", "onecycle"}, \
            default="cosine"
        ``"cosine"``: cosine decay to zero over all epochs; ``"exponential"``: smooth decay to
        1 % of the initial rate; ``"step"``: divide by 10 after 50 % and 75 % of the epochs;
        ``"plateau"``: halve when the monitored loss stops improving for ``max(1, patience //
        2)`` epochs; ``"onecycle"``: warm up over 30 % of the steps, then anneal.
    weight_decay : float, default=0.0
        Decoupled weight decay of the optimizer (all three optimizers; with ``"adamw"`` and 0
        it is plain Adam).
    batch_size : int, default=64
        Samples per gradient update.
    epochs : int or "auto", default="auto"
        Passes over the training data (at most, with early stopping). ``"auto"`` is 20
        epochs, the budget sized for real image sets, scaled down in proportion on a toy-sized
        training set of fewer than 4,096 values (pixels times samples: fewer than 4 images of
        32x32 or 64 of 8x8, scikit-learn's small test problems), with at least one epoch, so
        a default fit on a handful of samples costs a second, not a minute. The epochs run
        are ``epochs_``.
    scale_lr_with_batch : bool, default=False
        Scale the learning rate linearly with the batch size (``learning_rate * batch_size /
        64``): double the batch, double the rate.
    early_stopping : bool, default=False
        Stop when the monitored validation score has not improved for ``patience`` epochs and
        restore the weights of the best epoch.
    patience : int, default=5
        Epochs without improvement before early stopping.
    validation_fraction : float in [0, 1), default=0.1
        Fraction of the training data held out (stratified) as the validation set when one
        is needed (``early_stopping=True`` or ``checkpoint_selection="best"``) and
        ``validation_data`` is not given. Each class keeps at least one training sample, so
        a class with a single image is never validated.
    validation_data : tuple of (X_val, y_val), optional
        An explicit validation set; its scores are recorded in ``history_`` and used by early
        stopping and checkpoint selection. No training data is held out then.
    monitor : {"val_loss", "val_f1_macro"}, default="val_loss"
        The validation score early stopping, checkpoint selection and the plateau schedule
        follow.
    online_augmentation : {None, "light", "default"}, default="default"
        Random rotation, translation, zoom and contrast applied to every training batch (Keras
        preprocessing layers, inactive at prediction): the procedure's "fit with
        ImageDataGenerator". ``"default"`` (rotation up to 10 degrees, translation and zoom up
        to 10 %, contrast up to 20 %) shows every epoch new variants of the few images a rare
        class has; ``"light"`` halves it. The layers assume no pixel range: areas shifted into
        view repeat the nearest edge pixel (the background of a character crop) and the
        contrast change is not clipped. See :func:`skcharclf.models.augmentation_layers`.
    normalization : {"scale", "center", "standardize"}, default="standardize"
        Pixel normalisation learned on the training data and stored in the model: ``"scale"``
        maps the training minimum and maximum to 0 and 1, ``"center"`` subtracts the mean,
        ``"standardize"`` also divides by the standard deviation (one mean and one standard
        deviation over all pixels).
    checkpoint_averaging : int, optional
        Average the weights of ``k`` epochs into the final model: the last ``k``, or the ``k``
        best by the validation score (``checkpoint_selection``). Replaces the weights early
        stopping restores.
    checkpoint_selection : {"last", "best"}, default="last"
        Which epochs ``checkpoint_averaging`` averages.
    warm_start : bool, default=False
        Continue from the fitted network (weights and normalisation) on the next ``fit``
        instead of starting afresh; the optimizer, schedule and ``history_`` start anew. The
        labels must be a subset of ``classes_``.
    backbone_weights : str or path, optional
        A model file written by :meth:`save` (or any ``.keras`` file with a layer named
        ``"backbone"``), or a ``.weights.h5`` file of a backbone: its backbone weights are
        loaded before training (transfer learning). The backbone must be built the same way
        (architecture, filters, blocks_per_stage, batch_norm, image_shape).
    freeze_backbone : bool, default=False
        Train only the output layer; the backbone (and its batch normalisation) stays fixed:
        the procedure's "no trainable layers" constraint.
    n_threads : int, optional
        Limit TensorFlow's thread pools (for parallel workers; only effective before
        TensorFlow's first operation in the process).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling, the validation split, dropout and
        augmentation. With an int, two fits on a CPU give identical predictions.
    verbose : int, default=0
        0: silent. 1: Keras progress bars and, at the end, the learning-curve diagnosis. 2:
        one line per epoch and the diagnosis.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any type scikit-learn accepts: ints, strings, ...).
    n_classes_ : int
        Number of classes.
    n_features_in_ : int
        Number of features (pixels) seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features, when ``X`` was a data frame with string column names.
    image_shape_ : tuple of (int, int)
        The resolved ``image_shape``.
    epochs_ : int
        The resolved ``epochs``.
    model_ : keras.Model
        The trained network: flat batch in, class logits out (normalisation included).
    history_ : dict of list of float
        Per-epoch ``"loss"``, ``"accuracy"``, ``"f1_macro"`` (training, measured on the fly
        during the epoch), ``"val_loss"``, ``"val_accuracy"``, ``"val_f1_macro"`` (when a
        validation set is used) and ``"learning_rate"``.
    initial_loss_ : float
        The training loss before the first update (on up to 1,024 training samples).
    best_epoch_ : int
        Index into the ``history_`` lists of the best epoch by ``monitor`` (the last epoch
        without a validation set).
    class_priors_ : ndarray of shape (n_classes,)
        Class frequencies of the training data as the loss sees them (weighted).
    unvalidated_classes_ : ndarray
        The classes without an image in the validation set, whose overfitting the learning
        curves cannot show: all of ``classes_`` when training had no validation set (the
        default: see ``early_stopping`` and ``validation_data``), none when every class was
        validated.
    diagnosis_ : list of Finding
        What :func:`skcharclf.diagnostics.diagnose_history` finds in the learning curves.
        Without a (complete) validation set it holds a ``"no_validation"`` (or
        ``"validation_incomplete"``) finding: overfitting cannot be judged, and a model
        that reaches 100% training accuracy shows the procedure's classic overfitting sign.

    See Also
    --------
    skcharclf.make_char_pipeline : Denoiser, resizer, rare-class augmenter and this classifier.
    skcharclf.load_model : Load a model written by :meth:`save`.

    Notes
    -----
    Training data is fed as a ``tf.data`` pipeline of shuffled row indices that takes each batch
    from the NumPy array when it is needed, with tf.data's autotuning off (it leaves the CPU
    idle on small machines): training makes no copy of the data set. Inference uses batches of
    1,024. Fits of at most 8 gradient steps run eagerly, and predictions on at most 1,024
    samples call the network directly: compiling Keras's graph functions would take longer.

    Reproducibility: seeds derived from ``random_state`` go to every initialiser, random layer,
    the validation split and the shuffle, and TensorFlow's global seed and op determinism are
    set for the duration of ``fit`` (through scikeras, which restores them afterwards). On a
    CPU, op determinism cost no measurable time, and fits were identical without it too; it
    matters for GPUs.

    The training loss is checked after every batch: when it becomes NaN or infinite, or grows
    beyond 100 times that of the untrained network, training stops and
    :class:`TrainingDivergedError` says what happened and what to change.

    A fit that does not complete (an error, a diverged training, Ctrl-C) leaves the estimator
    exactly as it was before the call: a fitted one keeps its previous network and fitted
    attributes and predicts as before, an unfitted one stays unfitted. Parameters, data and
    ``validation_data`` are checked before training starts. :meth:`save` replaces an existing
    file only once the new one is complete.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf import KerasCharClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(60, 64).astype("float32")
    >>> y = np.repeat(["a", "b", "c"], 20)
    >>> X[y == "b", :32] += 1.0
    >>> clf = KerasCharClassifier(image_shape=(8, 8), filters=(8,), epochs=3, random_state=0)
    >>> clf.fit(X, y).predict(X[:2]).shape
    (2,)
    >>> sorted(clf.history_)
    ['accuracy', 'f1_macro', 'learning_rate', 'loss']
    """

    _parameter_constraints: dict = {
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "architecture": [StrOptions({"resnet", "cnn"}), callable],
        "filters": [tuple, list],
        "blocks_per_stage": [Interval(Integral, 1, None, closed="left")],
        "head": [StrOptions({"gap", "flatten"})],
        "batch_norm": [StrOptions({"none", "frozen", "trainable"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "l2": [Interval(Real, 0, None, closed="left")],
        "zero_init_residual": ["boolean"],
        "bias_init": [StrOptions({"prior", "zeros"})],
        "loss": [StrOptions({"ce", "focal", "logit_adjusted", "balanced_softmax"})],
        "focal_gamma": [Interval(Real, 0, None, closed="left")],
        "focal_alpha": [
            None,
            StrOptions({"balanced"}),
            Interval(Real, 0, None, closed="neither"),
            "array-like",
            dict,
        ],
        "tau": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [
            StrOptions({"constant", "cosine", "exponential", "step", "plateau", "onecycle"})
        ],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "scale_lr_with_batch": ["boolean"],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "validation_data": [None, tuple, list],
        "monitor": [StrOptions({"val_loss", "val_f1_macro"})],
        "online_augmentation": [None, StrOptions({"light", "default"})],
        "normalization": [StrOptions({"scale", "center", "standardize"})],
        "checkpoint_averaging": [None, Interval(Integral, 1, None, closed="left")],
        "checkpoint_selection": [StrOptions({"last", "best"})],
        "warm_start": ["boolean"],
        "backbone_weights": [None, str, os.PathLike],
        "freeze_backbone": ["boolean"],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        image_shape: tuple[int, int] | str = "auto",
        *,
        architecture: str | Any = "resnet",
        filters: tuple[int, ...] = (24, 48, 96),
        blocks_per_stage: int = 1,
        head: str = "gap",
        batch_norm: str = "none",
        dropout: float = 0.0,
        l2: float = 0.0,
        zero_init_residual: bool = True,
        bias_init: str = "prior",
        loss: str = "logit_adjusted",
        focal_gamma: float = 2.0,
        focal_alpha: Any = None,
        tau: float = 1.0,
        label_smoothing: float = 0.1,
        class_weight: dict | str | None = None,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        lr_schedule: str = "cosine",
        weight_decay: float = 0.0,
        batch_size: int = 64,
        epochs: int | str = "auto",
        scale_lr_with_batch: bool = False,
        early_stopping: bool = False,
        patience: int = 5,
        validation_fraction: float = 0.1,
        validation_data: tuple | None = None,
        monitor: str = "val_loss",
        online_augmentation: str | None = "default",
        normalization: str = "standardize",
        checkpoint_averaging: int | None = None,
        checkpoint_selection: str = "last",
        warm_start: bool = False,
        backbone_weights: str | os.PathLike | None = None,
        freeze_backbone: bool = False,
        n_threads: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        # BaseWrapper.__init__ is not called: it would add scikeras's own parameters (model,
        # metrics, callbacks, ...) that this estimator replaces with explicit ones.
        self.image_shape = image_shape
        self.architecture = architecture
        self.filters = filters
        self.blocks_per_stage = blocks_per_stage
        self.head = head
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.l2 = l2
        self.zero_init_residual = zero_init_residual
        self.bias_init = bias_init
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.tau = tau
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.scale_lr_with_batch = scale_lr_with_batch
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.validation_data = validation_data
        self.monitor = monitor
        self.online_augmentation = online_augmentation
        self.normalization = normalization
        self.checkpoint_averaging = checkpoint_averaging
        self.checkpoint_selection = checkpoint_selection
        self.warm_start = warm_start
        self.backbone_weights = backbone_weights
        self.freeze_backbone = freeze_backbone
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing: scikeras's BaseWrapper overrides parts of BaseEstimator with
    # -- behaviour for its routed ``model__``/``fit__`` parameters; this estimator has none.

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return BaseEstimator._get_param_names.__func__(cls)

    def set_params(self, **params: Any) -> KerasCharClassifier:
        """Set the parameters of this estimator (see :meth:`get_params`).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : KerasCharClassifier
        """
        return BaseEstimator.set_params(self, **params)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return BaseEstimator.__repr__(self, N_CHAR_MAX=N_CHAR_MAX)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.classifier_tags.multi_label = False
        # A few epochs on scikit-learn's small toy problems do not reach their accuracy bars.
        tags.classifier_tags.poor_score = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "history_")

    @property
    def partial_fit(self) -> Any:
        # BaseWrapper's one-epoch partial_fit would bypass the schedule, the validation split
        # and the class weights of fit; hide it (hasattr() is then False, as scikit-learn's
        # checks and meta-estimators expect). Use warm_start=True to continue training.
        raise AttributeError(
            "KerasCharClassifier has no partial_fit; use warm_start=True to continue training."
        )

    # -- scikeras hooks ----------------------------------------------------------------------

    @property
    def target_encoder(self) -> ClassifierLabelEncoder:
        """scikeras's label encoder: labels of any type <-> class indices 0..n_classes-1."""
        return ClassifierLabelEncoder()

    def _check_model_param(self) -> Any:
        return self._keras_build_fn

    def _keras_build_fn(self, meta: dict) -> Any:
        """Build the (uncompiled) network; scikeras calls it with the fitted metadata."""
        return build_char_model(
            meta["image_shape_"],
            meta["n_classes_"],
            architecture=self.architecture,
            filters=tuple(self.filters),
            blocks_per_stage=self.blocks_per_stage,
            head=self.head,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            l2=self.l2,
            zero_init_residual=self.zero_init_residual,
            online_augmentation=self.online_augmentation,
            seed=self._seed,
        )

    def _validate_data(
        self, X: Any = None, y: Any = None, reset: bool = False, y_numeric: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate ``X`` (and ``y``): dense float32, finite, the fitted number of features."""
        common = {"dtype": np.float32, "accept_sparse": False, "ensure_all_finite": False}
        if y is None:
            X = validate_data(self, X, reset=reset, **common)
        else:
            X, y = validate_data(self, X, y, reset=reset, **common)
        bad = _first_bad_row(X)
        if bad is not None:
            raise ValueError(
                f"sample {bad} of X contains NaN or infinite values; remove or repair it "
                "before fitting or predicting."
            )
        return X, y

    def _check_model_compatibility(self, y: np.ndarray) -> None:
        outputs = self.model_.outputs[0].shape[-1]
        if outputs != self.n_classes_:
            raise ValueError(
                f"the network has {outputs} outputs but the data has {self.n_classes_} classes."
            )

    # -- fit -----------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    @restore_on_failure
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> KerasCharClassifier:
        """Train the network on a flat batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of flattened images (``n_features = H * W`` of ``image_shape``).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights (multiplied by ``class_weight``; normalised to mean 1, so they
            do not change the effective learning rate). Samples of weight 0 are left out.

        Returns
        -------
        self : KerasCharClassifier
            The fitted estimator.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or infinite or explodes (over 100 times its value
            before training); the estimator is then left as it was before the call.

        Warns
        -----
        NoValidationWarning
            Once, when a run of at least four epochs had a validation set without images of
            some classes (``unvalidated_classes_``), or had none and its training accuracy
            reached ``overfit_accuracy`` (98 %), the procedure's classic overfitting sign:
            overfitting (on those classes) cannot be judged. The message says why and what
            to do, and ``diagnosis_`` holds the matching finding. A run without validation
            and without that sign only gets the ``"no_validation"`` info finding.

        Notes
        -----
        A fit that does not complete (an error, a diverged training, Ctrl-C) leaves the
        estimator exactly as it was before the call: a fitted one keeps its network,
        ``classes_``, ``history_`` and ``diagnosis_``, an unfitted one stays unfitted. With
        ``warm_start=True`` a copy of the network is trained and replaces it at the end.
        """
        limit_threads(self.n_threads)
        reuse = bool(self.warm_start) and self.__sklearn_is_fitted__()
        geometry = image_geometry(X)
        X, y = self._validate_data(X, y, reset=not reuse)
        check_classification_targets(y)
        X, y, weights = self._training_weights(X, y, sample_weight)
        labels, codes = np.unique(y, return_inverse=True)
        if labels.size < 2:
            raise ValueError(
                f"y holds only one class ({label_text(labels[0])}); a classifier needs samples "
                "of at least 2 classes."
            )
        step = f"KerasCharClassifier(image_shape={self.image_shape!r})"
        image_shape = resolve_geometry(self.image_shape, X.shape[1], geometry, step)
        if reuse and image_shape != self.image_shape_:
            raise ValueError(
                f"warm_start: image_shape resolves to {image_shape}, but the network was "
                f"built for {self.image_shape_}."
            )
        self._check_filters()
        self._check_validation_data(labels)  # now, not after the network is built
        rng = check_random_state(self.random_state)
        self._seed = draw_seed(rng)
        train_idx, val_idx = self._split(codes, rng)

        with tensorflow_random_state(self._seed):
            self._fit_network(X, y, weights, train_idx, val_idx, image_shape, reuse)
        self._report()
        self._warn_if_unjudged()
        return self

    def _check_filters(self) -> None:
        if callable(self.architecture):
            return
        filters = self.filters
        if len(filters) == 0 or not all(
            isinstance(f, Integral) and not isinstance(f, bool) and f > 0 for f in filters
        ):
            raise ValueError(
                f"filters must be a non-empty tuple of positive integers, got {filters!r}."
            )

    def _training_weights(
        self, X: np.ndarray, y: np.ndarray, sample_weight: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Combine sample and class weights, drop zero-weight samples, normalise to mean 1."""
        if sample_weight is None and self.class_weight is None:
            return X, y, None
        weights = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if self.class_weight is not None:
            weights = weights * compute_sample_weight(self.class_weight, y)
        keep = weights > 0
        if not keep.any():
            raise ValueError("every sample has weight 0: there is nothing to train on.")
        if not keep.all():
            X, y, weights = X[keep], y[keep], weights[keep]
        weights = weights / weights.mean()
        if np.allclose(weights, 1.0):
            return X, y, None
        return X, y, weights.astype(np.float32)

    def _needs_validation(self) -> bool:
        return self.early_stopping or (
            self.checkpoint_averaging is not None and self.checkpoint_selection == "best"
        )

    def _split(
        self, codes: np.ndarray, rng: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Training rows and held-out validation rows (None when no split is needed)."""
        everything = np.arange(codes.size)
        if self.validation_data is not None or not self._needs_validation():
            return everything, None
        why = "early_stopping=True" if self.early_stopping else 'checkpoint_selection="best"'
        train_idx, val_idx = _stratified_holdout(codes, self.validation_fraction, rng)
        if val_idx.size == 0:
            raise ValueError(
                f"{why} needs a validation set, but validation_fraction="
                f"{self.validation_fraction} of {codes.size} training samples holds out no "
                "sample (each class keeps at least one training sample). Pass more data, a "
                "larger validation_fraction or validation_data=(X_val, y_val)."
            )
        return train_idx, val_idx

    def _fit_network(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None,
        train_idx: np.ndarray,
        val_idx: np.ndarray | None,
        image_shape: tuple[int, int],
        reuse: bool,
    ) -> None:

        if reuse:
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"warm_start: y holds label(s) {unseen.tolist()} the network was not built "
                    f"for (classes_={self.classes_.tolist()}); refit with warm_start=False."
                )
            # Train a copy: the fitted network stays untouched should this fit not complete.
            self.model_ = copy_network(self.model_)
        else:
            self.image_shape_ = image_shape
            # scikeras: fits the label encoder (classes_, n_classes_) and builds the network
            # through _keras_build_fn.
            self._initialize(X, y)
        codes = self.target_encoder_.transform(y).astype(np.int32).ravel()
        self._check_model_compatibility(codes)
        priors = np.bincount(
            codes[train_idx],
            weights=None if weights is None else weights[train_idx],
            minlength=self.n_classes_,
        )
        self.class_priors_ = priors / priors.sum()
        loss = self._make_loss()
        if not reuse:
            self._set_normalization(X, train_idx)
            if self.backbone_weights is not None:
                self._load_backbone_weights()
        self._set_backbone_trainable()

        self.initial_loss_ = self._start(X, codes, weights, train_idx, loss, reuse)
        train = self._dataset(X, codes, weights, train_idx, self.batch_size, self._seed)
        validation, val_codes = self._validation_dataset(X, codes, val_idx)
        validated = np.zeros(self.n_classes_, dtype=bool)
        if val_codes is not None:
            validated[val_codes] = True
        self.unvalidated_classes_ = self.classes_[~validated]
        self.epochs_ = self._resolve_epochs(train_idx.size * X.shape[1])
        steps = self.epochs_ * math.ceil(train_idx.size / self.batch_size)
        self.model_.compile(
            optimizer=self._make_optimizer(steps),
            loss=loss,
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                MacroF1Score(self.n_classes_, name="f1_macro"),
            ],
            run_eagerly=steps <= _EAGER_STEPS,
        )
        monitor = _TrainingMonitor(
            keep=self.checkpoint_averaging,
            select=self.checkpoint_selection,
            monitor=self.monitor,
            loss_limit=_EXPLOSION_FACTOR * max(self.initial_loss_, math.log(self.n_classes_)),
        )
        callbacks = [monitor, *self._callbacks(validation is not None)]
        self.model_.fit(
            train,
            epochs=self.epochs_,
            validation_data=validation,
            callbacks=callbacks,
            verbose=self.verbose,
            shuffle=False,
        )
        if monitor.diverged is not None:
            self._raise_diverged(monitor)
        self.history_ = monitor.history
        averaged = monitor.averaged_weights()
        if averaged is not None:
            self.model_.set_weights(averaged)
        self.best_epoch_ = self._best_epoch(validation is not None)

    def _resolve_epochs(self, n_values: int) -> int:
        """``epochs``, or the budget of ``"auto"`` for ``n_values`` training pixel values."""
        if self.epochs != "auto":
            return int(self.epochs)
        share = n_values / _AUTO_EPOCHS_VALUES
        return max(1, min(_AUTO_EPOCHS, math.ceil(_AUTO_EPOCHS * share)))

    def _set_backbone_trainable(self) -> None:
        backbone = self.model_.get_layer("backbone")
        if self.freeze_backbone:
            backbone.trainable = False
        elif not backbone.trainable:
            # Unfreezing is recursive in Keras: batch normalization built frozen stays frozen.
            backbone.trainable = True
            if self.batch_norm == "frozen":
                for layer in backbone._flatten_layers(include_self=False):
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False

    def _set_normalization(self, X: np.ndarray, train_idx: np.ndarray) -> None:
        """Learn the pixel normalisation from the training rows."""
        low, high, mean, std = _pixel_statistics(X, train_idx)
        if self.normalization == "scale":
            span = high - low if high > low else 1.0
            scale, offset = 1.0 / span, -low / span
        elif self.normalization == "center":
            scale, offset = 1.0, -mean
        else:
            scale = 1.0 / std if std > 0 else 1.0
            offset = -mean * scale
        set_normalization(self.model_, scale, offset)

    def _load_backbone_weights(self) -> None:
        path = os.fspath(self.backbone_weights)
        if not os.path.isfile(path):
            raise ValueError(f"backbone_weights={path!r}: no such file.")
        backbone = self.model_.get_layer("backbone")
        try:
            if path.endswith(".weights.h5"):
                backbone.load_weights(path)
            else:
                source = keras.saving.load_model(path, compile=False, safe_mode=True)
                backbone.set_weights(source.get_layer("backbone").get_weights())
        except ValueError as exc:
            raise ValueError(
                f"backbone_weights={path!r} do not fit this backbone: architecture, filters, "
                "blocks_per_stage, batch_norm and image_shape must match the model they were "
                f"saved from ({exc})"
            ) from exc

    def _class_values(self, value: Any, name: str) -> np.ndarray:
        """A per-class parameter (array in ``classes_`` order, or dict by label) as an array."""
        if isinstance(value, dict):
            unknown = [label for label in value if label not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"{name} has labels {unknown} that are not in classes_.")
            return np.array([float(value.get(label, 1.0)) for label in self.classes_.tolist()])
        values = np.asarray(value, dtype=float).ravel()
        if values.size != self.n_classes_:
            raise ValueError(
                f"{name} has {values.size} values but there are {self.n_classes_} classes."
            )
        return values

    def _make_loss(self) -> Any:
        smoothing = self.label_smoothing
        if self.loss == "focal":
            alpha = self.focal_alpha
            if isinstance(alpha, str):
                alpha = 1.0 / (self.n_classes_ * np.maximum(self.class_priors_, 1e-12))
            elif alpha is not None and not isinstance(alpha, Real):
                alpha = self._class_values(alpha, "focal_alpha")
            return FocalLoss(self.focal_gamma, alpha=alpha, label_smoothing=smoothing)
        priors = np.maximum(self.class_priors_, 1e-12)
        if self.loss == "logit_adjusted":
            return LogitAdjustedLoss(priors, tau=self.tau, label_smoothing=smoothing)
        if self.loss == "balanced_softmax":
            return BalancedSoftmaxLoss(priors, label_smoothing=smoothing)
        return CrossEntropy(label_smoothing=smoothing)

    def _make_optimizer(self, total_steps: int) -> Any:
        schedules = keras.optimizers.schedules
        rate = self.learning_rate
        if self.scale_lr_with_batch:
            rate = rate * self.batch_size / _REFERENCE_BATCH
        total_steps = max(total_steps, 1)
        if self.lr_schedule == "cosine":
            rate = schedules.CosineDecay(rate, decay_steps=total_steps)
        elif self.lr_schedule == "exponential":
            rate = schedules.ExponentialDecay(rate, decay_steps=total_steps, decay_rate=0.01)
        elif self.lr_schedule == "step":
            boundaries = [max(1, total_steps // 2), max(2, (3 * total_steps) // 4)]
            rate = schedules.PiecewiseConstantDecay(boundaries, [rate, rate / 10, rate / 100])
        elif self.lr_schedule == "onecycle":
            rate = OneCycleSchedule(rate, total_steps)
        else:
            rate = float(rate)
        decay = self.weight_decay or None
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay)
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(rate, weight_decay=self.weight_decay)
        return keras.optimizers.Adam(rate, weight_decay=decay)

    def _callbacks(self, has_validation: bool) -> list:
        monitor = self.monitor if has_validation else "loss"
        mode = "max" if monitor == "val_f1_macro" else "min"
        callbacks = []
        if self.early_stopping:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor, mode=mode, patience=self.patience, restore_best_weights=True
                )
            )
        if self.lr_schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor,
                    mode=mode,
                    factor=0.5,
                    patience=max(1, self.patience // 2),
                    min_lr=self.learning_rate / 1000,
                )
            )
        return callbacks

    @staticmethod
    def _dataset(
        X: np.ndarray,
        y: np.ndarray | None,
        w: np.ndarray | None,
        rows: np.ndarray,
        batch_size: int,
        seed: int | None,
    ) -> Any:
        """A ``tf.data`` pipeline of batches of ``rows``, each gathered from the NumPy arrays.

        Only the row indices go through tf.data (shuffled there, with ``seed``); every batch is
        taken from ``X`` when it is needed. Turning ``X`` into a tensor instead would copy the
        whole data set (twice, at the peak).
        """
        import tensorflow as tf

        arrays = [a for a in (X, y, w) if a is not None]
        dtypes = [tf.as_dtype(a.dtype) for a in arrays]

        def take(index: np.ndarray) -> list[np.ndarray]:
            return [a[index] for a in arrays]

        def gather(index: Any) -> Any:
            parts = tf.numpy_function(take, [index], dtypes, stateful=False)
            for part, array in zip(parts, arrays, strict=True):
                part.set_shape((None, *array.shape[1:]))
            return tuple(parts) if len(parts) > 1 else parts[0]

        data = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64))
        if seed is not None:
            data = data.shuffle(rows.size, seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size)
        options = tf.data.Options()
        # tf.data's autotuner stalls training on small CPUs (see perf-notes): fixed buffers.
        options.autotune.enabled = False
        return data.map(gather).with_options(options)

    def _check_validation_data(
        self, classes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``validation_data`` checked against the training labels ``classes`` (or None)."""
        if self.validation_data is None:
            return None
        try:
            X_val, y_val = self.validation_data
        except (TypeError, ValueError) as exc:
            raise ValueError("validation_data must be a tuple (X_val, y_val).") from exc
        X_val, y_val = self._validate_data(X_val, y_val, reset=False)
        unseen = np.setdiff1d(np.unique(y_val), classes)
        if unseen.size:
            raise ValueError(
                f"validation_data holds label(s) {unseen.tolist()} that are not in the "
                "training data."
            )
        return X_val, y_val

    def _validation_dataset(
        self, X: np.ndarray, codes: np.ndarray, val_idx: np.ndarray | None
    ) -> tuple[Any, np.ndarray | None]:
        """The validation batches and their class codes, or (None, None) without validation."""
        if val_idx is not None:
            return self._dataset(X, codes, None, val_idx, _PREDICT_BATCH, None), codes[val_idx]
        checked = self._check_validation_data(self.classes_)
        if checked is None:
            return None, None
        X_val, y_val = checked
        codes = self.target_encoder_.transform(y_val).astype(np.int32).ravel()
        data = self._dataset(X_val, codes, None, np.arange(codes.size), _PREDICT_BATCH, None)
        return data, codes

    def _start(
        self,
        X: np.ndarray,
        codes: np.ndarray,
        weights: np.ndarray | None,
        rows: np.ndarray,
        loss: Any,
        reuse: bool,
    ) -> float:
        """Set the prior output bias and return the training loss before the first update.

        Both come from one forward pass over up to 1,024 training samples. With
        ``bias_init="prior"`` the bias is chosen so that the mean logits over these samples
        are the log priors: the Glorot-initialised output layer otherwise adds a random offset
        per class that hides the priors.
        """
        if rows.size > _INITIAL_LOSS_SAMPLES:
            rows = np.sort(
                np.random.RandomState(self._seed).choice(rows, _INITIAL_LOSS_SAMPLES, False)
            )
        logits = keras.ops.convert_to_numpy(self.model_(X[rows], training=False))
        if not reuse and self.bias_init == "prior":
            target = np.log(np.maximum(self.class_priors_, 1e-12))
            if isinstance(loss, LogitAdjustedLoss):
                # The loss adds its own offsets to the logits: start so that what the loss
                # sees predicts the priors.
                target = target - loss.logit_offsets()
            shift = target - logits.mean(axis=0)
            bias = keras.ops.convert_to_numpy(self.model_.get_layer("logits").bias)
            set_head_bias(self.model_, bias + shift)
            logits = logits + shift
        value = loss(
            codes[rows], logits, sample_weight=None if weights is None else weights[rows]
        )
        penalty = sum(float(p) for p in self.model_.losses)
        return float(value) + penalty

    def _best_epoch(self, has_validation: bool) -> int:
        n_epochs = len(self.history_["loss"])
        if not has_validation:
            return n_epochs - 1
        scores = np.asarray(self.history_[self.monitor])
        return int(np.argmax(scores) if self.monitor == "val_f1_macro" else np.argmin(scores))

    def _diagnose(self, history: dict) -> list:
        from ._initial_loss import initial_loss_reference
        from .diagnostics import diagnose_history

        comparable, smoothing = initial_loss_reference(self.get_params(deep=False))
        return diagnose_history(
            history,
            n_classes=self.n_classes_,
            initial_loss=self.initial_loss_ if comparable else None,
            class_priors=self.class_priors_ if self.bias_init == "prior" else None,
            label_smoothing=smoothing,
            unvalidated_classes=getattr(self, "unvalidated_classes_", None),
        )

    def _raise_diverged(self, monitor: _TrainingMonitor) -> None:
        epoch, batch, key, value = monitor.diverged
        history = dict(monitor.history)
        if batch is not None and len(history.get("loss", [])) < epoch:
            history = {k: v for k, v in history.items() if not k.startswith("val_")}
            history["loss"] = [*history.get("loss", []), value]
        findings = self._diagnose(history)
        where = f"epoch {epoch}, batch {batch}" if batch is not None else f"epoch {epoch}"
        what = "training" if key == "loss" else "validation"
        if math.isfinite(value):
            what = (
                f"{what} loss exploded to {value:.3g} (it was {self.initial_loss_:.3g} before "
                "training)"
            )
        else:
            what = f"{what} loss became {value}"
        rate = self.learning_rate
        message = (
            f"Training diverged: the {what} at {where} (learning_rate={rate:g}). Training "
            "stopped and the "
            f"estimator is left as it was before this fit. Try a lower learning rate, e.g. "
            f"learning_rate={rate / 10:g}, or a warm-up schedule (lr_schedule='onecycle'); "
            "check that the inputs hold no extreme values."
        )
        raise TrainingDivergedError(
            message, epoch=epoch, batch=batch, history=history, findings=findings
        )

    def _report(self) -> None:
        self.diagnosis_ = self._diagnose(self.history_)
        if self.verbose:
            from .diagnostics import format_findings

            print(f"Diagnosis of the learning curves\n{format_findings(self.diagnosis_)}")

    def _warn_if_unjudged(self) -> None:
        """Warn once when the diagnosis could not judge overfitting (on some classes)."""
        from .diagnostics import NoValidationWarning

        finding = next(
            (f for f in self.diagnosis_ if f.code in ("no_validation", "validation_incomplete")),
            None,
        )
        # A run that asked for no validation and shows no sign of memorising is only noted in
        # diagnosis_: a warning on every such fit (each rung of a search, say) would be noise.
        if finding is None or (finding.code == "no_validation" and finding.severity == "info"):
            return
        n_epochs = len(self.history_["loss"])
        missing = labels_text(self.unvalidated_classes_)
        if finding.code == "validation_incomplete":
            source = (
                "validation_data"
                if self.validation_data is not None
                else f"the stratified validation split (validation_fraction="
                f"{self.validation_fraction:g})"
            )
            what = (
                f"and {source} holds no image of class(es) {missing}, so overfitting on them "
                "cannot be judged"
            )
            if self.validation_data is None:
                what += " (every class keeps at least one training image: these have too few)"
        else:
            what = (
                "without a validation set (no validation_data was given, and none is held out "
                'unless early_stopping=True or checkpoint_selection="best"), so overfitting '
                "cannot be judged"
            )
            if finding.severity == "warning":
                epoch = finding.evidence["sign_epoch"]
                accuracy = self.history_["accuracy"][epoch - 1]
                what += (
                    f"; its training accuracy reached {100 * accuracy:.0f}% at epoch {epoch}, "
                    "the procedure's classic overfitting sign"
                )
        warnings.warn(
            f"KerasCharClassifier trained {n_epochs} epochs {what}. Give "
            "validation_data=(X_val, y_val) or early_stopping=True (holds out a stratified "
            "validation_fraction), use fewer cross-validation folds, or get more images of "
            "the smallest classes; diagnosis_ says more.",
            NoValidationWarning,
            stacklevel=2,
        )

    # -- predict -------------------------------------------------------------------------------

    def _predict_raw(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Logits of the network for ``X`` (scikeras maps them back to labels)."""

        check_is_fitted(self)
        geometry = image_geometry(X)
        if geometry is not None and geometry[0] != self.image_shape_:
            raise ValueError(
                f"X holds {geometry[0][0]}x{geometry[0][1]} images (from {geometry[1]}), but "
                f"this classifier was fitted on images of image_shape_={self.image_shape_}; "
                "predict with the preprocessing it was trained with."
            )
        X, _ = self._validate_data(X, reset=False)
        if X.shape[0] <= _PREDICT_BATCH:
            # One batch: a direct call costs less than compiling Keras's predict function.
            return keras.ops.convert_to_numpy(self.model_(X, training=False))
        data = self._dataset(X, None, None, np.arange(X.shape[0]), _PREDICT_BATCH, None)
        return self.model_.predict(data, verbose=0)

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of flattened images.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return super().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Predict class probabilities (the softmax of the network's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of flattened images.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; rows sum to 1.
        """
        logits = self._predict_raw(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted classifier as a Keras ``.keras`` file with JSON metadata inside.

        Unlike pickle / joblib, the file holds no Python code: :func:`load_model` reads it
        with Keras's safe mode, so loading a model file from someone else cannot run code.

        Parameters
        ----------
        path : str or path
            File name ending in ``.keras``. An existing file is replaced only once the new
            one is complete: a failed save (full disk, Ctrl-C) leaves it as it was.

        See Also
        --------
        load_model : Load the file back.
        """
        check_is_fitted(self)
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"path must end in '.keras', got {str(path)!r}.")
        kind, classes = self.classes_.dtype.kind, self.classes_.tolist()
        if kind not in "biufUSO" or not all(
            isinstance(c, (bool, int, float, str)) for c in classes
        ):
            raise TypeError(
                "save() stores labels as JSON and supports int, float, bool and str labels; "
                "use joblib for other label types."
            )
        params, not_saved = {}, []
        for name, value in self.get_params(deep=False).items():
            ok, encoded = _json_param(value if name != "validation_data" else None)
            if ok:
                params[name] = encoded
            else:
                not_saved.append(name)
        metadata = {
            "format": _FORMAT,
            "skcharclf_version": _skcharclf_version(),
            "params": params,
            "params_not_saved": not_saved,
            "classes": classes,
            "classes_dtype": self.classes_.dtype.str if kind != "O" else "object",
            "n_features_in": int(self.n_features_in_),
            "image_shape": list(self.image_shape_),
            "history": self.history_,
            "initial_loss": self.initial_loss_,
            "best_epoch": self.best_epoch_,
            "class_priors": self.class_priors_.tolist(),
            "unvalidated_classes": np.flatnonzero(
                np.isin(self.classes_, self.unvalidated_classes_)
            ).tolist(),
        }
        with atomic_output(path) as partial:
            self.model_.save(partial)
            with zipfile.ZipFile(partial, "a") as archive:
                archive.writestr(_METADATA_ENTRY, json.dumps(metadata))


def load_model(path: str | os.PathLike, *, max_bytes: int = MAX_MODEL_BYTES) -> KerasCharClassifier:
    """Load a classifier written by :meth:`KerasCharClassifier.save`, without running code.

    The network is read with Keras's safe mode (no lambda layers or arbitrary Python objects
    are deserialised) and the labels and parameters from plain JSON. Every member of the file
    is decompressed once under size limits (and its CRC-32 checked) before Keras reads it, so
    a damaged or hostile file costs bounded memory, disk and time.

    Parameters
    ----------
    path : str or path
        A ``.keras`` file written by :meth:`KerasCharClassifier.save`.
    max_bytes : int, default=256 MiB
        The most bytes the file's members may expand to, together.

    Returns
    -------
    clf : KerasCharClassifier
        A fitted classifier that predicts exactly like the saved one. Parameters that could
        not be stored as JSON (a callable ``architecture``) keep their defaults.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a regular file, is damaged or exceeds a limit, holds metadata
        that this skcharclf cannot use (such as a parameter from a newer skcharclf: the
        message names it and both versions), or a network that Keras cannot rebuild.

    Examples
    --------
    >>> from skcharclf import load_model  # doctest: +SKIP
    >>> clf = load_model("chars.keras")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist.")

    def fail(reason: str) -> ArchiveError:
        reason = short_text(reason, 600)  # a tampered value can be megabytes long
        return ArchiveError(
            f"{path!r} is not a model file written by KerasCharClassifier.save() ({reason}).",
            reason,
        )

    budget = Budget(max_bytes)
    try:
        with open_archive(Path(path), max_bytes) as archive:
            metadata = read_json_member(archive, _METADATA_ENTRY, budget)
            verify_members(archive, budget, skip=frozenset({_METADATA_ENTRY}))
    except KeyError as exc:
        raise fail(f"no {_METADATA_ENTRY}") from exc
    except ArchiveError as exc:
        raise fail(exc.reason) from exc
    if not isinstance(metadata, dict) or metadata.get("format") != _FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise fail(f"unknown format {_short(found)}")
    written = metadata.get("skcharclf_version", "(version not recorded)")
    try:
        clf = _restore_classifier(metadata, short_text(str(written)))
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise fail(f"damaged metadata: {reason}") from exc
    try:
        clf.model_ = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types on a damaged configuration
        raise fail(f"Keras cannot rebuild its network: {_keras_reason(exc)}") from exc
    inputs, outputs = clf.model_.inputs[0].shape[-1], clf.model_.outputs[0].shape[-1]
    if (inputs, outputs) != (clf.n_features_in_, clf.n_classes_):
        raise fail(
            f"its network maps {inputs} pixels to {outputs} classes, its metadata says "
            f"{clf.n_features_in_} pixels and {clf.n_classes_} classes"
        )
    clf.diagnosis_ = clf._diagnose(clf.history_)
    return clf


def _restore_classifier(metadata: dict, written: str) -> KerasCharClassifier:
    """An unfitted-network classifier with the parameters and fitted attributes of ``metadata``.

    Raises
    ------
    KeyError, TypeError, ValueError
        If a field is missing, of the wrong type or inconsistent with another.
    """
    params = metadata["params"]
    if not isinstance(params, dict):
        raise TypeError(f"params is a {type(params).__name__}, not an object")
    known = KerasCharClassifier().get_params(deep=False)
    for name in params:
        if name not in known:
            raise ValueError(
                f"saved parameter {_short(name)} is unknown to this skcharclf "
                f"({_skcharclf_version()}); the file was written by skcharclf {written}"
            )
    clf = KerasCharClassifier(**{name: _from_json_param(v) for name, v in params.items()})
    try:
        clf._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"{short_text(str(exc), 300)} (a saved parameter; the file was written by "
            f"skcharclf {written})"
        ) from exc
    kind = metadata["classes_dtype"]
    dtype = object if kind == "object" else np.dtype(kind)
    if dtype is not object and (dtype.kind not in "biufU" or dtype.itemsize > 4096):
        raise ValueError(f"classes of dtype {dtype} are not allowed")
    classes = np.array(_list_of(metadata, "classes", (bool, int, float, str)), dtype=dtype)
    if classes.ndim != 1 or classes.size == 0:
        raise ValueError("classes must be a non-empty list")
    encoder = clf.target_encoder.fit(classes)
    vars(clf).update(encoder.get_metadata())
    clf.target_encoder_ = encoder
    shape = _list_of(metadata, "image_shape", int)
    if len(shape) != 2 or min(shape) < 1 or math.prod(shape) != metadata["n_features_in"]:
        raise ValueError(
            f"image_shape {_short(shape)} does not match n_features_in "
            f"{_short(metadata['n_features_in'])}"
        )
    clf.n_features_in_ = math.prod(shape)
    clf.image_shape_ = tuple(shape)
    clf.initial_loss_ = _number(metadata, "initial_loss")
    clf.class_priors_ = np.asarray(_list_of(metadata, "class_priors", (int, float)), float)
    if clf.class_priors_.shape != classes.shape:
        raise ValueError("class_priors must hold one number per class")
    clf.history_ = _history(metadata["history"])
    best = metadata["best_epoch"]
    if not isinstance(best, int) or not 0 <= best < len(clf.history_["loss"]):
        raise ValueError(f"best_epoch {_short(best)} is not an epoch of the history")
    clf.best_epoch_ = best
    # Files written before unvalidated_classes was saved: all classes without validation
    # curves, none with them.
    if "unvalidated_classes" in metadata:
        unvalidated = _list_of(metadata, "unvalidated_classes", int)
        if not all(0 <= k < classes.size for k in unvalidated):
            raise ValueError("unvalidated_classes must hold indices into classes")
    else:
        unvalidated = [] if "val_loss" in clf.history_ else list(range(classes.size))
    clf.unvalidated_classes_ = classes[np.asarray(unvalidated, dtype=int)]
    return clf


def _list_of(metadata: dict, key: str, types: type | tuple) -> list:
    value = metadata[key]
    if not isinstance(value, list) or not all(
        isinstance(v, types) and (types is not int or not isinstance(v, bool)) for v in value
    ):
        raise TypeError(f"{key} is not a list of {getattr(types, '__name__', 'values')}")
    return value


def _number(metadata: dict, key: str) -> float:
    value = metadata[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{key} is a {type(value).__name__}, not a number")
    return float(value)


def _history(history: Any) -> dict[str, list[float]]:
    """The saved learning curves: lists of numbers of one length, with a ``"loss"`` curve."""
    if not isinstance(history, dict) or "loss" not in history:
        raise TypeError("history is not an object with a 'loss' curve")
    lengths = set()
    for key, curve in history.items():
        if not isinstance(curve, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in curve
        ):
            raise TypeError(f"history curve {_short(key)} is not a list of numbers")
        lengths.add(len(curve))
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError("history curves must be non-empty and of one length")
    return {key: [float(v) for v in curve] for key, curve in history.items()}


def _keras_reason(exc: BaseException) -> str:
    """The innermost cause in a Keras deserialisation error, in one short sentence.

    Keras nests each failing object's error in its parent's ("... Exception encountered:
    ..."), quoting every configuration on the way.
    """
    innermost = str(exc).rsplit("Exception encountered:", 1)[-1]
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", innermost).splitlines() if line.strip()]
    sentence = lines[0].split(". ", 1)[0].strip() if lines else type(exc).__name__
    return short_text(sentence, 200)


def _skcharclf_version() -> str:
    from . import __version__

    return __version__


def _short(value: Any) -> str:
    return short_text(repr(value))
