"""KerasCharClassifier: scikit-learn conformance, every training option, persistence, errors.

Every fit is tiny (8x8 images, at most ~100 samples, a few gradient steps) so that short fits
run eagerly and the whole file stays fast.
"""

import math
import re
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from _data import BAR_SHAPE, TINY_CLASSIFIER, bar_chars
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import f1_score, log_loss
from sklearn.utils.estimator_checks import estimator_checks_generator

import skcharclf
from skcharclf import classifier as classifier_module
from skcharclf._tf import import_keras
from skcharclf.callbacks import CheckpointAveraging
from skcharclf.classifier import KerasCharClassifier, TrainingDivergedError, load_model
from skcharclf.diagnostics import Finding, NoValidationWarning
from skcharclf.losses import FocalLoss, LogitAdjustedLoss

keras = import_keras()

# Keras 3.15 converts its tensors with a numpy-1 style __array__ (a Keras issue, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SHAPE = BAR_SHAPE
TINY = TINY_CLASSIFIER


def _chars(n_per_class=(40, 20, 10), seed=0, labels=(0, 1, 2)):
    """Separable, imbalanced 8x8 "characters": a bright bar whose position is the class."""
    return bar_chars(n_per_class, rows=(1, 4, 6), seed=seed, labels=labels)


X, Y = _chars()


@pytest.fixture(scope="module")
def fitted():
    return KerasCharClassifier(**TINY).fit(X, Y)


# -- conformance -----------------------------------------------------------------------------

EXPECTED_FAILED_CHECKS = {
    "check_estimator_tags_renamed": (
        "scikeras.wrappers.BaseWrapper, our base class, still defines the pre-1.6 _more_tags "
        "hook; KerasCharClassifier defines __sklearn_tags__ (what scikit-learn reads), but the "
        "check rejects any class of the MRO with _more_tags and no __sklearn_tags__."
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training is stochastic in the order of samples: a sample of weight 2 and "
        "two copies of it fall into different batches, so the two fits differ."
    ),
}


# check_classifiers_train fits 300 samples of make_blobs several times, each in 15 steps
# (three epochs of five batches) with a compiled training step: about 10 s per variant.
SLOW_CHECKS = {"check_classifiers_train"}


def _conformance_checks(estimator):
    """parametrize_with_checks's (estimator, check) pairs, the SLOW_CHECKS marked slow."""
    for param in estimator_checks_generator(
        estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, mark="xfail"
    ):
        values, marks = (param.values, param.marks) if hasattr(param, "marks") else (param, ())
        check = values[1]
        name = check.func.__name__
        if name in SLOW_CHECKS:
            marks = (*marks, pytest.mark.slow)
        variant = ",".join(f"{key}={value}" for key, value in check.keywords.items())
        yield pytest.param(*values, marks=marks, id=f"{name}({variant})" if variant else name)


# The default instance: image_shape="auto" reads the checks' tabular data as one-row (or
# square) images, and epochs="auto" trains a toy-sized training set for a few epochs only.
@pytest.mark.parametrize(("estimator", "check"), list(_conformance_checks(KerasCharClassifier())))
def test_scikit_learn_conformance(estimator, check):
    check(estimator)


def test_image_shape_auto_infers_a_square_else_one_row():
    # with the default online augmentation, which must cope with one-row images too
    params = {**TINY, "image_shape": "auto", "epochs": 1, "online_augmentation": "light"}
    clf = KerasCharClassifier(**params)
    assert clf.fit(X, Y).image_shape_ == (8, 8)
    assert clf.fit(X[:, :10], Y).image_shape_ == (1, 10)
    assert clf.predict(X[:3, :10]).shape == (3,)


# -- one source of truth for the image geometry ----------------------------------------------


