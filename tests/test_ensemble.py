"""FoldEnsembleClassifier: members per fold, soft voting, out-of-fold predictions, conformance."""

import warnings

import cv2
import numpy as np
import pytest
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline
from joblib import cpu_count
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcharclf.diagnostics import NoValidationWarning
from skcharclf.ensemble import FoldEnsembleClassifier


class CentroidRecorder(ClassifierMixin, BaseEstimator):
    """A nearest-centroid classifier that records what its fit received.

    It has the ``validation_data``, ``n_threads`` and ``random_state`` parameters of
    KerasCharClassifier, so the ensemble's handling of them is testable in milliseconds.
    """

    def __init__(self, validation_data=None, n_threads=None, random_state=None):
        self.validation_data = validation_data
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.train_y_ = np.asarray(y)
        self.cv2_threads_ = cv2.getNumThreads()
        return self

    def predict_proba(self, X):
        dist = ((np.asarray(X, dtype=float)[:, None, :] - self.centroids_) ** 2).sum(axis=2)
        logits = -(dist - dist.min(axis=1, keepdims=True))
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _double(X):
    return np.asarray(X) * 2.0


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=4, return_X_y=True)
    return X[:160] / 16.0, y[:160]


def _expected_failed_checks(estimator):
    failed = {}
    if estimator.cv is None:
        failed["check_fit2d_1feature"] = (
            "10 samples whose rarest class has 3: the ensemble refuses 5 stratified folds "
            "with an error naming that class (by design), not the feature count"
        )
    return failed


@parametrize_with_checks(
    [
        FoldEnsembleClassifier(DecisionTreeClassifier(max_depth=3, random_state=0)),
        FoldEnsembleClassifier(RandomForestClassifier(n_estimators=5, random_state=0), cv=2),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


# The default instance: five KerasCharClassifier() members, each trained for the few epochs
# that epochs="auto" gives the checks' toy-sized data.
@pytest.mark.slow
@parametrize_with_checks([FoldEnsembleClassifier()], expected_failed_checks=_expected_failed_checks)
def test_sklearn_conformance_at_the_defaults(estimator, check):
    check(estimator)


def test_default_member_is_the_keras_classifier(digits):
    from skcharclf import KerasCharClassifier

    X, y = digits
    ensemble = FoldEnsembleClassifier(cv=2, random_state=0).fit(X[:12], y[:12])
    assert FoldEnsembleClassifier().estimator is None
    assert all(isinstance(member, KerasCharClassifier) for member in ensemble.estimators_)
    assert ensemble.estimators_[0].image_shape_ == (8, 8)


def test_one_member_per_fold_with_scores(digits):
    X, y = digits
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=4, random_state=0).fit(X, y)
    assert len(ensemble.estimators_) == 4
    assert len({id(m) for m in ensemble.estimators_}) == 4
    assert set(ensemble.cv_scores_) == {"accuracy", "balanced_accuracy", "f1_macro"}
    for scores in ensemble.cv_scores_.values():
        assert scores.shape == (4,)
        assert np.all((scores > 0.5) & (scores <= 1.0))
    np.testing.assert_array_equal(ensemble.classes_, np.arange(4))


def test_verbose_fold_scores_go_to_the_progress_sink(digits, capsys):
    from skcharclf._progress import progress_sink

    X, y = digits
    lines = []
    with progress_sink(lines.append):
        FoldEnsembleClassifier(CentroidRecorder(), cv=3, random_state=0, verbose=1).fit(X, y)
    assert [line.split(":")[0] for line in lines] == [
        f"[FoldEnsembleClassifier] fold {k}" for k in range(3)
    ]
    assert "accuracy=" in lines[0]
    assert "[FoldEnsembleClassifier]" not in capsys.readouterr().out


def test_proba_is_mean_of_members(digits):
    X, y = digits
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=3, random_state=0).fit(X, y)
    expected = np.mean([m.predict_proba(X) for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), expected)
    np.testing.assert_array_equal(ensemble.predict(X), np.argmax(expected, axis=1))


