"""Where the package's progress messages go: one sink, as skorch's ``PrintLog(sink=print)``.

Library code never calls ``print``: an estimator with ``verbose > 0`` hands its progress
lines (a learning-curve diagnosis, per-fold scores) to :func:`report_progress`, which passes
them to the current sink, ``print`` (standard output) unless a caller such as the command
line chose another with :func:`progress_sink`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_SINK: ContextVar[Callable[[str], object]] = ContextVar("skcharclf_progress_sink", default=print)


def report_progress(message: str) -> None:
    """Send one progress message (possibly several lines) to the current sink."""
    _SINK.get()(message)


@contextmanager
def progress_sink(sink: Callable[[str], object]) -> Iterator[None]:
    """Send the progress messages reported inside the ``with`` block to ``sink``.

    Parameters
    ----------
    sink : callable
        Called with each message, a string without a trailing newline (``print``, a
        logger's ``info``, ``list.append``, ...).
    """
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)
