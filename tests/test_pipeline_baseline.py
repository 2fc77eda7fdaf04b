"""make_baseline_pipeline: structure, parameters and a real fit on the built-in data."""

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score

from skcharclf import Denoiser, ImageResizer, make_baseline_pipeline
from skcharclf.datasets import load_digit_chars


@pytest.fixture(scope="module")
def small_chars():
    """About 40 training images per class (4 for the rare ones), 20 test images per class."""
    return load_digit_chars(n_samples_per_class=40, test_size_per_class=20, random_state=0)


def test_structure_and_defaults():
    model = make_baseline_pipeline()
    assert isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == ["denoise", "resize", "clf"]
    denoise, resize, clf = (step for _, step in model.steps)
    assert isinstance(denoise, Denoiser) and denoise.method == "median"
    assert isinstance(resize, ImageResizer)
    assert (resize.size, resize.mode) == ((32, 32), "pad")
    assert isinstance(clf, RandomForestClassifier)
    assert clf.class_weight == "balanced_subsample" and clf.n_estimators == 300


def test_parameters_reach_the_steps():
    model = make_baseline_pipeline(
        denoise=["median", "sharpen"],
        size=(24, 20),
        resize_mode="stretch",
        n_estimators=17,
        class_weight=None,
        random_state=5,
        n_jobs=2,
    )
    params = model.get_params()
    assert params["denoise__method"] == ["median", "sharpen"]
    assert params["resize__size"] == (24, 20)
    assert params["resize__mode"] == "stretch"
    assert params["clf__n_estimators"] == 17
    assert params["clf__class_weight"] is None
    assert params["clf__random_state"] == 5
    assert params["clf__n_jobs"] == 2
    # every step parameter stays searchable and clonable
    cloned = clone(model).set_params(denoise__method="none", clf__n_estimators=3)
    assert cloned.named_steps["denoise"].method == "none"
    assert cloned.named_steps["clf"].n_estimators == 3


def test_fit_on_ragged_images_beats_chance(small_chars):
    model = make_baseline_pipeline(n_estimators=60, random_state=0, n_jobs=1)
    model.fit(small_chars.data, small_chars.target)
    assert model.classes_.tolist() == list(range(10))
    assert model.named_steps["clf"].n_features_in_ == 32 * 32
    y_pred = model.predict(small_chars.data_test)
    score = balanced_accuracy_score(small_chars.target_test, y_pred)
    assert score > 0.6, score  # chance is 0.1
    proba = model.predict_proba(small_chars.data_test[:5])
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_same_seed_same_predictions(small_chars):
    X, y = small_chars.data[:150], small_chars.target[:150]
    first = make_baseline_pipeline(n_estimators=20, random_state=3, n_jobs=1).fit(X, y)
    second = make_baseline_pipeline(n_estimators=20, random_state=3, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(
        first.predict_proba(small_chars.data_test), second.predict_proba(small_chars.data_test)
    )
