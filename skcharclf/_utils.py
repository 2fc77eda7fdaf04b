"""Small helpers shared by several modules of the package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import column_or_1d

#: Seeds drawn for sub-estimators and random streams lie in ``[0, MAX_SEED)``: every library
#: the package hands one to (NumPy, TensorFlow, Keras) takes a 32-bit signed integer.
MAX_SEED = int(np.iinfo(np.int32).max)


def draw_seed(random_state: int | np.random.RandomState | None) -> int:
    """One integer seed in ``[0, MAX_SEED)`` drawn from ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Anything :func:`sklearn.utils.check_random_state` accepts. A ``RandomState`` moves
        on by one draw, so successive calls give successive seeds.

    Returns
    -------
    seed : int
    """
    return int(check_random_state(random_state).randint(MAX_SEED))


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


def check_labels(X: Any, y: Any, unit: str = "images") -> np.ndarray:
    """``y`` as a 1-d array, checked to hold one label per sample of ``X``.

    Parameters
    ----------
    X : array-like or list
        The samples (its first dimension, or its length, counts them).
    y : array-like
        The labels; a column vector is flattened with a warning (as scikit-learn does).
    unit : str, default="images"
        What the error message calls the samples of ``X``.

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        If ``X`` and ``y`` differ in length: "X holds 5 images but y has 4 labels."
    """
    y = column_or_1d(y, warn=True)
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_samples != len(y):
        raise ValueError(f"X holds {n_samples} {unit} but y has {len(y)} labels.")
    return y


def read_utf8_text(
    path: str | os.PathLike, what: str, save_as: str = "UTF-8", encoding: str = "utf-8"
) -> str:
    """The text of the file ``path``, or a ``ValueError`` that says it is not UTF-8.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    what : str
        What the file is, for the message (``"config file"``).
    save_as : str, default="UTF-8"
        The format the message asks the user to save the file in.
    encoding : str, default="utf-8"
        ``"utf-8"`` or ``"utf-8-sig"`` (which drops a leading byte-order mark).

    Returns
    -------
    text : str

    Raises
    ------
    ValueError
        When the bytes are not UTF-8; the message names the file and the first bad byte.
    """
    try:
        return Path(path).read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start} cannot be decoded); "
            f"save it as {save_as}."
        ) from exc
