"""Model selection for character pipelines: search spaces, class-aware folds, thread budgets.

scikit-learn's searches (``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingRandomSearchCV``)
drive skcharclf pipelines unchanged; this module adds the four things they leave to the user:

* :func:`search_space` returns a sensible ``param_distributions`` for the char pipeline
  (steps ``"denoise"``, ``"resize"``, ``"augment"``, ``"clf"``), so a good random search is
  one line;
* :func:`check_cv_for_classes` turns ``cv`` into a stratified splitter and raises a clear error
  when a class has fewer samples than folds (scikit-learn only warns, then scores folds that
  lack the class);
* :func:`threads_per_job` gives the per-worker thread budget that keeps ``n_jobs`` parallel
  trainings from oversubscribing the machine;
* :class:`CachedEstimator` stores every finished fit of a search, so a search that was
  interrupted and is started again only runs the fits that had not finished.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from joblib import cpu_count, effective_n_jobs
from joblib._parallel_backends import LokyBackend, MultiprocessingBackend
from joblib.parallel import get_active_backend
from scipy.stats import loguniform, uniform
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    check_cv,
)
from sklearn.utils.multiclass import check_classification_targets

from ._fit_cache import CachedEstimator, fit_key
from ._format import label_text as _label
from ._utils import draw_seed

__all__ = [
    "CachedEstimator",
    "check_cv_for_classes",
    "fit_key",
    "search_space",
    "threads_per_job",
]


# ---------------------------------------------------------------------------------------------
# Search spaces
# ---------------------------------------------------------------------------------------------


def _preprocessing_space() -> dict[str, Any]:
    # The procedure's "function to choose the input": no filter, the three filters it applied,
    # and the two ways of bringing 9..28-pixel-wide crops to one size.
    return {
        "denoise__method": ["none", "median", "bilateral", "sharpen"],
        "resize__mode": ["pad", "stretch", "fit_height"],
    }


def _augmentation_space() -> dict[str, Any]:
    # Top up every rare class or only the rarest one, with gentler or stronger transforms;
    # online augmentation perturbs every training batch of the CNN instead.
    return {
        "augment__sampling_strategy": ["not majority", "minority"],
        "augment__transforms": ["light", "default", "strong"],
        "clf__online_augmentation": [None, "light", "default"],
    }


def _keras_space() -> dict[str, Any]:
    return {
        # Adam's usable range spans two decades around 1e-3: sample it on a log scale.
        "clf__learning_rate": loguniform(1e-4, 1e-2),
        "clf__lr_schedule": ["constant", "cosine"],
        "clf__loss": ["ce", "focal", "logit_adjusted", "balanced_softmax"],
        # Only read when loss="focal"; 0 would be plain cross-entropy, above ~3 it starves
        # the easy classes of gradient.
        "clf__focal_gamma": uniform(0.5, 2.5),
        "clf__batch_size": [32, 64, 128],
        "clf__dropout": uniform(0.0, 0.5),
        "clf__head": ["gap", "flatten"],
    }


def _forest_space() -> dict[str, Any]:
    # No n_estimators: more trees never hurt accuracy, it is a budget like the CNN's epochs.
    return {
        "clf__max_features": ["sqrt", 0.05, 0.1, 0.2],
        "clf__min_samples_leaf": [1, 2, 4],
        "clf__class_weight": [None, "balanced", "balanced_subsample"],
    }


def _is_forest(estimator: Any) -> bool:
    params = estimator.get_params(deep=True)
    return "clf__n_estimators" in params and "clf__max_features" in params


def search_space(
    estimator: Any = None,
    *,
    preprocessing: bool = True,
    augmentation: bool = True,
    classifier: bool = True,
) -> dict[str, Any]:
    """Default ``param_distributions`` for a character pipeline.

    The keys use the pipeline step names of :func:`skcharclf.make_char_pipeline`
    (``"denoise"``, ``"resize"``, ``"augment"``, ``"clf"``); continuous hyperparameters are
    scipy distributions (the learning rate log-uniform), discrete ones lists. Pass the result
    to :class:`sklearn.model_selection.RandomizedSearchCV` or
    :class:`sklearn.model_selection.HalvingRandomSearchCV`.

    Parameters
    ----------
    estimator : Pipeline, optional
        The pipeline to search. When given, only the parameters it has are kept, so one call
        fits both :func:`skcharclf.make_char_pipeline` and
        :func:`skcharclf.make_baseline_pipeline` (no ``"augment"`` step; a random forest
        gets a forest space instead of the CNN's).
    preprocessing : bool, default=True
        Include ``denoise__method`` (none, median, bilateral, sharpen) and ``resize__mode``
        (pad, stretch, fit_height).
    augmentation : bool, default=True
        Include ``augment__sampling_strategy`` (whether
        :class:`skcharclf.RareClassAugmenter` tops up every class but the largest or only the
        smallest), ``augment__transforms`` (light, default, strong) and
        ``clf__online_augmentation`` (none, light, default).
    classifier : bool, default=True
        Include the classifier's hyperparameters: for :class:`skcharclf.KerasCharClassifier`
        the learning rate (log-uniform 1e-4 to 1e-2), schedule (constant, cosine), loss
        (ce, focal, logit_adjusted, balanced_softmax), focal gamma (0.5 to 3), batch size
        (32, 64, 128), dropout (0 to 0.5) and head (gap, flatten); for a random forest its
        ``max_features``, ``min_samples_leaf`` and ``class_weight``.

    Returns
    -------
    param_distributions : dict
        Parameter name to list or frozen scipy distribution; a new dict on every call.
        Budgets are never included (``clf__epochs``, a forest's ``clf__n_estimators``): fix
        them on the pipeline, or use epochs as the resource of
        ``HalvingRandomSearchCV(resource="clf__epochs")``.

    Raises
    ------
    ValueError
        When no group is selected, or ``estimator`` has none of the selected parameters.

    See Also
    --------
    check_cv_for_classes : Stratified folds with a clear error for too-rare classes.
    threads_per_job : Thread budget per parallel search job.

    Examples
    --------
    >>> from skcharclf.model_selection import search_space
    >>> space = search_space(preprocessing=False, augmentation=False)
    >>> sorted(space)[:3]
    ['clf__batch_size', 'clf__dropout', 'clf__focal_gamma']
    >>> [float(bound) for bound in space["clf__learning_rate"].support()]
    [0.0001, 0.01]
    """
    if not (preprocessing or augmentation or classifier):
        raise ValueError(
            "search_space: preprocessing, augmentation and classifier are all False; "
            "select at least one group."
        )
    space: dict[str, Any] = {}
    if preprocessing:
        space.update(_preprocessing_space())
    if augmentation:
        space.update(_augmentation_space())
    if classifier:
        forest = estimator is not None and _is_forest(estimator)
        space.update(_forest_space() if forest else _keras_space())
    if estimator is None:
        return space
    params = estimator.get_params(deep=True)
    kept = {name: values for name, values in space.items() if name in params}
    if not kept:
        raise ValueError(
            f"search_space: {type(estimator).__name__} has none of the parameters "
            f"{sorted(space)}; search_space expects a pipeline with steps named "
            "'denoise', 'resize', 'augment' and 'clf' (see make_char_pipeline)."
        )
    return kept


# ---------------------------------------------------------------------------------------------
# Class-aware cross-validation
# ---------------------------------------------------------------------------------------------


def _n_stratified_folds(cv: Any) -> int | None:
    """Folds per repetition of a stratified splitter, ``None`` for other splitters."""
    if isinstance(cv, (StratifiedKFold, StratifiedGroupKFold)):
        return int(cv.n_splits)
    if isinstance(cv, RepeatedStratifiedKFold):
        return int(cv.cvargs["n_splits"])
    return None


def check_train_folds(splits: Iterable[tuple[np.ndarray, np.ndarray]], y: np.ndarray) -> None:
    """Raise when a training part lacks a class: its model could never predict that class.

    Parameters
    ----------
    splits : iterable of (train, test) index arrays
        The folds, as a splitter's ``split`` yields them.
    y : ndarray of shape (n_samples,)
        The class labels the indices point into.

    Raises
    ------
    ValueError
        Naming the first fold whose training part lacks a class, and the class.
    """
    classes = np.unique(y)
    for fold, (train, _) in enumerate(splits):
        missing = np.setdiff1d(classes, y[train])
        if missing.size:
            names = ", ".join(_label(c) for c in missing)
            raise ValueError(
                f"The training part of fold {fold} holds no sample of class {names}, so the "
                "model trained on it cannot predict that class. Use a stratified splitter "
                "(StratifiedKFold) with fewer folds, or collect more samples of that class."
            )


def check_cv_for_classes(
    cv: Any = 5,
    y: Any = None,
    *,
    groups: Any = None,
    random_state: Any = None,
) -> Any:
    """Build a stratified cross-validator and check that every class can fill every fold.

    scikit-learn's ``StratifiedKFold`` only warns when the rarest class has fewer samples than
    ``n_splits``; the folds that then lack the class give meaningless per-class scores
    (macro-F1, balanced accuracy) and, for a class of one sample, a training part without
    it. With rare classes this is the common case, so this helper raises instead, naming the
    class and the number of folds that would work. Use it for ``cv`` in searches;
    :class:`skcharclf.FoldEnsembleClassifier` calls it itself.

    Parameters
    ----------
    cv : int, cross-validation generator, iterable or None, default=5
        ``None`` means 5. An int ``k`` becomes ``StratifiedKFold(k, shuffle=True,
        random_state=...)``: shuffled, because image collections are often stored sorted by
        class. A splitter or an iterable of ``(train, test)`` index pairs is used as is.
    y : array-like of shape (n_samples,)
        The class labels.
    groups : array-like of shape (n_samples,), optional
        Group labels, for group splitters.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling when ``cv`` is an int or None. ``None`` draws one seed now, so the
        returned splitter gives the same folds on every ``split`` call (every candidate of a
        search, every round of successive halving, is scored on the same folds).

    Returns
    -------
    cv : cross-validator
        An object with ``split`` and ``get_n_splits``.

    Raises
    ------
    ValueError
        When a class has fewer samples than a stratified ``cv`` has folds (the message names
        the class, its count, and the largest usable number of folds), or, for any other
        splitter, when a fold's training part lacks a class.

    See Also
    --------
    sklearn.model_selection.check_cv : The scikit-learn helper this one builds on.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf.model_selection import check_cv_for_classes
    >>> y = np.array([0] * 10 + [1] * 10 + [2] * 3)
    >>> check_cv_for_classes(3, y, random_state=0)
    StratifiedKFold(n_splits=3, random_state=0, shuffle=True)
    >>> check_cv_for_classes(5, y)
    Traceback (most recent call last):
    ...
    ValueError: cv asks for 5 stratified folds but class 2 has only 3 samples...
    """
    if y is None:
        raise ValueError("check_cv_for_classes needs the class labels y, got None.")
    y = np.asarray(y)
    check_classification_targets(y)
    if cv is None or isinstance(cv, (int, np.integer)):
        seed = random_state
        if random_state is None or isinstance(random_state, np.random.RandomState):
            seed = draw_seed(random_state)
        cv = check_cv(5 if cv is None else cv, y, classifier=True, shuffle=True, random_state=seed)
    else:
        cv = check_cv(cv, y, classifier=True)
    classes, counts = np.unique(y, return_counts=True)
    n_folds = _n_stratified_folds(cv)
    if n_folds is None:
        check_train_folds(cv.split(np.zeros((y.shape[0], 1)), y, groups), y)
        return cv
    if counts.min() < 2:
        lonely = classes[counts < 2]
        which = (
            f"Class {_label(lonely[0])} has" if lonely.size == 1
            else f"Classes {', '.join(_label(c) for c in lonely)} have"
        )
        raise ValueError(
            f"{which} only 1 sample: cross-validation needs at least 2 samples per class (one "
            "to train on, one to test). Collect or augment more samples, or drop the class."
        )
    too_rare = counts < n_folds
    if too_rare.any():
        rarest = classes[np.argmin(counts)]
        detail = ", ".join(
            f"{_label(c)} ({n})" for c, n in zip(classes[too_rare], counts[too_rare], strict=True)
        )
        raise ValueError(
            f"cv asks for {n_folds} stratified folds but class {_label(rarest)} has only "
            f"{counts.min()} samples (classes with fewer than {n_folds}: {detail}); each fold "
            f"must hold at least one sample of every class. Use at most {counts.min()} folds "
            f"(cv={counts.min()}), or collect or augment more samples of the rare classes."
        )
    return cv


# ---------------------------------------------------------------------------------------------
# Thread budgets
# ---------------------------------------------------------------------------------------------


def threads_per_job(n_jobs: int | None = None, *, n_tasks: int | None = None) -> int | None:
    """Threads each of ``n_jobs`` parallel training jobs may use without oversubscription.

    TensorFlow starts one thread per core in every process, so two loky workers training at
    once on a 2-core machine run four busy threads on two cores and each goes slower than
    alone. The rule: give each job ``cores // n_jobs`` threads. Set the result as the
    classifier's ``n_threads`` before a parallel search::

        pipe.set_params(clf__n_threads=threads_per_job(2))
        RandomizedSearchCV(pipe, space, n_jobs=2)

    Parameters
    ----------
    n_jobs : int, optional
        The ``n_jobs`` given to the search; ``None`` and negative values are resolved by
        joblib, inside an active ``joblib.parallel_backend`` context if there is one.
    n_tasks : int, optional
        The number of jobs there are to run, when it may be smaller than ``n_jobs`` (five
        folds on eight workers run five at a time).

    Returns
    -------
    n_threads : int or None
        ``max(1, cores // n_jobs)`` for process-based backends (loky, multiprocessing);
        1 for a cluster backend such as Dask, whose workers run one task per core by default;
        ``None`` (keep TensorFlow's defaults) when only one job runs at a time or jobs are
        threads of one process.

    See Also
    --------
    skcharclf.FoldEnsembleClassifier : Applies this rule to its members itself.

    Examples
    --------
    >>> from skcharclf.model_selection import threads_per_job
    >>> threads_per_job(1) is None
    True
    """
    backend, _ = get_active_backend()
    n_parallel = effective_n_jobs(n_jobs)
    if n_tasks is not None:
        n_parallel = min(n_parallel, n_tasks)
    # Threads of one process share TensorFlow's pools, so they cannot oversubscribe them.
    if n_parallel <= 1 or getattr(backend, "uses_threads", False):
        return None
    if isinstance(backend, (LokyBackend, MultiprocessingBackend)):
        return max(1, cpu_count() // n_parallel)
    # A cluster backend (Dask): by default its workers run one task per core, so each task
    # gets one thread; the client cannot see the workers' core counts.
    return 1
