"""The base of the image transformers that learn nothing in ``fit``, and its batch reader.

:class:`StatelessImageTransformer` validates once, the way imbalanced-learn's ``SamplerMixin``
does: ``fit``, ``fit_transform`` and ``transform`` check the parameters through the one
:meth:`~StatelessImageTransformer._check_params` hook, read the batch with :func:`read_batch`
and hand its 2D images to :meth:`~StatelessImageTransformer._transform`. A new image
transformer of that kind (see :mod:`skcharclf.preprocessing`) only implements those two.
"""

from __future__ import annotations

from numbers import Number
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import Tags
from sklearn.utils.validation import check_non_negative, validate_data

from skcharclf._images import (
    check_image_batch,
    image_geometry,
    is_flat_batch,
    resolve_geometry,
    unflatten,
)

__all__ = ["StatelessImageTransformer", "read_batch"]


def read_batch(
    estimator: BaseEstimator, X: object, *, reset: bool
) -> tuple[list[np.ndarray] | np.ndarray, bool]:
    """Validate ``X`` as a flat or an image batch; return its 2D images and whether it was flat.

    A flat batch goes through ``validate_data`` (``n_features_in_`` bookkeeping, the usual
    scikit-learn errors) and is then checked as a dense image batch, so the intensity rule of
    the image contract (each row scaled by its own dtype and values, see
    :mod:`skcharclf._images`) holds for both forms.
    """
    if (
        not isinstance(X, (list, tuple, np.ndarray))
        and hasattr(X, "__array__")
        and not is_flat_batch(X)
    ):
        X = np.asarray(X)
    if _is_table(X):
        geometry = image_geometry(X)
        X = validate_data(estimator, X, reset=reset, dtype="numeric")
        check_non_negative(X, type(estimator).__name__)
        step = f"{type(estimator).__name__}(image_shape={estimator.image_shape!r})"
        shape = resolve_geometry(estimator.image_shape, X.shape[1], geometry, step)
        return check_image_batch(unflatten(X, shape)), True
    if reset:
        # An image batch has no fixed number of features: forget those of an earlier flat fit.
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attribute):
                delattr(estimator, attribute)
    return check_image_batch(X), False


def _is_table(X: object) -> bool:
    """Whether ``X`` holds rows of numbers rather than images.

    Besides flat batches that covers a 2D object array, a list of 1-D rows and a 1-D vector
    of numbers, which ``validate_data`` then rejects with scikit-learn's usual advice.
    """
    if is_flat_batch(X):
        return True
    if isinstance(X, np.ndarray):
        return X.ndim == 2 or (X.ndim == 1 and X.dtype != object)
    if not isinstance(X, (list, tuple)) or not X:
        return False
    first = X[0]
    if isinstance(first, np.ndarray):
        return first.ndim <= 1
    if isinstance(first, (list, tuple)):
        return not first or not isinstance(first[0], (list, tuple, np.ndarray))
    return isinstance(first, Number)


class StatelessImageTransformer(TransformerMixin, BaseEstimator):
    """Base of the image transformers that learn nothing in ``fit``.

    It owns ``fit``, ``fit_transform`` and ``transform`` (parameter checks, batch reading,
    the ``n_features_in_`` bookkeeping of flat input) and the tags; a subclass implements
    :meth:`_check_params`, the one check of what the parameter constraints cannot express,
    and :meth:`_transform`.
    """

    def _check_params(self) -> Any:
        """Raise a ValueError naming a bad parameter; return what :meth:`_transform` needs."""
        raise NotImplementedError

    def _transform(
        self, images: list[np.ndarray] | np.ndarray, flat: bool, X: object, checked: Any
    ) -> Any:
        """Transform the batch's 2D ``images`` (``flat``: whether ``X`` was a flat batch)."""
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: object, y: object = None) -> StatelessImageTransformer:
        """Check the parameters and the input; nothing is learnt.

        A flat batch sets ``n_features_in_`` (and ``feature_names_in_`` for a data frame with
        string column names); an image batch, whose images may differ in size, removes those
        of an earlier fit.

        Parameters
        ----------
        X : image batch or array-like of shape (n_samples, n_features)
            A list / tuple / 1-D object array of 2D or 3D images of any sizes, a 3D array
            ``(n, H, W)``, a 4D array ``(n, H, W, C)`` or a flat batch.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The transformer itself.
        """
        self._check_params()
        read_batch(self, X, reset=True)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: object, y: object = None) -> Any:
        """Fit and transform ``X`` in one pass over the data (see :meth:`fit`, :meth:`transform`).

        Parameters
        ----------
        X : image batch or array-like of shape (n_samples, n_features)
            Images to transform.
        y : None
            Ignored.

        Returns
        -------
        X_new : FlatImages, list of ndarray or ndarray
            As :meth:`transform` returns.
        """
        checked = self._check_params()
        images, flat = read_batch(self, X, reset=True)
        return self._transform(images, flat, X, checked)

    def transform(self, X: object) -> Any:
        """Transform every image; nothing learnt in :meth:`fit` is used.

        Parameters
        ----------
        X : image batch or array-like of shape (n_samples, n_features)
            Images to transform (see :meth:`fit`).

        Returns
        -------
        X_new : FlatImages, list of ndarray or ndarray
            :class:`ImageResizer`: a :class:`~skcharclf.FlatImages` batch of shape
            ``(n_samples, size[0] * size[1])``, ``float32`` in [0, 1], bright ink on a dark
            background, which tells the later steps its ``image_shape``.
            :class:`Denoiser`: the form of ``X``: a list of 2D images for a sequence, a 3D
            array for a 3D or 4D array (``uint8`` or ``float32`` in [0, 1]), a ``float32``
            flat batch for a flat batch.
        """
        self._validate_params()
        checked = self._check_params()
        images, flat = read_batch(self, X, reset=False)
        return self._transform(images, flat, X, checked)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # Nothing is learnt: transform works without fit, and fit only checks the input.
        tags.requires_fit = False
        # Intensities are non-negative; a negative value is reported as an error.
        tags.input_tags.positive_only = True
        # A dense image batch is a 3D array (n, H, W).
        tags.input_tags.three_d_array = True
        # Flat output is float32 (ImageResizer's always; Denoiser keeps an image batch's
        # uint8 / float32 working dtype).
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
