"""Hide known start-up noise that native libraries write to file descriptor 2.

TensorFlow's C++ runtime, absl and the image decoders under OpenCV write to the process's file
descriptor 2 directly, not through :data:`sys.stderr`, and some of them before any setting
(``TF_CPP_MIN_LOG_LEVEL``, OpenCV's log level) is read. :func:`filtered_stderr` points fd 2 at a
temporary file while such a call runs, then writes back to the real fd 2 every line that is not
one of the listed noise patterns: an unexpected message, a Python warning or a traceback printed
meanwhile still reaches the user, in order. A Python exception raised inside propagates
unchanged (its traceback is printed after fd 2 is restored).

The redirection is process-global (fd 2 is shared by all threads), so it is used only around a
short native call: the first TensorFlow import and a batch of image decodes. A lock serialises
uses from different threads; anything another thread writes to fd 2 meanwhile is replayed
afterwards, unless it matches a noise pattern. A temporary file, not a pipe, holds the output, so
a chatty library cannot block on a full pipe. If the process dies during the call, Python's
fatal-error report (:mod:`faulthandler`) still goes to the real stderr; the library's own lines
do not, so ``TF_CPP_MIN_LOG_LEVEL=0`` turns the filter off for the TensorFlow import (see
:func:`skcharclf._tf.import_keras`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["IMAGE_DECODER_NOISE", "TENSORFLOW_START_UP_NOISE", "filtered_stderr"]

# Each pattern matches one whole line (searched from its start) that a library prints on its
# own at start-up or while decoding, that the user can do nothing about. Keep the list narrow:
# a line that matches none of them is shown.
TENSORFLOW_START_UP_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        # absl's preamble, printed once by each TensorFlow shared library that logs before
        # absl::InitializeLog() (twice per process with TensorFlow 2.21).
        r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
        r"STDERR$",
        # The oneDNN notice (TensorFlow on CPUs with AVX-512 and similar), printed whatever
        # TF_CPP_MIN_LOG_LEVEL says. oneDNN stays on: see the installation guide.
        r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\.",
        # The CPU-feature notice and its continuation line.
        r"I\d{4} [\d:.]+ +\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"To enable the following instructions: .*rebuild TensorFlow with the appropriate "
        r"compiler flags\.$",
        # GPU builds of TensorFlow on a machine or container without a usable GPU.
        r"[EW]\d{4} [\d:.]+ +\d+ cuda_(dnn|blas|fft)\.cc:\d+\] Unable to register "
        r"cu(DNN|BLAS|FFT) factory",
        r"[IEW]\d{4} [\d:.]+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your "
        r"machine, GPU will not be used\.$",
    )
)

# What libpng and libjpeg print while OpenCV decodes a damaged file. The lines do not name the
# file; the loaders report every file they cannot decode themselves, by name.
IMAGE_DECODER_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"libpng (error|warning): ",
        r"Corrupt JPEG data: ",
        r"Premature end of JPEG file$",
    )
)

_STDERR_FD = 2
_lock = threading.RLock()
_per_thread = threading.local()


@contextmanager
def filtered_stderr(noise: Sequence[re.Pattern[str]]) -> Iterator[None]:
    """Capture file descriptor 2 for the duration of the block; replay all but ``noise``.

    Parameters
    ----------
    noise : sequence of compiled regular expressions
        A captured line is dropped when one of them matches it from its start
        (:meth:`re.Pattern.match`). An empty sequence captures nothing.

    Notes
    -----
    Process-global: see the module docstring. Nested uses in the same thread compose: an
    inner block whose patterns an outer one already drops costs nothing (a loader wraps a whole
    batch of files, each of which is read with its own ``filtered_stderr``); any other inner
    block replays into the outer one's capture.
    """
    active = _active_noise()
    if not noise or any(set(noise) <= outer for outer in active):
        yield
        return
    with _lock:
        _flush_stderr()
        try:
            saved = os.dup(_STDERR_FD)
        except OSError:  # no fd 2 at all (a daemon, pythonw): nothing to protect
            yield
            return
        report_crashes = not faulthandler.is_enabled()
        try:
            with tempfile.TemporaryFile() as capture:
                if report_crashes:
                    faulthandler.enable(file=saved, all_threads=True)
                redirected = False
                try:
                    os.dup2(capture.fileno(), _STDERR_FD)
                    redirected = True
                    active.append(set(noise))
                    yield
                finally:
                    if redirected:
                        active.pop()
                        _flush_stderr()
                        os.dup2(saved, _STDERR_FD)
                    if report_crashes:
                        faulthandler.disable()
                    capture.seek(0)
                    _write_all(_STDERR_FD, _without_noise(capture.read(), noise))
        finally:
            os.close(saved)


def _active_noise() -> list[set[re.Pattern[str]]]:
    """The pattern sets of this thread's enclosing ``filtered_stderr`` blocks, outermost first."""
    if not hasattr(_per_thread, "noise"):
        _per_thread.noise = []
    return _per_thread.noise


def _without_noise(data: bytes, noise: Sequence[re.Pattern[str]]) -> bytes:
    kept = [
        line
        for line in data.splitlines(keepends=True)
        if not any(p.match(line.decode("utf-8", "replace").rstrip("\r\n")) for p in noise)
    ]
    return b"".join(kept)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    # stderr closed or a broken pipe: there is nobody left to tell
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view) :]


def _flush_stderr() -> None:
    # Python's own buffered stderr: what was written before the block goes out before it, and
    # what was written inside lands in the capture (and is replayed).
    if sys.stderr is not None:
        # a closed or broken stream: nothing to keep in order
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


class quiet_image_decoders:
    """Silence the image decoders' messages while reading: the reader reports bad files itself.

    OpenCV's own log goes silent; libpng and libjpeg write to file descriptor 2 directly, so
    their lines are filtered there (:func:`filtered_stderr`). Enter it once per batch of files.
    """

    def __enter__(self) -> None:
        import cv2  # the TensorFlow side of this module does not need OpenCV

        self._level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        self._stderr = filtered_stderr(IMAGE_DECODER_NOISE)
        self._stderr.__enter__()

    def __exit__(self, *exc: object) -> None:
        import cv2

        try:
            self._stderr.__exit__(*exc)
        finally:
            cv2.utils.logging.setLogLevel(self._level)