def _ragged_chars(n=36, seed=0):
    """Dark characters of varying width on light paper, three imbalanced classes."""
    rng = np.random.default_rng(seed)
    images, labels = [], np.array([0] * (n // 2) + [1] * (n // 3) + [2] * (n - n // 2 - n // 3))
    for label in labels:
        image = np.full((20, int(rng.integers(10, 24))), 230, np.uint8)
        image[3 + 5 * label : 7 + 5 * label, 2:-2] = 20
        images.append(image)
    return images, labels


def _geometry_pipeline(size, augment=None):
    from skcharclf import ImageResizer, RareClassAugmenter

    return Pipeline(
        [
            ("resize", ImageResizer(size=size)),
            ("augment", augment or RareClassAugmenter(random_state=0)),
            ("clf", KerasCharClassifier(**{**TINY, "epochs": 1, "image_shape": "auto"})),
        ]
    )


@pytest.mark.parametrize("size", [(32, 32), (32, 24)])
def test_only_the_resizer_names_the_size(size):
    images, labels = _ragged_chars()
    pipe = _geometry_pipeline(size).fit(images, labels)
    assert pipe.named_steps["augment"].image_shape_ == size
    assert pipe.named_steps["clf"].image_shape_ == size
    assert pipe.named_steps["clf"].model_.get_layer("to_image").output.shape[1:3] == size
    assert pipe.predict(images[:5]).shape == (5,)


def test_a_contradiction_between_steps_names_both():
    from skcharclf import RareClassAugmenter

    images, labels = _ragged_chars()
    pipe = _geometry_pipeline((32, 24), RareClassAugmenter(image_shape=(32, 32)))
    message = (
        r"RareClassAugmenter\(image_shape=\(32, 32\)\) contradicts its input: "
        r"ImageResizer\(size=\(32, 24\)\) produced 32x24 images"
    )
    with pytest.raises(ValueError, match=message):
        pipe.fit(images, labels)
    # same number of pixels, transposed: only the carried geometry can tell
    pipe.set_params(augment="passthrough", clf__image_shape=(24, 32))
    with pytest.raises(ValueError, match=r"KerasCharClassifier\(image_shape=\(24, 32\)\) con"):
        pipe.fit(images, labels)


def test_make_char_pipeline_states_the_size_once():
    from imblearn.over_sampling import SMOTE

    tiny = {key: value for key, value in TINY.items() if key != "image_shape"}
    images, labels = _ragged_chars()
    pipe = skcharclf.make_char_pipeline(denoise="none", size=(32, 24), **{**tiny, "epochs": 1})
    params = pipe.get_params()
    assert params["augment__image_shape"] == params["clf__image_shape"] == "auto"
    assert pipe.fit(images, labels).named_steps["clf"].image_shape_ == (32, 24)
    # a foreign sampler drops the geometry: the classifier is then told the size as well
    smote = skcharclf.make_char_pipeline(size=(32, 24), augment=SMOTE())
    assert smote.get_params()["clf__image_shape"] == (32, 24)
    with pytest.raises(ValueError, match=r"image_shape=\(32, 32\) differs from size"):
        skcharclf.make_char_pipeline(size=(32, 24), image_shape=(32, 32))


def test_predict_refuses_images_of_another_geometry(fitted):
    from skcharclf import FlatImages

    clf = fitted
    other = FlatImages(X[:3], (4, 16), source="ImageResizer(size=(4, 16))")
    message = (
        r"X holds 4x16 images \(from ImageResizer\(size=\(4, 16\)\)\), but this classifier was "
        r"fitted on images of image_shape_=\(8, 8\)"
    )
    with pytest.raises(ValueError, match=message):
        clf.predict(other)
    assert clf.predict(FlatImages(X[:3], SHAPE)).shape == (3,)


def test_default_image_shape_is_auto_and_takes_a_square():
    # real 32x32 data keeps the network it had with the former default image_shape=(32, 32)
    params = {key: value for key, value in TINY.items() if key != "image_shape"}
    rng = np.random.RandomState(0)
    clf = KerasCharClassifier(**params).fit(rng.rand(12, 1024), np.arange(12) % 2)
    assert KerasCharClassifier().image_shape == "auto"
    assert clf.image_shape_ == (32, 32)


def test_default_epochs_are_sized_to_the_data():
    params = {key: value for key, value in TINY.items() if key not in ("image_shape", "epochs")}
    clf = KerasCharClassifier(**params)
    assert clf.epochs == "auto"
    rng = np.random.RandomState(0)
    X_toy, y_toy = rng.rand(30, 3), np.arange(30) % 3  # 90 values: one epoch
    clf.fit(X_toy, y_toy)
    assert clf.epochs_ == 1 and len(clf.history_["loss"]) == 1
    assert clf.set_params(epochs=3).fit(X_toy, y_toy).epochs_ == 3  # explicit epochs are kept
    # the budget in optimizer steps: 20 epochs, stretched to a floor of steps for small data
    # and cut to a cap for large data; toy data (fewer than 64 images of 32x32) trains less.
    from skcharclf._training import (
        AUTO_EPOCHS,
        AUTO_FULL_VALUES,
        AUTO_MAX_EPOCHS,
        AUTO_MAX_STEPS,
        AUTO_MIN_STEPS,
        resolve_epochs,
    )

    full = AUTO_FULL_VALUES
    medium = math.ceil(AUTO_MIN_STEPS / AUTO_EPOCHS) + 1  # batches per epoch
    assert resolve_epochs("auto", medium, full) == AUTO_EPOCHS
    assert resolve_epochs(7, medium, full) == 7
    small = resolve_epochs("auto", 20, full)
    assert small == round(AUTO_MIN_STEPS / 20) and small * 20 >= AUTO_MIN_STEPS * 0.95
    assert resolve_epochs("auto", 1, full) == AUTO_MAX_EPOCHS
    large = resolve_epochs("auto", 1000, full)
    assert large * 1000 <= AUTO_MAX_STEPS * 1.05 and large >= 1
    assert resolve_epochs("auto", 10**6, full) == 1
    assert resolve_epochs("auto", 20, full // 4) == math.ceil(small / 4)


# -- scikeras --------------------------------------------------------------------------------


def test_scikeras_is_pinned_and_provides_what_we_use():
    """Fails on an incompatible scikeras upgrade (it is unmaintained; see classifier.py)."""
    import importlib.metadata
    import inspect

    from scikeras.utils.transformers import ClassifierLabelEncoder
    from scikeras.wrappers import BaseWrapper

    pyproject = Path(skcharclf.__file__).parents[1] / "pyproject.toml"
    if pyproject.exists():
        pinned = re.search(r'"scikeras==([^"]+)"', pyproject.read_text()).group(1)
        assert importlib.metadata.version("scikeras") == pinned
    for hook in ("_initialize", "_build_keras_model", "_check_model_param", "_get_metadata"):
        assert callable(getattr(BaseWrapper, hook)), hook
    assert "meta" in inspect.signature(KerasCharClassifier._keras_build_fn).parameters
    encoder = ClassifierLabelEncoder().fit(np.array(["b", "a", "b"]))
    assert encoder.get_metadata()["n_classes_"] == 2
    np.testing.assert_array_equal(encoder.inverse_transform(np.eye(2)), ["a", "b"])


def test_scikeras_builds_the_model_and_encodes_labels(fitted):
    from scikeras.utils.transformers import ClassifierLabelEncoder

    assert isinstance(fitted.target_encoder_, ClassifierLabelEncoder)
    assert fitted.n_outputs_expected_ == 1
    assert fitted.model_.get_layer("logits").units == fitted.n_classes_ == 3


def test_only_classifier_module_imports_scikeras():
    package = Path(skcharclf.__file__).parent
    users = sorted(
        path.name
        for path in package.glob("*.py")
        if re.search(r"^\s*(from|import) scikeras", path.read_text(), flags=re.M)
    )
    assert users == ["classifier.py"]


def test_partial_fit_is_hidden():
    assert not hasattr(KerasCharClassifier(), "partial_fit")


# -- fitted attributes, labels, probabilities ------------------------------------------------


def test_fitted_attributes(fitted):
    assert fitted.image_shape_ == SHAPE and fitted.n_features_in_ == 64
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2])
    assert set(fitted.history_) == {"loss", "accuracy", "f1_macro", "learning_rate"}
    assert all(len(values) == 2 for values in fitted.history_.values())
    assert fitted.best_epoch_ == 1
    np.testing.assert_allclose(fitted.class_priors_, [40 / 70, 20 / 70, 10 / 70])
    assert isinstance(fitted.diagnosis_, list)
    assert all(isinstance(finding, Finding) for finding in fitted.diagnosis_)
    proba = fitted.predict_proba(X)
    assert proba.shape == (70, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.classes_[proba.argmax(axis=1)], fitted.predict(X))


@pytest.mark.parametrize("labels", [("zero", "one", "two"), (3, 7, 11)])
def test_any_label_type(labels):
    Xl, yl = _chars(labels=labels)
    clf = KerasCharClassifier(**TINY).fit(Xl, yl)
    np.testing.assert_array_equal(clf.classes_, sorted(labels))
    assert set(clf.predict(Xl)) <= set(labels)


def test_large_predictions_match_single_batch_ones(fitted):
    big = np.concatenate([X] * 16)  # 1,120 rows: more than one inference batch
    np.testing.assert_allclose(fitted.predict_proba(big)[:70], fitted.predict_proba(X), atol=1e-5)


def test_history_matches_sklearn_on_validation_data():
    X_val, y_val = _chars((10, 10, 10), seed=1)
    # cross-entropy without label smoothing: its validation loss is the log-loss of
    # predict_proba (with smoothing it is the training loss on smoothed targets, as in Keras)
    clf = KerasCharClassifier(
        **TINY, loss="ce", label_smoothing=0.0, validation_data=(X_val, y_val)
    ).fit(X, Y)
    assert {"val_loss", "val_accuracy", "val_f1_macro"} <= set(clf.history_)
    predicted = clf.predict(X_val)
    assert clf.history_["val_f1_macro"][-1] == pytest.approx(
        f1_score(y_val, predicted, average="macro"), abs=1e-5
    )
    assert clf.history_["val_accuracy"][-1] == pytest.approx(np.mean(predicted == y_val), abs=1e-6)
    assert clf.history_["val_loss"][-1] == pytest.approx(
        log_loss(y_val, clf.predict_proba(X_val)), rel=1e-4
    )


# -- initialisation --------------------------------------------------------------------------


def test_prior_bias_predicts_the_class_priors_before_training():
    # A learning rate of 1e-9 leaves the network as it was initialised.
    frozen = {**TINY, "epochs": 1, "learning_rate": 1e-9, "loss": "ce"}
    prior = KerasCharClassifier(**frozen, bias_init="prior").fit(X, Y)
    np.testing.assert_allclose(prior.predict_proba(X).mean(axis=0), prior.class_priors_, atol=0.03)
    entropy = -np.sum(prior.class_priors_ * np.log(prior.class_priors_))
    zeros = KerasCharClassifier(**frozen, bias_init="zeros").fit(X, Y)
    assert abs(prior.initial_loss_ - entropy) < 0.2 * entropy
    assert abs(zeros.initial_loss_ - math.log(3)) < 0.5 * math.log(3)
    assert prior.initial_loss_ < zeros.initial_loss_


def test_prior_bias_accounts_for_logit_adjustment():
    frozen = {**TINY, "epochs": 1, "learning_rate": 1e-9}
    clf = KerasCharClassifier(**frozen, loss="logit_adjusted").fit(X, Y)
    # the model's own logits are balanced; the loss adds the priors back
    np.testing.assert_allclose(clf.predict_proba(X).mean(axis=0), 1 / 3, atol=0.03)
    entropy = -np.sum(clf.class_priors_ * np.log(clf.class_priors_))
    assert abs(clf.initial_loss_ - entropy) < 0.2 * entropy


# -- losses, weights -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "same_as_ce", [{"loss": "focal", "focal_gamma": 0.0}, {"loss": "logit_adjusted", "tau": 0.0}]
)
def test_degenerate_losses_train_exactly_like_cross_entropy(same_as_ce):
    ce = KerasCharClassifier(**TINY, loss="ce").fit(X, Y)
    other = KerasCharClassifier(**TINY, **same_as_ce).fit(X, Y)
    np.testing.assert_allclose(other.history_["loss"], ce.history_["loss"], rtol=1e-5)
    np.testing.assert_allclose(other.predict_proba(X), ce.predict_proba(X), atol=1e-5)


