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

__all__ = ["make_baseline_pipeline", "make_char_pipeline"]


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


def make_char_pipeline(
    *,
    denoise: str | list[str] = "median",
    size: tuple[int, int] = (32, 32),
    resize_mode: str = "pad",
    augment: Any = "rare",
    random_state: int | None = None,
    n_jobs: int | None = None,
    **classifier_params: Any,
) -> Pipeline:
    """Build the convolutional-network pipeline: denoise, resize, augment rare classes, CNN.

    ``size`` is stated once, on the resizer: its output (a :class:`~skcharclf.FlatImages`
    batch) tells the augmenter and the classifier their ``image_shape`` (left at ``"auto"``),
    so the steps always agree on the geometry of the flat rows, also after
    ``set_params(resize__size=...)``. A foreign sampler (``SMOTE``...) returns plain arrays, so
    the classifier is then given ``image_shape=size`` as well.

    Parameters
    ----------
    denoise : str or list of str, default="median"
        The ``method`` of the :class:`~skcharclf.Denoiser` step (``"none"`` to skip it).
    size : tuple of (int, int), default=(32, 32)
        ``(height, width)`` of the images the network sees.
    resize_mode : {"pad", "stretch", "fit_height"}, default="pad"
        The resizer's ``mode``: ``"pad"`` keeps each character's aspect ratio.
    augment : "rare", sampler or None, default="rare"
        The ``"augment"`` step, applied during ``fit`` only: ``"rare"`` is a
        :class:`~skcharclf.RareClassAugmenter` that tops up every class to the size of the
        largest with augmented copies; any imbalanced-learn sampler (``SMOTE``,
        ``RandomOverSampler``, ...) takes its place; ``None`` leaves the step out.
    random_state : int, optional
        Seeds the augmenter and the classifier.
    n_jobs : int, optional
        Parallel jobs of the augmenter.
    **classifier_params
        Parameters of :class:`~skcharclf.KerasCharClassifier` (``epochs``, ``loss``, ...).

    Returns
    -------
    pipeline : :class:`imblearn.pipeline.Pipeline`
        Steps ``"denoise"``, ``"resize"``, ``"augment"`` (unless ``augment=None``) and
        ``"clf"``.

    See Also
    --------
    make_baseline_pipeline : The random-forest yardstick.

    Examples
    --------
    >>> from skcharclf.pipeline import make_char_pipeline
    >>> model = make_char_pipeline(epochs=10, random_state=0)
    >>> [name for name, _ in model.steps]
    ['denoise', 'resize', 'augment', 'clf']
    >>> model.get_params()["resize__size"], model.get_params()["clf__image_shape"]
    ((32, 32), 'auto')
    """
    from skcharclf.augmentation import RareClassAugmenter
    from skcharclf.classifier import KerasCharClassifier

    size = tuple(size)
    shape = classifier_params.get("image_shape", "auto")
    if shape != "auto" and tuple(shape) != size:
        raise ValueError(
            f"image_shape={classifier_params['image_shape']!r} differs from size={size!r}: "
            "the classifier sees the resizer's output; set size only."
        )
    classifier_params.setdefault("random_state", random_state)
    steps: list[tuple[str, Any]] = [
        ("denoise", Denoiser(method=denoise)),
        ("resize", ImageResizer(size=size, mode=resize_mode)),
    ]
    if isinstance(augment, str):
        if augment != "rare":
            raise ValueError(f"augment must be 'rare', a sampler or None, got {augment!r}.")
        augment = RareClassAugmenter(random_state=random_state, n_jobs=n_jobs)
    elif augment is not None:
        # imbalanced-learn's samplers return plain arrays: the geometry stops there.
        classifier_params["image_shape"] = size
    if augment is not None:
        steps.append(("augment", augment))
    steps.append(("clf", KerasCharClassifier(**classifier_params)))
    return Pipeline(steps)
