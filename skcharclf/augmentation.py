"""Rare-class augmentation: an imbalanced-learn over-sampler that generates augmented images.

:class:`RareClassAugmenter` tops up the classes that ``sampling_strategy`` selects with randomly
transformed copies of their own images (rotation, shear, zoom, translation, perspective skew,
elastic distortion, random erasing, stroke-thickness change, additive noise), so it drops into
the ``"augment"`` slot of an :class:`imblearn.pipeline.Pipeline` exactly where
:class:`~imblearn.over_sampling.SMOTE` or :class:`~imblearn.over_sampling.RandomOverSampler`
would go, and is applied during ``fit`` only.

Speed comes from drawing every random parameter of a block of images at once with NumPy,
composing the geometric transforms of each image into one 3x3 matrix, turning matrices and
elastic fields into sampling maps for the whole block with array arithmetic, and then a tight
loop of one :func:`cv2.remap` per image.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import Substitution, check_target_type
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data
from threadpoolctl import ThreadpoolController

from ._images import resolve_image_shape

__all__ = ["TRANSFORM_NAMES", "RareClassAugmenter"]

# Allowed magnitude interval of each transform. The order is the order of application:
# stroke thickness acts on the source strokes, the geometric transforms and the elastic field
# are one warp, and erasing and noise act on the warped image.
_BOUNDS: dict[str, tuple[float, float]] = {
    "thickness": (-1.0, 1.0),
    "rotate": (-180.0, 180.0),
    "shear": (-60.0, 60.0),
    "scale": (0.25, 4.0),
    "translate": (-0.5, 0.5),
    "perspective": (0.0, 0.5),
    "elastic": (0.0, 0.25),
    "erase": (0.0, 0.9),
    "noise": (0.0, 1.0),
}
TRANSFORM_NAMES: tuple[str, ...] = tuple(_BOUNDS)

_GEOMETRIC = ("rotate", "shear", "scale", "translate", "perspective", "elastic")

_Spec = tuple[str, float, tuple[float, float]]

# (name, probability, (low, high)) per preset; "default" keeps a 32x32 character readable
# (see examples/plot_rare_class_augmentation.py).
_PRESETS: dict[str, tuple[_Spec, ...]] = {
    "light": (
        ("thickness", 0.3, (-0.3, 0.5)),
        ("rotate", 0.5, (-6.0, 6.0)),
        ("shear", 0.3, (-6.0, 6.0)),
        ("scale", 0.3, (0.95, 1.05)),
        ("translate", 0.3, (-0.04, 0.04)),
        ("elastic", 0.3, (0.01, 0.025)),
        ("noise", 0.2, (0.01, 0.03)),
    ),
    "default": (
        ("thickness", 0.4, (-0.4, 0.6)),
        ("rotate", 0.7, (-12.0, 12.0)),
        ("shear", 0.5, (-12.0, 12.0)),
        ("scale", 0.5, (0.9, 1.1)),
        ("translate", 0.5, (-0.06, 0.06)),
        ("perspective", 0.3, (0.02, 0.06)),
        ("elastic", 0.5, (0.015, 0.04)),
        ("erase", 0.2, (0.02, 0.05)),
        ("noise", 0.3, (0.01, 0.05)),
    ),
    "strong": (
        ("thickness", 0.5, (-0.7, 1.0)),
        ("rotate", 0.8, (-20.0, 20.0)),
        ("shear", 0.6, (-20.0, 20.0)),
        ("scale", 0.6, (0.8, 1.15)),
        ("translate", 0.6, (-0.1, 0.1)),
        ("perspective", 0.5, (0.04, 0.1)),
        ("elastic", 0.6, (0.03, 0.06)),
        ("erase", 0.4, (0.03, 0.1)),
        ("noise", 0.5, (0.02, 0.1)),
    ),
}

# Images per independently seeded block. Fixed (not derived from n_jobs) so that the output
# does not depend on how many threads run the blocks.
_BLOCK = 512
# OpenCV's remap refuses images with a side of SHRT_MAX (32767) pixels or more.
_CV_MAX_SIDE = 32766
# Control points per side of the elastic displacement grid (4 x 4 cells, as Augmentor's
# random_distortion uses by default).
_ELASTIC_GRID = 5


@Substitution(sampling_strategy=BaseOverSampler._sampling_strategy_docstring)
class RareClassAugmenter(BaseOverSampler):
    """Over-sample classes with randomly transformed copies of their own images.

    An imbalanced-learn sampler: ``fit_resample(X, y)`` returns the original samples
    followed by the generated ones, with as many new images per class as
    ``sampling_strategy`` asks. Each new image is a copy of an image of the same class
    (the class's images are used in turn, in random order) passed through a random subset of
    the transforms. Inside an :class:`imblearn.pipeline.Pipeline` it runs during ``fit``
    only; ``predict`` sees the samples unchanged.

    Parameters
    ----------
    {sampling_strategy}

    transforms : {{"default", "light", "strong"}} or list of transform specs, \
default="default"
        A preset name or a list of transforms. Each transform fires on an image with its
        probability ``p`` and then draws its magnitude uniformly from ``(low, high)``:

        - ``"thickness"``, in [-1, 1]: stroke-width change; > 0 blends towards a 3x3
          dilation, < 0 towards a 3x3 erosion (1: the full dilation or erosion).
        - ``"rotate"``, in [-180, 180]: angle in degrees, positive is counter-clockwise.
        - ``"shear"``, in [-60, 60]: horizontal slant angle in degrees.
        - ``"scale"``, in [0.25, 4]: zoom factor about the image centre.
        - ``"translate"``, in [-0.5, 0.5]: shift as a fraction of the width and of the
          height (x and y drawn independently).
        - ``"perspective"``, in [0, 0.5]: largest corner displacement as a fraction of the
          image size.
        - ``"elastic"``, in [0, 0.25]: amplitude of a smooth random displacement field (a
          4 x 4 grid distortion) as a fraction of the image size.
        - ``"erase"``, in [0, 0.9]: area fraction of a rectangle, centred on a random ink
          pixel, set to the background level.
        - ``"noise"``, in [0, 1]: standard deviation of additive Gaussian noise.

        A spec is a name, ``(name, p)``, ``(name, p, (low, high))`` or a dict with keys
        ``"name"``, ``"p"`` and ``"magnitude"``; an omitted ``p`` or magnitude takes the
        value of the ``"default"`` preset. Transforms are applied in the order of this list
        whatever the order of the list. An image on which no transform fires gets one
        transform picked at random among those with ``p > 0``, so no generated image is a
        plain duplicate.

    image_shape : "auto" or tuple of (int, int), default=(32, 32)
        ``(height, width)`` the rows of ``X`` were flattened from, i.e. the ``size`` of the
        :class:`~skcharclf.ImageResizer` before this step. ``"auto"`` assumes square images
        when the number of features is a perfect square.

    random_state : int, RandomState instance or None, default=None
        Seed of every random choice (which images are copied and how they are
        transformed). An int gives the same output on every call.

    n_jobs : int, default=None
        Number of threads generating blocks of images (OpenCV and NumPy release the
        GIL). The output does not depend on ``n_jobs``. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context, ``-1`` all processors.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of images to generate per class.

    sample_indices_ : ndarray of shape (n_new_samples,)
        For each row of the resampled ``X``, the index of the original sample it is (for the
        first ``n_samples`` rows) or it was generated from.

    image_shape_ : tuple of (int, int)
        The resolved ``(height, width)`` of the images.

    transforms_ : list of tuple
        The resolved transforms as ``(name, p, (low, high))`` in order of application.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during ``fit``; defined only when ``X`` has string feature
        names.

    See Also
    --------
    imblearn.over_sampling.RandomOverSampler : Over-sample with exact duplicates.
    imblearn.over_sampling.SMOTE : Over-sample by interpolating between neighbours.
    imblearn.under_sampling.RandomUnderSampler : Under-sample the frequent classes.
    skcharclf.ImageResizer : Produces the flat batch this sampler consumes.

    Notes
    -----
    Generated images are clipped to ``[min(0, X.min()), max(1, X.max())]``, i.e. to [0, 1]
    for a flat batch, and have the dtype of ``X``. Pixels a warp uncovers and erased
    rectangles take the image's background level, the median of its border pixels: noisy
    scans often have a grey rather than black background, and dark corners would mark the
    generated images with a feature the original images lack.

    Parameters are drawn for blocks of 512 images at a time from independent streams
    spawned from one seed, and each image is warped with a single :func:`cv2.remap`
    (rotation, shear, zoom, translation and perspective composed into one homography, plus
    the elastic field), so an image is interpolated once however many transforms it gets.

    Examples
    --------
    >>> from collections import Counter
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skcharclf import RareClassAugmenter
    >>> X, y = load_digits(return_X_y=True)
    >>> keep = (y != 3) | (np.arange(len(y)) % 10 == 0)  # make class 3 rare
    >>> X, y = X[keep] / 16.0, y[keep]
    >>> Counter(y)[3], Counter(y)[1]
    (27, 182)
    >>> augmenter = RareClassAugmenter(image_shape=(8, 8), random_state=0)
    >>> X_res, y_res = augmenter.fit_resample(X, y)
    >>> Counter(y_res)[3], Counter(y_res)[1]
    (182, 182)
    >>> bool(X_res.min() >= 0.0 and X_res.max() <= 1.0)
    True
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "transforms": [StrOptions(set(_PRESETS)), list, tuple],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "n_jobs": [Interval(numbers.Integral, None, None, closed="neither"), None],
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        transforms="default",
        image_shape=(32, 32),
        random_state=None,
        n_jobs=None,
    ):
        super().__init__(sampling_strategy=sampling_strategy)
        self.transforms = transforms
        self.image_shape = image_shape
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_X_y(self, X, y):
        if _is_image_batch(X):
            raise ValueError(
                "RareClassAugmenter takes a flat batch of shape (n_samples, height * width), "
                "got images; put it after ImageResizer in the pipeline, or pass "
                "X.reshape(len(X), -1) with image_shape=(height, width)."
            )
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X, y = validate_data(
            self, X=X, y=y, reset=True, accept_sparse=False, ensure_all_finite=False
        )
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise ValueError(
                f"sample {bad[0]} of X contains NaN or infinite values ({bad.size} such "
                "sample(s) in all); images to augment must be complete: drop or impute them "
                "first."
            )
        self.image_shape_ = resolve_image_shape(self.image_shape, X.shape[1])
        if max(self.image_shape_) > _CV_MAX_SIDE:
            raise ValueError(
                f"image_shape_={self.image_shape_}: images with a side longer than "
                f"{_CV_MAX_SIDE} pixels are not supported; set image_shape to the real "
                "(height, width) of the images."
            )
        self.transforms_ = _resolve_transforms(self.transforms)
        return X, y, binarize_y

    def _fit_resample(self, X, y):
        rng = check_random_state(self.random_state)
        sources = [
            # Each image of the class serves as a source in turn (in random order), so
            # copies spread over the class instead of piling up on a few images.
            np.resize(rng.permutation(np.flatnonzero(y == klass)), n_new)
            for klass, n_new in self.sampling_strategy_.items()
            if n_new > 0
        ]
        sources = np.concatenate(sources) if sources else np.empty(0, dtype=np.intp)
        entropy = rng.randint(0, 2**32, size=4, dtype=np.uint64)

        height, width = self.image_shape_
        images = np.ascontiguousarray(X, dtype=np.float32).reshape(-1, height, width)
        clip = (min(0.0, float(X.min())), max(1.0, float(X.max())))
        X_resampled = np.empty((X.shape[0] + sources.size, X.shape[1]), dtype=X.dtype)
        X_resampled[: X.shape[0]] = X
        generated = X_resampled[X.shape[0] :].reshape(-1, height, width)
        _generate(images, sources, self.transforms_, entropy, clip, self.n_jobs, generated)

        self.sample_indices_ = np.concatenate([np.arange(X.shape[0]), sources])
        return X_resampled, y[self.sample_indices_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.sampler_tags.sample_indices = True
        return tags


def _is_image_batch(X: object) -> bool:
    """Whether ``X`` holds 2D images (a 3D/4D array or a sequence of 2D arrays)."""
    if isinstance(X, np.ndarray):
        return X.ndim in (3, 4) or (X.dtype == object and X.ndim == 1)
    return (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and isinstance(X[0], np.ndarray)
        and X[0].ndim >= 2
    )


def _resolve_transforms(transforms: str | Sequence) -> list[_Spec]:
    """Return the transforms as ``(name, p, (low, high))`` tuples in order of application."""
    if isinstance(transforms, str):
        return list(_PRESETS[transforms])
    defaults = {name: (p, magnitude) for name, p, magnitude in _PRESETS["default"]}
    specs: dict[str, _Spec] = {}
    for index, spec in enumerate(transforms):
        name, p, magnitude = _parse_spec(spec, index)
        if name not in _BOUNDS:
            raise ValueError(
                f"transforms[{index}]: unknown transform {name!r}; choose among "
                f"{', '.join(TRANSFORM_NAMES)}."
            )
        if name in specs:
            raise ValueError(f"transforms[{index}]: transform {name!r} is listed twice.")
        p = defaults[name][0] if p is None else p
        magnitude = defaults[name][1] if magnitude is None else magnitude
        specs[name] = (name, *_check_spec_values(name, p, magnitude, index))
    if not any(p > 0 for _, p, _ in specs.values()):
        raise ValueError(
            "transforms must hold at least one transform with a probability p > 0, "
            f"got {list(transforms)!r}."
        )
    return [specs[name] for name in TRANSFORM_NAMES if name in specs]


def _parse_spec(spec: object, index: int) -> tuple[object, object, object]:
    """Split one transform spec into ``(name, p, magnitude)``; ``None`` for omitted parts."""
    if isinstance(spec, str):
        return spec, None, None
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "p", "magnitude"}
        if "name" not in spec or unknown:
            raise ValueError(
                f"transforms[{index}]: a dict spec needs the key 'name' and may have 'p' "
                f"and 'magnitude'; got keys {sorted(spec)}."
            )
        return spec["name"], spec.get("p"), spec.get("magnitude")
    if isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 3:
        name, p, magnitude = (*spec, None, None)[:3]
        return name, p, magnitude
    raise ValueError(
        f"transforms[{index}]: a transform spec is a name, (name, p), (name, p, (low, high)) "
        f"or a dict with keys 'name', 'p', 'magnitude'; got {spec!r}."
    )