def test_loss_objects_and_focal_alpha():
    def loss_of(**params):
        clf = KerasCharClassifier(**{**TINY, "epochs": 1}, **params).fit(X, Y)
        return clf.model_.loss

    focal = loss_of(loss="focal", focal_gamma=1.5, focal_alpha="balanced")
    assert isinstance(focal, FocalLoss) and focal.gamma == 1.5
    # inverse frequency, mean 1 over the training samples
    np.testing.assert_allclose(focal.alpha, [70 / 120, 70 / 60, 70 / 30], rtol=1e-6)
    assert loss_of(loss="focal", focal_alpha={2: 4.0}).alpha == [1.0, 1.0, 4.0]
    adjusted = loss_of(loss="balanced_softmax", label_smoothing=0.1)
    assert isinstance(adjusted, LogitAdjustedLoss) and adjusted.tau == 1.0
    assert adjusted.label_smoothing == 0.1
    with pytest.raises(ValueError, match="focal_alpha has 2 values but there are 3 classes"):
        loss_of(loss="focal", focal_alpha=[1.0, 2.0])


def test_class_weight_equals_sample_weight():
    weights = np.where(Y == 2, 5.0, 1.0)
    ce = {**TINY, "loss": "ce"}
    by_class = KerasCharClassifier(**ce, class_weight={2: 5.0}).fit(X, Y)
    by_sample = KerasCharClassifier(**ce).fit(X, Y, sample_weight=weights)
    np.testing.assert_allclose(by_class.predict_proba(X), by_sample.predict_proba(X), atol=1e-6)
    plain = KerasCharClassifier(**ce).fit(X, Y)
    # the rare class weighs more in the loss: its predicted probability rises
    rare = by_class.predict_proba(X)[:, 2].mean()
    assert rare > plain.predict_proba(X)[:, 2].mean()
    balanced = KerasCharClassifier(**ce, class_weight="balanced").fit(X, Y)
    np.testing.assert_allclose(balanced.class_priors_, 1 / 3)


