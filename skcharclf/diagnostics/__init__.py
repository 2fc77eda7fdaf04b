"""Read the data set and the learning curves the way the procedure does, with evidence."""

from ._history import (
    DatasetReport,
    Finding,
    NoValidationWarning,
    SanityCheck,
    SanityReport,
    _border_median,  # noqa: F401 (moved out in the next commit)
    _initial_loss_reference,  # noqa: F401 (moved out in the next commit)
    analyze_dataset,
    diagnose_history,
    format_findings,
    sanity_check,
)

__all__ = [
    "DatasetReport",
    "Finding",
    "NoValidationWarning",
    "SanityCheck",
    "SanityReport",
    "analyze_dataset",
    "diagnose_history",
    "format_findings",
    "sanity_check",
]
