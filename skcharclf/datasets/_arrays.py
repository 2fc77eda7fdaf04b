"""Arrays stored whole: NumPy archives (:func:`load_npz`) and IDX files (:func:`load_idx`)."""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

_DATA_KEYS = ("X", "x", "data", "images", "arr_0")
_TARGET_KEYS = ("y", "target", "labels", "arr_1")


@validate_params(
    {
        "path": [str, os.PathLike],
        "data_key": [str, None],
        "target_key": [str, None],
        "allow_pickle": ["boolean"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_npz(
    path: str | os.PathLike,
    *,
    data_key: str | None = None,
    target_key: str | None = None,
    allow_pickle: bool = False,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray | None]:
    """Load images and labels from a NumPy ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        The archive, as written by :func:`numpy.savez` or :func:`numpy.savez_compressed`.
    data_key : str, optional
        Name of the image array. By default the first of ``"X"``, ``"x"``, ``"data"``,
        ``"images"`` and ``"arr_0"`` found in the archive.
    target_key : str, optional
        Name of the label array. By default the first of ``"y"``, ``"target"``, ``"labels"``
        and ``"arr_1"`` found; when none is present the archive is taken to hold unlabelled
        images and ``target`` is None.
    allow_pickle : bool, default=False
        Allow object arrays (ragged images saved as an array of arrays). Loading pickled
        data runs code from the file: only enable it for archives you trust.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (the image batch: an
        ``(n, H, W)`` / ``(n, H, W, C)`` array, or an object array of 2D images),
        ``target`` (1D array or None), ``data_key``, ``target_key`` and ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        If the file is not an ``.npz`` archive, a key is missing (the message lists the keys
        present), the arrays have different lengths, or the labels are not 1D.

    See Also
    --------
    load_image_folder : Load a folder of image files.
    load_idx : Load MNIST-style IDX files.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from skcharclf.datasets import load_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "chars.npz")
    >>> np.savez(path, images=np.zeros((4, 32, 20), np.uint8), labels=[0, 1, 0, 1])
    >>> X, y = load_npz(path, return_X_y=True)
    >>> X.shape, y.tolist()
    ((4, 32, 20), [0, 1, 0, 1])
    """
    try:
        archive = np.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # BadZipFile: a damaged archive, whose message does not name the file
        raise ValueError(f"{os.fspath(path)!r} cannot be read as an .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{os.fspath(path)!r} holds a single array (.npy), not an .npz archive of named "
            "arrays; load it with numpy.load and pass the images directly."
        )
    with archive:
        keys = list(archive.files)
        data_key = _pick_key(keys, data_key, _DATA_KEYS, "data_key", path, required=True)
        target_key = _pick_key(keys, target_key, _TARGET_KEYS, "target_key", path, required=False)
        data = _read_member(archive, data_key, path)
        target = None if target_key is None else _read_member(archive, target_key, path)

    if target is not None:
        target = _check_labels(
            target,
            len(data),
            images=f"{os.fspath(path)!r}: {data_key!r}",
            labels=repr(target_key),
            shape_of=f"labels {target_key!r} in {os.fspath(path)!r} have shape",
            rule="expected a 1D array of class labels (for one-hot labels use argmax(axis=1)).",
        )
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        data_key=data_key,
        target_key=target_key,
        DESCR=f"{len(data)} images from {os.fspath(path)!r} (arrays {data_key!r}, {target_key!r}).",
    )


def _check_labels(
    target: object, n_images: int, *, images: str, labels: str, shape_of: str, rule: str
) -> np.ndarray:
    """``target`` as an array, checked to hold one label (a 1D array) per image.

    ``images`` and ``labels`` name the two arrays in the count message; the shape message is
    ``"<shape_of> <shape>; <rule>"``.
    """
    target = np.asarray(target)
    if target.ndim != 1:
        raise ValueError(f"{shape_of} {target.shape}; {rule}")
    if len(target) != n_images:
        raise ValueError(
            f"{images} holds {n_images} images but {labels} holds {len(target)} labels."
        )
    return target


def _pick_key(
    keys: list[str],
    key: str | None,
    candidates: tuple[str, ...],
    parameter: str,
    path: str | os.PathLike,
    *,
    required: bool,
) -> str | None:
    if key is not None:
        if key not in keys:
            raise ValueError(f"{parameter}={key!r} is not in {os.fspath(path)!r}; it holds {keys}.")
        return key
    for candidate in candidates:
        if candidate in keys:
            return candidate
    if required:
        raise ValueError(
            f"cannot guess which array of {os.fspath(path)!r} holds the images (tried "
            f"{list(candidates)}); it holds {keys}: pass {parameter}=..."
        )
    return None


def _read_member(archive: np.lib.npyio.NpzFile, key: str, path: str | os.PathLike) -> np.ndarray:
    try:
        return archive[key]
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(
            f"array {key!r} of {os.fspath(path)!r} is damaged and cannot be read: {exc}"
        ) from exc
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(
                f"array {key!r} of {os.fspath(path)!r} is an object array (e.g. images of "
                "different sizes); pass allow_pickle=True if you trust the file."
            ) from exc
        raise


# --------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST, EMNIST)
# --------------------------------------------------------------------------------------------

# IDX type code -> big-endian dtype
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@validate_params(
    {
        "images_path": [str, os.PathLike],
        "labels_path": [str, os.PathLike, None],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_idx(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    *,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray | None]:
    """Load images (and labels) from IDX files, the format of MNIST and Fashion-MNIST.

    Parameters
    ----------
    images_path : str or path-like
        The image file, e.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``.
        Gzipped files are recognised by their content, whatever their name.
    labels_path : str or path-like, optional
        The matching label file, e.g. ``train-labels-idx1-ubyte.gz``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (array of shape ``(n, rows, cols)``,
        ``uint8`` for MNIST), ``target`` (array of shape ``(n,)``, or None without
        ``labels_path``) and ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        If a file is not a valid IDX file (bad magic number, unknown data type, truncated or
        too long), the image file is not 3D, the label file is not 1D, or their numbers of
        items differ; the message names the file.

    See Also
    --------
    load_npz : Load images and labels from a NumPy ``.npz`` archive.

    Notes
    -----
    MNIST and Fashion-MNIST draw light ink on a black background, the opposite of scanned
    characters; :class:`~skcharclf.ImageResizer` with ``polarity="auto"`` handles both.
    """
    images = _read_idx(images_path)
    if images.ndim != 3:
        raise ValueError(
            f"{os.fspath(images_path)!r} holds an array of shape {images.shape}; an IDX image "
            "file must be 3D (n_images, rows, columns)."
        )
    target = None
    if labels_path is not None:
        target = _check_labels(
            _read_idx(labels_path),
            len(images),
            images=repr(os.fspath(images_path)),
            labels=repr(os.fspath(labels_path)),
            shape_of=f"{os.fspath(labels_path)!r} holds an array of shape",
            rule="an IDX label file must be 1D.",
        )
    if return_X_y:
        return images, target
    return Bunch(
        data=images,
        target=target,
        DESCR=f"{len(images)} images of {images.shape[1]}x{images.shape[2]} pixels from "
        f"{os.fspath(images_path)!r}.",
    )


def _read_idx(path: str | os.PathLike) -> np.ndarray:
    name = os.fspath(path)
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{name!r} is a damaged gzip file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{name!r} is not an IDX file: its first bytes {raw[:4].hex(' ')!r} are not a "
            "valid magic number (00 00 <type> <n_dims>)."
        )
    type_code, n_dims = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(
            f"{name!r}: unknown IDX data type 0x{type_code:02x} (expected one of "
            f"{', '.join(f'0x{code:02x}' for code in _IDX_TYPES)})."
        )
    header_size = 4 + 4 * n_dims
    if n_dims == 0 or len(raw) < header_size:
        raise ValueError(f"{name!r}: truncated IDX header ({n_dims} dimension(s) announced).")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        raise ValueError(
            f"{name!r}: the header announces shape {shape} ({expected} bytes of data) but "
            f"the file holds {found} bytes after the header; it is truncated or not an IDX "
            "file."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------------------------
# Built-in demo data
# --------------------------------------------------------------------------------------------
