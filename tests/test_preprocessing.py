"""ImageResizer and Denoiser: scikit-learn conformance and behaviour on synthetic characters."""

import cv2
import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcharclf.preprocessing import Denoiser, ImageResizer, images_from_flat

# ---- synthetic characters --------------------------------------------------------------


def draw_char(digit, width=24, *, smooth=False):
    """A bright digit on a dark background, 32 pixels high."""
    canvas = np.zeros((32, 24), np.uint8)
    line = cv2.LINE_AA if smooth else cv2.LINE_8
    cv2.putText(canvas, str(digit), (2, 27), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 255, 3, line)
    return cv2.resize(canvas, (width, 32), interpolation=cv2.INTER_AREA)


def smooth_chars(n=10, seed=0):
    """Grey-level characters (ink 200 on 40) without hard edges, like scanned ones."""
    rng = np.random.default_rng(seed)
    return [
        (40 + cv2.GaussianBlur(draw_char(d % 10, int(w), smooth=True), (5, 5), 1.0) * (160 / 255))
        .astype(np.uint8)
        for d, w in zip(range(n), rng.integers(14, 29, n), strict=True)
    ]


def salt_and_pepper(images, fraction=0.08, seed=1):
    rng = np.random.default_rng(seed)
    noisy = []
    for image in images:
        out, draw = image.copy(), rng.random(image.shape)
        out[draw < fraction / 2] = 0
        out[draw > 1 - fraction / 2] = 255
        noisy.append(out)
    return noisy


def gaussian_noise(images, sigma=25.0, seed=2):
    rng = np.random.default_rng(seed)
    return [np.clip(im + rng.normal(0, sigma, im.shape), 0, 255).astype(np.uint8) for im in images]


def psnr(images, references):
    mse = np.mean([np.mean((a.astype(float) - b) ** 2) for a, b in zip(images, references,
                                                                          strict=True)])
    return 10 * np.log10(255.0**2 / mse)


def ragged_uint8(n=12, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(32, int(w)), dtype=np.uint8) for w in
            rng.integers(9, 29, n)]


# ---- scikit-learn conformance ----------------------------------------------------------


