"""The thresholds of the learning-curve diagnosis, in one validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import ClassVar

from sklearn.utils._param_validation import Interval, validate_parameter_constraints


@dataclass(frozen=True)
class DiagnosisThresholds:
    """When each rule of :func:`~skcharclf.diagnose_history` fires.

    Pass one to ``diagnose_history(history, thresholds=...)``, or give single fields as
    keyword arguments of :func:`~skcharclf.diagnose_history` (``overfit_rise=0.2``), which
    override the corresponding field of ``thresholds``. The defaults are those the rules
    were calibrated with: no rule fires on a healthy run, and each fires on its symptom.
    Values are checked when the object is made.

    Parameters
    ----------
    min_epochs : int, default=4
        Epochs a trend rule needs before it may fire.
    divergence_factor : float, default=2.0
        ``"divergence"``: the loss jumps above this multiple of its best value so far (and
        above its first value), or ends above this multiple of the uninformed loss. NaN or
        infinite losses always count.
    initial_loss_tolerance : float, default=0.5
        ``"initial_loss"``: the initial loss may differ from the uninformed loss by this
        fraction of it.
    plateau_tolerance : float, default=0.05
        ``"plateau"``: fires when the best training loss is less than this fraction below
        the starting loss (``initial_loss``, else the first epoch's), and the model is not
        already fitted (final accuracy below ``underfit_accuracy``, or without accuracies a
        loss that never fell below ``fitted_loss_fraction`` of the uninformed loss).
    underfit_accuracy : float, default=0.8
        ``"underfitting"``: the mean training (and validation) accuracy of the last
        ``final_epochs`` epochs is below this.
    fitted_loss_fraction : float, default=0.5
        Without accuracies, a loss below this fraction of the uninformed loss counts as
        fitted: ``"plateau"`` stays silent, and ``"underfitting"`` fires only while the
        training (and validation) loss stays above it.
    final_epochs : int, default=3
        ``"underfitting"``: how many of the last epochs are averaged into the final scores.
    still_learning_drop : float, default=0.1
        ``"underfitting"``: when the training loss fell by more than this fraction over the
        last third of the run, training stopped before convergence: the finding is then
        ``"info"`` and suggests more epochs first.
    overfit_accuracy : float, default=0.98
        ``"overfitting"``: training accuracy counted as "near 100%". Also the training
        accuracy that makes ``"no_validation"`` a warning.
    overfit_rise : float, default=0.1
        ``"overfitting"``: the validation loss (3-epoch moving average) ends more than this
        fraction, and more than ``overfit_noise_factor`` times its epoch-to-epoch noise,
        above its minimum, while the training loss keeps falling.
    overfit_noise_factor : float, default=3.0
        ``"overfitting"``: how many times its own epoch-to-epoch noise the validation loss
        must rise, so that a noisy flat curve does not count as rising. The same test tells
        ``"val_stalled_early"`` (no rise) from overfitting.
    overfit_gap : float, default=0.1
        ``"overfitting"``: with training accuracy at least ``overfit_accuracy``, the
        validation accuracy is lower by at least this much.
    stall_fraction : float, default=0.34
        ``"val_stalled_early"``: the validation loss stops improving within this fraction of
        the run.
    stall_tolerance : float, default=0.1
        ``"val_stalled_early"``: "stops improving" means it never again gets more than this
        fraction lower (and does not turn up, which is overfitting).
    stall_train_drop : float, default=0.5
        ``"val_stalled_early"``: after the stall, the training loss still falls by at least
        this fraction of the larger of the two losses at the stall.
    oscillation_tolerance : float, default=0.05
        ``"train_oscillation"``: after the first third of the run, the training loss swings
        from epoch to epoch (the amplitude ``a`` of a zigzag ``level +/- a``, measured
        around its 3-epoch moving average) by at least this fraction of the first epoch's
        loss, changing direction often enough (``oscillation_direction_changes``), with no
        clear downward trend (``oscillation_trend_factor``).
    oscillation_direction_changes : float, default=0.5
        ``"train_oscillation"`` and ``"val_oscillation"``: the share of epochs at which the
        curve must change direction (0.5: at least every other epoch).
    oscillation_trend_factor : float, default=2.0
        ``"train_oscillation"``: a swinging curve whose mean level changes between the two
        halves of the tail by more than this multiple of its swing still trends, and is not
        reported.
    val_oscillation_tolerance : float, default=0.2
        ``"val_oscillation"``: the same as ``oscillation_tolerance`` for the validation
        loss, relative to its median level.
    val_below_train_margin : float, default=0.1
        ``"val_below_train"``: from epoch 2 on, the validation loss is below the training
        loss in at least ``val_below_train_share`` of the epochs, by at least this fraction
        at the median epoch.
    val_below_train_share : float, default=0.9
        ``"val_below_train"``: the share of epochs (from epoch 2 on) in which the validation
        loss must be the lower one.
    near_zero_loss : float, default=0.05
        ``"no_validation"``: without accuracies, a training loss below this fraction of the
        uninformed loss (or below this value when there is no reference) counts as fallen
        towards 0, the classic overfitting sign, and makes the finding a warning.

    See Also
    --------
    diagnose_history : The rules these thresholds steer.

    Examples
    --------
    >>> from skcharclf.diagnostics import DiagnosisThresholds, diagnose_history
    >>> strict = DiagnosisThresholds(overfit_rise=0.05, min_epochs=3)
    >>> history = {"loss": [2.0, 1.2, 0.8, 0.6, 0.5], "val_loss": [2.1, 1.3, 0.9, 0.7, 0.6]}
    >>> diagnose_history(history, thresholds=strict)
    []
    """

    min_epochs: int = 4
    divergence_factor: float = 2.0
    initial_loss_tolerance: float = 0.5
    plateau_tolerance: float = 0.05
    underfit_accuracy: float = 0.8
    fitted_loss_fraction: float = 0.5
    final_epochs: int = 3
    still_learning_drop: float = 0.1
    overfit_accuracy: float = 0.98
    overfit_rise: float = 0.1
    overfit_noise_factor: float = 3.0
    overfit_gap: float = 0.1
    stall_fraction: float = 0.34
    stall_tolerance: float = 0.1
    stall_train_drop: float = 0.5
    oscillation_tolerance: float = 0.05
    oscillation_direction_changes: float = 0.5
    oscillation_trend_factor: float = 2.0
    val_oscillation_tolerance: float = 0.2
    val_below_train_margin: float = 0.1
    val_below_train_share: float = 0.9
    near_zero_loss: float = 0.05

    _parameter_constraints: ClassVar[dict] = {
        "min_epochs": [Interval(Integral, 2, None, closed="left")],
        "divergence_factor": [Interval(Real, 1, None, closed="neither")],
        "initial_loss_tolerance": [Interval(Real, 0, None, closed="neither")],
        "plateau_tolerance": [Interval(Real, 0, 1, closed="neither")],
        "underfit_accuracy": [Interval(Real, 0, 1, closed="both")],
        "fitted_loss_fraction": [Interval(Real, 0, 1, closed="neither")],
        "final_epochs": [Interval(Integral, 1, None, closed="left")],
        "still_learning_drop": [Interval(Real, 0, 1, closed="left")],
        "overfit_accuracy": [Interval(Real, 0, 1, closed="both")],
        "overfit_rise": [Interval(Real, 0, None, closed="left")],
        "overfit_noise_factor": [Interval(Real, 0, None, closed="left")],
        "overfit_gap": [Interval(Real, 0, 1, closed="both")],
        "stall_fraction": [Interval(Real, 0, 1, closed="right")],
        "stall_tolerance": [Interval(Real, 0, 1, closed="neither")],
        "stall_train_drop": [Interval(Real, 0, 1, closed="neither")],
        "oscillation_tolerance": [Interval(Real, 0, None, closed="neither")],
        "oscillation_direction_changes": [Interval(Real, 0, 1, closed="right")],
        "oscillation_trend_factor": [Interval(Real, 0, None, closed="neither")],
        "val_oscillation_tolerance": [Interval(Real, 0, None, closed="neither")],
        "val_below_train_margin": [Interval(Real, 0, None, closed="left")],
        "val_below_train_share": [Interval(Real, 0, 1, closed="right")],
        "near_zero_loss": [Interval(Real, 0, 1, closed="neither")],
    }

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        validate_parameter_constraints(
            self._parameter_constraints, values, caller_name=type(self).__name__
        )

