"""Dataset analysis: class balance, image sizes, polarity, noise, duplicates and leakage.

:func:`analyze_dataset` reads a data set and recommends the pipeline steps that answer what
it finds, each recommendation a :class:`Finding` with the numbers that triggered it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Any

import cv2
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._images import (
    as_uint8,
    check_flat_batch,
    check_image_batch,
    estimate_backgrounds,
    is_flat_batch,
    is_light_background,
    unflatten,
)
from .._utils import check_labels
from ._findings import Finding, format_findings, join_labels, plain_label, to_builtin

# A pixel counts as isolated (salt-and-pepper) when it differs from the median of its 3x3
# neighbourhood by more than this (on a 0-1 scale), resembles at most one of its eight
# neighbours and is the brightest or darkest of its neighbourhood. Salt on a light background
# is only ~0.1-0.3 brighter, hence the low value. The second condition keeps thin strokes,
# stroke ends and corners (two or more similar neighbours) out of the count, the third the
# intermediate pixels of anti-aliased or interpolated edges: clean characters score ~0.
_ISOLATED_DELTA = 0.2
# Near-duplicate thumbnails: padded to a square (keeping the aspect ratio), 12x12, after a
# 3x3 median filter, so re-encoded, re-scaled or lightly noised copies still match.
_THUMB_SIDE = 12
_CHUNK = 2048  # rows per block of the thumbnail similarity matrix


@dataclass
class _ImageFeatures:
    """Per-image statistics of one image batch."""

    heights: np.ndarray
    widths: np.ndarray
    mean_intensity: np.ndarray  # 0-1
    background: np.ndarray  # 0-1, median of the border
    isolated_fraction: np.ndarray
    laplacian_variance: np.ndarray
    hashes: list[bytes]
    thumbnails: np.ndarray  # (n, side*side), zero mean and unit norm (zero for blank images)


def _image_features(images: list[np.ndarray]) -> _ImageFeatures:
    """Compute every per-image statistic, vectorised over the images of each size."""
    n = len(images)
    # Each image in its own working dtype: uint8 (0-255) or float32 (0-1).
    scales = np.array([255.0 if im.dtype == np.uint8 else 1.0 for im in images], np.float32)
    heights = np.array([im.shape[0] for im in images])
    widths = np.array([im.shape[1] for im in images])
    hashes = [_image_hash(im) for im in images]
    background = np.empty(n)
    mean = np.empty(n)
    isolated = np.zeros(n)
    laplacian = np.zeros(n)
    thumbnails = np.zeros((n, _THUMB_SIDE * _THUMB_SIDE), dtype=np.float32)
    sizes: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        sizes.setdefault(im.shape, []).append(i)
    for index in sizes.values():
        stack = np.stack([images[i] for i in index]).astype(np.float32)
        stack /= scales[index, None, None]
        background[index] = estimate_backgrounds(stack)
        # Bright ink on dark, as ImageResizer(polarity="auto") makes it, so that an inverted
        # copy of an image still matches and thumbnails compare ink with ink.
        light = is_light_background(background[index])
        stack = np.where(light[:, None, None], 1.0 - stack, stack)
        mean[index] = stack.mean(axis=(1, 2))
        median = _median3(stack)
        isolated[index], laplacian[index] = _noise_statistics(stack, median)
        thumbnails[index] = _thumbnails(median)
    return _ImageFeatures(
        heights, widths, mean, background, isolated, laplacian, hashes, thumbnails
    )


def _image_hash(image: np.ndarray) -> bytes:
    """A digest of the size and the 8-bit pixels: equal for byte-identical images."""
    digest = hashlib.blake2b(np.array(image.shape, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(as_uint8(image)).tobytes())
    return digest.digest()


def _median3(stack: np.ndarray) -> np.ndarray:
    """3x3 median of each image of a (k, H, W) stack.

    The stack is filtered as one tall image: only the first and last row of each image see
    their neighbour image, and the statistics below use interior pixels only.
    """
    k, h, w = stack.shape
    if h < 3 or w < 3:
        return stack.copy()
    return cv2.medianBlur(np.ascontiguousarray(stack).reshape(k * h, w), 3).reshape(k, h, w)


def _noise_statistics(stack: np.ndarray, median: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isolated-pixel fraction and Laplacian variance of each image (interior pixels)."""
    k, h, w = stack.shape
    if h < 3 or w < 3:
        return np.zeros(k), np.zeros(k)
    centre = stack[:, 1:-1, 1:-1]
    neighbours = [
        stack[:, dy : dy + h - 2, dx : dx + w - 2]
        for dy in (0, 1, 2)
        for dx in (0, 1, 2)
        if (dy, dx) != (1, 1)
    ]
    similar = sum((np.abs(centre - n) <= _ISOLATED_DELTA).astype(np.int8) for n in neighbours)
    extreme = (centre >= np.maximum.reduce(neighbours)) | (centre <= np.minimum.reduce(neighbours))
    isolated = (np.abs(centre - median[:, 1:-1, 1:-1]) > _ISOLATED_DELTA) & (similar <= 1) & extreme
    laplacian = (
        stack[:, :-2, 1:-1]
        + stack[:, 2:, 1:-1]
        + stack[:, 1:-1, :-2]
        + stack[:, 1:-1, 2:]
        - 4.0 * centre
    )
    return isolated.mean(axis=(1, 2)), laplacian.var(axis=(1, 2))