@parametrize_with_checks(
    [
        ImageResizer(),
        ImageResizer(size=(8, 8)),
        ImageResizer(size=(6, 10), mode="fit_height", interpolation="cubic",
                     polarity="dark_on_light"),
        ImageResizer(size=(5, 5), mode="stretch", interpolation="nearest",
                     polarity="light_on_dark"),
        Denoiser(),
        Denoiser(method=["median", "sharpen"]),
        Denoiser(method="open", iterations=2),
        Denoiser(method="bilateral"),
        Denoiser(method=["gaussian", "threshold"]),
        Denoiser(method="nl_means"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---- ImageResizer ----------------------------------------------------------------------


def test_pad_keeps_the_aspect_ratio():
    image = np.zeros((32, 16), np.uint8)
    image[1:-1, 1:-1] = 255  # a filled rectangle inside a one-pixel background frame
    out = ImageResizer(size=(32, 32), mode="pad").fit_transform([image]).reshape(32, 32)
    np.testing.assert_array_equal(out[:, 8:24], image / 255.0)  # centred, 16 wide
    assert not out[:, :8].any()
    assert not out[:, 24:].any()


def test_pad_scales_to_fit():
    image = np.zeros((64, 32), np.uint8)
    image[2:-2, 2:-2] = 255
    out = ImageResizer(size=(32, 32), mode="pad").fit_transform([image]).reshape(32, 32)
    ink_columns = np.flatnonzero(out.max(axis=0) > 0.5)
    ink_rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert (ink_columns.min(), ink_columns.max()) == (9, 22)  # 14 of the 16 columns
    assert (ink_rows.min(), ink_rows.max()) == (1, 30)


def test_pad_fills_with_the_background_level():
    image = np.full((20, 10), 30, np.uint8)  # a dim, not black, background
    image[5:15, 3:7] = 220
    out = ImageResizer(size=(20, 20), polarity="light_on_dark").fit_transform([image])
    out = out.reshape(20, 20)
    np.testing.assert_allclose(out[:, :5], 30 / 255)
    np.testing.assert_allclose(out[:, 15:], 30 / 255)


def test_stretch_fills_the_whole_output():
    image = np.zeros((32, 16), np.uint8)
    image[1:-1, 1:-1] = 255
    out = ImageResizer(size=(32, 32), mode="stretch").fit_transform([image]).reshape(32, 32)
    ink_columns = np.flatnonzero(out.max(axis=0) > 0.5)
    assert (ink_columns.min(), ink_columns.max()) == (2, 29)


def test_fit_height_pads_narrow_and_crops_wide_images():
    narrow = np.zeros((16, 4), np.uint8)
    narrow[:, 1:3] = 255
    wide = np.zeros((16, 32), np.uint8)
    wide[4:12, 15:17] = 255  # a mark in the middle survives the crop
    wide[4:12, 0] = 255  # marks at the far sides are cropped away
    wide[4:12, 31] = 255
    out = ImageResizer(size=(8, 8), mode="fit_height").fit_transform([narrow, wide])
    out = out.reshape(2, 8, 8)
    assert np.flatnonzero(out[0].max(axis=0) > 0.5).tolist() == [3, 4]
    assert np.flatnonzero(out[1].max(axis=0) > 0.2).tolist() == [3, 4]


@pytest.mark.parametrize("mode", ["pad", "stretch", "fit_height"])
def test_auto_polarity_gives_bright_ink_on_dark(mode):
    light_on_dark = [draw_char(d, w) for d, w in [(3, 20), (7, 12), (0, 28)]]
    dark_on_light = [255 - image for image in light_on_dark]
    resizer = ImageResizer(size=(16, 16), mode=mode)
    from_light = resizer.fit_transform(light_on_dark)
    from_dark = resizer.fit_transform(dark_on_light)
    np.testing.assert_allclose(from_dark, from_light, atol=1.5 / 255)
    assert (from_light[:, 0] == 0).all()  # the corner is background
    assert from_light.max(axis=1).min() == 1.0  # ink is bright
    forced = ImageResizer(size=(16, 16), mode=mode, polarity="dark_on_light")
    np.testing.assert_allclose(forced.fit_transform(dark_on_light), from_light, atol=1.5 / 255)
    kept = ImageResizer(size=(16, 16), mode=mode, polarity="light_on_dark")
    np.testing.assert_array_equal(kept.fit_transform(light_on_dark), from_light)


def test_output_is_float32_in_0_1_for_every_input_form():
    images = ragged_uint8(6)
    expected = ImageResizer(size=(12, 12)).fit_transform(images)
    assert expected.dtype == np.float32
    assert expected.shape == (6, 144)
    for batch in (tuple(images), [im.astype(np.uint16) * 257 for im in images],
                  [im / 255.0 for im in images], [im[..., None] for im in images]):
        out = ImageResizer(size=(12, 12)).fit_transform(batch)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1 / 255)
    cubic = ImageResizer(size=(40, 40), interpolation="cubic").fit_transform(
        [im / 255.0 for im in images])
    assert cubic.min() >= 0.0
    assert cubic.max() <= 1.0


def test_colour_images_become_gray():
    rgb = np.zeros((2, 10, 10, 3), np.uint8)
    rgb[:, 3:7, 3:7] = (255, 255, 255)
    out = ImageResizer(size=(10, 10), mode="stretch").fit_transform(rgb)
    np.testing.assert_array_equal(out, rgb[..., 0].reshape(2, -1) / 255.0)


def test_nearest_keeps_binary_images_binary():
    image = (np.random.default_rng(0).random((32, 13)) > 0.5).astype(np.uint8) * 255
    out = ImageResizer(size=(20, 20), interpolation="nearest").fit_transform([image])
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_batch_and_one_by_one_agree():
    images = ragged_uint8(15)
    for mode in ("pad", "stretch", "fit_height"):
        resizer = ImageResizer(size=(16, 16), mode=mode)
        whole = resizer.fit_transform(images)
        one_by_one = np.vstack([resizer.transform([image]) for image in images])
        np.testing.assert_array_equal(whole, one_by_one)


def test_sw1_a_float_image_is_scaled_alone_whatever_its_batch_mates():
    """Issue 11 SW1: a [0, 1] image was divided by 255 when a batch-mate exceeded 1."""
    rng = np.random.default_rng(0)
    a = [rng.random((32, 12)).astype("f4") for _ in range(5)]
    alone = ImageResizer().fit_transform(a)
    with_bright_mate = ImageResizer().fit_transform([*a, np.full((32, 12), 2.0, "f4")])
    np.testing.assert_array_equal(with_bright_mate[:5], alone)
    assert alone.max() > 0.9
    dense = ImageResizer().fit_transform(np.stack([*a, np.full((32, 12), 2.0, "f4")]))
    np.testing.assert_array_equal(dense[:5], alone)


@pytest.mark.parametrize("make", [list, np.stack], ids=["list", "dense"])
def test_sw1_an_integer_image_is_scaled_alone_whatever_its_batch_mates(make):
    """Issue 11 SW1: one value above 255 divided a whole integer batch by 65535."""
    images = [im.astype(np.int64) for im in smooth_chars(4)]
    images = [np.pad(im, ((0, 0), (0, 28 - im.shape[1])), mode="edge") for im in images]
    alone = ImageResizer(size=(16, 16)).fit_transform(make(images))
    with_mate = ImageResizer(size=(16, 16)).fit_transform(
        make([*images, np.full((32, 28), 300, np.int64)]))
    np.testing.assert_array_equal(with_mate[:4], alone)
    as_uint8 = ImageResizer(size=(16, 16)).fit_transform([im.astype(np.uint8) for im in images])
    np.testing.assert_allclose(alone, as_uint8, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(with_mate[4], 300 / 65535, rtol=1e-6)  # read as 16-bit


def test_sw2_floats_in_0_255_are_scaled_like_their_uint8_version():
    """Issue 11 SW2: floats up to 300 made a batch near black (divided by 65535)."""
    images = salt_and_pepper(smooth_chars(6))
    as_uint8 = ImageResizer(size=(16, 16)).fit_transform(images)
    floats = [im.astype(np.float32) for im in images]
    np.testing.assert_allclose(
        ImageResizer(size=(16, 16)).fit_transform(floats), as_uint8, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="sample 6 is a float image with values up to 300"):
        ImageResizer(size=(16, 16)).fit_transform([*floats, np.full((32, 12), 300.0)])


def test_a_mixed_dtype_list_gives_each_image_its_result_alone():
    """A uint8 image resized (rounded) as uint8 stays so next to float or 16-bit mates."""
    images = ragged_uint8(3)
    mixed = [images[0], images[1].astype(np.uint16) * 257, images[2] / 255.0]
    resizer = ImageResizer(size=(16, 16))
    together = resizer.fit_transform(mixed)
    for i, image in enumerate(mixed):
        np.testing.assert_array_equal(together[i], resizer.transform([image])[0])
    for method in ("median", "threshold", "bilateral"):
        denoiser = Denoiser(method=method)
        out = denoiser.fit_transform(mixed)
        assert [o.dtype for o in out] == [np.uint8, np.float32, np.float32]
        for image, result in zip(mixed, out, strict=True):
            np.testing.assert_array_equal(result, denoiser.transform([image])[0])


def test_resizer_flat_input_and_n_features_in():
    flat = np.random.default_rng(0).integers(0, 256, size=(4, 64), dtype=np.uint8)
    resizer = ImageResizer(size=(4, 4), mode="stretch", polarity="light_on_dark").fit(flat)
    assert resizer.n_features_in_ == 64
    out = resizer.transform(flat)
    expected = ImageResizer(size=(4, 4), mode="stretch", polarity="light_on_dark")
    np.testing.assert_array_equal(out, expected.fit_transform(list(flat.reshape(4, 8, 8))))
    with pytest.raises(ValueError, match="X has 10 features, but ImageResizer is expecting 64"):
        resizer.transform(np.zeros((2, 10)))
    resizer.fit(ragged_uint8(2))
    assert not hasattr(resizer, "n_features_in_")
    with pytest.raises(ValueError, match=r"image_shape=\(4, 4\) holds 16 pixels but X has 64"):
        ImageResizer(image_shape=(4, 4)).fit_transform(flat)


def test_resizer_works_without_fit():
    out = ImageResizer(size=(8, 8)).transform(ragged_uint8(3))
    assert out.shape == (3, 64)


def test_resizer_feature_names():
    names = ImageResizer(size=(2, 3)).get_feature_names_out()
    assert names.tolist() == [f"pixel_{r}_{c}" for r in range(2) for c in range(3)]
    assert names.dtype == object


@pytest.mark.parametrize("size", [(0, 5), (5,), (5, 5, 5), (2.5, 4), (True, 4)])
def test_resizer_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match=r"size must be a \(height, width\) pair of positive"):
        ImageResizer(size=size).fit(ragged_uint8(2))


def test_resizer_caps_the_output_size():
    # (30000, 30000) used to be accepted: 3.6 GB of float32 for a single image
    with pytest.raises(ValueError, match=r"size must be at most 1024 pixels per side, got \(30000"):
        ImageResizer(size=(30000, 30000)).fit(ragged_uint8(2))
    with pytest.raises(ValueError, match="size must be at most 1024"):
        ImageResizer(size=(8, 2000)).transform(ragged_uint8(2))
    assert ImageResizer(size=(1024, 4)).fit_transform(ragged_uint8(2)).shape == (2, 4096)


def test_resizer_rejects_unknown_options():
    with pytest.raises(ValueError, match="The 'mode' parameter of ImageResizer must be"):
        ImageResizer(mode="crop").fit(ragged_uint8(2))
    with pytest.raises(ValueError, match="The 'polarity' parameter of ImageResizer must be"):
        ImageResizer(polarity="dark").transform(ragged_uint8(2))


def test_resizer_names_the_bad_sample():
    images = ragged_uint8(3)
    images[2] = np.full((4, 4), np.nan)
    with pytest.raises(ValueError, match="sample 2 contains NaN or infinite values"):
        ImageResizer().fit_transform(images)


def test_set_output_pandas():
    pd = pytest.importorskip("pandas")
    out = ImageResizer(size=(2, 2)).set_output(transform="pandas").fit_transform(ragged_uint8(3))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["pixel_0_0", "pixel_0_1", "pixel_1_0", "pixel_1_1"]
    flat = pd.DataFrame(np.random.default_rng(0).random((3, 4)), columns=list("abcd"))
    denoised = Denoiser(method="median").set_output(transform="pandas").fit_transform(flat)
    assert isinstance(denoised, pd.DataFrame)
    assert list(denoised.columns) == list("abcd")


def test_images_from_flat():
    images = ragged_uint8(3)
    flat = ImageResizer(size=(6, 5)).fit_transform(images)
    back = images_from_flat(flat, (6, 5))
    assert back.shape == (3, 6, 5)
    np.testing.assert_array_equal(back.reshape(3, -1), flat)
    with pytest.raises(ValueError, match=r"holds 1024 pixels but X has 30 features"):
        images_from_flat(flat)


# ---- Denoiser: what each filter does -----------------------------------------------------


def test_median_removes_salt_and_pepper():
    clean = [draw_char(d, w) for d, w in [(2, 20), (5, 14), (8, 26), (0, 18)]]
    noisy = salt_and_pepper(clean)
    denoised = Denoiser(method="median").fit_transform(noisy)
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("gaussian", {}),
        ("bilateral", {}),
        ("bilateral", {"ksize": 5, "sigma_color": 0.4}),
        ("nl_means", {}),
    ],
)
def test_smoothing_filters_remove_gaussian_noise(method, params):
    clean = smooth_chars(6)
    noisy = gaussian_noise(clean)
    denoised = Denoiser(method=method, **params).fit_transform(noisy)
    assert psnr(denoised, clean) > psnr(noisy, clean) + 1.0


