"""The ``skcharclf`` command line (also ``python -m skcharclf``).

Each sub-command is registered by an ``_add_<name>_parser(subparsers)`` function that sets
the function run for it (``func``); :func:`main` parses the arguments, runs that function and
turns the errors a user can fix (missing or unreadable file, bad parameter, not a model file)
into one line on stderr and exit status 2; anything else is one line and exit status 1, with
the traceback under ``--debug``.

Sub-commands: ``demo``, ``analyze``, ``train``, ``evaluate``, ``predict`` and ``report``. Data
is an image folder (one sub-folder per class, or ``<label>_<id>.png`` files with
``--labels filename``), an ``.npz`` archive or an IDX file, read by :mod:`skcharclf.datasets`.
Models are the pickle-free ``.skc`` files of :mod:`skcharclf.persistence`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import inspect
import json
import linecache
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

_ERROR_STATUS = 2
_UNEXPECTED_STATUS = 1
_INTERRUPTED_STATUS = 130
# the default of skcharclf.datasets.read_image (not imported here: --help stays fast)
_MAX_PIXELS = 2048 * 2048


class _CommandError(Exception):
    """An error in the user's input that the command line reports as one line (status 2)."""


# Errors the user can fix: one line, exit status 2. ImportError covers a missing optional
# dependency (matplotlib for reports, PyYAML for YAML configs), which the message names.
_USER_ERRORS = (_CommandError, OSError, ImportError)
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
        with _warnings_as_lines(prefix):
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


def _add_progress_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quiet", action="store_true", help="no progress output while the network trains"
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        help="Keras's progress bars even when the output is not a terminal (default: bars on "
        "a terminal, one line per epoch otherwise)",
    )


