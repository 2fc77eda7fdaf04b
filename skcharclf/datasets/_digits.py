"""The built-in digit characters (:func:`load_digit_chars`), drawn from scikit-learn's digits."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from skcharclf.datasets import _scan_noise as scan

_MAX_WIDTH = 28
# sklearn's digits are 8x8 with values 0..16; they are upsampled on a padded 12x12 grid.
_PAD, _UPSAMPLED = 2, 48

# Independent random streams, so that each rendered image depends only on the seed and its
# source digit: changing rare_ratio, n_samples_per_class or the noise kinds leaves every other
# image exactly as it was.
_STREAM_SPLIT, _STREAM_SELECT, _STREAM_RENDER, _STREAM_NOISE = range(4)


@validate_params(
    {
        "n_samples_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "rare_classes": ["array-like"],
        "rare_ratio": [Interval(Real, 0, 1, closed="right")],
        **scan.SHARED_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_digit_chars(
    *,
    n_samples_per_class: int | None = None,
    rare_classes: Sequence[int] = (2, 5, 8),
    rare_ratio: float = 0.1,
    noise: bool | Sequence[str] = True,
    noise_level: float = 1.0,
    test_size_per_class: int | None = None,
    random_state: int | np.random.RandomState | None = 0,
    return_X_y: bool = False,
) -> Bunch | tuple:
    """Make noisy, long-tailed character images from scikit-learn's handwritten digits.

    Each 8x8 digit of :func:`sklearn.datasets.load_digits` (1,797 digits, about 180 per
    class) is upsampled and smoothed into strokes, cropped to its ink, resized to height 32
    keeping its aspect ratio (width clipped to 9..28) and drawn as dark ink on a light
    background, like a scanned character. The rare classes keep only a fraction of their
    samples, and non-Gaussian noise is added: uneven shading, stray pen strokes, ink blobs,
    blur and salt-and-pepper. The data is built at call time in well under a second and is
    deterministic for a given ``random_state``.

    Parameters
    ----------
    n_samples_per_class : int, optional
        Samples per common class, before the rare classes are thinned. By default every
        source digit is used once (174 to 183 per class). A smaller number draws a random
        subset; a larger one adds *variants*: re-renderings of randomly chosen source digits
        with a small random rotation, shear and scale. Variants are correlated with their
        source digit; they never come from the digits held out by ``test_size_per_class``.
    rare_classes : sequence of int, default=(2, 5, 8)
        The digits made rare. Empty for no rare class.
    rare_ratio : float in (0, 1], default=0.1
        Fraction of samples a rare class keeps (at least one): ``round(rare_ratio * n)`` where
        ``n`` is the number the class would have as a common class. ``1.0`` gives the
        balanced version of the data.
    noise : bool or sequence of str, default=True
        ``True`` adds every kind of noise, ``False`` none; a sequence picks kinds from
        :data:`NOISE_KINDS`: ``"shading"`` (a gentle illumination gradient), ``"strokes"``
        (short stray pen lines), ``"blobs"`` (small ink dots), ``"blur"`` (Gaussian blur of a
        random width) and ``"salt_pepper"`` (isolated black and white pixels). Each kind
        draws from its own random stream, so switching one off leaves the others unchanged.
    noise_level : float >= 0, default=1.0
        Scales how often and how strongly each kind of noise occurs; ``0`` means no noise.
    test_size_per_class : int, optional
        Hold out this many source digits per class, before any thinning, as a *balanced*
        test set (returned as ``data_test``, ``target_test``, ``clean_data_test``). The test
        set depends only on ``random_state`` and this number, so it is the same for every
        ``rare_ratio`` and ``n_samples_per_class``: compare long-tailed training with its
        balanced upper bound (``rare_ratio=1.0``) on identical test images.
    random_state : int, RandomState instance or None, default=0
        Seeds the selection, rendering and noise.
    return_X_y : bool, default=False
        Return ``(data, target)``, or ``(data, data_test, target, target_test)`` (the order
        of :func:`~sklearn.model_selection.train_test_split`) with ``test_size_per_class``,
        instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : list of ndarray
            ``uint8`` images of height 32 and width 9 to 28, dark ink on a light background.
        target : ndarray of shape (n_samples,)
            The digit (int) of each image.
        target_names : ndarray of shape (10,)
            The classes, ``0`` to ``9``.
        clean_data : list of ndarray
            The same images without noise (same geometry, background and ink levels).
        rare_classes : ndarray of int
            The rare classes.
        source_index : ndarray of shape (n_samples,)
            Index of each image's source digit in :func:`~sklearn.datasets.load_digits`.
        DESCR : str
            A description of the data.
        data_test, target_test, clean_data_test, source_index_test
            The balanced test set, only with ``test_size_per_class``.

    (data, target) or (data, data_test, target, target_test) : tuple if ``return_X_y`` is True

    See Also
    --------
    load_image_folder : Load your own character images.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.datasets import load_digit_chars
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> X[0].dtype, X[0].shape[0], np.bincount(y)[[1, 2]].tolist()
    (dtype('uint8'), 32, [182, 18])
    """
    kinds = scan.check_noise_kinds(noise)
    rare = _check_rare_classes(rare_classes)
    digits = load_digits()
    seed = scan.base_seed(random_state)

    pools = {c: np.flatnonzero(digits.target == c) for c in range(10)}
    test_sources: list[int] = []
    if test_size_per_class is not None:
        smallest = min(len(pool) for pool in pools.values())
        if test_size_per_class >= smallest:
            raise ValueError(
                f"test_size_per_class={test_size_per_class} leaves no training digit in the "
                f"smallest class ({smallest} digits); use at most {smallest - 1}."
            )
        split_rng = scan.image_rng(seed, _STREAM_SPLIT)
        for c in range(10):
            held_out = split_rng.choice(pools[c], size=test_size_per_class, replace=False)
            test_sources.extend(held_out.tolist())
            pools[c] = np.setdiff1d(pools[c], held_out)

    items: list[tuple[int, int]] = []  # (source digit, variant number; 0 = the digit itself)
    for c in range(10):
        n_class = len(pools[c]) if n_samples_per_class is None else n_samples_per_class
        if c in rare:
            n_class = max(1, round(rare_ratio * n_class))
        select_rng = scan.image_rng(seed, _STREAM_SELECT, source=c)
        items.extend(_select_class(pools[c], n_class, select_rng))
    items.sort(key=lambda item: (item[1], item[0]))

    train = _render_items(digits.images, digits.target, items, kinds, noise_level, seed)
    bunch = Bunch(
        **train,
        target_names=np.arange(10),
        rare_classes=np.array(sorted(rare), dtype=np.int64),
        DESCR=_digit_chars_descr(train["target"], rare, rare_ratio, kinds, noise_level),
    )
    test = None
    if test_size_per_class is not None:
        test_items = [(source, 0) for source in sorted(test_sources)]
        test = _render_items(digits.images, digits.target, test_items, kinds, noise_level, seed)
    return scan.loader_result(bunch, test, return_X_y)



def _check_rare_classes(rare_classes: Sequence[int]) -> set[int]:
    values = list(np.asarray(rare_classes).ravel())
    if not all(isinstance(v, Integral) and 0 <= v <= 9 for v in values):
        raise ValueError(f"rare_classes must hold digits 0 to 9, got {list(rare_classes)}.")
    return {int(v) for v in values}



def _select_class(pool: np.ndarray, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` items from a class's source digits: a subset, or all of them plus variants.

    Subsets are prefixes of one permutation, so a smaller ``rare_ratio`` keeps a subset of
    the images a larger one keeps.
    """
    if n <= len(pool):
        return [(int(s), 0) for s in rng.permutation(pool)[:n]]
    sources = rng.choice(pool, size=n - len(pool), replace=True)
    variants: dict[int, int] = {}
    items = [(int(s), 0) for s in pool]
    for s in sources.tolist():
        variants[s] = variants.get(s, 0) + 1
        items.append((s, variants[s]))
    return items


