"""What the sub-commands share: options, reading the data and the model, tables."""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# the default of skcharclf.datasets.read_image (not imported here: --help stays fast)
MAX_PIXELS = 2048 * 2048


class CommandError(Exception):
    """An error in the user's input that the command line reports as one line (status 2)."""


def add_progress_options(parser: argparse.ArgumentParser) -> None:
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


def progress_verbosity(args: argparse.Namespace) -> int:
    """The classifier's ``verbose``: a progress bar on a terminal, else one line per epoch."""
    if args.quiet:
        return 0
    if args.verbose:
        return 1
    return 1 if sys.stdout.isatty() else 2


def add_pipeline_options(
    parser: argparse.ArgumentParser,
    *,
    config_help: str | None = None,
    epochs_help: str | None = None,
    random_state_help: str = "seed of the augmentation and the network (overrides the config)",
) -> None:
    """The options of the commands that build the CNN pipeline (``train``, ``lr-find``,
    ``audit``): ``--config`` and ``--epochs`` when their help is given, and ``--random-state``."""
    if config_help is not None:
        parser.add_argument("--config", metavar="FILE", help=config_help)
    if epochs_help is not None:
        parser.add_argument("--epochs", type=positive_int, metavar="N", help=epochs_help)
    parser.add_argument("--random-state", type=int, metavar="N", help=random_state_help)


def common_options() -> argparse.ArgumentParser:
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


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    *,
    reads_data: bool = False,
) -> argparse.ArgumentParser:
    """Register the sub-command ``name``: :func:`~skcharclf.cli.main` calls ``run(args)``.

    ``run``'s docstring is the sub-command's help: its summary line (lower-case, without the
    full stop) in the list of commands, the rest in ``skcharclf <name> --help``. The parser
    takes the options of every sub-command and, with ``reads_data``, those of reading a
    DATA argument (``--labels``, ``--on-error``, ...); it is returned for the sub-command's
    own arguments.
    """
    # no docstring under ``python -OO``: the command still works, without its help texts
    summary, _, details = (inspect.getdoc(run) or "").partition("\n\n")
    parents = [common_options(), data_options()] if reads_data else [common_options()]
    parser = subparsers.add_parser(
        name,
        parents=parents,
        help=summary[:1].lower() + summary[1:].rstrip(".") or None,
        description=" ".join(details.split()) or None,
    )
    parser.set_defaults(func=run)
    return parser


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-align the first column, right-align the others."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def positive_int(text: str) -> int:
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


def data_options() -> argparse.ArgumentParser:
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
    add_image_file_options(group)
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


def add_corrections_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corrections",
        metavar="CSV",
        help="DATA folder: drop or relabel image files as this CSV file says (the file "
        "'audit --csv' writes, its action column edited: keep, drop or relabel)",
    )


def add_image_file_options(group: Any) -> None:
    """``--on-error`` and ``--max-pixels``: how to treat image files that cannot be read."""
    group.add_argument(
        "--on-error",
        choices=["raise", "warn", "skip"],
        default="raise",
        help="unreadable image files: stop with an error, or leave them out with a warning or "
        "silently (default: %(default)s)",
    )
    group.add_argument(
        "--max-pixels",
        type=positive_int,
        default=MAX_PIXELS,
        metavar="N",
        help="image files with more pixels (height x width) are unreadable; checked in the "
        "file header before decoding (default: %(default)s, 2048 x 2048)",
    )


def load_labelled(
    path_text: str,
    args: argparse.Namespace,
    *,
    idx_labels: str | None = None,
    corrections: str | None = None,
    with_files: bool = False,
) -> tuple[Any, ...]:
    """Read the images and labels of a DATA argument with :mod:`skcharclf.datasets`, a folder
    with its label ``corrections`` applied; with ``with_files``, also the path of each image
    (None for archives)."""
    from skcharclf import datasets

    path = Path(path_text)
    if not path.exists():
        raise CommandError(f"data {path_text!r} does not exist.")
    if path.is_dir():
        if args.labels == "folders":
            _check_class_folders(path)
        if corrections is not None and not Path(corrections).is_file():
            raise CommandError(f"--corrections {corrections!r} does not exist.")
        bunch = datasets.load_image_folder(
            path,
            labels=args.labels,
            on_error=args.on_error,
            max_pixels=args.max_pixels,
            corrections=corrections,
        )
        found = (bunch.data, bunch.target)
        return (*found, list(bunch.filenames)) if with_files else found
    if corrections is not None:
        raise CommandError(
            f"--corrections applies to image folders, and data {path_text!r} is a file."
        )
    if path.suffix.lower() in {f".{ext}" for ext in datasets.IMAGE_EXTENSIONS}:
        raise CommandError(
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
            raise CommandError(
                f"data {path_text!r} is not a folder, an .npz archive or a valid IDX file: {exc}"
            ) from exc
        hint = "pass --idx-labels FILE"
    if y is None:
        raise CommandError(f"data {path_text!r} holds images but no labels; {hint}.")
    return (X, y, None) if with_files else (X, y)


def _check_class_folders(path: Path) -> None:
    """A folder of image files without class sub-folders: say which option reads it (the
    loader's own message names the Python argument)."""
    from skcharclf import datasets

    entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
    extensions = {f".{ext}" for ext in datasets.IMAGE_EXTENSIONS}
    if not any(entry.is_dir() for entry in entries) and any(
        entry.is_file() and entry.suffix.lower() in extensions for entry in entries
    ):
        raise CommandError(
            f"{str(path)!r} has no class sub-folder. It holds image files directly: pass "
            "--labels filename to read the labels from '<label>_<id>.png' file names."
        )


def _idx_labels_beside(images: Path) -> Path | None:
    """MNIST's naming: ``train-labels-idx1-ubyte`` lies beside ``train-images-idx3-ubyte``."""
    if "images-idx3" not in images.name:
        return None
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    return labels if labels.is_file() else None


def describe_data(path_text: str, y: np.ndarray) -> str:
    classes, counts = np.unique(y, return_counts=True)
    pairs = [f"{c}: {n}" for c, n in zip(classes.tolist(), counts.tolist(), strict=True)]
    return (
        f"{len(y)} images in {len(classes)} classes from {path_text!r} {short_list(pairs, '()')}"
    )


def load_model(path_text: str) -> Any:
    from skcharclf.persistence import load_pipeline

    return load_pipeline(path_text)


def check_writable(path_text: str, option: str) -> Path:
    """Fail before a long computation if ``path_text`` cannot be written."""
    path = Path(path_text)
    if path.is_dir():
        raise CommandError(f"{option} {path_text!r} is a folder; give a file name.")
    if not path.parent.is_dir():
        raise CommandError(f"the folder of {option} {path_text!r} does not exist.")
    try:
        # a file the size of nothing, in the same folder: what writing the output needs
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, os.strerror(13))
    except OSError as exc:
        raise CommandError(
            f"{option} {path_text!r} cannot be written ({exc.strerror or exc})."
        ) from exc
    return path


def check_known_labels(model: Any, y: np.ndarray, path_text: str) -> None:
    unknown = sorted(set(np.unique(y).tolist()) - set(np.asarray(model.classes_).tolist()), key=str)
    if unknown:
        raise CommandError(
            f"data {path_text!r} has labels the model does not know: {short_list(unknown)}; "
            f"the model's classes are {short_list(np.asarray(model.classes_).tolist())}."
        )


def short_list(values: Sequence[Any], brackets: str = "[]", limit: int = 10) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return f"{brackets[0]}{shown}{', ...' if len(values) > limit else ''}{brackets[1]}"