def _progress_verbosity(args: argparse.Namespace) -> int:
    """The classifier's ``verbose``: a progress bar on a terminal, else one line per epoch."""
    if args.quiet:
        return 0
    if args.verbose:
        return 1
    return 1 if sys.stdout.isatty() else 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcharclf",
        description="Classify small, noisy, class-imbalanced character images.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo_parser(subparsers)
    _add_analyze_parser(subparsers)
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_predict_parser(subparsers)
    _add_report_parser(subparsers)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """Options every sub-command takes (also accepted after the sub-command's name)."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command default must not overwrite ``skcharclf --debug COMMAND``.
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    return common


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _demo_baseline(args: argparse.Namespace) -> Any:
    from skcharclf.pipeline import make_baseline_pipeline

    return make_baseline_pipeline(
        n_estimators=args.n_estimators, random_state=args.random_state, n_jobs=args.n_jobs
    )


def _demo_cnn(args: argparse.Namespace) -> Any:
    from skcharclf.pipeline import make_char_pipeline

    # --quick (tests, smoke checks): two epochs of a smaller network
    quick = {"size": (16, 16), "filters": (8, 16), "epochs": 2} if args.quick else {}
    return make_char_pipeline(
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=_progress_verbosity(args),
        **quick,
    )


# Models the demo can train: name -> (one-line description, factory taking the parsed args).
_DEMO_MODELS: dict[str, tuple[str, Callable[[argparse.Namespace], Any]]] = {
    "baseline": ("median denoise -> pad to 32x32 -> class-weighted random forest", _demo_baseline),
    "cnn": (
        "median denoise -> pad to 32x32 -> rare-class augmentation -> residual CNN",
        _demo_cnn,
    ),
}


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        parents=[_common_options()],
        help="train and evaluate on the built-in noisy, imbalanced digit characters",
        description=(
            "Load the built-in digit characters (rare classes 2, 5 and 8), hold out a "
            "stratified test split, train the chosen models and print their scores."
        ),
    )
    demo.add_argument(
        "--models",
        nargs="+",
        choices=list(_DEMO_MODELS),
        default=["baseline", "cnn"],
        help="models to train (default: %(default)s)",
    )
    demo.add_argument(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="fraction of the data held out for testing (default: %(default)s)",
    )
    demo.add_argument(
        "--n-estimators",
        type=_positive_int,
        default=300,
        help="trees in the baseline random forest (default: %(default)s)",
    )
    demo.add_argument("--random-state", type=int, default=0, help="seed of data, split and models")
    demo.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="parallel jobs, -1 for all cores (default: %(default)s)",
    )
    demo.add_argument(
        "--report",
        default="skcharclf-demo-report.html",
        metavar="HTML",
        help="write the HTML report of the last model here, '' for none (default: %(default)s)",
    )
    _add_progress_options(demo)
    # A smaller, faster run for tests and smoke checks.
    demo.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from sklearn.model_selection import train_test_split

    from skcharclf.datasets import load_digit_chars

    if args.quick:
        args.n_estimators = min(args.n_estimators, 60)
    data = load_digit_chars(random_state=args.random_state)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data,
        data.target,
        test_size=args.test_size,
        stratify=data.target,
        random_state=args.random_state,
    )
    _print_data_summary(data, len(y_train), len(y_test), args.test_size)

    results = {}
    for name in args.models:
        description, factory = _DEMO_MODELS[name]
        print(f"Training {name} ({description}) ...", flush=True)
        results[name] = _fit_and_evaluate(factory(args), X_train, y_train, X_test, y_test)
    print()
    print(_format_scores(results))
    print()
    print(_format_recalls(results, y_train, y_test, rare=set(data.rare_classes.tolist())))
    if args.report:
        _write_demo_report(
            args.report, results[args.models[-1]]["model"], X_test, y_test, X_train, y_train
        )
    return 0


def _write_demo_report(path: str, model: Any, X_test, y_test, X_train, y_train) -> None:
    """Write the HTML report of ``model``; without matplotlib, say how to get it instead."""
    try:
        from skcharclf.report import make_report

        make_report(
            model, X_test, y_test, path, X_train=X_train, y_train=y_train, title="skcharclf demo"
        )
    except ImportError as exc:
        print(f"\nNo report written: {exc}")
        return
    print(f"\nWrote the report to {path!r}")


def _fit_and_evaluate(
    model: Any,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
) -> dict[str, Any]:
    """Fit ``model`` and score it on the test split.

    Returns
    -------
    scores : dict
        ``accuracy``, ``balanced_accuracy``, ``f1_macro`` (floats), ``recall`` (dict
        class -> recall), ``fit_time`` (seconds), ``model`` (the fitted model) and
        ``y_pred``.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    y_pred = model.predict(X_test)
    classes = np.unique(y_test)
    recalls = recall_score(y_test, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": accuracy_score(y_test, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_test, y_pred),
        "f1_macro": f1_score(y_test, y_pred, average="macro", zero_division=0),
        "recall": dict(zip(classes.tolist(), recalls.tolist(), strict=True)),
        "fit_time": fit_time,
        "model": model,
        "y_pred": y_pred,
    }


def _format_scores(results: dict[str, dict[str, Any]]) -> str:
    """One row per model: accuracy, balanced accuracy, macro-F1 and fit time."""
    header = ["model", "accuracy", "balanced acc.", "macro-F1", "fit time (s)"]
    rows = [
        [
            name,
            f"{r['accuracy']:.3f}",
            f"{r['balanced_accuracy']:.3f}",
            f"{r['f1_macro']:.3f}",
            f"{r['fit_time']:.1f}",
        ]
        for name, r in results.items()
    ]
    return _table(header, rows)


