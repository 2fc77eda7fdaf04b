"""Text for messages: values as the user wrote them, never as numpy's ``repr``."""

from __future__ import annotations

from collections.abc import Iterable
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
