"""The learning-rate range test: which ``learning_rate`` to train with, in a few hundred steps.

The procedure's first judgement of a training run is about the learning rate: "a high
learning rate leads to a NaN loss, a low one causes a plateau". :func:`lr_find` measures
where the boundary lies on the user's own data and network, before a long training: it trains
a fresh copy of the network for ``num_steps`` batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr`` (L. N. Smith, "Cyclical learning rates for
training neural networks", 2017), records the loss of every batch and stops once the loss
explodes. The loss first stays flat (rates too small to matter), then falls, then rises
sharply: a good rate lies on the falling part, below the minimum.

The estimator passed in is neither fitted nor changed: the test runs on a clone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from . import _plotting as plots
from ._atomic import atomic_output
from ._tf import import_keras, limit_threads
from ._training import OPTIMIZERS, PreparedFit, training_feed
from ._utils import final_estimator

keras = import_keras()

__all__ = ["LRFindResult", "lr_find", "plot_lr_find"]

MAX_STEPS = 100_000  # upper bound of num_steps: a range test is a few hundred steps


@dataclass(frozen=True, eq=False)
class LRFindResult:
    """What :func:`lr_find` measured, and the learning rate it suggests.

    Attributes
    ----------
    rates : ndarray of shape (n_steps,)
        The learning rate of each step (the optimizer's rate), growing exponentially.
    losses : ndarray of shape (n_steps,)
        The training loss of each step's batch, before that step's update (L2 penalty
        included). The last one may be NaN or infinite when the test stopped on it.
    smoothed_losses : ndarray of shape (n_steps,)
        ``losses`` smoothed by an exponential moving average (bias-corrected, so the first
        values are not pulled towards 0); NaN from a non-finite loss on.
    suggested_rate : float
        The learning rate to train with: ``min_loss_rate / 10``, and at least ``rates[0]``.
    min_loss_rate : float
        The rate at which the smoothed loss is lowest: training there already sits at the
        edge of instability.
    steepest_rate : float or None
        The rate at which the smoothed loss falls fastest (per decade of rate) before its
        minimum; None when the minimum comes within the first three steps.
    diverged : bool
        Whether the test stopped early because the loss exploded (rose above
        ``divergence_factor`` times the lowest smoothed loss, or stopped being finite).
    start_lr, end_lr : float
        The range asked for.
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggested_rate: float
    min_loss_rate: float
    steepest_rate: float | None
    diverged: bool
    start_lr: float
    end_lr: float

    def __str__(self) -> str:
        end = "stopped when the loss exploded" if self.diverged else "the whole range"
        return (
            f"Suggested learning rate: {self.suggested_rate:.3g} (a tenth of "
            f"{self.min_loss_rate:.3g}, where the smoothed loss is lowest). Tested "
            f"{len(self.rates)} steps from {self.rates[0]:.3g} to {self.rates[-1]:.3g} "
            f"({end})."
        )


@validate_params(
    {
        "estimator": [HasMethods(["fit"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "start_lr": [Interval(Real, 0, None, closed="neither")],
        "end_lr": [Interval(Real, 0, None, closed="neither")],
        "num_steps": [Interval(Integral, 10, MAX_STEPS, closed="both")],
        "smoothing": [Interval(Real, 0, 1, closed="left")],
        "divergence_factor": [Interval(Real, 1, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def lr_find(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 200,
    smoothing: float = 0.95,
    divergence_factor: float = 4.0,
) -> LRFindResult:
    """Run a learning-rate range test on the estimator's network and suggest a rate.

    A fresh network is built and prepared exactly as ``fit`` would (same ``random_state``,
    normalisation, output bias, loss, optimizer, batch size, class sampling, mixup / cutmix
    and online augmentation), then trained for up to ``num_steps`` batches with a learning
    rate that grows exponentially from ``start_lr`` to ``end_lr``. The test stops early once
    the loss explodes. ``estimator`` itself is not fitted and not changed: the test runs on a clone
    (a fitted estimator keeps its network and weights).

    Parameters
    ----------
    estimator : KerasCharClassifier or Pipeline
        A :class:`~skcharclf.KerasCharClassifier`, or a pipeline ending in one (such as
        :func:`~skcharclf.make_char_pipeline`): clones of the steps before it are fitted on
        ``X, y`` (``fit_resample`` for a sampler such as the rare-class augmenter,
        ``fit_transform`` otherwise) to give the classifier its training data.
    X : image batch or flat batch
        The training data, in the form ``estimator`` takes.
    y : array-like of shape (n_samples,)
        The labels.
    start_lr, end_lr : float, default=1e-6, 1.0
        The first and last learning rate of the range (``start_lr < end_lr``): the
        optimizer's rate, whatever ``scale_lr_with_batch`` says.
    num_steps : int, default=200
        The steps (batches) from ``start_lr`` to ``end_lr``: the data is passed over as many
        times as needed. Between 10 and 100,000; a few hundred resolve the curve well.
    smoothing : float in [0, 1), default=0.95
        The factor of the exponential moving average that smooths the noisy per-batch loss
        (0: no smoothing).
    divergence_factor : float > 1, default=4.0
        Stop once the smoothed loss exceeds this many times its lowest value so far.

    Returns
    -------
    result : LRFindResult
        Rates, raw and smoothed losses, and ``suggested_rate``: a tenth of the rate at which
        the smoothed loss is lowest. Set it as the classifier's ``learning_rate`` (divided
        by ``batch_size / 64`` with ``scale_lr_with_batch=True``).

    Raises
    ------
    TypeError
        If ``estimator`` is not a KerasCharClassifier nor a pipeline ending in one.
    ValueError
        If ``start_lr >= end_lr``, or the data is not what the estimator accepts.

    See Also
    --------
    plot_lr_find : Draw the curve.
    skcharclf.diagnose_history : Its plateau and divergence findings point here.

    Notes
    -----
    Why a tenth of the minimum rather than the steepest descent: at the minimum of the curve
    the loss is about to blow up, so a whole training (with its larger steps late in an
    epoch and its changing data) is not safe there; one decade below is still well inside
    the falling part of the curve (Smith's advice). The point of steepest descent, the
    other common choice, is the derivative of a curve measured on single noisy batches: on
    the few hundred images of a rare-class problem it jumps from one run to the next. It is
    reported as ``steepest_rate`` for comparison. The suggestion is a peak rate: the
    default cosine schedule starts there and decays.

    Examples
    --------
    >>> import numpy as np
    >>> from skcharclf import KerasCharClassifier, lr_find
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(96, 64).astype("float32")
    >>> y = np.repeat([0, 1, 2], 32)
    >>> X[y == 1, :32] += 1.0
    >>> clf = KerasCharClassifier(image_shape=(8, 8), filters=(4,), random_state=0)
    >>> result = lr_find(clf, X, y, start_lr=1e-4, end_lr=10.0, num_steps=30)
    >>> 1e-4 <= result.suggested_rate < 10.0
    True
    """
    if start_lr >= end_lr:
        raise ValueError(
            f"start_lr={start_lr:g} must be smaller than end_lr={end_lr:g}: the rate grows "
            "from start_lr to end_lr."
        )
    classifier, X, y = _classifier_data(estimator, X, y)
    # Only the training rows matter: no validation split, no checkpoints, no output.
    net = clone(classifier).set_params(
        early_stopping=False,
        checkpoint_averaging=None,
        validation_data=None,
        warm_start=False,
        checkpoint_dir=None,
        verbose=0,
    )
    limit_threads(net.n_threads)
    rates = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    with net._prepared_training(X, y, None, False) as run:
        losses, smoothed, diverged = _range_test(net, run, rates, smoothing, divergence_factor)
    return _result(rates[: losses.size], losses, smoothed, diverged, start_lr, end_lr)


def _classifier_data(estimator: Any, X: Any, y: Any) -> tuple[Any, Any, Any]:
    """The KerasCharClassifier of ``estimator`` and its training data, through clones of the
    steps before it."""
    from .classifier import KerasCharClassifier

    classifier = final_estimator(estimator)
    if not isinstance(classifier, KerasCharClassifier):
        raise TypeError(
            "lr_find needs a KerasCharClassifier or a pipeline ending in one, got "
            f"{type(classifier).__name__}: a learning-rate range test needs a network "
            "trained by gradient descent."
        )
    for _, step in getattr(estimator, "steps", [])[:-1]:
        if step is None or step == "passthrough":
            continue
        step = clone(step)
        if hasattr(step, "fit_resample"):
            X, y = step.fit_resample(X, y)
        else:
            X = step.fit_transform(X, y)
    return classifier, X, y


def _range_test(
    net: Any,
    run: PreparedFit,
    rates: np.ndarray,
    smoothing: float,
    divergence_factor: float,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Train ``net``'s prepared network on ``run``'s training rows, one batch per rate;
    return the raw and smoothed losses of the steps run, and whether the loss exploded."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        float(rates[0]), decay_steps=rates.size - 1, decay_rate=float(rates[-1] / rates[0])
    )
    optimizer = OPTIMIZERS[net.optimizer](schedule, net.weight_decay)
    net.model_.compile(optimizer=optimizer, loss=run.loss)
    steps_per_epoch = math.ceil(run.train_idx.size / net.batch_size)
    epochs = math.ceil(rates.size / steps_per_epoch)
    data = training_feed(net, run, run.train_idx, epochs=epochs)
    losses, smoothed = [], []
    average, best = 0.0, math.inf
    for step, (x, y, *w) in enumerate(data.take(rates.size)):
        value = float(net.model_.train_on_batch(x, y, sample_weight=w[0] if w else None))
        losses.append(value)
        if not math.isfinite(value):
            smoothed.append(math.nan)
            return np.array(losses), np.array(smoothed), True
        average = smoothing * average + (1.0 - smoothing) * value
        smoothed.append(average / (1.0 - smoothing ** (step + 1)))
        best = min(best, smoothed[-1])
        if smoothed[-1] > divergence_factor * best:
            return np.array(losses), np.array(smoothed), True
    return np.array(losses), np.array(smoothed), False


def _result(
    rates: np.ndarray,
    losses: np.ndarray,
    smoothed: np.ndarray,
    diverged: bool,
    start_lr: float,
    end_lr: float,
) -> LRFindResult:
    lowest = int(np.nanargmin(smoothed))
    steepest = None
    if lowest >= 3:
        # The slope per decade of rate: the rates are evenly spaced on a log scale.
        slope = np.gradient(smoothed[: lowest + 1], np.log10(rates[: lowest + 1]))
        steepest = float(rates[int(np.argmin(slope))])
    return LRFindResult(
        rates=rates,
        losses=losses,
        smoothed_losses=smoothed,
        suggested_rate=float(max(rates[lowest] / 10.0, rates[0])),
        min_loss_rate=float(rates[lowest]),
        steepest_rate=steepest,
        diverged=diverged,
        start_lr=float(start_lr),
        end_lr=float(end_lr),
    )


def plot_lr_find(result: LRFindResult, path: str | os.PathLike | None = None) -> Any:
    """Draw the loss against the learning rate of a range test, with the suggested rate.

    Parameters
    ----------
    result : LRFindResult
        What :func:`lr_find` returned.
    path : str or path-like, optional
        Also write the figure there as a PNG file (replaced only once complete).

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure (built without :mod:`matplotlib.pyplot`: show it in a notebook by
        leaving it as the cell's value, or save it with ``figure.savefig``).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    with plots.style():
        figure = plots.lr_find_curve(result)
        if path is not None:
            png, _ = plots.figure_to_png(figure)
            with atomic_output(Path(path)) as partial:
                partial.write_bytes(png)
    return figure