# -- optimisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "check"),
    [
        ("constant", lambda lr: np.allclose(lr, 0.01)),
        ("cosine", lambda lr: lr[0] < 0.01 and np.all(np.diff(lr) < 0) and lr[-1] < 1e-6),
        ("exponential", lambda lr: np.all(np.diff(lr) < 0) and lr[-1] == pytest.approx(1e-4)),
        ("step", lambda lr: lr[0] == pytest.approx(0.01) and lr[-1] == pytest.approx(1e-4)),
        ("onecycle", lambda lr: lr[0] > lr[1] > lr[2] and lr[-1] < 1e-6),
    ],
)
def test_learning_rate_schedules(schedule, check):
    clf = KerasCharClassifier(
        **{**TINY, "epochs": 4, "batch_size": 35}, learning_rate=0.01, lr_schedule=schedule
    ).fit(X, Y)
    assert check(np.array(clf.history_["learning_rate"])), clf.history_["learning_rate"]


def test_one_cycle_schedule_warms_up_then_anneals():
    schedule = classifier_module.OneCycleSchedule(0.01, total_steps=100)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(0.01 / 25)
    assert rates.argmax() == 30 and rates.max() == pytest.approx(0.01)
    assert np.all(np.diff(rates[:31]) > 0) and np.all(np.diff(rates[30:]) < 0)
    assert rates[-1] == pytest.approx(0.01 / 25 / 1e4)
    restored = classifier_module.OneCycleSchedule.from_config(schedule.get_config())
    assert float(restored(50)) == pytest.approx(float(schedule(50)))


def test_plateau_schedule_halves_the_rate():
    # a learning rate of 1e-9 cannot improve the loss: the plateau callback halves it
    clf = KerasCharClassifier(
        **{**TINY, "epochs": 4, "batch_size": 70}, learning_rate=1e-9, lr_schedule="plateau",
        patience=2,
    ).fit(X, Y)
    assert clf.history_["learning_rate"][-1] < 1e-9


def test_scale_lr_with_batch():
    clf = KerasCharClassifier(
        **{**TINY, "epochs": 1, "batch_size": 128}, lr_schedule="constant", scale_lr_with_batch=True
    ).fit(X, Y)
    assert clf.history_["learning_rate"] == [pytest.approx(2e-3)]


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD")]
)
def test_optimizers(name, cls):
    clf = KerasCharClassifier(**{**TINY, "epochs": 1}, optimizer=name, weight_decay=1e-3)
    clf.fit(X, Y)
    assert type(clf.model_.optimizer).__name__ == cls
    assert clf.model_.optimizer.weight_decay == pytest.approx(1e-3)


def test_weight_decay_and_l2_shrink_the_weights():
    def kernel_norm(**params):
        clf = KerasCharClassifier(**TINY, learning_rate=0.05, **params)
        kernel = clf.fit(X, Y).model_.get_layer("logits").kernel
        return float(np.linalg.norm(keras.ops.convert_to_numpy(kernel)))

    plain = kernel_norm()
    assert kernel_norm(weight_decay=5.0) < 0.9 * plain
    assert kernel_norm(l2=1.0) < 0.9 * plain


