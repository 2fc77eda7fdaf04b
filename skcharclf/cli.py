"""The ``skcharclf`` command line (also ``python -m skcharclf``).

Each sub-command is registered by an ``_add_<name>_parser(subparsers)`` function that sets
the function run for it (``func``); :func:`main` parses the arguments, runs that function and
turns the errors a user can fix (bad file, bad parameter) into one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["main"]

_ERROR_STATUS = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skcharclf`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    status : int
        0 on success, 2 on a usage error or an error in the input (the message is printed
        to stderr as one line).

    Examples
    --------
    >>> from skcharclf.cli import main
    >>> main(["demo", "--help"])  # doctest: +SKIP
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
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr)
        return _ERROR_STATUS


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcharclf",
        description="Classify small, noisy, class-imbalanced character images.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo_parser(subparsers)
    return parser


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _demo_baseline(args: argparse.Namespace) -> Any:
    from skcharclf.pipeline import make_baseline_pipeline

    return make_baseline_pipeline(
        n_estimators=args.n_estimators, random_state=args.random_state, n_jobs=args.n_jobs
    )


# Models the demo can train: name -> (one-line description, factory taking the parsed args).
_DEMO_MODELS: dict[str, tuple[str, Callable[[argparse.Namespace], Any]]] = {
    "baseline": ("median denoise -> pad to 32x32 -> class-weighted random forest", _demo_baseline),
}


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
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
        default=["baseline"],
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
    return 0


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