def test_open_removes_isolated_bright_specks():
    clean = draw_char(4, 24)
    specks = clean.copy()
    background = np.argwhere(cv2.dilate(clean, np.ones((5, 5), np.uint8)) == 0)
    chosen = background[np.random.default_rng(0).choice(len(background), 15, replace=False)]
    specks[chosen[:, 0], chosen[:, 1]] = 255
    opened = Denoiser(method="open").fit_transform([specks])[0]
    assert not opened[chosen[:, 0], chosen[:, 1]].any()
    strokes = clean > 128
    assert (opened[strokes] > 128).mean() > 0.8  # the 3-pixel-wide strokes stay


def test_close_fills_small_holes():
    block = np.zeros((20, 20), np.uint8)
    block[4:16, 4:16] = 255
    holes = block.copy()
    holes[[7, 10, 12], [6, 9, 13]] = 0
    closed = Denoiser(method="close").fit_transform([holes])[0]
    np.testing.assert_array_equal(closed, block)


def test_dilate_grows_and_erode_shrinks_bright_regions():
    image = draw_char(6, 20)
    dilated, eroded = (Denoiser(method=m).fit_transform([image])[0] for m in ("dilate", "erode"))
    assert (dilated >= image).all()
    assert (eroded <= image).all()
    assert int(dilated.sum()) > int(image.sum()) > int(eroded.sum())
    twice = Denoiser(method="dilate", iterations=2).fit_transform([image])[0]
    assert int(twice.sum()) > int(dilated.sum())


