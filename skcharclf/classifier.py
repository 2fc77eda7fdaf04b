"""KerasCharClassifier: a residual CNN for character images as a scikit-learn classifier.

Every option of the user's model / compile / fit procedure is one constructor parameter, so
``GridSearchCV`` / ``RandomizedSearchCV`` / ``HalvingRandomSearchCV`` search them like any other
hyperparameter. The estimator is built on :class:`scikeras.wrappers.BaseWrapper`: scikeras
encodes the labels (:class:`~scikeras.utils.transformers.ClassifierLabelEncoder`), builds the
Keras model (through :meth:`KerasCharClassifier._keras_build_fn`), maps predictions back to the
labels and pickles the Keras model; this module adds scikit-learn conformance (tags, parameter
validation, feature-count checks, sparse rejection) and orchestrates the training procedure.

The parts it orchestrates live beside it: the data feed in ``_feed.py``, the loss and
optimizer tables, the network preparation and the training run in ``_training.py``, the
callbacks and learning-rate schedules in :mod:`skcharclf.callbacks`, the model file in
:mod:`skcharclf.persistence`.

scikeras is no longer maintained (announced July 2025). It is pinned exactly, and this is the
only module that imports it: moving to Keras's own ``keras.wrappers`` is a change to this file.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _bounds as bounds
from ._atomic import restore_on_failure
from ._docstring import FLAT_X, PREDICT_RETURNS, PROBA_RETURNS, fill_doc
from ._feed import (
    PREDICT_BATCH,
    SAMPLING_POWERS,
    checked_validation_data,
    class_frequencies,
    first_bad_row,
    inference_batches,
    normalization_constants,
    subsample,
    training_weights,
    validation_batches,
    validation_split,
)
from ._format import label_text
from ._images import image_geometry, resolve_geometry
from ._progress import report_progress
from ._resume import open_checkpoint
from ._tf import import_keras, limit_threads, pin_op_determinism_state
from ._training import (
    LOSSES,
    OPTIMIZERS,
    PreparedFit,
    build_network,
    check_filters,
    copy_callbacks,
    diagnose_fit,
    keras_callbacks,
    load_backbone_weights,
    make_loss,
    set_backbone_trainable,
    set_output_bias,
    train_network,
    unjudged_message,
)
from ._utils import draw_seed
from .callbacks import (
    SCHEDULES,
    OneCycleSchedule,
    TrainingDivergedError,
)
from .models import copy_network, set_normalization
from .persistence import load_model, save_classifier

keras = import_keras()

# scikeras imports Keras when it is imported: import it only after import_keras() has silenced
# TensorFlow's start-up logging.
from scikeras.utils.random_state import tensorflow_random_state  # noqa: E402
from scikeras.utils.transformers import ClassifierLabelEncoder  # noqa: E402
from scikeras.wrappers import BaseWrapper  # noqa: E402

__all__ = ["KerasCharClassifier", "OneCycleSchedule", "TrainingDivergedError", "load_model"]


# Before scikeras's first fit: see pin_op_determinism_state.
pin_op_determinism_state()

_INITIAL_LOSS_SAMPLES = 1024  # training samples the loss before training is measured on


class KerasCharClassifier(ClassifierMixin, BaseWrapper):
    """Residual convolutional network for small character images, as a scikit-learn classifier.

    Takes a *flat batch* (rows of flattened ``image_shape`` images, e.g. the output of
    :class:`~skcharclf.ImageResizer`) and trains a Keras network whose every design and training
    choice is a parameter below. The default is a small residual CNN sized for a CPU
    (24-48-96 filters behind a stride-2 stem, about 14 MFLOPs per 32x32 image), trained for a
    number of optimizer steps sized to the data with Adam, a cosine learning-rate decay, the
    logit-adjusted loss (rare classes count as much as frequent ones), light online
    augmentation and a prior-initialised output layer.

    Parameters
    ----------
    image_shape : tuple of (int, int) or "auto", default="auto"
        ``(height, width)`` the rows of ``X`` were flattened from (the resizer's ``size``).
        ``"auto"`` takes it from ``X`` when ``X`` carries it (the
        :class:`~skcharclf.FlatImages` output of :class:`~skcharclf.ImageResizer`, passed on
        by :class:`~skcharclf.RareClassAugmenter`), else infers a square image when the
        number of features is a perfect square and a one-row image ``(1, n_features)``
        otherwise, so plain tabular data also works. A tuple that contradicts the geometry
        ``X`` carries is an error naming both steps. A tuple has at most 1024 pixels per side
        (like :class:`~skcharclf.ImageResizer`'s ``size``).
    architecture : {"resnet", "cnn"} or callable, default="resnet"
        ``"resnet"``: stem convolution, then stages of residual blocks ("block A":
        conv-ReLU-conv plus an identity or 1x1 projection shortcut), halving the resolution
        between stages. ``"cnn"``: the same network without shortcuts. A callable is called as
        ``architecture((H, W, 1))`` and must return a :class:`keras.Model` body mapping images
        to feature maps or vectors (see :func:`skcharclf.models.build_char_model`).
    filters : tuple of int, default=(24, 48, 96)
        Filters of each stage; its length is the number of stages. At most 8 stages of at
        most 1024 filters each (ResNet-50 stops at 512 per convolution).
    blocks_per_stage : int, default=1
        Residual (or plain) blocks per stage, at most 64 (ResNet-152 has 36 in a stage).
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
    kernel_constraint : {None, "max_norm"}, default=None
        ``"max_norm"``: after each update, scale down every filter of every convolution and
        every output unit's weights of the Dense layer to an L2 norm of at most
        ``max_norm_value`` (:class:`keras.constraints.MaxNorm`).
    max_norm_value : float, default=3.0
        The norm cap of ``kernel_constraint="max_norm"`` (ignored otherwise).
    zero_init_residual : bool, default=True
        Initialise the last convolution of every residual branch to zeros, so each block
        starts as the identity.
    bias_init : {"prior", "zeros"}, default="prior"
        Output bias at the start of training. ``"prior"``: the log of the training class
        frequencies (as the loss sees them, after ``sample_weight`` and ``class_weight``), so the
        untrained network already predicts the class priors and does not spend its first
        epochs learning the imbalance. ``"zeros"``: uniform.
    loss : str, keras.losses.Loss or callable, default="logit_adjusted"
        ``"ce"`` (cross-entropy from logits), ``"focal"`` (:class:`~skcharclf.losses.FocalLoss`),
        ``"logit_adjusted"`` (:class:`~skcharclf.losses.LogitAdjustedLoss`),
        ``"balanced_softmax"`` (:class:`~skcharclf.losses.BalancedSoftmaxLoss`), ``"hinge"`` or
        ``"squared_hinge"`` (one-vs-rest on the logits, :class:`~skcharclf.losses.HingeLoss`;
        ``label_smoothing`` does not apply), or your own loss of integer labels and logits.
        The logit-adjusted loss targets the balanced error: on long-tailed data it recalls rare
        classes much better than cross-entropy, and on balanced data it *is* cross-entropy.
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
        Samples per gradient update, at most 65536.
    epochs : int or "auto", default="auto"
        Passes over the training data (at most, with early stopping). ``"auto"`` sizes the
        budget in optimizer steps: 20 epochs, stretched to about 1,500 steps (small data
        needs many passes) or cut to at most 6,000 (a pass over large data teaches a lot),
        in whole epochs from 1 to 100; on fewer than 65,536 training values (64 images of
        32x32: toy problems) proportionally fewer epochs. The learning-rate schedule spans
        the budget; ``epochs_`` is the number run. An int is at most 1,000,000.
    class_sampling : {"natural", "sqrt", "balanced"}, default="natural"
        How each epoch draws its ``n_samples`` training rows: a permutation of them, or with
        replacement so that class ``c`` comes up in proportion to the square root of its size,
        or equally often. Balancing online costs no memory, however rare a class; the class
        priors the loss and the output bias use are those drawn (``class_priors_``).
    mixup_alpha, cutmix_alpha : float, default=0.0
        Mix every training batch with a shuffled copy of itself (0 is off): input mixup
        blends two whole images, cutmix pastes a box of one into the other, each with a share
        drawn from ``Beta(alpha, alpha)``, and the targets mix in the same shares. With both
        positive, each batch takes one of the two. Training accuracy then counts the label
        with the larger share.
    scale_lr_with_batch : bool, default=False
        Scale the learning rate linearly with the batch size (``learning_rate * batch_size /
        64``): double the batch, double the rate.
    early_stopping : bool, default=False
        Stop when the monitored validation score has not improved for ``patience`` epochs and
        restore the weights of the best epoch.
    patience : int, default=5
        Epochs without improvement before early stopping, at most 1,000,000.
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
        stopping restores. At most 1000 (each averaged epoch keeps a copy of the weights).
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
    checkpoint_dir : str or path, optional
        Save the whole training state there after every epoch, atomically; a fit
        interrupted (Ctrl-C, an error, a killed process) and started again with the same
        data, parameters and directory continues after the last saved epoch and predicts as
        the uninterrupted fit would. Other data or parameters are refused (ValueError). A
        completed fit marks the directory ``DONE``; the next fit there starts afresh. One
        fit at a time per directory. See the user guide, "Resume an interrupted fit".
    callbacks : list of keras.callbacks.Callback, optional
        Keras callbacks (``TensorBoard``, ``ModelCheckpoint``, ``CSVLogger``, your own) run
        after the package's own. Each fit runs deep copies of them (``callbacks_``), so fits
        never share one. Pickled with the estimator; not stored in :meth:`save`'s files.
    n_threads : int, optional
        Limit TensorFlow's thread pools (for parallel workers; only effective before
        TensorFlow's first operation in the process), at most 1024.
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
    callbacks_ : list of keras.callbacks.Callback
        The copies of ``callbacks`` the last fit ran, with what they recorded (not pickled).
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
    Training data is fed as a ``tf.data`` pipeline of row indices, each epoch's order drawn
    from ``(seed, epoch)`` alone, that takes each batch from the NumPy array when needed,
    with tf.data's autotuning off (it leaves the CPU idle on small machines): training makes
    no copy of the data set. Inference uses batches of
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
        "image_shape": [StrOptions({"auto"}), bounds.IMAGE_SHAPE],
        "architecture": [StrOptions({"resnet", "cnn"}), callable],
        "filters": [bounds.FILTERS],
        "blocks_per_stage": [Interval(Integral, 1, bounds.MAX_BLOCKS_PER_STAGE, closed="both")],
        "head": [StrOptions({"gap", "flatten"})],
        "batch_norm": [StrOptions({"none", "frozen", "trainable"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "l2": [Interval(Real, 0, None, closed="left")],
        "kernel_constraint": [None, StrOptions({"max_norm"})],
        "max_norm_value": [Interval(Real, 0, None, closed="neither")],
        "zero_init_residual": ["boolean"],
        "bias_init": [StrOptions({"prior", "zeros"})],
        "loss": [StrOptions(set(LOSSES)), callable],
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
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(SCHEDULES))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, bounds.MAX_BATCH_SIZE, closed="both")],
        "epochs": [Interval(Integral, 1, bounds.MAX_EPOCHS, closed="both"), StrOptions({"auto"})],
        "class_sampling": [StrOptions(set(SAMPLING_POWERS))],
        "mixup_alpha": [Interval(Real, 0, None, closed="left")],
        "cutmix_alpha": [Interval(Real, 0, None, closed="left")],
        "scale_lr_with_batch": ["boolean"],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, bounds.MAX_EPOCHS, closed="both")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "validation_data": [None, tuple, list],
        "monitor": [StrOptions({"val_loss", "val_f1_macro"})],
        "online_augmentation": [None, StrOptions({"light", "default"})],
        "normalization": [StrOptions({"scale", "center", "standardize"})],
        "checkpoint_averaging": [
            None,
            Interval(Integral, 1, bounds.MAX_CHECKPOINTS, closed="both"),
        ],
        "checkpoint_selection": [StrOptions({"last", "best"})],
        "warm_start": ["boolean"],
        "backbone_weights": [None, str, os.PathLike],
        "freeze_backbone": ["boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
        "callbacks": [None, list, tuple],
        "n_threads": [None, Interval(Integral, 1, bounds.MAX_THREADS, closed="both")],
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
        kernel_constraint: str | None = None,
        max_norm_value: float = 3.0,
        zero_init_residual: bool = True,
        bias_init: str = "prior",
        loss: str | Any = "logit_adjusted",
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
        class_sampling: str = "natural",
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
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
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: list | None = None,
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
        self.kernel_constraint = kernel_constraint
        self.max_norm_value = max_norm_value
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
        self.class_sampling = class_sampling
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
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
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = callbacks
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

    def __getstate__(self) -> dict:
        # The callbacks that ran may hold what pickle refuses (a CSVLogger's closed file).
        state = dict(super().__getstate__())
        state.pop("callbacks_", None)
        return state

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
        return build_network(self, meta["image_shape_"], meta["n_classes_"])

    def _validate_data(
        self, X: Any = None, y: Any = None, reset: bool = False, y_numeric: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate ``X`` (and ``y``): dense float32, finite, the fitted number of features."""
        common = {"dtype": np.float32, "accept_sparse": False, "ensure_all_finite": False}
        if y is None:
            X = validate_data(self, X, reset=reset, **common)
        else:
            X, y = validate_data(self, X, y, reset=reset, **common)
        bad = first_bad_row(X)
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
        warm = bool(self.warm_start) and self.__sklearn_is_fitted__()
        with self._prepared_training(X, y, sample_weight, warm) as run:
            train_network(self, run)
        self._diagnose_and_report()
        self._warn_if_unjudged()
        run.checkpoint.finish()  # the checkpoint directory: done
        return self

    @contextlib.contextmanager
    def _prepared_training(self, X: Any, y: Any, sample_weight: Any, warm: bool) -> Iterator:
        """Check and split the data, prepare the network under the fit's random state and
        yield what ``train_network`` trains on, a :class:`~skcharclf._training.PreparedFit`
        (:func:`~skcharclf.lr_find` uses it too)."""
        geometry = image_geometry(X)
        X, y = self._validate_data(X, y, reset=not warm)
        check_classification_targets(y)
        X, y, weights = training_weights(X, y, sample_weight, self.class_weight)
        labels, codes = np.unique(y, return_inverse=True)
        if labels.size < 2:
            raise ValueError(
                f"y holds only one class ({label_text(labels[0])}); a classifier needs samples "
                "of at least 2 classes."
            )
        step = f"KerasCharClassifier(image_shape={self.image_shape!r})"
        image_shape = resolve_geometry(self.image_shape, X.shape[1], geometry, step)
        if warm and image_shape != self.image_shape_:
            raise ValueError(
                f"warm_start: image_shape resolves to {image_shape}, but the network was "
                f"built for {self.image_shape_}."
            )
        check_filters(self.architecture, self.filters)
        self._check_validation_data(labels)  # now, not after the network is built
        self.callbacks_ = copy_callbacks(self.callbacks)
        rng = check_random_state(self.random_state)
        checkpoint = open_checkpoint(self, X, y, weights, warm, rng)  # may restore rng's state
        self._seed = draw_seed(checkpoint.rng)
        train_idx, val_idx = self._split(codes, checkpoint.rng)

        with tensorflow_random_state(self._seed):
            codes = self._prepare_network(X, y, weights, train_idx, image_shape, warm)
            run = PreparedFit(X, codes, weights, train_idx, val_idx, make_loss(self), checkpoint)
            # The prior output bias and the loss before training, from up to 1,024 rows.
            rows = subsample(train_idx, _INITIAL_LOSS_SAMPLES, self._seed)
            priors = self.class_priors_ if not warm and self.bias_init == "prior" else None
            self.initial_loss_ = set_output_bias(self.model_, run, rows, priors)
            yield run

    def _needs_validation(self) -> bool:
        return self.early_stopping or (
            self.checkpoint_averaging is not None and self.checkpoint_selection == "best"
        )

    def _split(
        self, codes: np.ndarray, rng: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Training rows and held-out validation rows (None when no split is needed)."""
        if self.validation_data is not None or not self._needs_validation():
            return np.arange(codes.size), None
        why = "early_stopping=True" if self.early_stopping else 'checkpoint_selection="best"'
        return validation_split(codes, self.validation_fraction, rng, needed_by=why)

    def _prepare_network(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None,
        train_idx: np.ndarray,
        image_shape: tuple[int, int],
        warm: bool,
    ) -> np.ndarray:
        """Build (or copy, when ``warm``) the network and set it up for training on
        ``train_idx``; return the class codes of ``y``."""
        if warm:
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
        self.class_priors_ = class_frequencies(
            codes, weights, train_idx, self.n_classes_, SAMPLING_POWERS[self.class_sampling]
        )
        if not warm:
            set_normalization(
                self.model_, *normalization_constants(X, train_idx, self.normalization)
            )
            if self.backbone_weights is not None:
                load_backbone_weights(self.model_, self.backbone_weights)
        set_backbone_trainable(self.model_, self.freeze_backbone, self.batch_norm)
        return codes

    def _callbacks(self, has_validation: bool) -> list:
        """The callbacks after the package's own: early stopping, plateau, the user's."""
        monitor = self.monitor if has_validation else "loss"
        return [*keras_callbacks(self, monitor), *self.callbacks_]

    def _check_validation_data(
        self, classes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``validation_data`` checked against the training labels ``classes`` (or None)."""
        return checked_validation_data(
            self.validation_data, classes, lambda X, y: self._validate_data(X, y, reset=False)
        )

    def _validation_batches(
        self, X: np.ndarray, codes: np.ndarray, val_idx: np.ndarray | None
    ) -> tuple[Any, np.ndarray | None]:
        """The validation batches and their class codes, or (None, None) without validation."""
        if val_idx is not None:
            return validation_batches(X, codes, val_idx), codes[val_idx]
        checked = self._check_validation_data(self.classes_)
        if checked is None:
            return None, None
        codes = self.target_encoder_.transform(checked[1]).astype(np.int32).ravel()
        return validation_batches(checked[0], codes), codes

    def _diagnose(self, history: dict, loss_known: bool = True) -> list:
        return diagnose_fit(self, history, loss_known)

    def _diagnose_and_report(self) -> None:
        """Diagnose the learning curves into ``diagnosis_``; report them when verbose."""
        self.diagnosis_ = self._diagnose(self.history_)
        if self.verbose:
            from .diagnostics import format_findings

            report_progress(
                f"Diagnosis of the learning curves\n{format_findings(self.diagnosis_)}"
            )

    def _warn_if_unjudged(self) -> None:
        """Warn once when the diagnosis could not judge overfitting (on some classes)."""
        from .diagnostics import NoValidationWarning

        message = unjudged_message(self)
        if message is not None:
            warnings.warn(message, NoValidationWarning, stacklevel=2)

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
        if X.shape[0] <= PREDICT_BATCH:
            # One batch: a direct call costs less than compiling Keras's predict function.
            return keras.ops.convert_to_numpy(self.model_(X, training=False))
        data = inference_batches(X)
        return self.model_.predict(data, verbose=0)

    @fill_doc(X=FLAT_X, y_pred=PREDICT_RETURNS)
    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels.

        The label of the network's largest logit, which is also the most probable class of
        :meth:`predict_proba`.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        %(y_pred)s
        """
        return super().predict(X)

    @fill_doc(X=FLAT_X, proba=PROBA_RETURNS)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Predict class probabilities (the softmax of the network's logits; of a hinge
        loss's margins, a ranking of the classes, not calibrated).

        Computed in float64, so the probability of an unlikely class stays positive where a
        float32 softmax would round it to 0.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        %(proba)s
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
        skcharclf.persistence.save_pipeline : Save a whole pipeline.
        """
        save_classifier(self, path)
