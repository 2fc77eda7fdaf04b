"""The image contract, property by property: an image's result depends on that image alone.

For every step that takes images (the validator, :class:`ImageResizer` in each mode and
polarity, :class:`Denoiser` with each method) and for ``predict`` / ``predict_proba`` of a
fitted pipeline, Hypothesis draws batches of every kind a user may hold (``uint8``,
``uint16``, ``int32`` / ``int64`` read as 8 or 16 bits, ``float32`` / ``float64`` in [0, 1]
and in 0-255, ``bool``, RGB and RGBA, ragged lists of mixed kinds and sizes, dense 3D and 4D
arrays whose images have different scales, flat batches) and checks that each image's output
equals its output alone: so it changes neither with its batch-mates nor with their order
nor with the batch size. Images are drawn as noise or as a character (a stroke on a plain
background, dark on light or light on dark, so that ``polarity="auto"`` meets both).

The transformers must agree exactly. The network is allowed 1e-5 on probabilities: TensorFlow
may pick other kernels for another batch size, which moves the last float32 bits.
``RareClassAugmenter`` returns the original rows untouched before its synthetic ones.

``SKCHARCLF_CONTRACT_SCALE=10`` multiplies the number of examples of every property.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from skcharclf import Denoiser, ImageResizer, RareClassAugmenter
from skcharclf._images import check_image_batch
from skcharclf.pipeline import make_baseline_pipeline, make_char_pipeline

# Keras 3.15 converts its tensors with a numpy-1 style __array__ (a Keras issue, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

_SCALE = int(os.environ.get("SKCHARCLF_CONTRACT_SCALE", "1"))
# Examples per property: enough to meet every kind and form several times, few enough that
# the module runs in about half a minute on two cores. No deadline: the first call of a
# filter or of the network includes its warm-up.
TRANSFORMS = settings(max_examples=12 * _SCALE, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
MODELS = settings(max_examples=10 * _SCALE, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])

# ---- strategies ------------------------------------------------------------------------

GRAY_KINDS = ("uint8", "uint16", "int32", "int64", "float32", "float64", "bool")
KINDS = (*GRAY_KINDS, "rgb", "rgba")


def _intensities(rng, shape, style):
    """An image with values in [0, 1]: noise, or a stroke on a plain background."""
    if style == "noise":
        return rng.random(shape)
    background, ink = rng.random(2)
    if style == "dark_on_light":
        background, ink = 0.6 + 0.4 * background, 0.4 * ink
    elif style == "light_on_dark":
        background, ink = 0.4 * background, 0.6 + 0.4 * ink
    image = np.full(shape, background) + rng.normal(0.0, 0.05, shape)
    height, width = shape
    top, left = rng.integers(0, height), rng.integers(0, width)
    image[top : top + max(1, height // 2), left : left + max(1, width // 3)] = ink
    return np.clip(image, 0.0, 1.0)


def _as_kind(values, kind, full_scale, rng):
    """``values`` in [0, 1] as an image of ``kind``; ``full_scale`` picks the range of the
    dtypes without a fixed one (1 or 255 for floats, 255 or 65535 for other integers)."""
    if kind == "uint8":
        return np.rint(values * 255).astype(np.uint8)
    if kind == "uint16":
        return np.rint(values * 65535).astype(np.uint16)
    if kind in ("int32", "int64"):
        return np.rint(values * (255 if full_scale < 1000 else 65535)).astype(kind)
    if kind in ("float32", "float64"):
        return (values * (1.0 if full_scale < 100 else 255.0)).astype(kind)
    if kind == "bool":
        return values > 0.5
    channels = [np.clip(values + rng.normal(0.0, 0.05, values.shape), 0, 1) for _ in range(3)]
    if kind == "rgba":
        channels.append(rng.random(values.shape))
    colour = np.stack(channels, axis=-1)
    # Colour images come as uint8 or as floats in either range.
    if full_scale < 100:
        return colour.astype(np.float32)
    return np.rint(colour * 255).astype(np.uint8 if full_scale < 1000 else np.float64)


@st.composite
def images(draw, kind=None, shape=None):
    """One image of a drawn (or the given) kind and shape."""
    kind = draw(st.sampled_from(KINDS)) if kind is None else kind
    if shape is None:
        shape = (draw(st.integers(3, 20)), draw(st.integers(3, 24)))
    style = draw(st.sampled_from(("noise", "dark_on_light", "light_on_dark")))
    full_scale = draw(st.sampled_from((1, 255, 65535)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _as_kind(_intensities(rng, shape, style), kind, full_scale, rng)


@st.composite
def ragged_batches(draw):
    """A list of 1 to 6 images of mixed kinds and sizes."""
    return draw(st.lists(images(), min_size=1, max_size=6))


@st.composite
def dense_batches(draw):
    """A 3D (or, for colour, 4D) array of 1 to 6 images of one dtype but their own scales."""
    kind = draw(st.sampled_from(KINDS))
    shape = (draw(st.integers(3, 16)), draw(st.integers(3, 16)))
    batch = draw(st.lists(images(kind=kind, shape=shape), min_size=1, max_size=6))
    dtypes = {image.dtype for image in batch}
    if len(dtypes) > 1:  # colour images come in several dtypes: keep the first one's
        batch = [image for image in batch if image.dtype == batch[0].dtype]
    return np.stack(batch)


@st.composite
def flat_batches(draw):
    """A flat batch ``(n, H * W)`` of 1 to 6 gray images and its ``(H, W)``."""
    kind = draw(st.sampled_from(("uint8", "int64", "float32", "float64")))
    shape = (draw(st.integers(3, 12)), draw(st.integers(3, 12)))
    batch = draw(st.lists(images(kind=kind, shape=shape), min_size=1, max_size=6))
    return np.stack(batch).reshape(len(batch), -1), shape


def _alone(batch, i):
    """Image ``i`` of ``batch`` as a batch of one, in the batch's form."""
    return batch[i : i + 1] if isinstance(batch, np.ndarray) else [batch[i]]