def test_threshold_gives_a_binary_image():
    noisy = gaussian_noise(smooth_chars(4))
    for threshold in ("otsu", 0.5):
        out = Denoiser(method="threshold", threshold=threshold).fit_transform(noisy)
        for image in out:
            assert set(np.unique(image)) <= {0, 255}
        floats = Denoiser(method="threshold", threshold=threshold).fit_transform(
            [im / 255.0 for im in noisy])
        for image in floats:
            assert set(np.unique(image)) <= {0.0, 1.0}
    fixed = Denoiser(method="threshold", threshold=0.5).fit_transform([np.array([[127, 128]],
                                                                                np.uint8)])
    np.testing.assert_array_equal(fixed[0], [[0, 255]])


def test_sharpen_increases_laplacian_variance_of_a_blurred_image():
    blurred = cv2.GaussianBlur(draw_char(5, 22, smooth=True), (5, 5), 1.5)
    sharpened = Denoiser(method="sharpen", sharpen_amount=1.5).fit_transform([blurred])[0]

    def laplacian_variance(image):
        return cv2.Laplacian(image.astype(np.float64), cv2.CV_64F).var()

    assert laplacian_variance(sharpened) > 1.5 * laplacian_variance(blurred)
    unchanged = Denoiser(method="sharpen", sharpen_amount=0.0).fit_transform([blurred])[0]
    np.testing.assert_array_equal(unchanged, blurred)


