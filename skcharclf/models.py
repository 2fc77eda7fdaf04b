"""Keras model builders for small character images.

:func:`build_char_model` returns an uncompiled :class:`keras.Model` that maps a *flat batch*
``(n, H * W)`` to class logits::

    flat input -> Reshape (H, W, 1) -> [online augmentation] -> normalization
               -> backbone -> head (GAP or Flatten, [dropout], Dense(n_classes))

The backbone is a nested :class:`keras.Model` named ``"backbone"``, so its weights can be saved,
transferred to another model and frozen as one unit (the procedure's transfer learning).
Everything a prediction needs, the normalization learned on the training data included, lives in
the model.

A max-norm constraint (``max_norm``) caps the norm of every unit's incoming weights: each
filter of a convolution, each output of the Dense head.

Initialisation follows the user's procedure: He-uniform for convolutions followed by a ReLU,
He-normal for linear 1x1 projection shortcuts, zeros for the last convolution of each residual
branch (so every block starts as the identity), Glorot-uniform for the Dense head, and a head bias
set by the caller (zeros or the log class priors, see :func:`set_head_bias`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._tf import import_keras

__all__ = [
    "AffineNormalization",
    "augmentation_layers",
    "build_backbone",
    "build_char_model",
    "copy_network",
    "count_flops",
    "set_head_bias",
    "set_normalization",
]

keras = import_keras()

_AUGMENTATION = {
    # rotation in degrees, translation and zoom as fractions of the image size, contrast factor
    "light": {"rotation": 5.0, "translation": 0.05, "zoom": 0.0, "contrast": 0.1},
    "default": {"rotation": 10.0, "translation": 0.1, "zoom": 0.1, "contrast": 0.2},
}


@keras.saving.register_keras_serializable(package="skcharclf")
class AffineNormalization(keras.layers.Layer):
    """Normalise pixels as ``x * scale + offset`` with statistics learned from training data.

    ``scale`` and ``offset`` are non-trainable weights rather than constructor arguments, so
    they are set after the model is built (:func:`set_normalization`) and travel with the
    model's weights: test data always gets the training data's transform.
    """

    def build(self, input_shape: tuple) -> None:
        self.scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="scale")
        self.offset = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="offset"
        )

    def call(self, inputs: Any) -> Any:
        return inputs * self.scale + self.offset

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


class _Seeds:
    """Distinct, reproducible seeds for every random layer and initialiser of one model."""

    def __init__(self, seed: int | None) -> None:
        self._next: Iterator[int] | None = None if seed is None else iter(range(seed, seed + 10**6))

    def __call__(self) -> int | None:
        return None if self._next is None else next(self._next)


def _conv(
    x: Any,
    filters: int,
    *,
    strides: int = 1,
    kernel_size: int = 3,
    initializer: str,
    l2: float,
    seeds: _Seeds,
    name: str,
    max_norm: float | None = None,
) -> Any:
    initializers = {
        "he_uniform": keras.initializers.HeUniform(seed=seeds()),
        "he_normal": keras.initializers.HeNormal(seed=seeds()),
        "zeros": keras.initializers.Zeros(),
    }
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=True,
        kernel_initializer=initializers[initializer],
        kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
        kernel_constraint=_max_norm(max_norm, axis=[0, 1, 2]),
        name=name,
    )(x)


def _max_norm(value: float | None, axis: Any) -> Any:
    """Keras's max-norm constraint over ``axis`` (the weights into one unit), or None."""
    return None if value is None else keras.constraints.MaxNorm(value, axis=axis)


def _batch_norm(x: Any, mode: str, name: str) -> Any:
    if mode == "none":
        return x
    layer = keras.layers.BatchNormalization(name=name)
    # A non-trainable BatchNormalization runs in inference mode in Keras 3: a fixed affine
    # map that adds no trainable weights (the procedure's "BN with trainable=False").
    layer.trainable = mode == "trainable"
    return layer(x)


