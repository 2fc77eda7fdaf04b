"""Rare-class augmentation: an imbalanced-learn over-sampler that generates augmented images.

:class:`RareClassAugmenter` tops up the classes that ``sampling_strategy`` selects with randomly
transformed copies of their own images (rotation, shear, zoom, translation, perspective skew,
elastic distortion, random erasing, stroke-thickness change, additive noise), so it drops into
the ``"augment"`` slot of an :class:`imblearn.pipeline.Pipeline` exactly where
:class:`~imblearn.over_sampling.SMOTE` or :class:`~imblearn.over_sampling.RandomOverSampler`
would go, and is applied during ``fit`` only.

Speed comes from working on blocks of images with few calls: every random parameter of a
block is drawn at once with NumPy, the geometric transforms of each image are composed into
one 3x3 matrix, matrix products turn the matrices and the elastic fields into sampling maps,
and one :func:`cv2.remap` warps a whole chunk of images stacked into one canvas. A block is
processed in an order that makes each kind of warp a contiguous slice, and its work arrays
are reused from block to block (fresh arrays of a few MB cost as much in page faults as the
arithmetic done on them).
"""

from __future__ import annotations

import functools
import math
import numbers
import threading
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

from ._images import FlatImages, estimate_backgrounds, image_geometry, resolve_geometry
from ._warp import CV_MAX_SIDE, Scratch, warp, warp_order

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

    image_shape : "auto" or tuple of (int, int), default="auto"
        ``(height, width)`` the rows of ``X`` were flattened from, i.e. the ``size`` of the
        :class:`~skcharclf.ImageResizer` before this step. ``"auto"`` takes it from ``X``
        when ``X`` carries it (the resizer's :class:`~skcharclf.FlatImages` output), else
        assumes square images when the number of features is a perfect square and one-row
        images ``(1, n_features)`` otherwise. A tuple that contradicts the geometry ``X``
        carries is an error naming both steps.

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
    spawned from one seed, and each image is warped by a single bilinear interpolation
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
        image_shape="auto",
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
        geometry = image_geometry(X)
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
        step = f"RareClassAugmenter(image_shape={self.image_shape!r})"
        self.image_shape_ = resolve_geometry(self.image_shape, X.shape[1], geometry, step)
        if max(self.image_shape_) > CV_MAX_SIDE:
            raise ValueError(
                f"image_shape_={self.image_shape_}: images with a side longer than "
                f"{CV_MAX_SIDE} pixels are not supported; set image_shape to the real "
                "(height, width) of the images."
            )
        self.transforms_ = _resolve_transforms(self.transforms)
        return X, y, binarize_y

    def fit_resample(self, X, y, **params):
        """Resample the dataset: the originals, then the generated images.

        Parameters
        ----------
        X : array-like of shape (n_samples, height * width)
            Flat batch of images (the :class:`~skcharclf.ImageResizer` output).
        y : array-like of shape (n_samples,)
            Class labels.
        **params : dict
            Ignored; for imbalanced-learn's API.

        Returns
        -------
        X_resampled : ndarray of shape (n_samples_new, height * width)
            A :class:`~skcharclf.FlatImages` carrying ``image_shape_`` when ``X`` carried a
            geometry or ``image_shape`` was given (a data frame input stays a data frame).
        y_resampled : ndarray of shape (n_samples_new,)
            The labels of ``X_resampled``.
        """
        geometry = image_geometry(X)
        X_resampled, y_resampled = super().fit_resample(X, y, **params)
        # The geometry goes on to the next step; a guess of "auto" from the number of
        # features alone is not passed on as a fact.
        if geometry is not None:
            source = geometry[1]
        elif isinstance(self.image_shape, str):
            source = None
        else:
            source = f"RareClassAugmenter(image_shape={self.image_shape!r})"
        if source is not None and type(X_resampled) is np.ndarray:
            X_resampled = FlatImages(X_resampled, self.image_shape_, source=source)
        return X_resampled, y_resampled

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
    background = _source_backgrounds(images, sources)
    threads = threading.local()

    def run(block: slice, seed: np.random.SeedSequence) -> None:
        if not hasattr(threads, "scratch"):
            threads.scratch = Scratch()
        _augment_block(
            images, sources[block], background, specs, seed, clip, out[block], threads.scratch
        )

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
    images: np.ndarray,
    sources: np.ndarray,
    background: np.ndarray,
    specs: list[_Spec],
    seed: np.random.SeedSequence,
    clip: tuple[float, float],
    out: np.ndarray,
    scratch: Scratch,
) -> None:
    """Write augmented copies of the ``(H, W)`` float32 ``images[sources]`` into ``out``;
    ``background`` holds the background level of each image.
    """
    rng = np.random.default_rng(seed)
    active, magnitude = _draw_parameters(specs, sources.size, rng)
    # The block is worked on in an order that makes the images of each kind of warp one
    # slice, so the warp works on slices, not on copies of subsets; `out` gets the images
    # back in their places.
    order, n_warped, skewed, distorted = warp_order(active)
    active = {name: on[order] for name, on in active.items()}
    magnitude = {name: value[order] for name, value in magnitude.items()}
    block = _gather_into(images, sources[order], scratch("block", out.shape))
    background = background[sources[order]]

    if "thickness" in active:
        _change_thickness(block, active["thickness"], magnitude["thickness"], scratch)
    if n_warped:
        warp(block[:n_warped], skewed, distorted, active, magnitude, background, rng, scratch)
    if "erase" in active:
        _erase(block, active["erase"], magnitude["erase"], background, rng, scratch)
    if "noise" in active:
        _add_gaussian_noise(block, active["noise"], magnitude["noise"], rng, scratch)
    np.clip(block, *clip, out=block)
    if np.issubdtype(out.dtype, np.integer):
        np.rint(block, out=block)
    out[order] = block


