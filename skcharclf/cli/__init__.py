"""The ``skcharclf`` command line (also ``python -m skcharclf``).

Each sub-command lives in a private module (``_demo``, ``_train``, ``_apply``; what they share
in ``_common``) and is registered by an ``add_<name>_parser(subparsers)`` function that sets
the function run for it (``func``); :func:`main` parses the arguments, runs that function and
turns the errors a user can fix (missing or unreadable file, bad parameter, not a model file)
into one line on stderr and exit status 2; anything else is one line and exit status 1, with
the traceback under ``--debug``.

Sub-commands: ``demo``, ``analyze``, ``audit``, ``train``, ``lr-find``, ``evaluate``,
``predict`` and ``report``. Data is an image folder (one sub-folder per class, or
``<label>_<id>.png`` files with ``--labels filename``), an ``.npz`` archive or an IDX file,
read by :mod:`skcharclf.datasets`.
Models are the pickle-free ``.skc`` files of :mod:`skcharclf.persistence`.
"""

from __future__ import annotations

import argparse
import contextlib
import linecache
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from skcharclf._progress import progress_sink
from skcharclf.cli._apply import add_evaluate_parser, add_predict_parser, add_report_parser
from skcharclf.cli._audit import add_audit_parser
from skcharclf.cli._common import CommandError
from skcharclf.cli._demo import add_demo_parser
from skcharclf.cli._lr_find import add_lr_find_parser
from skcharclf.cli._train import add_analyze_parser, add_train_parser

__all__ = ["main"]

_ERROR_STATUS = 2
_UNEXPECTED_STATUS = 1
_INTERRUPTED_STATUS = 130


# Errors the user can fix: one line, exit status 2. ImportError covers a missing optional
# dependency (matplotlib for reports, PyYAML for YAML configs), which the message names.
_USER_ERRORS = (CommandError, OSError, ImportError)
# Packages whose ValueError / TypeError raised by a ``raise`` statement reports bad input: the
# checks of skcharclf and those of scikit-learn and imbalanced-learn it relies on.
_CHECKING_PACKAGES = ("skcharclf", "sklearn", "imblearn")


def _is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports a fault in the user's input rather than a bug.

    A ValueError or TypeError is the user's when a check raised it on purpose: its innermost
    frame is a ``raise`` statement of a checking package. The same types raised by Python
    itself (an unpacking or a call that does not fit) or by other libraries (NumPy, Keras)
    inside skcharclf's own work are bugs to report: status 1, traceback with ``--debug``.
    """
    if isinstance(exc, _USER_ERRORS):
        return True
    if not isinstance(exc, (ValueError, TypeError)) or exc.__traceback__ is None:
        return False
    frame = exc.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    package = str(frame.tb_frame.f_globals.get("__name__", "")).partition(".")[0]
    line = linecache.getline(frame.tb_frame.f_code.co_filename, frame.tb_lineno)
    return package in _CHECKING_PACKAGES and line.lstrip().startswith("raise")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skcharclf`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    status : int
        0 on success; 2 on a usage error or an error in the input (a missing or empty
        folder, an unreadable file, a file that is not a skcharclf model, a bad
        configuration key), printed to stderr as one line; 1 on an unexpected error (one
        line, or the traceback with ``--debug``).

    See Also
    --------
    skcharclf.persistence.save_pipeline : The model files that ``train`` writes.

    Examples
    --------
    >>> from skcharclf.cli import main
    >>> main(["train", "chars/", "--out", "chars.skc", "--epochs", "5"])  # doctest: +SKIP
    0
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else _ERROR_STATUS
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: choose a command", file=sys.stderr)
        return _ERROR_STATUS
    prefix = f"{parser.prog} {args.command}"
    try:
        # the estimators' progress (a verbose classifier's diagnosis) goes to standard output
        with _warnings_as_lines(prefix), progress_sink(print):
            return args.func(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return _INTERRUPTED_STATUS
    except BrokenPipeError:
        # The reader of the output has gone (``skcharclf predict ... | head``): stop quietly,
        # and keep Python from reporting the failed flush of stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        if _is_user_error(exc):
            print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
            return _ERROR_STATUS
        hint = "" if args.debug else " (run with --debug to see the traceback)"
        print(
            f"{prefix}: unexpected error: {type(exc).__name__}: {_one_line(exc)}{hint}",
            file=sys.stderr,
        )
        return _UNEXPECTED_STATUS


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


@contextlib.contextmanager
def _warnings_as_lines(prefix: str) -> Iterator[None]:
    """Print warnings as ``<prefix>: warning: <message>`` lines, without source locations,
    each message once per command.

    Deprecation warnings are meant for the developers of the libraries involved, not for
    someone running a command: they are not shown. Neither is the classifier's
    ``NoValidationWarning``: the commands that train print the diagnosis, whose
    ``"no_validation"`` finding says the same with what to do.
    """
    from skcharclf.diagnostics import NoValidationWarning

    shown: set[str] = set()

    def show(message: Any, category: Any, filename: Any, lineno: Any, *rest: Any) -> None:
        line = f"{prefix}: warning: {_one_line(message)}"
        # One computation can run twice (evaluate scores the predictions, and so does the
        # report it writes): say it once.
        if line not in shown:
            shown.add(line)
            print(line, file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", NoValidationWarning)
        warnings.showwarning = show
        yield


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcharclf",
        description="Classify small, noisy, class-imbalanced character images.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_demo_parser(subparsers)
    add_analyze_parser(subparsers)
    add_audit_parser(subparsers)
    add_train_parser(subparsers)
    add_lr_find_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_predict_parser(subparsers)
    add_report_parser(subparsers)
    return parser
