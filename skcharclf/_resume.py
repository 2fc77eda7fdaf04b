"""Resume an interrupted fit from the state saved after each epoch (``checkpoint_dir``).

With ``checkpoint_dir`` set, :class:`~skcharclf.KerasCharClassifier` writes the whole state of
its training to ``<checkpoint_dir>/checkpoint.npz`` after every epoch, in one atomic write
(:func:`~skcharclf._atomic.atomic_output`): every variable of the network (weights,
normalisation, the seed-generator states of the augmentation and dropout layers), every
variable of the optimizer (its step counter, which is the position of the learning-rate
schedule, the rate a plateau schedule lowered, the moment estimates), the learning curves, the
state of the package's stateful callbacks (checkpoint averaging's kept weights, early
stopping's and the plateau schedule's counters and best values), the random-number generator
state the fit started from, and a fingerprint of the data and the parameters.

A fit started with a directory holding such a file, of the same data and parameters, restores
all of it and trains the remaining epochs only: each epoch's batches are a pure function of
the seed and the epoch number (:func:`~skcharclf._feed.epoch_order`), so the continued fit
computes what the uninterrupted one would have. A file of other data or other parameters is
refused (ValueError, naming what differs), and so is a damaged one. A fit that completes
writes ``DONE`` and removes ``checkpoint.npz``; a later fit with that directory starts
afresh.

The file is NumPy's ``.npz`` read without pickle: arrays, and the rest as one JSON string.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_output
from ._progress import report_progress
from ._tf import import_keras

keras = import_keras()

__all__ = ["DONE_FILE", "STATE_FILE", "FitCheckpoint", "open_checkpoint"]

STATE_FILE = "checkpoint.npz"
DONE_FILE = "DONE"
_FORMAT = "skcharclf-resume"
_VERSION = 1
_META = "meta"

# Parameters that do not change what a fit computes (or, for random_state, are compared only
# when they are an int: a generator's state is saved and restored instead).
_NOT_FINGERPRINTED = {"checkpoint_dir", "verbose", "n_threads", "callbacks", "random_state"}

# The attributes of Keras's callbacks that carry state from one epoch to the next (reset by
# their on_train_begin, restored after it).
_KERAS_CALLBACK_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_weights", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
}


class FitCheckpoint:
    """The checkpoint directory of one fit: the state it resumes from, and its writer.

    Made by :func:`open_checkpoint`. Without a directory (``directory=None``) every method
    does nothing and :attr:`rng` is the generator given.

    Attributes
    ----------
    rng : numpy.random.RandomState
        The generator the fit draws its seed and validation split from: the state saved by
        the interrupted fit when resuming.
    epoch : int
        Epochs completed by the interrupted fit (0 when starting afresh).
    stopped : bool
        Whether a callback (early stopping) had ended the interrupted fit.
    """

    def __init__(
        self,
        directory: Path | None,
        rng: np.random.RandomState,
        *,
        fingerprint: dict | None = None,
        state: dict | None = None,
    ) -> None:
        self.directory = directory
        self._fingerprint = fingerprint
        self._state = state
        if state is None:
            self.rng, self._rng_state = rng, _generator_state(rng)
        else:
            # A copy: the caller's generator (or NumPy's global one) is left alone.
            self.rng, self._rng_state = np.random.RandomState(), state["rng"]
            self.rng.set_state(_generator_tuple(self._rng_state))
        self.epoch = 0 if state is None else int(state["meta"]["epoch"])
        self.stopped = False if state is None else bool(state["meta"]["stopped"])

    def last_epoch(self, epochs: int) -> int:
        """The epoch training ends at: ``epochs``, or :attr:`epoch` after early stopping."""
        return self.epoch if self.stopped else epochs

    def restore_network(self, model: Any, epochs: int, verbose: int) -> None:
        """Restore ``model``'s variables and its compiled optimizer's, when resuming."""
        if self._state is None:
            return
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(model.variables, self._state["model"], "network")
        _assign(optimizer.variables, self._state["optimizer"], "optimizer")
        if verbose:
            report_progress(
                f"Resuming the fit saved in {str(self.directory)!r} after epoch {self.epoch} "
                f"of {epochs}."
            )

    def callbacks(self, callbacks: list, guard: Any) -> list:
        """The callback that saves the state after each epoch (a list: empty without a
        directory), to run after ``callbacks``, whose state it saves and restores.

        No epoch in which ``guard`` (a :class:`~skcharclf.callbacks.DivergenceGuard`) found a
        divergence is saved.
        """
        if self.directory is None:
            return []
        stateful = {
            f"{index}.{type(callback).__name__}": callback
            for index, callback in enumerate(callbacks)
            if hasattr(callback, "get_state") or _keras_state_names(callback)
        }
        return [_EpochCheckpoint(self, stateful, guard)]

    def finish(self) -> None:
        """Mark the directory done: write ``DONE``, then remove the state file."""
        if self.directory is None:
            return
        done = {"format": _FORMAT, "version": _VERSION, "completed": True}
        with atomic_output(self.directory / DONE_FILE) as partial:
            partial.write_text(json.dumps(done) + "\n", encoding="utf-8")
        (self.directory / STATE_FILE).unlink(missing_ok=True)

    def save(self, epoch: int, stopped: bool, model: Any, stateful: dict[str, Any]) -> None:
        """Write the state after ``epoch`` completed epochs atomically."""
        arrays: dict[str, np.ndarray] = {}
        model_vars = _variables(model.variables, "model", arrays)
        optimizer_vars = _variables(model.optimizer.variables, "optimizer", arrays)
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "epoch": epoch,
            "stopped": stopped,
            "fingerprint": self._fingerprint,
            "rng": _encode(self._rng_state, arrays),
            "model": model_vars,
            "optimizer": optimizer_vars,
            "callbacks": {
                name: _encode(_callback_state(callback), arrays)
                for name, callback in stateful.items()
            },
        }
        arrays[_META] = np.array(json.dumps(meta, allow_nan=True))
        with atomic_output(self.directory / STATE_FILE) as partial, open(partial, "wb") as file:
            np.savez(file, **arrays)

    def restore_callbacks(self, stateful: dict[str, Any]) -> None:
        """Put the saved state back into the callbacks ``stateful`` (after they reset it)."""
        if self._state is None:
            return
        saved = self._state["callbacks"]
        if set(saved) != set(stateful):
            raise _damaged(self.directory, f"it holds the state of callbacks {sorted(saved)}")
        for name, callback in stateful.items():
            _set_callback_state(callback, saved[name])


class _EpochCheckpoint(keras.callbacks.Callback):
    """Restore the callbacks' state when training begins; save everything after each epoch.

    Placed after every callback whose state it saves: their ``on_train_begin`` has reset
    them and their ``on_epoch_end`` has updated them when this one runs.
    """

    def __init__(self, checkpoint: FitCheckpoint, stateful: dict[str, Any], guard: Any) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.stateful = stateful
        self.guard = guard

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.checkpoint.restore_callbacks(self.stateful)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.guard.diverged is not None:
            return
        self.checkpoint.save(epoch + 1, bool(self.model.stop_training), self.model, self.stateful)


def open_checkpoint(
    clf: Any,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    warm: bool,
    rng: np.random.RandomState,
) -> FitCheckpoint:
    """The :class:`FitCheckpoint` of ``clf.checkpoint_dir`` for a fit on ``(X, y, weights)``.

    Creates the directory when needed and removes the temporary files of writes a killed
    process left. A finished directory (``DONE``) is cleared for a fresh fit; a saved state
    is resumed when its fingerprint matches this fit's.

    Raises
    ------
    ValueError
        When the directory is a file, its state file is damaged or of another format
        version, or holds a fit of other data or other parameters.
    """
    if clf.checkpoint_dir is None:
        return FitCheckpoint(None, rng)
    directory = Path(os.fspath(clf.checkpoint_dir))
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"checkpoint_dir={str(directory)!r} is a file, not a directory.")
    directory.mkdir(parents=True, exist_ok=True)
    # A process killed while writing leaves its temporary file (see atomic_output) behind.
    for partial in directory.glob(".*.partial*"):
        partial.unlink(missing_ok=True)
    fingerprint = fit_fingerprint(clf, X, y, weights, warm)
    if (directory / DONE_FILE).exists():
        (directory / STATE_FILE).unlink(missing_ok=True)
        (directory / DONE_FILE).unlink()
    state = _read_state(directory)
    if state is None:
        return FitCheckpoint(directory, rng, fingerprint=fingerprint)
    _check_fingerprint(directory, state["meta"]["fingerprint"], fingerprint)
    return FitCheckpoint(directory, rng, fingerprint=fingerprint, state=state)


# -- fingerprint ------------------------------------------------------------------------------


def fit_fingerprint(
    clf: Any, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, warm: bool
) -> dict:
    """What a fit's result depends on: a digest of the data, the parameters, warm start.

    ``random_state`` counts only when it is an int (a generator's or the global state is
    saved with the checkpoint); ``checkpoint_dir``, ``verbose``, ``n_threads`` and
    ``callbacks`` do not count.
    """
    digest = hashlib.sha256()
    for part in (X, y, weights):
        digest.update(_array_bytes(part))
    params = {
        name: _describe(value)
        for name, value in sorted(clf.get_params(deep=False).items())
        if name not in _NOT_FINGERPRINTED
    }
    if isinstance(clf.random_state, (int, np.integer)):
        params["random_state"] = int(clf.random_state)
    # JSON round trip: tuples become lists, as they come back from the file.
    return json.loads(json.dumps({"data": digest.hexdigest(), "params": params, "warm": warm}))


def _array_bytes(array: np.ndarray | None) -> bytes:
    if array is None:
        return b"none"
    array = np.asarray(array)
    head = f"{array.dtype.str}{array.shape}".encode()
    if array.dtype.kind == "O":
        return head + "\x00".join(repr(v) for v in array.ravel()).encode()
    return head + np.ascontiguousarray(array).tobytes()


def _describe(value: Any) -> Any:
    """``value`` as JSON: arrays by digest, objects by class (and Keras config)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_describe(k), _describe(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return {"array": hashlib.sha256(_array_bytes(value)).hexdigest()}
    kind = type(value)
    described = {"object": f"{kind.__module__}.{kind.__qualname__}"}
    if callable(value) and hasattr(value, "__qualname__"):
        described["callable"] = f"{value.__module__}.{value.__qualname__}"
    if hasattr(value, "get_config"):
        # A config that cannot be read leaves the class (and name) only.
        with contextlib.suppress(Exception):
            described["config"] = _describe(value.get_config())
    return described


def _check_fingerprint(directory: Path, saved: dict, current: dict) -> None:
    where = f"checkpoint_dir={str(directory)!r} holds an interrupted fit"
    remedy = (
        f"pass another checkpoint_dir, or delete {str(directory / STATE_FILE)!r} to train "
        "afresh in this one."
    )
    if saved.get("data") != current["data"]:
        raise ValueError(
            f"{where} on other data (the training images, labels, sample weights or "
            "class weights differ; a sampler before the classifier, such as "
            f"RareClassAugmenter, needs an int random_state to give the same data); {remedy}"
        )
    if saved.get("warm") != current["warm"]:
        then, now = ("", "not ") if saved.get("warm") else ("not ", "")
        raise ValueError(
            f"{where} that was {then}warm-started, and this fit is {now}warm-started; {remedy}"
        )
    saved_params, params = saved.get("params", {}), current["params"]
    differ = sorted(
        name for name in set(saved_params) | set(params)
        if saved_params.get(name, "<unset>") != params.get(name, "<unset>")
    )
    if differ:
        details = "; ".join(
            f"{name}={_short(saved_params.get(name, '<unset>'))} there, "
            f"{_short(params.get(name, '<unset>'))} here"
            for name in differ
        )
        raise ValueError(f"{where} of other parameters ({details}); {remedy}")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- state of variables, callbacks and generators ---------------------------------------------


def _variables(variables: Iterable[Any], group: str, arrays: dict) -> list[dict]:
    """Put the values of ``variables`` into ``arrays``; return their descriptions."""
    described = []
    for index, variable in enumerate(variables):
        value = keras.ops.convert_to_numpy(variable.value)
        arrays[f"{group}.{index}"] = value
        described.append(
            {"path": variable.path, "shape": list(value.shape), "dtype": value.dtype.str}
        )
    return described


def _assign(variables: list, values: list[np.ndarray], what: str) -> None:
    """Assign ``values`` to ``variables`` in order, once all shapes and types match.

    Variables are matched by position, not by name: Keras numbers unnamed layers per process.
    """
    variables = list(variables)
    fits = len(variables) == len(values) and all(
        tuple(v.shape) == a.shape and np.dtype(v.dtype) == a.dtype
        for v, a in zip(variables, values, strict=False)
    )
    if not fits:
        raise ValueError(
            f"the checkpoint's {what} state ({len(values)} variables) does not fit this fit's "
            f"{what} ({len(variables)} variables): it was written by another version of "
            "skcharclf or Keras. Pass another checkpoint_dir, or delete the checkpoint to "
            "train afresh."
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _callback_state(callback: Any) -> dict:
    if hasattr(callback, "get_state"):
        return callback.get_state()
    return {name: getattr(callback, name) for name in _keras_state_names(callback)}


def _set_callback_state(callback: Any, state: dict) -> None:
    if hasattr(callback, "set_state"):
        callback.set_state(state)
        return
    for name in _keras_state_names(callback):
        setattr(callback, name, state[name])


def _keras_state_names(callback: Any) -> tuple[str, ...]:
    """The attributes holding the state of one of Keras's callbacks (none for others)."""
    for kind, names in _KERAS_CALLBACK_STATE.items():
        if isinstance(callback, kind):
            return names
    return ()


def _generator_state(rng: np.random.RandomState) -> dict:
    name, keys, position, has_gauss, gauss = rng.get_state()
    return {
        "name": name, "keys": keys, "pos": int(position),
        "has_gauss": int(has_gauss), "gauss": float(gauss),
    }


def _generator_tuple(state: dict) -> tuple:
    return (state["name"], state["keys"], state["pos"], state["has_gauss"], state["gauss"])


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON, its arrays moved to ``arrays`` (a deque becomes a list)."""
    if isinstance(value, (np.ndarray, np.generic)):
        # A NumPy scalar (Keras's get_weights() gives one per scalar variable) stays one.
        key = f"state.{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"__array__" if isinstance(value, np.ndarray) else "__scalar__": key}
    if isinstance(value, dict):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "maxlen"):
        return [_encode(v, arrays) for v in value]
    return value


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        if set(value) == {"__scalar__"}:
            return arrays[value["__scalar__"]][()]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


# -- the file ---------------------------------------------------------------------------------


def _damaged(directory: Path, why: str) -> ValueError:
    return ValueError(
        f"checkpoint_dir={str(directory)!r}: {STATE_FILE} cannot be resumed ({why}). Delete "
        f"it to train afresh, or pass another checkpoint_dir."
    )


def _read_state(directory: Path) -> dict | None:
    """The saved state, or None when there is none; a ValueError when it is damaged."""
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as file:
            arrays = {key: file[key] for key in file.files}
        meta = json.loads(str(arrays.pop(_META)))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise _damaged(directory, f"the file is damaged or not a checkpoint: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise _damaged(directory, "the file is not a skcharclf checkpoint")
    if meta.get("version") != _VERSION:
        raise _damaged(
            directory, f"format version {meta.get('version')}, this skcharclf reads {_VERSION}"
        )
    try:
        state = {
            "meta": meta,
            "model": [arrays[f"model.{i}"] for i in range(len(meta["model"]))],
            "optimizer": [arrays[f"optimizer.{i}"] for i in range(len(meta["optimizer"]))],
            "callbacks": _decode(dict(meta["callbacks"]), arrays),
            "rng": _decode(dict(meta["rng"]), arrays),
        }
        int(meta["epoch"]), meta["fingerprint"]["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(directory, f"an entry is missing or malformed: {exc!r}") from exc
    return state