def test_l2_enters_the_initial_loss():
    plain = KerasCharClassifier(**{**TINY, "epochs": 1}).fit(X, Y)
    penalised = KerasCharClassifier(**{**TINY, "epochs": 1}, l2=0.1).fit(X, Y)
    assert penalised.initial_loss_ > plain.initial_loss_ + 0.01


# -- early stopping, checkpoints, warm start -------------------------------------------------


def test_early_stopping_restores_the_best_epoch():
    X_val, y_val = _chars((10, 10, 10), seed=2)
    clf = KerasCharClassifier(
        **{**TINY, "epochs": 12, "batch_size": 70}, learning_rate=0.05, early_stopping=True,
        patience=2, monitor="val_f1_macro", validation_data=(X_val, y_val),
    ).fit(X, Y)
    scores = clf.history_["val_f1_macro"]
    assert clf.best_epoch_ == int(np.argmax(scores))
    assert len(scores) <= clf.best_epoch_ + 3  # stopped `patience` epochs after the best
    assert f1_score(y_val, clf.predict(X_val), average="macro") == pytest.approx(
        max(scores), abs=1e-5
    )


def test_early_stopping_holds_out_a_stratified_split():
    clf = KerasCharClassifier(**TINY, early_stopping=True, validation_fraction=0.2).fit(X, Y)
    assert "val_loss" in clf.history_
    # 14 of 70 samples held out in proportion (8, 4, 2): training priors are unchanged
    np.testing.assert_allclose(clf.class_priors_, [32 / 56, 16 / 56, 8 / 56])


def test_class_with_a_single_sample_stays_in_training():
    Xs, ys = _chars((30, 20, 1))
    clf = KerasCharClassifier(**TINY, early_stopping=True, validation_fraction=0.3).fit(Xs, ys)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.class_priors_[2] > 0


def test_checkpoint_averaging():
    one = KerasCharClassifier(**TINY, checkpoint_averaging=1).fit(X, Y)
    plain = KerasCharClassifier(**TINY).fit(X, Y)
    np.testing.assert_array_equal(one.predict_proba(X), plain.predict_proba(X))
    two = KerasCharClassifier(**TINY, checkpoint_averaging=2).fit(X, Y)
    assert not np.allclose(two.predict_proba(X), plain.predict_proba(X))


def test_checkpoint_average_of_best_epochs():
    monitor = CheckpointAveraging(keep=2, select="best", monitor="val_loss")
    for epoch, (loss, value) in enumerate([(0.9, 1.0), (0.5, 3.0), (0.7, 5.0), (0.8, 7.0)]):

        class _Model:
            @staticmethod
            def get_weights(value=value, epoch=epoch):
                return [np.full(2, value, dtype="float32"), np.array([epoch], dtype="int64")]

        monitor._epoch = epoch
        monitor.set_model(_Model())
        monitor._store({"val_loss": loss})
    floats, ints = monitor.averaged_weights()
    np.testing.assert_allclose(floats, [4.0, 4.0])  # epochs with val_loss 0.5 and 0.7
    assert ints.dtype == np.int64


def test_warm_start_continues_from_the_fitted_network():
    clf = KerasCharClassifier(**{**TINY, "epochs": 3}, learning_rate=0.01, warm_start=True)
    first = clf.fit(X, Y).initial_loss_
    network = clf.model_
    weights = [w.copy() for w in network.get_weights()]
    second = clf.fit(X, Y).initial_loss_
    assert second < first
    # A copy was trained (so that an interrupted fit could leave the network as it was).
    assert clf.model_ is not network
    for before, after in zip(weights, network.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match=r"warm_start: y holds label\(s\) \[5\]"):
        clf.fit(X, np.where(Y == 2, 5, Y))


# -- transfer learning -----------------------------------------------------------------------


def _backbone_weights(clf):
    return [w.copy() for w in clf.model_.get_layer("backbone").get_weights()]


def test_freeze_backbone_trains_only_the_head():
    clf = KerasCharClassifier(**TINY, learning_rate=0.01).fit(X, Y)
    before = _backbone_weights(clf)
    head = keras.ops.convert_to_numpy(clf.model_.get_layer("logits").kernel).copy()
    clf.set_params(warm_start=True, freeze_backbone=True).fit(X, Y)
    for a, b in zip(before, _backbone_weights(clf), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(keras.ops.convert_to_numpy(clf.model_.get_layer("logits").kernel), head)
    # unfrozen again, the backbone trains
    clf.set_params(freeze_backbone=False).fit(X, Y)
    assert not all(
        np.array_equal(a, b) for a, b in zip(before, _backbone_weights(clf), strict=True)
    )


def test_backbone_weights_transfer(tmp_path):
    source = KerasCharClassifier(**TINY).fit(X, Y)
    source.save(tmp_path / "source.keras")
    target = KerasCharClassifier(
        **{**TINY, "random_state": 1}, backbone_weights=tmp_path / "source.keras",
        freeze_backbone=True,
    ).fit(X[Y > 0], Y[Y > 0])
    for a, b in zip(_backbone_weights(source), _backbone_weights(target), strict=True):
        np.testing.assert_array_equal(a, b)
    source.model_.get_layer("backbone").save_weights(tmp_path / "backbone.weights.h5")
    from_h5 = KerasCharClassifier(
        **TINY, backbone_weights=str(tmp_path / "backbone.weights.h5"), freeze_backbone=True
    ).fit(X, Y)
    for a, b in zip(_backbone_weights(source), _backbone_weights(from_h5), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="do not fit this backbone"):
        KerasCharClassifier(
            **{**TINY, "filters": (6,)}, backbone_weights=tmp_path / "source.keras"
        ).fit(X, Y)
    with pytest.raises(ValueError, match="no such file"):
        KerasCharClassifier(**TINY, backbone_weights=tmp_path / "missing.keras").fit(X, Y)


def test_frozen_batch_norm_stays_a_fixed_map():
    clf = KerasCharClassifier(**TINY, batch_norm="frozen", freeze_backbone=True).fit(X, Y)
    clf.set_params(warm_start=True, freeze_backbone=False).fit(X, Y)  # unfreeze the backbone
    norms = [
        layer
        for layer in clf.model_._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and not any(layer.trainable_weights for layer in norms)
    for layer in norms:  # never updated from batch statistics
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.moving_variance), 1.0)


