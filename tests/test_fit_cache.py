"""Resumable searches: CachedEstimator stores each finished fit, a restarted search reuses them."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from _data import TINY_CLASSIFIER, bar_chars
from _marked import N_FITS, Interrupted, MarkedClassifier, entries, fits, marked_search
from joblib.externals.loky import get_reusable_executor
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import SkipTestWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import HalvingRandomSearchCV
from sklearn.utils.estimator_checks import check_estimator

from skcharclf import KerasCharClassifier, make_char_pipeline
from skcharclf.model_selection import CachedEstimator, fit_key


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=90, n_features=6, n_informative=4, random_state=0)


def _same_results(a, b):
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key])
    assert a.cv_results_["params"] == b.cv_results_["params"]
    assert a.best_params_ == b.best_params_


@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_restarted_search_runs_only_the_fits_that_had_not_finished(tmp_path, data, n_jobs):
    X, y = data
    marks, cache = tmp_path / "marks", tmp_path / "cache"
    marks.mkdir()
    (marks / "limit").write_text("5")
    with pytest.raises(Interrupted):
        marked_search(marks, cache, n_jobs).fit(X, y)
    # Let every worker of the interrupted search end before counting.
    get_reusable_executor().shutdown(wait=True)
    finished = entries(cache)
    if n_jobs == 1:
        assert len(finished) == len(fits(marks)) == 5  # each fit was stored as it finished
    # joblib kills the other worker: killed between the end of a fit and its storing, it
    # leaves a mark and no entry
    assert 0 < len(finished) <= len(fits(marks)) and len(finished) < N_FITS

    (marks / "limit").unlink()
    for mark in fits(marks):
        mark.unlink()
    resumed = marked_search(marks, cache, n_jobs).fit(X, y)
    assert len(fits(marks)) == N_FITS - len(finished)
    assert set(finished) <= set(entries(cache)) and len(entries(cache)) == N_FITS

    fresh_marks = tmp_path / "fresh"
    fresh_marks.mkdir()
    uninterrupted = marked_search(fresh_marks, tmp_path / "fresh-cache").fit(X, y)
    assert len(fits(fresh_marks)) == N_FITS
    _same_results(resumed, uninterrupted)


def test_a_finished_search_started_again_fits_nothing(tmp_path, data):
    X, y = data
    marks, cache = tmp_path / "marks", tmp_path / "cache"
    marks.mkdir()
    first = marked_search(marks, cache).fit(X, y)
    again = marked_search(marks, cache).fit(X, y)
    assert len(fits(marks)) == N_FITS
    _same_results(first, again)
    assert again.best_estimator_.from_cache_


def test_params_are_reached_through_estimator_and_survive_clone(tmp_path):
    pipe = make_char_pipeline(random_state=0)
    model = CachedEstimator(pipe, tmp_path)
    params = model.get_params()
    assert params["cache_dir"] == tmp_path and params["estimator__clf__epochs"] == "auto"
    copy = clone(model).set_params(estimator__clf__epochs=3)
    assert copy.cache_dir == tmp_path
    assert copy.estimator.named_steps["clf"].epochs == 3
    assert pipe.named_steps["clf"].epochs == "auto"


@pytest.mark.parametrize("cached", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_passes_scikit_learn_estimator_checks(tmp_path, cached):
    model = CachedEstimator(LogisticRegression(), tmp_path if cached else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(model, on_fail=None)
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []
    assert any(tmp_path.iterdir()) == cached


def test_key_follows_parameters_data_and_fit_params(data):
    X, y = data
    model = MarkedClassifier(marks="m")
    key = fit_key(model, X, y)
    assert key == fit_key(clone(model), X.copy(), y.copy())
    assert key != fit_key(clone(model).set_params(alpha=2.0), X, y)
    assert key != fit_key(model, X[1:], y[1:])
    assert key != fit_key(model, X, y, {"sample_weight": np.ones(len(y))})


def test_without_cache_dir_it_only_fits(tmp_path, data):
    X, y = data
    marks = tmp_path / "marks"
    marks.mkdir()
    model = CachedEstimator(MarkedClassifier(marks=str(marks)))
    model.fit(X, y).fit(X, y)
    assert len(fits(marks)) == 2 and model.cache_key_ is None and not model.from_cache_
    assert list(tmp_path.iterdir()) == [marks]


def test_damaged_entry_is_fitted_again_and_replaced(tmp_path, data):
    X, y = data
    marks, cache = tmp_path / "marks", tmp_path / "cache"
    marks.mkdir()
    model = CachedEstimator(MarkedClassifier(marks=str(marks)), cache).fit(X, y)
    entry = cache / f"{model.cache_key_}.joblib"
    entry.write_bytes(b"not a pickle")
    again = clone(model).fit(X, y)
    assert not again.from_cache_ and len(fits(marks)) == 2
    assert clone(model).fit(X, y).from_cache_ and len(fits(marks)) == 2
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_keras_classifier_is_loaded_with_its_network(tmp_path):
    X, y = bar_chars([20, 20], [0, 4])
    model = CachedEstimator(KerasCharClassifier(**TINY_CLASSIFIER), tmp_path)
    first = model.fit(X, y).predict_proba(X)
    loaded = clone(model).fit(X, y)
    assert loaded.from_cache_ and not model.from_cache_
    np.testing.assert_array_equal(loaded.predict_proba(X), first)
    assert list(loaded.classes_) == [0, 1] and loaded.n_features_in_ == 64


@pytest.mark.slow
def test_halving_search_over_the_char_pipeline_resumes(tmp_path):
    X, y = bar_chars([24, 24, 24], [0, 3, 6])
    pipe = make_char_pipeline(size=(8, 8), augment=None, random_state=0)
    pipe.set_params(
        **{f"clf__{k}": v for k, v in TINY_CLASSIFIER.items() if k != "image_shape"}
    )

    def search(cache):
        return HalvingRandomSearchCV(
            CachedEstimator(pipe, cache),
            {"estimator__clf__learning_rate": [1e-3, 3e-3, 1e-2]},
            n_candidates=3,
            resource="estimator__clf__epochs",
            min_resources=1,
            max_resources=3,
            factor=3,
            cv=2,
            random_state=0,
        )

    first = search(tmp_path).fit(X, y)
    stored = {name: (tmp_path / name).stat().st_mtime_ns for name in entries(tmp_path)}
    assert len(stored) == 3 * 2 + 1 * 2 + 1  # round 1, round 2, the refit
    again = search(tmp_path).fit(X, y)
    # nothing was fitted (or written) again
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in entries(tmp_path)} == stored
    assert again.best_estimator_.from_cache_
    _same_results(first, again)


_KILLED_SEARCH = textwrap.dedent(
    """
    import sys
    from sklearn.datasets import make_classification
    from _marked import marked_search

    X, y = make_classification(n_samples=90, n_features=6, n_informative=4, random_state=0)
    marked_search(sys.argv[1], sys.argv[2]).set_params(estimator__estimator__delay=0.3).fit(X, y)
    """
)


@pytest.mark.slow
def test_search_killed_with_sigkill_resumes(tmp_path, data):
    marks, cache = tmp_path / "marks", tmp_path / "cache"
    marks.mkdir()
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    argv = [sys.executable, "-c", _KILLED_SEARCH, str(marks), str(cache)]
    process = subprocess.Popen(argv, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(entries(cache)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = entries(cache)
    assert process.returncode == -signal.SIGKILL and 4 <= len(finished) < N_FITS

    for mark in fits(marks):
        mark.unlink()
    subprocess.run(argv, env=env, check=True, timeout=300)
    assert len(fits(marks)) == N_FITS - len(finished)
    assert set(finished) <= set(entries(cache)) and len(entries(cache)) == N_FITS
