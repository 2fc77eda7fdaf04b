"""The image-batch contract shared by every step of skcharclf.

Two forms of data travel through a pipeline:

* an **image batch**: a sequence of 2D arrays that may differ in size (list, tuple or
  1-D object array), a 3D array ``(n, H, W)`` or a 4D array ``(n, H, W, C)`` with ``C`` in
  {1, 3, 4}. It is what loaders return and what the first steps (:class:`~skcharclf.Denoiser`,
  :class:`~skcharclf.ImageResizer`) accept.
* a **flat batch**: a 2D float array ``(n_samples, H * W)`` with values in [0, 1], ink bright on a
  dark background. It is what :class:`~skcharclf.ImageResizer` returns and what every later step
  (samplers, classifiers, scikit-learn estimators) consumes.

:func:`check_image_batch` turns every accepted image batch into 2D arrays of one *working dtype*:
``uint8`` (0-255) when the batch is 8-bit, so OpenCV runs on its fastest path, and ``float32`` in
[0, 1] otherwise. :func:`check_flat_batch` and :func:`resolve_image_shape` do the same for flat
batches. Every error names the sample at fault.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_float01",
    "as_uint8",
    "check_flat_batch",
    "check_image_batch",
    "estimate_background",
    "is_flat_batch",
    "resolve_image_shape",
    "to_gray",
    "unflatten",
]

# Weights of ITU-R BT.601, the ones OpenCV and PIL use for RGB -> gray.
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def to_gray(image: np.ndarray, *, order: str = "rgb", index: int | None = None) -> np.ndarray:
    """Convert one ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` image to 2D gray.

    Parameters
    ----------
    image : ndarray
        The image. An alpha channel is composited over a white background, so a dark
        character drawn on a transparent canvas stays a dark character on a light one.
    order : {"rgb", "bgr"}, default="rgb"
        Channel order of colour images: NumPy / PIL / matplotlib use RGB, OpenCV's
        ``imread`` returns BGR.
    index : int, optional
        Position of the image in its batch, quoted in error messages.

    Returns
    -------
    gray : ndarray of shape (H, W)
        Same dtype as ``image`` for 2D and single-channel input, ``float64`` for colour input
        (rounded back to the input's dtype when that is an integer type).
    """
    where = "" if index is None else f"sample {index}: "
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{where}expected a 2D gray image or a 3D (H, W, C) image with C in {{1, 3, 4}}, "
            f"got an array of shape {image.shape}."
        )
    if image.shape[2] == 1:
        return image[:, :, 0]
    weights = _GRAY_WEIGHTS if order == "rgb" else _GRAY_WEIGHTS[::-1]
    colour = image[:, :, :3].astype(np.float64)
    gray = colour @ weights
    if image.shape[2] == 4:
        white = _dtype_max(image.dtype, image)
        alpha = image[:, :, 3].astype(np.float64) / white
        gray = gray * alpha + white * (1.0 - alpha)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(np.rint(gray), 0, np.iinfo(image.dtype).max).astype(image.dtype)
    return gray


def _dtype_max(dtype: np.dtype, image: np.ndarray) -> float:
    """Full-scale value of an image: the dtype's maximum for integers, 1 or 255 for floats."""
    if dtype == np.bool_:
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max) if dtype in (np.uint8, np.uint16) else 255.0
    return 255.0 if image.size and float(np.nanmax(image)) > 1.0 else 1.0


def _as_sample_array(sample: object, index: int) -> np.ndarray:
    """Return one sample as a numeric ndarray, or raise an error naming it."""
    if isinstance(sample, np.ndarray):
        array = sample
    elif isinstance(sample, (list, tuple)):
        try:
            array = np.asarray(sample)
        except ValueError as exc:
            raise ValueError(f"sample {index} is a ragged nested list, not an image.") from exc
    else:
        raise TypeError(
            f"sample {index} is a {type(sample).__name__}, not an image array; an image batch "
            "holds 2D (H, W) or 3D (H, W, C) numeric arrays."
        )
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(
            f"sample {index} has dtype {array.dtype}; images must be numeric "
            "(uint8, uint16, bool, int or float)."
        )
    if np.iscomplexobj(array):
        raise TypeError(f"sample {index} is complex-valued; images must be real numbers.")
    if array.ndim not in (2, 3):
        raise ValueError(
            f"sample {index} has {array.ndim} dimension(s) (shape {array.shape}); each image must "
            "be 2D (H, W) or 3D (H, W, C)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"sample {index} is an empty image of shape {array.shape}.")
    return array


def _split_batch(X: object) -> tuple[list[np.ndarray], bool]:
    """Split ``X`` into per-sample arrays; the flag says whether ``X`` was one dense array."""
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 3 or (X.ndim == 4 and X.shape[-1] in (1, 3, 4)):
            if X.shape[0] == 0:
                raise ValueError("the image batch is empty: it holds 0 images.")
            return [_as_sample_array(X[i], i) for i in range(X.shape[0])], True
        raise ValueError(
            f"expected an image batch: a 3D array (n, H, W), a 4D array (n, H, W, C) with C in "
            f"{{1, 3, 4}} or a sequence of 2D images; got an array of shape {X.shape}."
        )
    if isinstance(X, np.ndarray):  # object array
        if X.ndim != 1:
            raise ValueError(f"an object array of images must be 1-D, got shape {X.shape}.")
        items: Sequence = list(X)
    elif isinstance(X, (list, tuple)):
        items = X
    elif isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
        raise TypeError(
            f"expected an image batch (a list of 2D arrays, or a 3D/4D array), got "
            f"{type(X).__name__}."
        )
    else:
        items = list(X)
    if len(items) == 0:
        raise ValueError("the image batch is empty: it holds 0 images.")
    return [_as_sample_array(item, i) for i, item in enumerate(items)], False


def check_image_batch(
    X: object, *, order: str = "rgb", dense: bool | None = None
) -> list[np.ndarray] | np.ndarray:
    """Validate an image batch and convert it to gray images of one working dtype.

    Parameters
    ----------
    X : sequence of array-like or ndarray
        A list / tuple / 1-D object array of 2D or 3D images (possibly of different sizes),
        a 3D array ``(n, H, W)`` or a 4D array ``(n, H, W, C)`` with ``C`` in {1, 3, 4}.
        Colour images are converted to gray; ``uint8`` and ``bool`` images become ``uint8``;
        every other dtype becomes ``float32`` in [0, 1] with one scale for the whole batch
        (``uint16`` and integers above 255 by 65535, floats above 1 by 255).
    order : {"rgb", "bgr"}, default="rgb"
        Channel order of colour images.
    dense : bool, optional
        ``True`` returns a 3D array (all images must share a size), ``False`` a list.
        By default the result has the form of the input: an array for an array, a list
        for a sequence.

    Returns
    -------
    images : list of ndarray or ndarray of shape (n, H, W)
        2D images, all ``uint8`` (0-255) or all ``float32`` (0-1).

    Raises
    ------
    TypeError
        For non-numeric data or junk in an object array; the message names the sample.
    ValueError
        For an empty batch, a sample that is not 2D/3D, an empty image, NaN/inf values,
        negative values or values out of 16-bit range; the message names the sample.
    """
    fast = _fast_gray_batch(X)
    if fast is not None:
        grays, was_dense = fast
    else:
        samples, was_dense = _split_batch(X)
        grays = [to_gray(sample, order=order, index=i) for i, sample in enumerate(samples)]
        grays = _to_working_dtype(grays, [s.dtype for s in samples])
    if dense is None:
        dense = was_dense
    if isinstance(grays, np.ndarray):
        return grays if dense else list(grays)
    if not dense:
        return grays
    shapes = {g.shape for g in grays}
    if len(shapes) != 1:
        raise ValueError(
            f"the images have {len(shapes)} different sizes; resize them first "
            "(ImageResizer) to get one array."
        )
    return np.stack(grays)


_UINT8 = np.dtype(np.uint8)
_NDARRAY = np.ndarray


def _fast_gray_batch(X: object) -> tuple[list[np.ndarray] | np.ndarray, bool] | None:
    """Check the common batches without per-sample work; ``None`` means "take the full path".

    A list or tuple of non-empty 2D ``uint8`` arrays is returned as a list of the same arrays,
    a dense non-empty 3D gray array is checked and scaled with whole-array operations. Any
    batch these cheap tests cannot vouch for (including every invalid one) goes through the
    per-sample path, which names the sample at fault.
    """
    if isinstance(X, (list, tuple)):
        # ``dtype is`` rather than ``==`` and a module-level ``_NDARRAY``: this loop is the
        # whole per-image cost of validation; a dtype that is equal but not identical merely
        # takes the full path.
        if X and all(
            type(a) is _NDARRAY and a.dtype is _UINT8 and a.ndim == 2 and a.size for a in X
        ):
            return list(X), False
        return None
    if not (
        isinstance(X, np.ndarray)
        and X.ndim == 3
        and X.size
        and (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating))
    ):
        return None
    if X.dtype == np.uint8:
        return X, True
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        return None
    low, high = float(X.min()), float(X.max())
    if low < 0 or high > 65535:
        return None
    scale = _batch_scale(high, [X.dtype])
    images = X.astype(np.float32)
    if scale != 1.0:
        images *= np.float32(1.0 / scale)
    return images, True


_OWN_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.bool_): 1.0}


def _batch_scale(high: float, dtypes: list[np.dtype]) -> float:
    """Full-scale value dividing a non-8-bit batch whose largest value is ``high``."""
    if any(dt == np.uint16 for dt in dtypes) or high > 255:
        return 65535.0
    if all(np.issubdtype(dt, np.integer) or dt == np.bool_ for dt in dtypes) or high > 1.0:
        return 255.0
    return 1.0


def _to_working_dtype(grays: list[np.ndarray], dtypes: list[np.dtype]) -> list[np.ndarray]:
    """Convert gray images to ``uint8`` or ``float32`` [0, 1] with one scale for the batch."""
    if all(dt in (np.uint8, np.bool_) for dt in dtypes):
        return [g.view(np.uint8) if g.dtype == np.bool_ else g for g in _bools_to_255(grays)]
    # uint8, uint16 and bool carry their own full scale; other dtypes share one batch scale
    # inferred from their largest value, so a batch mixing bit depths stays consistent.
    high = -np.inf
    for i, (g, dt) in enumerate(zip(grays, dtypes, strict=True)):
        if np.issubdtype(g.dtype, np.floating) and not np.isfinite(g).all():
            raise ValueError(f"sample {i} contains NaN or infinite values.")
        g_min = float(g.min())
        if g_min < 0:
            raise ValueError(
                f"sample {i} has negative values (min {g_min:g}); image intensities must be "
                "non-negative (0-1 or 0-255 for floats, the dtype's range for integers)."
            )
        if dt not in _OWN_SCALE:
            high = max(high, float(g.max()))
    if high > 65535:
        raise ValueError(
            f"image values reach {high:g}, beyond the 16-bit range 0-65535; rescale them."
        )
    others = [dt for dt in dtypes if dt not in _OWN_SCALE]
    shared_scale = _batch_scale(high, others) if others else 1.0
    out = []
    for g, dt in zip(grays, dtypes, strict=True):
        scale = _OWN_SCALE.get(dt, shared_scale)
        f = g.astype(np.float32)
        if scale != 1.0:
            f *= np.float32(1.0 / scale)
        out.append(f)
    return out


def _bools_to_255(grays: list[np.ndarray]) -> list[np.ndarray]:
    return [g.astype(np.uint8) * np.uint8(255) if g.dtype == np.bool_ else g for g in grays]


def as_float01(image: np.ndarray) -> np.ndarray:
    """Return a working-dtype image (``uint8`` or ``float32``) as ``float32`` in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)


def as_uint8(image: np.ndarray) -> np.ndarray:
    """Return a working-dtype image (``uint8`` or ``float32`` in [0, 1]) as ``uint8``."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def estimate_background(image: np.ndarray) -> float:
    """Estimate the background intensity of one 2D image from its border pixels.

    The median of the outermost rows and columns: character crops touch their border far
    less than their background does, so the median is the background level.
    """
    if image.shape[0] <= 2 or image.shape[1] <= 2:
        return float(np.median(image))
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return float(np.median(border))


def is_flat_batch(X: object) -> bool:
    """Whether ``X`` is a flat batch (a 2D numeric array or data frame) rather than images."""
    if hasattr(X, "iloc") or hasattr(X, "tocsr"):  # pandas / sparse input
        return True
    return isinstance(X, np.ndarray) and X.dtype != object and X.ndim == 2


def resolve_image_shape(image_shape: object, n_features: int) -> tuple[int, int]:
    """Resolve an ``image_shape`` parameter against the number of features of a flat batch.

    Parameters
    ----------
    image_shape : "auto" or tuple of (int, int)
        ``"auto"`` infers a square image when ``n_features`` is a perfect square and a
        one-row image ``(1, n_features)`` otherwise.
    n_features : int
        Number of columns of the flat batch.

    Returns
    -------
    (height, width) : tuple of int

    Raises
    ------
    ValueError
        When ``height * width`` does not equal ``n_features``: the message says what to set.
    """
    if isinstance(image_shape, str):
        if image_shape != "auto":
            raise ValueError(
                f"image_shape must be 'auto' or a (height, width) tuple, got {image_shape!r}."
            )
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else (1, int(n_features))
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 2
        or not all(isinstance(v, numbers.Integral) and v > 0 for v in image_shape)
    ):
        raise ValueError(
            f"image_shape must be 'auto' or a (height, width) tuple of positive integers, "
            f"got {image_shape!r}."
        )
    height, width = int(image_shape[0]), int(image_shape[1])
    if height * width != n_features:
        side = math.isqrt(n_features)
        hint = f" (e.g. image_shape=({side}, {side}))" if side * side == n_features else ""
        raise ValueError(
            f"image_shape={(height, width)} holds {height * width} pixels but X has "
            f"{n_features} features per sample; set image_shape to the (height, width) the "
            f"rows were flattened from{hint}, i.e. the ImageResizer's size."
        )
    return height, width


def check_flat_batch(
    X: np.ndarray, image_shape: object = (32, 32)
) -> tuple[np.ndarray, tuple[int, int]]:
    """Check a flat batch and return it as ``float32`` with its resolved image shape.

    This is a thin helper for steps that are not scikit-learn estimators themselves;
    estimators call ``sklearn.utils.validation.validate_data`` first (for
    ``n_features_in_`` bookkeeping) and then :func:`resolve_image_shape`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows of flattened images.
    image_shape : "auto" or tuple of (int, int), default=(32, 32)
        The shape the rows were flattened from.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    image_shape : tuple of (int, int)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a flat batch (n_samples, H*W), got shape {X.shape}.")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise TypeError(f"a flat batch must be numeric, got dtype {X.dtype}.")
    X = X.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"sample {bad[0]} contains NaN or infinite values.")
    return X, resolve_image_shape(image_shape, X.shape[1])


def unflatten(X: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """View a flat batch ``(n, H*W)`` as images ``(n, H, W)`` without copying."""
    return np.asarray(X).reshape(-1, *image_shape)
