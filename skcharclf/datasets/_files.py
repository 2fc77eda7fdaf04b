"""Image files: one file (:func:`read_image`), a folder of them (:func:`load_image_folder`)."""

from __future__ import annotations

import os
import re
import stat
import struct
import warnings
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

import cv2
import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skcharclf._images import to_gray
from skcharclf._quiet import quiet_image_decoders
from skcharclf.datasets._corrections import apply_corrections

#: The file extensions :func:`load_image_folder` reads by default.
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")

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
        "corrections": [str, os.PathLike, None],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(
    path: str | os.PathLike,
    *,
    labels: str = "folders",
    pattern: str | re.Pattern = r"^(?P<label>[^_]+)_",
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    on_error: str = "raise",
    max_pixels: int | None = _MAX_PIXELS,
    corrections: str | os.PathLike | None = None,
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
    corrections : str or path-like, optional
        A CSV file of label corrections, such as the one
        :meth:`skcharclf.diagnostics.LabelAudit.to_csv` (or ``skcharclf audit --csv``)
        writes and a user edits: one row per file with the columns ``path`` (relative to
        ``path``, or absolute) and ``action``: ``"keep"`` (or empty), ``"drop"`` (the file
        is left out, without being read) or ``"relabel"`` (the file gets the label in the
        ``suggested_label`` column, which must be a label of the folder). A filled-in
        ``given_label`` column must still be the file's label, so a file written for an
        older version of the folder is refused. Other columns are ignored; ``,``, ``;`` and
        tab separators are read.
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
        dropped, relabelled : list of str
            Paths of the files dropped and relabelled by ``corrections``.
        DESCR : str
            A description of what was loaded.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        If ``path`` is not a folder, holds no image file (or, with ``labels="folders"``, no
        class sub-folder), ``pattern`` has no ``label`` group, or, with
        ``on_error="raise"``, a file is unreadable; the message names the path. Also if the
        ``corrections`` file cannot be applied (a missing column, an unknown action, a path
        that is not an image of the folder, an unknown label): the message names its line
        and column.

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
    dropped: list[str] = []
    relabelled: list[str] = []
    if corrections is not None:
        labelled, dropped, relabelled = apply_corrections(labelled, root, corrections)

    images, names, files, skipped = [], [], [], []
    with quiet_image_decoders():
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
    if corrections is not None:
        descr += (
            f" Corrections from {str(corrections)!r}: {len(dropped)} file(s) dropped, "
            f"{len(relabelled)} relabelled."
        )
    return Bunch(
        data=images,
        target=target,
        target_names=target_names,
        filenames=np.asarray(files, dtype=str),
        skipped=skipped,
        dropped=dropped,
        relabelled=relabelled,
        DESCR=descr,
    )


def _reason(file: Path, exc: Exception) -> str:
    """Why ``file`` was not read, in one sentence naming it."""
    if isinstance(exc, OSError):
        return f"{str(file)!r}: it cannot be opened ({exc.strerror or exc})."
    return str(exc)


def list_image_files(
    folder: str | os.PathLike,
    *,
    recursive: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> list[Path]:
    """The image files in a folder, sorted, as :func:`load_image_folder` finds them.

    Parameters
    ----------
    folder : str or path-like
        The folder to list.
    recursive : bool, default=False
        Whether to list the files of its sub-folders too (at any depth).
    extensions : sequence of str, default=("png", "jpg", "jpeg", "bmp", "tif", "tiff")
        File extensions listed, with or without the dot, case-insensitive.

    Returns
    -------
    files : list of pathlib.Path
        Every entry that is not a folder and whose name ends with one of ``extensions``,
        except hidden ones (a name, or a sub-folder name, starting with ``.``). Special
        files and dangling links named like images are listed, so that a reader reports
        them as unreadable instead of silently leaving them out.
    """
    root = Path(folder)
    wanted = {ext.lower().lstrip(".") for ext in extensions}
    entries = root.rglob("*") if recursive else root.iterdir()
    return sorted(
        p
        for p in entries
        if not p.is_dir()
        and p.suffix.lower()[1:] in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _files_by_folder(root: Path, extensions: set[str]) -> list[tuple[Path, str]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        hint = (
            " It holds image files directly: use labels='filename'."
            if list_image_files(root, extensions=extensions)
            else ""
        )
        raise ValueError(f"{str(root)!r} has no class sub-folder.{hint}")
    labelled, empty = [], []
    for folder in folders:
        files = list_image_files(folder, extensions=extensions)
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
    files = list_image_files(root, extensions=extensions)
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
    with quiet_image_decoders():
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
