"""The image-batch contract shared by every step of skcharclf.

Two forms of data travel through a pipeline:

* an **image batch**: a sequence of 2D arrays that may differ in size (list, tuple or
  1-D object array), a 3D array ``(n, H, W)`` or a 4D array ``(n, H, W, C)`` with ``C`` in
  {1, 3, 4}. It is what loaders return and what the first steps (:class:`~skcharclf.Denoiser`,
  :class:`~skcharclf.ImageResizer`) accept.
* a **flat batch**: a 2D float array ``(n_samples, H * W)`` with values in [0, 1], ink bright on a
  dark background. It is what :class:`~skcharclf.ImageResizer` returns and what every later step
  (samplers, classifiers, scikit-learn estimators) consumes.

Each image is scaled to [0, 1] by a rule that reads **that image only** (its dtype and, for
dtypes without a fixed range, its own values), never its batch-mates, so an image gives the
same result alone, in any batch and at any position:

* ``uint8``: divided by 255; ``uint16``: divided by 65535; ``bool``: ``False`` is 0, ``True``
  is 1.
* other integer dtypes (``int8`` ... ``int64``, ``uint32``, ``uint64``): an image whose values
  all lie in 0-255 is read as 8-bit (divided by 255), one whose maximum is in 256-65535 as
  16-bit (divided by 65535); larger values are an error.
* floats: an image whose maximum is at most 1 is read as [0, 1], one whose maximum is in
  (1, 255] as 0-255 (divided by 255); a larger maximum is an error, being neither.
* negative values, NaN and infinities are errors. Every error names the sample.

The rule reads values only where the dtype leaves the scale open, and then it decides on the
image's maximum. Two consequences are documented rather than guessed around: a float image
meant as 0-255 whose maximum is 1 or less (an almost black image) is read as [0, 1], and a
[0, 1] image that overshoots 1 (after cubic interpolation or sharpening, say) is read as 0-255
and comes out almost black; clip such images to [0, 1] first, or give them a dtype with a fixed
range (``uint8``, ``uint16``) to state the scale. Likewise an ``int32`` image of 16-bit data
whose values all stay within 0-255 is read as 8-bit: convert 16-bit data to ``uint16``.

:func:`check_image_batch` turns every accepted image batch into 2D arrays of a *working dtype*,
chosen per image: ``uint8`` (0-255) for ``uint8`` and ``bool`` images, so OpenCV runs on its
fastest path, and ``float32`` in [0, 1] for every other dtype. :func:`check_flat_batch` and
:func:`resolve_image_shape` do the same for flat batches. Every error names the sample at fault.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FlatImages",
    "as_float01",
    "as_uint8",
    "check_flat_batch",
    "check_image_batch",
    "estimate_background",
    "estimate_backgrounds",
    "full_scale",
    "image_geometry",
    "is_flat_batch",
    "is_light_background",
    "resolve_geometry",
    "resolve_image_shape",
    "split_working_dtypes",
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
        character drawn on a transparent canvas stays a dark character on a light one;
        opaque is the image's full-scale value under the scaling rule of this module
        (255 for ``uint8``, 65535 for ``uint16``, 1 or 255 for floats ...).
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
        white = full_scale(image, index)
        alpha = image[:, :, 3].astype(np.float64) / white
        gray = gray * alpha + white * (1.0 - alpha)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(np.rint(gray), 0, np.iinfo(image.dtype).max).astype(image.dtype)
    return gray


def _own_scale(dtype: np.dtype) -> float | None:
    """The full scale stated by the dtype itself (either byte order), ``None`` if it states none."""
    if dtype.kind == "b":
        return 1.0
    if dtype.kind == "u" and dtype.itemsize <= 2:
        return 255.0 if dtype.itemsize == 1 else 65535.0
    return None


def full_scale(image: np.ndarray, index: int | None = None) -> float:
    """The value that stands for full intensity in one image, read from that image alone.

    ``uint8``: 255, ``uint16``: 65535, ``bool``: 1. Other integers: 255 when the image's
    values all lie in 0-255, else 65535. Floats: 1 when the image's maximum is at most 1,
    else 255. See the module docstring for the rule and its edge cases.

    Parameters
    ----------
    image : ndarray
        One image, 2D or 3D (all its channels are read).
    index : int, optional
        Position of the image in its batch, quoted in error messages.

    Returns
    -------
    scale : float

    Raises
    ------
    ValueError
        For NaN or infinite values, negative values, floats above 255 and integers above
        65535; the message names the sample.
    """
    scale = _own_scale(image.dtype)
    if scale is not None:
        return scale
    # NaN and infinities show in the extremes, which spares a pass of isfinite.
    low, high = float(image.min()), float(image.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{_sample(index)} contains NaN or infinite values.")
    return _scale_of_range(low, high, np.issubdtype(image.dtype, np.floating), index)


def _sample(index: int | None) -> str:
    return "the image" if index is None else f"sample {index}"


def _scale_of_range(low: float, high: float, is_float: bool, index: int | None) -> float:
    """:func:`full_scale` of an image of a dtype without a fixed range, from its extremes."""
    if low < 0:
        raise ValueError(
            f"{_sample(index)} has negative values (min {low:g}); image intensities must be "
            "non-negative (0-1 or 0-255 for floats, the dtype's range for integers)."
        )
    if is_float:
        if high <= 1.0:
            return 1.0
        if high <= 255.0:
            return 255.0
        raise ValueError(
            f"{_sample(index)} is a float image with values up to {high:g}: float images must "
            "be in [0, 1] or 0-255, so its scale is unknown; divide it by its full-scale "
            "value (e.g. image / 65535 for 16-bit data) or convert it to uint16."
        )
    if high <= 255:
        return 255.0
    if high <= 65535:
        return 65535.0
    raise ValueError(
        f"{_sample(index)} has values up to {high:g}, beyond the 16-bit range 0-65535; "
        "divide it by its full-scale value to get floats in [0, 1]."
    )


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
    """Validate an image batch and convert it to gray images in their working dtypes.

    Parameters
    ----------
    X : sequence of array-like or ndarray
        A list / tuple / 1-D object array of 2D or 3D images (possibly of different sizes),
        a 3D array ``(n, H, W)`` or a 4D array ``(n, H, W, C)`` with ``C`` in {1, 3, 4}.
        Colour images are converted to gray; ``uint8`` and ``bool`` images become ``uint8``
        (``True`` is 255); every other image becomes ``float32`` in [0, 1], scaled by a rule
        that reads that image alone: ``uint16`` by 65535, other integers by 255 when their
        values lie in 0-255 and by 65535 otherwise, floats as they are when their maximum is
        at most 1 and by 255 otherwise (see :func:`full_scale` and the module docstring).
    order : {"rgb", "bgr"}, default="rgb"
        Channel order of colour images.
    dense : bool, optional
        ``True`` returns a 3D array (all images must share a size), ``False`` a list.
        By default the result has the form of the input: an array for an array, a list
        for a sequence.

    Returns
    -------
    images : list of ndarray or ndarray of shape (n, H, W)
        2D images, each ``uint8`` (0-255) or ``float32`` (0-1) after its own dtype: a list
        may mix the two. A 3D array has one dtype: ``float32`` when the images' dtypes
        differ.

    Raises
    ------
    TypeError
        For non-numeric data or junk in an object array; the message names the sample.
    ValueError
        For an empty batch, a sample that is not 2D/3D, an empty image, NaN/inf values,
        negative values, floats above 255 or integers above 65535; the message names the
        sample.
    """
    fast = _fast_gray_batch(X)
    if fast is not None:
        grays, was_dense = fast
    else:
        samples, was_dense = _split_batch(X)
        grays = [_working_image(sample, order, i) for i, sample in enumerate(samples)]
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
    if split_working_dtypes(grays) is not None:
        grays = [as_float01(g) for g in grays]
    return np.stack(grays)


def split_working_dtypes(
    images: list[np.ndarray] | np.ndarray,
) -> list[tuple[list[int], list[np.ndarray]]] | None:
    """Group the images of a checked batch by working dtype; ``None`` when they share one.

    Steps that run one code path per dtype (OpenCV's 8-bit or float functions) handle each
    group on its own, so that an image's result never depends on the dtypes of its
    batch-mates.

    Returns
    -------
    groups : list of (indices, images), or None
        The positions and the images of each working dtype, in order of first appearance.
    """
    if isinstance(images, np.ndarray):
        return None
    first = images[0].dtype
    if all(image.dtype is first for image in images):
        return None
    groups: dict[np.dtype, tuple[list[int], list[np.ndarray]]] = {}
    for i, image in enumerate(images):
        index, members = groups.setdefault(image.dtype, ([], []))
        index.append(i)
        members.append(image)
    return list(groups.values()) if len(groups) > 1 else None


_UINT8 = np.dtype(np.uint8)
_NDARRAY = np.ndarray


def _fast_gray_batch(X: object) -> tuple[list[np.ndarray] | np.ndarray, bool] | None:
    """Check the common batches without per-sample work; ``None`` means "take the full path".

    A list or tuple of non-empty 2D ``uint8`` arrays is returned as a list of the same arrays,
    a dense non-empty 3D gray array is checked and scaled with whole-array operations (one
    minimum and maximum per image, one scale per image). Any batch these cheap tests cannot
    vouch for (including every invalid one) goes through the per-sample path, which names the
    sample at fault.
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
    scales = _own_scale(X.dtype)
    if scales is None:
        is_float = np.issubdtype(X.dtype, np.floating)
        # NaN and infinities show in the extremes, which spares a pass of isfinite.
        low, high = float(X.min()), float(X.max())
        finite = math.isfinite(low) and math.isfinite(high)
        if not finite or low < 0 or high > (255 if is_float else 65535):
            return None
        # _scale_of_range image by image: the largest value of the lower reading, its
        # scale and the scale above it. Only a batch that exceeds it needs each image's max.
        bound, below, above = (1.0, 1.0, 255.0) if is_float else (255.0, 255.0, 65535.0)
        if high <= bound:
            scales = below
        else:
            scales = np.where(X.reshape(len(X), -1).max(axis=1) <= bound, below, above)
    images = X.astype(np.float32)
    scales = np.asarray(scales, np.float32)
    if (scales != 1.0).any():
        # Multiplying by the float32 reciprocal, as _working_image does: the same bits.
        images *= (np.float32(1.0) / scales).reshape(-1, 1, 1)
    return images, True


def _working_image(sample: np.ndarray, order: str, index: int) -> np.ndarray:
    """One checked sample as a 2D image of its working dtype, scaled by its own rule."""
    gray = to_gray(sample, order=order, index=index)
    if gray.dtype == np.uint8:
        return gray
    if gray.dtype == np.bool_:
        return gray.astype(np.uint8) * np.uint8(255)
    # The scale is read from the sample itself, every channel included: a colour image's
    # gray values can be far below its full scale.
    scale = full_scale(sample, index)
    image = gray.astype(np.float32)
    if scale != 1.0:
        image *= np.float32(1.0) / np.float32(scale)
    return image


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
    less than their background does, so the median is the background level. See
    :func:`estimate_backgrounds` for a stack of same-size images.
    """
    return float(estimate_backgrounds(image[None])[0])


def estimate_backgrounds(stack: np.ndarray) -> np.ndarray:
    """:func:`estimate_background` of every image of a ``(n, H, W)`` stack at once.

    Returns the levels as ``float64`` for integer images and in the images' own float dtype
    otherwise, as :func:`numpy.median` would. Images of two pixels or fewer in height or
    width have no inner part: the median of all their pixels is taken.
    """
    n, height, width = stack.shape
    if height <= 2 or width <= 2:
        border = stack.reshape(n, -1).copy()  # partitioned in place below
    else:
        border = np.concatenate(
            [stack[:, 0], stack[:, -1], stack[:, 1:-1, 0], stack[:, 1:-1, -1]], axis=1
        )
    if border.dtype.kind != "f":
        border = border.astype(np.float64)
    # np.median partitions around both middle values of an even count, several times
    # slower than one partition followed by the maximum of the lower half
    middle = border.shape[1] // 2
    border.partition(middle, axis=1)
    if border.shape[1] % 2:
        return border[:, middle]
    return (border[:, :middle].max(axis=1) + border[:, middle]) / border.dtype.type(2.0)


def is_light_background(levels: np.ndarray | float, full_scale: float = 1.0) -> np.ndarray:
    """Whether a background level (:func:`estimate_background`) is light paper.

    The rule every polarity decision of the package uses: lighter than mid-grey, half of
    ``full_scale`` (255 for ``uint8`` images, 1 for floats in [0, 1]), means dark ink on a
    light background.
    """
    return np.asarray(levels) > full_scale / 2


def is_flat_batch(X: object) -> bool:
    """Whether ``X`` is a flat batch (a 2D numeric array or data frame) rather than images."""
    if hasattr(X, "iloc") or hasattr(X, "tocsr"):  # pandas / sparse input
        return True
    return isinstance(X, np.ndarray) and X.dtype != object and X.ndim == 2


def _is_size_pair(value: object) -> bool:
    """Whether ``value`` is a ``(height, width)`` tuple or list of two positive integers."""
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and v > 0 for v in value)
    )


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
    if not _is_size_pair(image_shape):
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


class FlatImages(np.ndarray):
    """A flat batch that remembers the ``(height, width)`` its rows were flattened from.

    :class:`~skcharclf.ImageResizer` returns one, so the later steps of a pipeline
    (:class:`~skcharclf.RareClassAugmenter`, :class:`~skcharclf.KerasCharClassifier`, a
    :class:`~skcharclf.Denoiser` on flat input) take the geometry from their input and the
    size is stated once, by the resizer. It is a plain :class:`numpy.ndarray` for everything
    else: scikit-learn and imbalanced-learn estimators convert it with ``np.asarray`` and see an
    ordinary array.

    Row selections (slicing, fancy indexing, ``_safe_indexing`` in cross-validation splits),
    element-wise arithmetic, copies and pickling (joblib workers) keep the geometry; anything
    that is no longer a 2D batch of ``height * width`` columns (a column, a reduction such as
    ``X.max()``, a reshape to images) is a plain array or scalar.

    Parameters
    ----------
    array : array-like of shape (n_samples, height * width)
        The flat batch (not copied when it already is an ndarray).
    image_shape : tuple of (int, int)
        ``(height, width)`` of the images.
    source : str, optional
        Who produced the batch, e.g. ``"ImageResizer(size=(32, 24))"``; quoted in the error
        raised when a later step is told a different geometry.

    Attributes
    ----------
    image_shape : tuple of (int, int)
        ``(height, width)`` of the images.
    source : str or None
        The producing step.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf import FlatImages
    >>> X = FlatImages(np.zeros((4, 6), np.float32), (2, 3), source="my loader")
    >>> X[1:3].image_shape
    (2, 3)
    >>> type(X.max()).__name__, type(X[:, 0]).__name__
    ('float32', 'ndarray')
    """

    image_shape: tuple[int, int] | None
    source: str | None

    def __new__(
        cls, array: object, image_shape: tuple[int, int], source: str | None = None
    ) -> FlatImages:
        flat = np.asarray(array)
        if not _is_size_pair(image_shape):
            raise ValueError(
                f"image_shape must be a (height, width) tuple of positive integers, got "
                f"{image_shape!r}."
            )
        height, width = int(image_shape[0]), int(image_shape[1])
        if flat.ndim != 2 or flat.shape[1] != height * width:
            raise ValueError(
                f"a flat batch of {height}x{width} images has shape (n_samples, "
                f"{height * width}), got {flat.shape}."
            )
        batch = flat.view(cls)
        batch.image_shape = (height, width)
        batch.source = source
        return batch

    def __array_finalize__(self, obj: np.ndarray | None) -> None:
        shape = getattr(obj, "image_shape", None)
        self.source = getattr(obj, "source", None)
        self.image_shape = shape if _matches(self, shape) else None

    def __array_wrap__(
        self, array: np.ndarray, context: object = None, return_scalar: bool = False
    ) -> object:
        if return_scalar:
            return array[()]
        if not _matches(array, self.image_shape):
            return array.view(np.ndarray)
        return super().__array_wrap__(array, context, return_scalar)

    def __getitem__(self, key: object) -> object:
        result = super().__getitem__(key)
        if isinstance(result, FlatImages) and result.image_shape is None:
            return result.view(np.ndarray)
        return result

    def __reduce__(self) -> tuple:
        rebuild, arguments, state = super().__reduce__()
        return rebuild, arguments, (state, self.image_shape, self.source)

    def __setstate__(self, state: tuple) -> None:
        array_state, image_shape, source = state
        super().__setstate__(array_state)
        self.image_shape = image_shape
        self.source = source


def _matches(array: np.ndarray, image_shape: tuple[int, int] | None) -> bool:
    """Whether ``array`` is a 2D batch whose rows hold ``image_shape`` images."""
    return (
        image_shape is not None
        and array.ndim == 2
        and array.shape[1] == image_shape[0] * image_shape[1]
    )


_PIXEL_NAME = "pixel_{}_{}"  # ImageResizer.get_feature_names_out: pixel_<row>_<column>


def image_geometry(X: object) -> tuple[tuple[int, int], str] | None:
    """The image geometry a flat batch carries, read before validation strips it.

    Parameters
    ----------
    X : object
        The raw input of a step: a :class:`FlatImages` (the resizer's output), or a data frame
        whose columns are the resizer's feature names ``pixel_<row>_<column>`` (its output
        under ``set_output(transform="pandas")``).

    Returns
    -------
    geometry : ((height, width), source) or None
        ``None`` when ``X`` carries no geometry (a plain array, other column names).
    """
    if isinstance(X, FlatImages):
        if not _matches(X, X.image_shape):
            return None
        return X.image_shape, X.source or "a FlatImages batch"
    columns = getattr(X, "columns", None)
    if columns is None or len(columns) == 0 or not isinstance(columns[-1], str):
        return None
    parts = columns[-1].split("_")
    if len(parts) != 3 or parts[0] != "pixel" or not (parts[1] + parts[2]).isdigit():
        return None
    height, width = int(parts[1]) + 1, int(parts[2]) + 1
    expected = [_PIXEL_NAME.format(r, c) for r in range(height) for c in range(width)]
    if list(columns) != expected:
        return None
    return (height, width), "the column names pixel_<row>_<column> of ImageResizer"


def resolve_geometry(
    image_shape: object,
    n_features: int,
    geometry: tuple[tuple[int, int], str] | None,
    step: str,
) -> tuple[int, int]:
    """Resolve a step's ``image_shape`` parameter against the geometry its input carries.

    Does what :func:`resolve_image_shape` does, with the same errors, and two differences when
    the input carries a geometry: ``"auto"`` takes it instead of inferring a square or one row,
    and an explicit ``image_shape`` that contradicts it is a ValueError naming both steps.

    Parameters
    ----------
    image_shape : "auto" or tuple of (int, int)
        The step's parameter.
    n_features : int
        Number of columns of the validated flat batch.
    geometry : ((height, width), source) or None
        What :func:`image_geometry` read from the raw input.
    step : str
        The step, as quoted in errors, e.g. ``"RareClassAugmenter(image_shape=(32, 32))"``.

    Returns
    -------
    (height, width) : tuple of int
        The image shape, checked against ``n_features`` as by :func:`resolve_image_shape`.
    """
    if geometry is None:
        return resolve_image_shape(image_shape, n_features)
    shape, source = geometry
    if isinstance(image_shape, str) and image_shape == "auto":
        return resolve_image_shape(shape, n_features)
    if isinstance(image_shape, (tuple, list)) and tuple(image_shape) != shape:
        raise ValueError(
            f"{step} contradicts its input: {source} produced {shape[0]}x{shape[1]} images, "
            f"image_shape={shape}. Leave image_shape='auto' (the default) to take the "
            "geometry from the input, or make the two steps agree."
        )
    return resolve_image_shape(image_shape, n_features)