def test_head_flatten_has_more_parameters_than_gap():
    gap = KerasCharClassifier(**{**TINY, "epochs": 1}).fit(X, Y)
    flat = KerasCharClassifier(**{**TINY, "epochs": 1}, head="flatten").fit(X, Y)
    assert flat.model_.count_params() > gap.model_.count_params() + 40


# -- normalisation, augmentation, dropout ----------------------------------------------------


@pytest.mark.parametrize("normalization", ["scale", "center", "standardize"])
def test_normalization_is_learned_from_training_data(normalization):
    clf = KerasCharClassifier(**{**TINY, "epochs": 1}, normalization=normalization).fit(X, Y)
    layer = clf.model_.get_layer("normalization")
    z = keras.ops.convert_to_numpy(layer(X))
    if normalization == "scale":
        assert z.min() == pytest.approx(0.0, abs=1e-6) and z.max() == pytest.approx(1.0)
    else:
        assert z.mean() == pytest.approx(0.0, abs=1e-5)
        expected_std = 1.0 if normalization == "standardize" else X.std()
        assert z.std() == pytest.approx(expected_std, rel=1e-4)


def test_online_augmentation_and_dropout_are_inactive_at_prediction():
    params = {**TINY, "online_augmentation": "default", "dropout": 0.5}
    clf = KerasCharClassifier(**params).fit(X, Y)
    names = [layer.name for layer in clf.model_.layers]
    assert "augment_rotation" in names
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    train_mode = keras.ops.convert_to_numpy(clf.model_(X, training=True))
    assert not np.allclose(train_mode, keras.ops.convert_to_numpy(clf.model_(X)))


# -- reproducibility, threads, verbosity -----------------------------------------------------


def test_random_state_makes_fits_identical():
    params = {**TINY, "early_stopping": True, "dropout": 0.2, "online_augmentation": "light"}
    a = KerasCharClassifier(**params).fit(X, Y)
    b = KerasCharClassifier(**params).fit(X, Y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.history_ == b.history_
    c = KerasCharClassifier(**{**params, "random_state": 1}).fit(X, Y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_random_state_does_not_touch_global_random_state():
    # the legacy global generator is what Keras and scikeras seed: check it is restored
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.rand()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    KerasCharClassifier(**{**TINY, "epochs": 1}).fit(X, Y)
    assert np.random.rand() == expected  # noqa: NPY002


def test_fit_leaves_tensorflow_op_determinism_as_it_was():
    import tensorflow as tf
    from tensorflow.python.framework import config

    # 3 epochs of 5 batches: a compiled (graph-mode) fit
    KerasCharClassifier(**{**TINY, "epochs": 3, "batch_size": 16}).fit(X, Y)
    assert not config.is_op_determinism_enabled()
    tf.random.uniform(())  # an unseeded random op of the user's own code still works


def test_n_threads_limits_tensorflow(monkeypatch):
    calls = []
    monkeypatch.setattr(classifier_module, "limit_threads", calls.append)
    KerasCharClassifier(**{**TINY, "epochs": 1}, n_threads=1).fit(X, Y)
    assert calls == [1]


def test_verbose(capsys):
    KerasCharClassifier(**{**TINY, "epochs": 1}).fit(X, Y).predict(X)
    assert capsys.readouterr().out == ""
    KerasCharClassifier(**{**TINY, "epochs": 1}, verbose=2).fit(X, Y)
    out = capsys.readouterr().out
    assert "loss:" in out and ("No findings" in out or "[warning]" in out)


def test_verbose_diagnosis_goes_to_the_progress_sink(capsys):
    from skcharclf._progress import progress_sink

    lines = []
    with progress_sink(lines.append):
        clf = KerasCharClassifier(**{**TINY, "epochs": 1}, verbose=2).fit(X, Y)
    assert len(lines) == 1 and lines[0].startswith("Diagnosis of the learning curves\n")
    assert "Diagnosis" not in capsys.readouterr().out  # Keras's epoch lines still print
    with progress_sink(lines.append):
        clf.set_params(verbose=0).fit(X, Y)
    assert len(lines) == 1


# -- validation: never silent when overfitting cannot be judged --------------------------------


def _unjudged(record):
    return [w for w in record if issubclass(w.category, NoValidationWarning)]


def _fit_recording(clf, X, y):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf.fit(X, y)
    return _unjudged(record)


@pytest.mark.slow
def test_first_try_warns_and_diagnoses_the_classic_overfitting_sign():
    """The procedure's first try: 60 images, classes of one or two, no regularisation."""
    from skcharclf.datasets import load_digit_chars
    from skcharclf.preprocessing import ImageResizer

    images, labels = load_digit_chars(return_X_y=True, random_state=0)
    rng = np.random.RandomState(0)
    sizes = {c: 1 if c in (2, 8) else 2 if c == 5 else 8 for c in range(10)}
    index = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in sizes.items()]
    )
    Xs = ImageResizer(size=(12, 12)).fit_transform([images[i] for i in index])
    clf = KerasCharClassifier(
        image_shape=(12, 12), filters=(8, 16), head="flatten", epochs=15, batch_size=16,
        loss="ce", label_smoothing=0.0, online_augmentation=None, lr_schedule="constant",
        learning_rate=3e-3, random_state=0,
    )
    (warning,) = _fit_recording(clf, Xs, labels[index])
    assert clf.history_["accuracy"][-1] == 1.0
    message = str(warning.message)
    assert message.startswith("KerasCharClassifier trained 15 epochs without a validation set")
    assert "the procedure's classic overfitting sign" in message
    assert "validation_data=(X_val, y_val)" in message and "fewer" in message
    (finding,) = [f for f in clf.diagnosis_ if f.code == "no_validation"]
    assert finding.severity == "warning"
    assert "classic overfitting sign" in finding.title
    assert list(clf.unvalidated_classes_) == list(range(10))


