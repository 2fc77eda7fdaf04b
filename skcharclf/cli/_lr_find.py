"""The ``lr-find`` sub-command: a learning-rate range test on a data set."""

from __future__ import annotations

import argparse

from skcharclf.cli import _common as common
from skcharclf.cli._common import CommandError
from skcharclf.cli._train import build_pipeline, read_config


def add_lr_find_parser(subparsers: argparse._SubParsersAction) -> None:
    lr_find = common.add_command(subparsers, "lr-find", _run_lr_find, reads_data=True)
    lr_find.add_argument("data", metavar="DATA", help="the labelled training images")
    common.add_pipeline_options(
        lr_find, config_help="pipeline parameters (.json, or .yaml / .yml), as train"
    )
    lr_find.add_argument(
        "--start-lr",
        type=_positive_float,
        default=1e-6,
        metavar="RATE",
        help="the first learning rate (default: 1e-6)",
    )
    lr_find.add_argument(
        "--end-lr",
        type=_positive_float,
        default=1.0,
        metavar="RATE",
        help="the last learning rate (default: 1)",
    )
    lr_find.add_argument(
        "--num-steps",
        type=common.positive_int,
        default=200,
        metavar="N",
        help="training steps (batches) from the first rate to the last (default: 200)",
    )
    lr_find.add_argument(
        "--plot", metavar="PNG", help="also draw the loss against the rate into this PNG file"
    )
    # build_pipeline reads these train options: lr-find trains no model and prints no progress
    lr_find.set_defaults(epochs=None, quiet=True, verbose=False)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _run_lr_find(args: argparse.Namespace) -> int:
    """Find a learning rate: train briefly while the rate grows, print the suggestion.

    Build the pipeline train would build (make_char_pipeline, or --config), run its steps
    before the classifier on DATA, then train a fresh network for --num-steps batches while
    the learning rate grows exponentially from --start-lr to --end-lr (skcharclf.lr_find).
    Print the suggested learning rate (a tenth of the rate at which the smoothed loss is
    lowest), to use as clf__learning_rate in a config; --plot draws the curve.
    """
    from skcharclf.lr_finder import lr_find, plot_lr_find

    if args.start_lr >= args.end_lr:
        raise CommandError(
            f"--start-lr {args.start_lr:g} must be smaller than --end-lr {args.end_lr:g}."
        )
    config = read_config(args.config) if args.config else {}
    pipeline = build_pipeline(config, args)
    plot = None if args.plot is None else common.check_writable(args.plot, "--plot")
    X, y = common.load_labelled(args.data, args, idx_labels=args.idx_labels)
    print(f"Loaded {common.describe_data(args.data, y)}", flush=True)
    print(
        f"Training {args.num_steps} step(s), learning rate {args.start_lr:g} to "
        f"{args.end_lr:g} ...",
        flush=True,
    )
    result = lr_find(
        pipeline, X, y, start_lr=args.start_lr, end_lr=args.end_lr, num_steps=args.num_steps
    )
    print(result)
    if result.steepest_rate is not None:
        print(f"The loss falls fastest at {result.steepest_rate:.3g}.")
    if plot is not None:
        plot_lr_find(result, plot)
        print(f"Wrote the plot to {args.plot!r}")
    return 0
