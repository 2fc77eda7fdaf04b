"""The data feed of :class:`~skcharclf.KerasCharClassifier`: from NumPy rows to Keras batches.

Checks the rows, combines the sample weights, holds out the validation rows, measures the
pixel statistics the normalisation learns, and builds the ``tf.data`` pipelines that take
each batch from the NumPy arrays when it is needed (no copy of the data set).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight

FINITE_CHUNK = 8192  # rows per block when looking for the first NaN sample or summing pixels
PREDICT_BATCH = 1024  # inference batch: large batches run faster on a CPU


def first_bad_row(X: np.ndarray) -> int | None:
    """Index of the first row holding NaN or inf, without a full-size temporary."""
    # The float64 sum of a float32 array cannot overflow, so it is finite exactly when every
    # value is: one cheap pass for the common case.
    if np.isfinite(np.sum(X, dtype=np.float64)):
        return None
    for start in range(0, X.shape[0], FINITE_CHUNK):
        bad = np.flatnonzero(~np.isfinite(X[start : start + FINITE_CHUNK]).all(axis=1))
        if bad.size:
            return start + int(bad[0])
    return None


def subsample(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``rows``, or ``n`` of them drawn with ``seed`` (sorted) when there are more."""
    if rows.size <= n:
        return rows
    return np.sort(np.random.RandomState(seed).choice(rows, n, False))


