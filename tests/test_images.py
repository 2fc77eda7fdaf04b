"""The image-batch contract of skcharclf._images: every bad input gets its clear error, every
accepted form gives the same gray images, each scaled by a rule that reads that image alone."""

import pickle

import numpy as np
import pytest
from sklearn.utils import _safe_indexing

from skcharclf._images import (
    FlatImages,
    as_float01,
    as_uint8,
    check_flat_batch,
    check_image_batch,
    estimate_background,
    full_scale,
    image_geometry,
    is_flat_batch,
    resolve_geometry,
    resolve_image_shape,
    split_working_dtypes,
    to_gray,
    unflatten,
)

RNG = np.random.default_rng(0)
SMALL = RNG.integers(0, 256, size=(5, 4), dtype=np.uint8)
WIDE = RNG.integers(0, 256, size=(5, 7), dtype=np.uint8)


# ---- bad inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch",
    [[], (), np.empty((0, 5, 5), np.uint8), np.array([], dtype=object)],
    ids=["list", "tuple", "3d", "object"],
)
def test_empty_batch(batch):
    with pytest.raises(ValueError, match="the image batch is empty: it holds 0 images"):
        check_image_batch(batch)


@pytest.mark.parametrize(
    ("sample", "dims"),
    [(np.zeros(4), 1), (np.zeros((2, 3, 3, 1)), 4), (np.zeros(()), 0)],
)
def test_sample_not_2d_or_3d(sample, dims):
    with pytest.raises(ValueError, match=rf"sample 1 has {dims} dimension\(s\)"):
        check_image_batch([SMALL, sample])


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0, 3)])
def test_zero_size_image(shape):
    with pytest.raises(ValueError, match=r"sample 1 is an empty image of shape"):
        check_image_batch([SMALL, np.zeros(shape)])