def _gather_into(array: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``array[index]`` written into ``out`` (``mode="clip"``: with the default mode NumPy
    gathers into a temporary first, and these indices are always valid).
    """
    return np.take(array, index, axis=0, out=out, mode="clip")


def _source_backgrounds(images: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Background level of each of the ``images`` that ``sources`` uses (0 for the others),
    computed once however many copies are made of an image.

    Shading noise leaves many backgrounds grey rather than 0; filling warped corners and
    erased boxes with 0 would mark augmented images with dark patches a classifier can learn.
    """
    used = np.unique(sources)
    levels = np.zeros(len(images), dtype=np.float32)
    for start in range(0, used.size, _BLOCK):
        part = used[start : start + _BLOCK]
        levels[part] = estimate_backgrounds(images[part])
    return levels


def _draw_parameters(
    specs: list[_Spec], n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Which transforms fire on each image, and their magnitudes."""
    p, low, high = np.array([(p, low, high) for _, p, (low, high) in specs]).T
    on = rng.random((len(specs), n)) < p[:, None]
    # two uniform draws per transform and image: translation moves x and y independently
    value = low[:, None, None] + (high - low)[:, None, None] * rng.random((len(specs), n, 2))
    candidates = np.array([k for k, (_, p_k, _) in enumerate(specs) if p_k > 0])
    pick = rng.integers(len(candidates), size=n)
    idle = np.flatnonzero(~on.any(axis=0))
    on[candidates[pick[idle]], idle] = True
    active = {name: on[k] for k, (name, _, _) in enumerate(specs)}
    magnitude = {
        name: value[k] if name == "translate" else value[k, :, 0]
        for k, (name, _, _) in enumerate(specs)
    }
    return active, magnitude


def _change_thickness(
    images: np.ndarray, active: np.ndarray, amount: np.ndarray, scratch: Scratch
) -> None:
    """Blend strokes towards their 3x3 dilation (amount > 0) or erosion (amount < 0)."""
    kernel = np.ones((3, 3), dtype=np.uint8)
    for morphology, selected, separator in (
        (cv2.dilate, active & (amount > 0), -np.inf),
        (cv2.erode, active & (amount < 0), np.inf),
    ):
        index = np.flatnonzero(selected)
        if index.size == 0:
            continue
        sub = _gather_into(images, index, scratch("thickness", (index.size, *images.shape[1:])))
        # the separator rows never win the max (dilation) or the min (erosion), so each
        # image is filtered as if alone, with its border pixels replicated
        stack = _stack(sub, separator, scratch("stack", _stack_shape(sub.shape)))
        changed = morphology(
            stack, kernel, dst=scratch("morphed", stack.shape), borderType=cv2.BORDER_REPLICATE
        )
        changed = _unstack(changed, *sub.shape)
        changed -= sub
        changed *= np.abs(amount[index]).astype(np.float32)[:, None, None]
        sub += changed
        images[index] = sub


def _stack_shape(shape: tuple[int, int, int]) -> tuple[int, int]:
    """Shape of the :func:`_stack` of ``(n, H, W)`` images."""
    n, height, width = shape
    return n * (height + 1) + 1, width


def _stack(images: np.ndarray, separator: float, stack: np.ndarray) -> np.ndarray:
    """Stack ``(n, H, W)`` images into ``stack``, one ``(n * (H + 1) + 1, W)`` image with a
    ``separator`` row before, between and after them, so OpenCV filters a block in one call.
    """
    n, height, width = images.shape
    rows = stack[: n * (height + 1)].reshape(n, height + 1, width)
    rows[:, 0] = stack[-1] = separator
    rows[:, 1:] = images
    return stack


def _unstack(stack: np.ndarray, n: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`_stack`: the ``(n, H, W)`` images of a stack."""
    return stack[: n * (height + 1)].reshape(n, height + 1, width)[:, 1:]


def _erase(
    images: np.ndarray,
    active: np.ndarray,
    area: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    scratch: Scratch,
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
    pixels = height * width
    fill = background[index]
    ink = _gather_into(images.reshape(-1, pixels), index, scratch("ink", (index.size, pixels)))
    ink -= fill[:, None]
    np.maximum(ink, 0.0, out=ink)
    # one running sum (float64: numpy's cumsum casts slowly) over all the images; each
    # image's centre is where the sum passes a uniform draw between its first and last ink
    cumulative = cv2.integral(
        ink.reshape(1, -1),
        sum=scratch("integral", (2, ink.size + 1), np.float64),
        sdepth=cv2.CV_64F,
    )[1, 1:]
    end = cumulative[pixels - 1 :: pixels]
    start = np.concatenate([[0.0], end[:-1]])
    total = end - start
    draw = rng.random(index.size)
    found = np.searchsorted(cumulative, start + draw * total) - np.arange(index.size) * pixels
    # a blank image has no ink to aim at: its centre is drawn uniformly
    centre = np.where(total > 0, found, (draw * pixels).astype(int))
    centre = np.clip(centre, 0, pixels - 1)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), index.size))
    box = area[index] * pixels
    box_h = np.clip(np.rint(np.sqrt(box * aspect)), 1, height).astype(int)
    box_w = np.clip(np.rint(np.sqrt(box / aspect)), 1, width).astype(int)
    top = centre // width - box_h // 2
    left = centre % width - box_w // 2
    # boxes reach past the image edge; they end at least one pixel after 0 (box sides >= 1)
    boxes = zip(
        index.tolist(),
        np.maximum(top, 0).tolist(),
        (top + box_h).tolist(),
        np.maximum(left, 0).tolist(),
        (left + box_w).tolist(),
        fill.tolist(),
        strict=True,
    )
    for image, first_row, end_row, first_col, end_col, value in boxes:
        images[image, first_row:end_row, first_col:end_col] = value