def test_a_list_of_methods_is_applied_in_order():
    images = salt_and_pepper(smooth_chars(3))
    chained = Denoiser(method=["median", "threshold"]).fit_transform(images)
    by_hand = Denoiser(method="threshold").fit_transform(
        Denoiser(method="median").fit_transform(images))
    for a, b in zip(chained, by_hand, strict=True):
        np.testing.assert_array_equal(a, b)


# ---- Denoiser: exactly OpenCV's result, one image at a time --------------------------------


def _reference(method, k, iterations, image):
    kernel = np.ones((k, k), np.uint8)
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    blur = cv2.GaussianBlur(image, (k, k), sigma, sigmaY=sigma)
    return {
        "median": lambda: cv2.medianBlur(image, k),
        "gaussian": lambda: blur,
        "sharpen": lambda: cv2.addWeighted(image, 2.0, blur, -1.0, 0.0),
        "open": lambda: cv2.morphologyEx(image, cv2.MORPH_OPEN, kernel, iterations=iterations),
        "close": lambda: cv2.morphologyEx(image, cv2.MORPH_CLOSE, kernel, iterations=iterations),
        "dilate": lambda: cv2.dilate(image, kernel, iterations=iterations),
        "erode": lambda: cv2.erode(image, kernel, iterations=iterations),
        "threshold": lambda: cv2.threshold(image, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1],
        "bilateral": lambda: cv2.bilateralFilter(image, k, 0.3 * 255, sigma),
    }[method]()


@pytest.mark.parametrize(
    "method",
    ["median", "gaussian", "sharpen", "open", "close", "dilate", "erode", "threshold",
     "bilateral"],
)
@pytest.mark.parametrize(("ksize", "iterations"), [(3, 1), (5, 2), (3, 50), (31, 1)])
def test_uint8_filters_match_one_opencv_call_per_image(method, ksize, iterations):
    images = [*ragged_uint8(25), np.full((3, 2), 9, np.uint8), np.eye(4, dtype=np.uint8) * 200]
    out = Denoiser(method=method, ksize=ksize, iterations=iterations).fit_transform(images)
    for i, (result, image) in enumerate(zip(out, images, strict=True)):
        assert result.dtype == np.uint8
        expected = _reference(method, ksize, iterations, image)
        np.testing.assert_array_equal(result, expected, err_msg=f"image {i}")


@pytest.mark.parametrize("method", ["median", "gaussian", "sharpen", "open", "bilateral",
                                    "threshold", "nl_means"])