def test_validation_split_without_the_rarest_class_warns_once():
    Xs, ys = _chars(n_per_class=(40, 20, 1))
    clf = KerasCharClassifier(**{**TINY, "epochs": 4}, early_stopping=True, patience=10)
    (warning,) = _fit_recording(clf, Xs, ys)
    assert "the stratified validation split (validation_fraction=0.1) holds no image of " \
        "class(es) 2" in str(warning.message)
    assert clf.unvalidated_classes_.tolist() == [2]
    assert [f.code for f in clf.diagnosis_ if f.severity == "info"][-1] == "validation_incomplete"


def test_validation_data_without_a_class_warns():
    clf = KerasCharClassifier(**{**TINY, "epochs": 4}, validation_data=(X[Y < 2], Y[Y < 2]))
    (warning,) = _fit_recording(clf, X, Y)
    assert "validation_data holds no image of class(es) 2" in str(warning.message)


def test_complete_validation_or_a_short_run_does_not_warn():
    complete = KerasCharClassifier(**{**TINY, "epochs": 4}, validation_data=(X, Y))
    assert _fit_recording(complete, X, Y) == []
    assert complete.unvalidated_classes_.size == 0
    assert "no_validation" not in [f.code for f in complete.diagnosis_]
    short = KerasCharClassifier(**TINY)  # 2 epochs: too short for any trend anyway
    assert _fit_recording(short, X, Y) == []
    assert short.unvalidated_classes_.tolist() == [0, 1, 2]


def test_no_validation_set_is_in_the_diagnosis_and_warns_only_on_the_overfitting_sign(tmp_path):
    # Nothing memorised (a learning rate too low to learn): only the info finding, no warning,
    # so the short rungs of a search do not warn on every candidate.
    still = KerasCharClassifier(**{**TINY, "epochs": 4}, learning_rate=1e-7)
    assert _fit_recording(still, X, Y) == []
    (finding,) = [f for f in still.diagnosis_ if f.code == "no_validation"]
    assert finding.severity == "info"
    # Memorised: the procedure's classic overfitting sign warns once.
    clf = KerasCharClassifier(**{**TINY, "epochs": 12}, learning_rate=3e-2)
    (warning,) = _fit_recording(clf, X, Y)
    assert "trained 12 epochs without a validation set" in str(warning.message)
    assert "classic overfitting sign" in str(warning.message)
    (finding,) = [f for f in clf.diagnosis_ if f.code == "no_validation"]
    assert finding.severity == "warning"
    clf.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert loaded.unvalidated_classes_.tolist() == [0, 1, 2]
    assert [f.code for f in loaded.diagnosis_] == [f.code for f in clf.diagnosis_]


# -- divergence ------------------------------------------------------------------------------


def test_diverging_fit_raises_a_clear_error():
    clf = KerasCharClassifier(**{**TINY, "epochs": 5, "batch_size": 16}, learning_rate=10)
    with pytest.raises(TrainingDivergedError, match="lower learning rate") as info:
        clf.fit(X, Y)
    error = info.value
    assert "Training diverged" in str(error) and "learning_rate=1" in str(error)
    assert error.epoch == 1 and error.batch is not None
    assert error.finding is not None and error.finding.code == "divergence"
    assert error.finding.severity == "error"
    with pytest.raises(NotFittedError):
        clf.predict(X)


# -- persistence -----------------------------------------------------------------------------


