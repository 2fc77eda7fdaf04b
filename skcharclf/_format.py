"""Text for messages and reports: values as the user wrote them, never as numpy's ``repr``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np


def label_text(value: Any) -> str:
    """A class label as a user wrote it: ``8`` or ``'a'``, never ``np.int64(8)``."""
    value = value.item() if isinstance(value, np.generic) else value
    return repr(value) if isinstance(value, str) else str(value)


def labels_text(values: Iterable[Any], limit: int = 10) -> str:
    """Labels separated by commas, the first ``limit`` of them and ``...`` for the rest."""
    values = list(values)
    shown = ", ".join(label_text(value) for value in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def format_value(value: Any, *, ellipsis: str = "...") -> str:
    """A piece of evidence as short text: 4 significant digits, the first 10 list items."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (Real, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, Mapping):
        items = (f"{k}: {format_value(v, ellipsis=ellipsis)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [format_value(v, ellipsis=ellipsis) for v in list(value)[:10]]
        return "[" + ", ".join(items) + (f", {ellipsis}" if len(value) > 10 else "") + "]"
    return str(value)


def epoch_span(
    epochs: Sequence[int], *, dash: str = "-", ellipsis: str = "...", limit: int = 8
) -> str:
    """The epochs of a finding as text: ``"9-30"``, ``"4"`` or ``"2, 5, 7"``.

    A rule gives a stretch of the run as the pair ``[first, last]``: two epochs that are not
    neighbours, like a run of three or more consecutive epochs, print as a span. Other lists
    print in full up to ``limit`` epochs, then ``ellipsis``.
    """
    epochs = sorted({int(e) for e in epochs})
    pair = len(epochs) == 2 and epochs[1] > epochs[0] + 1
    run = len(epochs) > 2 and epochs == list(range(epochs[0], epochs[-1] + 1))
    if pair or run:
        return f"{epochs[0]}{dash}{epochs[-1]}"
    shown = ", ".join(str(e) for e in epochs[:limit])
    return shown + (f", {ellipsis}" if len(epochs) > limit else "")
