"""Search recipes, search spaces, class-aware folds and thread budgets."""

import numpy as np
import pytest
from joblib import cpu_count, parallel_backend
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterSampler,
    RandomizedSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)

from skcharclf.datasets import load_digit_chars
from skcharclf.model_selection import check_cv_for_classes, search_space, threads_per_job
from skcharclf.pipeline import make_baseline_pipeline


@pytest.fixture(scope="module")
def small_chars():
    """About 150 ragged noisy character images, classes 2, 5 and 8 rare (6 samples each)."""
    return load_digit_chars(n_samples_per_class=20, rare_ratio=0.3, random_state=0,
                            return_X_y=True)


# --------------------------------------------------------------------------------------------
# search_space
# --------------------------------------------------------------------------------------------


def test_search_space_groups():
    full = search_space()
    assert {"denoise__method", "resize__mode"} <= set(full)
    assert {
        "augment__sampling_strategy", "augment__transforms", "clf__online_augmentation"
    } <= set(full)
    assert {
        "clf__learning_rate", "clf__loss", "clf__focal_gamma", "clf__batch_size",
        "clf__dropout", "clf__head",
    } <= set(full)
    assert "clf__epochs" not in full  # the budget is never searched here
    assert isinstance(full["clf__learning_rate"], type(loguniform(1e-4, 1e-2)))
    low, high = full["clf__learning_rate"].support()
    assert (low, high) == pytest.approx((1e-4, 1e-2))

    only_clf = search_space(preprocessing=False, augmentation=False)
    assert all(name.startswith("clf__") for name in only_clf)
    assert "clf__online_augmentation" not in only_clf
    only_pre = search_space(augmentation=False, classifier=False)
    assert set(only_pre) == {"denoise__method", "resize__mode"}
    assert search_space() is not search_space()  # a fresh dict: safe to edit


def test_search_space_learning_rate_is_log_uniform():
    draws = search_space(preprocessing=False, augmentation=False)["clf__learning_rate"].rvs(
        4000, random_state=0
    )
    # each decade of [1e-4, 1e-2] gets half the draws
    assert np.mean(draws < 1e-3) == pytest.approx(0.5, abs=0.03)


def test_search_space_follows_the_given_pipeline():
    baseline = make_baseline_pipeline(n_estimators=10)
    space = search_space(baseline)
    assert not any(name.startswith("augment__") for name in space)
    assert "clf__learning_rate" not in space  # a random forest gets a forest space
    assert {"clf__max_features", "clf__class_weight", "denoise__method"} <= set(space)
    assert "clf__n_estimators" not in space  # a budget, like epochs
    params = baseline.get_params()
    assert all(name in params for name in space)
    for candidate in ParameterSampler(space, n_iter=5, random_state=0):
        clone(baseline).set_params(**candidate)


def test_search_space_sampled_values_are_valid_step_parameters():
    baseline = make_baseline_pipeline(n_estimators=10)
    for candidate in ParameterSampler(search_space(baseline), n_iter=10, random_state=0):
        pipe = clone(baseline).set_params(**candidate)
        for _, step in pipe.steps:
            step._validate_params()  # scikit-learn's own parameter constraints


def test_search_space_errors():
    with pytest.raises(ValueError, match="select at least one group"):
        search_space(preprocessing=False, augmentation=False, classifier=False)
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="LogisticRegression has none of the parameters"):
        search_space(LogisticRegression())


def test_search_over_a_parameter_that_does_not_exist_gets_sklearn_error(small_chars):
    X, y = small_chars
    space = {**search_space(augmentation=False, classifier=False), "denoise__nope": [1, 2]}
    search = RandomizedSearchCV(make_baseline_pipeline(n_estimators=5), space, n_iter=2, cv=2)
    with pytest.raises(ValueError, match=r"Invalid parameter 'nope' for estimator Denoiser"):
        search.fit(X, y)


# --------------------------------------------------------------------------------------------
# check_cv_for_classes
# --------------------------------------------------------------------------------------------


