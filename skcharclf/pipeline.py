"""Ready-made pipelines from raw character images to class predictions.

Each factory returns an :class:`imblearn.pipeline.Pipeline` whose first steps take an image
batch (images of any size), with the step names used throughout skcharclf: ``"denoise"``,
``"resize"``, optionally ``"augment"``, and ``"clf"``. Every parameter of every step stays
reachable as ``<step>__<parameter>``, for ``set_params`` and for hyper-parameter searches.
"""

from __future__ import annotations

from typing import Any

from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier

from skcharclf.preprocessing import Denoiser, ImageResizer

__all__ = ["make_baseline_pipeline"]


def make_baseline_pipeline(
    *,
    denoise: str | list[str] = "median",
    size: tuple[int, int] = (32, 32),
    resize_mode: str = "pad",
    n_estimators: int = 300,
    class_weight: Any = "balanced_subsample",
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> Pipeline:
    """Build the classical baseline: denoise, resize, then a class-weighted random forest.

    A random forest on raw pixels is quick to train, needs no tuning to give a sound first
    score, and with ``class_weight="balanced_subsample"`` it weights each class inversely to
    its frequency in every bootstrap sample, which keeps rare classes from being ignored.
    It is the yardstick a neural network has to beat.

    Parameters
    ----------
    denoise : str or list of str, default="median"
        The ``method`` of the :class:`~skcharclf.Denoiser` step (``"none"`` to skip it).
    size : tuple of (int, int), default=(32, 32)
        ``(height, width)`` the :class:`~skcharclf.ImageResizer` step brings every image to.
    resize_mode : {"pad", "stretch", "fit_height"}, default="pad"
        The resizer's ``mode``: ``"pad"`` keeps each character's aspect ratio.
    n_estimators : int, default=300
        Number of trees.
    class_weight : {"balanced_subsample", "balanced"}, dict or None, \
            default="balanced_subsample"
        The forest's ``class_weight``; ``None`` for an unweighted forest.
    random_state : int, RandomState instance or None, default=None
        Seeds the forest.
    n_jobs : int, optional
        Number of jobs to build and apply the trees in parallel (``-1``: all cores).

    Returns
    -------
    pipeline : :class:`imblearn.pipeline.Pipeline`
        Steps ``"denoise"`` (:class:`~skcharclf.Denoiser`), ``"resize"``
        (:class:`~skcharclf.ImageResizer`) and ``"clf"``
        (:class:`~sklearn.ensemble.RandomForestClassifier`).

    See Also
    --------
    make_char_pipeline : The convolutional-network pipeline with rare-class augmentation.

    Examples
    --------
    >>> from skcharclf.datasets import load_digit_chars
    >>> from skcharclf.pipeline import make_baseline_pipeline
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> model = make_baseline_pipeline(n_estimators=50, random_state=0).fit(X[:400], y[:400])
    >>> [name for name, _ in model.steps]
    ['denoise', 'resize', 'clf']
    >>> model.predict(X[400:403]).shape
    (3,)
    """
    return Pipeline(
        [
            ("denoise", Denoiser(method=denoise)),
            ("resize", ImageResizer(size=size, mode=resize_mode)),
            (
                "clf",
                RandomForestClassifier(
                    n_estimators=n_estimators,
                    class_weight=class_weight,
                    random_state=random_state,
                    n_jobs=n_jobs,
                ),
            ),
        ]
    )