def _render_items(
    images8: np.ndarray,
    targets: np.ndarray,
    items: list[tuple[int, int]],
    kinds: tuple[str, ...],
    noise_level: float,
    seed: int,
) -> dict[str, object]:
    grids = np.pad(images8.astype(np.float32) / 16.0, ((0, 0), (_PAD, _PAD), (_PAD, _PAD)))
    add_noise = bool(kinds) and noise_level > 0
    clean, noisy = [], []
    for source, variant in items:
        render_rng = scan.image_rng(seed, _STREAM_RENDER, source, variant)
        image, ink_level = _render_digit(grids[source], render_rng, jitter=variant > 0)
        clean.append(scan.to_uint8(image))
        if add_noise:
            noise_rng = scan.image_rng(seed, _STREAM_NOISE, source, variant)
            dirty = scan.add_noise(image, ink_level, noise_rng, kinds, noise_level)
            noisy.append(scan.to_uint8(dirty))
        else:
            noisy.append(clean[-1].copy())
    sources = np.array([source for source, _ in items], dtype=np.int64)
    return {
        "data": noisy,
        "target": targets[sources].astype(np.int64),
        "clean_data": clean,
        "source_index": sources,
    }


def _render_digit(
    grid: np.ndarray, rng: np.random.Generator, *, jitter: bool
) -> tuple[np.ndarray, float]:
    """Draw one padded digit grid as a scanned character; return the image and its ink level."""
    up = cv2.resize(grid, (_UPSAMPLED, _UPSAMPLED), interpolation=cv2.INTER_CUBIC)
    if jitter:
        up = _jitter(up, rng)
    # Blurring the blocky upsampled digit and then stretching its contrast turns the 8x8
    # cells into smooth strokes with fairly sharp edges; the threshold sets the stroke width.
    up = cv2.GaussianBlur(up, (0, 0), 1.2)
    ink = np.clip((up - rng.uniform(0.25, 0.4)) / 0.35, 0.0, 1.0)
    rows = np.flatnonzero((ink > 0.2).any(axis=1))
    cols = np.flatnonzero((ink > 0.2).any(axis=0))
    if rows.size:
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    margin = int(rng.integers(1, 3))
    inner_h = scan.HEIGHT - 2 * margin
    inner_w = round(inner_h * ink.shape[1] / ink.shape[0])
    inner_w = int(np.clip(inner_w, scan.MIN_WIDTH - 2 * margin, _MAX_WIDTH - 2 * margin))
    ink = cv2.resize(ink, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    ink = cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    background = rng.uniform(190.0, 240.0)
    ink_level = rng.uniform(10.0, 70.0)
    return background - ink * (background - ink_level), ink_level


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small random rotation, shear and scale about the centre."""
    angle = np.deg2rad(rng.uniform(-10.0, 10.0))
    shear = rng.uniform(-0.2, 0.2)
    scale = rng.uniform(0.9, 1.1)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = scale * np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([(image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    return cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0.0)



def _digit_chars_descr(
    target: np.ndarray,
    rare: set[int],
    rare_ratio: float,
    kinds: tuple[str, ...],
    noise_level: float,
) -> str:
    counts = np.bincount(target, minlength=10)
    noise_text = f"{', '.join(kinds)} (level {noise_level:g})" if kinds else "none"
    return (
        "Digit characters\n"
        "----------------\n"
        "Character images made from scikit-learn's 8x8 handwritten digits (UCI ML hand-written\n"
        "digits): upsampled and smoothed into strokes, cropped to the ink, resized to height 32\n"
        "(width 9 to 28) and drawn as dark ink on a light background.\n\n"
        f"Samples: {len(target)}; per class: {counts.tolist()}\n"
        f"Rare classes: {sorted(rare)} (keeping {rare_ratio:g} of their samples); "
        f"imbalance ratio {counts.max() / max(counts[counts > 0].min(), 1):.1f}\n"
        f"Noise: {noise_text}\n"
    )


# --------------------------------------------------------------------------------------------
# Built-in font characters
# --------------------------------------------------------------------------------------------