def test_check_cv_for_classes_builds_shuffled_stratified_folds():
    y = np.repeat([0, 1, 2], [10, 10, 4])
    cv = check_cv_for_classes(4, y, random_state=3)
    assert isinstance(cv, StratifiedKFold)
    assert (cv.n_splits, cv.shuffle, cv.random_state) == (4, True, 3)
    assert check_cv_for_classes(None, np.repeat([0, 1], 5)).n_splits == 5
    # random_state=None: one seed drawn now, so every split() call gives the same folds
    unseeded = check_cv_for_classes(4, y)
    first = [test.tolist() for _, test in unseeded.split(y, y)]
    assert first == [test.tolist() for _, test in unseeded.split(y, y)]


def test_check_cv_for_classes_rejects_too_many_folds():
    y = np.repeat([0, 1, 2], [10, 10, 3])
    message = r"5 stratified folds but class 2 has only 3 samples"
    with pytest.raises(ValueError, match=message) as err:
        check_cv_for_classes(5, y)
    assert "Use at most 3 folds (cv=3)" in str(err.value)
    with pytest.raises(ValueError, match="class 2 has only 3 samples"):
        check_cv_for_classes(StratifiedKFold(4), y)
    with pytest.raises(ValueError, match="class 2 has only 3 samples"):
        check_cv_for_classes(RepeatedStratifiedKFold(n_splits=4, n_repeats=2), y)
    names = np.repeat(["cat", "dog", "emu"], [10, 10, 3])
    with pytest.raises(ValueError, match=r"class 'emu' has only 3 samples"):
        check_cv_for_classes(4, names)
    with pytest.raises(ValueError, match=r"Class 7 has only 1 sample"):
        check_cv_for_classes(2, np.array([0, 0, 1, 1, 7]))
    assert check_cv_for_classes(3, y).n_splits == 3


def test_check_cv_for_classes_checks_other_splitters_fold_by_fold():
    y = np.repeat([0, 1, 2], [10, 10, 3])  # sorted by class: KFold(5) leaves class 2 out
    with pytest.raises(ValueError, match=r"training part of fold 4 holds no sample of class 2"):
        check_cv_for_classes(KFold(5), y)
    balanced = np.repeat([0, 1, 2], 10)
    shuffled = check_cv_for_classes(KFold(2, shuffle=True, random_state=0), balanced)
    assert isinstance(shuffled, KFold)
    with pytest.raises(ValueError, match="needs the class labels"):
        check_cv_for_classes(3, None)


def test_searches_accept_the_checked_cv(small_chars):
    X, y = small_chars
    cv = check_cv_for_classes(3, y, random_state=0)
    grid = GridSearchCV(
        make_baseline_pipeline(n_estimators=10, random_state=0),
        {"resize__mode": ["pad", "stretch"]},
        cv=cv,
        scoring="balanced_accuracy",
    ).fit(X, y)
    assert grid.n_splits_ == 3


# --------------------------------------------------------------------------------------------
# threads_per_job
# --------------------------------------------------------------------------------------------


