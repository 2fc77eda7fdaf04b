"""Label audit of a data set: out-of-fold probabilities with any estimator, confident
learning on them, and copies of one image that carry different labels."""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params

from .._atomic import atomic_output
from .._format import label_text
from .._utils import check_labels
from ..datasets._corrections import ACTION, GIVEN, LABEL, PATH
from ._dataset import analyze_dataset
from ._findings import plain_label, to_builtin
from ._labels import FILTER_RULES, RANK_RULES, LabelIssues, find_label_issues

# The columns of the CSV file LabelAudit.to_csv writes; load_image_folder(corrections=...)
# reads PATH, ACTION, LABEL (the new label of a relabel) and GIVEN back.
CSV_COLUMNS = ("index", PATH, GIVEN, LABEL, "score", "reason", "note", ACTION)


@dataclass(frozen=True)
class DuplicateConflict:
    """Copies of one image that carry different labels.

    Attributes
    ----------
    kind : {"exact", "near"}
        ``"exact"``: byte-identical images; ``"near"``: near copies (see
        :func:`analyze_dataset`'s ``near_duplicate_correlation``).
    indices : list of int
        The images of the group.
    labels : list
        Their labels, in the same order.
    """

    kind: str
    indices: list[int]
    labels: list[Any]


@dataclass
class LabelAudit:
    """Result of :func:`audit_labels`.

    Attributes
    ----------
    label_issues : LabelIssues
        The suspected label errors of :func:`find_label_issues` on the out-of-fold
        probabilities, with the thresholds and status of each class.
    duplicate_conflicts : list of DuplicateConflict
        Exact and near copies of one image whose labels disagree: at most one of the labels
        is right (or the classes cannot be told apart).
    oof_proba : ndarray of shape (n_samples, n_classes)
        The out-of-fold probabilities; columns follow ``classes``.
    classes : ndarray of shape (n_classes,)
        The sorted distinct labels.
    n_splits : int
        Number of cross-validation folds.
    notes : list of str
        What limited the audit: classes with fewer images than folds, classes with one image.
    """

    label_issues: LabelIssues
    duplicate_conflicts: list[DuplicateConflict]
    oof_proba: np.ndarray
    classes: np.ndarray
    n_splits: int
    notes: list[str]

    def to_rows(self, filenames: Any = None) -> list[dict[str, Any]]:
        """One row per image to look at: the suspected label errors (lowest score first),
        then the members of duplicate groups with disagreeing labels.

        Parameters
        ----------
        filenames : sequence of str, optional
            The path of each image (``load_image_folder``'s ``filenames``, best relative to
            the folder); the ``path`` column stays empty without them.

        Returns
        -------
        rows : list of dict
            Keys ``CSV_COLUMNS``: ``index``, ``path``, ``given_label``,
            ``suggested_label``, ``score`` (empty for duplicates), ``reason``
            (``"label_issue"``, ``"exact_duplicate_conflict"`` or
            ``"near_duplicate_conflict"``), ``note`` and ``action`` (``"keep"``).
        """
        labels = self.label_issues.labels
        if filenames is not None and len(filenames) != len(labels):
            raise ValueError(
                f"filenames holds {len(filenames)} paths but the audit covers {len(labels)} "
                "images."
            )

        def path(i: int) -> str:
            return "" if filenames is None else str(filenames[i])

        rows: dict[int, dict[str, Any]] = {}
        for issue in self.label_issues.issues:
            rows[issue.index] = {
                "index": issue.index,
                PATH: path(issue.index),
                GIVEN: issue.given_label,
                LABEL: issue.suggested_label,
                "score": f"{issue.score:.4f}",
                "reason": "label_issue",
                "note": issue.note,
                ACTION: "keep",
            }
        for conflict in self.duplicate_conflicts:
            for i, label in zip(conflict.indices, conflict.labels, strict=True):
                others = [c for j, c in zip(conflict.indices, conflict.labels, strict=True)
                          if j != i and c != label]
                note = (f"{conflict.kind} copy of images {conflict.indices} labelled "
                        f"{[plain_label(c) for c in conflict.labels]}")
                if i in rows:
                    rows[i]["note"] = "; ".join(filter(None, [rows[i]["note"], note]))
                    continue
                rows[i] = {
                    "index": i,
                    PATH: path(i),
                    GIVEN: label,
                    LABEL: Counter(others).most_common(1)[0][0],
                    "score": "",
                    "reason": f"{conflict.kind}_duplicate_conflict",
                    "note": note,
                    ACTION: "keep",
                }
        return [{k: plain_label(v) for k, v in row.items()} for row in rows.values()]

    def to_csv(self, path: str | os.PathLike, filenames: Any = None) -> Path:
        """Write :meth:`to_rows` as a CSV file to edit and feed back to
        :func:`~skcharclf.datasets.load_image_folder` (``corrections=path``).

        Set ``action`` to ``keep``, ``drop`` or ``relabel`` (the new label is read from
        ``suggested_label``, which may be edited).

        Parameters
        ----------
        path : str or path-like
            The file to write (UTF-8, comma-separated, written atomically).
        filenames : sequence of str, optional
            The path of each image, as in :meth:`to_rows`.

        Returns
        -------
        path : pathlib.Path
            The written file.
        """
        rows = self.to_rows(filenames)
        path = Path(path)
        with atomic_output(path) as partial, partial.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return path

    def to_dict(self) -> dict[str, Any]:
        """The audit as JSON-serialisable values (without the probabilities)."""
        return to_builtin(
            {
                "label_issues": self.label_issues.to_dict(),
                "duplicate_conflicts": [asdict(c) for c in self.duplicate_conflicts],
                "classes": self.classes,
                "n_splits": self.n_splits,
                "notes": self.notes,
            }
        )

    def __str__(self) -> str:
        lines = [
            f"Label audit ({self.n_splits}-fold out-of-fold probabilities)",
            "",
            str(self.label_issues),
            "",
            "Copies of one image with different labels: "
            + (f"{len(self.duplicate_conflicts)} group(s)" if self.duplicate_conflicts else "none"),
        ]
        for conflict in self.duplicate_conflicts:
            pairs = ", ".join(
                f"{i} ({label_text(c)})"
                for i, c in zip(conflict.indices, conflict.labels, strict=True)
            )
            lines.append(f"  {conflict.kind}: {pairs}")
        if self.notes:
            lines += ["", "Notes", *(f"  {note}" for note in self.notes)]
        return "\n".join(lines)


