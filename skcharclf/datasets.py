"""Loaders for character-image data sets and the built-in demo data.

* :func:`load_image_folder` reads a folder of image files, labelled by class sub-folder or by
  file name.
* :func:`read_image` reads one image file as :func:`load_image_folder` does.
* :func:`load_npz` and :func:`load_idx` read NumPy archives and the IDX files of MNIST and
  Fashion-MNIST.
* :func:`load_digit_chars` builds a small, noisy, long-tailed set of character images from
  scikit-learn's 8x8 digits, in the shape of scanned characters (height 32, width 9 to 28, dark
  ink on a light background).
* :func:`load_font_chars` draws long-tailed sets of printed letters and digits with OpenCV's
  built-in fonts, distorted and noisy (height 32, width 9 to 40, both polarities), in a small
  and a large variant.

Every loader returns a :class:`sklearn.utils.Bunch` whose ``data`` is an image batch that the
first pipeline steps (:class:`~skcharclf.Denoiser`, :class:`~skcharclf.ImageResizer`) accept
as it is, or ``(data, target)`` with ``return_X_y=True``.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import re
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path

import cv2
import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skcharclf._images import to_gray
from skcharclf._quiet import IMAGE_DECODER_NOISE, filtered_stderr

__all__ = [
    "FONT_GLYPHS",
    "NOISE_KINDS",
    "load_digit_chars",
    "load_font_chars",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "read_image",
]

_IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")

#: The kinds of noise :func:`load_digit_chars` can add, in the order they are applied.
NOISE_KINDS = ("shading", "strokes", "blobs", "blur", "salt_pepper")

# Default pixel cap of read_image and load_image_folder: 2048 x 2048, a whole page scanned at
# 200 dpi; a character crop has a few thousand pixels. It bounds the memory one file can take
# (a 0.4 MB PNG can claim 20000 x 20000 pixels) before anything is decoded.
_MAX_PIXELS = 2048 * 2048

_LABEL_GROUP = "label"
_MAX_LISTED_PATHS = 10


# --------------------------------------------------------------------------------------------
# Folders of image files
# --------------------------------------------------------------------------------------------


@validate_params(
    {
        "path": [str, os.PathLike],
        "labels": [StrOptions({"folders", "filename"})],
        "pattern": [str, re.Pattern],
        "extensions": [tuple, list],
        "on_error": [StrOptions({"raise", "warn", "skip"})],
        "max_pixels": [Interval(Integral, 1, None, closed="left"), None],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(
    path: str | os.PathLike,
    *,
    labels: str = "folders",
    pattern: str | re.Pattern = r"^(?P<label>[^_]+)_",
    extensions: Sequence[str] = _IMAGE_EXTENSIONS,
    on_error: str = "raise",
    max_pixels: int | None = _MAX_PIXELS,
    return_X_y: bool = False,
) -> Bunch | tuple[list[np.ndarray], np.ndarray]:
    """Load a folder of character images as gray images with their labels.

    Parameters
    ----------
    path : str or path-like
        The folder. With ``labels="folders"`` each sub-folder is one class, named after the
        sub-folder, and holds that class's image files. With ``labels="filename"`` the image
        files lie directly in ``path`` and their names carry the label.
    labels : {"folders", "filename"}, default="folders"
        Where the labels come from.
    pattern : str or compiled regex, default=r"^(?P<label>[^_]+)_"
        With ``labels="filename"``: a regular expression with a group named ``label``,
        searched in each file's stem (name without extension). The default reads
        ``<label>_<id>.png`` names: ``7_0012.png`` has label ``"7"``. A file whose stem does
        not match is handled like an unreadable file (see ``on_error``).
    extensions : sequence of str, default=("png", "jpg", "jpeg", "bmp", "tif", "tiff")
        File extensions read, without the dot, case-insensitive. Other files, and hidden
        files whose name starts with ``"."``, are ignored.
    on_error : {"raise", "warn", "skip"}, default="raise"
        What to do with a file that cannot be read as an image (corrupt, empty, larger than
        ``max_pixels``, not readable by the user, a dangling link, or not a regular file such
        as a FIFO or a device, which is never opened) or, with ``labels="filename"``, whose
        name does not match ``pattern``: ``"raise"`` a ValueError naming it, ``"warn"`` once
        with the number and paths of all such files and leave them out, or ``"skip"`` them
        silently. Skipped files are listed in the result's ``skipped``.
    max_pixels : int or None, default=4194304
        Largest number of pixels (height times width) of an image, 2048 x 2048 by default;
        larger ones are unreadable files (see ``on_error``). The size is read from the file
        header before decoding (see :func:`read_image`). None for no limit.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : list of ndarray
            One 2D gray image per file, in the file's own size. Colour images are converted
            with OpenCV's BGR weights, an alpha channel is composited over white, and the
            bit depth is kept (16-bit files give ``uint16`` images).
        target : ndarray of shape (n_samples,)
            The label of each image: integers when every label is a string of digits
            (``"0"``, ``"12"``), strings otherwise. These are the labels themselves, not
            indices into ``target_names``.
        target_names : ndarray
            The sorted distinct labels (numerically sorted integers for digit labels); what a
            classifier fitted on ``target`` has as ``classes_``.
        filenames : ndarray of str
            The path of each image.
        skipped : list of str
            Paths of the files left out by ``on_error="warn"`` or ``"skip"``.
        DESCR : str
            A description of what was loaded.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        If ``path`` is not a folder, holds no image file (or, with ``labels="folders"``, no
        class sub-folder), ``pattern`` has no ``label`` group, or, with
        ``on_error="raise"``, a file is unreadable; the message names the path.

    Warns
    -----
    UserWarning
        For class sub-folders without any image file (they are left out of
        ``target_names``), and with ``on_error="warn"`` for unreadable files.

    See Also
    --------
    read_image : Read one image file the same way.
    load_npz : Load images and labels from a NumPy ``.npz`` archive.
    load_idx : Load MNIST-style IDX files.

    Notes
    -----
    Files are read in a deterministic order: sorted by sub-folder name, then file name, each
    with :func:`read_image`. They are decoded with :func:`cv2.imdecode` from the bytes on
    disk, which also handles non-ASCII paths on every platform.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, cv2
    >>> from skcharclf.datasets import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for label in ("a", "b"):
    ...     (root / label).mkdir()
    ...     _ = cv2.imwrite(str(root / label / "0001.png"), np.full((32, 20), 200, np.uint8))
    >>> bunch = load_image_folder(root)
    >>> bunch.target.tolist(), bunch.data[0].shape
    (['a', 'b'], (32, 20))
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path {str(root)!r} is not a folder.")
    extensions = {ext.lower().lstrip(".") for ext in extensions}
    if labels == "folders":
        labelled = _files_by_folder(root, extensions)
    else:
        labelled = _files_by_name(root, extensions, _compile_label_pattern(pattern))

    images, names, files, skipped = [], [], [], []
    with _quiet_opencv():
        for file, label in labelled:
            try:
                if label is None:
                    raise ValueError(
                        f"{str(file)!r}: its name does not match the label pattern "
                        f"{_pattern_text(pattern)!r}."
                    )
                image = read_image(file, max_pixels=max_pixels)
            except (OSError, ValueError) as exc:
                if on_error == "raise":
                    raise ValueError(
                        f"{_reason(file, exc)} Pass on_error='warn' or 'skip' to "
                        "leave such files out."
                    ) from exc
                skipped.append(str(file))
                continue
            images.append(image)
            names.append(label)
            files.append(str(file))

    if skipped and on_error == "warn":
        # stacklevel 3: past this function and the validate_params wrapper, to the caller
        warnings.warn(
            f"{len(skipped)} file(s) skipped (unreadable, or name not matching the label "
            f"pattern): {_list_paths(skipped)}",
            UserWarning,
            stacklevel=3,
        )
    if not images:
        raise ValueError(f"no readable image file found in {str(root)!r}.")

    target = _labels_to_target(names)
    target_names = np.unique(target)
    if return_X_y:
        return images, target
    source = "class sub-folders" if labels == "folders" else "file names"
    descr = (
        f"{len(images)} images in {len(target_names)} classes loaded from {str(root)!r} "
        f"(labels from {source}); {len(skipped)} file(s) skipped."
    )
    return Bunch(
        data=images,
        target=target,
        target_names=target_names,
        filenames=np.asarray(files, dtype=str),
        skipped=skipped,
        DESCR=descr,
    )


