"""All-or-nothing operations: a fit and a file write either complete or change nothing.

* :func:`restore_on_failure` wraps an estimator's ``fit``: when the call does not complete
  (an error, a diverged training, Ctrl-C), the estimator is left exactly as it was before the
  call, so a failed re-fit cannot leave a half-trained model that still predicts.
* :func:`atomic_output` is how every file of the package is written: the content goes to a
  temporary file in the target's folder, which replaces the target only once it is complete
  and on disk. A full disk, a file-size limit or Ctrl-C leaves the previous file intact and
  no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["atomic_output", "restore_on_failure"]

_Fit = TypeVar("_Fit", bound=Callable[..., Any])


def restore_on_failure(fit: _Fit) -> _Fit:
    """Decorate ``fit`` so that a call that does not complete leaves the estimator unchanged.

    The instance's attributes are saved before the call and put back when it raises anything,
    ``KeyboardInterrupt`` included: a fitted estimator keeps its previous fit, an unfitted one
    stays unfitted. The states of ``numpy.random.RandomState`` attributes (a ``random_state``
    parameter) are restored as well, so the next fit draws what it would have drawn.

    The save is shallow: ``fit`` must rebind its fitted attributes rather than change the
    objects they hold in place (a network trained further with ``warm_start`` is trained as a
    copy).
    """

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        generators = [
            (value, value.get_state())
            for value in saved.values()
            if isinstance(value, np.random.RandomState)
        ]
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            for generator, state in generators:
                generator.set_state(state)
            raise

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Write ``path`` all or nothing: yield a temporary path to write, then move it over ``path``.

    The temporary file is created (empty) in the folder of ``path``, with the same suffix (Keras
    requires ``.keras``) and the permissions a new file would get, or those of the file it
    replaces. When the block completes, the file is flushed to disk and renamed over ``path``
    in one step (``os.replace``); when the block raises, the temporary file is removed and
    ``path`` is untouched. A symbolic link ``path`` is followed: the file it points to is
    replaced. A file its user may not write is refused (``PermissionError``), as ``open`` would.

    Parameters
    ----------
    path : str or path-like
        The file to write.

    Yields
    ------
    partial : pathlib.Path
        The temporary file to write the content to (by name; it may be reopened).
    """
    target = Path(os.path.realpath(path))
    partial = _create_partial(target)
    try:
        yield partial
        _flush_to_disk(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _flush_folder(target.parent)


def _create_partial(target: Path) -> Path:
    """Create an empty, hidden, uniquely named file beside ``target``, with its permissions."""
    if target.exists() and not os.access(target, os.W_OK):
        # Renaming over it would work, but its owner made it read-only: as open() would.
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
    while True:
        partial = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial{target.suffix}")
        try:
            # 0o666 lets the umask decide, as for any new file.
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            # Name the file the caller asked for, not the hidden temporary one.
            raise type(exc)(exc.errno, exc.strerror, str(target)) from None
        break
    try:
        os.chmod(partial, stat.S_IMODE(target.stat().st_mode))
    except FileNotFoundError:
        pass
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _flush_to_disk(file: Path) -> None:
    descriptor = os.open(file, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _flush_folder(folder: Path) -> None:
    """Make the rename durable; not every platform or file system can sync a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