def test_oof_predictions_cover_every_sample_once(digits):
    X, y = digits
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=5, random_state=0).fit(X, y)
    held_out = np.concatenate(ensemble.test_indices_)
    np.testing.assert_array_equal(np.sort(held_out), np.arange(len(y)))
    for member, test in zip(ensemble.estimators_, ensemble.test_indices_, strict=True):
        # The member never trained on its held-out fold, and scored it for oof_proba_.
        assert len(member.train_y_) == len(y) - len(test)
        np.testing.assert_allclose(ensemble.oof_proba_[test], member.predict_proba(X[test]))
    np.testing.assert_array_equal(ensemble.oof_pred_, np.argmax(ensemble.oof_proba_, axis=1))
    # accuracy of oof predictions equals the pooled per-fold accuracy
    pooled = np.mean(ensemble.oof_pred_ == y)
    weights = [len(t) for t in ensemble.test_indices_]
    assert pooled == pytest.approx(np.average(ensemble.cv_scores_["accuracy"], weights=weights))


def test_explicit_splits_keep_their_order(digits):
    X, y = digits
    splits = list(StratifiedKFold(3).split(X, y))
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=splits).fit(X, y)
    for (_, test), got in zip(splits, ensemble.test_indices_, strict=True):
        np.testing.assert_array_equal(got, test)


def _drop_class_c(X, y):
    keep = y != "c"
    return X[keep], y[keep]


def test_a_fold_without_some_class_is_rejected():
    X = np.arange(24, dtype=float).reshape(12, 2)
    y = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 2)
    # Hand-made folds: the first member would never see class "c".
    splits = [(np.arange(10), np.arange(10, 12)), (np.arange(2, 12), np.arange(0, 2))]
    with pytest.raises(ValueError, match=r"fold 0 holds no sample of class 'c'"):
        FoldEnsembleClassifier(CentroidRecorder(), cv=splits).fit(X, y)


def test_members_that_drop_a_class_vote_zero_for_it():
    from imblearn import FunctionSampler

    X = np.repeat(np.arange(3.0), 6)[:, None] + np.tile(np.linspace(0, 0.1, 6), 3)[:, None]
    y = np.repeat(["a", "b", "c"], 6)
    pipe = Pipeline([("drop", FunctionSampler(func=_drop_class_c)), ("clf", CentroidRecorder())])
    ensemble = FoldEnsembleClassifier(pipe, cv=2, random_state=0).fit(X, y)
    assert [m.classes_.tolist() for m in ensemble.estimators_] == [["a", "b"], ["a", "b"]]
    np.testing.assert_array_equal(ensemble.classes_, ["a", "b", "c"])
    proba = ensemble.predict_proba(X)
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_scoring_forms(digits):
    X, y = digits

    def first_class_recall(estimator, X_, y_):
        return float(np.mean(estimator.predict(X_)[y_ == 0] == 0))

    single = FoldEnsembleClassifier(CentroidRecorder(), cv=3, scoring="f1_macro").fit(X, y)
    assert list(single.cv_scores_) == ["f1_macro"]
    named = FoldEnsembleClassifier(
        CentroidRecorder(), cv=3, scoring={"acc": "accuracy", "recall0": first_class_recall}
    ).fit(X, y)
    assert set(named.cv_scores_) == {"acc", "recall0"}
    assert named.cv_scores_["recall0"].shape == (3,)
    assert FoldEnsembleClassifier(CentroidRecorder(), cv=3, scoring=None).fit(X, y).cv_scores_ == {}


def test_random_state_seeds_unset_member_seeds(digits):
    X, y = digits
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=3, random_state=0).fit(X, y)
    seeds = [m.random_state for m in ensemble.estimators_]
    assert all(isinstance(s, int) for s in seeds)
    assert len(set(seeds)) == 3
    again = FoldEnsembleClassifier(CentroidRecorder(), cv=3, random_state=0).fit(X, y)
    assert [m.random_state for m in again.estimators_] == seeds
    fixed = FoldEnsembleClassifier(CentroidRecorder(random_state=7), cv=3, random_state=0)
    assert [m.random_state for m in fixed.fit(X, y).estimators_] == [7, 7, 7]
    unseeded = FoldEnsembleClassifier(CentroidRecorder(), cv=3).fit(X, y)
    assert [m.random_state for m in unseeded.estimators_] == [None, None, None]


