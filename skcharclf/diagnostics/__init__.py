"""Read the data set and the learning curves the way the procedure does, with evidence.

Four tools turn the judgement calls of the procedure into code:

* :func:`analyze_dataset` reads a data set: class balance, image sizes, polarity, noise,
  duplicates and train/test leakage, and recommends the pipeline steps that answer what it
  finds, each recommendation with the numbers that triggered it.
* :func:`diagnose_history` reads a training history (per-epoch loss and accuracy) and reports
  the symptoms of the procedure's learning-curve table: overfitting, underfitting, plateaus,
  divergence, oscillation, a stalled or too-easy validation set, a wrong initial loss. When
  each rule fires is a :class:`DiagnosisThresholds`.
* :func:`sanity_check` runs the two checks that catch a broken model before a long training
  run: the loss before training is that of an uninformed model, and the model can learn a
  small subset by heart.
* :func:`find_label_issues` and :func:`audit_labels` find the images whose label is probably
  wrong, by confident learning on out-of-fold probabilities, and copies of one image that
  carry different labels.

Observations are :class:`Finding` objects: a code, a severity, the evidence (numbers), an
explanation and remedies. Epochs are counted from 1, as Keras prints them: epoch ``e`` is
entry ``e - 1`` of the history lists, and epoch 0 is the model before training.
"""

# One private module per tool, on top of the shared findings; imports only go downwards:
# _findings <- _thresholds, _curves <- _history <- _sanity; _findings <- _dataset;
# _findings <- _labels; _dataset, _labels <- _label_audit.
from ._dataset import DatasetReport, analyze_dataset
from ._findings import Finding, NoValidationWarning, format_findings
from ._history import diagnose_history
from ._label_audit import DuplicateConflict, LabelAudit, audit_labels
from ._labels import ClassAudit, LabelIssue, LabelIssues, find_label_issues
from ._sanity import SanityCheck, SanityReport, sanity_check
from ._thresholds import DiagnosisThresholds

__all__ = [
    "ClassAudit",
    "DatasetReport",
    "DiagnosisThresholds",
    "DuplicateConflict",
    "Finding",
    "LabelAudit",
    "LabelIssue",
    "LabelIssues",
    "NoValidationWarning",
    "SanityCheck",
    "SanityReport",
    "analyze_dataset",
    "audit_labels",
    "diagnose_history",
    "find_label_issues",
    "format_findings",
    "sanity_check",
]
