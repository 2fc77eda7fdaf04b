"""Small helpers shared by several modules of the package."""

from __future__ import annotations

from typing import Any


def final_estimator(estimator: Any) -> Any:
    """The estimator that makes the predictions: the last step of a pipeline, else itself.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Anything with a ``steps`` list of ``(name, step)`` pairs (a scikit-learn or
        imbalanced-learn pipeline) or a single estimator.

    Returns
    -------
    final : estimator
        The object itself, not a copy: a fitted pipeline's last step is fitted, and its
        parameters can be set on it directly (``final.set_params(epochs=1)`` does what
        ``pipeline.set_params(<name>__epochs=1)`` does).
    """
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator
