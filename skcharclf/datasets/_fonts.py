"""The built-in font characters (:func:`load_font_chars`), drawn with OpenCV's fonts."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skcharclf.datasets import _scan_noise as scan

#: Each glyph is cropped to its ink and brought to height 32, so a lower-case letter is as
#: tall as a capital. The first 49 are told apart by their shape, though some pairs stay
#: close (S 5, Z 2, q 9, b 6); the last 13 look much like an earlier glyph once size is gone
#: (c C, k K, p P, s S, u U, v V, w W, x X, z Z, O o 0, I l 1), so they come last and only
#: ``n_classes > 49`` includes them.
FONT_GLYPHS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabdefghijmnqrtyckpsuvwxzIOol"

# Named parameter sets of load_font_chars: (n_classes, imbalance_ratio, n_samples).
# "small" has the shape of a real scanned set (20 classes, 20 to 97 images each); "large" is
# a long tail of ratio 100 at a size where balancing by copies gets expensive.
_FONT_VARIANTS = {"small": (20, 5.0, 1_000), "large": (40, 100.0, 50_000)}
_MIN_FONT_CLASS_SIZE = 2
_MAX_FONT_WIDTH = 40
# OpenCV's built-in faces. FONT_ITALIC slants the Hershey faces of OpenCV 4; OpenCV 5 draws
# every face with one sans-serif family (regular, bold, and italic for the script faces) and
# ignores the flag, so the slant also comes from the shear below.
_FONT_FACES = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
# Glyphs are drawn this many pixels tall (before distortion), then shrunk to height 32.
_FONT_RENDER_HEIGHT = 40
# Control points per side of the elastic displacement field, and their Bernstein weights.
_ELASTIC_GRID = 4
_BINOMIAL = np.array([math.comb(_ELASTIC_GRID - 1, k) for k in range(_ELASTIC_GRID)], np.float32)
# One random stream per image, keyed by (seed, stream, class, number within the class): the
# rendering draws a fixed count of numbers from it, then the noise draws the rest.
_STREAM_FONT, _STREAM_FONT_TEST = 4, 5


@validate_params(
    {
        "variant": [StrOptions(set(_FONT_VARIANTS))],
        "n_classes": [Interval(Integral, 2, len(FONT_GLYPHS), closed="both"), None],
        "imbalance_ratio": [Interval(Real, 1, None, closed="left"), None],
        "n_samples": [Interval(Integral, 1, None, closed="left"), None],
        "light_on_dark": [Interval(Real, 0, 1, closed="both")],
        **scan.SHARED_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_font_chars(
    *,
    variant: str = "small",
    n_classes: int | None = None,
    imbalance_ratio: float | None = None,
    n_samples: int | None = None,
    light_on_dark: float = 0.25,
    noise: bool | Sequence[str] = True,
    noise_level: float = 1.0,
    test_size_per_class: int | None = None,
    random_state: int | np.random.RandomState | None = 0,
    return_X_y: bool = False,
) -> Bunch | tuple:
    """Make long-tailed images of printed letters and digits drawn with OpenCV's fonts.

    Each image is one glyph of :data:`FONT_GLYPHS` drawn with a random built-in OpenCV font
    (``cv2.FONT_HERSHEY_*``, with or without ``cv2.FONT_ITALIC``) at a random scale and
    thickness, then rotated, sheared, stretched, distorted elastically, made bolder or
    thinner, faded in places, cropped to its ink plus a margin of 1 to 3 pixels and resized
    to height 32 keeping its aspect ratio (width 9 to 40: narrow glyphs are padded, wide ones
    squeezed); 40 % of them are also scanned at a lower resolution (height 12 to 24) and
    enlarged back. Each is drawn as dark ink on light paper, or light on dark for a fraction
    ``light_on_dark`` of the images, with random paper and ink levels and the noise of
    :func:`load_digit_chars`. Class sizes fall exponentially from the first class to the
    last, by ``imbalance_ratio`` in all. The data is built at call time, without any
    download, in about 0.4 ms of one core per image: a second for the small variant, about
    20 s for the large one.

    Two named variants set the size of the problem; any of ``n_classes``,
    ``imbalance_ratio`` and ``n_samples`` given explicitly overrides the variant's value:

    =========  =========  ===============  =========  ==========================
    variant    n_classes  imbalance_ratio  n_samples  images per class
    =========  =========  ===============  =========  ==========================
    "small"    20         5                1,000      99 down to 20
    "large"    40         100              50,000     5,619 down to 56
    =========  =========  ===============  =========  ==========================

    Parameters
    ----------
    variant : {"small", "large"}, default="small"
        The parameter set that ``n_classes``, ``imbalance_ratio`` and ``n_samples`` default
        to (table above).
    n_classes : int in [2, 62], optional
        Number of classes: the first ``n_classes`` glyphs of :data:`FONT_GLYPHS` (digits,
        then capitals, then lower-case letters). Up to 49 they differ in shape; beyond that
        look-alike pairs such as ``o``/``O`` or ``l``/``I`` join, which no classifier can
        tell apart reliably once each glyph is cropped to its ink.
    imbalance_ratio : float >= 1, optional
        Size of the largest class (class 0) over the smallest (the last class); class ``c``
        gets a share proportional to ``imbalance_ratio ** (-c / (n_classes - 1))``. ``1``
        gives balanced classes.
    n_samples : int, optional
        Total number of images, split over the classes by that profile (rounded so that they
        add up to ``n_samples``). Every class gets at least 2 images: when the profile would
        give fewer, the smallest classes are raised to 2, so the total is then slightly
        larger and the ratio slightly smaller than asked (``DESCR`` gives both). Must be at
        least ``2 * n_classes``.
    light_on_dark : float in [0, 1], default=0.25
        Probability that an image is drawn as light ink on a dark background (the other
        images are dark ink on light paper).
    noise : bool or sequence of str, default=True
        ``True`` adds every kind of noise, ``False`` none; a sequence picks kinds from
        :data:`NOISE_KINDS`, as in :func:`load_digit_chars`.
    noise_level : float >= 0, default=1.0
        Scales how often and how strongly each kind of noise occurs; ``0`` means no noise.
    test_size_per_class : int, optional
        Also draw this many images per class as a *balanced* test set (``data_test``,
        ``target_test``, ``clean_data_test``...), rendered from random streams of their own,
        so it is the same whatever ``imbalance_ratio`` and ``n_samples`` are.
    random_state : int, RandomState instance or None, default=0
        Seeds the fonts, distortions, levels and noise.
    return_X_y : bool, default=False
        Return ``(data, target)``, or ``(data, data_test, target, target_test)`` with
        ``test_size_per_class``, instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : list of ndarray
            ``uint8`` images of height 32 and width 9 to 40.
        target : ndarray of shape (n_samples,)
            The class (int) of each image; class 0 is the largest.
        target_names : ndarray of shape (n_classes,)
            The glyph (str) of each class.
        clean_data : list of ndarray
            The same images without noise (same geometry, levels and polarity).
        light_on_dark : ndarray of bool
            Whether each image is light ink on a dark background.
        font : ndarray of int
            The OpenCV font each image was drawn with (a ``cv2.FONT_HERSHEY_*`` value, plus
            ``cv2.FONT_ITALIC`` when set).
        sample_index : ndarray of int
            The number of each image within its class: image ``k`` of class ``c`` is the
            same whatever ``variant``, ``n_classes``, ``imbalance_ratio`` and ``n_samples``
            are, so a larger ``n_samples`` gives a superset of the images.
        DESCR : str
            A description of the data.
        data_test, target_test, clean_data_test, light_on_dark_test, font_test, \
