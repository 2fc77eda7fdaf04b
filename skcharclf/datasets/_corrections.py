"""Label corrections: the CSV file a label audit writes and a user edits (keep, drop, relabel).

:func:`skcharclf.diagnostics.audit_labels` exports its findings with
:meth:`~skcharclf.diagnostics.LabelAudit.to_csv`; the user sets the ``action`` of each row
and :func:`~skcharclf.datasets.load_image_folder` applies them with ``corrections=``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from skcharclf._utils import read_utf8_text

# The columns of a corrections file. Only PATH and ACTION are required; a relabel reads its
# new label from LABEL; GIVEN, when filled in, must still be the file's label.
PATH, ACTION, LABEL, GIVEN = "path", "action", "suggested_label", "given_label"
#: The actions a row of a corrections file can ask for.
ACTIONS = ("keep", "drop", "relabel")


@dataclass(frozen=True)
class Correction:
    """One row of a corrections file: what to do with one image file."""

    line: int
    action: str
    label: str
    given: str


def read_corrections(path: str | os.PathLike) -> dict[str, Correction]:
    """The rows of a corrections CSV file, by the path text of their ``path`` cell.

    Blank rows are skipped, an empty ``action`` means ``"keep"``; columns other than the
    known ones are ignored (the audit's ``score`` and ``note``, the user's own).

    Raises
    ------
    ValueError
        If the file is not UTF-8 CSV text, lacks the ``path`` or ``action`` column, or a row
        has an empty path, an unknown action, a relabel without a label, or repeats the path
        of another row; the message names the file, the line and the column.
    """
    source = Path(path)
    text = read_utf8_text(source, "corrections file", "UTF-8 CSV", encoding="utf-8-sig")
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"corrections file {str(source)!r} is empty.")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header = [cell.strip().lower() for cell in next(reader)]
    missing = [name for name in (PATH, ACTION) if name not in header]
    if missing:
        raise ValueError(
            f"corrections file {str(source)!r}, line 1: no column {missing[0]!r}; the header "
            f"must name the columns {PATH!r} and {ACTION!r} (and {LABEL!r} to relabel), "
            f"found {header}."
        )
    column = {name: header.index(name) for name in (PATH, ACTION, LABEL, GIVEN) if name in header}
    rows: dict[str, Correction] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            k = column.get(name)
            return cells[k].strip() if k is not None and k < len(cells) else ""

        where = f"corrections file {str(source)!r}, line {line}"
        file = cell(PATH)
        if not file:
            raise ValueError(f"{where}, column {PATH!r}: empty; give the image file's path.")
        action = cell(ACTION).lower() or "keep"
        if action not in ACTIONS:
            raise ValueError(
                f"{where}, column {ACTION!r}: {cell(ACTION)!r} is not one of "
                f"{', '.join(ACTIONS)}."
            )
        label = cell(LABEL)
        if action == "relabel" and not label:
            raise ValueError(
                f"{where}, column {LABEL!r}: empty, but the action is 'relabel'; write the new "
                "label there."
            )
        if file in rows:
            raise ValueError(
                f"{where}, column {PATH!r}: {file!r} is already on line {rows[file].line}; "
                "keep one row per file."
            )
        rows[file] = Correction(line, action, label, cell(GIVEN))
    return rows


def apply_corrections(
    labelled: list[tuple[Path, str | None]], root: Path, path: str | os.PathLike
) -> tuple[list[tuple[Path, str | None]], list[str], list[str]]:
    """Drop or relabel the files of ``labelled`` (``(file, label)`` pairs found under
    ``root``) as the corrections file at ``path`` says.

    A relative path in the file is read from ``root``. Returns the corrected pairs and the
    paths dropped and relabelled.

    Raises
    ------
    ValueError
        As :func:`read_corrections`, and when a row names a file that is not among
        ``labelled``, its ``given_label`` is not the file's label, or its new label is not a
        label of the folder; the message names the line and the column.
    """
    rows = read_corrections(path)
    where = f"corrections file {str(Path(path))!r}"
    position = {file.resolve(): k for k, (file, _) in enumerate(labelled)}
    known = sorted({label for _, label in labelled if label is not None})
    actions: dict[int, tuple[str, str | None]] = {}
    for text, row in rows.items():
        candidate = Path(text)
        k = position.get((candidate if candidate.is_absolute() else root / candidate).resolve())
        if k is None:
            raise ValueError(
                f"{where}, line {row.line}, column {PATH!r}: {text!r} is not an image file of "
                f"{str(root)!r} (relative paths are read from that folder); remove the row or "
                "fix the path."
            )
        current = labelled[k][1]
        if row.given and current is not None and not _same_label(row.given, current):
            raise ValueError(
                f"{where}, line {row.line}, column {GIVEN!r}: {row.given!r}, but {text!r} is "
                f"labelled {current!r} now; the file was written for another version of the "
                "data. Audit it again, or clear the given_label cell."
            )
        if row.action == "relabel":
            label = next((c for c in known if _same_label(row.label, c)), None)
            if label is None:
                raise ValueError(
                    f"{where}, line {row.line}, column {LABEL!r}: {row.label!r} is not a label "
                    f"of {str(root)!r} (labels: {', '.join(known[:20])}); create the class "
                    "first, or fix the label."
                )
            actions[k] = ("relabel", label)
        elif row.action == "drop":
            actions[k] = ("drop", None)
    corrected, dropped, relabelled = [], [], []
    for k, (file, label) in enumerate(labelled):
        action, new_label = actions.get(k, ("keep", None))
        if action == "drop":
            dropped.append(str(file))
            continue
        if action == "relabel" and new_label != label:
            relabelled.append(str(file))
            label = new_label
        corrected.append((file, label))
    return corrected, dropped, relabelled


def _same_label(a: str, b: str) -> bool:
    """Equal labels, digit labels compared as numbers (``"3"`` and ``"03"`` are one class,
    as :func:`~skcharclf.datasets.load_image_folder` reads them)."""
    if a == b:
        return True
    digits = re.compile(r"[0-9]+")
    return bool(digits.fullmatch(a) and digits.fullmatch(b)) and int(a) == int(b)
