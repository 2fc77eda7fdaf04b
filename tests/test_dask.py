"""Scale-out: the same searches and fold ensembles on a dask.distributed cluster.

A ``LocalCluster`` of two worker processes stands in for a real cluster: the estimators are
pickled, shipped to other processes and fitted there, exactly as on remote machines.
"""

import logging

import joblib
import numpy as np
import pytest
from sklearn.model_selection import RandomizedSearchCV

from skcharclf.datasets import load_digit_chars
from skcharclf.ensemble import FoldEnsembleClassifier
from skcharclf.model_selection import check_cv_for_classes, search_space, threads_per_job
from skcharclf.pipeline import make_baseline_pipeline

distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: .[dask]")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture(scope="module")
def small_chars():
    return load_digit_chars(n_samples_per_class=20, rare_ratio=0.3, random_state=0,
                            return_X_y=True)


def _search(y):
    pipe = make_baseline_pipeline(n_estimators=10, random_state=0)
    return RandomizedSearchCV(
        pipe,
        search_space(pipe),
        n_iter=4,
        cv=check_cv_for_classes(3, y, random_state=0),
        scoring="f1_macro",
        random_state=0,
        n_jobs=2,
    )


def test_dask_search_finds_the_same_best_parameters_as_loky(client, small_chars):
    X, y = small_chars
    with joblib.parallel_backend("loky"):
        local = _search(y).fit(X, y)
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
        remote = _search(y).fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    # the fits ran as tasks on the cluster's worker processes (joblib may batch several
    # fits into one task)
    assert tasks.data
    assert {task["worker"] for task in tasks.data} <= set(client.scheduler_info()["workers"])


def test_dask_fold_ensemble_matches_loky(client, small_chars):
    X, y = small_chars
    model = FoldEnsembleClassifier(
        make_baseline_pipeline(n_estimators=10), cv=3, n_jobs=2, random_state=0
    )
    with joblib.parallel_backend("loky"):
        local = model.fit(X, y)
        local_proba = local.predict_proba(X[:20])
        local_oof = local.oof_proba_
    with joblib.parallel_backend("dask"):
        remote = model.fit(X, y)
    np.testing.assert_allclose(remote.oof_proba_, local_oof)
    np.testing.assert_allclose(remote.predict_proba(X[:20]), local_proba)
    assert {k: v.shape for k, v in remote.cv_scores_.items()} == {
        "accuracy": (3,), "balanced_accuracy": (3,), "f1_macro": (3,)
    }


def test_dask_jobs_get_one_thread_each(client):
    with joblib.parallel_backend("dask"):
        assert threads_per_job() == 1
