"""What the built-in data sets share: the image height, random streams and scanner-like noise."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval

from skcharclf._utils import draw_seed

#: The kinds of noise :func:`load_digit_chars` can add, in the order they are applied.
NOISE_KINDS = ("shading", "strokes", "blobs", "blur", "salt_pepper")

#: Parameter constraints that :func:`load_digit_chars` and :func:`load_font_chars` share.
SHARED_CONSTRAINTS = {
    "noise": ["boolean", tuple, list],
    "noise_level": [Interval(Real, 0, None, closed="left")],
    "test_size_per_class": [Interval(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "return_X_y": ["boolean"],
}

# Every built-in image is this tall, and at least this wide.
HEIGHT = 32
MIN_WIDTH = 9
# Slots for stray strokes and for ink blobs; each is filled with a probability set by the level.
_MAX_MARKS = 6


def check_noise_kinds(noise: bool | Sequence[str]) -> tuple[str, ...]:
    """The kinds ``noise`` names, in the order they are applied (``True``: all of them)."""
    if isinstance(noise, (bool, np.bool_)):
        return NOISE_KINDS if noise else ()
    unknown = [kind for kind in noise if kind not in NOISE_KINDS]
    if unknown:
        raise ValueError(
            f"noise must be True, False or a sequence of kinds from {list(NOISE_KINDS)}; "
            f"got unknown kind(s) {unknown}."
        )
    return tuple(kind for kind in NOISE_KINDS if kind in noise)


def base_seed(random_state: int | np.random.RandomState | None) -> int:
    """The key every random stream of a data set derives from."""
    if isinstance(random_state, Integral):
        return int(random_state) % 2**63
    return draw_seed(random_state)


def loader_result(
    bunch: Bunch, test: dict[str, object] | None, return_X_y: bool
) -> Bunch | tuple:
    """What a built-in loader returns: ``bunch`` with the balanced ``test`` set (or None) added
    as ``<key>_test``, or the arrays ``return_X_y`` asks for."""
    if test is not None:
        bunch.update({f"{key}_test": value for key, value in test.items()})
    if not return_X_y:
        return bunch
    if test is None:
        return bunch.data, bunch.target
    return bunch.data, bunch.data_test, bunch.target, bunch.target_test


def image_rng(seed: int, stream: int, source: int = 0, variant: int = 0) -> np.random.Generator:
    """A generator keyed by (seed, stream, source digit or class, variant).

    Philox takes a 128-bit key directly, which is several times cheaper than hashing a
    sequence of integers through a SeedSequence for each of the ~2,000 images.
    """
    key = (seed << 64) | (stream << 56) | (variant << 16) | source
    return np.random.Generator(np.random.Philox(key=key))


def add_noise(
    image: np.ndarray,
    ink_level: float,
    rng: np.random.Generator,
    kinds: tuple[str, ...],
    level: float,
) -> np.ndarray:
    """Add scanner-like, non-Gaussian noise of the given kinds.

    Every random number is drawn, in a fixed order, whatever ``kinds`` and ``level`` are, so
    switching a kind off or changing the level leaves the other marks where they were.
    """
    height, width = image.shape
    shading, blur, salt_pepper = rng.random(3), rng.random(2), rng.random()
    strokes = rng.random((_MAX_MARKS, 6))
    blobs = rng.random((_MAX_MARKS, 5))
    pixels = rng.random((2, height, width))

    image = image.copy()
    chance = min(1.0, level)
    if "shading" in kinds and shading[0] < 0.4 * chance:
        angle = 2 * np.pi * shading[1]
        ramp = (
            np.cos(angle) * np.arange(width, dtype=np.float32)[None, :] / width
            + np.sin(angle) * np.arange(height, dtype=np.float32)[:, None] / height
        )
        image += (15.0 + 20.0 * shading[2]) * level * (ramp - ramp.mean())
    if "strokes" in kinds:
        for present, x, y, angle, length, colour in strokes:
            if present < min(1.0, 0.7 * level / _MAX_MARKS):
                length, angle = 3.0 + 7.0 * length, 2 * np.pi * angle
                start = (x * width, y * height)
                end = (start[0] + length * np.cos(angle), start[1] + length * np.sin(angle))
                cv2.line(image, _point(start), _point(end), ink_level + 60.0 * colour, 1)
    if "blobs" in kinds:
        for present, x, y, radius, colour in blobs:
            if present < min(1.0, 0.4 * level / _MAX_MARKS):
                centre = _point((x * width, y * height))
                cv2.circle(image, centre, 1 + int(radius * 2), ink_level + 80.0 * colour, -1)
    if "blur" in kinds and blur[0] < 0.35 * chance:
        image = cv2.GaussianBlur(image, (0, 0), 0.5 + 0.5 * blur[1])
    if "salt_pepper" in kinds:
        hit = pixels[0] < min(0.5, 0.05 * salt_pepper * level)
        image[hit] = np.where(pixels[1][hit] < 0.5, 0.0, 255.0)
    return image


def _point(xy: tuple[float, float]) -> tuple[int, int]:
    return round(xy[0]), round(xy[1])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image to 8 bits."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