def _assert_each_image_as_alone(run, batch):
    """``run(batch)[i]`` equals ``run(batch of image i alone)[0]`` for every image, exactly."""
    together = run(batch)
    assert len(together) == len(batch)
    for i in range(len(batch)):
        alone = run(_alone(batch, i))[0]
        assert together[i].dtype == alone.dtype, f"image {i}"
        np.testing.assert_array_equal(together[i], alone, err_msg=f"image {i}")


# ---- the validator -----------------------------------------------------------------------


@TRANSFORMS
@given(batch=st.one_of(ragged_batches(), dense_batches()))
def test_validator_scales_each_image_alone(batch):
    _assert_each_image_as_alone(check_image_batch, batch)
    for mine, theirs in zip(check_image_batch(batch), check_image_batch(batch[::-1])[::-1],
                            strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for image in check_image_batch(batch):
        values = image.astype(np.float32) / (255 if image.dtype == np.uint8 else 1)
        assert values.min() >= 0.0
        assert values.max() <= 1.0


# ---- ImageResizer ------------------------------------------------------------------------

RESIZERS = [
    ImageResizer(size=(8, 10), mode=mode, polarity=polarity)
    for mode in ("pad", "stretch", "fit_height")
    for polarity in ("auto", "dark_on_light", "light_on_dark")
] + [ImageResizer(size=(9, 7), interpolation="cubic"),
     ImageResizer(size=(6, 6), interpolation="nearest")]
_RESIZER_IDS = [f"{r.mode}-{r.polarity}-{r.interpolation}" for r in RESIZERS]


@pytest.mark.parametrize("resizer", RESIZERS, ids=_RESIZER_IDS)
@TRANSFORMS
@given(batch=st.one_of(ragged_batches(), dense_batches()))
def test_resizer_output_row_depends_on_its_image_alone(resizer, batch):
    _assert_each_image_as_alone(resizer.fit_transform, batch)


@pytest.mark.parametrize("resizer", RESIZERS[:3], ids=_RESIZER_IDS[:3])
@TRANSFORMS
@given(flat=flat_batches())
def test_resizer_on_a_flat_batch_row_by_row(resizer, flat):
    X, shape = flat
    _assert_each_image_as_alone(clone(resizer).set_params(image_shape=shape).fit_transform, X)


@TRANSFORMS
@given(background=st.integers(0, 255), ink=st.integers(0, 255), mates=ragged_batches())
def test_auto_polarity_is_decided_per_image(background, ink, mates):
    """A character reads the same, bright on dark, whatever the polarity of its mates."""
    image = np.full((12, 9), background, np.uint8)
    image[3:9, 3:6] = ink
    resizer = ImageResizer(size=(12, 9), mode="stretch", polarity="auto")
    alone = resizer.fit_transform([image])[0]
    for position in (0, len(mates)):
        batch = [*mates[:position], image, *mates[position:]]
        np.testing.assert_array_equal(resizer.fit_transform(batch)[position], alone)
    expected = image if background <= 127.5 else 255 - image
    np.testing.assert_allclose(alone, expected.ravel() / 255.0, atol=1e-6)


# ---- Denoiser ----------------------------------------------------------------------------

DENOISERS = [
    Denoiser(method=method)
    for method in ("none", "sharpen", "median", "bilateral", "gaussian", "nl_means",
                   "threshold", "open", "close", "dilate", "erode")
] + [
    Denoiser(method="median", ksize=7),  # OpenCV's 8-bit-only path
    Denoiser(method="threshold", threshold=0.4),
    Denoiser(method=["median", "sharpen", "close"], ksize=5, iterations=2),
]
_DENOISER_IDS = [
    "-".join([*np.atleast_1d(d.method), f"k{d.ksize}", str(d.threshold)]) for d in DENOISERS
]


@pytest.mark.parametrize("denoiser", DENOISERS, ids=_DENOISER_IDS)
@TRANSFORMS
@given(batch=st.one_of(ragged_batches(), dense_batches()))
def test_denoiser_output_image_depends_on_its_image_alone(denoiser, batch):
    _assert_each_image_as_alone(denoiser.fit_transform, batch)


@pytest.mark.parametrize("denoiser", DENOISERS, ids=_DENOISER_IDS)
@TRANSFORMS
@given(flat=flat_batches())
def test_denoiser_on_a_flat_batch_row_by_row(denoiser, flat):
    X, shape = flat
    _assert_each_image_as_alone(clone(denoiser).set_params(image_shape=shape).fit_transform, X)


# ---- RareClassAugmenter ------------------------------------------------------------------


@TRANSFORMS
@given(
    counts=st.lists(st.integers(1, 8), min_size=2, max_size=4),
    dtype=st.sampled_from((np.float32, np.float64)),
    seed=st.integers(0, 2**32 - 1),
)
def test_augmenter_returns_the_original_rows_untouched(counts, dtype, seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    X = rng.random((len(y), 36)).astype(dtype)
    X_res, y_res = RareClassAugmenter(image_shape=(6, 6), random_state=seed % 1000).fit_resample(
        X, y)
    np.testing.assert_array_equal(X_res[: len(y)], X)
    np.testing.assert_array_equal(y_res[: len(y)], y)
    assert X_res.dtype == X.dtype


# ---- predict of fitted pipelines ---------------------------------------------------------


def _training_chars(n=60, seed=0):
    """Ragged uint8 "characters" of three classes: a bright bar whose row is the class."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        label = i % 3
        image = (rng.random((16, int(rng.integers(8, 16)))) * 60).astype(np.uint8)
        image[2 + 5 * label : 5 + 5 * label, 1:-1] = 220
        X.append(image)
        y.append(label)
    return X, np.array(y)


@pytest.fixture(scope="module")
def forest():
    """The random-forest baseline pipeline, fitted once for the module."""
    return make_baseline_pipeline(size=(8, 8), n_estimators=10, random_state=0).fit(
        *_training_chars())


@pytest.fixture(scope="module")
def cnn():
    """A tiny CNN pipeline (4 filters, one epoch), fitted once for the module."""
    return make_char_pipeline(
        size=(8, 8), augment=None, filters=(4,), epochs=1, batch_size=32,
        online_augmentation=None, random_state=0,
    ).fit(*_training_chars())


def _assert_predictions_as_alone(model, batch):
    proba = model.predict_proba(batch)
    labels = model.predict(batch)
    for i in range(len(batch)):
        alone = model.predict_proba([batch[i]])[0]
        # Exact for the forest; the network's float32 kernels may differ by batch size.
        np.testing.assert_allclose(proba[i], alone, rtol=0, atol=1e-5, err_msg=f"image {i}")
        top_two = np.sort(alone)[-2:]
        if top_two[1] - top_two[0] > 1e-5:  # a near tie may break either way
            assert labels[i] == model.predict([batch[i]])[0]


@MODELS
@given(batch=ragged_batches())
def test_forest_prediction_depends_on_its_image_alone(forest, batch):
    _assert_predictions_as_alone(forest, batch)


@pytest.mark.slow
@MODELS
@given(batch=ragged_batches())
def test_cnn_prediction_depends_on_its_image_alone(cnn, batch):
    _assert_predictions_as_alone(cnn, batch)


@pytest.mark.slow
def test_cnn_prediction_is_the_same_across_the_inference_batch_boundary(cnn):
    """Past 1,024 rows the classifier predicts through a batched Keras dataset."""
    X, _ = _training_chars(1030, seed=1)
    proba = cnn.predict_proba(X)
    for start in (0, 500, 1020):
        np.testing.assert_allclose(cnn.predict_proba(X[start : start + 10]),
                                   proba[start : start + 10], rtol=0, atol=1e-5)