@pytest.mark.parametrize("ksize", [3, 5])
def test_batch_and_one_by_one_agree_for_every_filter(method, ksize):
    # ksize=5: OpenCV's float Gaussian rounded the last bit by the column in the wide image.
    images = ragged_uint8(10)
    for batch in (images, [im / 255.0 for im in images]):
        denoiser = Denoiser(method=method, ksize=ksize)
        whole = denoiser.fit_transform(batch)
        for image, alone in zip(whole, batch, strict=True):
            np.testing.assert_array_equal(image, denoiser.transform([alone])[0])


# ---- Denoiser: forms in, forms out -------------------------------------------------------


def test_ragged_in_gives_ragged_out():
    images = ragged_uint8(8)
    out = Denoiser(method=["median", "sharpen"]).fit_transform(images)
    assert isinstance(out, list)
    assert [o.shape for o in out] == [im.shape for im in images]
    assert all(o.dtype == np.uint8 and o.flags.c_contiguous for o in out)


def test_dense_in_gives_dense_out():
    dense = np.random.default_rng(0).integers(0, 256, size=(5, 12, 9), dtype=np.uint8)
    for method in ("median", "threshold", "nl_means", "none"):
        out = Denoiser(method=method).fit_transform(dense)
        assert isinstance(out, np.ndarray)
        assert out.shape == dense.shape
        assert out.dtype == np.uint8
    rgb = np.zeros((2, 6, 6, 3), np.uint8)
    assert Denoiser(method="median").fit_transform(rgb).shape == (2, 6, 6)


def test_non_8_bit_images_work_in_float32():
    images = [im.astype(np.uint16) * 257 for im in ragged_uint8(4)]
    for method in ("median", "bilateral", "nl_means", "threshold", "open"):
        out = Denoiser(method=method).fit_transform(images)
        assert all(o.dtype == np.float32 and o.min() >= 0 and o.max() <= 1 for o in out)
    big_median = Denoiser(method="median", ksize=7).fit_transform(images)
    expected = Denoiser(method="median", ksize=7).fit_transform(
        [np.rint(im / 257).astype(np.uint8) for im in images])
    for a, b in zip(big_median, expected, strict=True):
        np.testing.assert_allclose(a, b / 255.0, atol=1e-6)


def test_flat_in_gives_flat_out():
    flat = ImageResizer(size=(16, 16)).fit_transform(salt_and_pepper(smooth_chars(4)))
    denoiser = Denoiser(method="median").fit(flat)
    out = denoiser.transform(flat)
    assert out.shape == flat.shape
    assert out.dtype == np.float32
    assert denoiser.n_features_in_ == 256
    expected = Denoiser(method="median").fit_transform(images_from_flat(flat, (16, 16)))
    np.testing.assert_array_equal(out, expected.reshape(4, -1))
    # the resizer's output tells the denoiser its geometry, and the denoiser passes it on
    assert out.image_shape == (16, 16) and out.source == "ImageResizer(size=(16, 16))"
    with pytest.raises(ValueError, match=r"Denoiser\(image_shape=\(8, 8\)\) contradicts its "
                       r"input: ImageResizer\(size=\(16, 16\)\) produced 16x16 images"):
        Denoiser(method="median", image_shape=(8, 8)).fit_transform(flat)
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8\) holds 64 pixels but X has 256"):
        Denoiser(method="median", image_shape=(8, 8)).fit_transform(np.asarray(flat))


def test_none_leaves_the_images_alone():
    images = ragged_uint8(3)
    out = Denoiser().fit_transform(images)
    for a, b in zip(out, images, strict=True):
        np.testing.assert_array_equal(a, b)


def test_denoiser_feature_names():
    flat = np.random.default_rng(0).random((3, 4))
    assert Denoiser().fit(flat).get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    fitted_on_images = Denoiser().fit(ragged_uint8(2))
    assert fitted_on_images.get_feature_names_out().tolist() == []
    assert fitted_on_images.get_feature_names_out(["a"]).tolist() == ["a"]


def test_set_output_leaves_image_batches_as_images():
    denoiser = Denoiser(method="median").set_output(transform="pandas")
    out = denoiser.fit_transform(ragged_uint8(3))
    assert isinstance(out, list)


# ---- Denoiser: parameter errors --------------------------------------------------------------