def _check_spec_values(
    name: str, p: object, magnitude: object, index: int
) -> tuple[float, tuple[float, float]]:
    where = f"transforms[{index}] ({name!r})"
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: the probability p must be a number in [0, 1], got {p!r}.")
    if (
        not isinstance(magnitude, (tuple, list))
        or len(magnitude) != 2
        or not all(isinstance(v, numbers.Real) for v in magnitude)
    ):
        raise ValueError(
            f"{where}: the magnitude must be a (low, high) pair of numbers, got {magnitude!r}."
        )
    low, high = float(magnitude[0]), float(magnitude[1])
    lowest, highest = _BOUNDS[name]
    if not lowest <= low <= high <= highest:
        raise ValueError(
            f"{where}: the magnitude range must satisfy {lowest:g} <= low <= high <= "
            f"{highest:g}, got ({low:g}, {high:g})."
        )
    return float(p), (low, high)


def _generate(
    images: np.ndarray,
    sources: np.ndarray,
    specs: list[_Spec],
    entropy: np.ndarray,
    clip: tuple[float, float],
    n_jobs: int | None,
    out: np.ndarray,
) -> None:
    """Write augmented copies of ``images[sources]`` into ``out``, in independently seeded
    blocks; each block writes its own slice, so threads need no lock.
    """
    n_blocks = -(-len(sources) // _BLOCK)
    seeds = np.random.SeedSequence([int(v) for v in entropy]).spawn(n_blocks)
    blocks = [slice(i * _BLOCK, (i + 1) * _BLOCK) for i in range(n_blocks)]

    def run(block: slice, seed: np.random.SeedSequence) -> None:
        augmented = _augment_block(images[sources[block]], specs, seed, clip)
        if np.issubdtype(out.dtype, np.integer):
            augmented = np.rint(augmented)
        np.copyto(out[block], augmented, casting="unsafe")

    # The matrix products here are tiny: a multithreaded BLAS only adds synchronisation
    # (25x slower on a busy 2-core machine), and parallelism comes from the blocks.
    with _threadpool_controller().limit(limits=1, user_api="blas"):
        if n_blocks <= 1 or effective_n_jobs(n_jobs) == 1:
            for block, seed in zip(blocks, seeds, strict=True):
                run(block, seed)
        else:
            # threads share `out` (and OpenCV and NumPy release the GIL)
            Parallel(n_jobs=n_jobs, require="sharedmem")(
                delayed(run)(block, seed) for block, seed in zip(blocks, seeds, strict=True)
            )


@functools.cache
def _threadpool_controller() -> ThreadpoolController:
    """The process's thread-pool controller; finding the libraries takes ~20 ms, so once."""
    return ThreadpoolController()


def _augment_block(
    images: np.ndarray, specs: list[_Spec], seed: np.random.SeedSequence, clip: tuple
) -> np.ndarray:
    """Transform a block of ``(n, H, W)`` float32 images (modified in place and returned)."""
    rng = np.random.default_rng(seed)
    n = images.shape[0]
    active, magnitude = _draw_parameters(specs, n, rng)
    background = _backgrounds(images)

    if "thickness" in active:
        _change_thickness(images, active["thickness"], magnitude["thickness"])
    warped = np.zeros(n, dtype=bool)
    for name in _GEOMETRIC:
        if name in active:
            warped |= active[name]
    if warped.any():
        index, skewed, distorted = _warp_order(warped, active)
        map_x, map_y = _source_coordinates(
            images.shape, index, skewed, distorted, active, magnitude, rng
        )
        images[index] = _remap_each(images[index], map_x, map_y, background[index])
    if "erase" in active:
        _erase(images, active["erase"], magnitude["erase"], background, rng)
    if "noise" in active:
        index = np.flatnonzero(active["noise"])
        noise = rng.standard_normal((index.size, *images.shape[1:]), dtype=np.float32)
        noise *= magnitude["noise"][index, None, None].astype(np.float32)
        images[index] += noise
    return np.clip(images, *clip, out=images)


def _backgrounds(images: np.ndarray) -> np.ndarray:
    """Background level of each ``(H, W)`` image: the median of its border pixels.

    Shading noise leaves many backgrounds grey rather than 0; filling warped corners and
    erased boxes with 0 would mark augmented images with dark patches a classifier can learn.
    """
    n, height, width = images.shape
    if height <= 2 or width <= 2:
        return np.median(images.reshape(n, -1), axis=1).astype(np.float32)
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1
    )
    return np.median(border, axis=1).astype(np.float32)