def _add_gaussian_noise(
    images: np.ndarray,
    active: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
    scratch: Scratch,
) -> None:
    """Add Gaussian noise of standard deviation ``sigma`` to the images ``active``."""
    index = np.flatnonzero(active)
    if index.size == 0:
        return
    shape = (index.size, *images.shape[1:])
    noise = _standard_normal(math.prod(shape), rng, scratch).reshape(shape)
    noise *= sigma[index, None, None].astype(np.float32)
    noise += _gather_into(images, index, scratch("noisy", shape))
    images[index] = noise


def _standard_normal(size: int, rng: np.random.Generator, scratch: Scratch) -> np.ndarray:
    """``size`` float32 standard normal draws by the Box-Muller transform.

    OpenCV's vectorised logarithm and polar-to-Cartesian conversion make it about twice as
    fast as ``Generator.standard_normal`` (a ziggurat, one draw at a time).
    """
    half = -(-size // 2)
    uniform = rng.random((2, half), dtype=np.float32, out=scratch("uniform", (2, half)))
    # radius sqrt(-2 log(u)) with u in (0, 1], angle 2 pi v with v in [0, 1)
    radius, angle = uniform[:1], uniform[1:]
    np.subtract(1.0, radius, out=radius)
    cv2.log(radius, dst=radius)
    radius *= -2.0
    cv2.sqrt(radius, dst=radius)
    angle *= np.float32(2.0 * np.pi)
    normal = scratch("normal", (2, half))
    cv2.polarToCart(radius, angle, x=normal[:1], y=normal[1:])
    return normal.reshape(-1)[:size]