def _residual_block(
    x: Any,
    filters: int,
    *,
    strides: int,
    batch_norm: str,
    zero_init_residual: bool,
    l2: float,
    seeds: _Seeds,
    name: str,
    max_norm: float | None = None,
) -> Any:
    """The procedure's "block A": conv-ReLU-conv plus an identity (or 1x1 projection) shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(
            x, filters, strides=strides, kernel_size=1, initializer="he_normal", l2=l2,
            seeds=seeds, name=f"{name}_proj", max_norm=max_norm,
        )
        shortcut = _batch_norm(shortcut, batch_norm, f"{name}_proj_bn")
    y = _conv(
        x, filters, strides=strides, initializer="he_uniform", l2=l2, seeds=seeds,
        name=f"{name}_conv1", max_norm=max_norm,
    )
    y = _batch_norm(y, batch_norm, f"{name}_bn1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    # Not before a trainable BatchNormalization: normalising an all-zero output (variance 0)
    # multiplies its gradient by 1/sqrt(epsilon), and the alternative, a zero BN scale, stays
    # near zero for many epochs under Adam (measured: 0.74 macro-F1 instead of 0.95).
    zero = zero_init_residual and batch_norm != "trainable"
    y = _conv(
        y, filters, initializer="zeros" if zero else "he_uniform", l2=l2, seeds=seeds,
        name=f"{name}_conv2", max_norm=max_norm,
    )
    y = _batch_norm(y, batch_norm, f"{name}_bn2")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _plain_block(
    x: Any,
    filters: int,
    *,
    strides: int,
    batch_norm: str,
    l2: float,
    seeds: _Seeds,
    name: str,
    max_norm: float | None = None,
) -> Any:
    """Two conv-BN-ReLU layers: a residual block without its shortcut (same cost)."""
    for i, stride in enumerate((strides, 1), start=1):
        x = _conv(
            x, filters, strides=stride, initializer="he_uniform", l2=l2, seeds=seeds,
            name=f"{name}_conv{i}", max_norm=max_norm,
        )
        x = _batch_norm(x, batch_norm, f"{name}_bn{i}")
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_backbone(
    image_shape: tuple[int, int],
    *,
    architecture: str = "resnet",
    filters: Sequence[int] = (24, 48, 96),
    blocks_per_stage: int = 1,
    batch_norm: str = "none",
    dropout: float = 0.0,
    l2: float = 0.0,
    zero_init_residual: bool = True,
    seed: int | None = None,
    max_norm: float | None = None,
) -> Any:
    """Build the convolutional body: normalised images ``(H, W, 1)`` -> feature maps.

    A 3x3 stride-2 stem convolution halves the resolution first (a 32x32 character keeps its
    strokes at 16x16 and the network costs four times less), then one stage per entry of
    ``filters``; every stage after the first starts by halving the resolution again.

    Parameters
    ----------
    image_shape : tuple of (int, int)
        ``(height, width)`` of the images.
    architecture : {"resnet", "cnn"}, default="resnet"
        ``"resnet"`` stacks residual blocks ("block A"); ``"cnn"`` is the same network without
        the shortcuts.
    filters : sequence of int, default=(24, 48, 96)
        Number of filters of each stage; the stem uses ``filters[0]``.
    blocks_per_stage : int, default=1
        Blocks (two 3x3 convolutions each) per stage.
    batch_norm : {"none", "frozen", "trainable"}, default="none"
        Batch normalization after every convolution (before its ReLU).
    dropout : float, default=0.0
        Dropout rate after the last activation of every stage.
    l2 : float, default=0.0
        L2 penalty on every convolution kernel.
    zero_init_residual : bool, default=True
        Initialise the last convolution of each residual branch to zeros, so every block
        starts as the identity. Ignored with ``batch_norm="trainable"`` (see the comment in
        ``_residual_block``).
    seed : int, optional
        Seed of the initialisers and dropout layers.
    max_norm : float, optional
        Cap on the L2 norm of every filter of every convolution
        (:class:`keras.constraints.MaxNorm` over the kernel's first three axes), enforced
        after each update. None: no constraint.

    Returns
    -------
    backbone : keras.Model
        A functional model named ``"backbone"``.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input(shape=(*image_shape, 1), name="images")
    x = _conv(
        inputs, filters[0], strides=2, initializer="he_uniform", l2=l2, seeds=seeds,
        name="stem_conv", max_norm=max_norm,
    )
    x = _batch_norm(x, batch_norm, "stem_bn")
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, n_filters in enumerate(filters, start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            name = f"stage{stage}_block{block}"
            if architecture == "resnet":
                x = _residual_block(
                    x, n_filters, strides=strides, batch_norm=batch_norm,
                    zero_init_residual=zero_init_residual, l2=l2, seeds=seeds, name=name,
                    max_norm=max_norm,
                )
            else:
                x = _plain_block(
                    x, n_filters, strides=strides, batch_norm=batch_norm, l2=l2, seeds=seeds,
                    name=name, max_norm=max_norm,
                )
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seeds(), name=f"stage{stage}_dropout")(x)
    return keras.Model(inputs, x, name="backbone")


def augmentation_layers(level: str, seed: int | None = None) -> list:
    """Keras preprocessing layers for online augmentation, active only in training.

    Parameters
    ----------
    level : {"light", "default"}
        ``"light"``: rotation up to 5 degrees, translation up to 5 %, contrast up to 10 %.
        ``"default"``: rotation up to 10 degrees, translation and zoom up to 10 %, contrast
        up to 20 %.
    seed : int, optional
        Seed of the random layers.

    Returns
    -------
    layers : list of keras.layers.Layer

    Notes
    -----
    The layers see the pixels as given, before the normalization, so they assume no value
    range: the areas that rotation, translation and zoom bring into view repeat the nearest
    edge pixel (``fill_mode="nearest"``; on a character crop, its background, whatever its
    grey level), and the contrast change is not clipped. Data outside the flat-batch contract
    (standardised features, raw 0-255 pixels, scikit-learn's estimator checks centred on 100)
    thus gets no foreign constant such as a 0 fill or a clip to ``[0, 1]``, which would be a
    huge outlier there and could explode the loss.
    """
    seeds = _Seeds(seed)
    spec = _AUGMENTATION[level]
    # The layers run before the normalization, on the pixels as given, so they must not assume
    # a value range. Areas shifted into view repeat the nearest edge pixel (on a character
    # crop, its background) rather than a constant, and the contrast change is not clipped:
    # a constant 0 fill or a clip to [0, 1] turns every pixel of data outside the flat-batch
    # contract (centred on 100, say) into a huge outlier, which can explode the loss.
    fill = {"fill_mode": "nearest"}
    layers = [
        keras.layers.RandomRotation(
            spec["rotation"] / 360.0, seed=seeds(), name="augment_rotation", **fill
        ),
        keras.layers.RandomTranslation(
            spec["translation"], spec["translation"], seed=seeds(), name="augment_translation",
            **fill,
        ),
    ]
    if spec["zoom"] > 0:
        layers.append(
            keras.layers.RandomZoom(spec["zoom"], seed=seeds(), name="augment_zoom", **fill)
        )
    layers.append(
        keras.layers.RandomContrast(
            spec["contrast"], value_range=(-np.inf, np.inf), seed=seeds(),
            name="augment_contrast",
        )
    )
    return layers


def build_char_model(
    image_shape: tuple[int, int],
    n_classes: int,
    *,
    architecture: str | Callable[..., Any] = "resnet",
    filters: Sequence[int] = (24, 48, 96),
    blocks_per_stage: int = 1,
    head: str = "gap",
    batch_norm: str = "none",
    dropout: float = 0.0,
    l2: float = 0.0,
    zero_init_residual: bool = True,
    online_augmentation: str | None = None,
    seed: int | None = None,
    max_norm: float | None = None,
) -> Any:
    """Build the full classifier model: flat batch in, ``n_classes`` logits out.

    Parameters
    ----------
    image_shape : tuple of (int, int)
        ``(height, width)`` the flat rows are reshaped to.
    n_classes : int
        Number of output logits.
    architecture : {"resnet", "cnn"} or callable, default="resnet"
        See :func:`build_backbone`. A callable is called as ``architecture((H, W, 1))`` and must
        return a :class:`keras.Model` mapping images of that shape to feature maps ``(h, w, c)``
        or feature vectors ``(d,)``; it becomes the ``"backbone"``.
    filters, blocks_per_stage, batch_norm, l2, zero_init_residual
        See :func:`build_backbone` (ignored for a callable architecture).
    head : {"gap", "flatten"}, default="gap"
        Pooling of the backbone's feature maps before the ``Dense(n_classes)`` layer: global
        average pooling (few parameters) or flattening (many).
    dropout : float, default=0.0
        Dropout after every stage of the backbone and, with ``head="flatten"``, before the
        Dense layer; never after global average pooling.
    online_augmentation : {None, "light", "default"}, default=None
        Random rotation / translation / zoom / contrast layers applied to the images in
        training only (see :func:`augmentation_layers`).
    seed : int, optional
        Seed of every initialiser and random layer.
    max_norm : float, optional
        Cap on the L2 norm of the weights into every unit: each filter of the backbone's
        convolutions (not of a callable architecture's layers) and each output of the Dense
        layer (:class:`keras.constraints.MaxNorm`), enforced after each update.

    Returns
    -------
    model : keras.Model
        Uncompiled; its output layer is named ``"logits"``, its normalization layer
        ``"normalization"`` and its backbone ``"backbone"``.
    """
    seeds = _Seeds(seed)
    height, width = image_shape
    inputs = keras.Input(shape=(height * width,), name="pixels")
    x = keras.layers.Reshape((height, width, 1), name="to_image")(inputs)
    if online_augmentation is not None:
        for layer in augmentation_layers(online_augmentation, seed=seeds()):
            x = layer(x)
    x = AffineNormalization(name="normalization")(x)
    if callable(architecture):
        backbone = architecture((height, width, 1))
        if not isinstance(backbone, keras.Model):
            raise TypeError(
                f"architecture={architecture!r} returned a {type(backbone).__name__}; a "
                "callable architecture must return a keras.Model."
            )
        backbone.name = "backbone"
    else:
        backbone = build_backbone(
            image_shape, architecture=architecture, filters=filters,
            blocks_per_stage=blocks_per_stage, batch_norm=batch_norm, dropout=dropout, l2=l2,
            zero_init_residual=zero_init_residual, seed=seeds(), max_norm=max_norm,
        )
    x = backbone(x)
    if len(x.shape) == 4:
        if head == "gap":
            x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        else:
            x = keras.layers.Flatten(name="head_flatten")(x)
    elif len(x.shape) != 2:
        raise ValueError(
            f"the backbone returns tensors of shape {tuple(x.shape)}; expected feature maps "
            "(batch, h, w, c) or feature vectors (batch, d)."
        )
    if head == "flatten" and dropout > 0:
        x = keras.layers.Dropout(dropout, seed=seeds(), name="head_dropout")(x)
    outputs = keras.layers.Dense(
        n_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()),
        bias_initializer="zeros",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
        kernel_constraint=_max_norm(max_norm, axis=0),
        name="logits",
    )(x)
    return keras.Model(inputs, outputs, name="char_classifier")