def _draw_parameters(
    specs: list[_Spec], n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Which transforms fire on each image, and their magnitudes."""
    active = {name: rng.random(n) < p for name, p, _ in specs}
    # translation moves x and y by independent draws from its range
    magnitude = {
        name: rng.uniform(low, high, (n, 2) if name == "translate" else n)
        for name, _, (low, high) in specs
    }
    candidates = [name for name, p, _ in specs if p > 0]
    pick = rng.integers(len(candidates), size=n)
    idle = ~np.any(np.stack(list(active.values())), axis=0)
    for k, name in enumerate(candidates):
        active[name] |= idle & (pick == k)
    return active, magnitude


def _change_thickness(images: np.ndarray, active: np.ndarray, amount: np.ndarray) -> None:
    """Blend strokes towards their 3x3 dilation (amount > 0) or erosion (amount < 0)."""
    kernel = np.ones((3, 3), dtype=np.uint8)
    for morphology, selected, separator in (
        (cv2.dilate, active & (amount > 0), -np.inf),
        (cv2.erode, active & (amount < 0), np.inf),
    ):
        index = np.flatnonzero(selected)
        if index.size == 0:
            continue
        sub = images[index]
        # the separator rows never win the max (dilation) or the min (erosion), so each
        # image is filtered as if alone, with its border pixels replicated
        stack = _stack(sub, separator)
        changed = _unstack(morphology(stack, kernel, borderType=cv2.BORDER_REPLICATE), *sub.shape)
        weight = np.abs(amount[index]).astype(np.float32)[:, None, None]
        images[index] = sub + weight * (changed - sub)


def _stack(images: np.ndarray, separator: float) -> np.ndarray:
    """Stack ``(n, H, W)`` images into one ``(n * (H + 1) + 1, W)`` image with a
    ``separator`` row before, between and after them, so OpenCV filters a block in one call.
    """
    n, height, width = images.shape
    stack = np.full((n * (height + 1) + 1, width), separator, dtype=np.float32)
    stack[: n * (height + 1)].reshape(n, height + 1, width)[:, 1:] = images
    return stack


def _unstack(stack: np.ndarray, n: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`_stack`: the ``(n, H, W)`` images of a stack."""
    return stack[: n * (height + 1)].reshape(n, height + 1, width)[:, 1:]


def _warp_order(
    warped: np.ndarray, active: dict[str, np.ndarray]
) -> tuple[np.ndarray, slice, slice]:
    """Order the warped images so those with a perspective skew and those with an elastic
    field each form one contiguous slice, which the extra arithmetic then runs on.

    Returns the image indices in that order and the two slices (positions in the order).
    """
    none = np.zeros_like(warped)
    skew = active.get("perspective", none) & warped
    field = active.get("elastic", none) & warped
    # skew only | skew and field | field only | neither
    rank = np.where(skew, np.where(field, 1, 0), np.where(field, 2, 3))
    index = np.flatnonzero(warped)
    index = index[np.argsort(rank[index], kind="stable")]
    skew_only = int(np.count_nonzero(skew & ~field))
    skewed = slice(0, int(np.count_nonzero(skew)))
    distorted = slice(skew_only, skew_only + int(np.count_nonzero(field)))
    return index, skewed, distorted


def _source_coordinates(
    shape: tuple[int, int, int],
    index: np.ndarray,
    skewed: slice,
    distorted: slice,
    active: dict[str, np.ndarray],
    magnitude: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel of the images ``index``, the source position to sample.

    ``index[skewed]`` are the images with a perspective skew, ``index[distorted]`` those with
    an elastic field.
    """
    _, height, width = shape
    k = index.size

    def amount(name: str, identity: float) -> np.ndarray:
        if name not in active:
            return np.full(k, identity)
        return np.where(active[name][index], magnitude[name][index], identity)

    angle = np.deg2rad(amount("rotate", 0.0))
    slant = np.tan(np.deg2rad(amount("shear", 0.0)))
    zoom = amount("scale", 1.0)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    # rotation @ shear @ zoom about the centre, then the shift (image y axis points down)
    forward = np.zeros((k, 3, 3))
    forward[:, 0, 0], forward[:, 0, 1] = cos, cos * slant + sin
    forward[:, 1, 0], forward[:, 1, 1] = -sin, -sin * slant + cos
    forward[:, 2, 2] = 1.0
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    shift = np.zeros((k, 2))
    if "translate" in active:
        on = active["translate"][index, None]
        shift = np.where(on, magnitude["translate"][index], 0.0) * np.array([width, height])
    forward[:, :2, 2] = centre + shift - forward[:, :2, :2] @ centre
    n_skewed = skewed.stop - skewed.start
    if n_skewed:
        strength = magnitude["perspective"][index[skewed]]
        offsets = rng.uniform(-1.0, 1.0, (n_skewed, 4, 2)) * strength[:, None, None]
        forward[skewed] = _homographies(offsets, height, width) @ forward[skewed]

    inverse = np.linalg.inv(forward).astype(np.float32)[:, :, :, None, None]
    xs = np.arange(width, dtype=np.float32)[None, None, :]
    ys = np.arange(height, dtype=np.float32)[None, :, None]
    map_x = (inverse[:, 0, 0] * xs + inverse[:, 0, 2]) + inverse[:, 0, 1] * ys
    map_y = (inverse[:, 1, 0] * xs + inverse[:, 1, 2]) + inverse[:, 1, 1] * ys
    if n_skewed:
        row = inverse[skewed, 2]
        depth = (row[:, 0] * xs + row[:, 2]) + row[:, 1] * ys
        behind = depth <= 1e-6
        if behind.any():
            # a point mapped behind the projection centre has no source: send it off the image
            depth[behind] = 1.0
            map_x[skewed][behind] = map_y[skewed][behind] = -10.0
        map_x[skewed] /= depth
        map_y[skewed] /= depth
    if distorted.stop > distorted.start:
        amplitude = magnitude["elastic"][index[distorted]]
        dx, dy = _displacement_fields(amplitude, height, width, rng)
        map_x[distorted] += dx
        map_y[distorted] += dy
    return map_x, map_y


def _homographies(offsets: np.ndarray, height: int, width: int) -> np.ndarray:
    """Homographies moving the image corners by ``offsets`` (fractions of the image size)."""
    k = offsets.shape[0]
    # the outer edges of the border pixels: four distinct points even for a 1-pixel-high image
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float) - 0.5
    target = corners + offsets * np.array([width, height], dtype=float)
    system = np.zeros((k, 8, 8))
    rhs = np.empty((k, 8))
    for i, (x, y) in enumerate(corners):
        u, v = target[:, i, 0], target[:, i, 1]
        system[:, 2 * i, 0:3] = (x, y, 1.0)
        system[:, 2 * i, 6], system[:, 2 * i, 7] = -u * x, -u * y
        system[:, 2 * i + 1, 3:6] = (x, y, 1.0)
        system[:, 2 * i + 1, 6], system[:, 2 * i + 1, 7] = -v * x, -v * y
        rhs[:, 2 * i], rhs[:, 2 * i + 1] = u, v
    solution = np.linalg.solve(system, rhs[..., None])[..., 0]
    return np.concatenate([solution, np.ones((k, 1))], axis=1).reshape(k, 3, 3)


def _displacement_fields(
    amplitude: np.ndarray, height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random displacements (pixels): a coarse random grid upsampled bicubically.

    Upsampling is linear, so for the whole block it is one matrix product with the
    Kronecker product of the row and column upsampling matrices instead of one
    ``cv2.resize`` per image.
    """
    k = amplitude.size
    coarse = rng.uniform(-1.0, 1.0, (2, k, _ELASTIC_GRID**2)).astype(np.float32)
    coarse[0] *= (amplitude * width).astype(np.float32)[:, None]
    coarse[1] *= (amplitude * height).astype(np.float32)[:, None]
    fields = coarse.reshape(2 * k, -1) @ _elastic_basis(height, width)
    fields = fields.reshape(2, k, height, width)
    return fields[0], fields[1]


@functools.cache
def _elastic_basis(height: int, width: int) -> np.ndarray:
    """Matrix ``(grid * grid, H * W)`` equal to bicubic resizing of the grid to the image."""
    eye = np.eye(_ELASTIC_GRID, dtype=np.float32)
    rows = cv2.resize(eye, (_ELASTIC_GRID, height), interpolation=cv2.INTER_CUBIC)
    cols = cv2.resize(eye, (_ELASTIC_GRID, width), interpolation=cv2.INTER_CUBIC)
    basis = np.kron(rows, cols).T
    basis.flags.writeable = False
    return basis


def _erase(
    images: np.ndarray,
    active: np.ndarray,
    area: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Set a random rectangle of the given area fraction to the image's background level.

    The rectangle is centred on a pixel drawn with probability proportional to its ink
    (brightness above the background): on a character image most of the canvas is
    background, and a box there would leave the image unchanged.
    """
    index = np.flatnonzero(active)
    if index.size == 0:
        return
    _, height, width = images.shape
    sub = images[index]
    fill = background[index, None, None]
    ink = np.maximum(sub - fill, 0.0).reshape(index.size, -1).cumsum(axis=1)
    total = ink[:, -1]
    draw = rng.random(index.size)
    # a blank image has no ink to aim at: its centre is drawn uniformly
    centre = np.where(
        total > 0,
        (ink < (draw * total)[:, None]).sum(axis=1),
        (draw * height * width).astype(int),
    )
    centre = np.minimum(centre, height * width - 1)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), index.size))
    pixels = area[index] * height * width
    box_h = np.clip(np.rint(np.sqrt(pixels * aspect)), 1, height).astype(int)
    box_w = np.clip(np.rint(np.sqrt(pixels / aspect)), 1, width).astype(int)
    top = centre // width - box_h // 2
    left = centre % width - box_w // 2
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + box_h)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + box_w)[:, None, None])
    )
    images[index] = np.where(inside, fill, sub)


def _remap_each(
    images: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Bilinear ``cv2.remap`` of each image with its own maps, filling uncovered pixels
    with the image's background level.

    One call per image beats one call on the images stacked into a tall image: the stack
    needs extra passes to keep neighbours from bleeding into each other.
    """
    out = np.empty_like(images)
    for image, x, y, target, fill in zip(
        images, map_x, map_y, out, background.tolist(), strict=True
    ):
        cv2.remap(
            image,
            x,
            y,
            interpolation=cv2.INTER_LINEAR,
            dst=target,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill,
        )
    return out
