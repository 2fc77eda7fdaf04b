"""Findings: what a diagnosis tool observed, with its evidence, and how it prints.

The other diagnostics modules share these helpers: the severities, the text layout of the
printed reports and the conversion to JSON-ready values. Evidence values and epochs are
formatted by :mod:`skcharclf._format`, as in the HTML report.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from .._format import epoch_span, format_value

SEVERITIES = ("error", "warning", "info")
TEXT_WIDTH = 92  # text width of the printed reports


class NoValidationWarning(UserWarning):
    """Training ran without a validation set, or with one that lacks some classes.

    :class:`~skcharclf.KerasCharClassifier` warns this once per ``fit`` (of at least four
    epochs, the length the learning-curve diagnosis needs) when its validation set lacks some
    classes, or when it has none and its training accuracy reached 98 %, the procedure's
    classic overfitting sign: its curves then cannot show overfitting (on the missing
    classes). The same fact is the ``"no_validation"`` or
    ``"validation_incomplete"`` finding of :func:`diagnose_history` in ``diagnosis_``, with
    what to do. To train without validation on purpose, filter it::

        warnings.filterwarnings("ignore", category=NoValidationWarning)
    """


@dataclass
class Finding:
    """One observation about a training run or a data set, with its evidence and remedies.

    Parameters
    ----------
    code : str
        A stable identifier of the rule that fired, e.g. ``"overfitting"``.
    severity : {"info", "warning", "error"}
        ``"error"``: the run is broken (diverged); ``"warning"``: a problem worth acting
        on; ``"info"``: worth knowing, usually handled by the default pipeline.
    title : str
        One line saying what was seen.
    evidence : dict
        The numbers behind the finding (floats, ints, or short lists of labels or indices).
    explanation : str
        What the symptom usually means.
    remedies : list of str
        What to try, most likely first.
    epochs : list of int
        The epochs the finding points at, counted from 1 (entry ``e - 1`` of the history
        lists); 0 is the model before training. Empty for data-set findings.

    See Also
    --------
    diagnose_history : Learning-curve findings.
    analyze_dataset : Data-set findings (the ``recommendations`` of the report).
    format_findings : Print a list of findings.

    Examples
    --------
    >>> from skcharclf.diagnostics import Finding
    >>> finding = Finding("plateau", "warning", "The loss does not move", {"loss_drop": 0.01})
    >>> print(finding)
    [warning] plateau: The loss does not move
      evidence: loss_drop=0.01
    """

    code: str
    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    remedies: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {self.severity!r}.")

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.code}: {self.title}"]
        if self.epochs:
            lines.append(f"  epochs: {epoch_span(self.epochs)}")
        if self.evidence:
            evidence = ", ".join(f"{k}={format_value(v)}" for k, v in self.evidence.items())
            lines.append(wrap(f"evidence: {evidence}", "  ", "    "))
        if self.explanation:
            lines.append(wrap(self.explanation, "  ", "  "))
        if self.remedies:
            lines.append("  what to try:")
            lines += [wrap(remedy, "    - ", "      ") for remedy in self.remedies]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-serialisable dict (non-finite numbers become ``None``)."""
        return to_builtin(asdict(self))


def format_findings(findings: Sequence[Finding]) -> str:
    """Format findings for printing, most severe first.

    Parameters
    ----------
    findings : sequence of Finding
        What :func:`diagnose_history` returns, or a report's ``recommendations``.

    Returns
    -------
    text : str
        One numbered block per finding, or a one-line all-clear.

    Examples
    --------
    >>> from skcharclf.diagnostics import diagnose_history, format_findings
    >>> curves = {"loss": [2.0, 1.2, 0.8, 0.6, 0.5], "val_loss": [2.1, 1.3, 0.9, 0.7, 0.6]}
    >>> print(format_findings(diagnose_history(curves)))
    No findings: the learning curves show none of the symptoms the diagnosis looks for.
    """
    if not findings:
        return "No findings: the learning curves show none of the symptoms the diagnosis looks for."
    ordered = by_severity(findings)
    return "\n\n".join(f"{k}. {finding}" for k, finding in enumerate(ordered, start=1))


def by_severity(findings: Sequence[Finding]) -> list[Finding]:
    """The findings sorted most severe first (stable within a severity)."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def wrap(text: str, first: str, rest: str) -> str:
    """``text`` filled to the width of the printed reports, with the two indents."""
    return textwrap.fill(
        text, width=TEXT_WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def join_labels(labels: Sequence[Any]) -> str:
    """Class labels as printed in findings and reports: ``a, b, 3``."""
    return ", ".join(str(label) for label in labels)


def plain_label(value: Any) -> Any:
    """A class label as a plain Python value (for dict keys and JSON): ``8``, not numpy's."""
    return value.item() if isinstance(value, np.generic) else value


def to_builtin(value: Any) -> Any:
    """Convert numpy scalars/arrays and nested containers to JSON-ready Python objects."""
    if isinstance(value, Mapping):
        return {to_builtin(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_builtin(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (Real, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.str_):
        return str(value)
    return value
