"""Keras callbacks and learning-rate schedules of the training procedure.

:class:`~skcharclf.KerasCharClassifier` trains its network with these small callbacks, in
this order: :class:`HistoryRecorder` (the learning curves), :class:`DivergenceGuard` (stops
when the loss becomes NaN, infinite or explodes) and, with ``checkpoint_averaging``,
:class:`CheckpointAveraging` (keeps the weights of some epochs to average them). Each does one
thing, so each can also be used with a plain :class:`keras.Model`.

The learning-rate schedules are in :data:`SCHEDULES`, from the name ``lr_schedule`` takes to
a factory; :class:`OneCycleSchedule` is the one Keras lacks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._tf import import_keras

keras = import_keras()

__all__ = [
    "SCHEDULES",
    "CheckpointAveraging",
    "Divergence",
    "DivergenceGuard",
    "HistoryRecorder",
    "OneCycleSchedule",
    "TrainingDivergedError",
]


class TrainingDivergedError(RuntimeError):
    """Raised when training diverges: the loss became NaN or infinite, or exploded.

    Attributes
    ----------
    epoch : int
        Epoch (counted from 1) in which the loss stopped being finite.
    batch : int or None
        Batch (counted from 1) of that epoch, or None when a validation loss diverged.
    history : dict
        The learning curves up to and including the diverged epoch.
    findings : list of Finding
        The diagnosis of those curves (:func:`skcharclf.diagnostics.diagnose_history`).
    finding : Finding or None
        The ``"divergence"`` finding among them.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        batch: int | None,
        history: dict,
        findings: list,
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history
        self.findings = findings
        self.finding = next((f for f in findings if f.code == "divergence"), None)


class HistoryRecorder(keras.callbacks.Callback):
    """Record every epoch's logs, and the learning rate, as learning curves.

    Attributes
    ----------
    history : dict of list of float
        One list per logged value (``"loss"``, ``"val_loss"``, metrics, ...), one entry per
        epoch, plus ``"learning_rate"``: the optimizer's rate at the end of the epoch when
        the logs do not hold it. Place this callback before any that changes the rate at
        the end of an epoch (``ReduceLROnPlateau``) to record the rate the epoch used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Append the epoch's logs and the optimizer's learning rate to ``history``."""
        record = {key: float(value) for key, value in (logs or {}).items()}
        record.setdefault(
            "learning_rate",
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        )
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)

    def get_state(self) -> dict:
        """The curves recorded so far, to resume training later (see :meth:`set_state`)."""
        return {"history": {key: list(values) for key, values in self.history.items()}}

    def set_state(self, state: dict) -> None:
        """Continue the curves of :meth:`get_state`'s ``state``."""
        self.history = {
            key: [float(value) for value in values] for key, values in state["history"].items()
        }


class Divergence(NamedTuple):
    """Where and how training diverged (see :class:`DivergenceGuard`)."""

    #: Epoch, counted from 1.
    epoch: int
    #: Batch of that epoch, counted from 1, or None when an epoch's loss was not finite.
    batch: int | None
    #: The logged value that diverged: ``"loss"`` or ``"val_loss"``.
    key: str
    #: Its value.
    value: float


class DivergenceGuard(keras.callbacks.Callback):
    """Stop training when the loss becomes NaN or infinite, or exceeds a limit.

    The training loss is checked after every batch, and the epoch's ``loss`` and
    ``val_loss`` at its end. Training stops at the first failure, which is kept in
    :attr:`diverged`; raising is left to the caller, which knows what to advise.

    Parameters
    ----------
    loss_limit : float, default=inf
        A training loss above this has exploded (the logits grow without bound, and the
        model is garbage before the loss reaches NaN).

    Attributes
    ----------
    diverged : Divergence or None
        The first failure, or None while training is sound.
    """

    def __init__(self, loss_limit: float = math.inf) -> None:
        super().__init__()
        self.loss_limit = loss_limit
        self.diverged: Divergence | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Note the epoch, to report where a divergence happened."""
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Stop training when the batch loss is not finite or exceeds ``loss_limit``."""
        loss = float(logs["loss"])
        if not math.isfinite(loss) or loss > self.loss_limit:
            self.diverged = Divergence(self._epoch + 1, batch + 1, "loss", loss)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Stop training when the epoch's ``loss`` or ``val_loss`` is not finite."""
        if self.diverged is not None:
            return
        for key in ("loss", "val_loss"):
            if key in (logs or {}) and not math.isfinite(float(logs[key])):
                self.diverged = Divergence(epoch + 1, None, key, float(logs[key]))
                self.model.stop_training = True
                return


