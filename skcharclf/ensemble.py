"""Fold ensembles: one model per cross-validation fold, soft-voted.

The procedure this package follows trains "several models in parallel" on k-fold splits and keeps
each one's best checkpoint. :class:`FoldEnsembleClassifier` does that behind ``fit`` /
``predict``: every member trains on one fold's training part, can stop early on that fold's
held-out part, and the ensemble averages the members' probabilities. The held-out parts also
give out-of-fold predictions for every training sample and per-fold scores for free.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import cv2
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.metrics import check_scoring
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, indexable
from threadpoolctl import threadpool_limits

from skcharclf._atomic import restore_on_failure
from skcharclf._docstring import PREDICT_RETURNS, PROBA_RETURNS, fill_doc
from skcharclf._progress import report_progress
from skcharclf._utils import draw_seed, final_estimator
from skcharclf.diagnostics import NoValidationWarning
from skcharclf.model_selection import check_cv_for_classes, check_train_folds, threads_per_job

__all__ = ["FoldEnsembleClassifier"]

# ``X`` of the methods that hand it to the fitted members (see skcharclf._docstring).
_MEMBERS_X = """\
X : array-like of shape (n_samples, n_features) or image batch
    Samples in the form the members accept."""


def _takes_validation_data(estimator: Any) -> bool:
    return "validation_data" in final_estimator(estimator).get_params(deep=False)


def _set_matching_params(estimator: Any, name: str, value: Any, *, only_if_none: bool) -> None:
    """Set every parameter called ``name`` (``name`` or ``step__name``) of ``estimator``."""
    params = estimator.get_params(deep=True)
    matches = {
        key: value
        for key, current in params.items()
        if (key == name or key.endswith(f"__{name}")) and not (only_if_none and current is not None)
    }
    if matches:
        estimator.set_params(**matches)


def _fit_with_fold_validation(member: Any, X_train, y_train, X_val, y_val) -> None:
    """Fit ``member`` with the held-out fold as the final estimator's ``validation_data``.

    The validation images go through the same fitted preprocessing as the training images;
    samplers (rare-class augmentation) only ever touch the training part.
    """
    steps = getattr(member, "steps", None)
    if not steps:
        member.set_params(validation_data=(X_val, y_val)).fit(X_train, y_train)
        return
    Xt, yt, Xv = X_train, y_train, X_val
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if hasattr(step, "fit_resample"):
            Xt, yt = step.fit_resample(Xt, yt)
        else:
            Xt = step.fit_transform(Xt, yt)
            Xv = step.transform(Xv)
    steps[-1][1].set_params(validation_data=(Xv, y_val)).fit(Xt, yt)


def _aligned_proba(member: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """``member.predict_proba(X)`` with one column per class of the ensemble."""
    proba = member.predict_proba(X)
    member_classes = np.asarray(member.classes_)
    if member_classes.shape == classes.shape and np.array_equal(member_classes, classes):
        return proba
    # Every training part holds every class, but a sampler inside a member's pipeline may
    # still remove one: its probability is then 0.
    aligned = np.zeros((proba.shape[0], classes.shape[0]), dtype=proba.dtype)
    aligned[:, np.searchsorted(classes, member_classes)] = proba
    return aligned


def _fit_fold(
    member: Any,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
    *,
    classes: np.ndarray,
    scorer: Any,
    n_threads: int | None,
    fold_validation: bool,
) -> tuple[Any, np.ndarray, dict[str, float], list[str]]:
    """Fit one member on a fold; return it, its held-out probabilities and scores, and the
    messages of its :class:`NoValidationWarning` (the ensemble warns once for all folds)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoValidationWarning)
        result = _fit_fold_with_threads(member, X_train, y_train, X_test, y_test, classes=classes,
                                   scorer=scorer, n_threads=n_threads,
                                   fold_validation=fold_validation)
    unjudged = []
    for warning in caught:
        if issubclass(warning.category, NoValidationWarning):
            unjudged.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return (*result, unjudged)


def _fit_fold_with_threads(member, X_train, y_train, X_test, y_test, *, classes, scorer, n_threads,
                      fold_validation):
    if n_threads is None:
        return _fit_and_score(member, X_train, y_train, X_test, y_test, classes, scorer,
                              fold_validation)
    # OpenCV and BLAS/OpenMP pools are per process, like TensorFlow's (which the member's own
    # n_threads limits): cap them for this fold, and restore OpenCV's for the caller.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            return _fit_and_score(member, X_train, y_train, X_test, y_test, classes, scorer,
                                  fold_validation)
    finally:
        cv2.setNumThreads(previous)


