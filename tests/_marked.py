"""A search whose fits leave marks, to count which fits a resumed search runs.

Kept apart from the test module so that the search's worker processes import only this
(and not TensorFlow) to unpickle the estimator.
"""

import time
import uuid
from pathlib import Path

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import RandomizedSearchCV

from skcharclf.model_selection import CachedEstimator

ALPHAS = [0.01, 0.1, 1.0, 10.0]
N_SPLITS = 3
# Every candidate on every fold, then the refit on all the data.
N_FITS = len(ALPHAS) * N_SPLITS + 1


class Interrupted(Exception):
    """Stands for Ctrl-C or a lost machine in the middle of a search."""


class MarkedClassifier(ClassifierMixin, BaseEstimator):
    """A ridge classifier that leaves one file in ``marks`` per finished fit.

    Once ``marks`` holds a file ``limit`` with the number ``k`` and ``k`` fits have finished,
    the next fit raises :class:`Interrupted`: the search dies after ``k`` fits. The limit is
    a file, not a parameter, so the restarted search has the same parameters.
    """

    def __init__(self, alpha=1.0, marks=None, delay=0.0):
        self.alpha = alpha
        self.marks = marks
        self.delay = delay

    def fit(self, X, y):
        marks = Path(self.marks)
        limit = marks / "limit"
        if limit.exists() and len(fits(marks)) >= int(limit.read_text()):
            raise Interrupted("the search was stopped")
        time.sleep(self.delay)
        self.model_ = RidgeClassifier(alpha=self.alpha).fit(X, y)
        self.classes_ = self.model_.classes_
        (marks / f"fit-{uuid.uuid4().hex}").touch()
        return self

    def predict(self, X):
        return self.model_.predict(X)


def fits(marks):
    return list(Path(marks).glob("fit-*"))


def entries(cache):
    """The stored fits (not the hidden file of a write that was cut short)."""
    return sorted(p.name for p in Path(cache).glob("*.joblib") if not p.name.startswith("."))


def marked_search(marks, cache, n_jobs=1):
    return RandomizedSearchCV(
        CachedEstimator(MarkedClassifier(marks=str(marks)), cache),
        {"estimator__alpha": ALPHAS},
        n_iter=len(ALPHAS),
        cv=N_SPLITS,
        n_jobs=n_jobs,
        error_score="raise",
        random_state=0,
    )
