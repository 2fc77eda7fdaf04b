"""The geometric part of :class:`~skcharclf.RareClassAugmenter`: warping blocks of images.

Rotation, shear, scale, translation, perspective skew and elastic distortion of a block are
composed into one source position per output pixel and applied by one bilinear
:func:`cv2.remap` per chunk of images (:func:`warp`); :func:`warp_order` groups the images
by the arithmetic they need.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

__all__ = ["CV_MAX_SIDE", "GEOMETRIC", "Scratch", "warp", "warp_order"]

#: The transforms that move pixels; the others change intensities in place.
GEOMETRIC = ("rotate", "shear", "scale", "translate", "perspective", "elastic")


# OpenCV's remap refuses images with a side of SHRT_MAX (32767) pixels or more, and the warp
# remaps images with a one-pixel frame.
CV_MAX_SIDE = 32764
# Output pixels per cv2.remap call: enough that the cost of a call is spread over many
# images. OpenCV shares a call of more than ~1.5 * 2**16 pixels out among its own threads,
# which on top of the n_jobs threads only adds contention; smaller calls run on the caller's.
_REMAP_PIXELS = 2**16
# Control points per side of the elastic displacement grid (4 x 4 cells, as Augmentor's
# random_distortion uses by default).
_ELASTIC_GRID = 5


class Scratch:
    """Work arrays that one thread reuses from block to block.

    The allocator hands freed arrays of a few MB back to the system, and the page faults of
    a fresh one on every block cost about as much as the arithmetic done on it.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array; it shares memory with the earlier arrays of that name."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


def warp_order(active: dict[str, np.ndarray]) -> tuple[np.ndarray, int, slice, slice]:
    """An order of the images in which those with a perspective skew, those with an
    elastic field and those with any warp each form one slice, which the extra
    arithmetic then runs on.

    Returns the order, the number of warped images (first in the order) and the slices of
    the skewed and of the distorted ones.
    """
    n = next(iter(active.values())).size
    none = np.zeros(n, dtype=bool)
    warped = np.logical_or.reduce([active.get(name, none) for name in GEOMETRIC])
    skew = active.get("perspective", none)
    field = active.get("elastic", none)
    # skew only | skew and field | field only | other warps | no warp
    rank = np.where(skew, np.where(field, 1, 0), np.where(field, 2, np.where(warped, 3, 4)))
    order = np.argsort(rank, kind="stable")
    skew_only = int(np.count_nonzero(skew & ~field))
    skewed = slice(0, int(np.count_nonzero(skew)))
    distorted = slice(skew_only, skew_only + int(np.count_nonzero(field)))
    return order, int(np.count_nonzero(warped)), skewed, distorted


