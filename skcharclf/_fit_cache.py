"""Fits that outlive an interrupted search: :class:`CachedEstimator`.

A search killed after hours (Ctrl-C, ``kill -9``, a lost machine) has finished most of its
candidate x fold fits; started again it would redo them all. :class:`CachedEstimator` wraps
the estimator a search clones: every ``fit`` first looks for a finished fit of the same
estimator on the same data in a folder, loads it when there is one and otherwise fits and
stores the result (all or nothing, as soon as the fit returns). The search itself stays
scikit-learn's own; only its candidates' fits are remembered.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from . import __version__
from ._atomic import atomic_output

__all__ = ["CachedEstimator", "fit_key"]

# The distributions whose versions are part of every key: an entry pickled by other versions
# (whose estimators may pickle or behave differently) is not read back.
_DISTRIBUTIONS = ("scikit-learn", "imbalanced-learn", "keras", "scikeras", "numpy")


def _describe(value: Any) -> Any:
    """``value`` as plain data for hashing: an estimator as its class and parameters."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        params = value.get_params(deep=False)
        return (
            f"{type(value).__module__}.{type(value).__qualname__}",
            sorted((name, _describe(param)) for name, param in params.items()),
        )
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_describe(item) for item in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), _describe(v)) for k, v in value.items()))
    return value


def _versions() -> list[tuple[str, str]]:
    import importlib.metadata

    versions = [("skcharclf", __version__)]
    for name in _DISTRIBUTIONS:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((name, ""))
    return versions


def fit_key(estimator: Any, X: Any, y: Any = None, fit_params: dict | None = None) -> str:
    """The cache key of fitting ``estimator`` on ``(X, y)``: a hash of its class and
    parameters (nested estimators included), the data and the fit parameters.

    Parameters
    ----------
    estimator : estimator
        The (unfitted) estimator.
    X, y : array-like
        The training data: in a search, one fold's training part, so the key also tells
        the folds apart.
    fit_params : dict, optional
        The other arguments of ``fit`` (``sample_weight``, ...).

    Returns
    -------
    key : str
        32 hexadecimal digits; equal for equal parameters and data, whatever the process.

    Raises
    ------
    TypeError
        If a parameter or the data cannot be pickled (and so not hashed).
    """
    content = (_describe(estimator), X, y, _describe(fit_params or {}), _versions())
    try:
        return joblib.hash(content)
    except Exception as exc:
        raise TypeError(
            f"CachedEstimator cannot hash the parameters or data of {type(estimator).__name__}: "
            f"every parameter and the data must be picklable ({type(exc).__name__}: {exc})."
        ) from exc


def _inner_has(name: str) -> Any:
    """For :func:`available_if`: whether the wrapped estimator (fitted or not) has ``name``."""

    def check(self: CachedEstimator) -> bool:
        getattr(getattr(self, "estimator_", self.estimator), name)
        return True

    return check


class CachedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Remember every fit of ``estimator`` in a folder, so a search started again resumes.

    ``fit`` computes a key from the estimator's class and parameters (nested estimators,
    such as a pipeline's steps, included), the training data and the fit parameters. When
    ``cache_dir`` holds a fit under that key, it is loaded instead of fitting; otherwise the
    estimator is fitted and stored there as soon as it is fitted, all or nothing. Wrap the
    estimator a ``RandomizedSearchCV`` or ``HalvingRandomSearchCV`` searches: when the
    search is interrupted and started again with the same folder, the candidate x fold fits
    that had finished are loaded, and only the others run. With fixed ``random_state``
    values and the same ``cv`` splits, the resumed search ends with the same results as an
    uninterrupted one.

    Parameters
    ----------
    estimator : estimator
        The estimator to fit (a pipeline from :func:`~skcharclf.make_char_pipeline`, ...).
        Its parameters are reached as ``estimator__<name>``: ``estimator__clf__epochs``.
    cache_dir : str or path-like, optional
        The folder of the stored fits (created if missing). None fits without a cache.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator: loaded from the cache, or fitted by this call.
    from_cache_ : bool
        Whether ``estimator_`` was loaded from the cache.
    cache_key_ : str or None
        The key of this fit (None without ``cache_dir``); its file is
        ``<cache_dir>/<cache_key_>.joblib``.
    classes_ : ndarray
        The classes of a fitted classifier.

    See Also
    --------
    fit_key : The key of a fit.

    Notes
    -----
    The entries are joblib (pickle) files: loading one can run code, so only point
    ``cache_dir`` at a folder that only you write to. An entry that cannot be read (damaged,
    or from another version of the libraries) is fitted again and replaced. A process
    killed while writing an entry leaves at most a hidden ``.*.partial.joblib`` file, which
    is never read. Two candidates with equal parameters share their fits. The folder grows
    with every fit: remove it once the search is done.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import RandomizedSearchCV
    >>> from skcharclf.model_selection import CachedEstimator
    >>> X, y = load_iris(return_X_y=True)
    >>> model = CachedEstimator(LogisticRegression(max_iter=500), "search-cache")
    >>> search = RandomizedSearchCV(
    ...     model, {"estimator__C": [0.1, 1.0, 10.0]}, n_iter=3, cv=3, random_state=0
    ... )  # fit it, stop it, fit it again: the finished fits are loaded
    >>> search.fit(X, y).best_params_  # doctest: +SKIP
    {'estimator__C': 10.0}
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(self, estimator: Any, cache_dir: str | os.PathLike | None = None) -> None:
        self.estimator = estimator
        self.cache_dir = cache_dir

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> CachedEstimator:
        """Load the stored fit of ``estimator`` on this data, or fit and store it.

        Parameters
        ----------
        X : array-like
            Training data, as ``estimator`` takes it.
        y : array-like, optional
            Targets.
        **fit_params : dict
            Passed on to ``estimator.fit`` (and part of the key).

        Returns
        -------
        self : CachedEstimator
        """
        estimator = clone(self.estimator)
        self.from_cache_ = False
        self.cache_key_ = None
        if self.cache_dir is None:
            self.estimator_ = estimator.fit(X, y, **fit_params)
            return self
        self.cache_key_ = fit_key(estimator, X, y, fit_params)
        folder = Path(self.cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        entry = folder / f"{self.cache_key_}.joblib"
        stored = _load(entry)
        if stored is not None:
            self.estimator_, self.from_cache_ = stored, True
            return self
        self.estimator_ = estimator.fit(X, y, **fit_params)
        with atomic_output(entry) as partial:
            joblib.dump(self.estimator_, partial)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimator_")

    def __sklearn_tags__(self) -> Any:
        # A search must treat the wrapper as what it wraps (stratified folds for a classifier).
        return copy.deepcopy(get_tags(self.estimator))

    @property
    def classes_(self) -> Any:
        """The classes of the fitted classifier."""
        check_is_fitted(self)
        return self.estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        """Number of features seen by the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.n_features_in_

    @available_if(_inner_has("predict"))
    def predict(self, X: Any) -> Any:
        """``predict`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``predict_proba`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``predict_log_proba`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``decision_function`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_inner_has("transform"))
    def transform(self, X: Any) -> Any:
        """``transform`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.transform(X)

    @available_if(_inner_has("score"))
    def score(self, X: Any, y: Any = None, **params: Any) -> float:
        """``score`` of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.score(X, y, **params)


def _load(entry: Path) -> Any:
    """The estimator stored in ``entry``, or None when there is none or it cannot be read."""
    if not entry.is_file():
        return None
    try:
        return joblib.load(entry)
    except Exception:
        # Damaged, or pickled by other library versions: fit again and replace it.
        return None
