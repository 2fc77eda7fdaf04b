"""Label audit: find the images whose given label is probably wrong (confident learning).

:func:`find_label_issues` implements confident learning (Northcutt, Jiang and Chuang,
"Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70, 2021) from the
paper: per-class thresholds, the confident joint, its calibration into an estimate of the
joint distribution of given and true labels, and the pruning rules that pick the suspected
label errors, ranked by self-confidence or normalised margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import column_or_1d

from .._format import label_text, labels_text
from ._findings import plain_label, to_builtin

# the default first
RANK_RULES = ("normalized_margin", "self_confidence")
# the default first
FILTER_RULES = (
    "low_normalized_margin",
    "low_self_confidence",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_joint",
    "predicted_neq_given",
)
# Statuses of a class: how far the method can judge the labels of its images.
JUDGED, LIMITED, NOT_JUDGED = "judged", "limited", "not_judged"
#: Below this share of the judged images whose most probable out-of-fold class is their given
#: label, the result cautions that the model is too weak to tell its own mistakes from wrong
#: labels (in the label-audit benchmark, models at 83-84 % found 66-76 % of 5 % planted
#: errors, models at 96 % found 88-92 %, models at 67-69 % (8 epochs) found 33-60 %).
WEAK_MODEL_AGREEMENT = 0.8
_ROW_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LabelIssue:
    """One image whose given label is suspected to be wrong.

    Attributes
    ----------
    index : int
        Position of the image in ``y`` (and in the images the probabilities came from).
    given_label : object
        The label the image carries.
    suggested_label : object
        The most probable other class: the label the out-of-fold model gives the image
        when its given label is set aside.
    score : float
        The label-quality score of the ranking rule, in [0, 1]: the lower, the likelier the
        given label is wrong. ``"self_confidence"``: the probability of the given label;
        ``"normalized_margin"``: ``(p_given - p_other + 1) / 2`` with ``p_other`` the
        largest probability of another class.
    given_probability : float
        Out-of-fold probability of the given label.
    suggested_probability : float
        Out-of-fold probability of the suggested label.
    note : str
        Empty, or why the finding is weak: the given or suggested class is rare (fewer than
        ``min_class_size`` images), see :attr:`ClassAudit.note`.
    """

    index: int
    given_label: Any
    suggested_label: Any
    score: float
    given_probability: float
    suggested_probability: float
    note: str = ""


@dataclass(frozen=True)
class ClassAudit:
    """What :func:`find_label_issues` can say about one class, and what it found.

    Attributes
    ----------
    label : object
        The class.
    n_samples : int
        Images that carry the label.
    threshold : float
        The class's confidence threshold: the mean out-of-fold probability of the class over
        its own images (its average self-confidence). NaN when the class is not judged.
    status : {"judged", "limited", "not_judged"}
        ``"judged"``: at least ``min_class_size`` images. ``"limited"``: 2 to
        ``min_class_size - 1`` images, judged with the limits given in ``note``.
        ``"not_judged"``: fewer than 2 images; its images are never reported and no image is
        suggested into it.
    note : str
        What the method can and cannot judge for this class (empty when judged).
    n_issues_given : int
        Suspected errors (before ``max_issues``) whose given label is this class.
    n_issues_suggested : int
        Suspected errors (before ``max_issues``) suggested to be this class.
    """

    label: Any
    n_samples: int
    threshold: float
    status: str
    note: str
    n_issues_given: int
    n_issues_suggested: int


@dataclass
class LabelIssues:
    """Result of :func:`find_label_issues`.

    Attributes
    ----------
    issues : list of LabelIssue
        The suspected label errors, lowest ``score`` (likeliest error) first, at most
        ``max_issues`` of them.
    n_flagged : int
        Number of suspected errors before the ``max_issues`` cut.
    classes : ndarray of shape (n_classes,)
        The classes, in the order of the columns of the probabilities.
    per_class : list of ClassAudit
        One entry per class: its threshold, how far it can be judged and what was found.
    confident_joint : ndarray of shape (n_classes, n_classes)
        Counts ``C[i, j]`` of images given label ``classes[i]`` whose probability of
        ``classes[j]`` reaches that class's threshold (the largest such class when several
        do). Off-diagonal counts are the confidently mislabelled images.
    joint : ndarray of shape (n_classes, n_classes)
        The confident joint calibrated so that each row sums to the number of images given
        that label, then normalised to sum to 1: the estimated joint distribution of given
        (rows) and true (columns) labels. Its off-diagonal mass is the estimated noise rate.
    labels : ndarray of shape (n_samples,)
        The given labels.
    label_quality : ndarray of shape (n_samples,)
        The ranking rule's score of every image (NaN for images of classes that are not
        judged).
    self_confidence : ndarray of shape (n_samples,)
        Out-of-fold probability of each image's given label.
    rank_by, filter_by : str
        The rules used.
    min_class_size : int
        Classes with fewer images are judged with limits (see :attr:`ClassAudit.status`).
    model_agreement : float
        Share of the judged images whose most probable out-of-fold class is their given label
        (the out-of-fold accuracy against the given labels; NaN when no class is judged).
        Well below ``1 - estimated_noise_rate`` and the model, not the labels, is the
        likelier cause of the suspicions: see :attr:`caution`.
    """

    issues: list[LabelIssue]
    n_flagged: int
    classes: np.ndarray
    per_class: list[ClassAudit]
    confident_joint: np.ndarray
    joint: np.ndarray
    labels: np.ndarray
    label_quality: np.ndarray
    self_confidence: np.ndarray
    rank_by: str
    filter_by: str
    min_class_size: int
    model_agreement: float
    _index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = np.array([issue.index for issue in self.issues], dtype=np.intp)

    @property
    def indices(self) -> np.ndarray:
        """Positions of the suspected images, likeliest error first."""
        return self._index.copy()

    @property
    def given_labels(self) -> np.ndarray:
        """Given labels of the suspected images."""
        return self.labels[self._index]

    @property
    def suggested_labels(self) -> np.ndarray:
        """Suggested labels of the suspected images."""
        return np.array([i.suggested_label for i in self.issues], dtype=self.classes.dtype)

    @property
    def scores(self) -> np.ndarray:
        """Scores of the suspected images (ascending)."""
        return np.array([issue.score for issue in self.issues], dtype=float)

    @property
    def estimated_noise_rate(self) -> float:
        """Share of images whose given label differs from the true one, as the calibrated
        joint estimates it (``1 - trace(joint)``)."""
        return float(1.0 - np.trace(self.joint))

    @property
    def caution(self) -> str:
        """A warning when the out-of-fold model is too weak for the list to be trusted
        (:attr:`model_agreement` below 80 %), else an empty string."""
        if not self.model_agreement < WEAK_MODEL_AGREEMENT:
            return ""
        return (
            f"The out-of-fold model agrees with only {100 * self.model_agreement:.0f}% of the "
            "given labels: many suspects are likely its own mistakes, not wrong labels. Train "
            "it longer or use a stronger estimator before acting on the list."
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable values (arrays become lists)."""
        return to_builtin(
            {
                "issues": [asdict(issue) for issue in self.issues],
                "n_flagged": self.n_flagged,
                "classes": self.classes.tolist(),
                "per_class": [asdict(entry) for entry in self.per_class],
                "confident_joint": self.confident_joint.tolist(),
                "joint": self.joint.tolist(),
                "estimated_noise_rate": self.estimated_noise_rate,
                "rank_by": self.rank_by,
                "filter_by": self.filter_by,
                "min_class_size": self.min_class_size,
                "model_agreement": self.model_agreement,
                "caution": self.caution,
            }
        )

    def __str__(self) -> str:
        n = len(self.labels)
        lines = [
            f"Label issues: {self.n_flagged} of {n:,} images suspected "
            f"(filter {self.filter_by}, ranked by {self.rank_by}); estimated noise rate "
            f"{100 * self.estimated_noise_rate:.1f}%",
            f"The out-of-fold model agrees with {100 * self.model_agreement:.1f}% of the given "
            "labels.",
        ]
        if self.caution:
            lines.append(f"Caution: {self.caution}")
        if self.issues:
            shown = "" if len(self.issues) == self.n_flagged else f" (first {len(self.issues)})"
            lines += ["", f"Suspected label errors{shown}"]
            lines.append(f"  {'index':>7}  {'given':<12}{'suggested':<12}{'score':>7}  note")
            for issue in self.issues:
                lines.append(
                    f"  {issue.index:>7}  {str(issue.given_label)[:11]:<12}"
                    f"{str(issue.suggested_label)[:11]:<12}{issue.score:>7.3f}  {issue.note}"
                )
        limited = [c for c in self.per_class if c.status != JUDGED]
        if limited:
            lines += ["", "Classes the audit cannot fully judge"]
            lines += [f"  {label_text(c.label)} ({c.n_samples}): {c.note}" for c in limited]
        return "\n".join(lines)


