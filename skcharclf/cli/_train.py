"""The ``analyze`` and ``train`` sub-commands, and the configuration files ``train`` reads."""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from skcharclf._utils import read_utf8_text
from skcharclf.cli import _common as common
from skcharclf.cli._common import CommandError

# --------------------------------------------------------------------------------------------
# analyze
# --------------------------------------------------------------------------------------------


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> None:
    analyze = common.add_command(subparsers, "analyze", _run_analyze, reads_data=True)
    analyze.add_argument("data", metavar="DATA", help="the labelled images")
    analyze.add_argument(
        "--test",
        metavar="DATA",
        help="a test set to check for images shared with DATA (leakage)",
    )
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
    common.add_corrections_option(analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    """Analyse a labelled data set: balance, sizes, noise, duplicates, advice.

    Print the dataset analysis of skcharclf.analyze_dataset: class counts and imbalance, image
    sizes, polarity, noise per class, duplicates, and what to do about them. DATA is a folder
    of class sub-folders (or of '<label>_<id>.png' files with --labels filename), an .npz
    archive or an IDX image file.
    """
    from skcharclf.diagnostics import analyze_dataset

    X, y = common.load_labelled(
        args.data, args, idx_labels=args.idx_labels, corrections=args.corrections
    )
    X_test = None if args.test is None else common.load_labelled(args.test, args)[0]
    report = analyze_dataset(X, y, X_test=X_test)
    print(json.dumps(report.to_dict(), indent=2) if args.json else str(report))
    return 0


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    train = common.add_command(subparsers, "train", _run_train, reads_data=True)
    train.add_argument("data", metavar="DATA", help="the labelled training images")
    train.add_argument(
        "--out", required=True, metavar="MODEL", help="model file to write (e.g. chars.skc)"
    )
    common.add_pipeline_options(
        train,
        config_help="pipeline parameters (.json, or .yaml / .yml)",
        epochs_help="training epochs (overrides the config)",
    )
    train.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="save the training state there after every epoch; run the same command again "
        "after an interruption to continue where it stopped",
    )
    common.add_corrections_option(train)
    common.add_progress_options(train)


def _run_train(args: argparse.Namespace) -> int:
    """Train the recommended CNN pipeline (or a configured one) and save it.

    Train skcharclf.make_char_pipeline() on DATA, print the diagnosis of its learning curves,
    and save it as a pickle-free model file. --config sets pipeline parameters: a flat JSON or
    YAML mapping of make_char_pipeline arguments and/or pipeline parameters, e.g.
    {"clf__learning_rate": 0.001, "denoise__method": "median"}. With --checkpoint-dir, an
    interrupted training (Ctrl-C, a killed process) continues after its last completed epoch
    when the same command is run again.
    """
    from skcharclf.diagnostics import format_findings
    from skcharclf.persistence import save_pipeline

    config = read_config(args.config) if args.config else {}
    pipeline = build_pipeline(config, args)
    if args.checkpoint_dir is not None:
        _check_resumable(pipeline)
        pipeline.set_params(clf__checkpoint_dir=args.checkpoint_dir)
    out = common.check_writable(args.out, "--out")
    X, y = common.load_labelled(
        args.data, args, idx_labels=args.idx_labels, corrections=args.corrections
    )
    print(f"Loaded {common.describe_data(args.data, y)}", flush=True)
    steps = " -> ".join(
        f"{name}={step if isinstance(step, str) else type(step).__name__}"
        for name, step in pipeline.steps
    )
    print(f"Pipeline: {steps}", flush=True)
    print(f"Training for {pipeline.get_params()['clf__epochs']} epoch(s) ...", flush=True)
    start = time.perf_counter()
    _fit(pipeline, X, y, pipeline.get_params()["clf__checkpoint_dir"])
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


def _fit(pipeline: Any, X: Any, y: np.ndarray, checkpoint_dir: Any) -> None:
    from skcharclf.classifier import TrainingDivergedError

    try:
        pipeline.fit(X, y)
    except TrainingDivergedError as exc:
        # the message says which epoch diverged and what to change: an input error
        raise CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        if checkpoint_dir is not None:
            print(
                f"The epochs completed are saved in {str(checkpoint_dir)!r}: run the same "
                "command again to continue.",
                flush=True,
            )
        raise


def _check_resumable(pipeline: Any) -> None:
    """Refuse a pipeline whose steps before the classifier draw other numbers on every run:
    the classifier would see other data when the command is run again, and refuse to resume."""
    unseeded = [
        key.partition("__")[0]
        for key, value in pipeline.get_params(deep=True).items()
        if key.count("__") == 1 and key.endswith("__random_state") and value is None
        and not key.startswith("clf__")
    ]
    if unseeded:
        raise CommandError(
            f"--checkpoint-dir needs --random-state N (or a random_state in the config): the "
            f"step(s) {', '.join(unseeded)} must draw the same numbers when training resumes."
        )


def read_config(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    if not path.is_file():
        raise CommandError(f"config file {path_text!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        text = read_utf8_text(path_text, "config file")
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if suffix == ".json":
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"config file {path_text!r} is not valid JSON: {exc}") from exc
    elif suffix in {".yaml", ".yml"}:
        try:
            import yaml
        except ImportError:
            raise CommandError(
                f"reading the YAML config {path_text!r} needs PyYAML: install it with "
                "'pip install pyyaml', or write the config as JSON."
            ) from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CommandError(f"config file {path_text!r} is not valid YAML: {exc}") from exc
    else:
        raise CommandError(
            f"config file {path_text!r} must end in .json, .yaml or .yml, not {suffix!r}."
        )
    if config is None:
        return {}
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise CommandError(
            f"config file {path_text!r} must hold a mapping of parameter names to values, "
            f"not a {type(config).__name__}."
        )
    return config


def build_pipeline(config: dict[str, Any], args: argparse.Namespace) -> Any:
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
            raise CommandError(
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
        overrides["clf__verbose"] = common.progress_verbosity(args)
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