def training_weights(
    X: np.ndarray, y: np.ndarray, sample_weight: Any, class_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Combine sample and class weights, drop zero-weight samples, normalise to mean 1.

    Returns ``(X, y, weights)``; ``weights`` is None when every sample weighs the same.
    """
    if sample_weight is None and class_weight is None:
        return X, y, None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if class_weight is not None:
        weights = weights * compute_sample_weight(class_weight, y)
    keep = weights > 0
    if not keep.any():
        raise ValueError("every sample has weight 0: there is nothing to train on.")
    if not keep.all():
        X, y, weights = X[keep], y[keep], weights[keep]
    weights = weights / weights.mean()
    if np.allclose(weights, 1.0):
        return X, y, None
    return X, y, weights.astype(np.float32)


def stratified_holdout(
    codes: np.ndarray, fraction: float, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, validation), stratified by class code.

    Every class keeps at least one training sample (a class with one sample stays entirely in
    training); the validation set holds ``round(fraction * n)`` samples, allocated to classes
    in proportion to their size.
    """
    counts = np.bincount(codes)
    quota = fraction * counts
    n_val = np.minimum(np.floor(quota).astype(int), np.maximum(counts - 1, 0))
    missing = round(fraction * codes.size) - int(n_val.sum())
    for c in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if missing <= 0:
            break
        if n_val[c] < counts[c] - 1:
            n_val[c] += 1
            missing -= 1
    val = [rng.permutation(np.flatnonzero(codes == c))[:k] for c, k in enumerate(n_val) if k]
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.intp)
    train_mask = np.ones(codes.size, dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx


def validation_split(
    codes: np.ndarray, fraction: float, rng: np.random.RandomState, *, needed_by: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stratified_holdout`, or a ValueError when it holds out nothing.

    ``needed_by`` names the parameter that asks for a validation set, for the message.
    """
    train_idx, val_idx = stratified_holdout(codes, fraction, rng)
    if val_idx.size == 0:
        raise ValueError(
            f"{needed_by} needs a validation set, but validation_fraction="
            f"{fraction} of {codes.size} training samples holds out no "
            "sample (each class keeps at least one training sample). Pass more data, a "
            "larger validation_fraction or validation_data=(X_val, y_val)."
        )
    return train_idx, val_idx


def pixel_statistics(X: np.ndarray, rows: np.ndarray) -> tuple[float, float, float, float]:
    """Min, max, mean and standard deviation of all pixels of ``X[rows]``, in blocks."""
    low, high, total, squares, count = np.inf, -np.inf, 0.0, 0.0, 0
    for start in range(0, rows.size, FINITE_CHUNK):
        block = X[rows[start : start + FINITE_CHUNK]].astype(np.float64)
        low, high = min(low, block.min()), max(high, block.max())
        total += block.sum()
        squares += np.square(block).sum()
        count += block.size
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    return float(low), float(high), float(mean), std


def normalization_constants(
    X: np.ndarray, rows: np.ndarray, normalization: str
) -> tuple[float, float]:
    """``(scale, offset)`` of the pixel normalisation ``normalization`` learned on ``X[rows]``.

    ``"scale"`` maps the minimum and maximum to 0 and 1, ``"center"`` subtracts the mean,
    ``"standardize"`` also divides by the standard deviation.
    """
    low, high, mean, std = pixel_statistics(X, rows)
    if normalization == "scale":
        span = high - low if high > low else 1.0
        return 1.0 / span, -low / span
    if normalization == "center":
        return 1.0, -mean
    scale = 1.0 / std if std > 0 else 1.0
    return scale, -mean * scale


def _fixed_buffers(data: Any) -> Any:
    """``data`` with tf.data's autotuning off: it stalls training on small CPUs (perf-notes)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def inference_batches(X: np.ndarray, y: np.ndarray | None = None, rows: Any = None) -> Any:
    """Unshuffled ``tf.data`` batches of :data:`PREDICT_BATCH` rows of ``X`` (and ``y``).

    Only the row indices go through tf.data; every batch is taken from the NumPy arrays when
    it is needed. Turning ``X`` into a tensor instead would copy the whole data set (twice,
    at the peak). ``rows`` defaults to all rows.
    """
    import tensorflow as tf

    rows = np.arange(X.shape[0]) if rows is None else rows
    arrays = [X] if y is None else [X, y]
    dtypes = [tf.as_dtype(a.dtype) for a in arrays]

    def take(index: np.ndarray) -> list[np.ndarray]:
        return [a[index] for a in arrays]

    def gather(index: Any) -> Any:
        parts = tf.numpy_function(take, [index], dtypes, stateful=False)
        for part, array in zip(parts, arrays, strict=True):
            part.set_shape((None, *array.shape[1:]))
        return tuple(parts) if len(parts) > 1 else parts[0]

    data = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64)).batch(PREDICT_BATCH)
    return _fixed_buffers(data.map(gather))


#: ``class_sampling`` name -> the power ``q`` of the class sizes the classes are drawn in
#: proportion to (``n_c ** q``): the data's own frequencies, their square root, all equal.
SAMPLING_POWERS: dict[str, float] = {"natural": 1.0, "sqrt": 0.5, "balanced": 0.0}


def sampling_probabilities(codes: np.ndarray, rows: np.ndarray, power: float) -> np.ndarray | None:
    """Per-row probabilities of ``rows`` that draw class ``c`` in proportion to ``n_c ** power``.

    Every row of a class is equally likely. None for ``power == 1`` (the natural frequencies:
    each epoch is then a permutation of ``rows``, every row seen once).
    """
    if power == 1.0:
        return None
    counts = np.bincount(codes[rows]).astype(np.float64)
    present = counts > 0
    mass = np.zeros_like(counts)
    mass[present] = counts[present] ** power
    mass /= mass.sum()
    per_row = np.zeros_like(counts)
    per_row[present] = mass[present] / counts[present]
    probabilities = per_row[codes[rows]]
    return probabilities / probabilities.sum()


def class_frequencies(
    codes: np.ndarray,
    weights: np.ndarray | None,
    rows: np.ndarray,
    n_classes: int,
    power: float = 1.0,
) -> np.ndarray:
    """Class frequencies of ``rows`` as the loss sees them: weighted by ``weights`` and drawn
    with :func:`sampling_probabilities` of ``power``."""
    counts = np.bincount(codes[rows], minlength=n_classes).astype(np.float64)
    mass = np.bincount(
        codes[rows], weights=None if weights is None else weights[rows], minlength=n_classes
    ).astype(np.float64)
    if power != 1.0:
        present = counts > 0
        mass[present] *= counts[present] ** (power - 1.0)
    return mass / mass.sum()


def epoch_order(
    rows: np.ndarray, seed: int, epoch: int, probabilities: np.ndarray | None
) -> np.ndarray:
    """The rows of training epoch ``epoch``, a pure function of ``(seed, epoch)``.

    A permutation of ``rows`` (``probabilities`` None), or ``rows.size`` rows drawn with
    replacement with ``probabilities``. Epoch ``k`` of a fit resumed at ``k`` is therefore the
    same as epoch ``k`` of an uninterrupted fit.
    """
    rng = np.random.default_rng([seed, epoch])
    if probabilities is None:
        return rng.permutation(rows)
    return rng.choice(rows, size=rows.size, replace=True, p=probabilities)


def mix_batch(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    rng: np.random.Generator,
    image_shape: tuple[int, int],
    mixup_alpha: float,
    cutmix_alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mix a batch with a shuffled copy of itself: input mixup or cutmix.

    With both alphas positive, each batch takes one of the two at random. Mixup blends whole
    images, ``share * x + (1 - share) * x[perm]`` with ``share ~ Beta(alpha, alpha)``; cutmix
    pastes a box of ``x[perm]`` (of area ``1 - share`` of the image, clipped at the borders,
    the share then recomputed) into ``x``. Returns the mixed rows, the mixed targets as rows
    ``(label_a, label_b, share_of_a)`` (``label_a`` the larger share) and the mixed weights.
    """
    n = y.shape[0]
    perm = rng.permutation(n)
    cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    if cutmix:
        share = float(rng.beta(cutmix_alpha, cutmix_alpha))
        height, width = image_shape
        side = math.sqrt(1.0 - share)
        box_h, box_w = round(height * side), round(width * side)
        top = int(rng.integers(height)) - box_h // 2
        left = int(rng.integers(width)) - box_w // 2
        top, bottom = max(top, 0), min(top + box_h, height)
        left, right = max(left, 0), min(left + box_w, width)
        images = x.reshape(n, height, width).copy()
        images[:, top:bottom, left:right] = images[perm, top:bottom, left:right]
        x = images.reshape(n, -1)
        share = 1.0 - max(bottom - top, 0) * max(right - left, 0) / (height * width)
    else:
        share = float(rng.beta(mixup_alpha, mixup_alpha))
        x = (share * x + (1.0 - share) * x[perm]).astype(x.dtype, copy=False)
    if w is not None:
        w = (share * w + (1.0 - share) * w[perm]).astype(w.dtype, copy=False)
    a, b = y, y[perm]
    if share < 0.5:
        a, b, share = b, a, 1.0 - share
    targets = np.stack([a, b, np.full(n, share)], axis=1).astype(np.float32)
    return x, targets, w


def training_batches(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    rows: np.ndarray,
    batch_size: int,
    seed: int,
    *,
    epochs: int,
    first_epoch: int = 0,
    probabilities: np.ndarray | None = None,
    mixing: tuple[tuple[int, int], float, float] | None = None,
) -> tuple[Any, int]:
    """The training batches of epochs ``first_epoch`` to ``epochs - 1`` as one ``tf.data``
    pipeline, and the number of batches per epoch.

    Each epoch's rows come from :func:`epoch_order` (so they depend on the seed and the epoch
    number only), cut into batches of ``batch_size`` (the last one smaller); each batch is
    gathered from the NumPy arrays when it is needed, and with ``mixing = (image_shape,
    mixup_alpha, cutmix_alpha)`` mixed by :func:`mix_batch` with a generator seeded by
    ``(seed, epoch, batch)``. Pass the number of batches to Keras as ``steps_per_epoch`` and
    ``first_epoch`` as ``initial_epoch``.
    """
    import tensorflow as tf

    steps = math.ceil(rows.size / batch_size)
    mixed = mixing is not None
    dtypes = [tf.as_dtype(X.dtype), tf.float32 if mixed else tf.as_dtype(y.dtype)]
    if w is not None:
        dtypes.append(tf.as_dtype(w.dtype))

    def order(epoch: np.ndarray) -> np.ndarray:
        return epoch_order(rows, seed, int(epoch), probabilities).astype(np.int64)

    def one_epoch(epoch: Any) -> Any:
        index = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        index.set_shape((rows.size,))
        batched = tf.data.Dataset.from_tensor_slices(index).batch(batch_size).enumerate()
        return batched.map(lambda batch, rows_: (epoch, batch, rows_))

    def take(epoch: np.ndarray, batch: np.ndarray, index: np.ndarray) -> list[np.ndarray]:
        x, labels = X[index], y[index]
        weights = None if w is None else w[index]
        if mixed:
            rng = np.random.default_rng([seed, int(epoch), int(batch), 1])
            x, labels, weights = mix_batch(x, labels, weights, rng, *mixing)
        return [x, labels] if weights is None else [x, labels, weights]

    def gather(epoch: Any, batch: Any, index: Any) -> Any:
        parts = tf.numpy_function(take, [epoch, batch, index], dtypes, stateful=False)
        parts[0].set_shape((None, X.shape[1]))
        parts[1].set_shape((None, 3) if mixed else (None,))
        if w is not None:
            parts[2].set_shape((None,))
        return tuple(parts)

    data = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    data = data.apply(tf.data.experimental.assert_cardinality((epochs - first_epoch) * steps))
    return _fixed_buffers(data.map(gather)), steps


def checked_validation_data(
    validation_data: Any, classes: np.ndarray, validate: Callable[[Any, Any], tuple]
) -> tuple[np.ndarray, np.ndarray] | None:
    """``validation_data`` as ``(X_val, y_val)`` passed through ``validate``, or None.

    Raises a ValueError when it is not a pair or holds labels not in ``classes``.
    """
    if validation_data is None:
        return None
    try:
        X_val, y_val = validation_data
    except (TypeError, ValueError) as exc:
        raise ValueError("validation_data must be a tuple (X_val, y_val).") from exc
    X_val, y_val = validate(X_val, y_val)
    unseen = np.setdiff1d(np.unique(y_val), classes)
    if unseen.size:
        raise ValueError(
            f"validation_data holds label(s) {unseen.tolist()} that are not in the "
            "training data."
        )
    return X_val, y_val


def validation_batches(X: np.ndarray, codes: np.ndarray, rows: np.ndarray | None = None) -> Any:
    """Unshuffled inference-size batches of ``(X, codes)`` for validation (all rows by default)."""
    return inference_batches(X, codes, rows)
