"""Training control of KerasCharClassifier: user callbacks, losses, kernel constraints.

Every fit is tiny (8x8 bar characters, one stage of 4 filters, 2 epochs).
"""

import csv
import os
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from _data import TINY_CLASSIFIER, bar_chars
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skcharclf._initial_loss import cross_entropy_scale
from skcharclf._tf import import_keras
from skcharclf.classifier import KerasCharClassifier, load_model
from skcharclf.diagnostics._curves import build_curves
from skcharclf.losses import HingeLoss
from skcharclf.preprocessing import Denoiser

keras = import_keras()

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

X, Y = bar_chars((30, 20, 10), rows=(1, 4, 6), seed=0)


class EpochRecorder(keras.callbacks.Callback):
    """Records each epoch and its logs, then overwrites the logged loss: a callback that ran
    before the package's history recorder would corrupt ``history_``."""

    def __init__(self):
        super().__init__()
        self.epochs, self.logs = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.logs.append(dict(logs))
        logs["loss"] = -1.0


class EpochFiles(keras.callbacks.Callback):
    """Writes one file per epoch into ``folder``, named after the process and the object."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        Path(self.folder, f"{os.getpid()}-{id(self)}-{epoch}").touch()


# -- callbacks -------------------------------------------------------------------------------


def test_custom_callback_sees_every_epoch_after_the_package_callbacks():
    given = EpochRecorder()
    clf = KerasCharClassifier(**TINY_CLASSIFIER, callbacks=[given]).fit(X, Y)
    (ran,) = clf.callbacks_
    assert ran is not given and given.epochs == [] and clf.callbacks == [given]
    assert ran.epochs == [0, 1]
    assert [logs["loss"] for logs in ran.logs] == clf.history_["loss"]  # ran after the recorder
    assert {"loss", "accuracy", "f1_macro"} <= set(ran.logs[0])
    assert ran.model is clf.model_
    clf.fit(X, Y)  # each fit runs fresh copies
    assert clf.callbacks_[0] is not ran and clf.callbacks_[0].epochs == [0, 1]


def test_csv_logger_and_model_checkpoint_write_their_files(tmp_path):
    callbacks = [
        keras.callbacks.CSVLogger(tmp_path / "log.csv"),
        keras.callbacks.ModelCheckpoint(
            str(tmp_path / "epoch-{epoch}.weights.h5"), save_weights_only=True
        ),
    ]
    clf = KerasCharClassifier(**TINY_CLASSIFIER, callbacks=callbacks).fit(X, Y)
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], clf.history_["loss"], rtol=1e-6)
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == [
        "epoch-1.weights.h5",
        "epoch-2.weights.h5",
    ]
    # the last checkpoint holds the final weights (no averaging, no early stopping)
    network = keras.models.clone_model(clf.model_)
    network.load_weights(tmp_path / "epoch-2.weights.h5")
    np.testing.assert_allclose(network.predict(X, verbose=0), clf.model_.predict(X, verbose=0))


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        (["csv"], r"callbacks\[0\] must be a keras.callbacks.Callback, got a str"),
        (
            [keras.callbacks.TerminateOnNaN(), keras.callbacks.CSVLogger],
            r"callbacks\[1\] .* got the class CSVLogger \(instantiate it\)",
        ),
        ("csv", "The 'callbacks' parameter of KerasCharClassifier must be None"),
    ],
)
def test_callbacks_are_checked_before_training(callbacks, message):
    clf = KerasCharClassifier(**TINY_CLASSIFIER, callbacks=callbacks)
    with pytest.raises((TypeError, ValueError), match=message):
        clf.fit(X, Y)
    assert not hasattr(clf, "history_")


def test_a_used_callback_that_cannot_be_copied_is_named(tmp_path):
    used = keras.callbacks.CSVLogger(tmp_path / "log.csv")
    KerasCharClassifier(**TINY_CLASSIFIER, callbacks=[used]).fit(X, Y)  # runs a copy
    used.on_train_begin()  # as if it had been used elsewhere: it holds an open file now
    used.on_train_end()
    with pytest.raises(TypeError, match=r"callbacks\[0\] \(CSVLogger\) cannot be copied"):
        KerasCharClassifier(**TINY_CLASSIFIER, callbacks=[used]).fit(X, Y)


def test_callbacks_survive_clone_set_params_joblib_and_model_files(tmp_path):
    pipeline = Pipeline(
        [("denoise", Denoiser(image_shape=(8, 8))), ("clf", KerasCharClassifier(**TINY_CLASSIFIER))]
    )
    logger = keras.callbacks.CSVLogger(tmp_path / "log.csv")
    pipeline.set_params(clf__callbacks=[logger])
    copy = clone(pipeline)
    (cloned,) = copy.named_steps["clf"].callbacks
    assert type(cloned) is keras.callbacks.CSVLogger and cloned is not logger
    copy.fit(X, Y)
    clf = copy.named_steps["clf"]
    assert (tmp_path / "log.csv").exists()

    joblib.dump(copy, tmp_path / "model.joblib")  # the used CSVLogger copy is not pickled
    restored = joblib.load(tmp_path / "model.joblib")
    assert not hasattr(restored.named_steps["clf"], "callbacks_") and hasattr(clf, "callbacks_")
    assert type(restored.named_steps["clf"].callbacks[0]) is keras.callbacks.CSVLogger
    np.testing.assert_array_equal(restored.predict_proba(X), copy.predict_proba(X))

    clf.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert b'"params_not_saved": ["callbacks"]' in archive.read("skcharclf.json")
    loaded = load_model(tmp_path / "model.keras")
    assert loaded.callbacks is None
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.slow
def test_parallel_search_runs_a_copy_per_fit(tmp_path):
    """GridSearchCV(n_jobs=2) pickles the estimator to two loky workers: every fit (2
    candidates x 2 folds, then the refit) runs its own copy of the callback."""
    clf = KerasCharClassifier(**TINY_CLASSIFIER, callbacks=[EpochFiles(tmp_path)])
    search = GridSearchCV(clf, {"learning_rate": [1e-3, 3e-3]}, cv=2, n_jobs=2).fit(X, Y)
    runs = {name.rsplit("-", 1)[0] for name in os.listdir(tmp_path)}
    assert len(runs) == 5 and len(os.listdir(tmp_path)) == 10
    assert len({name.split("-")[0] for name in os.listdir(tmp_path)}) >= 2  # in workers too
    assert search.best_estimator_.callbacks_[0].folder == tmp_path


# -- losses ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::skcharclf.diagnostics.NoValidationWarning")
@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_hinge_losses_separate_separable_data(loss):
    params = {**TINY_CLASSIFIER, "epochs": 10, "batch_size": 8, "learning_rate": 0.03}
    clf = KerasCharClassifier(**params, loss=loss).fit(X, Y)
    assert clf.score(X, Y) == 1.0
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    # the margins of the training images are met: their class's logit is the largest by 2
    logits = clf.model_.predict(X, verbose=0)
    assert np.median(np.sort(logits, axis=1)[:, -1] - np.sort(logits, axis=1)[:, -2]) > 1.0


def test_hinge_loss_values():
    loss = HingeLoss()
    labels, logits = np.array([0, 1]), np.array([[2.0, -0.5, -1.0], [0.0, 0.5, 3.0]])
    # sample 0: violations 0, 0.5, 0; sample 1: 1, 0.5, 4
    assert float(loss(labels, logits)) == pytest.approx((0.5 / 3 + 5.5 / 3) / 2)
    squared = HingeLoss(squared=True)
    assert float(squared(labels, logits)) == pytest.approx((0.25 / 3 + 17.25 / 3) / 2)
    assert HingeLoss.from_config(squared.get_config()).squared
    np.testing.assert_array_equal(loss.best_constant([0.2, 0.5, 0.8]), [-1, 0, 1])
    np.testing.assert_allclose(squared.best_constant([0.2, 0.8]), [-0.6, 0.6])


def test_mixed_targets_mix_the_hinge_and_user_losses():
    logits = np.array([[2.0, -0.5, -1.0], [0.0, 0.5, 3.0]], dtype="float32")
    mixed = np.array([[0, 2, 0.75], [1, 1, 1.0]], dtype="float32")  # (label_a, label_b, share)
    hinge = HingeLoss()
    expected = (0.75 * 0.5 / 3 + 0.25 * (3.0 + 0.5 + 2.0) / 3 + 5.5 / 3) / 2
    assert float(hinge(mixed, logits)) == pytest.approx(expected)
    seen = []

    def cross_entropy(y_true, logits):
        seen.append((tuple(y_true.shape), str(y_true.dtype)))
        return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)

    params = {**TINY_CLASSIFIER, "mixup_alpha": 0.4, "cutmix_alpha": 0.4}
    for loss in ("hinge", cross_entropy):
        clf = KerasCharClassifier(**params, loss=loss).fit(X, Y)
        assert np.isfinite(clf.history_["loss"]).all()
    # labels of shape (batch,), as without mixing (Keras hands them over as floats)
    assert {shape for shape, _ in seen} == {(60,), (32,), (28,)}
    assert {dtype for _, dtype in seen} == {"<dtype: 'float32'>"}


def test_hinge_starts_at_its_best_constant_and_is_not_judged_against_ln_c():
    clf = KerasCharClassifier(**{**TINY_CLASSIFIER, "epochs": 1}, loss="hinge").fit(X, Y)
    # the initial loss of the best constant margins (-1 for every class, all under half):
    # only the own-class term violates, by 2, and the mean over 3 classes is 2/3
    assert clf.initial_loss_ == pytest.approx(2 / 3, abs=0.05)
    assert not cross_entropy_scale(clf.get_params())
    assert build_curves(clf, None, None, None).chance is None
    assert "initial_loss" not in [finding.code for finding in clf.diagnosis_]
    assert all("uninformed_loss" not in finding.evidence for finding in clf.diagnosis_)


def _same_as_plain_cross_entropy(loss):
    params = {**TINY_CLASSIFIER, "label_smoothing": 0.0, "bias_init": "zeros"}
    reference = KerasCharClassifier(**params, loss="ce").fit(X, Y)
    clf = KerasCharClassifier(**params, loss=loss).fit(X, Y)
    assert clf.initial_loss_ == pytest.approx(reference.initial_loss_, rel=1e-5)
    np.testing.assert_allclose(clf.history_["loss"], reference.history_["loss"], rtol=1e-4)
    np.testing.assert_allclose(clf.predict_proba(X), reference.predict_proba(X), atol=1e-4)
    return clf


def test_keras_loss_instance():
    clf = _same_as_plain_cross_entropy(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # the user's loss has no known reference: no comparison with ln C
    assert "initial_loss" not in [finding.code for finding in clf.diagnosis_]
    assert build_curves(clf, None, None, None).chance is None
    copy = clone(clf)
    assert type(copy.loss) is keras.losses.SparseCategoricalCrossentropy
    assert copy.loss is not clf.loss and copy.get_params()["loss"].from_logits


def test_loss_function():
    def cross_entropy(y_true, logits):
        return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)

    _same_as_plain_cross_entropy(cross_entropy)
    fn = lambda y_true, logits: keras.ops.mean(keras.ops.square(logits), axis=-1)  # noqa: E731
    clf = KerasCharClassifier(**TINY_CLASSIFIER, loss=fn).fit(X, Y)
    assert clone(clf).get_params()["loss"] is fn
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]  # it minimised the function


@pytest.mark.parametrize(
    ("loss", "error", "message"),
    [
        (3, TypeError, "The 'loss' parameter of KerasCharClassifier must be a str among"),
        ("svm", ValueError, "The 'loss' parameter of KerasCharClassifier must be a str among"),
        (
            keras.losses.SparseCategoricalCrossentropy(),
            ValueError,
            r"takes probabilities \(from_logits=False\), but the network outputs logits",
        ),
    ],
)
def test_bad_losses_are_refused_before_training(loss, error, message):
    clf = KerasCharClassifier(**TINY_CLASSIFIER, loss=loss)
    with pytest.raises(error, match=message):
        clf.fit(X, Y)
    assert not hasattr(clf, "history_")


def _ten_cross_entropies(y_true, logits):
    return 10.0 * keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)


def test_model_file_of_a_custom_loss(tmp_path):
    """Ten cross-entropies start at ten times ln C: judged as cross-entropy, the initial loss
    would be "far above a model that knows nothing", after loading too."""
    clf = KerasCharClassifier(**TINY_CLASSIFIER, loss=_ten_cross_entropies).fit(X, Y)
    assert clf.initial_loss_ > 8
    clf.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert loaded.loss == "logit_adjusted"  # not saved: the default
    assert "initial_loss" not in [f.code for f in clf.diagnosis_]
    assert [f.code for f in loaded.diagnosis_] == [f.code for f in clf.diagnosis_]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


# -- kernel constraint -----------------------------------------------------------------------


def _kernel_norms(model):
    """The L2 norm of the weights into each unit of every convolution and Dense layer
    (Keras's MaxNorm axes: all but the output axis), by layer name."""
    norms = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            axes = tuple(range(kernel.ndim - 1))
            norms[layer.name] = np.sqrt(np.sum(kernel**2, axis=axes))
    return norms


@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_max_norm_caps_every_kernel(architecture):
    params = {**TINY_CLASSIFIER, "architecture": architecture, "filters": (4, 8)}
    clf = KerasCharClassifier(**params, kernel_constraint="max_norm", max_norm_value=0.4)
    norms = _kernel_norms(clf.fit(X, Y).model_)
    # stem, two blocks of two convolutions (a projection shortcut into stage 2), the output
    assert len(norms) == 1 + 4 + (architecture == "resnet") + 1 and "logits" in norms
    for name, unit_norms in norms.items():
        assert unit_norms.max() <= 0.4 + 1e-5, name
    # the He-initialised kernels start far above the cap (norm about 1.4): scaled down to it
    assert np.isclose(norms["stem_conv"], 0.4, atol=2e-3).all()
    assert np.isclose(norms["logits"], 0.4, atol=2e-3).any()


def test_max_norm_is_searchable_and_saved(tmp_path):
    clf = KerasCharClassifier(**TINY_CLASSIFIER, kernel_constraint="max_norm")
    assert clone(clf).set_params(max_norm_value=1.5).max_norm_value == 1.5
    with pytest.raises(ValueError, match=r"'max_norm_value' parameter .* must be a float"):
        clone(clf).set_params(max_norm_value=0.0).fit(X, Y)
    with pytest.raises(ValueError, match="'kernel_constraint' parameter"):
        clone(clf).set_params(kernel_constraint="unit_norm").fit(X, Y)
    clf.set_params(max_norm_value=0.5).fit(X, Y)
    clf.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert (loaded.kernel_constraint, loaded.max_norm_value) == ("max_norm", 0.5)
    assert loaded.model_.get_layer("logits").kernel_constraint.max_value == 0.5
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