def warp(
    images: np.ndarray,
    skewed: slice,
    distorted: slice,
    active: dict[str, np.ndarray],
    magnitude: dict[str, np.ndarray],
    background: np.ndarray,
    rng: np.random.Generator,
    scratch: Scratch,
) -> None:
    """Warp the ``(k, H, W)`` images in place, uncovered pixels taking the background level.

    Images are remapped a chunk at a time: a chunk is stacked into one tall canvas in which
    each image has a one-pixel frame of its background level, and source positions are
    clipped to the frame, so one bilinear :func:`cv2.remap` does what one call per image with
    a constant border would, without the per-call cost.
    """
    k, height, width = images.shape
    inverse = _inverse_transforms(images.shape, skewed, active, magnitude, rng)
    # positions in the framed image: one pixel right and down
    inverse[:, :2] += inverse[:, 2:]
    inverse = inverse.astype(np.float32)
    if distorted.stop > distorted.start:
        coarse = _coarse_fields(magnitude["elastic"][distorted], height, width, rng)
        basis = _elastic_basis(height, width)
    grid = _pixel_grid(height, width)
    chunk = min(k, max(1, _REMAP_PIXELS // (height * width)), (CV_MAX_SIDE + 2) // (height + 2))
    # row of each framed image in the canvas of its chunk
    frame_top = (np.arange(chunk, dtype=np.float32) * (height + 2))[:, None]
    canvas = scratch("canvas", (chunk, height + 2, width + 2))
    maps = scratch("maps", (2 * chunk, height * width))
    for start in range(0, k, chunk):
        stop = min(start + chunk, k)
        m = stop - start
        frame = canvas[:m]
        fill = background[start:stop, None]
        frame[:, 0] = frame[:, -1] = fill
        frame[:, 1:-1, 0] = frame[:, 1:-1, -1] = fill
        frame[:, 1:-1, 1:-1] = images[start:stop]
        # x of every image, then y of every image: one product for all the affine maps
        rows = inverse[start:stop, :2].transpose(1, 0, 2).reshape(2 * m, 3)
        map_x, map_y = np.matmul(rows, grid, out=maps[: 2 * m]).reshape(2, m, -1)
        part = _overlap(skewed, start, stop)
        if part is not None:
            depth = np.matmul(
                inverse[part.start + start : part.stop + start, 2],
                grid,
                out=scratch("depth", (part.stop - part.start, height * width)),
            )
            behind = depth <= 1e-6
            if behind.any():
                # a point mapped behind the projection centre has no source: send it off
                # the image
                depth[behind] = 1.0
                map_x[part][behind] = -1.0
            map_x[part] /= depth
            map_y[part] /= depth
        part = _overlap(distorted, start, stop)
        if part is not None:
            first = part.start + start - distorted.start
            fields = np.matmul(
                coarse[first : first + part.stop - part.start].reshape(-1, basis.shape[0]),
                basis,
                out=scratch("fields", (2 * (part.stop - part.start), height * width)),
            ).reshape(-1, 2, height * width)
            map_x[part] += fields[:, 0]
            map_y[part] += fields[:, 1]
        np.clip(map_x, 0.0, width + 1.0, out=map_x)
        np.clip(map_y, 0.0, height + 1.0, out=map_y)
        map_y += frame_top[:m]
        cv2.remap(
            frame.reshape(-1, width + 2),
            map_x.reshape(-1, width),
            map_y.reshape(-1, width),
            interpolation=cv2.INTER_LINEAR,
            dst=images[start:stop].reshape(-1, width),
            borderMode=cv2.BORDER_CONSTANT,
        )


@functools.cache
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """Homogeneous coordinates ``(3, H * W)`` (x, y, 1) of the pixels of an image."""
    ys, xs = np.indices((height, width), dtype=np.float32).reshape(2, -1)
    grid = np.stack([xs, ys, np.ones_like(xs)])
    grid.flags.writeable = False
    return grid


def _overlap(part: slice, start: int, stop: int) -> slice | None:
    """The positions of ``part`` within ``start:stop``, relative to ``start``."""
    first, last = max(part.start, start), min(part.stop, stop)
    return slice(first - start, last - start) if first < last else None


def _inverse_transforms(
    shape: tuple[int, int, int],
    skewed: slice,
    active: dict[str, np.ndarray],
    magnitude: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """For each of the ``k`` warped images, the 3x3 matrix from output to source positions.

    ``skewed`` are the images with a perspective skew; ``active`` and ``magnitude`` hold
    (at least) one entry per warped image, in the same order.
    """
    k, height, width = shape

    def amount(name: str, identity: float) -> np.ndarray:
        if name not in active:
            return np.full(k, identity)
        return np.where(active[name][:k], magnitude[name][:k], identity)

    angle = np.deg2rad(amount("rotate", 0.0))
    slant = np.tan(np.deg2rad(amount("shear", 0.0)))
    zoom = amount("scale", 1.0)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    # rotation @ shear @ zoom about the centre, then the shift (image y axis points down);
    # built entry by entry, each entry a contiguous row
    entries = np.zeros((9, k))
    entries[0], entries[1] = cos, cos * slant + sin
    entries[3], entries[4] = -sin, cos - sin * slant
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    entries[2] = centre_x - entries[0] * centre_x - entries[1] * centre_y
    entries[5] = centre_y - entries[3] * centre_x - entries[4] * centre_y
    entries[8] = 1.0
    if "translate" in active:
        on = active["translate"][:k]
        entries[2] += np.where(on, magnitude["translate"][:k, 0], 0.0) * width
        entries[5] += np.where(on, magnitude["translate"][:k, 1], 0.0) * height
    forward = entries.T.reshape(k, 3, 3)
    n_skewed = skewed.stop - skewed.start
    if n_skewed:
        strength = magnitude["perspective"][skewed]
        offsets = rng.uniform(-1.0, 1.0, (n_skewed, 4, 2)) * strength[:, None, None]
        forward[skewed] = _homographies(offsets, height, width) @ forward[skewed]
    return _inverse_3x3(forward)


def _inverse_3x3(matrices: np.ndarray) -> np.ndarray:
    """Inverses of a stack of 3x3 matrices by their adjugates (np.linalg.inv calls LAPACK
    once per matrix, which costs more than the rest of the geometry).
    """
    a, b, c, d, e, f, g, h, i = np.ascontiguousarray(matrices.reshape(-1, 9).T)
    adjugate = np.empty((9, len(matrices)))
    adjugate[0] = e * i - f * h
    adjugate[1] = c * h - b * i
    adjugate[2] = b * f - c * e
    adjugate[3] = f * g - d * i
    adjugate[4] = a * i - c * g
    adjugate[5] = c * d - a * f
    adjugate[6] = d * h - e * g
    adjugate[7] = b * g - a * h
    adjugate[8] = a * e - b * d
    adjugate /= a * adjugate[0] + b * adjugate[3] + c * adjugate[6]
    return adjugate.T.reshape(-1, 3, 3)


def _homographies(offsets: np.ndarray, height: int, width: int) -> np.ndarray:
    """Homographies moving the image corners by ``offsets`` (fractions of the image size).

    Each is the map from the image to the unit square, then the closed-form map from the
    unit square to the moved corners.
    """
    # the outer edges of the border pixels: four distinct points even for a 1-pixel-high image
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float) - 0.5
    target = corners + offsets * np.array([width, height], dtype=float)
    # corner, then x or y, then homography: each (2, k) slice is contiguous
    p0, p1, p2, p3 = np.ascontiguousarray(target.transpose(1, 2, 0))
    to_far, to_near, total = p1 - p2, p3 - p2, p0 - p1 + p2 - p3
    denominator = to_far[0] * to_near[1] - to_far[1] * to_near[0]
    g = (total[0] * to_near[1] - total[1] * to_near[0]) / denominator
    h = (to_far[0] * total[1] - to_far[1] * total[0]) / denominator
    # columns of the square-to-target map, scaled by the image-to-square map
    first = np.concatenate([p1 - p0 + g * p1, g[None]]) / width
    second = np.concatenate([p3 - p0 + h * p3, h[None]]) / height
    third = 0.5 * (first + second)
    third[:2] += p0
    third[2] += 1.0
    homographies = np.stack([first, second, third], axis=1) / third[2]
    return homographies.transpose(2, 0, 1)


def _coarse_fields(
    amplitude: np.ndarray, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """Random control-point displacements (pixels) of the elastic fields, ``(k, 2, grid**2)``
    for x and y; :func:`_elastic_basis` upsamples them to the image.
    """
    coarse = rng.uniform(-1.0, 1.0, (amplitude.size, 2, _ELASTIC_GRID**2)).astype(np.float32)
    coarse[:, 0] *= (amplitude * width).astype(np.float32)[:, None]
    coarse[:, 1] *= (amplitude * height).astype(np.float32)[:, None]
    return coarse


@functools.cache
def _elastic_basis(height: int, width: int) -> np.ndarray:
    """Matrix ``(grid * grid, H * W)`` equal to bicubic resizing of the grid to the image.

    Upsampling is linear, so for many images it is one matrix product with this Kronecker
    product of the row and column upsampling matrices instead of one ``cv2.resize`` each.
    """
    eye = np.eye(_ELASTIC_GRID, dtype=np.float32)
    rows = cv2.resize(eye, (_ELASTIC_GRID, height), interpolation=cv2.INTER_CUBIC)
    cols = cv2.resize(eye, (_ELASTIC_GRID, width), interpolation=cv2.INTER_CUBIC)
    basis = np.kron(rows, cols).T
    basis.flags.writeable = False
    return basis