def _thumbnails(stack: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm 12x12 thumbnails of a (k, H, W) stack padded to squares."""
    k, h, w = stack.shape
    side = max(h, w)
    square = np.zeros((k, side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[:, top : top + h, left : left + w] = stack
    area = _area_weights(side, _THUMB_SIDE)
    thumbs = (area @ square @ area.T).reshape(k, -1)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(thumbs, axis=1, keepdims=True)
    return np.divide(thumbs, norms, out=np.zeros_like(thumbs), where=norms > 1e-6)


def _area_weights(source: int, target: int) -> np.ndarray:
    """The (target, source) matrix of area resampling (what cv2.INTER_AREA does per axis).

    Output pixel i averages the input interval [i, i + 1) * source / target, each input
    pixel weighted by its overlap; one matrix product resizes a whole stack at once.
    """
    edges = np.arange(target + 1) * (source / target)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _similar_pairs(thumbnails: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of thumbnails whose correlation reaches ``threshold``."""
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(thumbnails), _CHUNK):
        # Only the upper triangle: rows start.., columns from start on.
        block = thumbnails[start : start + _CHUNK] @ thumbnails[start:].T
        hits = block >= threshold
        candidates = np.flatnonzero(hits.sum(axis=1) > 1)  # the diagonal always hits
        rows, cols = np.nonzero(hits[candidates])
        rows, cols = candidates[rows] + start, cols + start
        keep = cols > rows
        pairs += zip(rows[keep].tolist(), cols[keep].tolist(), strict=True)
    return pairs


def _groups_of(pairs: list[tuple[int, int]], n: int) -> list[list[int]]:
    """Connected groups (size >= 2) of the graph the pairs draw on n nodes."""
    if not pairs:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = np.array(pairs).T
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for node in np.unique(np.concatenate([rows, cols])).tolist():
        members.setdefault(int(labels[node]), []).append(node)
    return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


def _as_images(X: Any, image_shape: Any, name: str) -> list[np.ndarray]:
    """An image batch (ragged list, 3D, 4D) or a flat batch as a list of 2D images."""
    if is_flat_batch(X):
        flat, shape = check_flat_batch(np.asarray(X), image_shape)
        return list(unflatten(flat, shape))
    try:
        return list(check_image_batch(X, dense=False))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "min": float(values.min()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }


@dataclass
class DatasetReport:
    """What :func:`analyze_dataset` found in a data set.

    Per-class values are dicts keyed by class label, in the order of the sorted labels.

    Attributes
    ----------
    n_samples : int
        Number of images.
    class_counts : dict
        Images per class.
    imbalance_ratio : float
        Largest class count over smallest.
    rare_classes : list
        Classes with fewer than ``rare_threshold`` times the largest class's images.
    tiny_classes : list
        Classes with fewer than ``min_class_size`` images.
    height, width, aspect_ratio : dict
        ``{"min", "median", "max"}`` of image heights, widths and width / height.
    n_sizes : int
        Number of distinct (height, width) sizes; more than one means a ragged batch.
    mean_intensity : float
        Mean pixel value (0-1) after bringing every image to bright ink on dark.
    dark_on_light_fraction : float
        Share of images whose border is light (median > 0.5): dark ink on light paper.
    isolated_pixel_fraction : float
        Mean share of isolated pixels (salt-and-pepper noise) per image.
    isolated_pixel_fraction_by_class : dict
        The same per class.
    laplacian_variance : float
        Median variance of the 4-neighbour Laplacian (0-1 scale): grows with fine noise and
        sharp edges, shrinks with blur.
    laplacian_variance_by_class : dict
        The same per class.
    exact_duplicate_groups : list of list of int
        Indices of byte-identical images (same size, same 8-bit pixels), one list per group.
    conflicting_label_groups : list of list of int
        Exact-duplicate groups whose images carry different labels.
    near_duplicate_groups : list of list of int
        Images that are near copies (thumbnail correlation at least
        ``near_duplicate_correlation``) but not byte-identical; an exact-duplicate group
        takes part through its first image.
    n_test_samples : int or None
        Number of images of ``X_test``, if given.
    test_exact_duplicates : list of (int, int)
        ``(test index, train index)`` of test images identical to a training image.
    test_near_duplicates : list of (int, int)
        ``(test index, train index)`` of the other test images that nearly copy one.
    recommendations : list of Finding
        What to do about it, each with the evidence that triggered it.
    """

    n_samples: int
    class_counts: dict[Any, int]
    imbalance_ratio: float
    rare_classes: list[Any]
    tiny_classes: list[Any]
    height: dict[str, float]
    width: dict[str, float]
    aspect_ratio: dict[str, float]
    n_sizes: int
    mean_intensity: float
    dark_on_light_fraction: float
    isolated_pixel_fraction: float
    isolated_pixel_fraction_by_class: dict[Any, float]
    laplacian_variance: float
    laplacian_variance_by_class: dict[Any, float]
    exact_duplicate_groups: list[list[int]]
    conflicting_label_groups: list[list[int]]
    near_duplicate_groups: list[list[int]]
    n_test_samples: int | None
    test_exact_duplicates: list[tuple[int, int]]
    test_near_duplicates: list[tuple[int, int]]
    recommendations: list[Finding]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_counts)

    @property
    def ragged(self) -> bool:
        """Whether the images come in more than one size."""
        return self.n_sizes > 1

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict (class labels become keys as they are;
        ``json.dumps`` writes them as strings)."""
        return to_builtin(asdict(self))

    def __str__(self) -> str:
        counts = np.array(list(self.class_counts.values()))
        lines = [
            f"Dataset analysis: {self.n_samples:,} images, {self.n_classes} classes",
            "",
            "Classes",
            f"  {'class':<12}{'count':>8}{'share':>9}{'isolated px':>14}{'Laplacian var':>16}",
        ]
        rare = set(self.rare_classes)
        for label, count in self.class_counts.items():
            name = f"{label}{' *' if label in rare else ''}"
            lines.append(
                f"  {name[:12]:<12}{count:>8,}{100 * count / counts.sum():>8.1f}%"
                f"{100 * self.isolated_pixel_fraction_by_class[label]:>13.2f}%"
                f"{self.laplacian_variance_by_class[label]:>16.4f}"
            )
        lines.append(f"  imbalance ratio (largest / smallest class): {self.imbalance_ratio:.1f}")
        if self.rare_classes:
            lines.append(f"  * rare classes: {join_labels(self.rare_classes)}")
        lines += ["", "Image sizes"]
        for name, stats in (
            ("height", self.height),
            ("width", self.width),
            ("aspect", self.aspect_ratio),
        ):
            lines.append(
                f"  {name:<8}min {stats['min']:>7.4g}   median {stats['median']:>7.4g}"
                f"   max {stats['max']:>7.4g}"
            )
        lines.append(
            f"  {self.n_sizes} distinct size{'s' if self.n_sizes > 1 else ''}"
            + (" (ragged batch)" if self.ragged else "")
        )
        lines += [
            "",
            "Intensity and noise",
            f"  dark ink on light background: {100 * self.dark_on_light_fraction:.0f}% of images",
            f"  mean intensity (bright ink on dark): {self.mean_intensity:.3f}",
            f"  isolated pixels (salt and pepper): {100 * self.isolated_pixel_fraction:.2f}% "
            "of pixels per image (mean)",
            f"  Laplacian variance: {self.laplacian_variance:.4f} (median)",
            "",
            "Duplicates",
            f"  exact copies: {_group_text(self.exact_duplicate_groups)}"
            + (
                f", {len(self.conflicting_label_groups)} with conflicting labels"
                if self.conflicting_label_groups
                else ""
            ),
            f"  near copies: {_group_text(self.near_duplicate_groups)}",
        ]
        if self.n_test_samples is not None:
            lines.append(
                f"  test set ({self.n_test_samples:,} images): "
                f"{len(self.test_exact_duplicates)} exact and {len(self.test_near_duplicates)} "
                "near copies of training images"
            )
        lines += ["", "Recommendations"]
        if self.recommendations:
            lines.append(format_findings(self.recommendations))
        else:
            lines.append("  none: nothing in the data calls for action.")
        return "\n".join(lines)


def _group_text(groups: list[list[int]]) -> str:
    if not groups:
        return "none"
    n_images = sum(len(g) for g in groups)
    return f"{len(groups)} group{'s' if len(groups) > 1 else ''} ({n_images} images)"


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "X_test": ["array-like", None],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "rare_threshold": [Interval(Real, 0, 1, closed="neither")],
        "min_class_size": [Interval(Integral, 2, None, closed="left")],
        "noise_threshold": [Interval(Real, 0, 1, closed="neither")],
        "near_duplicate_correlation": [Interval(Real, 0, 1, closed="right")],
    },
    prefer_skip_nested_validation=True,
)
def analyze_dataset(
    X: Any,
    y: Any,
    *,
    X_test: Any = None,
    image_shape: str | tuple[int, int] = "auto",
    rare_threshold: float = 0.5,
    min_class_size: int = 10,
    noise_threshold: float = 0.005,
    near_duplicate_correlation: float = 0.995,
) -> DatasetReport:
    """Analyse a labelled set of character images and recommend what to do about it.

    The analysis covers the first step of the procedure: class balance (counts, imbalance
    ratio, rare and tiny classes), image sizes (height, width and aspect ratio; ragged or
    not), polarity and intensity, noise per class (isolated pixels, Laplacian variance),
    exact and near duplicates within the set, and copies shared with a test set (leakage).
    Each recommendation is a :class:`Finding` carrying the numbers that triggered it.
    About 2,000 images take well under a second.

    Parameters
    ----------
    X : image batch or flat batch
        A list of 2D images (sizes may differ), a 3D array ``(n, H, W)``, a 4D array
        ``(n, H, W, C)``, or a flat batch ``(n, H*W)`` with ``image_shape``.
    y : array-like of shape (n_samples,)
        Class labels.
    X_test : image batch or flat batch, optional
        A test (or validation) set to check for images shared with ``X``.
    image_shape : "auto" or (int, int), default="auto"
        Shape of the rows of a flat batch (ignored for image batches).
    rare_threshold : float in (0, 1), default=0.5
        A class is rare when it has fewer than this fraction of the largest class's images.
    min_class_size : int, default=10
        Classes with fewer images are *tiny*: too small for 5-fold cross-validation with a
        validation split.
    noise_threshold : float in (0, 1), default=0.005
        Mean isolated-pixel fraction above which salt-and-pepper noise is reported.
        A pixel is isolated when it differs by more than 0.2 (on a 0-1 scale) from the
        median of its 3x3 neighbourhood and resembles at most one of its eight neighbours;
        clean characters score about 0, characters with 1% of their pixels set to black or
        white about 0.006.
    near_duplicate_correlation : float in (0, 1], default=0.995
        Two images are near copies when the correlation of their 12x12 thumbnails (median
        filtered, brought to bright-on-dark, padded to a square) reaches this value:
        re-encoded, re-scaled, brightened, inverted or lightly noised copies of one image.
        The comparison grows with the square of the number of images.

    Returns
    -------
    report : DatasetReport
        Printable (``print(report)``), with ``to_dict()`` and ``recommendations``.
        Recommendation codes: ``"class_imbalance"``, ``"tiny_classes"``,
        ``"varying_sizes"``, ``"salt_and_pepper_noise"``, ``"dark_on_light"``,
        ``"duplicates"``, ``"conflicting_labels"``, ``"train_test_leakage"``.

    See Also
    --------
    diagnose_history : Read the learning curves of a training run.
    skcharclf.make_report : An HTML report that includes this analysis.

    Examples
    --------
    >>> from skcharclf import analyze_dataset
    >>> from skcharclf.datasets import load_digit_chars
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> report = analyze_dataset(X, y)
    >>> report.rare_classes
    [2, 5, 8]
    >>> [r.code for r in report.recommendations]  # doctest: +NORMALIZE_WHITESPACE
    ['class_imbalance', 'salt_and_pepper_noise', 'varying_sizes', 'dark_on_light']
    """
    images = _as_images(X, image_shape, "X")
    y = check_labels(images, y)
    features = _image_features(images)
    classes, y_index, counts = np.unique(y, return_inverse=True, return_counts=True)
    labels = [plain_label(c) for c in classes]
    largest = counts.max()

    exact_groups, conflicting, near_groups, first_of = _duplicates(
        features, y_index, near_duplicate_correlation
    )
    n_test, test_exact, test_near = None, [], []
    if X_test is not None:
        test = _image_features(_as_images(X_test, image_shape, "X_test"))
        n_test = len(test.hashes)
        test_exact, test_near = _copies_in_test(
            test, features, first_of, near_duplicate_correlation
        )

    by_class = [np.flatnonzero(y_index == k) for k in range(len(classes))]
    report = DatasetReport(
        n_samples=len(images),
        class_counts={label: int(c) for label, c in zip(labels, counts, strict=True)},
        imbalance_ratio=float(largest / counts.min()),
        rare_classes=[
            lb for lb, c in zip(labels, counts, strict=True) if c < rare_threshold * largest
        ],
        tiny_classes=[lb for lb, c in zip(labels, counts, strict=True) if c < min_class_size],
        height=_summary(features.heights),
        width=_summary(features.widths),
        aspect_ratio=_summary(features.widths / features.heights),
        n_sizes=len(
            {(int(h), int(w)) for h, w in zip(features.heights, features.widths, strict=True)}
        ),
        mean_intensity=float(features.mean_intensity.mean()),
        dark_on_light_fraction=float(np.mean(is_light_background(features.background))),
        isolated_pixel_fraction=float(features.isolated_fraction.mean()),
        isolated_pixel_fraction_by_class={
            lb: float(features.isolated_fraction[idx].mean())
            for lb, idx in zip(labels, by_class, strict=True)
        },
        laplacian_variance=float(np.median(features.laplacian_variance)),
        laplacian_variance_by_class={
            lb: float(np.median(features.laplacian_variance[idx]))
            for lb, idx in zip(labels, by_class, strict=True)
        },
        exact_duplicate_groups=exact_groups,
        conflicting_label_groups=conflicting,
        near_duplicate_groups=near_groups,
        n_test_samples=n_test,
        test_exact_duplicates=test_exact,
        test_near_duplicates=test_near,
        recommendations=[],
    )
    report.recommendations = _recommendations(
        report, features, min_class_size, noise_threshold, rare_threshold
    )
    return report


def _duplicates(
    features: _ImageFeatures, y_index: np.ndarray, correlation: float
) -> tuple[list[list[int]], list[list[int]], list[list[int]], dict[bytes, int]]:
    """Exact-copy groups, those of them with several labels, near-copy groups, and the
    first index of every distinct image by its digest."""
    first_of: dict[bytes, int] = {}
    members: dict[bytes, list[int]] = {}
    for i, digest in enumerate(features.hashes):
        first_of.setdefault(digest, i)
        members.setdefault(digest, []).append(i)
    exact = [m for m in members.values() if len(m) > 1]
    conflicting = [m for m in exact if len(np.unique(y_index[m])) > 1]
    # Near copies among distinct images only: an exact group takes part through its first.
    distinct = np.array(sorted(first_of.values()))
    pairs = _similar_pairs(features.thumbnails[distinct], correlation)
    near = [[int(distinct[k]) for k in group] for group in _groups_of(pairs, len(distinct))]
    return exact, conflicting, near, first_of


def _copies_in_test(
    test: _ImageFeatures, train: _ImageFeatures, first_of: dict[bytes, int], correlation: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(test index, train index) of test images identical to, or near copies of, a training
    image."""
    exact, unmatched = [], []
    for i, digest in enumerate(test.hashes):
        if digest in first_of:
            exact.append((i, first_of[digest]))
        else:
            unmatched.append(i)
    if not unmatched:
        return exact, []
    best = _best_match(test.thumbnails[unmatched], train.thumbnails)
    near = [(unmatched[k], j) for k, (j, r) in enumerate(best) if r >= correlation]
    return exact, near


