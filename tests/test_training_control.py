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

from skcharclf._tf import import_keras
from skcharclf.classifier import KerasCharClassifier, load_model
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
