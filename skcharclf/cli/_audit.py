"""The ``audit`` sub-command: find the training images whose label is probably wrong."""

from __future__ import annotations

import argparse
import os
from typing import Any

from skcharclf.cli import _common as common
from skcharclf.cli._train import build_pipeline
from skcharclf.diagnostics._labels import FILTER_RULES, RANK_RULES


def add_audit_parser(subparsers: argparse._SubParsersAction) -> None:
    audit = common.add_command(subparsers, "audit", _run_audit, reads_data=True)
    audit.add_argument("data", metavar="DATA", help="the labelled images to audit")
    audit.add_argument("--report", metavar="HTML", help="write the audit page here")
    audit.add_argument(
        "--csv",
        metavar="CSV",
        help="write the findings here, to edit (action: keep, drop, relabel) and feed back "
        "with --corrections",
    )
    audit.add_argument(
        "--model",
        choices=["cnn", "forest"],
        default="cnn",
        help="the model whose out-of-fold probabilities judge the labels: the CNN pipeline "
        "(best, slow) or the random-forest baseline (fast) (default: %(default)s)",
    )
    audit.add_argument(
        "--cv",
        type=_folds,
        default=5,
        metavar="K",
        help="cross-validation folds (default: %(default)s)",
    )
    audit.add_argument(
        "--rank-by",
        choices=list(RANK_RULES),
        default=RANK_RULES[0],
        help="the score that orders the suspected images (default: %(default)s)",
    )
    audit.add_argument(
        "--filter-by",
        choices=list(FILTER_RULES),
        default=FILTER_RULES[0],
        help="which images are suspected (default: %(default)s: as many as the confident "
        "joint estimates, the lowest margins first)",
    )
    audit.add_argument(
        "--max-issues",
        type=common.positive_int,
        metavar="N",
        help="report at most N suspected images (default: all)",
    )
    common.add_pipeline_options(
        audit,
        epochs_help="CNN training epochs per fold",
        random_state_help="seed of the folds and the models (default: 0)",
    )
    common.add_corrections_option(audit)
    common.add_progress_options(audit)


def _folds(text: str) -> int:
    value = common.positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 folds, got {text!r}")
    return value


def _run_audit(args: argparse.Namespace) -> int:
    """Find the images whose label is probably wrong (confident learning).

    Cross-validate a model on DATA (the CNN pipeline, or the random forest with --model
    forest), rank the images whose out-of-fold probabilities contradict their label, and list
    copies of one image that carry different labels. --report writes an HTML page showing each
    suspected image beside typical images of its given and suggested classes; --csv writes
    the findings with an action column (keep, drop, relabel) to edit and pass back with
    --corrections CSV (or skcharclf.datasets.load_image_folder(corrections=...)).
    """
    from skcharclf.diagnostics import audit_labels

    report = None if args.report is None else common.check_writable(args.report, "--report")
    csv_path = None if args.csv is None else common.check_writable(args.csv, "--csv")
    seed = 0 if args.random_state is None else args.random_state
    model = _model(args, seed)
    X, y, files = common.load_labelled(
        args.data, args, idx_labels=args.idx_labels, corrections=args.corrections,
        with_files=True,
    )
    print(f"Loaded {common.describe_data(args.data, y)}", flush=True)
    print(f"Cross-validating {args.model} ({args.cv} folds) ...", flush=True)
    audit = audit_labels(
        model, X, y, cv=args.cv, random_state=seed, rank_by=args.rank_by,
        filter_by=args.filter_by, max_issues=args.max_issues,
    )
    print()
    print(str(audit))
    if report is not None:
        from skcharclf.report import make_audit_report

        make_audit_report(audit, X, report)
        print(f"\nWrote the audit page to {args.report!r}")
    if csv_path is not None:
        paths = None if files is None else [os.path.relpath(f, args.data) for f in files]
        audit.to_csv(csv_path, filenames=paths)
        print(f"Wrote the findings to {args.csv!r}: set each action to keep, drop or relabel, "
              "then pass the file with --corrections")
    return 0


def _model(args: argparse.Namespace, seed: int) -> Any:
    if args.model == "forest":
        from skcharclf.pipeline import make_baseline_pipeline

        return make_baseline_pipeline(random_state=seed)
    args.random_state = seed
    return build_pipeline({}, args)