def test_unknown_method_in_a_list_is_named():
    with pytest.raises(ValueError, match=r"method\[1\]='blur' is not a Denoiser method"):
        Denoiser(method=["median", "blur"]).fit(ragged_uint8(2))
    with pytest.raises(ValueError, match=r"method\[0\]='blur'"):
        Denoiser(method=["blur"]).transform(ragged_uint8(2))


def test_bad_denoiser_parameters():
    images = ragged_uint8(2)
    with pytest.raises(ValueError, match="method is an empty list; use method='none'"):
        Denoiser(method=[]).fit(images)
    with pytest.raises(ValueError, match="The 'method' parameter of Denoiser must be"):
        Denoiser(method="blur").fit(images)
    with pytest.raises(ValueError, match="ksize must be odd"):
        Denoiser(method="median", ksize=4).fit(images)
    with pytest.raises(ValueError, match="The 'ksize' parameter of Denoiser must be"):
        Denoiser(method="median", ksize=1).fit(images)
    with pytest.raises(ValueError, match="The 'threshold' parameter of Denoiser must be"):
        Denoiser(method="threshold", threshold=1.5).fit(images)
    with pytest.raises(ValueError, match=r"image_shape must be a \(height, width\) pair"):
        Denoiser(image_shape=(0, 3)).fit(images)


def test_denoiser_bounds_the_cost_of_its_filters():
    images = ragged_uint8(2)
    # a raw cv2.error from OpenCV's median before the upper bound
    with pytest.raises(ValueError, match=r"'ksize' parameter of Denoiser must be an int in the "
                       r"range \[3, 31\]\. Got 10001"):
        Denoiser(method="median", ksize=10001).fit(images)
    with pytest.raises(ValueError, match="'ksize' parameter of Denoiser"):
        Denoiser(method="bilateral", ksize=10001).fit_transform(images)
    # a MemoryError (a square kernel of 2e9 pixels per side) before the upper bound
    with pytest.raises(ValueError, match=r"'iterations' parameter of Denoiser must be an int in "
                       r"the range \[1, 50\]"):
        Denoiser(method="erode", iterations=10**9).fit(images)
    with pytest.raises(ValueError, match=r"iterations=4 with ksize=31 reaches 60 pixels"):
        Denoiser(method=["median", "close"], ksize=31, iterations=4).fit(images)
    # the reach only limits the morphology filters
    Denoiser(method="median", ksize=31, iterations=4).fit(images)


def test_wide_padding_is_filtered_in_smaller_chunks(monkeypatch):
    images = ragged_uint8(12)
    expected = Denoiser(method="erode", iterations=20).fit_transform(images)
    monkeypatch.setattr("skcharclf.preprocessing._WIDE_PIXELS", 5000)
    for result, reference in zip(
        Denoiser(method="erode", iterations=20).fit_transform(images), expected, strict=True
    ):
        np.testing.assert_array_equal(result, reference)


# ---- in a pipeline -----------------------------------------------------------------------------


def _noisy_char_dataset(n_per_class=15, seed=0):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, digit in enumerate((1, 4, 8)):
        for _ in range(n_per_class):
            image = 255 - draw_char(digit, int(rng.integers(12, 29)))  # dark on light
            images.append(image)
            labels.append(label)
    return salt_and_pepper(images, fraction=0.15, seed=seed), np.array(labels)


def test_grid_search_picks_a_denoiser_method():
    X, y = _noisy_char_dataset()
    pipeline = Pipeline([
        ("denoise", Denoiser()),
        ("resize", ImageResizer(size=(16, 16))),
        ("clf", RandomForestClassifier(n_estimators=20, random_state=0)),
    ])
    search = GridSearchCV(
        pipeline,
        param_grid={"denoise__method": ["none", "median"]},
        cv=StratifiedKFold(3),
    ).fit(X, y)
    assert search.best_params_["denoise__method"] in ("none", "median")
    assert search.best_score_ > 0.8  # three classes: chance is 1/3
    X_new, y_new = _noisy_char_dataset(n_per_class=4, seed=1)
    assert (search.predict(X_new) == y_new).mean() > 0.8


def test_list_valued_method_survives_clone():
    denoiser = Denoiser(method=["median", "sharpen"])
    copy = clone(denoiser)
    assert copy.method == ["median", "sharpen"]
    assert copy.method is not denoiser.method