def _reason(file: Path, exc: Exception) -> str:
    """Why ``file`` was not read, in one sentence naming it."""
    if isinstance(exc, OSError):
        return f"{str(file)!r}: it cannot be opened ({exc.strerror or exc})."
    return str(exc)


def _image_files(folder: Path, extensions: set[str]) -> list[Path]:
    # Everything but folders: FIFOs, devices and dangling links named like images are then
    # reported as unreadable files instead of silently left out.
    return sorted(
        p
        for p in folder.iterdir()
        if not p.is_dir() and not p.name.startswith(".") and p.suffix.lower()[1:] in extensions
    )


def _files_by_folder(root: Path, extensions: set[str]) -> list[tuple[Path, str]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        hint = (
            " It holds image files directly: use labels='filename'."
            if _image_files(root, extensions)
            else ""
        )
        raise ValueError(f"{str(root)!r} has no class sub-folder.{hint}")
    labelled, empty = [], []
    for folder in folders:
        files = _image_files(folder, extensions)
        if not files:
            empty.append(str(folder))
        labelled.extend((file, folder.name) for file in files)
    if not labelled:
        raise ValueError(
            f"no image file ({', '.join(sorted(extensions))}) in the sub-folders of {str(root)!r}."
        )
    if empty:
        warnings.warn(
            f"{len(empty)} class folder(s) without image files left out: {_list_paths(empty)}",
            UserWarning,
            stacklevel=4,
        )
    return labelled


def _files_by_name(
    root: Path, extensions: set[str], pattern: re.Pattern
) -> list[tuple[Path, str | None]]:
    files = _image_files(root, extensions)
    if not files:
        raise ValueError(f"no image file ({', '.join(sorted(extensions))}) in {str(root)!r}.")
    labelled: list[tuple[Path, str | None]] = []
    for file in files:
        match = pattern.search(file.stem)
        labelled.append((file, match.group(_LABEL_GROUP) if match else None))
    return labelled


def _compile_label_pattern(pattern: str | re.Pattern) -> re.Pattern:
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    if _LABEL_GROUP not in compiled.groupindex:
        raise ValueError(
            f"pattern {compiled.pattern!r} has no group named 'label'; write it like "
            r"r'^(?P<label>[^_]+)_'."
        )
    return compiled


def _pattern_text(pattern: str | re.Pattern) -> str:
    return pattern if isinstance(pattern, str) else pattern.pattern


class _quiet_opencv:
    """Silence OpenCV's decoder messages while reading: the loader reports bad files itself.

    OpenCV's own log goes silent; libpng and libjpeg write to file descriptor 2 directly, so
    their lines are filtered there (:mod:`skcharclf._quiet`). Enter it once per batch of files.
    """

    def __enter__(self) -> None:
        self._level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        self._stderr = filtered_stderr(IMAGE_DECODER_NOISE)
        self._stderr.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            self._stderr.__exit__(*exc)
        finally:
            cv2.utils.logging.setLogLevel(self._level)


@validate_params(
    {"path": [str, os.PathLike], "max_pixels": [Interval(Integral, 1, None, closed="left"), None]},
    prefer_skip_nested_validation=True,
)
def read_image(path: str | os.PathLike, *, max_pixels: int | None = _MAX_PIXELS) -> np.ndarray:
    """Read one image file as a 2D gray image, as :func:`load_image_folder` reads each file.

    Parameters
    ----------
    path : str or path-like
        The image file: PNG, JPEG, BMP, TIFF or another format OpenCV decodes, recognised by
        its content rather than its extension.
    max_pixels : int or None, default=4194304
        Refuse images with more pixels (height times width) than this; the default is 2048 x
        2048. For PNG, JPEG, BMP and TIFF files the size is read from the file header, before
        anything is decoded, so a small file claiming a huge image costs nothing; other formats
        are checked after decoding. A file of more than ``16 * max_pixels`` bytes plus 16 MiB
        (more than 4 channels of 32 bits per pixel) is refused before it is read. None for no
        limit (OpenCV's own limit of 2**30 pixels remains).

    Returns
    -------
    image : ndarray of shape (height, width)
        The gray image. Colour images are converted with OpenCV's BGR weights, an alpha
        channel is composited over white, and the bit depth is kept (16-bit files give
        ``uint16`` images).

    Raises
    ------
    ValueError
        If ``path`` is not a regular file (a folder, FIFO, device or socket: never opened),
        is empty, cannot be decoded as an image, or has more than ``max_pixels`` pixels (or
        bytes for that many); the message names the file.
    OSError
        If the file cannot be opened (missing, a dangling link, no permission).

    See Also
    --------
    load_image_folder : Read a folder of labelled image files.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, cv2
    >>> from skcharclf.datasets import read_image
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> _ = cv2.imwrite(str(file), np.full((32, 20), 200, np.uint8))
    >>> read_image(file).shape
    (32, 20)
    """
    file = Path(path)
    # No image of max_pixels pixels takes more than 16 bytes a pixel (4 channels of 32 bits),
    # plus room for metadata: a larger file is refused before it is read into memory.
    max_bytes = None if max_pixels is None else 16 * max_pixels + 2**24
    buffer = _read_regular_file(file, max_bytes)
    if not buffer:
        raise ValueError(f"{str(file)!r}: it is empty.")
    if max_pixels is not None:
        _check_pixels(file, _header_size(buffer), max_pixels)
    with _quiet_opencv():
        try:
            image = cv2.imdecode(np.frombuffer(buffer, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            image = None
    if image is None or image.size == 0:
        raise ValueError(
            f"{str(file)!r}: it cannot be read as an image (corrupt or unsupported file)."
        )
    if max_pixels is not None:
        _check_pixels(file, image.shape[:2], max_pixels)
    return to_gray(image, order="bgr")


def _read_regular_file(file: Path, max_bytes: int | None) -> bytes:
    """The bytes of ``file``; a FIFO, device or socket is refused without being opened."""
    status = file.stat()
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{str(file)!r}: it is not a regular file (a FIFO, device or socket).")
    _check_bytes(file, status.st_size, max_bytes)
    # Non-blocking: should the file be swapped for a FIFO after the check, opening it does
    # not wait for a writer; the check on the open file then refuses it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    with open(os.open(file, flags), "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ValueError(
                f"{str(file)!r}: it is not a regular file (a FIFO, device or socket)."
            )
        if max_bytes is None:
            return handle.read()
        content = handle.read(max_bytes + 1)  # the file may have grown since the check
        _check_bytes(file, len(content), max_bytes)
        return content


def _check_bytes(file: Path, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise ValueError(
            f"{str(file)!r}: it has more bytes ({size}) than any image of max_pixels pixels "
            "takes; raise max_pixels if the image is meant to be that large."
        )


def _check_pixels(file: Path, size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is not None and size[0] * size[1] > max_pixels:
        raise ValueError(
            f"{str(file)!r}: it has {size[0]} x {size[1]} pixels, more than "
            f"max_pixels={max_pixels}; raise max_pixels if the image is meant to be that large."
        )


def _header_size(buffer: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG, JPEG, BMP or TIFF header; None for other formats.

    A damaged header may give a wrong size or none: the decoder then rejects the file, and
    the size of what it decodes is checked again.
    """
    try:
        if buffer.startswith(b"\x89PNG\r\n\x1a\n"):
            width, height = struct.unpack(">II", buffer[16:24])
            return height, width
        if buffer.startswith(b"\xff\xd8"):
            return _jpeg_size(buffer)
        if buffer.startswith(b"BM"):
            if struct.unpack("<I", buffer[14:18])[0] == 12:  # OS/2 header: 16-bit sizes
                width, height = struct.unpack("<HH", buffer[18:22])
            else:
                width, height = struct.unpack("<ii", buffer[18:26])
            return abs(height), abs(width)
        if buffer[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_size(buffer)
    except struct.error:  # a header cut short
        return None
    return None


# JPEG start-of-frame markers (they hold the image size): C0-CF but DHT, JPG and DAC.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(buffer: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(buffer):
        if buffer[position] != 0xFF:
            return None
        marker = buffer[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", buffer[position + 5 : position + 9])
            return height, width
        if marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length
            position += 2
            continue
        position += 2 + struct.unpack(">H", buffer[position + 2 : position + 4])[0]
    return None


def _tiff_size(buffer: bytes) -> tuple[int, int] | None:
    """The size of the first image of a TIFF file (the one OpenCV decodes)."""
    order = "<" if buffer[:2] == b"II" else ">"
    offset = struct.unpack(f"{order}I", buffer[4:8])[0]
    (count,) = struct.unpack(f"{order}H", buffer[offset : offset + 2])
    size: dict[int, int] = {}
    for entry in range(count):
        start = offset + 2 + 12 * entry
        tag, kind = struct.unpack(f"{order}HH", buffer[start : start + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            value = buffer[start + 8 : start + 12]
            code, length = ("H", 2) if kind == 3 else ("I", 4)
            size[tag] = struct.unpack(f"{order}{code}", value[:length])[0]
    if len(size) < 2:
        return None
    return size[257], size[256]


def _labels_to_target(names: list[str]) -> np.ndarray:
    """Integers when every label is a digit string (and stays distinct), strings otherwise."""
    distinct = set(names)
    if all(re.fullmatch(r"[0-9]+", name) for name in distinct) and len(
        {int(name) for name in distinct}
    ) == len(distinct):
        return np.array([int(name) for name in names], dtype=np.int64)
    return np.asarray(names, dtype=str)


def _list_paths(paths: list[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED_PATHS])
    more = len(paths) - _MAX_LISTED_PATHS
    return shown + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# NumPy archives
# --------------------------------------------------------------------------------------------

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
        target = np.asarray(target)
        if target.ndim != 1:
            raise ValueError(
                f"labels {target_key!r} in {os.fspath(path)!r} have shape {target.shape}; "
                "expected a 1D array of class labels (for one-hot labels use argmax(axis=1))."
            )
        if len(target) != len(data):
            raise ValueError(
                f"{os.fspath(path)!r}: {data_key!r} holds {len(data)} images but "
                f"{target_key!r} holds {len(target)} labels."
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
        target = _read_idx(labels_path)
        if target.ndim != 1:
            raise ValueError(
                f"{os.fspath(labels_path)!r} holds an array of shape {target.shape}; an IDX "
                "label file must be 1D."
            )
        if len(target) != len(images):
            raise ValueError(
                f"{os.fspath(images_path)!r} holds {len(images)} images but "
                f"{os.fspath(labels_path)!r} holds {len(target)} labels."
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

_HEIGHT = 32
_MIN_WIDTH, _MAX_WIDTH = 9, 28
# sklearn's digits are 8x8 with values 0..16; they are upsampled on a padded 12x12 grid.
_PAD, _UPSAMPLED = 2, 48

# Independent random streams, so that each rendered image depends only on the seed and its
# source digit: changing rare_ratio, n_samples_per_class or the noise kinds leaves every other
# image exactly as it was.
_STREAM_SPLIT, _STREAM_SELECT, _STREAM_RENDER, _STREAM_NOISE = range(4)
# Slots for stray strokes and for ink blobs; each is filled with a probability set by the level.
_MAX_MARKS = 6


@validate_params(
    {
        "n_samples_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "rare_classes": ["array-like"],
        "rare_ratio": [Interval(Real, 0, 1, closed="right")],
        "noise": ["boolean", tuple, list],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "test_size_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "return_X_y": ["boolean"],
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
    kinds = _check_noise_kinds(noise)
    rare = _check_rare_classes(rare_classes)
    digits = load_digits()
    seed = _base_seed(random_state)

    pools = {c: np.flatnonzero(digits.target == c) for c in range(10)}
    test_sources: list[int] = []
    if test_size_per_class is not None:
        smallest = min(len(pool) for pool in pools.values())
        if test_size_per_class >= smallest:
            raise ValueError(
                f"test_size_per_class={test_size_per_class} leaves no training digit in the "
                f"smallest class ({smallest} digits); use at most {smallest - 1}."
            )
        split_rng = _rng(seed, _STREAM_SPLIT)
        for c in range(10):
            held_out = split_rng.choice(pools[c], size=test_size_per_class, replace=False)
            test_sources.extend(held_out.tolist())
            pools[c] = np.setdiff1d(pools[c], held_out)

    items: list[tuple[int, int]] = []  # (source digit, variant number; 0 = the digit itself)
    for c in range(10):
        n_class = len(pools[c]) if n_samples_per_class is None else n_samples_per_class
        if c in rare:
            n_class = max(1, round(rare_ratio * n_class))
        items.extend(_select_class(pools[c], n_class, _rng(seed, _STREAM_SELECT, source=c)))
    items.sort(key=lambda item: (item[1], item[0]))

    train = _render_items(digits.images, digits.target, items, kinds, noise_level, seed)
    bunch = Bunch(
        **train,
        target_names=np.arange(10),
        rare_classes=np.array(sorted(rare), dtype=np.int64),
        DESCR=_digit_chars_descr(train["target"], rare, rare_ratio, kinds, noise_level),
    )
    if test_size_per_class is not None:
        test_items = [(source, 0) for source in sorted(test_sources)]
        test = _render_items(digits.images, digits.target, test_items, kinds, noise_level, seed)
        bunch.update({f"{key}_test": value for key, value in test.items()})
    if return_X_y:
        if test_size_per_class is None:
            return bunch.data, bunch.target
        return bunch.data, bunch.data_test, bunch.target, bunch.target_test
    return bunch


def _check_noise_kinds(noise: bool | Sequence[str]) -> tuple[str, ...]:
    if isinstance(noise, (bool, np.bool_)):
        return NOISE_KINDS if noise else ()
    unknown = [kind for kind in noise if kind not in NOISE_KINDS]
    if unknown:
        raise ValueError(
            f"noise must be True, False or a sequence of kinds from {list(NOISE_KINDS)}; "
            f"got unknown kind(s) {unknown}."
        )
    return tuple(kind for kind in NOISE_KINDS if kind in noise)


def _check_rare_classes(rare_classes: Sequence[int]) -> set[int]:
    values = list(np.asarray(rare_classes).ravel())
    if not all(isinstance(v, Integral) and 0 <= v <= 9 for v in values):
        raise ValueError(f"rare_classes must hold digits 0 to 9, got {list(rare_classes)}.")
    return {int(v) for v in values}


def _base_seed(random_state: int | np.random.RandomState | None) -> int:
    if isinstance(random_state, Integral):
        return int(random_state) % 2**63
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _rng(seed: int, stream: int, source: int = 0, variant: int = 0) -> np.random.Generator:
    """A generator keyed by (seed, stream, source digit or class, variant).

    Philox takes a 128-bit key directly, which is several times cheaper than hashing a
    sequence of integers through a SeedSequence for each of the ~2,000 images.
    """
    key = (seed << 64) | (stream << 56) | (variant << 16) | source
    return np.random.Generator(np.random.Philox(key=key))


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
        render_rng = _rng(seed, _STREAM_RENDER, source, variant)
        image, ink_level = _render_digit(grids[source], render_rng, jitter=variant > 0)
        clean.append(_to_uint8(image))
        if add_noise:
            noise_rng = _rng(seed, _STREAM_NOISE, source, variant)
            noisy.append(_to_uint8(_add_noise(image, ink_level, noise_rng, kinds, noise_level)))
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
    inner_h = _HEIGHT - 2 * margin
    inner_w = round(inner_h * ink.shape[1] / ink.shape[0])
    inner_w = int(np.clip(inner_w, _MIN_WIDTH - 2 * margin, _MAX_WIDTH - 2 * margin))
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


def _add_noise(
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


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


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

#: The glyphs of :func:`load_font_chars`, in class order: class ``c`` is ``FONT_GLYPHS[c]``.
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
        "noise": ["boolean", tuple, list],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "test_size_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "return_X_y": ["boolean"],
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
    kinds = _check_noise_kinds(noise)
    seed = _base_seed(random_state)
    counts = _long_tail_counts(n_samples, n_classes, ratio)
    train = _render_font_items(counts, _STREAM_FONT, light_on_dark, kinds, noise_level, seed)
    bunch = Bunch(
        **train,
        target_names=np.array(list(FONT_GLYPHS[:n_classes])),
        DESCR=_font_chars_descr(
            train["target"], n_classes, ratio, light_on_dark, kinds, noise_level
        ),
    )
    if test_size_per_class is not None:
        test_counts = np.full(n_classes, test_size_per_class)
        test = _render_font_items(
            test_counts, _STREAM_FONT_TEST, light_on_dark, kinds, noise_level, seed
        )
        bunch.update({f"{key}_test": value for key, value in test.items()})
    if return_X_y:
        if test_size_per_class is None:
            return bunch.data, bunch.target
        return bunch.data, bunch.data_test, bunch.target, bunch.target_test
    return bunch


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
            rng = _rng(seed, stream, c, k)
            order_keys.append(rng.random())
            flip = bool(rng.random() < light_on_dark)
            image, ink_level, font = _render_glyph(FONT_GLYPHS[c], rng)
            # the noise is drawn as dark marks before a light-on-dark image is inverted
            dirty = _add_noise(image, ink_level, rng, kinds, noise_level) if add_noise else image
            clean.append(_to_uint8(255.0 - image if flip else image))
            noisy.append(_to_uint8(255.0 - dirty if flip else dirty))
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
        shrink = (12.0 + 12.0 * low_height) / _HEIGHT
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
    inner_h = _HEIGHT - 2 * margin
    natural_w = max(1, round(inner_h * ink.shape[1] / ink.shape[0]))
    inner_w = min(natural_w, _MAX_FONT_WIDTH - 2 * margin)
    ink = cv2.resize(ink, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    extra = max(0, _MIN_WIDTH - 2 * margin - inner_w)
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