def _format_recalls(
    results: dict[str, dict[str, Any]],
    y_train: np.ndarray,
    y_test: np.ndarray,
    rare: set[Any] = frozenset(),
) -> str:
    """One row per class: training and test counts and each model's recall."""
    classes, n_test = np.unique(y_test, return_counts=True)
    train_counts = dict(zip(*np.unique(y_train, return_counts=True), strict=True))
    header = ["class", "train", "test", *(f"recall {name}" for name in results)]
    rows = [
        [
            f"{c} (rare)" if c in rare else str(c),
            str(train_counts.get(c, 0)),
            str(n),
            *(f"{r['recall'][c]:.3f}" for r in results.values()),
        ]
        for c, n in zip(classes.tolist(), n_test.tolist(), strict=True)
    ]
    return "Per-class recall on the test split\n" + _table(header, rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-align the first column, right-align the others."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _print_data_summary(data: Any, n_train: int, n_test: int, test_size: float) -> None:
    counts = np.bincount(data.target, minlength=len(data.target_names))
    widths = [image.shape[1] for image in data.data]
    heights = {image.shape[0] for image in data.data}
    rare = set(data.rare_classes.tolist())
    print(
        f"Built-in digit characters: {len(data.target)} images, {len(counts)} classes, "
        f"height {'/'.join(map(str, sorted(heights)))}, width {min(widths)}-{max(widths)}"
    )
    print(
        "Class counts: "
        + "  ".join(f"{c}:{n}{'*' if c in rare else ''}" for c, n in enumerate(counts))
        + "   (* rare)"
    )
    print(f"Imbalance ratio (largest / smallest class): {counts.max() / counts.min():.1f}")
    print(
        f"Stratified test split: {test_size:g} of each class -> {n_train} training / "
        f"{n_test} test images"
    )
    print()


def _fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# --------------------------------------------------------------------------------------------
# Data and model files
# --------------------------------------------------------------------------------------------


def _data_options() -> argparse.ArgumentParser:
    """Options telling how to read a DATA argument."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("data options")
    group.add_argument(
        "--labels",
        choices=["folders", "filename"],
        default="folders",
        help="image folders: labels from class sub-folders, or from '<label>_<id>.png' file "
        "names (default: %(default)s)",
    )
    _add_on_error_option(group)
    _add_max_pixels_option(group)
    group.add_argument(
        "--idx-labels",
        metavar="FILE",
        help="IDX data: the label file (default: the '*labels-idx1*' file next to the "
        "'*images-idx3*' file, if any)",
    )
    group.add_argument(
        "--allow-pickle",
        action="store_true",
        help=".npz data: allow object arrays (ragged images); this runs code from the file, "
        "so only use it for files you trust",
    )
    return options


def _add_on_error_option(group: Any) -> None:
    group.add_argument(
        "--on-error",
        choices=["raise", "warn", "skip"],
        default="raise",
        help="unreadable image files: stop with an error, or leave them out with a warning or "
        "silently (default: %(default)s)",
    )


def _add_max_pixels_option(group: Any) -> None:
    group.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=_MAX_PIXELS,
        metavar="N",
        help="image files with more pixels (height x width) are unreadable; checked in the "
        "file header before decoding (default: %(default)s, 2048 x 2048)",
    )


def _load_labelled(
    path_text: str, args: argparse.Namespace, *, idx_labels: str | None = None
) -> tuple[Any, np.ndarray]:
    """Read the images and labels of a DATA argument with :mod:`skcharclf.datasets`."""
    from skcharclf import datasets

    path = Path(path_text)
    if not path.exists():
        raise _CommandError(f"data {path_text!r} does not exist.")
    if path.is_dir():
        if args.labels == "folders":
            _check_class_folders(path)
        return datasets.load_image_folder(
            path,
            labels=args.labels,
            on_error=args.on_error,
            max_pixels=args.max_pixels,
            return_X_y=True,
        )
    if path.suffix.lower() in {f".{ext}" for ext in datasets._IMAGE_EXTENSIONS}:
        raise _CommandError(
            f"data {path_text!r} is a single image; give a folder of labelled images, an "
            ".npz archive or an IDX file."
        )
    if path.suffix.lower() == ".npz":
        X, y = datasets.load_npz(path, allow_pickle=args.allow_pickle, return_X_y=True)
        hint = "store them as an array named 'y', 'target' or 'labels'"
    else:
        labels = idx_labels or _idx_labels_beside(path)
        try:
            X, y = datasets.load_idx(path, labels, return_X_y=True)
        except ValueError as exc:
            raise _CommandError(
                f"data {path_text!r} is not a folder, an .npz archive or a valid IDX file: {exc}"
            ) from exc
        hint = "pass --idx-labels FILE"
    if y is None:
        raise _CommandError(f"data {path_text!r} holds images but no labels; {hint}.")
    return X, y


def _check_class_folders(path: Path) -> None:
    """A folder of image files without class sub-folders: say which option reads it (the
    loader's own message names the Python argument)."""
    from skcharclf import datasets

    entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
    extensions = {f".{ext}" for ext in datasets._IMAGE_EXTENSIONS}
    if not any(entry.is_dir() for entry in entries) and any(
        entry.is_file() and entry.suffix.lower() in extensions for entry in entries
    ):
        raise _CommandError(
            f"{str(path)!r} has no class sub-folder. It holds image files directly: pass "
            "--labels filename to read the labels from '<label>_<id>.png' file names."
        )


def _idx_labels_beside(images: Path) -> Path | None:
    """MNIST's naming: ``train-labels-idx1-ubyte`` lies beside ``train-images-idx3-ubyte``."""
    if "images-idx3" not in images.name:
        return None
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    return labels if labels.is_file() else None


def _describe_data(path_text: str, y: np.ndarray) -> str:
    classes, counts = np.unique(y, return_counts=True)
    pairs = [f"{c}: {n}" for c, n in zip(classes.tolist(), counts.tolist(), strict=True)]
    return (
        f"{len(y)} images in {len(classes)} classes from {path_text!r} {_short_list(pairs, '()')}"
    )


def _load_model(path_text: str) -> Any:
    from skcharclf.persistence import load_pipeline

    return load_pipeline(path_text)


def _check_writable(path_text: str, option: str) -> Path:
    """Fail before a long computation if ``path_text`` cannot be written."""
    path = Path(path_text)
    if path.is_dir():
        raise _CommandError(f"{option} {path_text!r} is a folder; give a file name.")
    if not path.parent.is_dir():
        raise _CommandError(f"the folder of {option} {path_text!r} does not exist.")
    try:
        # a file the size of nothing, in the same folder: what writing the output needs
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, os.strerror(13))
    except OSError as exc:
        raise _CommandError(
            f"{option} {path_text!r} cannot be written ({exc.strerror or exc})."
        ) from exc
    return path


def _check_known_labels(model: Any, y: np.ndarray, path_text: str) -> None:
    unknown = sorted(set(np.unique(y).tolist()) - set(np.asarray(model.classes_).tolist()), key=str)
    if unknown:
        raise _CommandError(
            f"data {path_text!r} has labels the model does not know: {_short_list(unknown)}; "
            f"the model's classes are {_short_list(np.asarray(model.classes_).tolist())}."
        )


def _short_list(values: Sequence[Any], brackets: str = "[]", limit: int = 10) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return f"{brackets[0]}{shown}{', ...' if len(values) > limit else ''}{brackets[1]}"


# --------------------------------------------------------------------------------------------
# analyze
# --------------------------------------------------------------------------------------------


def _add_analyze_parser(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser(
        "analyze",
        parents=[_common_options(), _data_options()],
        help="analyse a labelled data set: balance, sizes, noise, duplicates, advice",
        description=(
            "Print the dataset analysis of skcharclf.analyze_dataset: class counts and "
            "imbalance, image sizes, polarity, noise per class, duplicates, and what to do "
            "about them. DATA is a folder of class sub-folders (or of '<label>_<id>.png' "
            "files with --labels filename), an .npz archive or an IDX image file."
        ),
    )
    analyze.add_argument("data", metavar="DATA", help="the labelled images")
    analyze.add_argument(
        "--test",
        metavar="DATA",
        help="a test set to check for images shared with DATA (leakage)",
    )
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
    analyze.set_defaults(func=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from skcharclf.diagnostics import analyze_dataset

    X, y = _load_labelled(args.data, args, idx_labels=args.idx_labels)
    X_test = None if args.test is None else _load_labelled(args.test, args)[0]
    report = analyze_dataset(X, y, X_test=X_test)
    print(json.dumps(report.to_dict(), indent=2) if args.json else str(report))
    return 0


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        parents=[_common_options(), _data_options()],
        help="train the recommended CNN pipeline (or a configured one) and save it",
        description=(
            "Train skcharclf.make_char_pipeline() on DATA, print the diagnosis of its learning "
            "curves, and save it as a pickle-free model file. --config sets pipeline "
            "parameters: a flat JSON or YAML mapping of make_char_pipeline arguments and/or "
            'pipeline parameters, e.g. {"clf__learning_rate": 0.001, "denoise__method": '
            '"median"}.'
        ),
    )
    train.add_argument("data", metavar="DATA", help="the labelled training images")
    train.add_argument(
        "--out", required=True, metavar="MODEL", help="model file to write (e.g. chars.skc)"
    )
    train.add_argument(
        "--config", metavar="FILE", help="pipeline parameters (.json, or .yaml / .yml)"
    )
    train.add_argument(
        "--epochs", type=_positive_int, metavar="N", help="training epochs (overrides the config)"
    )
    train.add_argument(
        "--random-state",
        type=int,
        metavar="N",
        help="seed of the augmentation and the network (overrides the config)",
    )
    _add_progress_options(train)
    train.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from skcharclf.diagnostics import format_findings
    from skcharclf.persistence import save_pipeline

    config = _read_config(args.config) if args.config else {}
    pipeline = _build_pipeline(config, args)
    out = _check_writable(args.out, "--out")
    X, y = _load_labelled(args.data, args, idx_labels=args.idx_labels)
    print(f"Loaded {_describe_data(args.data, y)}", flush=True)
    steps = " -> ".join(
        f"{name}={step if isinstance(step, str) else type(step).__name__}"
        for name, step in pipeline.steps
    )
    print(f"Pipeline: {steps}", flush=True)
    print(f"Training for {pipeline.get_params()['clf__epochs']} epoch(s) ...", flush=True)
    start = time.perf_counter()
    _fit(pipeline, X, y)
    print(f"Trained in {time.perf_counter() - start:.1f} s", flush=True)
    save_pipeline(pipeline, out)
    dropped = [name for name, step in pipeline.steps if hasattr(step, "fit_resample")]
    note = f" (without the training-only step(s) {', '.join(dropped)})" if dropped else ""
    print(f"Saved the model to {args.out!r}{note}")
    classifier = pipeline.steps[-1][1]
    findings = getattr(classifier, "diagnosis_", None)
    # a verbose classifier has printed its diagnosis (under the same heading) at the end of fit
    if findings is not None and not getattr(classifier, "verbose", 0):
        print()
        print("Diagnosis of the learning curves")
        print(format_findings(findings))
    return 0


def _fit(pipeline: Any, X: Any, y: np.ndarray) -> None:
    from skcharclf.classifier import TrainingDivergedError

    try:
        pipeline.fit(X, y)
    except TrainingDivergedError as exc:
        # the message says which epoch diverged and what to change: an input error
        raise _CommandError(str(exc)) from exc


def _read_config(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    if not path.is_file():
        raise _CommandError(f"config file {path_text!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _CommandError(
            f"config file {path_text!r} is not UTF-8 text (byte {exc.start} cannot be decoded); "
            "save it as UTF-8."
        ) from exc
    if suffix == ".json":
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _CommandError(f"config file {path_text!r} is not valid JSON: {exc}") from exc
    elif suffix in {".yaml", ".yml"}:
        try:
            import yaml
        except ImportError:
            raise _CommandError(
                f"reading the YAML config {path_text!r} needs PyYAML: install it with "
                "'pip install pyyaml', or write the config as JSON."
            ) from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _CommandError(f"config file {path_text!r} is not valid YAML: {exc}") from exc
    else:
        raise _CommandError(
            f"config file {path_text!r} must end in .json, .yaml or .yml, not {suffix!r}."
        )
    if config is None:
        return {}
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise _CommandError(
            f"config file {path_text!r} must hold a mapping of parameter names to values, "
            f"not a {type(config).__name__}."
        )
    return config


def _build_pipeline(config: dict[str, Any], args: argparse.Namespace) -> Any:
    """``make_char_pipeline`` with the config's arguments, then its pipeline parameters set.

    Keys that ``make_char_pipeline`` takes (its own arguments, and the classifier parameters
    it passes on) go to the factory; the others are pipeline parameters
    (``<step>__<parameter>``) given to ``set_params``. Command-line options override both.
    """
    from skcharclf.pipeline import make_char_pipeline

    arguments, classifier_arguments = _factory_arguments(make_char_pipeline)
    taken = {*arguments, *classifier_arguments}
    pipeline = make_char_pipeline(**{k: v for k, v in config.items() if k in taken})
    known = pipeline.get_params(deep=True)
    for key, value in config.items():
        if key in taken:
            continue
        try:
            pipeline.set_params(**{key: value})
        except ValueError as exc:
            if key in known:  # a known parameter with a bad value: keep the estimator's words
                raise
            raise _CommandError(
                _unknown_key_message(key, arguments, [*classifier_arguments, *known], pipeline)
            ) from exc
    overrides = {}
    if args.epochs is not None:
        overrides["clf__epochs"] = args.epochs
    if args.random_state is not None:
        # the seed of every step that draws random numbers (the augmenter and the network)
        overrides.update(
            {
                key: args.random_state
                for key in pipeline.get_params(deep=True)
                if key.count("__") == 1 and key.endswith("__random_state")
            }
        )
    if args.quiet or args.verbose or not {"verbose", "clf__verbose"} & set(config):
        overrides["clf__verbose"] = _progress_verbosity(args)
    pipeline.set_params(**overrides)
    return pipeline


def _factory_arguments(factory: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """The named keyword arguments of ``factory``, and the classifier parameters it passes on
    to :class:`~skcharclf.KerasCharClassifier` through its ``**classifier_params``."""
    from skcharclf.classifier import KerasCharClassifier

    parameters = inspect.signature(factory).parameters.values()
    named = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    classifier = inspect.signature(KerasCharClassifier).parameters
    return named, [name for name in classifier if name not in named]


def _unknown_key_message(
    key: str, arguments: list[str], other_keys: list[str], pipeline: Any
) -> str:
    close = difflib.get_close_matches(key, [*arguments, *other_keys], n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    steps = ", ".join(name for name, _ in pipeline.steps)
    return (
        f"unknown config key {key!r}{guess}; valid keys are make_char_pipeline arguments "
        f"({', '.join(arguments)}), KerasCharClassifier parameters (epochs, learning_rate, "
        f"...) and pipeline parameters <step>__<parameter> with the steps {steps}."
    )


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def _add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        parents=[_common_options(), _data_options()],
        help="score a saved model on labelled data",
        description=(
            "Print the accuracy, balanced accuracy, macro-F1 and the per-class precision, "
            "recall and F1 of MODEL on DATA, and optionally write the HTML report."
        ),
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    evaluate.add_argument("data", metavar="DATA", help="the labelled test images")
    evaluate.add_argument("--report", metavar="HTML", help="also write the HTML report here")
    evaluate.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    report = None if args.report is None else _check_writable(args.report, "--report")
    model = _load_model(args.model)
    X, y = _load_labelled(args.data, args, idx_labels=args.idx_labels)
    _check_known_labels(model, y, args.data)
    y_pred = model.predict(X)
    classes = np.asarray(model.classes_)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=classes, zero_division=0
    )
    print(f"Evaluated on {_describe_data(args.data, y)}")
    print()
    scores = {
        "accuracy": accuracy_score(y, y_pred),
        "balanced accuracy": balanced_accuracy_score(y, y_pred),
        "macro-F1": f1_score(y, y_pred, average="macro", zero_division=0),
    }
    width = max(map(len, scores))
    for name, value in scores.items():
        print(f"{name.ljust(width)}  {value:.3f}")
    print()
    rows = [
        [str(c), f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(int(n))]
        for c, p, r, f, n in zip(classes.tolist(), precision, recall, f1, support, strict=True)
    ]
    print(_table(["class", "precision", "recall", "F1", "support"], rows))
    if report is not None:
        from skcharclf.report import make_report

        make_report(model, X, y, report)
        print()
        print(f"Wrote the report to {args.report!r}")
    return 0


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _add_predict_parser(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser(
        "predict",
        parents=[_common_options()],
        help="predict the class of image files",
        description=(
            "Predict every image file in a folder (searched recursively) or a single image "
            "file. Writes CSV with the columns path, prediction (and proba_<class> with "
            "--proba) to --output, or to stdout."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    predict.add_argument("images", metavar="IMAGES_OR_FOLDER", help="an image file or a folder")
    predict.add_argument("--proba", action="store_true", help="add the class probabilities")
    predict.add_argument("--output", metavar="CSV", help="file to write (default: stdout)")
    _add_on_error_option(predict)
    _add_max_pixels_option(predict)
    predict.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from skcharclf._atomic import atomic_output

    output = None if args.output is None else _check_writable(args.output, "--output")
    files, images = _read_images(Path(args.images), args.on_error, args.max_pixels)
    model = _load_model(args.model)
    classes = np.asarray(model.classes_).tolist()
    header = ["path", "prediction"]
    columns = [[str(file) for file in files], model.predict(images).tolist()]
    if args.proba:
        header += [f"proba_{c}" for c in classes]
        columns += [
            [f"{p:.6g}" for p in column] for column in np.asarray(model.predict_proba(images)).T
        ]
    rows = list(zip(*columns, strict=True))
    if output is None:
        csv.writer(sys.stdout, lineterminator="\n").writerows([header, *rows])
        return 0
    with (
        atomic_output(output) as partial,
        partial.open("w", newline="", encoding="utf-8") as handle,
    ):
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    print(f"Wrote {len(rows)} predictions to {args.output!r}")
    return 0


def _read_images(
    path: Path, on_error: str, max_pixels: int = _MAX_PIXELS
) -> tuple[list[Path], list[np.ndarray]]:
    """The image files under ``path`` (recursively, sorted) and their gray images."""
    from skcharclf import datasets

    if not path.exists():
        raise _CommandError(f"{str(path)!r} does not exist.")
    extensions = {f".{ext}" for ext in datasets._IMAGE_EXTENSIONS}
    if path.is_dir():
        # everything but folders: special files named like images are reported, not skipped
        files = sorted(
            file
            for file in path.rglob("*")
            if not file.is_dir()
            and file.suffix.lower() in extensions
            and not any(part.startswith(".") for part in file.relative_to(path).parts)
        )
        if not files:
            raise _CommandError(
                f"no image file ({', '.join(datasets._IMAGE_EXTENSIONS)}) in {str(path)!r}."
            )
    else:
        files = [path]
    kept, images, skipped = [], [], []
    with datasets._quiet_opencv():
        for file in files:
            try:
                image = datasets.read_image(file, max_pixels=max_pixels)
            except (OSError, ValueError) as exc:
                if on_error == "raise":
                    reason = (
                        f"{str(file)!r}: it cannot be opened ({exc.strerror or exc})."
                        if isinstance(exc, OSError)
                        else str(exc)
                    )
                    raise _CommandError(
                        f"{reason} Pass --on-error warn or skip to leave such files out."
                    ) from exc
                skipped.append(str(file))
                continue
            kept.append(file)
            images.append(image)
    if skipped and on_error == "warn":
        warnings.warn(
            f"{len(skipped)} unreadable file(s) left out: {_short_list(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    if not images:
        raise _CommandError(f"no readable image file in {str(path)!r}.")
    return kept, images


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report",
        parents=[_common_options(), _data_options()],
        help="write the HTML report of a saved model on labelled data",
        description=(
            "Write skcharclf.make_report: summary scores, class balance, sample images, "
            "learning curves with their diagnosis, confusion matrix, per-class scores, the "
            "most confident mistakes and the dataset analysis, as one self-contained HTML "
            "file."
        ),
    )
    report.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    report.add_argument("data", metavar="DATA", help="the labelled test images")
    report.add_argument("--out", required=True, metavar="HTML", help="the HTML file to write")
    report.add_argument(
        "--train",
        metavar="DATA",
        help="the training images: shown in the balance and sample sections, analysed, and "
        "checked for images shared with DATA",
    )
    report.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from skcharclf.report import make_report

    out = _check_writable(args.out, "--out")
    model = _load_model(args.model)
    X, y = _load_labelled(args.data, args, idx_labels=args.idx_labels)
    X_train, y_train = (None, None) if args.train is None else _load_labelled(args.train, args)
    make_report(model, X, y, out, X_train, y_train)
    print(f"Wrote the report to {args.out!r}")
    return 0
