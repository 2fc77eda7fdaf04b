"""The first steps of a pipeline: :class:`Denoiser` and :class:`ImageResizer`.

Both are stateless scikit-learn transformers, so the very same preprocessing runs on the
training folds and on every later batch (validation, test, production) once they sit in a
pipeline. They accept an image batch (ragged list, 3D or 4D array, see
:func:`skcharclf._images.check_image_batch`) or a flat batch ``(n_samples, H * W)``.

Speed comes from the shape of the data rather than from threads: images of one size are
stacked and handled together. :class:`ImageResizer` reads all backgrounds of a size group in
one vectorised median and converts to ``float32`` once, over the whole output matrix;
:class:`Denoiser` lays a size group side by side in one wide image, each image padded with its
own border, so one OpenCV call filters thousands of images with exactly the result of one call
per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _get_container_adapter
from sklearn.utils.validation import _check_feature_names_in

from skcharclf._image_transformer import StatelessImageTransformer
from skcharclf._images import (
    FlatImages,
    as_float01,
    as_uint8,
    check_flat_batch,
    estimate_backgrounds,
    image_geometry,
    is_light_background,
    split_working_dtypes,
    unflatten,
)

__all__ = ["Denoiser", "ImageResizer", "images_from_flat"]

_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}

_METHODS = (
    "none",
    "sharpen",
    "median",
    "bilateral",
    "gaussian",
    "nl_means",
    "threshold",
    "open",
    "close",
    "dilate",
    "erode",
)

# Upper bounds that keep the cost of one image bounded whatever the parameters (a model file
# edited by hand included). An output side of 1024 pixels (4 MB of float32 per image) is far
# above what a character classifier uses (32 by default). OpenCV's filters cost
# ksize**2 per pixel (bilateral) or ksize per pixel: windows of 31 pixels already span a whole
# character crop. Repeated morphology reaches iterations * (ksize // 2) pixels from the centre:
# 50 pixels removes or fills every stroke of a character.
_MAX_SIZE = 1024
_MAX_KSIZE = 31
_MAX_ITERATIONS = 50
_MAX_MORPHOLOGY_REACH = 50
_MORPHOLOGY = ("open", "close", "dilate", "erode")
# Pixels of one wide image of _side_by_side (64 MB in float32).
_WIDE_PIXELS = 2**24

# Non-local means windows (template 5, search 11 pixels): OpenCV's recommended 7 and 21 are
# meant for photographs; on 32-pixel characters these are as good and 2.5 times faster.
_NL_MEANS_WINDOWS = (5, 11)


def images_from_flat(X: object, image_shape: object = (32, 32)) -> np.ndarray:
    """Reshape a flat batch back to images, e.g. to plot what a pipeline step produced.

    Parameters
    ----------
    X : array-like of shape (n_samples, H * W)
        Rows of flattened images, such as the output of :class:`ImageResizer`.
    image_shape : "auto" or tuple of (int, int), default=(32, 32)
        The ``(height, width)`` the rows were flattened from (the resizer's ``size``).
        ``"auto"`` assumes square images.

    Returns
    -------
    images : ndarray of shape (n_samples, H, W), float32

    See Also
    --------
    ImageResizer : Produces flat batches.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.preprocessing import images_from_flat
    >>> images_from_flat(np.zeros((2, 64)), image_shape="auto").shape
    (2, 8, 8)
    """
    flat, shape = check_flat_batch(X, image_shape)
    return unflatten(flat, shape)


def _check_pair(value: object, name: str, maximum: int | None = None) -> tuple[int, int]:
    """Return ``value`` as a ``(height, width)`` pair of positive ints, or raise naming it."""
    if (
        len(value) != 2
        or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
        or min(value) < 1
    ):
        raise ValueError(
            f"{name} must be a (height, width) pair of positive integers, got {value!r}."
        )
    if maximum is not None and max(value) > maximum:
        raise ValueError(
            f"{name} must be at most {maximum} pixels per side, got {tuple(value)!r}."
        )
    return int(value[0]), int(value[1])


def _shape_groups(
    images: list[np.ndarray] | np.ndarray, *, stacked: bool = True
) -> Iterator[tuple[Sequence[int], np.ndarray | list[np.ndarray]]]:
    """Yield ``(indices, images)`` for each image size: their positions and the images.

    With ``stacked`` the images of a group come as one ``(n, H, W)`` array, else as a list.
    """
    if isinstance(images, np.ndarray):
        yield range(len(images)), images
        return
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    for shape, index in groups.items():
        members = [images[i] for i in index]
        # One concatenate is a single C loop; np.stack adds Python work per image.
        yield index, np.concatenate(members).reshape(len(index), *shape) if stacked else members


class ImageResizer(StatelessImageTransformer):
    """Resize character images to one shape and return them as a flat batch.

    Every image becomes ``size`` pixels, bright ink on a dark background, flattened to one row
    of a ``float32`` matrix in [0, 1]: the form every later step (samplers, scikit-learn and
    Keras classifiers) consumes.

    Parameters
    ----------
    size : tuple of (int, int), default=(32, 32)
        Output ``(height, width)``, at most 1024 pixels per side.
    mode : {"pad", "stretch", "fit_height"}, default="pad"
        How the aspect ratio is treated:

        - ``"pad"``: scale to fit inside ``size`` keeping the aspect ratio, centre, and fill
          the rest with the image's background level.
        - ``"stretch"``: scale each axis independently to ``size`` (distorts the shape).
        - ``"fit_height"``: scale to the output height keeping the aspect ratio, then centre
          the result, padding narrow images and cropping the sides of wide ones.
    interpolation : {"area", "linear", "cubic", "nearest"}, default="area"
        OpenCV interpolation: ``"area"`` averages pixels when shrinking (the best choice for
        downscaling), ``"linear"`` and ``"cubic"`` are smoother when enlarging, ``"nearest"``
        keeps hard binary edges.
    polarity : {"auto", "dark_on_light", "light_on_dark"}, default="auto"
        Colour scheme of the input. ``"auto"`` reads each image's background from its border
        pixels (:func:`~skcharclf._images.estimate_background`) and inverts the images whose
        background is lighter than mid-grey. ``"dark_on_light"`` inverts every image and
        ``"light_on_dark"`` none. The output always has bright ink on a dark background.
    image_shape : "auto" or tuple of (int, int), default="auto"
        Shape of the rows when the input is a flat batch ``(n_samples, H * W)``; ``"auto"``
        takes it from the input when it carries one (a :class:`~skcharclf.FlatImages`, e.g.
        an earlier resizer's output), else means square images (or one-row images when
        ``H * W`` is not a square). Ignored for image batches.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns of the flat batch seen by :meth:`fit`; absent after fitting on an
        image batch, whose images have no fixed number of pixels.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names of a data frame seen by :meth:`fit`.

    See Also
    --------
    Denoiser : Filters the images before they are resized.
    images_from_flat : Reshape the output back to images.

    Notes
    -----
    The transformer is stateless: :meth:`fit` only checks its input, so the same resizing
    applies to any later batch. Each image is brought to [0, 1] by a rule that reads that
    image alone: ``uint8`` by 255, ``uint16`` by 65535, ``bool`` to {0, 1}, other integers by
    255 (values within 0-255) or 65535, floats as they are (maximum at most 1) or by 255
    (maximum up to 255); negative, NaN, infinite and larger values are errors naming the
    sample (details in :mod:`skcharclf._images`). Its background, padding and polarity are
    read from its own border too, so an output row never depends on the other images of the
    batch, their order or their number. 8-bit input is resized as ``uint8`` (OpenCV's fastest
    path) and divided by 255 once at the end. Images of the same size share their scaling
    geometry and are handled as one group; the result is identical to resizing one image at
    a time.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf import ImageResizer
    >>> images = [np.full((32, 12), 255, np.uint8), np.full((32, 20), 255, np.uint8)]
    >>> images[0][8:24, 4:8] = 0  # dark ink on a light background
    >>> X = ImageResizer(size=(16, 16)).fit_transform(images)
    >>> X.shape, X.dtype, float(X.max())
    ((2, 256), dtype('float32'), 1.0)
    """

    _parameter_constraints: dict = {
        "size": [tuple, list],
        "mode": [StrOptions({"pad", "stretch", "fit_height"})],
        "interpolation": [StrOptions(set(_INTERPOLATION))],
        "polarity": [StrOptions({"auto", "dark_on_light", "light_on_dark"})],
        "image_shape": [StrOptions({"auto"}), tuple, list],
    }

    def __init__(
        self,
        size: tuple[int, int] = (32, 32),
        *,
        mode: str = "pad",
        interpolation: str = "area",
        polarity: str = "auto",
        image_shape: str | tuple[int, int] = "auto",
    ) -> None:
        self.size = size
        self.mode = mode
        self.interpolation = interpolation
        self.polarity = polarity
        self.image_shape = image_shape

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the output pixels: ``"pixel_<row>_<column>"``.

        Parameters
        ----------
        input_features : array-like of str, optional
            Only checked against the columns seen in :meth:`fit`; the output names do not
            depend on them.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        if input_features is not None:
            _check_feature_names_in(self, input_features)
        height, width = _check_pair(self.size, "size", _MAX_SIZE)
        return np.asarray(
            [f"pixel_{r}_{c}" for r in range(height) for c in range(width)], dtype=object
        )

    def _transform(
        self, images: list[np.ndarray] | np.ndarray, flat: bool, X: object, checked: None
    ) -> FlatImages:
        return self._flat_images(self._resize(images))

    def _flat_images(self, flat: np.ndarray) -> FlatImages:
        """The output, carrying its geometry for the later steps (see :class:`FlatImages`)."""
        size = _check_pair(self.size, "size")
        return FlatImages(flat, size, source=f"ImageResizer(size={size})")

    def _check_params(self) -> None:
        _check_pair(self.size, "size", _MAX_SIZE)
        if not isinstance(self.image_shape, str):
            _check_pair(self.image_shape, "image_shape")

    def _geometry(self, height: int, width: int) -> tuple[tuple[int, int], tuple, tuple, bool]:
        """Where an image of ``height x width`` goes in the output.

        Returns the ``cv2.resize`` size ``(new_width, new_height)``, the part of the resized
        image that is kept and the part of the canvas it fills (as slices), and whether it
        covers the whole canvas.
        """
        out_h, out_w = self.size
        if self.mode == "stretch":
            new_h, new_w = out_h, out_w
        elif self.mode == "pad":
            scale = min(out_h / height, out_w / width)
            new_h = min(out_h, max(1, int(height * scale + 0.5)))
            new_w = min(out_w, max(1, int(width * scale + 0.5)))
        else:
            new_h, new_w = out_h, max(1, int(width * out_h / height + 0.5))
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
        src = (slice(max(-top, 0), max(-top, 0) + min(new_h, out_h)),
               slice(max(-left, 0), max(-left, 0) + min(new_w, out_w)))
        dst = (slice(max(top, 0), max(top, 0) + min(new_h, out_h)),
               slice(max(left, 0), max(left, 0) + min(new_w, out_w)))
        return (new_w, new_h), src, dst, new_h >= out_h and new_w >= out_w

    def _needs_background(self) -> bool:
        """Whether the background level is read: to choose the polarity or to pad with it."""
        return self.polarity == "auto" or self.mode != "stretch"

    def _resize(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        out_h, out_w = self.size
        n = len(images)
        groups = split_working_dtypes(images)
        if groups is not None:
            # 8-bit and float images each take their own path, as they would alone.
            result = np.empty((n, out_h * out_w), np.float32)
            for index, members in groups:
                result[index] = self._resize(members)
            return result
        dtype = images[0].dtype
        top = 255 if dtype == np.uint8 else 1.0
        canvas = np.empty((n, out_h, out_w), dtype)
        invert = np.full(n, self.polarity == "dark_on_light")
        flag = _INTERPOLATION[self.interpolation]
        resize = cv2.resize
        for index, group in _shape_groups(images, stacked=self._needs_background()):
            new_size, src, dst, covers = self._geometry(*group[0].shape)
            if self.polarity == "auto" or not covers:
                background = estimate_backgrounds(group)
                if self.polarity == "auto":
                    invert[index] = is_light_background(background, top)
                if not covers:
                    fill = np.rint(background) if dtype == np.uint8 else background
                    canvas[index] = fill.astype(dtype)[:, None, None]
            if new_size[1] > out_h or new_size[0] > out_w:  # "fit_height" crops wide images
                for i, image in zip(index, group, strict=True):
                    canvas[i][dst] = resize(image, new_size, interpolation=flag)[src]
            else:
                slots = canvas[(slice(None), *dst)]
                for i, image in zip(index, group, strict=True):
                    resize(image, new_size, dst=slots[i], interpolation=flag)
        if invert.any():
            np.subtract(dtype.type(top), canvas, out=canvas, where=invert[:, None, None])
        flat = canvas.reshape(n, out_h * out_w)
        if dtype == np.uint8:
            result = np.empty(flat.shape, np.float32)
            return np.divide(flat, np.float32(255), out=result)
        # Cubic interpolation overshoots: keep the flat-batch contract of values in [0, 1].
        return np.clip(flat, 0.0, 1.0, out=flat)


class Denoiser(StatelessImageTransformer, auto_wrap_output_keys=None):
    """Filter noise from character images with OpenCV; the default ``method="none"`` does nothing.

    One filter or a chain of filters, chosen by ``method`` so that a grid search can pick
    the input variant (``{"denoise__method": ["none", "median", ["median", "sharpen"]]}``);
    the batch keeps its form. ``Denoiser()`` alone returns the images unchanged: it is the
    baseline of such a search. Name a method to filter: :func:`~skcharclf.make_char_pipeline`
    and :func:`~skcharclf.make_baseline_pipeline` use ``"median"``, which removes the
    salt-and-pepper noise of scans.

    Parameters
    ----------
    method : str or list of str, default="none"
        The filter, or a list of filters applied in order:

        - ``"none"`` (the default): leave the images as they are.
        - ``"sharpen"``: unsharp mask, ``image + sharpen_amount * (image - gaussian(image))``.
        - ``"median"``: median of a ``ksize x ksize`` window; removes salt-and-pepper noise
          and keeps edges.
        - ``"bilateral"``: edge-preserving smoothing over a ``ksize`` diameter
          (``sigma_color``, ``sigma_space``).
        - ``"gaussian"``: Gaussian blur with a ``ksize x ksize`` kernel (``sigma_space``).
        - ``"nl_means"``: non-local means (strength ``h``; template and search windows of
          5 and 11 pixels). The strongest and by far the slowest filter (about a
          millisecond per image).
        - ``"threshold"``: binarise, pixels above ``threshold`` become full intensity and the
          others zero.
        - ``"dilate"``, ``"erode"``, ``"open"``, ``"close"``: grey-level morphology with a
          ``ksize x ksize`` square, ``iterations`` times. They act on **bright** pixels:
          ``"dilate"`` grows bright regions, ``"erode"`` shrinks them, ``"open"`` removes
          bright specks smaller than the square and ``"close"`` fills small dark holes. On
          dark ink on a light background (raw scans) ink is the dark part, so the effects
          swap (``"dilate"`` thins strokes, ``"open"`` fills holes in strokes); after an
          :class:`ImageResizer`, ink is always bright.
    ksize : int, default=3
        Odd window size (3 to 31) of the median, Gaussian, bilateral and morphology filters
        and of the blur inside ``"sharpen"``.
    sigma_space : float, default=0.0
        Spatial standard deviation, in pixels, of ``"gaussian"``, ``"sharpen"`` and
        ``"bilateral"``; 0 derives it from ``ksize`` as OpenCV does
        (``0.3 * ((ksize - 1) / 2 - 1) + 0.8``, i.e. 0.8 for ``ksize=3``).
    sigma_color : float, default=0.3
        Intensity standard deviation of ``"bilateral"`` on the [0, 1] scale (0.3 is about 75
        on OpenCV's 0-255 scale): differences much larger than it count as edges and are not
        smoothed across; below the noise level the filter does little.
    h : float, default=0.1
        Strength of ``"nl_means"`` on the [0, 1] scale (0.1 is about 25 on OpenCV's 0-255
        scale), best near the noise's standard deviation; larger removes more noise and more
        detail.
    threshold : "otsu" or float in [0, 1], default="otsu"
        Level of ``"threshold"``: a fixed intensity, or ``"otsu"`` for Otsu's level chosen
        per image from its histogram.
    sharpen_amount : float, default=1.0
        Strength of ``"sharpen"``; 0 leaves the image unchanged.
    iterations : int, default=1
        Repetitions of the morphology filters, 1 to 50. Together they reach
        ``iterations * (ksize // 2)`` pixels from each pixel, at most 50 (e.g. ``ksize=3``
        up to 50 times, ``ksize=5`` up to 25 times).
    image_shape : "auto" or tuple of (int, int), default="auto"
        Shape of the rows when the input is a flat batch; ``"auto"`` takes it from the input
        when it carries one (a :class:`~skcharclf.FlatImages`, e.g. the resizer's output,
        which the Denoiser then returns as one too), else means square images (one-row
        images when the number of columns is not a square). Ignored for images.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns of the flat batch seen by :meth:`fit`; absent after fitting on an
        image batch.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names of a data frame seen by :meth:`fit`.

    See Also
    --------
    ImageResizer : The next step, which brings every image to one size.

    Notes
    -----
    The output has the form of the input: a sequence gives a list (sizes kept), a 3D or 4D
    array a 3D array, a flat batch a flat ``float32`` batch. Each image keeps the working
    dtype of :func:`~skcharclf._images.check_image_batch`, chosen from its own dtype:
    ``uint8`` and ``bool`` images are ``uint8`` (the fastest path), every other image is
    ``float32`` in [0, 1], scaled by a rule that reads that image alone (``uint16`` by 65535,
    other integers by 255 or 65535, floats as they are up to 1 and by 255 up to 255; see
    :class:`ImageResizer`). A list mixing the two comes back mixed, and each image is
    filtered exactly as it would be alone. ``"nl_means"``, Otsu's
    ``"threshold"`` and ``"median"`` with ``ksize > 5`` exist in OpenCV for 8-bit images
    only, so ``float32`` images are quantised to 256 levels for them. With
    ``method="none"`` 8-bit images are returned as they are, not copied.

    The transformer is stateless: :meth:`fit` only checks its input.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf import Denoiser
    >>> rng = np.random.default_rng(0)
    >>> image = np.zeros((32, 20), np.uint8)
    >>> image[4:28, 8:12] = 255
    >>> noisy = image.copy()
    >>> noisy[rng.random(image.shape) < 0.05] = 255  # salt noise
    >>> clean = Denoiser(method="median").fit_transform([noisy])[0]
    >>> int((noisy != image).sum()) > int((clean != image).sum())
    True
    """

    _parameter_constraints: dict = {
        "method": [StrOptions(set(_METHODS)), list, tuple],
        "ksize": [Interval(Integral, 3, _MAX_KSIZE, closed="both")],
        "sigma_space": [Interval(Real, 0, None, closed="left")],
        "sigma_color": [Interval(Real, 0, None, closed="neither")],
        "h": [Interval(Real, 0, None, closed="neither")],
        "threshold": [StrOptions({"otsu"}), Interval(Real, 0, 1, closed="both")],
        "sharpen_amount": [Interval(Real, 0, None, closed="left")],
        "iterations": [Interval(Integral, 1, _MAX_ITERATIONS, closed="both")],
        "image_shape": [StrOptions({"auto"}), tuple, list],
    }

    def __init__(
        self,
        method: str | list[str] = "none",
        *,
        ksize: int = 3,
        sigma_space: float = 0.0,
        sigma_color: float = 0.3,
        h: float = 0.1,
        threshold: str | float = "otsu",
        sharpen_amount: float = 1.0,
        iterations: int = 1,
        image_shape: str | tuple[int, int] = "auto",
    ) -> None:
        self.method = method
        self.ksize = ksize
        self.sigma_space = sigma_space
        self.sigma_color = sigma_color
        self.h = h
        self.threshold = threshold
        self.sharpen_amount = sharpen_amount
        self.iterations = iterations
        self.image_shape = image_shape

    def set_output(self, *, transform: str | None = None) -> Denoiser:
        """Set the container of flat outputs: ``"default"``, ``"pandas"`` or ``"polars"``.

        Only a flat batch can become a data frame; image batches are returned as images
        whatever the setting, so a whole pipeline can be configured at once.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            Container of :meth:`transform` and :meth:`fit_transform` outputs for flat input;
            ``None`` leaves the configuration unchanged.

        Returns
        -------
        self : Denoiser
        """
        if transform is not None:
            self._sklearn_output_config = {"transform": transform}
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the output columns: those of the input, one pixel each.

        Parameters
        ----------
        input_features : array-like of str, optional
            Input column names; by default those seen in :meth:`fit` (``x0``, ``x1``, ...
            for an array). After fitting on an image batch, which has no fixed columns, the
            result is ``input_features`` or an empty array.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        if hasattr(self, "n_features_in_"):
            return _check_feature_names_in(self, input_features)
        return np.asarray([] if input_features is None else input_features, dtype=object)

    def _check_params(self) -> tuple[str, ...]:
        """Check what the parameter constraints cannot express; return the filters to apply.

        Raises a ValueError naming the bad parameter.
        """
        if self.ksize % 2 == 0:
            raise ValueError(
                f"ksize must be odd (a filter window has a centre pixel), got {self.ksize}."
            )
        if not isinstance(self.image_shape, str):
            _check_pair(self.image_shape, "image_shape")
        if isinstance(self.method, str):
            methods = (self.method,)
        elif len(self.method) == 0:
            raise ValueError("method is an empty list; use method='none' to filter nothing.")
        else:
            for position, name in enumerate(self.method):
                if name not in _METHODS:
                    raise ValueError(
                        f"method[{position}]={name!r} is not a Denoiser method; choose from "
                        f"{', '.join(map(repr, _METHODS))}."
                    )
            methods = tuple(self.method)
        reach = self.iterations * (self.ksize // 2)
        if reach > _MAX_MORPHOLOGY_REACH and any(name in _MORPHOLOGY for name in methods):
            raise ValueError(
                f"iterations={self.iterations} with ksize={self.ksize} reaches {reach} pixels "
                f"from each pixel (iterations * (ksize // 2)); the morphology filters allow at "
                f"most {_MAX_MORPHOLOGY_REACH}: lower iterations or ksize."
            )
        return methods

    def _transform(
        self,
        images: list[np.ndarray] | np.ndarray,
        flat: bool,
        X: object,
        checked: tuple[str, ...],
    ) -> list[np.ndarray] | np.ndarray:
        images = self._filter(images, checked)
        if not flat:
            return images
        result = as_float01(images).reshape(len(images), -1)
        adapter = _get_container_adapter("transform", self)
        if adapter is None:
            geometry = image_geometry(X)
            # The resizer's output stays a FlatImages batch that knows its geometry.
            return result if geometry is None else FlatImages(result, *geometry)
        return adapter.create_container(result, X, columns=self.get_feature_names_out)

    def _filter(
        self, images: list[np.ndarray] | np.ndarray, methods: tuple[str, ...]
    ) -> list[np.ndarray] | np.ndarray:
        groups = split_working_dtypes(images)
        if groups is not None:
            # 8-bit and float images each take their own path, as they would alone.
            out: list[np.ndarray] = [None] * len(images)  # type: ignore[list-item]
            for index, members in groups:
                for i, image in zip(index, self._filter(members, methods), strict=True):
                    out[i] = image
            return out
        steps = [self._step(name, images[0].dtype) for name in methods if name != "none"]
        for stacked, run in groupby(steps, key=lambda step: step[0]):
            filters = [filter_ for _, filter_ in run]
            images = _apply_stacked(images, filters) if stacked else _apply_each(images, filters)
        return images

    def _step(self, name: str, dtype: np.dtype) -> tuple[bool, Callable]:
        """The filter ``name`` for images of ``dtype``, and whether it takes whole stacks.

        A stack filter maps ``(n, H, W)`` to ``(n, H, W)``. The others map a list of images to
        a list with one OpenCV call each: they depend on the whole image (Otsu's histogram,
        the bilateral filter's value range) or cost so much per pixel (non-local means) that
        the per-call overhead does not matter.
        """
        if name == "nl_means":
            strength = float(self.h) * 255.0
            template, search = _NL_MEANS_WINDOWS
            denoise = cv2.fastNlMeansDenoising
            return False, _on_uint8(
                lambda images: [denoise(im, None, strength, template, search) for im in images],
                dtype,
            )
        if name == "threshold" and self.threshold == "otsu":
            threshold, flags = cv2.threshold, cv2.THRESH_BINARY | cv2.THRESH_OTSU
            return False, _on_uint8(
                lambda images: [threshold(im, 0, 255, flags)[1] for im in images], dtype
            )
        if name == "bilateral":
            # Side by side, OpenCV's result would depend on the neighbours: its float colour
            # table follows the value range of the whole image, and its 8-bit rounding varies
            # with the image size.
            k, sigma = self.ksize, self._sigma()
            sigma_color = float(self.sigma_color) * (255.0 if dtype == np.uint8 else 1.0)
            bilateral = cv2.bilateralFilter
            return False, lambda images: [bilateral(im, k, sigma_color, sigma) for im in images]
        return True, getattr(self, f"_{name}")

    # The stack filters: (n, H, W) uint8 or float32 in, the same shape and dtype out.

    def _sigma(self) -> float:
        if self.sigma_space > 0:
            return float(self.sigma_space)
        return 0.3 * ((self.ksize - 1) * 0.5 - 1) + 0.8

    def _median(self, stack: np.ndarray) -> np.ndarray:
        k = self.ksize
        if k > 5 and stack.dtype != np.uint8:
            return as_float01(self._median(as_uint8(stack)))
        # medianBlur replicates the border pixels.
        return _side_by_side(stack, k // 2, "edge", lambda wide: cv2.medianBlur(wide, k))

    def _gaussian(self, stack: np.ndarray) -> np.ndarray:
        return _side_by_side(stack, self.ksize // 2, "reflect", self._blur)

    def _blur(self, image: np.ndarray) -> np.ndarray:
        k, sigma = self.ksize, self._sigma()
        return cv2.GaussianBlur(image, (k, k), sigma, sigmaY=sigma,
                                borderType=cv2.BORDER_REFLECT_101)

    def _sharpen(self, stack: np.ndarray) -> np.ndarray:
        amount = float(self.sharpen_amount)

        def unsharp(wide: np.ndarray) -> np.ndarray:
            # addWeighted saturates uint8; float images are clipped below.
            return cv2.addWeighted(wide, 1.0 + amount, self._blur(wide), -amount, 0.0)

        sharp = _side_by_side(stack, self.ksize // 2, "reflect", unsharp)
        return sharp if sharp.dtype == np.uint8 else np.clip(sharp, 0.0, 1.0)

    def _threshold(self, stack: np.ndarray) -> np.ndarray:
        if stack.dtype == np.uint8:
            return np.where(stack > float(self.threshold) * 255.0, np.uint8(255), np.uint8(0))
        return (stack > self.threshold).astype(np.float32)

    def _morphology(self, stack: np.ndarray, operation: Callable) -> np.ndarray:
        # ``iterations`` square erosions (dilations) equal one with a larger square, which
        # lets the padding cover the whole reach. Edge padding leaves a min / max filter
        # unchanged, as OpenCV's default border (ignore the outside) does.
        size = self.iterations * (self.ksize - 1) + 1
        kernel = np.ones((size, size), np.uint8)
        return _side_by_side(stack, size // 2, "edge", lambda wide: operation(wide, kernel))

    def _dilate(self, stack: np.ndarray) -> np.ndarray:
        return self._morphology(stack, cv2.dilate)

    def _erode(self, stack: np.ndarray) -> np.ndarray:
        return self._morphology(stack, cv2.erode)

    def _open(self, stack: np.ndarray) -> np.ndarray:
        return self._dilate(self._erode(stack))

    def _close(self, stack: np.ndarray) -> np.ndarray:
        return self._erode(self._dilate(stack))


# _side_by_side widens float32 slots to a multiple of this many columns (512 bits).
_FLOAT_ALIGN = 16


def _side_by_side(
    stack: np.ndarray,
    pad: int,
    border: str,
    filter_: Callable[[np.ndarray], np.ndarray],
    chunk: int = 4096,
) -> np.ndarray:
    """Apply a 2D filter to every image of ``stack`` with one call per ``chunk`` images.

    The images are laid side by side in one wide image, each padded by ``pad`` pixels with
    its own border (``np.pad`` mode ``border``), so that no filter window reaches a
    neighbour: each output pixel equals the one a separate call per image gives, while the
    per-call overhead of OpenCV, which dominates for small images, is paid once per chunk.
    Side by side rather than one above the other: OpenCV's filters pay a cost per row, which
    a tall narrow image would multiply (a 3x3 median runs about 6 times slower that way).
    Chunks bound the memory of the wide image: at most ``chunk`` images and, for large
    images or wide padding, about ``_WIDE_PIXELS`` pixels.

    OpenCV's float kernels are vectorised, and a pixel's last bit can depend on where it
    falls relative to the vectors (columns past the last full vector take a scalar path). So
    for ``float32`` each image's slot is widened to a multiple of 16 columns (a 512-bit
    vector): every image sits at the same alignment in any batch and no row has a remainder,
    which keeps an image's result bit-identical alone or among others. 8-bit kernels compute
    in integers and need no alignment.
    """
    n, height, width = stack.shape
    align = (-(width + 2 * pad)) % _FLOAT_ALIGN if stack.dtype != np.uint8 else 0
    slot = (height + 2 * pad) * (width + 2 * pad + align)
    chunk = max(1, min(chunk, _WIDE_PIXELS // slot))
    out = np.empty_like(stack)
    for start in range(0, n, chunk):
        part = stack[start : start + chunk]
        wide = np.pad(
            part.transpose(1, 0, 2), ((pad, pad), (0, 0), (pad, pad + align)), mode=border
        )
        padded_h, count, padded_w = wide.shape
        filtered = filter_(wide.reshape(padded_h, count * padded_w))
        filtered = filtered.reshape(padded_h, count, padded_w)
        out[start : start + count] = filtered[pad : pad + height, :, pad : pad + width].transpose(
            1, 0, 2
        )
    return out


def _on_uint8(filter_: Callable[[list], list], dtype: np.dtype) -> Callable[[list], list]:
    """``filter_`` (a list filter built on 8-bit-only OpenCV calls) for images of ``dtype``."""
    if dtype == np.uint8:
        return filter_
    return lambda images: [as_float01(im) for im in filter_([as_uint8(im) for im in images])]


def _apply_each(
    images: list[np.ndarray] | np.ndarray, filters: list[Callable[[list], list]]
) -> list[np.ndarray] | np.ndarray:
    """Apply list filters in order; the batch keeps its form."""
    result = images if isinstance(images, list) else list(images)
    for filter_ in filters:
        result = filter_(result)
    return np.stack(result) if isinstance(images, np.ndarray) else result


def _apply_stacked(
    images: list[np.ndarray] | np.ndarray, filters: list[Callable]
) -> list[np.ndarray] | np.ndarray:
    """Apply stack filters in order to each size group; the batch keeps its form."""
    out: list[np.ndarray] = [None] * len(images)  # type: ignore[list-item]
    for index, stack in _shape_groups(images):
        for filter_ in filters:
            stack = filter_(stack)
        stack = np.ascontiguousarray(stack)
        if isinstance(images, np.ndarray):
            return stack
        for i, image in zip(index, stack, strict=True):
            out[i] = image
    return out
