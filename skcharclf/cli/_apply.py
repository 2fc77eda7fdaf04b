"""The sub-commands that apply a saved model: ``evaluate``, ``predict`` and ``report``."""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from skcharclf.cli import _common as common
from skcharclf.cli._common import CommandError

# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    evaluate = common.add_command(subparsers, "evaluate", _run_evaluate, reads_data=True)
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    evaluate.add_argument("data", metavar="DATA", help="the labelled test images")
    evaluate.add_argument("--report", metavar="HTML", help="also write the HTML report here")


def _run_evaluate(args: argparse.Namespace) -> int:
    """Score a saved model on labelled data.

    Print the accuracy, balanced accuracy, macro-F1 and the per-class precision, recall and F1
    of MODEL on DATA, and optionally write the HTML report.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    report = None if args.report is None else common.check_writable(args.report, "--report")
    model = common.load_model(args.model)
    X, y = common.load_labelled(args.data, args, idx_labels=args.idx_labels)
    common.check_known_labels(model, y, args.data)
    y_pred = model.predict(X)
    classes = np.asarray(model.classes_)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=classes, zero_division=0
    )
    print(f"Evaluated on {common.describe_data(args.data, y)}")
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
    print(common.table(["class", "precision", "recall", "F1", "support"], rows))
    if report is not None:
        from skcharclf.report import make_report

        make_report(model, X, y, report)
        print()
        print(f"Wrote the report to {args.report!r}")
    return 0


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def add_predict_parser(subparsers: argparse._SubParsersAction) -> None:
    predict = common.add_command(subparsers, "predict", _run_predict)
    predict.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    predict.add_argument("images", metavar="IMAGES_OR_FOLDER", help="an image file or a folder")
    predict.add_argument("--proba", action="store_true", help="add the class probabilities")
    predict.add_argument("--output", metavar="CSV", help="file to write (default: stdout)")
    common.add_image_file_options(predict)


def _run_predict(args: argparse.Namespace) -> int:
    """Predict the class of image files.

    Predict every image file in a folder (searched recursively) or a single image file. Writes
    CSV with the columns path, prediction (and proba_<class> with --proba) to --output, or to
    stdout.
    """
    from skcharclf._atomic import atomic_output

    output = None if args.output is None else common.check_writable(args.output, "--output")
    files, images = read_images(Path(args.images), args.on_error, args.max_pixels)
    model = common.load_model(args.model)
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


def read_images(
    path: Path, on_error: str, max_pixels: int = common.MAX_PIXELS
) -> tuple[list[Path], list[np.ndarray]]:
    """The image files under ``path`` (recursively, sorted) and their gray images."""
    from skcharclf import datasets
    from skcharclf._quiet import quiet_image_decoders

    if not path.exists():
        raise CommandError(f"{str(path)!r} does not exist.")
    if path.is_dir():
        files = datasets.list_image_files(path, recursive=True)
        if not files:
            raise CommandError(
                f"no image file ({', '.join(datasets.IMAGE_EXTENSIONS)}) in {str(path)!r}."
            )
    else:
        files = [path]
    kept, images, skipped = [], [], []
    with quiet_image_decoders():
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
                    raise CommandError(
                        f"{reason} Pass --on-error warn or skip to leave such files out."
                    ) from exc
                skipped.append(str(file))
                continue
            kept.append(file)
            images.append(image)
    if skipped and on_error == "warn":
        warnings.warn(
            f"{len(skipped)} unreadable file(s) left out: {common.short_list(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    if not images:
        raise CommandError(f"no readable image file in {str(path)!r}.")
    return kept, images


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    report = common.add_command(subparsers, "report", _run_report, reads_data=True)
    report.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    report.add_argument("data", metavar="DATA", help="the labelled test images")
    report.add_argument("--out", required=True, metavar="HTML", help="the HTML file to write")
    report.add_argument(
        "--train",
        metavar="DATA",
        help="the training images: shown in the balance and sample sections, analysed, and "
        "checked for images shared with DATA",
    )


def _run_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a saved model on labelled data.

    Write skcharclf.make_report: summary scores, class balance, sample images, learning curves
    with their diagnosis, confusion matrix, per-class scores, the most confident mistakes and
    the dataset analysis, as one self-contained HTML file.
    """
    from skcharclf.report import make_report

    out = common.check_writable(args.out, "--out")
    model = common.load_model(args.model)
    X, y = common.load_labelled(args.data, args, idx_labels=args.idx_labels)
    X_train, y_train = (None, None)
    if args.train is not None:
        X_train, y_train = common.load_labelled(args.train, args)
    make_report(model, X, y, out, X_train, y_train)
    print(f"Wrote the report to {args.out!r}")
    return 0