def _fit_and_score(member, X_train, y_train, X_test, y_test, classes, scorer, fold_validation):
    if fold_validation:
        _fit_with_fold_validation(member, X_train, y_train, X_test, y_test)
    else:
        member.fit(X_train, y_train)
    proba = _aligned_proba(member, X_test, classes)
    scores = scorer(member, X_test, y_test) if scorer is not None else {}
    return member, proba, scores


class FoldEnsembleClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Train one clone of an estimator per cross-validation fold and soft-vote their outputs.

    Each member trains on the training part of one fold. When the estimator (or the last step
    of a pipeline) has a ``validation_data`` parameter, as
    :class:`skcharclf.KerasCharClassifier` does, the member also gets its own held-out fold as
    validation data, so that with early stopping it keeps its best epoch on data it never
    trained on. At prediction time the members' ``predict_proba`` outputs are averaged. The
    held-out folds also give out-of-fold predictions for every training sample and per-fold
    scores.

    Parameters
    ----------
    estimator : estimator or pipeline, default=None
        The model to clone for every fold. It must have ``fit`` and ``predict_proba``; an
        :class:`imblearn.pipeline.Pipeline` of skcharclf steps is the usual choice, and its
        input may then be an image batch (a list of ragged 2D images). ``None`` means
        :class:`~skcharclf.KerasCharClassifier` with its defaults, on a flat batch.
    cv : int, cross-validation generator, iterable or None, default=None
        ``None`` means 5 folds. An int ``k`` means ``StratifiedKFold(k, shuffle=True)``
        seeded by ``random_state``. Every sample must be held out by at least one fold.
        Stratified ``cv`` with more folds than the rarest class has samples raises a
        ValueError naming the class (see :func:`skcharclf.model_selection.check_cv_for_classes`).
    n_jobs : int, default=None
        Folds trained in parallel by joblib; ``None`` means 1 unless in a
        ``joblib.parallel_backend`` context (``"loky"``, ``"dask"``...), ``-1`` means all cores.
    scoring : str, callable, list, tuple or dict, default=("accuracy", "balanced_accuracy", \
"f1_macro")
        Metrics computed on every held-out fold, stored in ``cv_scores_``. Strings are
        scikit-learn scorer names; a callable ``scorer(estimator, X, y)`` is stored under
        ``"score"``; a dict maps names to scorer names or callables. ``None`` computes none.
    validation : {"fold", "estimator"}, default="fold"
        ``"fold"`` passes each member its held-out fold as ``validation_data`` when its final
        estimator has that parameter (the images pass through the pipeline's fitted
        preprocessing first; samplers only see the training part). The held-out fold then
        also chooses the member's epoch, so ``cv_scores_`` and ``oof_proba_`` are slightly
        optimistic. ``"estimator"`` leaves validation to the estimator's own settings (e.g.
        ``validation_fraction``, carved out of the training part), which keeps them unbiased.
    random_state : int, RandomState instance or None, default=None
        Seeds the fold shuffling of an int or None ``cv`` and, when not None, the
        ``random_state`` parameters of each member that are None (a different seed per fold).
    verbose : int, default=0
        Above 0, joblib reports progress and the per-fold scores are printed.
    n_threads_per_job : "auto", int or None, default="auto"
        Threads one member may use while training, to keep parallel folds from
        oversubscribing the cores. It sets each member's ``n_threads`` parameters (TensorFlow's
        thread pools, see :class:`skcharclf.KerasCharClassifier`) and caps OpenCV and
        BLAS/OpenMP threads during the fold's fit. ``"auto"`` applies
        :func:`skcharclf.model_selection.threads_per_job` when folds run in parallel
        processes (``max(1, cores // parallel_folds)`` with loky, 1 with Dask) and leaves
        ``n_threads`` parameters the user set alone; an int always applies; ``None``
        never does.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, one per fold, in fold order.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    cv_scores_ : dict of str to ndarray of shape (n_folds,)
        Each metric of ``scoring`` on each member's held-out fold.
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities: each training sample scored by the member(s) that did not
        train on it (averaged when a repeated ``cv`` holds it out more than once).
    oof_pred_ : ndarray of shape (n_samples,)
        The class with the highest out-of-fold probability.
    test_indices_ : list of ndarray
        For each member, the indices of the training samples it was scored on (its held-out
        fold), in the order of ``estimators_``.
    n_features_in_ : int
        Number of features seen by the members during fit (only for array input).
    feature_names_in_ : ndarray of str
        Column names seen during fit, when X was a data frame with string column names.

    See Also
    --------
    skcharclf.model_selection.check_cv_for_classes : The fold check used by ``fit``.
    sklearn.model_selection.cross_validate : Per-fold scores without an ensemble.

    Notes
    -----
    A member's ``validation_data`` is only used as the procedure's "best checkpoint" when the
    member restores its best epoch (``KerasCharClassifier(early_stopping=True)`` or
    ``checkpoint_selection="best"``); otherwise it only adds ``val_*`` curves to
    ``history_``. For a pipeline, the fold-validation fit runs the steps one by one
    (``fit_transform`` / ``fit_resample``), without the pipeline's ``memory`` cache; nested
    pipelines are fitted with plain ``fit``.

    A fit that does not complete (a member's error, Ctrl-C) leaves the ensemble exactly as it
    was before the call: a fitted ensemble keeps its members, scores and out-of-fold
    predictions, an unfitted one stays unfitted. The ``estimator`` itself is never fitted
    (members are clones).

    Members that warn :class:`~skcharclf.diagnostics.NoValidationWarning` (no validation
    set, or a held-out fold without images of some class) are summed up in one such warning
    per ``fit``, not one per fold.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcharclf import FoldEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> ensemble = FoldEnsembleClassifier(LogisticRegression(max_iter=2000), cv=3,
    ...                                   random_state=0).fit(X / 16, y)
    >>> len(ensemble.estimators_), ensemble.cv_scores_["accuracy"].shape
    (3, (3,))
    >>> ensemble.oof_pred_.shape
    (1797,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "cv": ["cv_object"],
        "n_jobs": [Integral, None],
        "scoring": [str, callable, list, tuple, dict, None],
        "validation": [StrOptions({"fold", "estimator"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_threads_per_job": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
    }

    def __init__(
        self,
        estimator: Any = None,
        cv: Any = None,
        n_jobs: int | None = None,
        scoring: Any = ("accuracy", "balanced_accuracy", "f1_macro"),
        validation: str = "fold",
        random_state: Any = None,
        verbose: int = 0,
        n_threads_per_job: str | int | None = "auto",
    ) -> None:
        self.estimator = estimator
        self.cv = cv
        self.n_jobs = n_jobs
        self.scoring = scoring
        self.validation = validation
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads_per_job = n_threads_per_job

    def _estimator(self) -> Any:
        """``estimator``, or the default member: ``KerasCharClassifier()``."""
        if self.estimator is not None:
            return self.estimator
        from skcharclf.classifier import KerasCharClassifier  # imports TensorFlow

        return KerasCharClassifier()

    def _scorer(self) -> Any:
        """A scorer returning a dict of metric name to score, or None."""
        if self.scoring is None:
            return None
        scoring = self.scoring
        if isinstance(scoring, str):
            scoring = (scoring,)
        elif callable(scoring):
            scoring = {"score": scoring}
        elif isinstance(scoring, dict):
            scoring = {
                name: check_scoring(self._estimator(), scoring=value)
                for name, value in scoring.items()
            }
        return check_scoring(self._estimator(), scoring=scoring)

    def _member_threads(self, n_folds: int) -> int | None:
        if self.n_threads_per_job == "auto":
            return threads_per_job(self.n_jobs, n_tasks=n_folds)
        return self.n_threads_per_job

    @_fit_context(prefer_skip_nested_validation=False)
    @restore_on_failure
    def fit(self, X: Any, y: Any, groups: Any = None) -> FoldEnsembleClassifier:
        """Fit one clone of ``estimator`` per fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image batch
            Training data in whatever form ``estimator`` accepts: a flat array, or a list
            of 2D images when ``estimator`` is a pipeline starting with skcharclf steps.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), optional
            Group labels for group splitters such as ``StratifiedGroupKFold``.

        Returns
        -------
        self : FoldEnsembleClassifier
            The fitted ensemble.
        """
        if y is None:
            raise ValueError(
                "FoldEnsembleClassifier requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        # Keeps lists (ragged image batches), arrays, frames and sparse matrices as they are.
        X, y = indexable(X, y)
        if y.shape[0] == 0:
            raise ValueError("FoldEnsembleClassifier.fit got 0 samples; at least 2 per class.")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        cv = check_cv_for_classes(self.cv, y, groups=groups, random_state=self.random_state)
        splits = list(cv.split(np.zeros((y.shape[0], 1)), y, groups))
        # Checked again on the folds actually used: an unseeded shuffling splitter draws new
        # folds on every split() call.
        check_train_folds(splits, y)
        times_held_out = np.bincount(np.concatenate([test for _, test in splits]),
                                     minlength=y.shape[0])
        if (times_held_out == 0).any():
            raise ValueError(
                f"cv leaves {int((times_held_out == 0).sum())} samples out of every test "
                "fold, so they get no out-of-fold prediction; use a k-fold splitter "
                "(StratifiedKFold), not a shuffle-split."
            )

        scorer = self._scorer()
        n_threads = self._member_threads(len(splits))
        fold_validation = self.validation == "fold" and _takes_validation_data(self._estimator())
        members = [self._make_member(n_threads) for _ in splits]
        if self.random_state is not None:
            rng = check_random_state(self.random_state)
            for member in members:
                _set_matching_params(member, "random_state", draw_seed(rng),
                                     only_if_none=True)

        outcomes = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_fold)(
                member,
                _safe_indexing(X, train),
                y[train],
                _safe_indexing(X, test),
                y[test],
                classes=self.classes_,
                scorer=scorer,
                n_threads=n_threads,
                fold_validation=fold_validation,
            )
            for member, (train, test) in zip(members, splits, strict=True)
        )

        results = [outcome[:3] for outcome in outcomes]
        unjudged = [outcome[3] for outcome in outcomes if outcome[3]]
        if unjudged:
            warnings.warn(
                f"{len(unjudged)} of {len(splits)} fold members could not judge overfitting "
                f"(on all classes); the first: {unjudged[0][0]}",
                NoValidationWarning,
                stacklevel=2,
            )
        self.estimators_ = [member for member, _, _ in results]
        self.test_indices_ = [test for _, test in splits]
        names = list(results[0][2])
        self.cv_scores_ = {name: np.array([r[2][name] for r in results]) for name in names}
        oof = np.zeros((y.shape[0], self.classes_.shape[0]))
        for (_, test), (_, proba, _) in zip(splits, results, strict=True):
            oof[test] += proba
        self.oof_proba_ = oof / times_held_out[:, np.newaxis]
        self.oof_pred_ = self.classes_[np.argmax(self.oof_proba_, axis=1)]
        if self.verbose > 0:
            for fold, (_, _, scores) in enumerate(results):
                line = ", ".join(f"{k}={v:.4f}" for k, v in scores.items())
                report_progress(f"[FoldEnsembleClassifier] fold {fold}: {line}")
        return self

    def _make_member(self, n_threads: int | None) -> Any:
        member = clone(self._estimator())
        if n_threads is not None:
            _set_matching_params(member, "n_threads", n_threads,
                                 only_if_none=self.n_threads_per_job == "auto")
        return member

    @fill_doc(X=_MEMBERS_X, proba=PROBA_RETURNS)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Average the members' class probabilities.

        A member whose training part lost a class (a sampler in its pipeline may remove one)
        gives that class a probability of 0.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        %(proba)s
        """
        check_is_fitted(self)
        total = _aligned_proba(self.estimators_[0], X, self.classes_).astype(np.float64)
        for member in self.estimators_[1:]:
            total += _aligned_proba(member, X, self.classes_)
        return total / len(self.estimators_)

    @fill_doc(X=_MEMBERS_X, y_pred=PREDICT_RETURNS)
    def predict(self, X: Any) -> np.ndarray:
        """Predict the class with the highest mean probability.

        The argmax of :meth:`predict_proba`: a tie goes to the class that comes first in
        ``classes_``.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        %(y_pred)s
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def n_features_in_(self) -> int:
        """Number of features seen by the members during fit."""
        return self.estimators_[0].n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Column names seen by the members during fit."""
        return self.estimators_[0].feature_names_in_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimators_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._estimator())
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.string = inner.input_tags.string
        tags.input_tags.two_d_array = inner.input_tags.two_d_array
        if inner.classifier_tags is not None:
            # an average of members that score poorly on toy problems scores poorly too
            tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
        return tags