def test_fold_validation_data_goes_through_preprocessing(digits):
    X, y = digits
    y = y.copy()
    y[y == 3] = np.where(np.arange((y == 3).sum()) < 20, 3, 0)  # make class 3 rare
    pipe = Pipeline(
        [
            ("scale", FunctionTransformer(_double)),
            ("augment", RandomOverSampler(random_state=0)),
            ("clf", CentroidRecorder()),
        ]
    )
    ensemble = FoldEnsembleClassifier(pipe, cv=3, random_state=0).fit(X, y)
    for member, test in zip(ensemble.estimators_, ensemble.test_indices_, strict=True):
        X_val, y_val = member[-1].validation_data
        np.testing.assert_allclose(X_val, 2.0 * X[test])  # transformed like the training set
        np.testing.assert_array_equal(y_val, y[test])  # not resampled
        # the training part was over-sampled: every class as frequent as the majority
        counts = np.bincount(member[-1].train_y_)
        original = np.bincount(np.delete(y, test))
        assert counts.min() == counts.max() > original.min()
        np.testing.assert_allclose(member.predict_proba(X[:5]), member[-1].predict_proba(2 * X[:5]))


def test_fold_validation_for_a_bare_classifier_and_opt_out(digits):
    X, y = digits
    ensemble = FoldEnsembleClassifier(CentroidRecorder(), cv=3, random_state=0).fit(X, y)
    for member, test in zip(ensemble.estimators_, ensemble.test_indices_, strict=True):
        np.testing.assert_allclose(member.validation_data[0], X[test])
    opt_out = FoldEnsembleClassifier(CentroidRecorder(), cv=3, validation="estimator").fit(X, y)
    assert all(m.validation_data is None for m in opt_out.estimators_)


def test_thread_budget_rules(digits):
    X, y = digits
    sequential = FoldEnsembleClassifier(CentroidRecorder(), cv=2).fit(X, y)
    assert [m.n_threads for m in sequential.estimators_] == [None, None]

    before = cv2.getNumThreads()
    forced = FoldEnsembleClassifier(CentroidRecorder(), cv=2, n_threads_per_job=1).fit(X, y)
    assert [m.n_threads for m in forced.estimators_] == [1, 1]
    assert [m.cv2_threads_ for m in forced.estimators_] == [1, 1]
    assert cv2.getNumThreads() == before  # the caller's OpenCV setting is restored

    kept = FoldEnsembleClassifier(
        CentroidRecorder(n_threads=5), cv=2, n_threads_per_job=1
    ).fit(X, y)
    assert [m.n_threads for m in kept.estimators_] == [1, 1]  # an int always applies
    none = FoldEnsembleClassifier(CentroidRecorder(n_threads=5), cv=2, n_threads_per_job=None)
    assert [m.n_threads for m in none.fit(X, y).estimators_] == [5, 5]