def set_head_bias(model: Any, bias: np.ndarray) -> None:
    """Set the bias of the ``"logits"`` layer (e.g. to the log class priors)."""
    model.get_layer("logits").bias.assign(np.asarray(bias, dtype="float32"))


def set_normalization(model: Any, scale: float, offset: float) -> None:
    """Set the pixel transform ``x * scale + offset`` of the ``"normalization"`` layer."""
    layer = model.get_layer("normalization")
    layer.scale.assign(float(scale))
    layer.offset.assign(float(offset))


def copy_network(model: Any) -> Any:
    """A copy of ``model`` that shares nothing with it: same layers, variables and flags.

    The copy has the same architecture (rebuilt from the layers' configs), the same values of
    every variable (weights, normalization statistics, random-generator states) and the same
    ``trainable`` flags, so training it goes exactly as training ``model`` would, while
    ``model`` itself stays as it is.

    Parameters
    ----------
    model : keras.Model
        A built functional model whose layers implement ``get_config`` / ``from_config``.

    Returns
    -------
    copy : keras.Model
        The uncompiled copy.
    """
    try:
        copy = keras.models.clone_model(model)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise TypeError(
            f"the network {model.name!r} cannot be copied: each of its layers must be "
            f"rebuildable from its get_config() ({type(exc).__name__}: {exc})"
        ) from exc
    # Rebuilding a nested model from its config gives all its layers the model's trainable
    # flag: put back the per-layer flags (parents first, so children get the last word).
    for source, target in zip(model._flatten_layers(), copy._flatten_layers(), strict=True):
        target.trainable = source.trainable
    sources, targets = model.variables, copy.variables
    if [tuple(v.shape) for v in sources] != [tuple(v.shape) for v in targets]:
        raise ValueError(f"the copy of model {model.name!r} does not have the same variables.")
    for source, target in zip(sources, targets, strict=True):
        target.assign(source)
    return copy


def count_flops(model: Any) -> int:
    """Floating-point operations of one forward pass of one sample (2 per multiply-add).

    Counts convolutions and dense layers of ``model`` and its nested models, which dominate
    the cost of the networks built here; element-wise layers are ignored.
    """
    flops = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output.shape[1:]
            k_h, k_w = layer.kernel_size
            in_c = layer.input.shape[-1]
            flops += 2 * out_h * out_w * out_c * k_h * k_w * in_c
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)