class CheckpointAveraging(keras.callbacks.Callback):
    """Keep the weights of ``keep`` epochs, to average them once training ends.

    Parameters
    ----------
    keep : int
        Number of epochs whose weights are kept.
    select : {"last", "best"}, default="last"
        Keep the last ``keep`` epochs, or the ``keep`` best by ``monitor``.
    monitor : {"val_loss", "val_f1_macro", ...}, default="val_loss"
        The logged score ``select="best"`` ranks epochs by: lower is better, except for
        ``"val_f1_macro"``. Ties go to the earlier epoch.

    Notes
    -----
    An epoch after which an earlier callback in the list stopped training (a
    :class:`DivergenceGuard`) is not kept. Call :meth:`averaged_weights` after training and
    set them on the model.
    """

    def __init__(self, keep: int, select: str = "last", monitor: str = "val_loss") -> None:
        super().__init__()
        self.keep = keep
        self.select = select
        self.monitor = monitor
        self._checkpoints: Any = deque(maxlen=keep) if select == "last" else []
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Note the epoch, to rank checkpoints of equal score by it."""
        self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Keep a copy of the weights (unless training was stopped in this epoch)."""
        if self.model.stop_training:
            return
        self._store({key: float(value) for key, value in (logs or {}).items()})

    def _store(self, record: dict) -> None:
        weights = [w.copy() for w in self.model.get_weights()]
        if self.select == "last":
            self._checkpoints.append(weights)
            return
        sign = -1.0 if self.monitor == "val_f1_macro" else 1.0
        self._checkpoints.append((sign * record[self.monitor], self._epoch, weights))
        self._checkpoints.sort(key=lambda item: (item[0], item[1]))
        del self._checkpoints[self.keep :]

    def get_state(self) -> dict:
        """The kept checkpoints, to resume training later (see :meth:`set_state`).

        Returns
        -------
        state : dict
            ``"checkpoints"``: lists of weight arrays (``select="last"``), or ``(score,
            epoch, weights)`` triples (``select="best"``), best first.
        """
        return {"checkpoints": list(self._checkpoints)}

    def set_state(self, state: dict) -> None:
        """Keep the checkpoints of :meth:`get_state`'s ``state`` instead of the current ones."""
        if self.select == "last":
            self._checkpoints = deque((list(w) for w in state["checkpoints"]), maxlen=self.keep)
        else:
            self._checkpoints = [
                (float(score), int(epoch), list(weights))
                for score, epoch, weights in state["checkpoints"]
            ]

    def averaged_weights(self) -> list[np.ndarray] | None:
        """The mean of the kept checkpoints (integer state, e.g. seeds, from the last one).

        Returns
        -------
        weights : list of ndarray or None
            In the order of ``model.get_weights()``; None when no epoch was kept.
        """
        if not self._checkpoints:
            return None
        sets = (
            list(self._checkpoints)
            if self.select == "last"
            else [weights for _, _, weights in self._checkpoints]
        )
        averaged = []
        for arrays in zip(*sets, strict=True):
            if np.issubdtype(arrays[0].dtype, np.floating):
                averaged.append(np.mean(arrays, axis=0, dtype=np.float64).astype(arrays[0].dtype))
            else:
                averaged.append(arrays[-1])
        return averaged


# -- learning-rate schedules -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="skcharclf")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: cosine warm-up to the peak, then cosine annealing.

    Starts at ``max_learning_rate / div_factor``, rises over the first ``warmup_fraction`` of
    the steps, then falls to ``max_learning_rate / (div_factor * final_div_factor)``.

    Parameters
    ----------
    max_learning_rate : float
        The peak rate.
    total_steps : int
        Gradient steps of the whole training.
    warmup_fraction : float, default=0.3
        Share of the steps spent rising.
    div_factor : float, default=25.0
        The starting rate is the peak divided by this.
    final_div_factor : float, default=1e4
        The final rate is the starting rate divided by this.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        warmup_fraction: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        peak = self.max_learning_rate
        start = peak / self.div_factor
        end = start / self.final_div_factor
        warmup = max(1.0, round(self.warmup_fraction * self.total_steps))
        rising = ops.minimum(step / warmup, 1.0)
        up = start + (peak - start) * (1.0 - ops.cos(math.pi * rising)) / 2.0
        falling = ops.clip((step - warmup) / max(self.total_steps - warmup, 1.0), 0.0, 1.0)
        down = end + (peak - end) * (1.0 + ops.cos(math.pi * falling)) / 2.0
        return ops.where(step < warmup, up, down)

    def get_config(self) -> dict:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


def _step_decay(rate: float, total_steps: int) -> Any:
    boundaries = [max(1, total_steps // 2), max(2, (3 * total_steps) // 4)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [rate, rate / 10, rate / 100]
    )


def _constant(rate: float, total_steps: int) -> float:
    return float(rate)


#: ``lr_schedule`` name -> ``factory(peak_rate, total_steps)`` giving the optimizer's
#: learning rate (a float or a Keras schedule). ``"plateau"`` starts constant: a
#: ``ReduceLROnPlateau`` callback lowers the rate.
SCHEDULES: dict[str, Callable[[float, int], Any]] = {
    "constant": _constant,
    "cosine": lambda rate, steps: keras.optimizers.schedules.CosineDecay(
        rate, decay_steps=steps
    ),
    "exponential": lambda rate, steps: keras.optimizers.schedules.ExponentialDecay(
        rate, decay_steps=steps, decay_rate=0.01
    ),
    "step": _step_decay,
    "plateau": _constant,
    "onecycle": OneCycleSchedule,
}
