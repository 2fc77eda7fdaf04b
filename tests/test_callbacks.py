"""skcharclf.callbacks on a plain Keras model: each callback does its one job."""

import math

import numpy as np
import pytest

from skcharclf._tf import import_keras
from skcharclf.callbacks import (
    SCHEDULES,
    CheckpointAveraging,
    Divergence,
    DivergenceGuard,
    HistoryRecorder,
    OneCycleSchedule,
)

keras = import_keras()


def _model(learning_rate=0.01):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    return model


def _data(n=32):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype("float32")
    return X, (X[:, 0] > 0).astype("int32")


def test_history_recorder_records_every_epoch_and_the_rate():
    X, y = _data()
    recorder = HistoryRecorder()
    _model().fit(X, y, epochs=3, batch_size=16, verbose=0, callbacks=[recorder])
    assert set(recorder.history) == {"loss", "learning_rate"}
    assert len(recorder.history["loss"]) == 3
    np.testing.assert_allclose(recorder.history["learning_rate"], [0.01] * 3)


def test_divergence_guard_stops_at_the_first_exploding_batch():
    X, y = _data()
    recorder, guard = HistoryRecorder(), DivergenceGuard(loss_limit=1e-6)
    _model().fit(X, y, epochs=5, batch_size=16, verbose=0, callbacks=[recorder, guard])
    assert guard.diverged == Divergence(epoch=1, batch=1, key="loss", value=guard.diverged.value)
    assert guard.diverged.value > 1e-6
    assert len(recorder.history["loss"]) == 1  # stopped in the first epoch


def test_divergence_guard_catches_a_nan_validation_loss():
    guard = DivergenceGuard()
    guard.set_model(_model())
    guard.on_epoch_end(2, {"loss": 0.5, "val_loss": math.nan})
    assert guard.diverged.epoch == 3 and guard.diverged.batch is None
    assert guard.diverged.key == "val_loss" and guard.model.stop_training


def test_checkpoint_averaging_of_the_last_epochs():
    X, y = _data()
    model = _model(learning_rate=0.1)
    weights = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(self.model.get_weights())

    averaging = CheckpointAveraging(keep=2)
    model.fit(X, y, epochs=4, batch_size=16, verbose=0, callbacks=[averaging, Snapshot()])
    averaged = averaging.averaged_weights()
    for k, array in enumerate(averaged):
        np.testing.assert_allclose(array, (weights[2][k] + weights[3][k]) / 2, rtol=1e-6)


def test_checkpoint_averaging_skips_an_epoch_a_guard_stopped():
    X, y = _data()
    averaging = CheckpointAveraging(keep=3)
    callbacks = [DivergenceGuard(loss_limit=1e-6), averaging]
    _model().fit(X, y, epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
    assert averaging.averaged_weights() is None


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_start_at_the_peak_or_below(name):
    rate = SCHEDULES[name](0.1, 100)
    first = float(rate) if isinstance(rate, float) else float(rate(0))
    assert 0 < first <= 0.1 * (1 + 1e-6)  # a float32 rate
    if name == "onecycle":
        assert isinstance(rate, OneCycleSchedule)