@validate_params(
    {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "cv": [Interval(Integral, 2, None, closed="left"), HasMethods(["split"])],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "rank_by": [StrOptions(set(RANK_RULES))],
        "filter_by": [StrOptions(set(FILTER_RULES))],
        "max_issues": [Interval(Integral, 0, None, closed="left"), None],
        "min_class_size": [Interval(Integral, 2, None, closed="left")],
        "near_duplicate_correlation": [Interval(Real, 0, 1, closed="right")],
        "image_shape": [StrOptions({"auto"}), tuple, list],
    },
    prefer_skip_nested_validation=True,
)
def audit_labels(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    cv: Any = 5,
    random_state: Any = 0,
    n_jobs: int | None = None,
    rank_by: str = "normalized_margin",
    filter_by: str = "low_normalized_margin",
    max_issues: int | None = None,
    min_class_size: int = 6,
    near_duplicate_correlation: float = 0.995,
    image_shape: str | tuple[int, int] = "auto",
) -> LabelAudit:
    """Find the images whose label is probably wrong, and copies that disagree on a label.

    Runs cross-validated prediction of ``estimator`` (each image's probabilities come from a
    model trained on the other folds), then :func:`find_label_issues` on these out-of-fold
    probabilities, and looks for exact and near copies of one image (the duplicate search of
    :func:`analyze_dataset`) whose labels differ.

    Parameters
    ----------
    estimator : estimator with ``predict_proba``
        The model to cross-validate, cloned for each fold: the CNN pipeline of
        :func:`~skcharclf.make_char_pipeline` (the best probabilities, the slowest), the
        random-forest pipeline of :func:`~skcharclf.make_baseline_pipeline` (seconds), or any
        scikit-learn classifier that takes ``X``.
    X : image batch or flat batch
        The images, in any form ``estimator`` and :func:`analyze_dataset` take.
    y : array-like of shape (n_samples,)
        The given labels (ints or strings).
    cv : int or cross-validation splitter, default=5
        An int ``k`` is ``StratifiedKFold(k, shuffle=True, random_state=random_state)``; a
        splitter is used as it is. Classes with fewer images than folds are handled (see
        Notes); ``k`` larger than the largest class is an error.
    random_state : int, RandomState instance or None, default=0
        Seeds the shuffling of the folds when ``cv`` is an int.
    n_jobs : int, optional
        Folds fitted in parallel (``cross_val_predict``'s ``n_jobs``).
    rank_by, filter_by, max_issues, min_class_size
        Passed to :func:`find_label_issues`.
    near_duplicate_correlation : float in (0, 1], default=0.995
        Thumbnail correlation from which two images count as near copies (as in
        :func:`analyze_dataset`).
    image_shape : "auto" or (int, int), default="auto"
        Shape of the rows of a flat batch, for the duplicate search.

    Returns
    -------
    audit : LabelAudit
        ``label_issues`` (the ranked suspected errors, per-class thresholds and status),
        ``duplicate_conflicts``, the out-of-fold probabilities and the notes on what
        limited the audit. ``to_csv`` writes the findings for review.

    Raises
    ------
    ValueError
        If ``X`` and ``y`` differ in length, ``y`` has a single class, or ``cv`` asks for
        more folds than the largest class has images.

    See Also
    --------
    find_label_issues : The confident-learning step alone, on probabilities you have.
    skcharclf.report.make_audit_report : The audit as an HTML page of images.

    Notes
    -----
    A class with fewer images than folds (but at least 2) is missing from some folds; each of
    its images is still predicted by a model trained on the class's other images, and the
    audit notes it. A class with a single image cannot be judged: the model that predicts it
    never saw the class (scikit-learn then gives it probability 0), and
    :func:`find_label_issues` leaves it out (``per_class`` says so). Exact copies in
    different folds help each other; a wrong label shared by copies then looks right, which
    is why disagreeing copies are reported separately.

    Examples
    --------
    >>> from skcharclf import make_baseline_pipeline
    >>> from skcharclf.datasets import load_digit_chars
    >>> from skcharclf.diagnostics import audit_labels
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> y[:3] = 9  # three wrong labels
    >>> audit = audit_labels(make_baseline_pipeline(n_estimators=50, random_state=0),
    ...                      X, y, cv=3)  # doctest: +SKIP
    >>> sorted(set(audit.label_issues.indices[:10]) & {0, 1, 2})  # doctest: +SKIP
    [0, 1, 2]
    """
    y = check_labels(X, y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("y holds a single class: there is no other label to suggest.")
    splitter = cv
    if isinstance(cv, Integral):
        if cv > counts.max():
            raise ValueError(
                f"cv={cv} folds, but the largest class has only {counts.max()} images; use "
                f"cv={max(2, int(counts.max()))} or fewer."
            )
        splitter = StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    n_splits = splitter.get_n_splits(np.zeros((len(y), 1)), y)
    notes = _fold_notes(classes, counts, n_splits)
    with warnings.catch_warnings():
        # what these say (a class smaller than the folds, a fold without a class) is in notes
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        warnings.filterwarnings("ignore", message=".*Number of classes in training fold.*")
        proba = cross_val_predict(
            clone(estimator), X, y, cv=splitter, method="predict_proba", n_jobs=n_jobs
        )
    issues = find_label_issues(
        y,
        proba,
        classes=classes,
        rank_by=rank_by,
        filter_by=filter_by,
        max_issues=max_issues,
        min_class_size=min_class_size,
    )
    analysis = analyze_dataset(
        X, y, image_shape=image_shape, near_duplicate_correlation=near_duplicate_correlation
    )
    return LabelAudit(
        label_issues=issues,
        duplicate_conflicts=_conflicts(analysis, y),
        oof_proba=proba,
        classes=classes,
        n_splits=int(n_splits),
        notes=notes,
    )


def _fold_notes(classes: np.ndarray, counts: np.ndarray, n_splits: int) -> list[str]:
    notes = []
    single = classes[counts == 1]
    if single.size:
        notes.append(
            f"{single.size} class(es) with a single image ({', '.join(map(label_text, single))}): "
            "the model that predicts that image never saw the class; not judged."
        )
    small = classes[(counts > 1) & (counts < n_splits)]
    if small.size:
        notes.append(
            f"{small.size} class(es) with fewer images than the {n_splits} folds "
            f"({', '.join(map(label_text, small))}): they miss from some folds; each image is "
            "still predicted by a model trained on the class's other images."
        )
    return notes


def _conflicts(analysis: Any, y: np.ndarray) -> list[DuplicateConflict]:
    """Exact-copy groups with several labels, and near-copy groups (with the exact copies of
    their members) with several labels."""
    found = [
        DuplicateConflict("exact", list(group), [plain_label(v) for v in y[group]])
        for group in analysis.conflicting_label_groups
    ]
    copies = {group[0]: group for group in analysis.exact_duplicate_groups}
    for group in analysis.near_duplicate_groups:
        members = sorted({j for i in group for j in copies.get(i, [i])})
        if len(set(y[members].tolist())) > 1:
            found.append(
                DuplicateConflict("near", members, [plain_label(v) for v in y[members]])
            )
    return found
