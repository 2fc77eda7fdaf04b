"""Bounded reading of the zip archives that hold skcharclf models.

A model file comes from someone else, so reading it must cost a bounded amount of memory, disk
and time whatever it holds: a zip "bomb" (a member that expands a thousandfold), a member whose
header understates its size, millions of members, a FIFO that never answers, or JSON nested a
million levels deep. Every function here checks one such limit while it reads, and reports a
broken or hostile archive as an :class:`ArchiveError` (a ``ValueError``) whose message says what
is wrong; the callers add the file's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "MAX_MODEL_BYTES",
    "ArchiveError",
    "Budget",
    "check_regular_file",
    "copy_member",
    "first_line",
    "open_archive",
    "parse_json",
    "read_json_member",
    "short_text",
    "verify_members",
]

#: The most bytes the members of one model file may expand to, together (a real model is
#: 100 kB to a few MB; the default network's .skc is about 2 MB).
MAX_MODEL_BYTES = 256 * 2**20
#: The most bytes one JSON member (metadata, network configuration) may expand to.
MAX_JSON_BYTES = 16 * 2**20
#: Beyond its first EXPANSION_FLOOR bytes a member may expand at most this many times its
#: compressed size. Real members: Keras stores its files uncompressed (ratio 1) and a deflated
#: ``model.keras`` shrinks 1.5x (default network) to 8x (a tiny one); deflate itself can reach
#: about 1000x, which only long runs of identical bytes (a bomb) achieve.
MAX_EXPANSION = 200
EXPANSION_FLOOR = 2**20
#: The most members one archive may hold (a .skc holds 2, a Keras file 4).
MAX_MEMBERS = 1000
#: The deepest nesting of lists and objects allowed in JSON metadata (ours nest 6 deep).
MAX_JSON_DEPTH = 32

_CHUNK = 2**20
_END_RECORD = b"PK\x05\x06"  # end of central directory record
_ZIP64_LOCATOR = b"PK\x06\x07"
_END_RECORD_SIZE = 22
_MAX_COMMENT = 2**16 - 1
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
# What zipfile and zlib raise on a damaged archive.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


class ArchiveError(ValueError):
    """A model archive that is damaged, or that exceeds a reading limit.

    Parameters
    ----------
    message : str
        The message.
    reason : str, optional
        What is wrong, without the file's name (for a caller that names the file its own
        way); ``message`` by default.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


@dataclass
class Budget:
    """The bytes that the members of one archive may expand to, together.

    Parameters
    ----------
    limit : int
        The most bytes all members read through this budget may expand to.
    spent : int, default=0
        Bytes read so far.
    """

    limit: int
    spent: int = 0

    @property
    def remaining(self) -> int:
        """Bytes that may still be read."""
        return self.limit - self.spent

    def spend(self, name: str, size: int) -> None:
        """Count ``size`` bytes of member ``name``; raise once the limit is exceeded."""
        if self.spent + size > self.limit:
            raise ArchiveError(
                f"its members expand to more than the {_mib(self.limit)} allowed (at member "
                f"{name!r})"
            )
        self.spent += size


def check_regular_file(path: Path) -> os.stat_result:
    """Stat ``path`` and refuse anything but a regular file (a FIFO would block reads forever).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ArchiveError
        If it is a folder, a FIFO, a device or a socket.
    """
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise ArchiveError("it is a folder")
    if not stat.S_ISREG(info.st_mode):
        raise ArchiveError("it is not a regular file (a FIFO, device or socket)")
    return info


def open_archive(path: Path, max_bytes: int) -> zipfile.ZipFile:
    """Open the zip archive ``path`` after checking its size, member count and compressions.

    Parameters
    ----------
    path : Path
        A regular file.
    max_bytes : int
        The most bytes its members may expand to together; a larger file is refused unread.

    Returns
    -------
    archive : zipfile.ZipFile
        The open archive; every member is stored or deflated, unencrypted, and declares
        sizes within the limits.
    """
    size = check_regular_file(path).st_size
    if size > max_bytes:
        raise ArchiveError(f"the file is larger than the {_mib(max_bytes)} allowed")
    with open(path, "rb") as file:
        _check_member_count(file, size)
    try:
        archive = zipfile.ZipFile(path)
    except _DAMAGE as exc:
        raise ArchiveError("not a zip archive") from exc
    try:
        _check_declared(archive.infolist(), max_bytes)
    except ArchiveError:
        archive.close()
        raise
    return archive