sample_index_test
            The balanced test set, only with ``test_size_per_class``.

    (data, target) or (data, data_test, target, target_test) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        If ``n_samples`` is below ``2 * n_classes``, or a parameter is out of range.

    See Also
    --------
    load_digit_chars : Noisy, long-tailed handwritten digits.

    Notes
    -----
    The images are the same for the same ``random_state`` and OpenCV version, bit for bit.
    The glyph shapes come from OpenCV's built-in fonts, which changed in OpenCV 5: before,
    the Hershey stroke fonts (simplex, complex, script...); since, one sans-serif family in
    regular, bold and italic weights. Other OpenCV versions therefore draw other images.

    The images are in a random order that does not depend on ``n_samples``. Each one is
    drawn from a random stream keyed by the seed, its class and its number within the class
    (``sample_index``), so it never depends on how many other images are drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.datasets import load_font_chars
    >>> chars = load_font_chars()
    >>> chars.data[0].dtype, chars.data[0].shape[0], len(chars.data)
    (dtype('uint8'), 32, 1000)
    >>> np.bincount(chars.target)[[0, -1]].tolist(), chars.target_names[:3].tolist()
    ([99, 20], ['0', '1', '2'])
    """
    default_classes, default_ratio, default_samples = _FONT_VARIANTS[variant]
    n_classes = default_classes if n_classes is None else n_classes
    ratio = default_ratio if imbalance_ratio is None else float(imbalance_ratio)
    n_samples = default_samples if n_samples is None else n_samples
    if n_samples < _MIN_FONT_CLASS_SIZE * n_classes:
        raise ValueError(
            f"n_samples={n_samples} is too small for {n_classes} classes: every class gets at "
            f"least {_MIN_FONT_CLASS_SIZE} images; use n_samples >= "
            f"{_MIN_FONT_CLASS_SIZE * n_classes} or fewer classes."
        )
    kinds = scan.check_noise_kinds(noise)
    seed = scan.base_seed(random_state)
    counts = _long_tail_counts(n_samples, n_classes, ratio)
    train = _render_font_items(counts, _STREAM_FONT, light_on_dark, kinds, noise_level, seed)
    bunch = Bunch(
        **train,
        target_names=np.array(list(FONT_GLYPHS[:n_classes])),
        DESCR=_font_chars_descr(
            train["target"], n_classes, ratio, light_on_dark, kinds, noise_level
        ),
    )
    test = None
    if test_size_per_class is not None:
        test_counts = np.full(n_classes, test_size_per_class)
        test = _render_font_items(
            test_counts, _STREAM_FONT_TEST, light_on_dark, kinds, noise_level, seed
        )
    return scan.loader_result(bunch, test, return_X_y)


def _long_tail_counts(n_samples: int, n_classes: int, ratio: float) -> np.ndarray:
    """Class sizes falling exponentially by ``ratio``, adding up to ``n_samples``.

    Largest-remainder rounding keeps the sizes non-increasing; the floor of
    ``_MIN_FONT_CLASS_SIZE`` may then add a few images to the smallest classes.
    """
    shares = ratio ** (-np.arange(n_classes) / (n_classes - 1))
    exact = n_samples * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    by_remainder = np.argsort(counts - exact, kind="stable")
    counts[by_remainder[: n_samples - counts.sum()]] += 1
    return np.maximum(counts, _MIN_FONT_CLASS_SIZE)


def _render_font_items(
    counts: np.ndarray,
    stream: int,
    light_on_dark: float,
    kinds: tuple[str, ...],
    noise_level: float,
    seed: int,
) -> dict[str, object]:
    add_noise = bool(kinds) and noise_level > 0
    clean, noisy, fonts, inverted, order_keys = [], [], [], [], []
    for c, count in enumerate(counts.tolist()):
        for k in range(count):
            rng = scan.image_rng(seed, stream, c, k)
            order_keys.append(rng.random())
            flip = bool(rng.random() < light_on_dark)
            image, ink_level, font = _render_glyph(FONT_GLYPHS[c], rng)
            # the noise is drawn as dark marks before a light-on-dark image is inverted
            dirty = image
            if add_noise:
                dirty = scan.add_noise(image, ink_level, rng, kinds, noise_level)
            clean.append(scan.to_uint8(255.0 - image if flip else image))
            noisy.append(scan.to_uint8(255.0 - dirty if flip else dirty))
            fonts.append(font)
            inverted.append(flip)
    order = np.argsort(np.array(order_keys), kind="stable")
    target = np.repeat(np.arange(len(counts)), counts)
    index = np.concatenate([np.arange(n) for n in counts])
    return {
        "data": [noisy[i] for i in order],
        "target": target[order].astype(np.int64),
        "clean_data": [clean[i] for i in order],
        "light_on_dark": np.array(inverted)[order],
        "font": np.array(fonts, dtype=np.int64)[order],
        "sample_index": index[order].astype(np.int64),
    }


def _render_glyph(glyph: str, rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """Draw one glyph as a printed, distorted character; return the image, ink level, font.

    The image is dark ink on a light background, as a float array of height 32. Every random
    number is drawn, in a fixed order and count, whatever the glyph and font, so the noise
    drawn after it from the same generator does not depend on them.
    """
    face, italic, size, thickness, angle, shear, stretch = rng.random(7).tolist()
    weight, margin, pad_side, background, ink_level, strength = rng.random(6).tolist()
    fade, low_res, low_height = rng.random(3).tolist()
    fields = rng.standard_normal((3, _ELASTIC_GRID, _ELASTIC_GRID)).astype(np.float32)

    font = _FONT_FACES[int(face * len(_FONT_FACES))] | (cv2.FONT_ITALIC if italic < 0.3 else 0)
    thickness = 1 + int(thickness * 2.5)
    height = round(_FONT_RENDER_HEIGHT * (0.8 + 0.4 * size))
    scale = cv2.getFontScaleFromHeight(font & ~cv2.FONT_ITALIC, height, thickness)
    (text_w, text_h), baseline = cv2.getTextSize(glyph, font, scale, thickness)
    pad = 4 + round(0.35 * (text_h + baseline))
    canvas = np.zeros((text_h + baseline + 2 * pad, text_w + 2 * pad), np.uint8)
    cv2.putText(canvas, glyph, (pad, pad + text_h), font, scale, 255, thickness, cv2.LINE_AA)

    warped = _distort(
        canvas,
        angle=math.radians(24.0 * angle - 12.0),
        shear=0.6 * shear - 0.25,
        stretch=0.75 + 0.55 * stretch,
        field=fields[:2] * (0.5 + 3.0 * strength),
    )
    # Blurring then cutting at a random level makes the strokes bolder or thinner and keeps
    # their edges soft, like ink on paper. Both work on the ink's box plus room for the blur.
    x, y, w, h = cv2.boundingRect(warped)
    room = 3
    ink = warped[max(y - room, 0) : y + h + room, max(x - room, 0) : x + w + room]
    ink = cv2.GaussianBlur(ink.astype(np.float32), (0, 0), 1.0)
    ink = _clip01(ink * (1 / 76.5) - (0.7 + 1.3 * weight))  # (ink / 255 - cut) / 0.3
    x, y, w, h = cv2.boundingRect((ink > 0.2).view(np.uint8))
    ink = ink[y : y + h, x : x + w]
    if fade < 0.5:
        # faded ink: a smooth random surface lightens parts of the strokes, as a dry pen does
        surface = _bernstein(h) @ fields[2] @ _bernstein(w).T
        ink *= np.maximum(1.0 - 4.0 * fade * np.maximum(surface, 0.0), 0.3)
    ink = _fit_to_height(ink, margin=1 + int(margin * 3), pad_side=pad_side)
    if low_res < 0.4:
        # scanned at a height of 12 to 24 pixels and enlarged to 32: blurred, blocky strokes
        shrink = (12.0 + 12.0 * low_height) / scan.HEIGHT
        small = cv2.resize(ink, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        ink = cv2.resize(small, ink.shape[::-1], interpolation=cv2.INTER_LINEAR)
    background = 150.0 + 90.0 * background
    ink_level = 10.0 + 100.0 * ink_level
    return background - ink * (background - ink_level), ink_level, font


def _clip01(array: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place: two ufuncs, several times cheaper than np.clip on small arrays."""
    return np.minimum(np.maximum(array, 0.0, out=array), 1.0, out=array)


