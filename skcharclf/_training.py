"""What :class:`~skcharclf.KerasCharClassifier` builds to train its network, and says after.

The losses and optimizers are tables from the name a parameter takes to a factory, so adding
one is one entry (and its name in the estimator's ``_parameter_constraints`` follows from the
table). The backbone helpers prepare the network before training, :func:`train_network`
compiles and trains it; the message builders word what the estimator raises or warns.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from ._feed import SAMPLING_POWERS, sampling_probabilities, training_batches
from ._format import labels_text
from ._tf import import_keras
from .callbacks import SCHEDULES, CheckpointAveraging, DivergenceGuard, HistoryRecorder
from .losses import (
    BalancedSoftmaxLoss,
    CrossEntropy,
    FocalLoss,
    HingeLoss,
    LabelAccuracy,
    LogitAdjustedLoss,
    MacroF1Score,
    mix_losses,
)
from .models import build_char_model, set_head_bias

keras = import_keras()

# Priors are floored before their logarithm is taken: a class of weight 0 must not give -inf.
_MIN_PRIOR = 1e-12


def class_values(value: Any, name: str, classes: np.ndarray) -> np.ndarray:
    """A per-class parameter (array in ``classes`` order, or dict by label) as an array."""
    if isinstance(value, dict):
        unknown = [label for label in value if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"{name} has labels {unknown} that are not in classes_.")
        return np.array([float(value.get(label, 1.0)) for label in classes.tolist()])
    values = np.asarray(value, dtype=float).ravel()
    if values.size != classes.size:
        raise ValueError(f"{name} has {values.size} values but there are {classes.size} classes.")
    return values


def _focal(clf: Any) -> Any:
    alpha = clf.focal_alpha
    if isinstance(alpha, str):
        alpha = 1.0 / (clf.n_classes_ * np.maximum(clf.class_priors_, _MIN_PRIOR))
    elif alpha is not None and not isinstance(alpha, Real):
        alpha = class_values(alpha, "focal_alpha", clf.classes_)
    return FocalLoss(clf.focal_gamma, alpha=alpha, label_smoothing=clf.label_smoothing)


def _logit_adjusted(clf: Any) -> Any:
    priors = np.maximum(clf.class_priors_, _MIN_PRIOR)
    return LogitAdjustedLoss(priors, tau=clf.tau, label_smoothing=clf.label_smoothing)


def _balanced_softmax(clf: Any) -> Any:
    priors = np.maximum(clf.class_priors_, _MIN_PRIOR)
    return BalancedSoftmaxLoss(priors, label_smoothing=clf.label_smoothing)


def _cross_entropy(clf: Any) -> Any:
    return CrossEntropy(label_smoothing=clf.label_smoothing)


#: ``loss`` name -> ``factory(estimator)``, called once ``classes_`` and ``class_priors_`` are
#: set; the factory reads the loss's own parameters (``tau``, ``focal_gamma``, ...) from it.
LOSSES: dict[str, Callable[[Any], Any]] = {
    "ce": _cross_entropy,
    "focal": _focal,
    "logit_adjusted": _logit_adjusted,
    "balanced_softmax": _balanced_softmax,
    "hinge": lambda clf: HingeLoss(),
    "squared_hinge": lambda clf: HingeLoss(squared=True),
}


class _UserLoss(keras.losses.Loss):
    """The user's per-sample loss ``fn(labels, logits)`` as a Keras loss (sample weights,
    mean over the batch), mixed by :func:`~skcharclf.losses.mix_losses` for mixed targets."""

    def __init__(self, fn: Callable[[Any, Any], Any], name: str) -> None:
        super().__init__(name=name)
        self.fn = fn

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return mix_losses(self.fn, y_true, y_pred)


def make_loss(clf: Any) -> Any:
    """``clf.loss`` as a Keras loss: built from :data:`LOSSES` for a name, else the user's
    :class:`keras.losses.Loss` (its per-sample ``call``) or function of integer labels and
    logits, wrapped so that mixed targets (mixup, cutmix) mix its values.

    Raises
    ------
    ValueError
        If the user's loss says it takes probabilities (``from_logits=False``).
    """
    loss = clf.loss
    if isinstance(loss, str):
        return LOSSES[loss](clf)
    if getattr(loss, "from_logits", True) is False:
        raise ValueError(
            f"loss={loss!r} takes probabilities (from_logits=False), but the network outputs "
            "logits: give it from_logits=True."
        )
    if isinstance(loss, keras.losses.Loss):  # its per-sample values, as for a function
        return _UserLoss(loss.call, loss.name)
    return _UserLoss(loss, "custom_loss")


#: ``optimizer`` name -> ``factory(learning_rate, weight_decay)``; the rate may be a schedule.
#: A weight decay of 0 is no decay (plain Adam for ``"adamw"``).
OPTIMIZERS: dict[str, Callable[[Any, float], Any]] = {
    "adam": lambda rate, decay: keras.optimizers.Adam(rate, weight_decay=decay or None),
    "adamw": lambda rate, decay: keras.optimizers.AdamW(rate, weight_decay=decay),
    "sgd": lambda rate, decay: keras.optimizers.SGD(
        rate, momentum=0.9, nesterov=True, weight_decay=decay or None
    ),
}


def keras_callbacks(clf: Any, monitor: str) -> list:
    """Keras's early stopping and plateau schedule, when ``clf`` asks for them.

    Both follow ``monitor`` (the training ``"loss"`` without a validation set).
    """
    mode = "max" if monitor == "val_f1_macro" else "min"
    callbacks = []
    if clf.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=clf.patience, restore_best_weights=True
            )
        )
    if clf.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                mode=mode,
                factor=0.5,
                patience=max(1, clf.patience // 2),
                min_lr=clf.learning_rate / 1000,
            )
        )
    return callbacks


def check_filters(architecture: Any, filters: Any) -> None:
    """Refuse ``filters`` that build no network (any with a callable ``architecture``)."""
    if callable(architecture):
        return
    if len(filters) == 0 or not all(
        isinstance(f, Integral) and not isinstance(f, bool) and f > 0 for f in filters
    ):
        raise ValueError(
            f"filters must be a non-empty tuple of positive integers, got {filters!r}."
        )


def build_network(clf: Any, image_shape: tuple[int, int], n_classes: int) -> Any:
    """The uncompiled network of ``clf``'s parameters, seeded with its fit's seed."""
    return build_char_model(
        image_shape,
        n_classes,
        architecture=clf.architecture,
        filters=tuple(clf.filters),
        blocks_per_stage=clf.blocks_per_stage,
        head=clf.head,
        batch_norm=clf.batch_norm,
        dropout=clf.dropout,
        l2=clf.l2,
        zero_init_residual=clf.zero_init_residual,
        online_augmentation=clf.online_augmentation,
        seed=clf._seed,
        max_norm=clf.max_norm_value if clf.kernel_constraint == "max_norm" else None,
    )


def copy_callbacks(callbacks: Any) -> list:
    """Deep copies of the user's ``callbacks`` (None: none) for one fit.

    Each fit runs its own copies: the given objects are never used, and fits that share them
    (a search's candidates, running in parallel) share no state, file handle or model.

    Raises
    ------
    TypeError
        If an item is not a :class:`keras.callbacks.Callback` instance or cannot be copied.
    """
    copies = []
    for k, callback in enumerate(callbacks or []):
        if not isinstance(callback, keras.callbacks.Callback):
            what = (
                f"the class {callback.__name__} (instantiate it)"
                if isinstance(callback, type)
                else f"a {type(callback).__name__}"
            )
            raise TypeError(f"callbacks[{k}] must be a keras.callbacks.Callback, got {what}.")
        try:
            copies.append(copy.deepcopy(callback))
        except Exception as exc:  # a used CSVLogger holds its closed file, say
            raise TypeError(
                f"callbacks[{k}] ({type(callback).__name__}) cannot be copied for this fit "
                f"({type(exc).__name__}: {exc}); give a callback that has not been used yet."
            ) from exc
    return copies


@dataclass(frozen=True)
class PreparedFit:
    """What a prepared fit trains on (yielded by ``KerasCharClassifier._prepared_training``).

    ``X`` holds the flattened images, ``codes`` their class codes (0 to ``n_classes_ - 1``)
    and ``weights`` their sample weights (or None); ``train_idx`` and ``val_idx`` are the
    training and held-out validation rows (``val_idx`` None without a split); ``loss`` is
    the fit's loss and ``checkpoint`` its :class:`~skcharclf._resume.FitCheckpoint`.
    """

    X: np.ndarray
    codes: np.ndarray
    weights: np.ndarray | None
    train_idx: np.ndarray
    val_idx: np.ndarray | None
    loss: Any
    checkpoint: Any


def set_output_bias(
    model: Any, run: PreparedFit, rows: np.ndarray, priors: np.ndarray | None
) -> float:
    """Set the output bias so the network predicts ``priors``; return the loss before training.

    Both come from one forward pass over ``run.X[rows]``. The bias is chosen so that the mean
    logits over these rows are the log priors: the Glorot-initialised output layer otherwise
    adds a random offset per class that hides them. ``priors=None`` leaves the bias as it is
    and only measures the loss (``L2`` penalties included).
    """
    logits = keras.ops.convert_to_numpy(model(run.X[rows], training=False))
    loss, weights = run.loss, run.weights
    if priors is not None:
        target = np.log(np.maximum(priors, _MIN_PRIOR))
        if isinstance(loss, HingeLoss):
            # Margins, not log-probabilities: each class starts at its best constant margin.
            target = loss.best_constant(priors)
        elif isinstance(loss, LogitAdjustedLoss):
            # The loss adds its own offsets to the logits: start so that what the loss sees
            # predicts the priors.
            target = target - loss.logit_offsets()
        shift = target - logits.mean(axis=0)
        bias = model.get_layer("logits").bias.numpy()
        set_head_bias(model, bias + shift)
        logits = logits + shift
    value = loss(run.codes[rows], logits, sample_weight=None if weights is None else weights[rows])
    penalty = sum(float(p) for p in model.losses)
    return float(value) + penalty


def load_backbone_weights(model: Any, path: str | os.PathLike) -> None:
    """Load the layer ``"backbone"`` of ``model`` from a ``.keras`` or ``.weights.h5`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"backbone_weights={path!r}: no such file.")
    backbone = model.get_layer("backbone")
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


def set_backbone_trainable(model: Any, freeze: bool, batch_norm: str) -> None:
    """Freeze the layer ``"backbone"`` of ``model``, or unfreeze it (keeping frozen batch norm)."""
    backbone = model.get_layer("backbone")
    if freeze:
        backbone.trainable = False
    elif not backbone.trainable:
        # Unfreezing is recursive in Keras: batch normalization built frozen stays frozen.
        backbone.trainable = True
        if batch_norm == "frozen":
            for layer in backbone._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False


def diverged_error(
    diverged: Any,
    history: dict,
    *,
    initial_loss: float,
    learning_rate: float,
    diagnose: Callable[[dict], list],
) -> Exception:
    """The :class:`~skcharclf.callbacks.TrainingDivergedError` of a fit that ``diverged``.

    ``diverged`` is the :class:`~skcharclf.callbacks.Divergence` a guard recorded, ``history``
    the curves recorded until then and ``diagnose`` the estimator's diagnosis of curves; the
    error's message says what diverged where, and what to change.
    """
    from .callbacks import TrainingDivergedError

    epoch, batch, key, value = diverged
    history = dict(history)
    if batch is not None and len(history.get("loss", [])) < epoch:
        history = {k: v for k, v in history.items() if not k.startswith("val_")}
        history["loss"] = [*history.get("loss", []), value]
    where = f"epoch {epoch}, batch {batch}" if batch is not None else f"epoch {epoch}"
    what = "training" if key == "loss" else "validation"
    if math.isfinite(value):
        what = (
            f"{what} loss exploded to {value:.3g} (it was {initial_loss:.3g} before "
            "training)"
        )
    else:
        what = f"{what} loss became {value}"
    rate = learning_rate
    message = (
        f"Training diverged: the {what} at {where} (learning_rate={rate:g}). Training "
        "stopped and the "
        f"estimator is left as it was before this fit. Try a lower learning rate, e.g. "
        f"learning_rate={rate / 10:g}, or a warm-up schedule (lr_schedule='onecycle'); "
        "check that the inputs hold no extreme values."
    )
    return TrainingDivergedError(
        message, epoch=epoch, batch=batch, history=history, findings=diagnose(history)
    )


def diagnose_fit(clf: Any, history: dict, loss_known: bool = True) -> list:
    """The diagnosis of ``clf``'s learning curves ``history``, with the references its loss
    has (none for a hinge or custom loss, nor when ``loss_known=False``: a loaded model whose
    file could not hold its loss)."""
    from ._initial_loss import cross_entropy_scale, initial_loss_reference
    from .diagnostics import diagnose_history

    params = clf.get_params(deep=False)
    comparable, smoothing = initial_loss_reference(params)
    scaled = loss_known and cross_entropy_scale(params)  # else no ln C reference
    return diagnose_history(
        history,
        n_classes=clf.n_classes_ if scaled else None,
        initial_loss=clf.initial_loss_ if comparable and scaled else None,
        class_priors=clf.class_priors_ if scaled and clf.bias_init == "prior" else None,
        label_smoothing=smoothing,
        unvalidated_classes=getattr(clf, "unvalidated_classes_", None),
    )


def unjudged_message(clf: Any) -> str | None:
    """The ``NoValidationWarning`` message of a fit whose diagnosis could not judge
    overfitting (on some classes), or None when it could or only notes it (an info finding)."""
    finding = next(
        (f for f in clf.diagnosis_ if f.code in ("no_validation", "validation_incomplete")),
        None,
    )
    # A run that asked for no validation and shows no sign of memorising is only noted in
    # diagnosis_: a warning on every such fit (each rung of a search, say) would be noise.
    if finding is None or (finding.code == "no_validation" and finding.severity == "info"):
        return None
    n_epochs = len(clf.history_["loss"])
    missing = labels_text(clf.unvalidated_classes_)
    if finding.code == "validation_incomplete":
        source = (
            "validation_data"
            if clf.validation_data is not None
            else f"the stratified validation split (validation_fraction="
            f"{clf.validation_fraction:g})"
        )
        what = (
            f"and {source} holds no image of class(es) {missing}, so overfitting on them "
            "cannot be judged"
        )
        if clf.validation_data is None:
            what += " (every class keeps at least one training image: these have too few)"
    else:
        what = (
            "without a validation set (no validation_data was given, and none is held out "
            'unless early_stopping=True or checkpoint_selection="best"), so overfitting '
            "cannot be judged"
        )
        if finding.severity == "warning":
            epoch = finding.evidence["sign_epoch"]
            accuracy = clf.history_["accuracy"][epoch - 1]
            what += (
                f"; its training accuracy reached {100 * accuracy:.0f}% at epoch {epoch}, "
                "the procedure's classic overfitting sign"
            )
    return (
        f"KerasCharClassifier trained {n_epochs} epochs {what}. Give "
        "validation_data=(X_val, y_val) or early_stopping=True (holds out a stratified "
        "validation_fraction), use fewer cross-validation folds, or get more images of "
        "the smallest classes; diagnosis_ says more."
    )


# Compiling Keras's training step into a graph takes a few seconds, as long as ~10 eager steps
# of a small network: fits this short run eagerly (tests, the first rungs of a search).
_EAGER_STEPS = 8
# A training loss this many times that of the untrained network (or ln C) has exploded: the
# logits have grown without bound and the model is garbage even before the loss reaches NaN.
_EXPLOSION_FACTOR = 100.0
_REFERENCE_BATCH = 64  # scale_lr_with_batch: learning_rate is the rate for this batch size


# epochs="auto" (see resolve_epochs): the budget in optimizer steps.
AUTO_EPOCHS = 20  # passes over a data set of medium size ...
AUTO_MIN_STEPS = 1500  # ... but at least this many steps (small data needs many passes)
AUTO_MAX_STEPS = 6000  # ... and at most this many (large data: each pass teaches a lot)
AUTO_MAX_EPOCHS = 100
# Below this many training pixel values (64 images of 32x32) the data is a toy problem
# (scikit-learn's checks, doctests): the budget shrinks in proportion.
AUTO_FULL_VALUES = 65536


def resolve_epochs(epochs: int | str, steps_per_epoch: int, n_values: int) -> int:
    """``epochs``, or the budget of ``"auto"`` for ``steps_per_epoch`` batches of
    ``n_values`` training pixel values in all.

    ``"auto"`` trains :data:`AUTO_EPOCHS` epochs, stretched to about :data:`AUTO_MIN_STEPS`
    optimizer steps (the nearest whole number of epochs, at most :data:`AUTO_MAX_EPOCHS`) or
    cut to at most :data:`AUTO_MAX_STEPS` (at least one epoch); on fewer than
    :data:`AUTO_FULL_VALUES` pixel values, proportionally fewer epochs.
    """
    if epochs != "auto":
        return int(epochs)
    budget = AUTO_EPOCHS
    if budget * steps_per_epoch < AUTO_MIN_STEPS:  # the nearest whole number of epochs
        budget = min(AUTO_MAX_EPOCHS, round(AUTO_MIN_STEPS / steps_per_epoch))
    elif budget * steps_per_epoch > AUTO_MAX_STEPS:  # whole epochs within the cap, at least 1
        budget = max(1, AUTO_MAX_STEPS // steps_per_epoch)
    share = min(1.0, n_values / AUTO_FULL_VALUES)
    return max(1, math.ceil(budget * share))


def training_feed(
    clf: Any, run: PreparedFit, rows: np.ndarray, *, epochs: int, first_epoch: int = 0
) -> Any:
    """The ``tf.data`` training batches of ``clf`` (its batch size, seed, class sampling and
    mixing) over ``rows``, for epochs ``first_epoch`` to ``epochs - 1``."""
    probabilities = sampling_probabilities(run.codes, rows, SAMPLING_POWERS[clf.class_sampling])
    mixing = None
    if clf.mixup_alpha > 0 or clf.cutmix_alpha > 0:
        mixing = (clf.image_shape_, clf.mixup_alpha, clf.cutmix_alpha)
    train, _ = training_batches(
        run.X, run.codes, run.weights, rows, clf.batch_size, clf._seed,
        epochs=epochs, first_epoch=first_epoch, probabilities=probabilities, mixing=mixing,
    )
    return train


def train_network(clf: Any, run: PreparedFit) -> None:
    """Compile ``clf``'s prepared network and train it with the package's callbacks.

    ``run.checkpoint`` (a :class:`~skcharclf._resume.FitCheckpoint`) restores the state of an
    interrupted fit, so that training continues after its last saved epoch, and saves the
    state after each epoch. Sets ``unvalidated_classes_``, ``epochs_``, ``history_`` and
    ``best_epoch_``.
    """
    checkpoint, train_idx = run.checkpoint, run.train_idx
    validation, val_codes = clf._validation_batches(run.X, run.codes, run.val_idx)
    validated = np.zeros(clf.n_classes_, dtype=bool)
    if val_codes is not None:
        validated[val_codes] = True
    clf.unvalidated_classes_ = clf.classes_[~validated]
    steps_per_epoch = math.ceil(train_idx.size / clf.batch_size)
    clf.epochs_ = resolve_epochs(clf.epochs, steps_per_epoch, train_idx.size * run.X.shape[1])
    steps = clf.epochs_ * steps_per_epoch
    train = training_feed(clf, run, train_idx, epochs=clf.epochs_, first_epoch=checkpoint.epoch)
    clf.model_.compile(
        optimizer=make_optimizer(clf, steps),
        loss=run.loss,
        metrics=[
            LabelAccuracy(name="accuracy"),
            MacroF1Score(clf.n_classes_, name="f1_macro"),
        ],
        run_eagerly=steps <= _EAGER_STEPS,
    )
    limit = _EXPLOSION_FACTOR * max(clf.initial_loss_, math.log(clf.n_classes_))
    recorder, guard = HistoryRecorder(), DivergenceGuard(limit)
    own = [recorder, guard]
    if clf.checkpoint_averaging:
        averaging = CheckpointAveraging(
            clf.checkpoint_averaging, clf.checkpoint_selection, clf.monitor
        )
        own.append(averaging)
    callbacks = [*own, *clf._callbacks(validation is not None)]
    checkpoint.restore_network(clf.model_, clf.epochs_, clf.verbose)
    clf.model_.fit(
        train,
        epochs=checkpoint.last_epoch(clf.epochs_),
        initial_epoch=checkpoint.epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=[*callbacks, *checkpoint.callbacks(callbacks, guard)],
        verbose=clf.verbose,
        shuffle=False,
    )
    if guard.diverged is not None:
        raise diverged_error(
            guard.diverged,
            recorder.history,
            initial_loss=clf.initial_loss_,
            learning_rate=clf.learning_rate,
            diagnose=clf._diagnose,
        )
    clf.history_ = recorder.history
    if clf.checkpoint_averaging:
        averaged = averaging.averaged_weights()
        if averaged is not None:
            clf.model_.set_weights(averaged)
    clf.best_epoch_ = best_epoch(clf.history_, clf.monitor, validation is not None)


def make_optimizer(clf: Any, total_steps: int) -> Any:
    """``clf``'s optimizer, its learning rate scheduled over ``total_steps``."""
    rate = clf.learning_rate
    if clf.scale_lr_with_batch:
        rate = rate * clf.batch_size / _REFERENCE_BATCH
    rate = SCHEDULES[clf.lr_schedule](rate, max(total_steps, 1))
    return OPTIMIZERS[clf.optimizer](rate, clf.weight_decay)


def best_epoch(history: dict, monitor: str, has_validation: bool) -> int:
    """The epoch to report: the last one, or the best on ``monitor`` with validation."""
    n_epochs = len(history["loss"])
    if not has_validation:
        return n_epochs - 1
    scores = np.asarray(history[monitor])
    return int(np.argmax(scores) if monitor == "val_f1_macro" else np.argmin(scores))