def _check_member_count(file: BinaryIO, size: int) -> None:
    """Read the member count from the end record before zipfile loads the whole directory."""
    tail_size = min(size, _END_RECORD_SIZE + _MAX_COMMENT)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    at = tail.rfind(_END_RECORD)
    if at < 0 or at + _END_RECORD_SIZE > len(tail):
        return  # not a zip archive: zipfile says so
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        raise ArchiveError("a zip64 archive, which model files never need")
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if count > MAX_MEMBERS:
        raise ArchiveError(f"{count} members, more than the {MAX_MEMBERS} allowed")


def _check_declared(infos: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """Refuse what the central directory itself shows: bombs, encryption, other compressions."""
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"{len(infos)} members, more than the {MAX_MEMBERS} allowed")
    total = 0
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {name!r} is encrypted")
        if info.compress_type not in _COMPRESSIONS:
            raise ArchiveError(
                f"member {name!r} uses compression method {info.compress_type}; model files "
                "are stored or deflated"
            )
        _check_expansion(info, info.file_size)
        total += info.file_size
        if total > max_bytes:
            raise ArchiveError(
                f"its members declare more than the {_mib(max_bytes)} allowed (at member {name!r})"
            )


def _check_expansion(info: zipfile.ZipInfo, size: int) -> None:
    if size > EXPANSION_FLOOR and size > MAX_EXPANSION * info.compress_size:
        raise ArchiveError(
            f"member {info.filename!r} expands more than {MAX_EXPANSION} times its compressed "
            f"size of {info.compress_size} bytes (a zip bomb)"
        )


def _stream(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    budget: Budget,
    sink: Callable[[bytes], object],
    limit: int | None = None,
) -> int:
    """Decompress ``info`` chunk by chunk into ``sink``, stopping at the first limit crossed.

    The sizes the archive declares are not trusted: the limits apply to the bytes actually
    decompressed. zipfile checks the member's CRC-32 at its end.
    """
    name = info.filename
    cap = budget.remaining if limit is None else min(limit, budget.remaining)
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise ArchiveError(f"member {name!r} is larger than the {_mib(limit)} allowed")
                if size > cap:
                    budget.spend(name, size)  # raises
                _check_expansion(info, size)
                sink(chunk)
    except _DAMAGE as exc:
        raise ArchiveError(f"member {name!r} is damaged: {first_line(exc)}") from exc
    budget.spend(name, size)
    return size


def read_json_member(archive: zipfile.ZipFile, name: str, budget: Budget) -> Any:
    """Read and parse the JSON member ``name`` (at most :data:`MAX_JSON_BYTES`).

    Raises
    ------
    KeyError
        If the archive has no member ``name``.
    ArchiveError
        If the member is damaged, too large, not JSON or nested too deeply.
    """
    info = archive.getinfo(name)
    parts: list[bytes] = []
    _stream(archive, info, budget, parts.append, limit=MAX_JSON_BYTES)
    return parse_json(b"".join(parts), name)


def parse_json(data: bytes, name: str) -> Any:
    """Parse UTF-8 JSON, refusing nesting deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError as exc:
        raise ArchiveError(f"{name} is nested too deeply") from exc
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of thousands of digits
        raise ArchiveError(f"{name} is not valid JSON: {first_line(exc)}") from exc
    _check_depth(value, name)
    return value


def _check_depth(value: Any, name: str) -> None:
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            item
            for container in level
            if isinstance(container, (list, dict))
            for item in (container.values() if isinstance(container, dict) else container)
        ]
        if not level:
            return
    raise ArchiveError(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep")


def copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: Budget
) -> str:
    """Write member ``info`` to the file ``target``; return the SHA-256 of its content."""
    digest = hashlib.sha256()
    with open(target, "wb") as out:

        def write(chunk: bytes) -> None:
            digest.update(chunk)
            out.write(chunk)

        _stream(archive, info, budget, write)
    return digest.hexdigest()


def verify_members(archive: zipfile.ZipFile, budget: Budget, skip: frozenset = frozenset()) -> None:
    """Decompress every member not in ``skip`` (discarding it) to check sizes and CRC-32s.

    Members named ``*.json`` may expand to at most :data:`MAX_JSON_BYTES`.
    """
    for info in archive.infolist():
        if info.filename not in skip:
            limit = MAX_JSON_BYTES if info.filename.endswith(".json") else None
            _stream(archive, info, budget, lambda chunk: None, limit=limit)


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} bytes"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return short_text(line, 200)


def short_text(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, ending in "..." when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