def _best_match(queries: np.ndarray, references: np.ndarray) -> list[tuple[int, float]]:
    """For each query thumbnail: the index of the most correlated reference and the value."""
    best: list[tuple[int, float]] = []
    for start in range(0, len(queries), _CHUNK):
        block = queries[start : start + _CHUNK] @ references.T
        index = block.argmax(axis=1)
        best += zip(index.tolist(), block[np.arange(len(index)), index].tolist(), strict=True)
    return best


def _recommendations(
    report: DatasetReport,
    features: _ImageFeatures,
    min_class_size: int,
    noise_threshold: float,
    rare_threshold: float,
) -> list[Finding]:
    """The procedure's answers to what the analysis found, each with its evidence."""
    found: list[Finding] = []
    counts = report.class_counts
    largest_class = max(counts, key=counts.get)
    if report.rare_classes:
        found.append(
            Finding(
                "class_imbalance",
                "warning",
                f"{len(report.rare_classes)} rare class(es): {join_labels(report.rare_classes)} "
                f"(imbalance ratio {report.imbalance_ratio:.1f})",
                {
                    "imbalance_ratio": report.imbalance_ratio,
                    "largest_class": largest_class,
                    "largest_count": counts[largest_class],
                    "rare_classes": report.rare_classes,
                    "rare_counts": [counts[c] for c in report.rare_classes],
                    "rare_threshold": rare_threshold,
                },
                "A model trained on imbalanced data favours the large classes: accuracy looks good "
                "while the rare classes are mostly missed. The procedure settled on augmenting the "
                "rare classes; class weights and a focal loss are the lighter alternatives.",
                [
                    "Top up the rare classes with augmented copies: RareClassAugmenter("
                    'sampling_strategy="not majority") as the "augment" step of the pipeline.',
                    'Or weigh the loss: KerasCharClassifier(class_weight="balanced") or '
                    'loss="focal" (also "logit_adjusted", "balanced_softmax").',
                    'Start the output biases at the log class priors: bias_init="prior".',
                    'Judge models by macro F1 or balanced accuracy (scoring="f1_macro"), not '
                    "accuracy, and stratify every split.",
                ],
            )
        )
    if report.tiny_classes:
        smallest = min(counts[c] for c in report.tiny_classes)
        found.append(
            Finding(
                "tiny_classes",
                "warning" if smallest >= 2 else "error",
                f"{len(report.tiny_classes)} class(es) with fewer than {min_class_size} images "
                f"(smallest: {smallest})",
                {
                    "tiny_classes": report.tiny_classes,
                    "counts": [counts[c] for c in report.tiny_classes],
                    "min_class_size": min_class_size,
                },
                "Stratified k-fold cross-validation needs at least k images of every class, and a "
                "validation split of a few percent leaves a tiny class with one image or none: "
                "its scores become noise.",
                [
                    f"Use fewer folds: StratifiedKFold(n_splits={max(2, min(5, smallest))}) or "
                    "fewer (at most the smallest class size).",
                    "Augment the tiny classes (RareClassAugmenter) and collect more images "
                    "of them.",
                    "Keep validation_fraction large enough to hold a few images of every class, or "
                    "pass validation_data.",
                ],
            )
        )
    if report.isolated_pixel_fraction > noise_threshold:
        by_class = report.isolated_pixel_fraction_by_class
        noisiest = sorted(by_class, key=by_class.get, reverse=True)[:3]
        found.append(
            Finding(
                "salt_and_pepper_noise",
                "warning",
                f"Salt-and-pepper noise: {100 * report.isolated_pixel_fraction:.2f}% isolated "
                "pixels per image on average",
                {
                    "isolated_pixel_fraction": report.isolated_pixel_fraction,
                    "noise_threshold": noise_threshold,
                    "noisy_image_fraction": float(
                        np.mean(features.isolated_fraction > noise_threshold)
                    ),
                    "noisiest_classes": noisiest,
                    "noisiest_fractions": [by_class[c] for c in noisiest],
                },
                "Isolated pixels that differ sharply from all their neighbours are impulse "
                "(salt-and-pepper) noise. A 3x3 median filter removes them while keeping stroke "
                "edges, which a Gaussian blur would smear.",
                [
                    'Add Denoiser(method="median", ksize=3) as the "denoise" step.',
                    'Search over the input variant: Denoiser(method=...) in ["none", "median", '
                    '"bilateral"] as a hyperparameter.',
                ],
            )
        )
    if report.ragged:
        found.append(
            Finding(
                "varying_sizes",
                "info",
                f"Images come in {report.n_sizes} sizes: width {report.width['min']:.0f}-"
                f"{report.width['max']:.0f}, height {report.height['min']:.0f}-"
                f"{report.height['max']:.0f}",
                {
                    "n_sizes": report.n_sizes,
                    "width": report.width,
                    "height": report.height,
                    "aspect_ratio": report.aspect_ratio,
                },
                "A network needs one input size. Stretching every image to a square distorts "
                "narrow characters (a 1 becomes a bar as wide as a 0) and throws away the width, "
                "which is itself informative; padding keeps the aspect ratio.",
                [
                    'Resize with ImageResizer(size=(32, 32), mode="pad"), which keeps the aspect '
                    'ratio; compare with mode="stretch" in a search.',
                ],
            )
        )
    if report.dark_on_light_fraction > 0:
        mixed = report.dark_on_light_fraction < 0.95
        found.append(
            Finding(
                "dark_on_light",
                "info",
                f"{100 * report.dark_on_light_fraction:.0f}% of the images are dark ink on a light "
                "background" + (" (mixed polarity)" if mixed else ""),
                {"dark_on_light_fraction": report.dark_on_light_fraction},
                "The models expect bright ink on a dark background (background 0 after scaling), "
                "so padding and zero-initialised borders read as background.",
                [
                    'Nothing to do: ImageResizer(polarity="auto") (the default) detects the '
                    "background of each image and inverts dark-on-light ones.",
                ],
            )
        )
    if report.exact_duplicate_groups or report.near_duplicate_groups:
        n_exact = sum(len(g) for g in report.exact_duplicate_groups)
        n_near = sum(len(g) for g in report.near_duplicate_groups)
        found.append(
            Finding(
                "duplicates",
                "info",
                f"{n_exact} images in exact-copy groups and {n_near} in near-copy groups",
                {
                    "exact_groups": len(report.exact_duplicate_groups),
                    "exact_images": n_exact,
                    "near_groups": len(report.near_duplicate_groups),
                    "near_images": n_near,
                    "first_group": (report.exact_duplicate_groups or report.near_duplicate_groups)[
                        0
                    ],
                },
                "Copies of one image that land on both sides of a cross-validation or validation "
                "split make the scores optimistic, and copies weigh their image more in training.",
                [
                    "Remove the copies, or keep each group in one fold: StratifiedGroupKFold with "
                    "the group index of each image.",
                ],
            )
        )
    if report.conflicting_label_groups:
        found.append(
            Finding(
                "conflicting_labels",
                "warning",
                f"{len(report.conflicting_label_groups)} group(s) of identical images carry "
                "different labels",
                {
                    "groups": len(report.conflicting_label_groups),
                    "first_group": report.conflicting_label_groups[0],
                },
                "Identical images with different labels are labelling errors (or classes that "
                "cannot be told apart): no model can get both right.",
                ["Check and fix the labels of these images, or drop them."],
            )
        )
    if report.test_exact_duplicates or report.test_near_duplicates:
        leaked = len(report.test_exact_duplicates) + len(report.test_near_duplicates)
        found.append(
            Finding(
                "train_test_leakage",
                "warning",
                f"{leaked} of {report.n_test_samples} test images copy a training image",
                {
                    "exact": len(report.test_exact_duplicates),
                    "near": len(report.test_near_duplicates),
                    "leaked_fraction": leaked / report.n_test_samples,
                    "first_pairs": [
                        list(p)
                        for p in (report.test_exact_duplicates + report.test_near_duplicates)[:5]
                    ],
                },
                "A test image that is (nearly) a copy of a training image measures memory, not "
                "generalisation: the test score is optimistic by about the share of leaked images.",
                [
                    "Drop the leaked test images, or split again by group so that copies stay on "
                    "one side (GroupShuffleSplit / StratifiedGroupKFold).",
                ],
            )
        )
    return found