@validate_params(
    {
        "y": ["array-like"],
        "oof_proba": ["array-like"],
        "classes": ["array-like", None],
        "rank_by": [StrOptions(set(RANK_RULES))],
        "filter_by": [StrOptions(set(FILTER_RULES))],
        "max_issues": [Interval(Integral, 0, None, closed="left"), None],
        "min_class_size": [Interval(Integral, 2, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def find_label_issues(
    y: Any,
    oof_proba: Any,
    *,
    classes: Any = None,
    rank_by: str = "normalized_margin",
    filter_by: str = "low_normalized_margin",
    max_issues: int | None = None,
    min_class_size: int = 6,
) -> LabelIssues:
    """Find the images whose given label is probably wrong, by confident learning.

    Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) compares each image's given
    label with out-of-fold predicted probabilities, which a model computes for images it was
    not trained on:

    1. The threshold ``t_j`` of class ``j`` is the mean probability of ``j`` over the images
       labelled ``j`` (the class's average self-confidence): a model that is unsure of a hard
       class has a low threshold for it, so classes are judged on their own scale.
    2. The *confident joint* ``C[i, j]`` counts the images labelled ``i`` whose probability of
       ``j`` reaches ``t_j`` (the most probable such ``j`` when several do). Off-diagonal
       counts are images confidently believed to belong to another class.
    3. Calibrated so that row ``i`` sums to the number of images labelled ``i`` and
       normalised, ``C`` becomes ``Q``, an estimate of the joint distribution of given and
       true labels; ``n * Q[i, j]`` estimates how many images labelled ``i`` are really
       ``j``, and ``n * (1 - trace(Q))`` how many labels are wrong in all.
    4. A pruning rule (``filter_by``) picks that many suspected errors, which are then
       ranked (``rank_by``). By default they are the images with the lowest normalised
       margin of all: the count comes from the confident joint, the choice from one
       ranking of all images (as in the ``low_*`` filters of later confident-learning
       work), which keeps the count's errors in one class pair from costing the choice.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The given labels: ints, strings, any labels that sort.
    oof_proba : array-like of shape (n_samples, n_classes)
        Out-of-fold predicted probabilities: row ``k`` from a model that did not see image
        ``k`` in training (``cross_val_predict(..., method="predict_proba")``,
        :class:`~skcharclf.FoldEnsembleClassifier`'s ``oof_proba_``, or
        :func:`audit_labels`). Probabilities from a model trained on the same images are
        over-confident in the given labels and hide the errors. Rows are normalised to sum
        to 1.
    classes : array-like of shape (n_classes,), optional
        The label of each column of ``oof_proba``. By default the sorted distinct labels of
        ``y`` (what a scikit-learn classifier has as ``classes_``), which then must number
        ``n_classes``.
    rank_by : {"self_confidence", "normalized_margin"}, default="normalized_margin"
        The score that orders the suspected errors (lowest first): the probability of the
        given label, or ``(p_given - p_other + 1) / 2`` with ``p_other`` the largest
        probability of another class, which also weighs how strongly another class is
        preferred (better on look-alike classes and on classes the model learnt poorly).
    filter_by : {"low_normalized_margin", "low_self_confidence", "prune_by_noise_rate", \
            "prune_by_class", "both", "confident_joint", "predicted_neq_given"}, \
            default="low_normalized_margin"
        Which images are suspected:

        - ``"low_normalized_margin"``, ``"low_self_confidence"``: the
          ``round(n * (1 - trace(Q)))`` images with the lowest normalised margin, or the
          lowest probability of their given label, over all judged classes;
        - ``"prune_by_noise_rate"``: for each pair of classes ``i != j``, the
          ``round(n * Q[i, j])`` images labelled ``i`` with the largest margin
          ``p_j - p_i``;
        - ``"prune_by_class"``: for each class ``i``, the ``round(n * sum_j!=i Q[i, j])``
          images labelled ``i`` with the lowest probability of ``i``;
        - ``"both"``: those picked by ``"prune_by_noise_rate"`` that are also off the
          diagonal of the confident joint (fewer, surer);
        - ``"confident_joint"``: the images counted off the diagonal of ``C``;
        - ``"predicted_neq_given"``: the images whose most probable class is not the given
          one (the simplest baseline of the paper).
    max_issues : int, optional
        Return at most this many suspected errors (the lowest scores). By default all.
    min_class_size : int, default=6
        Classes with fewer images are judged with limits and their findings carry a note
        (see Notes). At least 2.

    Returns
    -------
    result : LabelIssues
        The suspected errors (``issues``: index, given and suggested label, score), the
        thresholds and status of each class (``per_class``), the confident joint and the
        estimated joint of given and true labels.

    Raises
    ------
    ValueError
        If ``y`` and ``oof_proba`` differ in length, ``oof_proba`` is not a 2-D array of
        finite non-negative numbers with a positive sum in every row, its number of columns
        does not match the classes, or ``y`` holds a label that is not in ``classes``.

    See Also
    --------
    audit_labels : Compute the out-of-fold probabilities with any estimator, then call
        this function and look for duplicates with disagreeing labels.

    Notes
    -----
    Rare classes. What the method can judge depends on the number of images that carry a
    label, and the result says so in ``per_class`` and in the ``note`` of each finding:

    - A class with a single image (``"not_judged"``): its threshold would be that one
      image's probability, and the out-of-fold model that scored it never saw the class, so
      its probability says nothing about the label. Its image is never reported, and no
      image is suggested into the class (its column is not used for the confident joint).
      Check such images by eye.
    - A class with 2 to ``min_class_size - 1`` images (``"limited"``): it is judged, but
      its threshold is the mean of a handful of values (one wrong image moves it a lot), the
      out-of-fold models learnt it from even fewer images, and each pruning count is a
      rounding of a fraction of a few images. It can find an image of the class that the
      model confidently puts in a well-learnt class; it rarely finds images of the class
      filed under another label (the model barely recognises the class), and when two of
      its few images disagree it cannot tell which one is wrong.

    Scores of rare and common classes are not on the same footing: ``self_confidence``
    is lower for every image of a class the model learnt poorly; ``normalized_margin``
    compares with the best alternative and is less affected.

    References
    ----------
    C. G. Northcutt, L. Jiang and I. L. Chuang, "Confident Learning: Estimating
    Uncertainty in Dataset Labels", Journal of Artificial Intelligence Research 70,
    1373-1411, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.diagnostics import find_label_issues
    >>> y = np.array(["a"] * 6 + ["b"] * 6)
    >>> proba = np.tile([[0.9, 0.1]], (12, 1))
    >>> proba[6:] = [0.2, 0.8]
    >>> proba[2] = [0.1, 0.9]  # an "a" the model is sure is a "b"
    >>> result = find_label_issues(y, proba)
    >>> [(i.index, i.given_label, i.suggested_label) for i in result.issues]
    [(2, 'a', 'b')]
    """
    y = column_or_1d(y, warn=True)
    proba = _check_proba(oof_proba, len(y))
    classes, y_index = _encode(y, classes, proba.shape[1])
    n_classes = len(classes)
    counts = np.bincount(y_index, minlength=n_classes)
    judged = counts >= 2
    rows = np.arange(len(y))
    self_confidence = proba[rows, y_index]

    thresholds = np.full(n_classes, np.nan)
    for k in np.flatnonzero(judged):
        thresholds[k] = self_confidence[y_index == k].mean()
    confident = _confident_labels(proba, thresholds)
    joint_counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    has_confident = (confident >= 0) & judged[y_index]
    np.add.at(joint_counts, (y_index[has_confident], confident[has_confident]), 1)
    joint = _calibrate(joint_counts, counts)

    others = np.where(judged[np.newaxis, :], proba, -np.inf)
    others[rows, y_index] = -np.inf
    suggested = np.argmax(others, axis=1)
    best_other = np.maximum(others[rows, suggested], 0.0)
    scores = {
        "self_confidence": self_confidence.copy(),
        "normalized_margin": (self_confidence - best_other + 1.0) / 2.0,
    }
    for score in scores.values():
        score[~judged[y_index]] = np.nan
    quality = scores[rank_by]

    flagged = _flag(filter_by, proba, y_index, confident, joint, judged, scores)
    flagged &= judged[y_index] & np.isfinite(others[rows, suggested])
    flagged_index = np.flatnonzero(flagged)
    flagged_index = flagged_index[np.argsort(quality[flagged_index], kind="stable")]

    in_judged = judged[y_index]
    agreement = (
        float(np.mean(np.argmax(proba[in_judged], axis=1) == y_index[in_judged]))
        if in_judged.any()
        else float("nan")
    )
    labels = [plain_label(c) for c in classes]
    notes = [_class_note(int(n), min_class_size) for n in counts]
    issues = [
        LabelIssue(
            index=int(i),
            given_label=labels[y_index[i]],
            suggested_label=labels[suggested[i]],
            score=float(quality[i]),
            given_probability=float(self_confidence[i]),
            suggested_probability=float(proba[i, suggested[i]]),
            note=_issue_note(y_index[i], suggested[i], counts, labels, min_class_size),
        )
        for i in flagged_index[:max_issues]
    ]
    given_counts = np.bincount(y_index[flagged_index], minlength=n_classes)
    suggested_counts = np.bincount(suggested[flagged_index], minlength=n_classes)
    per_class = [
        ClassAudit(
            label=labels[k],
            n_samples=int(counts[k]),
            threshold=float(thresholds[k]),
            status=notes[k][0],
            note=notes[k][1],
            n_issues_given=int(given_counts[k]),
            n_issues_suggested=int(suggested_counts[k]),
        )
        for k in range(n_classes)
    ]
    return LabelIssues(
        issues=issues,
        n_flagged=len(flagged_index),
        classes=classes,
        per_class=per_class,
        confident_joint=joint_counts,
        joint=joint,
        labels=y,
        label_quality=quality,
        self_confidence=self_confidence,
        rank_by=rank_by,
        filter_by=filter_by,
        min_class_size=min_class_size,
        model_agreement=agreement,
    )


def _check_proba(oof_proba: Any, n_samples: int) -> np.ndarray:
    try:
        proba = np.asarray(oof_proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"oof_proba must be an array of numbers: {exc}") from exc
    if proba.ndim != 2:
        raise ValueError(
            f"oof_proba must be 2-D (n_samples, n_classes), got shape {proba.shape}."
        )
    if proba.shape[0] != n_samples:
        raise ValueError(
            f"oof_proba has {proba.shape[0]} rows but y has {n_samples} labels; they must match."
        )
    if proba.shape[1] < 2:
        raise ValueError(f"oof_proba needs at least 2 columns (classes), got {proba.shape[1]}.")
    bad = np.flatnonzero(~np.isfinite(proba).all(axis=1) | (proba < 0).any(axis=1))
    if bad.size:
        raise ValueError(
            f"oof_proba must hold finite non-negative probabilities; row {bad[0]} holds "
            f"{proba[bad[0]].tolist()[:10]}."
        )
    sums = proba.sum(axis=1)
    if (sums <= 0).any():
        raise ValueError(f"oof_proba row {int(np.argmax(sums <= 0))} sums to 0.")
    if np.abs(sums - 1.0).max() > _ROW_SUM_TOLERANCE:
        proba = proba / sums[:, np.newaxis]
    return proba


def _encode(y: np.ndarray, classes: Any, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The classes of the columns and the column of each label."""
    if classes is None:
        classes = np.unique(y)
        if len(classes) != n_columns:
            raise ValueError(
                f"y has {len(classes)} distinct labels but oof_proba has {n_columns} columns; "
                "pass classes= (the estimator's classes_) to say which label each column is."
            )
    else:
        classes = column_or_1d(classes)
        if len(classes) != n_columns:
            raise ValueError(
                f"classes has {len(classes)} labels but oof_proba has {n_columns} columns."
            )
        if len(np.unique(classes)) != len(classes):
            raise ValueError("classes holds a label twice.")
    column = {c: k for k, c in enumerate(classes.tolist())}
    try:
        y_index = np.array([column[v] for v in y.tolist()], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(
            f"y holds the label {label_text(exc.args[0])}, which is not among the classes "
            f"({labels_text(classes)})."
        ) from None
    return classes, y_index


def _confident_labels(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each image, the most probable class whose threshold its probability reaches
    (-1 when none does); classes without a threshold never count."""
    above = proba >= np.where(np.isnan(thresholds), np.inf, thresholds)[np.newaxis, :]
    masked = np.where(above, proba, -np.inf)
    best = np.argmax(masked, axis=1)
    return np.where(above.any(axis=1), best, -1)


def _calibrate(joint_counts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Scale each row of the confident joint to the number of images given that label, then
    normalise to a joint distribution (rows without any confident image keep their mass on
    the diagonal: no evidence of noise there)."""
    rows = joint_counts.sum(axis=1, keepdims=True).astype(float)
    calibrated = np.divide(
        joint_counts * counts[:, np.newaxis],
        rows,
        out=np.diag(counts).astype(float),
        where=rows > 0,
    )
    return calibrated / calibrated.sum()


def _flag(
    rule: str,
    proba: np.ndarray,
    y_index: np.ndarray,
    confident: np.ndarray,
    joint: np.ndarray,
    judged: np.ndarray,
    scores: dict[str, np.ndarray],
) -> np.ndarray:
    off_diagonal = (confident >= 0) & (confident != y_index)
    if rule == "confident_joint":
        return off_diagonal
    if rule == "predicted_neq_given":
        return np.argmax(np.where(judged, proba, -np.inf), axis=1) != y_index
    n = len(y_index)
    flagged = np.zeros(n, dtype=bool)
    if rule.startswith("low_"):
        # As many as the confident joint estimates are wrong, the lowest scores of all
        # (judged) images first; NaN scores (classes not judged) sort last and never count.
        score = scores[rule.removeprefix("low_")]
        n_issues = min(round(n * (1.0 - np.trace(joint))), int(np.isfinite(score).sum()))
        flagged[np.argsort(score, kind="stable")[:n_issues]] = True
        return flagged
    if rule == "prune_by_class":
        for i in np.flatnonzero(judged):
            members = np.flatnonzero(y_index == i)
            n_prune = round(n * (joint[i].sum() - joint[i, i]))
            order = np.argsort(proba[members, i], kind="stable")
            flagged[members[order[:n_prune]]] = True
        return flagged
    for i in np.flatnonzero(judged):
        members = np.flatnonzero(y_index == i)
        for j in np.flatnonzero(judged):
            n_prune = round(n * joint[i, j]) if j != i else 0
            if n_prune == 0:
                continue
            margin = proba[members, j] - proba[members, i]
            order = np.argsort(-margin, kind="stable")
            flagged[members[order[:n_prune]]] = True
    return flagged & off_diagonal if rule == "both" else flagged


def _class_note(n_samples: int, min_class_size: int) -> tuple[str, str]:
    """The status of a class of ``n_samples`` images and what the audit can say about it."""
    if n_samples == 0:
        return NOT_JUDGED, "no image carries this label: no threshold, nothing suggested into it."
    if n_samples == 1:
        return NOT_JUDGED, (
            "a single image: an out-of-fold model never saw the class, so its probability "
            "says nothing about the label. Not judged, and no image is suggested into this "
            "class; check it by eye."
        )
    if n_samples < min_class_size:
        return LIMITED, (
            f"only {n_samples} images: the threshold is the mean of {n_samples} values and the "
            "model learnt the class from fewer still. An image of it that looks like a "
            "well-learnt class is found; images of it filed under other labels are rarely "
            "found, and when its images disagree the audit cannot tell which one is wrong."
        )
    return JUDGED, ""


def _issue_note(
    given: int, suggested: int, counts: np.ndarray, labels: list[Any], min_class_size: int
) -> str:
    rare = [k for k in (given, suggested) if counts[k] < min_class_size]
    if not rare:
        return ""
    which = " and ".join(f"{label_text(labels[k])} ({counts[k]} images)" for k in rare)
    return f"rare class {which}: a weak finding, check it by eye."