def test_parallel_folds_split_the_cores_and_match_sequential(digits):
    X, y = digits
    rf = RandomForestClassifier(n_estimators=10, random_state=0)
    sequential = FoldEnsembleClassifier(rf, cv=3, random_state=0).fit(X, y)
    parallel = FoldEnsembleClassifier(rf, cv=3, n_jobs=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(parallel.predict_proba(X), sequential.predict_proba(X))
    np.testing.assert_allclose(parallel.oof_proba_, sequential.oof_proba_)

    recorded = FoldEnsembleClassifier(CentroidRecorder(), cv=3, n_jobs=2).fit(X, y)
    expected = max(1, cpu_count() // 2)
    assert [m.n_threads for m in recorded.estimators_] == [expected] * 3
    assert [m.cv2_threads_ for m in recorded.estimators_] == [expected] * 3
    user_set = FoldEnsembleClassifier(CentroidRecorder(n_threads=3), cv=3, n_jobs=2).fit(X, y)
    assert [m.n_threads for m in user_set.estimators_] == [3, 3, 3]  # "auto" keeps it


def test_more_folds_than_rare_class_samples_is_a_clear_error(digits):
    X, y = digits
    y = y.copy()
    y[np.flatnonzero(y == 2)[3:]] = 1  # class 2 keeps 3 samples
    message = r"5 stratified folds but class 2 has only 3 samples.*cv=3"
    with pytest.raises(ValueError, match=message):
        FoldEnsembleClassifier(CentroidRecorder()).fit(X, y)
    labels = np.where(y == 2, "rare", "common")
    with pytest.raises(ValueError, match=r"class 'rare' has only 3 samples"):
        FoldEnsembleClassifier(CentroidRecorder(), cv=4).fit(X, labels)
    FoldEnsembleClassifier(CentroidRecorder(), cv=3).fit(X, labels)  # the suggested fix works


def test_cv_that_does_not_hold_out_every_sample_is_rejected(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"no out-of-fold prediction.*StratifiedKFold"):
        FoldEnsembleClassifier(
            CentroidRecorder(), cv=ShuffleSplit(2, test_size=0.2, random_state=0)
        ).fit(X, y)
    order = np.argsort(y, kind="stable")
    with pytest.raises(ValueError, match="training part of fold 0 holds no sample of class 0"):
        FoldEnsembleClassifier(CentroidRecorder(), cv=KFold(4)).fit(X[order], y[order])


def test_invalid_parameters_are_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match="'n_threads_per_job' parameter"):
        FoldEnsembleClassifier(CentroidRecorder(), n_threads_per_job=0).fit(X, y)
    with pytest.raises(ValueError, match="'validation' parameter"):
        FoldEnsembleClassifier(CentroidRecorder(), validation="test").fit(X, y)
    with pytest.raises(ValueError, match="'estimator' parameter"):
        FoldEnsembleClassifier(object()).fit(X, y)


def _tf_intra_op_threads(estimator, X, y):
    """A 'scorer' that reports the TensorFlow thread pool of the process that fitted a fold."""
    import tensorflow as tf

    return float(tf.config.threading.get_intra_op_parallelism_threads())


@pytest.mark.slow
def test_keras_members_validate_on_their_fold_in_thread_limited_workers():
    from skcharclf import make_char_pipeline
    from skcharclf.datasets import load_digit_chars

    X, y = load_digit_chars(n_samples_per_class=24, rare_ratio=0.5, noise=False,
                            random_state=0, return_X_y=True)
    keep = np.flatnonzero(np.isin(y, [0, 1, 2]))
    X, y = [X[i] for i in keep], y[keep]
    pipe = make_char_pipeline(
        denoise="none", size=(16, 16), filters=(4, 8), batch_size=8, learning_rate=1e-2,
        epochs=3, early_stopping=True, patience=1,
    )
    ensemble = FoldEnsembleClassifier(
        pipe, cv=2, n_jobs=2, random_state=0,
        scoring={"f1_macro": "f1_macro", "tf_threads": _tf_intra_op_threads},
    ).fit(X, y)

    # each of the two loky workers trained with cores // 2 TensorFlow threads
    expected = max(1, cpu_count() // 2)
    assert [m[-1].n_threads for m in ensemble.estimators_] == [expected, expected]
    np.testing.assert_array_equal(ensemble.cv_scores_["tf_threads"], [expected, expected])
    for member, test in zip(ensemble.estimators_, ensemble.test_indices_, strict=True):
        clf = member[-1]
        X_val, y_val = clf.validation_data
        assert X_val.shape == (len(test), 16 * 16)  # the fold, resized like the training set
        np.testing.assert_array_equal(y_val, y[test])
        assert {"val_loss", "val_f1_macro"} <= set(clf.history_)
        assert clf.best_epoch_ == int(np.argmin(clf.history_["val_loss"]))
        assert isinstance(clf.random_state, int)  # seeded per fold by the ensemble
    proba = ensemble.predict_proba(X[:10])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert ensemble.oof_proba_.shape == (len(y), 3)


class _CannotJudge(DecisionTreeClassifier):
    """A member that warns, as KerasCharClassifier does without a validation set."""

    def fit(self, X, y, sample_weight=None, check_input=True):
        warnings.warn("trained without a validation set", NoValidationWarning, stacklevel=2)
        warnings.warn("an unrelated warning", UserWarning, stacklevel=2)
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


@pytest.mark.parametrize("n_jobs", [None, pytest.param(2, marks=pytest.mark.slow)])
def test_members_that_cannot_judge_overfitting_warn_once_per_ensemble_fit(n_jobs):
    X, y = load_digits(return_X_y=True)
    ensemble = FoldEnsembleClassifier(_CannotJudge(max_depth=2), cv=4, n_jobs=n_jobs)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ensemble.fit(X[:200], y[:200])
    (warning,) = [w for w in record if issubclass(w.category, NoValidationWarning)]
    assert str(warning.message) == (
        "4 of 4 fold members could not judge overfitting (on all classes); the first: "
        "trained without a validation set"
    )
    if n_jobs is None:  # other warnings of the members pass unchanged (in-process only)
        others = [w for w in record if str(w.message) == "an unrelated warning"]
        assert len(others) == 4