def _distort(
    canvas: np.ndarray, *, angle: float, shear: float, stretch: float, field: np.ndarray
) -> np.ndarray:
    """Rotate, shear and stretch ``canvas`` about its centre and distort it elastically.

    One :func:`cv2.remap` does it all: each output pixel reads the input at the inverse
    affine map of its position plus a smooth displacement, a Bezier surface over the canvas
    whose control points are the random offsets in ``field`` (in pixels). The surface is two
    small matrix products, much cheaper than upsampling the offsets with ``cv2.resize``.
    """
    height, width = canvas.shape
    cos, sin = math.cos(angle), math.sin(angle)
    # inverse of rotation @ shear @ horizontal stretch
    a, b = (cos + shear * sin) / stretch, (sin - shear * cos) / stretch
    cx, cy = (width - 1) / 2, (height - 1) / 2
    xs = np.arange(width, dtype=np.float32)[None, :] - cx
    ys = np.arange(height, dtype=np.float32)[:, None] - cy
    across, down = _bernstein(width), _bernstein(height)
    map_x = (a * xs + cx) + (b * ys + down @ field[0] @ across.T)
    map_y = (cos * ys + cy) + (-sin * xs + down @ field[1] @ across.T)
    return cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)


@functools.lru_cache(maxsize=256)
def _bernstein(n: int) -> np.ndarray:
    """The ``_ELASTIC_GRID`` Bernstein polynomials sampled at ``n`` points of [0, 1]."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    k = np.arange(_ELASTIC_GRID, dtype=np.float32)[None, :]
    degree = _ELASTIC_GRID - 1
    return _BINOMIAL * t**k * (1.0 - t) ** (degree - k)


def _fit_to_height(ink: np.ndarray, *, margin: int, pad_side: float) -> np.ndarray:
    """Resize cropped ink to height 32 with ``margin``, keeping its aspect ratio.

    The width is kept within 9 to 40: a narrow glyph (``l``, ``1``) is padded on both sides
    (``pad_side`` in [0, 1) sets how the padding is shared), a wide one squeezed.
    """
    inner_h = scan.HEIGHT - 2 * margin
    natural_w = max(1, round(inner_h * ink.shape[1] / ink.shape[0]))
    inner_w = min(natural_w, _MAX_FONT_WIDTH - 2 * margin)
    ink = cv2.resize(ink, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    extra = max(0, scan.MIN_WIDTH - 2 * margin - inner_w)
    left = int(pad_side * (extra + 1))
    return cv2.copyMakeBorder(
        ink, margin, margin, margin + left, margin + extra - left, cv2.BORDER_CONSTANT, value=0
    )


def _font_chars_descr(
    target: np.ndarray,
    n_classes: int,
    ratio: float,
    light_on_dark: float,
    kinds: tuple[str, ...],
    noise_level: float,
) -> str:
    counts = np.bincount(target, minlength=n_classes)
    noise_text = f"{', '.join(kinds)} (level {noise_level:g})" if kinds else "none"
    return (
        "Font characters\n"
        "---------------\n"
        "Printed letters and digits drawn with OpenCV's built-in fonts at random scale,\n"
        "thickness, rotation, shear, stretch and stroke weight, distorted elastically, cropped\n"
        "to the ink and resized to height 32 (width 9 to 40).\n\n"
        f"Classes: {n_classes} ({FONT_GLYPHS[:n_classes]})\n"
        f"Samples: {len(target)}; per class: {counts.tolist()}\n"
        f"Imbalance ratio: {counts.max() / counts.min():.1f} (asked: {ratio:g})\n"
        f"Light ink on a dark background: {light_on_dark:g} of the images\n"
        f"Noise: {noise_text}\n"
    )
