"""The ``demo`` sub-command: the built-in data, a baseline and the CNN, side by side."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from skcharclf.cli import _common as common

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
        verbose=common.progress_verbosity(args),
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


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = common.add_command(subparsers, "demo", _run_demo)
    demo.add_argument(
        "--models",
        nargs="+",
        choices=list(_DEMO_MODELS),
        default=["baseline", "cnn"],
        help="models to train (default: %(default)s)",
    )
    demo.add_argument(
        "--test-size",
        type=common.fraction,
        default=0.25,
        help="fraction of the data held out for testing (default: %(default)s)",
    )
    demo.add_argument(
        "--n-estimators",
        type=common.positive_int,
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
    common.add_progress_options(demo)
    # A smaller, faster run for tests and smoke checks.
    demo.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)


def _run_demo(args: argparse.Namespace) -> int:
    """Train and evaluate on the built-in noisy, imbalanced digit characters.

    Load the built-in digit characters (rare classes 2, 5 and 8), hold out a stratified test
    split, train the chosen models and print their scores.
    """
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
    return common.table(header, rows)


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
    return "Per-class recall on the test split\n" + common.table(header, rows)


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