def test_threads_per_job_rule():
    assert threads_per_job(1) is None
    assert threads_per_job(None) is None
    assert threads_per_job(2) == max(1, cpu_count() // 2)
    assert threads_per_job(4 * cpu_count()) == 1
    with parallel_backend("loky", n_jobs=2):
        assert threads_per_job() == max(1, cpu_count() // 2)
    with parallel_backend("threading", n_jobs=2):
        assert threads_per_job() is None  # threads of one process share its pools


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


def test_grid_search_over_preprocessing_variants(small_chars):
    """The procedure's "function to choose the input" as a grid over Denoiser and ImageResizer."""
    X, y = small_chars
    grid = GridSearchCV(
        make_baseline_pipeline(n_estimators=30, random_state=0),
        {"denoise__method": ["none", "median", "erode"], "resize__mode": ["pad", "stretch"]},
        cv=check_cv_for_classes(3, y, random_state=0),
        scoring="f1_macro",
    ).fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 6
    assert grid.best_score_ == scores.max() > scores.min()
    assert set(grid.best_params_) == {"denoise__method", "resize__mode"}
    assert grid.best_estimator_.predict(X[:3]).shape == (3,)


def test_randomized_search_with_the_default_forest_space(small_chars):
    X, y = small_chars
    pipe = make_baseline_pipeline(n_estimators=10, random_state=0)
    search = RandomizedSearchCV(
        pipe,
        search_space(pipe, preprocessing=False),
        n_iter=4,
        cv=check_cv_for_classes(3, y, random_state=0),
        scoring="balanced_accuracy",
        random_state=0,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_score_ == scores.max() > scores.min()


# --------------------------------------------------------------------------------------------
# Recipes with the CNN (each KerasCharClassifier fit costs seconds of graph tracing: few fits)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_chars():
    """60 clean 16x16-ready character images of three classes, one of them rare."""
    X, y = load_digit_chars(n_samples_per_class=24, rare_ratio=0.5, noise=False,
                            random_state=0, return_X_y=True)
    keep = np.flatnonzero(np.isin(y, [0, 1, 2]))
    return [X[i] for i in keep], y[keep]


def _char_pipeline(**clf_params):
    from skcharclf import make_char_pipeline

    params = {"filters": (4, 8), "batch_size": 8, "learning_rate": 1e-2, "epochs": 2,
              **clf_params}
    return make_char_pipeline(denoise="none", size=(16, 16), random_state=0, **params)


def _f1_checking_epochs(estimator, X, y):
    """macro-F1, after checking that the candidate trained exactly its epochs."""
    from sklearn.metrics import f1_score

    trained = len(estimator[-1].history_["loss"])
    assert trained == estimator.get_params()["clf__epochs"], "epochs not honoured"
    return f1_score(y, estimator.predict(X), average="macro")


def test_search_space_fits_the_char_pipeline():
    pipe = _char_pipeline()
    space = search_space(pipe)
    assert space.keys() == search_space().keys()  # every group applies to the CNN pipeline
    for candidate in ParameterSampler(space, n_iter=20, random_state=0):
        configured = clone(pipe).set_params(**candidate)
        for _, step in configured.steps:
            step._validate_params()  # each sampled value passes the step's own constraints


@pytest.mark.slow
def test_halving_search_gives_later_rounds_more_epochs(clean_chars):
    """The procedure's "short runs first, then the best for longer" as successive halving."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    X, y = clean_chars
    search = HalvingRandomSearchCV(
        _char_pipeline(),
        {"clf__learning_rate": [1e-4, 1e-2], "clf__head": ["gap", "flatten"]},
        n_candidates=2,
        resource="clf__epochs",
        min_resources=1,
        max_resources=2,
        factor=2,
        cv=check_cv_for_classes(2, y, random_state=0),
        scoring=_f1_checking_epochs,
        error_score="raise",
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    np.testing.assert_array_equal(results["iter"], [0, 0, 1])
    np.testing.assert_array_equal(results["n_resources"], [1, 1, 2])
    np.testing.assert_array_equal(results["param_clf__epochs"], results["n_resources"])
    # refit=True retrains the winner on all the data at the full epoch budget
    best = search.best_estimator_
    assert search.best_params_["clf__epochs"] == 2
    assert len(best[-1].history_["loss"]) == 2
    # ... and nothing leaked into it from the candidates fitted before in this process
    fresh = clone(_char_pipeline()).set_params(**search.best_params_).fit(X, y)
    np.testing.assert_allclose(best.predict_proba(X), fresh.predict_proba(X), atol=1e-6)


@pytest.mark.slow
def test_randomized_search_over_classifier_hyperparameters(clean_chars):
    X, y = clean_chars
    space = search_space(_char_pipeline(), preprocessing=False, augmentation=False)
    space["clf__batch_size"] = [8]  # a few samples per fold: several updates per epoch
    space["clf__learning_rate"] = [1e-5, 1e-2]
    search = RandomizedSearchCV(
        _char_pipeline(epochs=3),
        space,
        n_iter=2,
        cv=check_cv_for_classes(2, y, random_state=0),
        scoring="balanced_accuracy",
        refit=False,
        random_state=3,  # draws one candidate of each learning rate
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert sorted(search.cv_results_["param_clf__learning_rate"]) == [1e-5, 1e-2]
    assert search.best_score_ == scores.max() > scores.min()
    assert search.best_params_["clf__learning_rate"] == 1e-2
