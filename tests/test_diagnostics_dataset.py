"""Dataset analysis (skcharclf.diagnostics.analyze_dataset)."""

import json
import time

import cv2
import numpy as np
import pytest
from _data import random_glyph
from _diagnostics_data import (
    codes,
)

from skcharclf.diagnostics import (
    DatasetReport,
    analyze_dataset,
)

# --------------------------------------------------------------------------------------------
# analyze_dataset on synthetic ragged data
# --------------------------------------------------------------------------------------------




def _salt_and_pepper(image, rng, fraction=0.04):
    noisy = image.copy()
    hit = rng.random(image.shape) < fraction
    noisy[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)
    return noisy


@pytest.fixture(scope="module")
def ragged_set():
    """Classes a, b (40 each; b with salt-and-pepper noise) and c (6): with injected copies."""
    rng = np.random.default_rng(0)
    images = [random_glyph(rng) for _ in range(86)]
    labels = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 6)
    for i in range(40, 80):
        images[i] = _salt_and_pepper(images[i], rng)
    images.append(images[0].copy())  # exact copy, same label: index 86
    labels = np.append(labels, "a")
    images.append(images[2].copy())  # exact copy, other label: index 87
    labels = np.append(labels, "c")
    brighter = np.clip(images[3].astype(int) + 12, 0, 255).astype(np.uint8)
    images.append(brighter)  # near copy of 3: index 88
    labels = np.append(labels, "a")
    test = [random_glyph(rng) for _ in range(10)]
    test.append(images[5].copy())  # test 10 = train 5 exactly
    test.append(np.clip(images[7].astype(int) - 10, 0, 255).astype(np.uint8))  # near 7
    return images, labels, test


def test_analysis_of_ragged_synthetic_set(ragged_set):
    images, labels, test = ragged_set
    report = analyze_dataset(images, labels, X_test=test)
    assert isinstance(report, DatasetReport)
    assert report.n_samples == 89 and report.n_classes == 3
    assert report.class_counts == {"a": 42, "b": 40, "c": 7}
    assert report.imbalance_ratio == pytest.approx(6.0)
    assert report.rare_classes == ["c"] and report.tiny_classes == ["c"]
    assert report.ragged and report.n_sizes > 5
    assert report.height == {"min": 24, "median": 24, "max": 24}
    assert 8 <= report.width["min"] < report.width["max"] <= 20
    assert report.dark_on_light_fraction == 1.0
    noise = report.isolated_pixel_fraction_by_class
    assert noise["b"] > 0.01 and noise["a"] < 0.001
    assert report.exact_duplicate_groups == [[0, 86], [2, 87]]
    assert report.conflicting_label_groups == [[2, 87]]
    assert report.near_duplicate_groups == [[3, 88]]
    assert report.n_test_samples == 12
    assert report.test_exact_duplicates == [(10, 5)]
    assert report.test_near_duplicates == [(11, 7)]
    found = {finding.code: finding for finding in report.recommendations}
    assert set(found) == {
        "class_imbalance",
        "tiny_classes",
        "salt_and_pepper_noise",
        "varying_sizes",
        "dark_on_light",
        "duplicates",
        "conflicting_labels",
        "train_test_leakage",
    }
    assert found["class_imbalance"].evidence["rare_classes"] == ["c"]
    assert any("RareClassAugmenter" in r for r in found["class_imbalance"].remedies)
    assert any('class_weight="balanced"' in r for r in found["class_imbalance"].remedies)
    assert found["salt_and_pepper_noise"].evidence["noisiest_classes"][0] == "b"
    assert any('Denoiser(method="median"' in r for r in found["salt_and_pepper_noise"].remedies)
    assert any('mode="pad"' in r for r in found["varying_sizes"].remedies)
    assert "n_splits=5" in found["tiny_classes"].remedies[0]
    assert found["train_test_leakage"].evidence["leaked_fraction"] == pytest.approx(2 / 12)
    assert all(finding.epochs == [] for finding in report.recommendations)


def test_clean_same_size_light_on_dark_set_needs_nothing():
    rng = np.random.default_rng(1)
    images = np.stack(
        [cv2.resize(random_glyph(rng, dark_on_light=False), (16, 24)) for _ in range(60)]
    )
    report = analyze_dataset(images, np.repeat([0, 1, 2], 20))
    assert not report.ragged and report.dark_on_light_fraction == 0.0
    assert report.isolated_pixel_fraction < 0.001
    assert report.rare_classes == [] and report.exact_duplicate_groups == []
    assert report.recommendations == []
    assert "none: nothing in the data calls for action" in str(report)


def test_polarity_fraction_of_a_mixed_set():
    rng = np.random.default_rng(2)
    images = [random_glyph(rng, dark_on_light=k % 4 == 0) for k in range(40)]
    report = analyze_dataset(images, np.arange(40) % 2)
    assert report.dark_on_light_fraction == pytest.approx(0.25)
    (finding,) = [f for f in report.recommendations if f.code == "dark_on_light"]
    assert "mixed polarity" in finding.title and finding.severity == "info"


