"""Loaders (image folders, NPZ, IDX) and the built-in digit and font characters."""

import gzip
import os
import re
import struct
import time
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from skcharclf._images import check_image_batch
from skcharclf.datasets import (
    FONT_GLYPHS,
    NOISE_KINDS,
    load_digit_chars,
    load_font_chars,
    load_idx,
    load_image_folder,
    load_npz,
    read_image,
)

# --------------------------------------------------------------------------------------------
# load_image_folder
# --------------------------------------------------------------------------------------------


def _char(width: int = 12, ink: int = 30, background: int = 220) -> np.ndarray:
    image = np.full((32, width), background, np.uint8)
    image[4:28, width // 2 - 1 : width // 2 + 2] = ink
    return image


def _write(path, image) -> None:
    assert cv2.imwrite(str(path), image), path


@pytest.fixture
def class_folders(tmp_path):
    for label, n in [("a", 3), ("b", 2)]:
        (tmp_path / label).mkdir()
        for i in range(n):
            _write(tmp_path / label / f"{i:03d}.png", _char(10 + i))
    return tmp_path


def test_folders_labels_order_and_filenames(class_folders):
    (class_folders / "b" / "notes.txt").write_text("not an image")
    (class_folders / "a" / ".hidden.png").write_bytes(b"junk")
    bunch = load_image_folder(class_folders)
    assert bunch.target.tolist() == ["a", "a", "a", "b", "b"]
    assert bunch.target_names.tolist() == ["a", "b"]
    assert [Path(name).parts[-2:] for name in bunch.filenames] == [
        ("a", "000.png"),
        ("a", "001.png"),
        ("a", "002.png"),
        ("b", "000.png"),
        ("b", "001.png"),
    ]
    assert [image.shape for image in bunch.data] == [
        (32, 10),
        (32, 11),
        (32, 12),
        (32, 10),
        (32, 11),
    ]
    assert all(image.dtype == np.uint8 and image.ndim == 2 for image in bunch.data)
    np.testing.assert_array_equal(bunch.data[0], _char(10))
    assert bunch.skipped == []
    assert "5 images in 2 classes" in bunch.DESCR
    X, y = load_image_folder(class_folders, return_X_y=True)
    assert len(X) == 5 and y.tolist() == bunch.target.tolist()


def test_digit_folder_names_give_integer_targets(tmp_path):
    for label in ("10", "2", "0"):
        (tmp_path / label).mkdir()
        _write(tmp_path / label / "x.png", _char())
    bunch = load_image_folder(tmp_path)
    assert bunch.target.dtype.kind == "i"
    assert bunch.target_names.tolist() == [0, 2, 10]
    assert sorted(bunch.target.tolist()) == [0, 2, 10]


def test_filename_labels_default_pattern(tmp_path):
    for name in ("7_0001.png", "7_0002.jpg", "x_0001.bmp", "12_3.PNG"):
        _write(tmp_path / name, _char())
    bunch = load_image_folder(tmp_path, labels="filename")
    # "x" is not a digit string, so every label stays a string
    assert bunch.target.tolist() == ["12", "7", "7", "x"]
    bunch = load_image_folder(tmp_path, labels="filename", pattern=r"_(?P<label>\d+)$")
    assert bunch.target.tolist() == [3, 1, 2, 1]


def test_filename_labels_unmatched_name(tmp_path):
    _write(tmp_path / "7_1.png", _char())
    _write(tmp_path / "nolabel.png", _char())
    with pytest.raises(ValueError, match=r"nolabel\.png.*does not match the label pattern"):
        load_image_folder(tmp_path, labels="filename")
    bunch = load_image_folder(tmp_path, labels="filename", on_error="skip")
    assert bunch.target.tolist() == [7]
    assert bunch.skipped == [str(tmp_path / "nolabel.png")]


def test_pattern_without_label_group(tmp_path):
    _write(tmp_path / "7_1.png", _char())
    with pytest.raises(ValueError, match="no group named 'label'"):
        load_image_folder(tmp_path, labels="filename", pattern=r"^(\d+)_")


@pytest.fixture
def with_corrupt(class_folders):
    (class_folders / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (class_folders / "b" / "empty.jpg").write_bytes(b"")
    return class_folders


def test_corrupt_file_raise(with_corrupt):
    with pytest.raises(ValueError, match=re.escape(str(with_corrupt / "a" / "bad.png"))):
        load_image_folder(with_corrupt)


def test_corrupt_file_warn(with_corrupt):
    with pytest.warns(UserWarning, match=r"2 file\(s\) skipped") as record:
        bunch = load_image_folder(with_corrupt, on_error="warn")
    assert len(record) == 1
    message = str(record[0].message)
    assert "bad.png" in message and "empty.jpg" in message
    assert len(bunch.data) == 5
    assert bunch.skipped == [
        str(with_corrupt / "a" / "bad.png"),
        str(with_corrupt / "b" / "empty.jpg"),
    ]


def test_corrupt_file_skip_is_silent(with_corrupt, capfd):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bunch = load_image_folder(with_corrupt, on_error="skip")
    assert len(bunch.data) == 5 and len(bunch.skipped) == 2
    assert capfd.readouterr().err == ""  # OpenCV's own decoder warnings are silenced


def test_unreadable_file_is_skipped(class_folders, monkeypatch):
    # root reads any file whatever its mode, so the refusal of a chmod 000 file is mocked
    locked = class_folders / "a" / "001.png"
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    for on_error in ("skip", "warn"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bunch = load_image_folder(class_folders, on_error=on_error)
        assert bunch.skipped == [str(locked)] and len(bunch.data) == 4
    with pytest.raises(ValueError, match=re.escape(f"{str(locked)!r}: it cannot be opened "
                                                   "(Permission denied). Pass on_error=")):
        load_image_folder(class_folders)


def test_special_files_named_like_images_are_listed_not_opened(class_folders):
    fifo, device, dangling = (class_folders / "a" / name for name in ("f.png", "d.png", "l.png"))
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    device.symlink_to(os.devnull)
    dangling.symlink_to(class_folders / "gone.png")
    bunch = load_image_folder(class_folders, on_error="skip")
    assert bunch.skipped == [str(device), str(fifo), str(dangling)]
    assert len(bunch.data) == 5
    with pytest.raises(ValueError, match=re.escape(f"{str(device)!r}: it is not a regular file")):
        load_image_folder(class_folders)
    with pytest.raises(FileNotFoundError):
        read_image(dangling)


def _png_header_only_bomb(path, side=20000) -> None:
    """A valid 1-bit PNG of ``side`` x ``side`` black pixels: a few kB on disk."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(bytes(side * (1 + side // 8)), 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_huge_image_is_refused_before_decoding(class_folders, monkeypatch):
    bomb = class_folders / "b" / "bomb.png"
    _png_header_only_bomb(bomb)
    assert bomb.stat().st_size < 100_000  # decoded: 400 MB
    with pytest.raises(ValueError, match=re.escape(
        f"{str(bomb)!r}: it has 20000 x 20000 pixels, more than max_pixels=4194304"
    )):
        load_image_folder(class_folders)
    bunch = load_image_folder(class_folders, on_error="skip")
    assert bunch.skipped == [str(bomb)] and len(bunch.data) == 5
    bomb.unlink()
    # below the cap nothing changes; above it, the header says so without any decoding
    assert len(load_image_folder(class_folders, max_pixels=32 * 12).data) == 5
    monkeypatch.setattr(cv2, "imdecode", None)  # decoding would now fail with a TypeError
    with pytest.raises(ValueError, match=r"it has 32 x 10 pixels, more than max_pixels=319"):
        load_image_folder(class_folders, max_pixels=319)


@pytest.mark.parametrize("extension", ["png", "jpg", "bmp", "tif"])
def test_pixel_cap_reads_the_size_from_the_header(tmp_path, monkeypatch, extension):
    file = tmp_path / f"x.{extension}"
    _write(file, np.zeros((41, 29, 3), np.uint8))
    assert read_image(file, max_pixels=41 * 29).shape == (41, 29)
    monkeypatch.setattr(cv2, "imdecode", None)
    with pytest.raises(ValueError, match=r"it has 41 x 29 pixels, more than max_pixels=1188"):
        read_image(file, max_pixels=41 * 29 - 1)


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png': it is empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # cut short in the header
    with pytest.raises(ValueError, match=r"bad\.png': it cannot be read as an image"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(ValueError, match="it is not a regular file"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / "bad.png", max_pixels=0)
    (tmp_path / "big.png").write_bytes(bytes(16 * 100 + 2**24 + 1))
    with pytest.raises(ValueError, match=r"big\.png': it has more bytes \(16778817\) than any"):
        read_image(tmp_path / "big.png", max_pixels=100)


def test_empty_class_folder_is_reported(class_folders):
    (class_folders / "c").mkdir()
    with pytest.warns(UserWarning, match=r"1 class folder\(s\) without image files.*c"):
        bunch = load_image_folder(class_folders)
    assert bunch.target_names.tolist() == ["a", "b"]


def test_folder_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no image file .* in the sub-folders of"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="no image file"):
        load_image_folder(tmp_path, labels="filename")


def test_flat_folder_suggests_filename_labels(tmp_path):
    _write(tmp_path / "3_1.png", _char())
    with pytest.raises(ValueError, match=r"has no class sub-folder.*labels='filename'"):
        load_image_folder(tmp_path)


def test_all_files_unreadable(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="no readable image file"):
        load_image_folder(tmp_path, on_error="skip")


def test_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(tmp_path / "missing")


def test_bad_on_error_value(class_folders):
    with pytest.raises(ValueError, match="on_error"):
        load_image_folder(class_folders, on_error="ignore")


def test_rgba_is_composited_over_white(tmp_path):
    (tmp_path / "a").mkdir()
    bgra = np.zeros((32, 12, 4), np.uint8)  # fully transparent canvas ...
    bgra[4:28, 5:7] = (20, 20, 20, 255)  # ... with an opaque dark stroke
    _write(tmp_path / "a" / "x.png", bgra)
    (image,) = load_image_folder(tmp_path).data
    assert image.shape == (32, 12) and image.dtype == np.uint8
    assert image[0, 0] == 255 and image[10, 5] == 20


def test_colour_uses_bgr_weights(tmp_path):
    (tmp_path / "a").mkdir()
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 200  # pure red in OpenCV's BGR order
    _write(tmp_path / "a" / "x.png", bgr)
    (image,) = load_image_folder(tmp_path).data
    assert image[0, 0] == round(0.299 * 200)


def test_16_bit_png_keeps_depth(tmp_path):
    (tmp_path / "a").mkdir()
    deep = np.full((32, 12), 60000, np.uint16)
    deep[4:28, 5:7] = 1000
    _write(tmp_path / "a" / "x.png", deep)
    (image,) = load_image_folder(tmp_path).data
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, deep)


# --------------------------------------------------------------------------------------------
# load_npz
# --------------------------------------------------------------------------------------------


def test_npz_round_trip_guessed_keys(tmp_path):
    X = np.random.default_rng(0).integers(0, 255, (6, 32, 20), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez_compressed(tmp_path / "d.npz", images=X, labels=y)
    bunch = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, y)
    assert (bunch.data_key, bunch.target_key) == ("images", "labels")
    np.savez(tmp_path / "p.npz", X, y)  # positional arrays: arr_0, arr_1
    X2, y2 = load_npz(tmp_path / "p.npz", return_X_y=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_npz_explicit_keys_and_unlabelled(tmp_path):
    X = np.zeros((3, 8, 8), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=X, y_train=[1, 2, 3], x_test=X[:1])
    X_loaded, y = load_npz(
        tmp_path / "d.npz", data_key="x_train", target_key="y_train", return_X_y=True
    )
    assert X_loaded.shape == (3, 8, 8) and y.tolist() == [1, 2, 3]
    bunch = load_npz(tmp_path / "d.npz", data_key="x_test")
    assert bunch.target is None and bunch.data.shape == (1, 8, 8)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((3, 8, 8)), y_train=[1, 2, 3])
    with pytest.raises(ValueError, match=r"cannot guess .* holds \['x_train', 'y_train'\]"):
        load_npz(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=r"target_key='y' is not in .* holds"):
        load_npz(tmp_path / "d.npz", data_key="x_train", target_key="y")
    np.savez(tmp_path / "n.npz", X=np.zeros((3, 8, 8)), y=[1, 2])
    with pytest.raises(ValueError, match="holds 3 images but 'y' holds 2 labels"):
        load_npz(tmp_path / "n.npz")
    np.savez(tmp_path / "o.npz", X=np.zeros((2, 8, 8)), y=np.eye(2))
    with pytest.raises(ValueError, match="expected a 1D array of class labels"):
        load_npz(tmp_path / "o.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"single array \(\.npy\)"):
        load_npz(tmp_path / "a.npy")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"cannot be read as an \.npz archive"):
        load_npz(tmp_path / "junk.npz")


def test_damaged_npz_names_the_file(tmp_path):
    # BadZipFile ("File is not a zip file") without the file's name before
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match=re.escape(f"{str(damaged)!r} cannot be read as an .npz")):
        load_npz(damaged)
    np.savez(damaged, X=np.arange(400, dtype=np.uint8).reshape(4, 10, 10), y=[0, 1, 0, 1])
    content = bytearray(damaged.read_bytes())
    content[content.index(b"X.npy") + 200] ^= 0xFF  # one flipped byte in the images: bad CRC
    damaged.write_bytes(bytes(content))
    with pytest.raises(ValueError, match=re.escape(f"array 'X' of {str(damaged)!r} is damaged")):
        load_npz(damaged)


def test_npz_ragged_images_need_allow_pickle(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((32, 10), np.uint8), np.zeros((32, 20), np.uint8)
    np.savez(tmp_path / "r.npz", X=ragged, y=[0, 1])
    with pytest.raises(ValueError, match=r"object array .* allow_pickle=True"):
        load_npz(tmp_path / "r.npz")
    X, _ = load_npz(tmp_path / "r.npz", allow_pickle=True, return_X_y=True)
    assert [image.shape for image in check_image_batch(X)] == [(32, 10), (32, 20)]


# --------------------------------------------------------------------------------------------
# load_idx
# --------------------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip(tmp_path, gzipped):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    paths = []
    for name, array in [("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)]:
        raw = _idx_bytes(array, 0x08)
        path = tmp_path / (name + (".gz" if gzipped else ""))
        path.write_bytes(gzip.compress(raw) if gzipped else raw)
        paths.append(path)
    bunch = load_idx(*paths)
    np.testing.assert_array_equal(bunch.data, images)
    np.testing.assert_array_equal(bunch.target, labels)
    assert "5 images of 28x28" in bunch.DESCR
    X, y = load_idx(paths[0], return_X_y=True)
    assert X.shape == (5, 28, 28) and y is None


def test_idx_other_dtype_is_native_order(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (tmp_path / "f").write_bytes(_idx_bytes(data, 0x0D))
    loaded = load_idx(tmp_path / "f").data
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, data)


def test_idx_errors(tmp_path):
    images = np.zeros((3, 4, 4), np.uint8)
    good = _idx_bytes(images, 0x08)
    (tmp_path / "truncated").write_bytes(good[:-5])
    with pytest.raises(ValueError, match=r"truncated.*announces shape \(3, 4, 4\)"):
        load_idx(tmp_path / "truncated")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(ValueError, match="not a valid magic number"):
        load_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(ValueError, match="unknown IDX data type 0x07"):
        load_idx(tmp_path / "type")
    (tmp_path / "labels2d").write_bytes(_idx_bytes(np.zeros((3, 2), np.uint8), 0x08))
    (tmp_path / "images").write_bytes(good)
    with pytest.raises(ValueError, match="label file must be 1D"):
        load_idx(tmp_path / "images", tmp_path / "labels2d")
    with pytest.raises(ValueError, match="image file must be 3D"):
        load_idx(tmp_path / "labels2d")
    (tmp_path / "labels").write_bytes(_idx_bytes(np.zeros(2, np.uint8), 0x08))
    with pytest.raises(ValueError, match=r"holds 3 images but .* holds 2 labels"):
        load_idx(tmp_path / "images", tmp_path / "labels")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-8])
    with pytest.raises(ValueError, match="damaged gzip file"):
        load_idx(tmp_path / "bad.gz")


# --------------------------------------------------------------------------------------------
# load_digit_chars
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_chars():
    return load_digit_chars()


def test_digit_chars_shapes_and_dtype(digit_chars):
    assert len(digit_chars.data) == len(digit_chars.target) == len(digit_chars.clean_data)
    widths = [image.shape[1] for image in digit_chars.data]
    assert {image.shape[0] for image in digit_chars.data} == {32}
    assert min(widths) >= 9 and max(widths) <= 28
    assert max(widths) - min(widths) >= 10  # the widths really vary
    assert all(image.dtype == np.uint8 for image in digit_chars.data)
    assert digit_chars.target.dtype == np.int64
    assert digit_chars.target_names.tolist() == list(range(10))
    assert [c.shape for c in digit_chars.clean_data] == [d.shape for d in digit_chars.data]


def test_digit_chars_dark_ink_on_light_background(digit_chars):
    for image in digit_chars.clean_data[:50]:
        border = np.concatenate([image[0], image[-1]])
        assert np.median(border) > 150
        assert image.min() < 100


def test_digit_chars_long_tail(digit_chars):
    counts = np.bincount(digit_chars.target, minlength=10)
    full = np.bincount(load_digit_chars(rare_ratio=1.0, noise=False).target, minlength=10)
    assert full.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    for c in range(10):
        expected = round(0.1 * full[c]) if c in (2, 5, 8) else full[c]
        assert counts[c] == expected, c
    assert digit_chars.rare_classes.tolist() == [2, 5, 8]
    # a smaller ratio keeps a subset of the same images; the other classes do not change
    half = load_digit_chars(rare_ratio=0.5)
    for c in (2, 5, 8):
        kept = set(digit_chars.source_index[digit_chars.target == c])
        assert kept < set(half.source_index[half.target == c])
    common = np.isin(half.target, [2, 5, 8], invert=True)
    np.testing.assert_array_equal(
        half.source_index[common],
        digit_chars.source_index[np.isin(digit_chars.target, [2, 5, 8], invert=True)],
    )
    by_source = dict(zip(digit_chars.source_index.tolist(), digit_chars.data, strict=True))
    assert all(
        np.array_equal(image, by_source[source])
        for source, image in zip(half.source_index, half.data, strict=True)
        if source in by_source
    )
    y = load_digit_chars(rare_classes=[0], rare_ratio=0.25, noise=False).target
    assert np.bincount(y)[0] == round(0.25 * 178) and np.bincount(y)[2] == 177


def test_digit_chars_deterministic():
    a = load_digit_chars(random_state=3)
    b = load_digit_chars(random_state=3)
    c = load_digit_chars(random_state=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.data, b.data, strict=True))
    np.testing.assert_array_equal(a.target, b.target)
    assert not all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a.data, c.data, strict=False)
    )


def test_digit_chars_noise_switches(digit_chars):
    quiet = load_digit_chars(noise=False)
    assert all(np.array_equal(x, y) for x, y in zip(quiet.data, quiet.clean_data, strict=True))
    # switching noise off changes neither the selection nor the clean images
    np.testing.assert_array_equal(quiet.source_index, digit_chars.source_index)
    assert all(
        np.array_equal(x, y) for x, y in zip(quiet.clean_data, digit_chars.clean_data, strict=True)
    )
    changed = [
        not np.array_equal(x, y)
        for x, y in zip(digit_chars.data, digit_chars.clean_data, strict=True)
    ]
    assert np.mean(changed) > 0.9
    zero = load_digit_chars(noise_level=0)
    assert all(np.array_equal(x, y) for x, y in zip(zero.data, zero.clean_data, strict=True))


def test_digit_chars_noise_kinds(digit_chars):
    def mean_abs_noise(bunch):
        return np.mean(
            [
                np.abs(x.astype(int) - y).mean()
                for x, y in zip(bunch.data, bunch.clean_data, strict=True)
            ]
        )

    salt = load_digit_chars(noise=["salt_pepper"])
    # salt-and-pepper only sets pixels to pure black or white
    diffs = np.concatenate([x[x != y] for x, y in zip(salt.data, salt.clean_data, strict=True)])
    assert diffs.size and set(np.unique(diffs).tolist()) <= {0, 255}
    strong = load_digit_chars(noise_level=3.0)
    assert mean_abs_noise(strong) > mean_abs_noise(digit_chars) > mean_abs_noise(salt) > 0
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['gauss'\]"):
        load_digit_chars(noise=["gauss"])
    assert set(NOISE_KINDS) == {"shading", "strokes", "blobs", "blur", "salt_pepper"}


def test_digit_chars_balanced_test_split():
    X_train, X_test, y_train, y_test = load_digit_chars(test_size_per_class=20, return_X_y=True)
    assert np.bincount(y_test).tolist() == [20] * 10
    assert len(X_test) == 200 and len(X_train) == len(y_train)
    bunch = load_digit_chars(test_size_per_class=20)
    assert not set(bunch.source_index_test) & set(bunch.source_index)
    # rare classes are thinned from what is left after the test digits are held out
    assert np.bincount(bunch.target)[2] == round(0.1 * (177 - 20))
    # the test set does not depend on the thinning, so balanced and long-tailed runs compare
    balanced = load_digit_chars(test_size_per_class=20, rare_ratio=1.0)
    np.testing.assert_array_equal(balanced.source_index_test, bunch.source_index_test)
    assert all(
        np.array_equal(x, y) for x, y in zip(balanced.data_test, bunch.data_test, strict=True)
    )
    assert len(bunch.clean_data_test) == 200
    with pytest.raises(ValueError, match="test_size_per_class=174 leaves no training digit"):
        load_digit_chars(test_size_per_class=174)


def test_digit_chars_n_samples_per_class():
    small = load_digit_chars(n_samples_per_class=50, rare_ratio=0.2, noise=False)
    counts = np.bincount(small.target)
    assert counts.tolist() == [50, 50, 10, 50, 50, 10, 50, 50, 10, 50]
    assert len(set(small.source_index)) == len(small.source_index)  # no repeats
    big = load_digit_chars(n_samples_per_class=250, rare_classes=(), test_size_per_class=10)
    assert np.bincount(big.target).tolist() == [250] * 10
    # variants re-render training digits only, never held-out test digits
    assert not set(big.source_index) & set(big.source_index_test)
    widths = [image.shape[1] for image in big.data]
    assert min(widths) >= 9 and max(widths) <= 28


def test_digit_chars_parameter_errors():
    with pytest.raises(ValueError, match="rare_ratio"):
        load_digit_chars(rare_ratio=0)
    with pytest.raises(ValueError, match=r"rare_classes must hold digits 0 to 9, got \[12\]"):
        load_digit_chars(rare_classes=[12])


def test_digit_chars_is_fast_and_fits_the_contract():
    start = time.perf_counter()
    X, y = load_digit_chars(return_X_y=True)
    assert time.perf_counter() - start < 5.0  # about 1 s on a busy 2-core machine
    batch = check_image_batch(X)
    assert len(batch) == len(y) and batch[0].dtype == np.uint8


# --------------------------------------------------------------------------------------------
# load_font_chars
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def font_chars():
    return load_font_chars()


def _same_images(a, b) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )


def test_font_chars_shapes_dtype_and_widths(font_chars):
    n = len(font_chars.data)
    assert n == len(font_chars.target) == len(font_chars.clean_data) == 1000
    assert {image.shape[0] for image in font_chars.data} == {32}
    assert all(image.dtype == np.uint8 for image in font_chars.data)
    widths = [image.shape[1] for image in font_chars.data]
    assert min(widths) >= 9 and max(widths) <= 40 and max(widths) - min(widths) >= 15
    assert [c.shape for c in font_chars.clean_data] == [d.shape for d in font_chars.data]
    assert font_chars.target.dtype == np.int64
    assert font_chars.target_names.tolist() == list("0123456789ABCDEFGHJK")
    faces = {cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX}
    assert faces <= set(font_chars.font.tolist())
    assert (font_chars.font & cv2.FONT_ITALIC).any()
    assert "Font characters" in font_chars.DESCR and "per class" in font_chars.DESCR
    # every glyph, narrow ones included: "l" and "I" are padded to the minimum width
    every = load_font_chars(n_classes=62, imbalance_ratio=1, n_samples=124)
    assert np.bincount(every.target).tolist() == [2] * 62
    assert "".join(every.target_names) == FONT_GLYPHS and len(set(FONT_GLYPHS)) == 62
    bars = [FONT_GLYPHS.index(glyph) for glyph in "Il"]
    narrow = [x.shape[1] for x, c in zip(every.data, every.target, strict=True) if c in bars]
    assert min(narrow) < 12
    assert all(9 <= x.shape[1] <= 40 for x in every.data)


def test_font_chars_class_counts_follow_the_ratio(font_chars):
    counts = np.bincount(font_chars.target)
    assert counts.sum() == 1000 and len(counts) == 20
    assert np.all(np.diff(counts) <= 0)
    assert (counts[0], counts[-1]) == (99, 20)
    # an exponential profile: log-counts fall on a line from the largest to the smallest
    profile = 5.0 ** (-np.arange(20) / 19)
    np.testing.assert_allclose(counts, 1000 * profile / profile.sum(), atol=1)
    y = load_font_chars(n_classes=30, imbalance_ratio=20, n_samples=1500, noise=False).target
    counts = np.bincount(y)
    assert counts.sum() == 1500 and np.all(np.diff(counts) <= 0)
    assert counts[0] / counts[-1] == pytest.approx(20, rel=0.05)
    balanced = load_font_chars(imbalance_ratio=1, n_samples=200, noise=False).target
    assert np.bincount(balanced).tolist() == [10] * 20
    # the large variant: 40 classes, ratio 100; here too small for the ratio, so the smallest
    # classes are raised to 2 images and the total exceeds n_samples a little
    large = load_font_chars(variant="large", n_samples=400, noise=False)
    counts = np.bincount(large.target)
    assert len(counts) == 40 and counts.min() == 2 and 400 < counts.sum() < 420
    assert "asked: 100" in large.DESCR


def test_font_chars_deterministic():
    a = load_font_chars(n_samples=120, random_state=3)
    b = load_font_chars(n_samples=120, random_state=3)
    c = load_font_chars(n_samples=120, random_state=4)
    assert _same_images(a.data, b.data) and _same_images(a.clean_data, b.clean_data)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.font, b.font)
    assert not _same_images(a.data, c.data)
    rng = np.random.RandomState(7)
    assert _same_images(
        load_font_chars(n_samples=60, random_state=rng).data,
        load_font_chars(n_samples=60, random_state=np.random.RandomState(7)).data,
    )


def test_font_chars_both_polarities(font_chars):
    flags = font_chars.light_on_dark
    assert flags.dtype == bool and 0.15 < flags.mean() < 0.35
    for image, flipped in zip(font_chars.clean_data, flags, strict=True):
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert (np.median(border) < 128) == flipped
    assert not load_font_chars(n_samples=100, light_on_dark=0.0).light_on_dark.any()
    assert load_font_chars(n_samples=100, light_on_dark=1.0).light_on_dark.all()


def test_font_chars_image_does_not_depend_on_the_others():
    small = load_font_chars(n_samples=200)
    big = load_font_chars(n_classes=25, imbalance_ratio=2, n_samples=1000)
    assert np.bincount(big.target)[0] < 2 * np.bincount(big.target)[-1]
    by_key = {
        (c, k): image
        for c, k, image in zip(big.target, big.sample_index, big.data, strict=True)
    }
    for c, k, image in zip(small.target, small.sample_index, small.data, strict=True):
        assert np.array_equal(by_key[c, k], image), (c, k)
    # the order is random but kept: the small set is a subsequence of the big one
    position = {key: i for i, key in enumerate(zip(big.target, big.sample_index, strict=True))}
    places = [position[key] for key in zip(small.target, small.sample_index, strict=True)]
    assert places == sorted(places)
    assert len(set(small.target[:20].tolist())) > 5  # the classes are mixed, not in blocks


def test_font_chars_noise_switches(font_chars):
    quiet = load_font_chars(noise=False)
    assert _same_images(quiet.data, quiet.clean_data)
    # switching noise off leaves the clean images unchanged
    assert _same_images(quiet.clean_data, font_chars.clean_data)
    changed = [
        not np.array_equal(x, y)
        for x, y in zip(font_chars.data, font_chars.clean_data, strict=True)
    ]
    assert np.mean(changed) > 0.9
    zero = load_font_chars(n_samples=100, noise_level=0)
    assert _same_images(zero.data, zero.clean_data)
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['gauss'\]"):
        load_font_chars(noise=["gauss"])


def test_font_chars_balanced_test_set():
    X, X_test, y, y_test = load_font_chars(
        n_samples=100, test_size_per_class=3, return_X_y=True
    )
    assert np.bincount(y_test).tolist() == [3] * 20 and len(X_test) == 60
    assert len(X) == len(y) == 100
    bunch = load_font_chars(n_samples=100, test_size_per_class=3)
    other = load_font_chars(n_samples=300, imbalance_ratio=50, test_size_per_class=3)
    assert _same_images(bunch.data_test, other.data_test)
    # test images come from streams of their own: image k of class c differs from the
    # training image k of class c
    keys = zip(bunch.target, bunch.sample_index, strict=True)
    train = dict(zip(keys, bunch.clean_data, strict=True))
    test_keys = zip(bunch.target_test, bunch.sample_index_test, strict=True)
    pairs = [
        (train[key], image)
        for key, image in zip(test_keys, bunch.clean_data_test, strict=True)
        if key in train
    ]
    assert len(pairs) > 50
    assert not any(a.shape == b.shape and np.array_equal(a, b) for a, b in pairs)
    assert {"clean_data_test", "light_on_dark_test", "font_test", "sample_index_test"} <= set(
        bunch
    )


def test_font_chars_parameter_errors():
    with pytest.raises(ValueError, match=r"n_samples=30 is too small for 20 classes.*>= 40"):
        load_font_chars(n_samples=30)
    with pytest.raises(ValueError, match="n_classes"):
        load_font_chars(n_classes=63)
    with pytest.raises(ValueError, match="imbalance_ratio"):
        load_font_chars(imbalance_ratio=0.5)
    with pytest.raises(ValueError, match="variant"):
        load_font_chars(variant="medium")
    with pytest.raises(ValueError, match="light_on_dark"):
        load_font_chars(light_on_dark=1.5)


def test_font_chars_is_fast_and_fits_the_contract():
    start = time.process_time()
    X, y = load_font_chars(n_samples=500, return_X_y=True)
    assert time.process_time() - start < 5.0  # about 0.2 s of one core
    batch = check_image_batch(X)
    assert len(batch) == len(y) == 500 and batch[0].dtype == np.uint8