def test_zero_size_images_in_a_dense_batch():
    with pytest.raises(ValueError, match=r"sample 0 is an empty image of shape \(0, 4\)"):
        check_image_batch(np.zeros((3, 0, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_names_the_sample(bad):
    image = np.zeros((4, 4))
    image[1, 2] = bad
    with pytest.raises(ValueError, match="sample 2 contains NaN or infinite values"):
        check_image_batch([np.zeros((4, 4)), np.ones((3, 3)), image])
    dense = np.zeros((4, 4, 4))
    dense[2, 1, 2] = bad
    with pytest.raises(ValueError, match="sample 2 contains NaN or infinite values"):
        check_image_batch(dense)


@pytest.mark.parametrize(
    ("sample", "dtype"),
    [
        (np.array([["a", "b"], ["c", "d"]]), "<U1"),
        (np.array([[b"a"]]), "|S1"),
        (np.array([[1, 2], [3, None]], dtype=object), "object"),
    ],
)
def test_non_numeric_data(sample, dtype):
    with pytest.raises(TypeError, match=rf"sample 1 has dtype {dtype}; images must be numeric"):
        check_image_batch([SMALL, sample])


def test_non_numeric_dense_batch():
    with pytest.raises(TypeError, match="sample 0 has dtype <U1"):
        check_image_batch(np.full((2, 3, 3), "x"))


def test_complex_data():
    with pytest.raises(TypeError, match="sample 0 is complex-valued"):
        check_image_batch([np.ones((3, 3), complex)])


@pytest.mark.parametrize(
    ("junk", "kind"),
    [("junk", "str"), (None, "NoneType"), (3.5, "float"), ({"a": 1}, "dict")],
)
def test_junk_in_an_object_array(junk, kind):
    batch = np.empty(3, dtype=object)
    batch[0], batch[1], batch[2] = SMALL, junk, WIDE
    with pytest.raises(TypeError, match=rf"sample 1 is a {kind}, not an image array"):
        check_image_batch(batch)


def test_ragged_nested_list_sample():
    with pytest.raises(ValueError, match="sample 1 is a ragged nested list, not an image"):
        check_image_batch([SMALL, [[1, 2], [3]]])


def test_object_array_must_be_1d():
    with pytest.raises(ValueError, match=r"an object array of images must be 1-D, got shape"):
        check_image_batch(np.empty((2, 2), dtype=object))


def test_4d_with_two_channels():
    with pytest.raises(ValueError, match=r"C in \{1, 3, 4\}.*shape \(2, 4, 4, 2\)"):
        check_image_batch(np.zeros((2, 4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"sample 0: expected a 2D gray image or a 3D"):
        check_image_batch([np.zeros((4, 4, 2), np.uint8)])


@pytest.mark.parametrize("batch", [np.zeros((4, 4)), np.zeros(4), np.zeros((1, 2, 3, 4, 3))])
def test_dense_array_of_the_wrong_rank(batch):
    with pytest.raises(ValueError, match="expected an image batch: a 3D array"):
        check_image_batch(batch)


@pytest.mark.parametrize("batch", ["images", b"images", {"a": SMALL}, 3, (x for x in [SMALL])])
def test_not_a_batch(batch):
    with pytest.raises(TypeError, match="expected an image batch"):
        check_image_batch(batch)


def test_negative_values():
    with pytest.raises(ValueError, match=r"sample 1 has negative values \(min -2\)"):
        check_image_batch([np.ones((3, 3)), -2 * np.ones((3, 3))])
    with pytest.raises(ValueError, match=r"sample 0 has negative values"):
        check_image_batch(np.full((2, 3, 3), -1, np.int16))


def test_values_beyond_16_bits():
    with pytest.raises(ValueError, match="sample 0 has values up to 70000, beyond the 16-bit"):
        check_image_batch([np.full((3, 3), 70_000, np.int64)])
    with pytest.raises(ValueError, match="sample 1 has values up to 70000, beyond the 16-bit"):
        check_image_batch(np.stack([np.ones((3, 3)), np.full((3, 3), 70_000)]).astype(int))


@pytest.mark.parametrize("make", [list, np.stack], ids=["list", "dense"])
def test_floats_above_255_are_an_error_naming_the_sample(make):
    """SW2: a float image reaching 300 is neither [0, 1] nor 0-255: an error, not a guess."""
    batch = make([np.full((3, 3), 200.0), np.full((3, 3), 0.5), np.full((3, 3), 300.0)])
    with pytest.raises(ValueError, match=r"sample 2 is a float image with values up to 300"):
        check_image_batch(batch)


def test_ragged_batch_cannot_be_dense():
    with pytest.raises(ValueError, match="2 different sizes; resize them first"):
        check_image_batch([SMALL, WIDE], dense=True)


# ---- good inputs -----------------------------------------------------------------------


def _object_array(images):
    batch = np.empty(len(images), dtype=object)
    for i, image in enumerate(images):
        batch[i] = image
    return batch


@pytest.mark.parametrize(
    "make", [list, tuple, _object_array], ids=["list", "tuple", "object-array"]
)
def test_ragged_sequences(make):
    images = [SMALL, WIDE, SMALL.T.copy()]
    out = check_image_batch(make(images))
    assert isinstance(out, list)
    assert [o.shape for o in out] == [(5, 4), (5, 7), (4, 5)]
    for o, image in zip(out, images, strict=True):
        assert o.dtype == np.uint8
        np.testing.assert_array_equal(o, image)


def test_nested_lists_are_images():
    out = check_image_batch([[[0, 255], [255, 0]], SMALL])
    assert out[0].dtype == np.float32  # an int64 image, read as 8-bit: values within 0-255
    np.testing.assert_allclose(out[0], [[0, 1], [1, 0]])
    assert out[1] is SMALL  # each image keeps its own working dtype


def test_dense_3d_keeps_its_form():
    batch = RNG.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
    out = check_image_batch(batch)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out, batch)
    as_list = check_image_batch(batch, dense=False)
    assert isinstance(as_list, list)
    assert len(as_list) == 3


def test_4d_single_channel():
    batch = RNG.integers(0, 256, size=(3, 5, 4, 1), dtype=np.uint8)
    np.testing.assert_array_equal(check_image_batch(batch), batch[..., 0])


def test_4d_rgb_uses_bt601_weights():
    batch = np.zeros((2, 2, 2, 3), np.uint8)
    batch[0, 0, 0] = (255, 0, 0)
    batch[0, 0, 1] = (0, 255, 0)
    batch[0, 1, 0] = (0, 0, 255)
    batch[1] = 255
    out = check_image_batch(batch)
    assert out.dtype == np.uint8
    assert out[0, 0, 0] == 76  # round(0.299 * 255)
    assert out[0, 0, 1] == 150  # round(0.587 * 255)
    assert out[0, 1, 0] == 29  # round(0.114 * 255)
    assert (out[1] == 255).all()
    bgr = check_image_batch(batch, order="bgr")
    assert bgr[0, 0, 0] == 29


def test_4d_rgba_composites_alpha_over_white():
    batch = np.zeros((1, 1, 3, 4), np.uint8)
    batch[0, 0, 0] = (0, 0, 0, 255)  # opaque black ink
    batch[0, 0, 1] = (0, 0, 0, 0)  # transparent: the white page shows through
    batch[0, 0, 2] = (0, 0, 0, 128)  # half transparent
    out = check_image_batch(batch)[0, 0]
    assert out[0] == 0
    assert out[1] == 255
    assert out[2] == 127


def test_float_rgba_in_0_1():
    image = np.zeros((1, 2, 4))
    image[0, 1, 3] = 1.0  # opaque black; pixel 0 is transparent
    out = check_image_batch([image])[0]
    np.testing.assert_allclose(out, [[1.0, 0.0]])


def test_dtype_scaling_is_consistent():
    levels = np.array([[0, 64, 128, 255]], np.uint8)
    variants = {
        "uint8": levels,
        "uint16": levels.astype(np.uint16) * 257,
        "int64": levels.astype(np.int64),
        "float01": levels / 255.0,
        "float255": levels.astype(np.float32),
    }
    expected = levels / 255.0
    for name, image in variants.items():
        out = check_image_batch([image])[0]
        assert out.dtype == (np.uint8 if name == "uint8" else np.float32), name
        np.testing.assert_allclose(as_float01(out), expected, atol=1e-6, err_msg=name)
    binary = check_image_batch([np.array([[False, True]])])[0]
    assert binary.dtype == np.uint8
    np.testing.assert_array_equal(binary, [[0, 255]])


@pytest.mark.parametrize(
    ("image", "scale"),
    [
        (np.array([[0, 255]], np.uint8), 255),
        (np.array([[0, 1]], np.uint16), 65535),  # the dtype states the scale, not the values
        (np.array([[0, 1]], ">u2"), 65535),
        (np.array([[False, True]]), 1),
        (np.array([[0, 200]], np.int32), 255),
        (np.array([[0, 256]], np.int32), 65535),
        (np.array([[0, 65535]], np.uint32), 65535),
        (np.array([[0.0, 0.5]]), 1),
        (np.array([[0.0, 1.0]], np.float32), 1),  # also a nearly black 0-255 image: documented
        (np.array([[0.0, 1.01]]), 255),  # also a [0, 1] image that overshoots: documented
        (np.array([[0.0, 255.0]], np.float16), 255),
    ],
    ids=["uint8", "uint16", "uint16-big-endian", "bool", "int-8bit", "int-16bit", "uint32",
         "float01", "float-max-1", "float-just-above-1", "float16-255"],
)
def test_each_image_is_scaled_by_its_own_rule(image, scale):
    out = check_image_batch([image])[0]
    np.testing.assert_allclose(as_float01(out), image.astype(np.float64) / scale, rtol=1e-6)
    assert full_scale(image) == scale


def test_the_scale_of_an_image_ignores_its_batch_mates():
    """SW1: before, a 0.5 image was divided by 255 because a batch-mate reached 255."""
    out = check_image_batch([np.full((2, 2), 0.5), np.full((2, 2), 255.0)])
    np.testing.assert_allclose(out[0], 0.5)
    np.testing.assert_allclose(out[1], 1.0)
    ints = check_image_batch([np.full((2, 2), 100), np.full((2, 2), 300)])
    np.testing.assert_allclose(ints[0], 100 / 255, rtol=1e-6)
    np.testing.assert_allclose(ints[1], 300 / 65535, rtol=1e-6)


def test_colour_scale_reads_every_channel():
    """A float RGB image in 0-255 whose gray values all stay below 1 is still 0-255."""
    image = np.zeros((2, 2, 3))
    image[0, 0] = (2.0, 0.0, 0.0)  # gray 0.598
    out = check_image_batch([image])[0]
    np.testing.assert_allclose(out[0, 0], 0.299 * 2.0 / 255, rtol=1e-6)
    rgba = np.zeros((2, 2, 4))
    rgba[..., 3] = 255.0  # opaque in 0-255: the colour black, not white
    np.testing.assert_array_equal(check_image_batch([rgba])[0], 0.0)
    assert check_image_batch([np.ones((2, 2, 3), bool)])[0].dtype == np.float32


def test_mixed_uint8_and_bool_stay_8_bit():
    out = check_image_batch([SMALL, np.eye(3, dtype=bool)])
    assert all(o.dtype == np.uint8 for o in out)
    np.testing.assert_array_equal(out[1], np.eye(3) * 255)


@pytest.mark.parametrize(
    "dense",
    [
        RNG.random((4, 6, 5)) * 3.0,
        RNG.random((4, 6, 5)).astype(np.float32),
        RNG.integers(0, 256, size=(4, 6, 5)),
        RNG.integers(0, 65536, size=(4, 6, 5)).astype(np.uint16),
        np.concatenate([RNG.random((2, 6, 5)), RNG.random((2, 6, 5)) * 200.0]),
        np.concatenate([RNG.integers(0, 256, (2, 6, 5)), RNG.integers(0, 1000, (2, 6, 5))]),
    ],
    ids=["float-above-1", "float32-01", "int64", "uint16", "float-two-scales",
         "int-two-scales"],
)
def test_dense_fast_path_matches_the_per_sample_path(dense):
    fast = check_image_batch(dense)
    per_sample = check_image_batch(list(dense))
    assert fast.dtype == per_sample[0].dtype == np.float32
    np.testing.assert_array_equal(fast, np.stack(per_sample))


def test_uint8_list_is_not_copied():
    out = check_image_batch([SMALL, WIDE])
    assert out[0] is SMALL


# ---- helpers ---------------------------------------------------------------------------


def test_estimate_background_reads_the_border():
    image = np.full((10, 8), 230, np.uint8)
    image[2:8, 2:6] = 10
    assert estimate_background(image) == 230
    assert estimate_background(255 - image) == 25
    assert estimate_background(np.array([[1, 2, 9]])) == 2  # too small for a border


def test_as_uint8_and_as_float01_round_trip():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    as_float = as_float01(image)
    assert as_float.dtype == np.float32
    assert float(as_float.max()) == 1.0
    np.testing.assert_array_equal(as_uint8(as_float), image)
    assert as_uint8(image) is image


def test_to_gray_rejects_two_channels():
    with pytest.raises(ValueError, match="sample 3: expected a 2D gray image"):
        to_gray(np.zeros((2, 2, 2)), index=3)


def test_flat_batch_helpers():
    assert is_flat_batch(np.zeros((3, 4)))
    assert not is_flat_batch([np.zeros((3, 4))])
    assert not is_flat_batch(np.zeros((3, 4), dtype=object))
    assert resolve_image_shape("auto", 64) == (8, 8)
    assert resolve_image_shape("auto", 10) == (1, 10)
    assert resolve_image_shape((4, 16), 64) == (4, 16)
    with pytest.raises(ValueError, match=r"image_shape=\(4, 4\) holds 16 pixels but X has 64"):
        resolve_image_shape((4, 4), 64)
    with pytest.raises(ValueError, match="image_shape must be 'auto' or a"):
        resolve_image_shape("square", 64)
    flat, shape = check_flat_batch(np.ones((2, 9), np.uint8), "auto")
    assert flat.dtype == np.float32
    assert shape == (3, 3)
    assert unflatten(flat, shape).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="sample 1 contains NaN"):
        check_flat_batch(np.array([[0.0, 1.0], [np.nan, 0.0]]), (1, 2))


def test_mixed_bit_depths_keep_their_own_scale():
    """An 8-bit and a 16-bit image of the same brightness stay equally bright together."""
    eight = np.full((4, 4), 255, np.uint8)
    sixteen = np.full((4, 4), 65535, np.uint16)
    out = check_image_batch([eight, sixteen, np.ones((4, 4), bool)])
    assert [img.dtype for img in out] == [np.uint8, np.float32, np.uint8]
    np.testing.assert_allclose([as_float01(img).max() for img in out], [1.0, 1.0, 1.0])
    dense = check_image_batch([eight, sixteen], dense=True)
    assert dense.dtype == np.float32
    np.testing.assert_array_equal(dense, 1.0)


def test_split_working_dtypes():
    assert split_working_dtypes([SMALL, WIDE]) is None
    assert split_working_dtypes(np.zeros((2, 3, 3), np.float32)) is None
    groups = split_working_dtypes([SMALL, np.zeros((2, 2), np.float32), WIDE])
    assert [index for index, _ in groups] == [[0, 2], [1]]
    assert groups[0][1][1] is WIDE


# ---- FlatImages: the geometry a flat batch carries --------------------------------------


def _flat_images():
    return FlatImages(np.arange(48, dtype=np.float32).reshape(4, 12), (3, 4), source="test")


@pytest.mark.parametrize(
    "select",
    [
        lambda X: X[1:3],
        lambda X: X[[0, 3]],
        lambda X: X[np.array([True, False, True, True])],
        lambda X: _safe_indexing(X, np.array([2, 0])),
        lambda X: X * 2.0,
        lambda X: X.copy(),
        lambda X: X.astype(np.float64),
        lambda X: pickle.loads(pickle.dumps(X)),
    ],
    ids=["slice", "fancy", "mask", "safe_indexing", "arithmetic", "copy", "astype", "pickle"],
)
def test_flat_images_keep_their_geometry_through_row_selections_and_pickling(select):
    rows = select(_flat_images())
    assert isinstance(rows, FlatImages)
    assert image_geometry(rows) == ((3, 4), "test")


@pytest.mark.parametrize(
    "derive",
    [
        lambda X: X[:, :5],
        lambda X: X[:, 0],
        lambda X: X[0],
        lambda X: X.sum(axis=1),
        lambda X: X.max(axis=0),
        lambda X: np.asarray(X),
    ],
    ids=["columns", "column", "row", "row_sums", "column_max", "asarray"],
)
def test_what_is_no_longer_a_batch_of_images_is_a_plain_array(derive):
    derived = derive(_flat_images())
    assert type(derived) is np.ndarray
    assert image_geometry(derived) is None


def test_reductions_of_flat_images_are_plain_scalars():
    X = _flat_images()
    assert type(X.max()) is np.float32 and float(X.max()) == 47.0
    assert type(X.mean()) is np.float32


def test_a_reshape_to_images_carries_no_geometry():
    assert image_geometry(_flat_images().reshape(-1, 3, 4)) is None


def test_flat_images_refuse_a_width_that_is_not_the_geometry():
    with pytest.raises(ValueError, match=r"3x4 images has shape \(n_samples, 12\)"):
        FlatImages(np.zeros((2, 10)), (3, 4))
    with pytest.raises(ValueError, match="image_shape must be a"):
        FlatImages(np.zeros((2, 12)), (3, 0))


def test_geometry_from_the_resizers_feature_names():
    pd = pytest.importorskip("pandas")
    names = [f"pixel_{r}_{c}" for r in range(2) for c in range(3)]
    frame = pd.DataFrame(np.zeros((2, 6)), columns=names)
    assert image_geometry(frame)[0] == (2, 3)
    assert image_geometry(frame[names[::-1]]) is None
    assert image_geometry(pd.DataFrame(np.zeros((2, 6)))) is None


def test_resolve_geometry():
    carried = ((3, 4), "ImageResizer(size=(3, 4))")
    assert resolve_geometry("auto", 12, carried, "Step()") == (3, 4)
    assert resolve_geometry((3, 4), 12, carried, "Step()") == (3, 4)
    assert resolve_geometry("auto", 12, None, "Step()") == (1, 12)
    assert resolve_geometry("auto", 16, None, "Step()") == (4, 4)
    message = r"Step\(\) contradicts its input: ImageResizer\(size=\(3, 4\)\) produced 3x4"
    with pytest.raises(ValueError, match=message):
        resolve_geometry((4, 3), 12, carried, "Step()")
    with pytest.raises(ValueError, match=message):
        resolve_geometry((2, 2), 12, carried, "Step()")