def test_inverted_copy_is_a_near_duplicate():
    rng = np.random.default_rng(3)
    images = [random_glyph(rng) for _ in range(20)]
    images.append(255 - images[4])
    report = analyze_dataset(images, np.arange(21) % 2)
    assert report.near_duplicate_groups == [[4, 20]]


@pytest.mark.parametrize("shape", [(24, 13), (2, 9), (5, 1)])
def test_batched_background_matches_estimate_background(shape):
    """analyze_dataset reads each image's background per stack of equal sizes, on a 0-1
    scale; it must agree with _images.estimate_background image by image."""
    from skcharclf._images import estimate_background
    from skcharclf.diagnostics._dataset import _image_features

    rng = np.random.default_rng(0)
    # two sizes interleaved, uint8 and float: each value must land at its own image
    shapes = [shape, shape[::-1]] * 3
    images = [rng.integers(0, 256, size, dtype=np.uint8) for size in shapes]
    images += [rng.random(shape, dtype=np.float32) for _ in range(3)]
    expected = [estimate_background(im / 255.0 if im.dtype == np.uint8 else im) for im in images]
    np.testing.assert_allclose(_image_features(images).background, expected, rtol=1e-6)


def test_flat_and_4d_batches(ragged_set):
    rng = np.random.default_rng(4)
    images = np.stack([cv2.resize(random_glyph(rng), (16, 16)) for _ in range(30)])
    y = np.arange(30) % 3
    flat = analyze_dataset(1.0 - images.reshape(30, -1) / 255.0, y, image_shape=(16, 16))
    assert flat.height["max"] == 16 and flat.dark_on_light_fraction == 0.0
    rgb = analyze_dataset(np.repeat(images[..., None], 3, axis=-1), y)
    assert rgb.n_samples == 30 and rgb.dark_on_light_fraction == 1.0
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8\) holds 64 pixels"):
        analyze_dataset(images.reshape(30, -1), y, image_shape=(8, 8))


def test_report_text_and_json(ragged_set):
    images, labels, test = ragged_set
    report = analyze_dataset(images, labels, X_test=test)
    text = str(report)
    for section in (
        "Classes",
        "Image sizes",
        "Intensity and noise",
        "Duplicates",
        "Recommendations",
    ):
        assert f"\n{section}\n" in text
    assert "c *" in text and "imbalance ratio (largest / smallest class): 6.0" in text
    assert "test set (12 images): 1 exact and 1 near copies" in text
    record = report.to_dict()
    assert json.loads(json.dumps(record, allow_nan=False))["class_counts"] == {
        "a": 42,
        "b": 40,
        "c": 7,
    }
    assert record["recommendations"][0]["code"] == "class_imbalance"


def test_integer_labels_serialise():
    rng = np.random.default_rng(5)
    images = [random_glyph(rng) for _ in range(12)]
    report = analyze_dataset(images, np.array([3, 7] * 6, dtype=np.int64))
    assert list(report.class_counts) == [3, 7]
    assert json.loads(json.dumps(report.to_dict()))["class_counts"] == {"3": 6, "7": 6}


def test_analysis_errors():
    rng = np.random.default_rng(6)
    images = [random_glyph(rng) for _ in range(5)]
    with pytest.raises(ValueError, match="X holds 5 images but y has 4 labels"):
        analyze_dataset(images, [0, 1, 0, 1])
    with pytest.raises(TypeError, match="X: sample 2 is a str"):
        analyze_dataset([*images[:2], "nope"], [0, 1, 0])
    with pytest.raises(ValueError, match="X_test: sample 0 is an empty image"):
        analyze_dataset(images, [0, 1, 0, 1, 0], X_test=[np.zeros((0, 4), np.uint8)])
    with pytest.raises(ValueError, match="rare_threshold"):
        analyze_dataset(images, [0, 1, 0, 1, 0], rare_threshold=2.0)


def test_thousands_of_images_take_seconds_at_most():
    rng = np.random.default_rng(7)
    base = [random_glyph(rng) for _ in range(200)]
    images = [_salt_and_pepper(base[i % 200], rng, 0.02) for i in range(3000)]
    start = time.perf_counter()
    report = analyze_dataset(images, np.arange(3000) % 10)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"{elapsed:.1f} s for 3,000 images"
    assert report.isolated_pixel_fraction > 0.005


# --------------------------------------------------------------------------------------------
# analyze_dataset on the built-in data
# --------------------------------------------------------------------------------------------


def test_analysis_of_builtin_digit_chars():
    from skcharclf.datasets import load_digit_chars

    data = load_digit_chars(test_size_per_class=20)
    report = analyze_dataset(data.data, data.target, X_test=data.data_test)
    assert report.rare_classes == [2, 5, 8]
    assert report.height["min"] == report.height["max"] == 32
    assert report.width["min"] >= 9 and report.width["max"] <= 28 and report.ragged
    assert report.dark_on_light_fraction == 1.0
    found = codes(report.recommendations)
    assert {"class_imbalance", "salt_and_pepper_noise", "varying_sizes"} <= set(found)
    assert "train_test_leakage" not in found  # held-out digits are different digits
    clean = analyze_dataset(data.clean_data, data.target)
    assert clean.isolated_pixel_fraction < 0.001
    assert "salt_and_pepper_noise" not in codes(clean.recommendations)