def test_joblib_round_trip_of_a_pipeline(tmp_path):
    from skcharclf.preprocessing import ImageResizer

    images = [x.reshape(SHAPE) for x in X]
    pipe = Pipeline(
        [("resize", ImageResizer(size=SHAPE)), ("clf", KerasCharClassifier(**TINY))]
    ).fit(images, Y)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    restored = joblib.load(tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(restored.predict_proba(images), pipe.predict_proba(images))
    assert restored.named_steps["clf"].history_ == pipe.named_steps["clf"].history_
    # the restored network can keep training
    restored.set_params(clf__warm_start=True).fit(images, Y)


def test_save_and_load_model(tmp_path):
    Xs, ys = _chars(labels=("a", "b", "c"))
    clf = KerasCharClassifier(**TINY, class_weight={"c": 2.0}, loss="focal").fit(Xs, ys)
    clf.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert "skcharclf.json" in archive.namelist()
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict_proba(Xs), clf.predict_proba(Xs))
    np.testing.assert_array_equal(loaded.predict(Xs), clf.predict(Xs))
    assert loaded.get_params() == clf.get_params()
    assert loaded.history_ == clf.history_ and loaded.best_epoch_ == clf.best_epoch_
    assert loaded.score(Xs, ys) == clf.score(Xs, ys)
    with pytest.raises(ValueError, match="X has 10 features"):
        loaded.predict(Xs[:, :10])


def test_save_errors(tmp_path, fitted):
    with pytest.raises(ValueError, match=r"must end in '\.keras'"):
        fitted.save(tmp_path / "model.pkl")
    with pytest.raises(NotFittedError):
        KerasCharClassifier().save(tmp_path / "model.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a model file written by"):
        load_model(tmp_path / "junk.keras")


def test_load_model_refuses_code(tmp_path, fitted):
    """A model file carrying a Python lambda is refused: loading cannot run code."""
    fitted.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as archive:
        metadata = archive.read("skcharclf.json")
    inputs = keras.Input((64,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "evil.keras")
    with zipfile.ZipFile(tmp_path / "evil.keras", "a") as archive:
        archive.writestr("skcharclf.json", metadata)
    with pytest.raises(ValueError, match=r"cannot rebuild its network: .*`Lambda` layer"):
        load_model(tmp_path / "evil.keras")


# -- bad input -------------------------------------------------------------------------------


def test_wrong_image_shape():
    with pytest.raises(ValueError, match=r"image_shape=\(32, 32\) holds 1024 pixels but X has 64"):
        KerasCharClassifier(**{**TINY, "image_shape": (32, 32)}).fit(X, Y)


def test_nan_input_names_the_sample(fitted):
    bad = X.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ValueError, match="sample 5 of X contains NaN"):
        KerasCharClassifier(**TINY).fit(bad, Y)
    with pytest.raises(ValueError, match="sample 5 of X contains NaN"):
        fitted.predict(bad)


def test_unseen_label_at_score_counts_as_an_error(fitted):
    y_other = Y.copy()
    y_other[:10] = 9  # a label the classifier never saw
    expected = np.mean(fitted.predict(X) == y_other)
    assert fitted.score(X, y_other) == pytest.approx(expected)
    assert fitted.score(X, y_other) <= 60 / 70


def test_one_class_only():
    # the label as the user wrote it, not numpy's repr np.int64(0)
    with pytest.raises(ValueError, match=r"only one class \(0\);"):
        KerasCharClassifier(**TINY).fit(X, np.zeros(len(X), dtype=np.int64))
    with pytest.raises(ValueError, match=r"only one class \('a'\);"):
        KerasCharClassifier(**TINY).fit(X, np.full(len(X), "a"))


def test_too_few_samples_for_the_validation_split():
    with pytest.raises(ValueError, match=r"holds out no sample.*validation_data"):
        rows = [0, 1, 40, 41, 60]
        KerasCharClassifier(**TINY, early_stopping=True).fit(X[rows], Y[rows])


def test_validation_data_with_an_unseen_label():
    with pytest.raises(ValueError, match=r"validation_data holds label\(s\) \[7\]"):
        KerasCharClassifier(**TINY, validation_data=(X[:5], np.full(5, 7))).fit(X, Y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"loss": "svm"}, "'loss' parameter"),
        ({"filters": ()}, "filters must be a non-empty tuple"),
        ({"head": "max"}, "'head' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter"),
        # Upper bounds on what sizes memory or time (also checked on a loaded file).
        ({"filters": (8, 4096)}, r"'filters' parameter .* integers in \[1, 1024\]"),
        ({"filters": (4,) * 9}, r"'filters' parameter .* a tuple of 0 to 8 integers"),
        ({"filters": (0,)}, "'filters' parameter"),
        ({"image_shape": (1, 2048)}, r"'image_shape' parameter .* in \[1, 1024\]"),
        ({"blocks_per_stage": 65}, "'blocks_per_stage' parameter"),
        ({"batch_size": 2**16 + 1}, "'batch_size' parameter"),
        ({"epochs": 10**6 + 1}, "'epochs' parameter"),
        ({"patience": 10**6 + 1}, "'patience' parameter"),
        ({"checkpoint_averaging": 1001}, "'checkpoint_averaging' parameter"),
        ({"n_threads": 1025}, "'n_threads' parameter"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        KerasCharClassifier(**{**TINY, **params}).fit(X, Y)


def test_clone_and_repr():
    clf = KerasCharClassifier(loss="focal", epochs=5)
    assert repr(clf) == "KerasCharClassifier(epochs=5, loss='focal')"
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'fit'"):
        clf.set_params(fit__epochs=3)
