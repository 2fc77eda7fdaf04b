"""The command line: analyze / train / evaluate / predict / report, end to end and on errors."""

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile

import cv2
import numpy as np
import pytest

from skcharclf import cli
from skcharclf.cli import _demo, _train, main
from skcharclf.cli._apply import read_images
from skcharclf.cli._common import CommandError, progress_verbosity, table
from skcharclf.cli._train import build_pipeline
from skcharclf.diagnostics import format_findings
from skcharclf.persistence import load_pipeline

CLASSES = ["bar", "box", "dash"]
N_PER_CLASS = 15
# The smallest pipeline that still runs every step: 16x16 inputs, a 4-8 filter network, 1 epoch;
# both kinds of keys: make_char_pipeline arguments and pipeline parameters.
TINY_CONFIG = {"size": [16, 16], "epochs": 2, "clf__filters": [4, 8], "denoise__ksize": 3}


def _character(label: str, rng: np.random.Generator) -> np.ndarray:
    """A 16x10 dark-on-light shape with a random shift and salt-and-pepper noise."""
    image = np.full((16, 10), 230, np.uint8)
    if label == "bar":
        cv2.line(image, (5, 2), (5, 13), 30, 2)
    elif label == "box":
        cv2.rectangle(image, (2, 3), (7, 12), 30, 1)
    else:
        cv2.line(image, (1, 8), (8, 8), 30, 2)
    image = np.roll(image, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    image[rng.random(image.shape) < 0.03] = 0
    return image


def _write_folder(root, n_per_class=N_PER_CLASS, seed=0):
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        (root / label).mkdir(parents=True)
        for k in range(n_per_class):
            assert cv2.imwrite(str(root / label / f"{k:03d}.png"), _character(label, rng))
    return root


def _run(argv):
    """``main(argv)`` with its output captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def _error_line(capsys, argv, status=2):
    """Run ``main`` expecting ``status`` and exactly one line on stderr; return that line."""
    assert main([str(a) for a in argv]) == status
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("data") / "chars")


@pytest.fixture
def config_file(tmp_path):
    def write(config, name="config.json"):
        path = tmp_path / name
        path.write_text(json.dumps(config) if name.endswith(".json") else config)
        return path

    return write


# --------------------------------------------------------------------------------------------
# End to end: train -> evaluate --report -> predict -> report
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("model")
    config = folder / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    model = folder / "chars.skc"
    argv = ["train", data_dir, "--config", config, "--out", model, "--random-state", 0]
    status, out, err = _run([*argv, "--epochs", 1])  # --epochs overrides the config's 2
    return {"status": status, "out": out, "err": err, "model": model, "folder": folder}


@pytest.mark.slow
def test_train_prints_each_phase_and_the_diagnosis(trained, data_dir):
    assert trained["status"] == 0, trained["err"]
    assert trained["err"] == ""
    lines = trained["out"].splitlines()
    assert lines[0] == (
        f"Loaded 45 images in 3 classes from {str(data_dir)!r} (bar: 15, box: 15, dash: 15)"
    )
    assert lines[1] == (
        "Pipeline: denoise=Denoiser -> resize=ImageResizer -> augment=RareClassAugmenter "
        "-> clf=KerasCharClassifier"
    )
    assert lines[2] == "Training for 1 epoch(s) ..."
    # progress by default: stdout is not a terminal here, so one line per epoch (Keras
    # heads it with "Epoch k/n" from two epochs on)
    assert re.match(r"\d+/\d+ - .* - loss: \d", lines[3])
    assert lines[4] == "Diagnosis of the learning curves"
    end = next(k for k, line in enumerate(lines) if line.startswith("Trained in "))
    model = load_pipeline(trained["model"])  # which recomputes the diagnosis from the history
    assert "\n".join(lines[5:end]) == format_findings(model.named_steps["clf"].diagnosis_)
    assert lines[end].endswith(" s")
    assert lines[end + 1:] == [
        f"Saved the model to {str(trained['model'])!r} (without the training-only step(s) augment)"
    ]


@pytest.mark.slow
def test_train_quiet_prints_no_progress_and_the_diagnosis_at_the_end(data_dir, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY_CONFIG, "epochs": 4}))
    model = tmp_path / "m.skc"
    status, out, err = _run(["train", data_dir, "--config", config, "--out", model, "--quiet"])
    assert (status, err) == (0, "")  # the no-validation warning is in the diagnosis instead
    lines = out.splitlines()
    assert lines[3].startswith("Trained in ") and not any("Epoch" in line for line in lines)
    assert lines[6] == "Diagnosis of the learning curves"
    findings = load_pipeline(model).named_steps["clf"].diagnosis_
    assert "no_validation" in [finding.code for finding in findings]
    assert "\n".join(lines[7:]) == format_findings(findings)
    assert "Overfitting cannot be judged" in out


@pytest.mark.slow
def test_model_file_is_a_pickle_free_archive(trained):
    with zipfile.ZipFile(trained["model"]) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read("skcharclf.json"))
    assert names == ["skcharclf.json", "classifier/model.keras"]
    assert metadata["format"] == "skcharclf-model" and metadata["format_version"] == 2
    assert metadata["classes"] == CLASSES
    assert [(s["name"], s["class"]) for s in metadata["steps"]] == [
        ("denoise", "Denoiser"),
        ("resize", "ImageResizer"),
    ]
    assert metadata["steps"][0]["params"]["ksize"] == 3
    assert metadata["steps"][1]["params"]["size"] == {"__tuple__": [16, 16]}
    assert metadata["dropped_steps"] == [{"name": "augment", "class": "RareClassAugmenter"}]
    classifier = metadata["classifier"]
    assert classifier["class"] == "KerasCharClassifier"
    assert classifier["params"]["epochs"] == 1
    assert classifier["params"]["filters"] == [4, 8]
    assert classifier["params"]["random_state"] == 0  # from --random-state


@pytest.mark.slow
def test_evaluate_prints_scores_and_writes_report(trained, data_dir, capsys):
    report = trained["folder"] / "evaluate.html"
    assert main(["evaluate", str(trained["model"]), str(data_dir), "--report", str(report)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == f"Evaluated on 45 images in 3 classes from {str(data_dir)!r} " + (
        "(bar: 15, box: 15, dash: 15)"
    )
    scores = {}
    for line in lines[2:5]:
        name, value = line.rsplit(maxsplit=1)
        scores[name] = float(value)
    assert list(scores) == ["accuracy", "balanced accuracy", "macro-F1"]
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    # every class has 15 images, so balanced accuracy equals accuracy
    assert scores["balanced accuracy"] == pytest.approx(scores["accuracy"], abs=1e-3)
    assert lines[6].split() == ["class", "precision", "recall", "F1", "support"]
    rows = [line.split() for line in lines[8:11]]
    assert [row[0] for row in rows] == CLASSES
    assert [row[4] for row in rows] == ["15", "15", "15"]
    recalls = [float(row[2]) for row in rows]
    assert np.mean(recalls) == pytest.approx(scores["balanced accuracy"], abs=2e-3)
    assert lines[-1] == f"Wrote the report to {str(report)!r}"
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "data:image/png;base64," in html


@pytest.mark.slow
def test_predict_writes_csv_with_probabilities(trained, data_dir, tmp_path, capsys):
    output = tmp_path / "preds.csv"
    argv = ["predict", str(trained["model"]), str(data_dir), "--proba", "--output", str(output)]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"Wrote 45 predictions to {str(output)!r}\n"
    with output.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "prediction", "proba_bar", "proba_box", "proba_dash"]
    assert len(rows) == 1 + 45
    paths = [row[0] for row in rows[1:]]
    assert paths == sorted(str(p) for p in data_dir.rglob("*.png"))
    proba = np.array([[float(v) for v in row[2:]] for row in rows[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    predicted = [row[1] for row in rows[1:]]
    assert predicted == [CLASSES[k] for k in proba.argmax(axis=1)]


@pytest.mark.slow
def test_predict_single_file_to_stdout(trained, data_dir, capsys):
    image = data_dir / "box" / "000.png"
    assert main(["predict", str(trained["model"]), str(image)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "prediction"]
    assert len(rows) == 2 and rows[1][0] == str(image) and rows[1][1] in CLASSES


@pytest.mark.slow
def test_report_with_training_data(trained, data_dir, capsys):
    out = trained["folder"] / "report.html"
    argv = ["report", trained["model"], data_dir, "--train", data_dir, "--out", out]
    assert main([str(a) for a in argv]) == 0
    assert capsys.readouterr().out == f"Wrote the report to {str(out)!r}\n"
    html = out.read_text(encoding="utf-8")
    assert "<img" in html and "KerasCharClassifier" in html


@pytest.mark.slow
def test_evaluate_rejects_labels_the_model_does_not_know(trained, tmp_path, capsys):
    other = tmp_path / "other"
    (other / "zigzag").mkdir(parents=True)
    cv2.imwrite(str(other / "zigzag" / "0.png"), np.zeros((16, 10), np.uint8))
    line = _error_line(capsys, ["evaluate", trained["model"], other])
    assert line == (
        f"skcharclf evaluate: error: data {str(other)!r} has labels the model does not know: "
        "[zigzag]; the model's classes are [bar, box, dash]."
    )


# --------------------------------------------------------------------------------------------
# analyze
# --------------------------------------------------------------------------------------------


def test_analyze_prints_the_dataset_analysis(data_dir, capsys):
    assert main(["analyze", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("Dataset analysis: 45 images, 3 classes")


def test_analyze_json(data_dir, capsys):
    assert main(["analyze", str(data_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_samples"] == 45
    assert report["class_counts"] == {"bar": 15, "box": 15, "dash": 15}
    assert report["width"]["min"] == report["width"]["max"] == 10


def test_analyze_finds_test_images_copied_from_training(data_dir, capsys):
    assert main(["analyze", str(data_dir), "--test", str(data_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_test_samples"] == 45
    assert len(report["test_exact_duplicates"]) == 45


def test_analyze_labels_from_file_names(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for k in range(4):
        cv2.imwrite(str(tmp_path / f"x_{k}.png"), _character("bar", rng))
        cv2.imwrite(str(tmp_path / f"y_{k}.png"), _character("box", rng))
    assert main(["analyze", str(tmp_path), "--labels", "filename", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["class_counts"] == {"x": 4, "y": 4}


def test_analyze_npz_and_idx(tmp_path, capsys):
    rng = np.random.default_rng(2)
    images = np.stack([_character(CLASSES[k % 3], rng) for k in range(12)])
    labels = np.arange(12) % 3
    np.savez(tmp_path / "chars.npz", X=images, y=labels)
    assert main(["analyze", str(tmp_path / "chars.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["class_counts"] == {"0": 4, "1": 4, "2": 4}

    # MNIST layout: the labels file beside the images file is found by its name
    header = np.array([12, 16, 10], ">u4").tobytes()
    images_file = tmp_path / "train-images-idx3-ubyte.gz"
    images_file.write_bytes(gzip.compress(b"\0\0\x08\x03" + header + images.tobytes()))
    label_header = b"\0\0\x08\x01" + np.array([12], ">u4").tobytes()
    labels_file = tmp_path / "train-labels-idx1-ubyte.gz"
    labels_file.write_bytes(gzip.compress(label_header + labels.astype(np.uint8).tobytes()))
    assert main(["analyze", str(images_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 12
    moved = labels_file.rename(tmp_path / "labels.gz")
    assert main(["analyze", str(images_file), "--idx-labels", str(moved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["class_counts"] == {"0": 4, "1": 4, "2": 4}


def test_analyze_warns_in_one_line_on_skipped_files(tmp_path, capsys):
    root = _write_folder(tmp_path / "chars", n_per_class=3)
    (root / "bar" / "broken.png").write_bytes(b"not a png")
    assert main(["analyze", str(root), "--on-error", "warn"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "skcharclf analyze: warning: 1 file(s) skipped (unreadable, or name not matching the "
        f"label pattern): {root / 'bar' / 'broken.png'}\n"
    )
    assert captured.out.startswith("Dataset analysis: 9 images, 3 classes")


# --------------------------------------------------------------------------------------------
# Error paths: one line on stderr, exit status 2
# --------------------------------------------------------------------------------------------


def test_missing_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    line = _error_line(capsys, ["analyze", missing])
    assert line == f"skcharclf analyze: error: data {str(missing)!r} does not exist."


def test_empty_folder(tmp_path, capsys):
    line = _error_line(capsys, ["train", tmp_path, "--out", tmp_path / "m.skc"])
    assert line == f"skcharclf train: error: {str(tmp_path)!r} has no class sub-folder."


def test_corrupt_image_stops_by_default(tmp_path, capsys):
    root = _write_folder(tmp_path / "chars", n_per_class=2)
    bad = root / "box" / "zz.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    line = _error_line(capsys, ["analyze", root])
    assert line.startswith(f"skcharclf analyze: error: {str(bad)!r}: it cannot be read as an image")


def test_data_without_labels(tmp_path, capsys):
    np.savez(tmp_path / "unlabelled.npz", X=np.zeros((3, 8, 8), np.uint8))
    line = _error_line(capsys, ["analyze", tmp_path / "unlabelled.npz"])
    assert line.endswith(
        "holds images but no labels; store them as an array named 'y', 'target' or 'labels'."
    )
    header = b"\0\0\x08\x03" + np.array([3, 8, 8], ">u4").tobytes()
    (tmp_path / "images.idx").write_bytes(header + bytes(3 * 64))
    line = _error_line(capsys, ["analyze", tmp_path / "images.idx"])
    assert line.endswith("holds images but no labels; pass --idx-labels FILE.")


def test_flat_folder_suggests_the_labels_option(tmp_path, capsys):
    folder = tmp_path / "flat"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "bar_001.png"), np.zeros((8, 8), np.uint8))
    for command in (["analyze", folder], ["train", folder, "--out", tmp_path / "m.skc"]):
        line = _error_line(capsys, command)
        assert line == (
            f"skcharclf {command[0]}: error: {str(folder)!r} has no class sub-folder. It holds "
            "image files directly: pass --labels filename to read the labels from "
            "'<label>_<id>.png' file names."
        )
    assert main(["analyze", str(folder), "--labels", "filename"]) == 0


def test_single_image_or_other_file_is_not_a_data_set(tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8), np.uint8))
    line = _error_line(capsys, ["analyze", image])
    assert line == (
        f"skcharclf analyze: error: data {str(image)!r} is a single image; give a folder of "
        "labelled images, an .npz archive or an IDX file."
    )
    table = tmp_path / "labels.csv"
    table.write_text("path,label\n")
    line = _error_line(capsys, ["analyze", table])
    assert line.startswith(
        f"skcharclf analyze: error: data {str(table)!r} is not a folder, an .npz archive or a "
        f"valid IDX file: {str(table)!r} is not an IDX file"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"just some text", "not a zip archive"),
        (None, "a zip archive without skcharclf.json"),
        ({"format": "something-else"}, "format 'something-else', expected 'skcharclf-model'"),
    ],
)
def test_not_a_model_file(tmp_path, data_dir, capsys, content, reason):
    model = tmp_path / "model.skc"
    if isinstance(content, bytes):
        model.write_bytes(content)
    else:
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("other.txt", "hello")
            if content is not None:
                archive.writestr("skcharclf.json", json.dumps(content))
    for argv in (
        ["evaluate", model, data_dir],
        ["predict", model, data_dir],
        ["report", model, data_dir, "--out", tmp_path / "r.html"],
    ):
        line = _error_line(capsys, argv)
        assert line == (
            f"skcharclf {argv[0]}: error: {str(model)!r} is not a skcharclf model file ({reason})."
        )


def test_missing_model_file(tmp_path, data_dir, capsys):
    line = _error_line(capsys, ["evaluate", tmp_path / "none.skc", data_dir])
    assert line == (
        f"skcharclf evaluate: error: model file {str(tmp_path / 'none.skc')!r} does not exist."
    )


@pytest.mark.parametrize(
    ("key", "guess"),
    [("clf__lerning_rate", "clf__learning_rate"), ("epoch", "epochs"), ("sizes", "size")],
)
def test_bad_config_key(data_dir, tmp_path, config_file, capsys, key, guess):
    config = config_file({**TINY_CONFIG, key: 1})
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line.startswith(
        f"skcharclf train: error: unknown config key {key!r} (did you mean {guess!r}?); valid "
        "keys are make_char_pipeline arguments (denoise, size, "
    )
    assert line.endswith(
        "KerasCharClassifier parameters (epochs, learning_rate, ...) and pipeline parameters "
        "<step>__<parameter> with the steps denoise, resize, augment, clf."
    )
    assert not (tmp_path / "m").exists()


def test_bad_config_value(data_dir, tmp_path, config_file, capsys):
    config = config_file({"clf__loss": "svm"})
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line.startswith("skcharclf train: error: ")
    assert "loss" in line and "'svm'" in line


def test_options_override_the_config():
    config = {"random_state": 1, "clf__verbose": 0, "augment": None, "epochs": 5}
    args = argparse.Namespace(epochs=3, random_state=7, verbose=True, quiet=False)
    pipeline = build_pipeline(config, args)
    assert [name for name, _ in pipeline.steps] == ["denoise", "resize", "clf"]
    params = pipeline.get_params()
    assert params["clf__epochs"] == 3
    assert params["clf__random_state"] == 7
    assert params["clf__verbose"] == 1
    quiet = argparse.Namespace(epochs=None, random_state=7, verbose=False, quiet=True)
    pipeline = build_pipeline({"random_state": 1}, quiet)
    assert pipeline.get_params()["augment__random_state"] == 7
    assert pipeline.get_params()["clf__verbose"] == 0
    # without an option the config's verbosity stands
    neither = argparse.Namespace(epochs=None, random_state=None, verbose=False, quiet=False)
    assert build_pipeline({"clf__verbose": 0}, neither).get_params()["clf__verbose"] == 0


@pytest.mark.parametrize(
    ("quiet", "verbose", "tty", "expected"),
    [
        (False, False, False, 2),  # a log file or a pipe: one line per epoch
        (False, False, True, 1),  # a terminal: Keras's progress bar
        (True, False, True, 0),
        (False, True, False, 1),
    ],
)
def test_progress_is_shown_by_default(monkeypatch, quiet, verbose, tty, expected):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty, raising=False)
    args = argparse.Namespace(quiet=quiet, verbose=verbose)
    assert progress_verbosity(args) == expected
    train = argparse.Namespace(epochs=None, random_state=None, **vars(args))
    assert build_pipeline({}, train).get_params()["clf__verbose"] == expected
    demo = argparse.Namespace(quick=True, random_state=0, n_jobs=1, **vars(args))
    assert _demo._demo_cnn(demo).get_params()["clf__verbose"] == expected


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert main(["train", "data", "--out", "m.skc", "--quiet", "--verbose"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_warnings_print_once_per_command_and_no_validation_goes_to_the_diagnosis(capsys):
    from skcharclf.diagnostics import NoValidationWarning

    with cli._warnings_as_lines("skcharclf evaluate"):
        for _ in range(2):  # evaluate scores the predictions, and its report does again
            warnings.warn("y_pred contains classes not in y_true", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
        warnings.warn("trained 20 epochs without a validation set", NoValidationWarning,
                      stacklevel=1)
    assert capsys.readouterr().err == (
        "skcharclf evaluate: warning: y_pred contains classes not in y_true\n"
        "skcharclf evaluate: warning: something else\n"
    )


def test_yaml_config_is_read(data_dir, tmp_path, config_file, capsys):
    pytest.importorskip("yaml")
    config = config_file("clf__epochs: 1\nresize__mood: pad\n", name="config.yaml")
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert "unknown config key 'resize__mood' (did you mean 'resize__mode'?)" in line


def test_yaml_config_without_pyyaml(data_dir, tmp_path, config_file, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    config = config_file("clf__epochs: 1\n", name="config.yml")
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line == (
        f"skcharclf train: error: reading the YAML config {str(config)!r} needs PyYAML: "
        "install it with 'pip install pyyaml', or write the config as JSON."
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("config.json", "[1, 2]", "must hold a mapping of parameter names to values, not a list"),
        ("config.json", "{oops", "is not valid JSON"),
        ("config.toml", "x = 1", "must end in .json, .yaml or .yml, not '.toml'"),
    ],
)
def test_unreadable_config(data_dir, tmp_path, name, text, message, capsys):
    config = tmp_path / name
    config.write_text(text)
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line.startswith(f"skcharclf train: error: config file {str(config)!r} ")
    assert message in line


def test_output_folder_must_exist(data_dir, tmp_path, capsys):
    out = tmp_path / "missing" / "m.skc"
    line = _error_line(capsys, ["train", data_dir, "--out", out])
    assert line == f"skcharclf train: error: the folder of --out {str(out)!r} does not exist."


def test_predict_folder_without_images(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no images here")
    (tmp_path / ".hidden").mkdir()
    cv2.imwrite(str(tmp_path / ".hidden" / "a.png"), np.zeros((8, 8), np.uint8))
    # the images are read before the (slower) model: this fails before the model is looked at
    line = _error_line(capsys, ["predict", tmp_path / "m.skc", tmp_path])
    assert line == (
        "skcharclf predict: error: no image file (png, jpg, jpeg, bmp, tif, tiff) in "
        f"{str(tmp_path)!r}."
    )


def test_usage_errors(tmp_path, capsys):
    assert main(["train", str(tmp_path)]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--labels", "sideways"]) == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--out", "m", "--epochs", "0"]) == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_unexpected_errors_exit_1_with_traceback_under_debug(data_dir, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("skcharclf.diagnostics.analyze_dataset", broken)
    line = _error_line(capsys, ["analyze", data_dir], status=1)
    assert line == (
        "skcharclf analyze: unexpected error: RuntimeError: something broke (run with --debug "
        "to see the traceback)"
    )
    for argv in (["--debug", "analyze", data_dir], ["analyze", data_dir, "--debug"]):
        assert main([str(a) for a in argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):")
        assert err.endswith("skcharclf analyze: unexpected error: RuntimeError: something broke\n")


def test_a_value_error_inside_skcharclf_is_a_bug_not_the_users(data_dir, monkeypatch, capsys):
    # a ValueError that Python raises in skcharclf's own code (zip(..., strict=True) on rows
    # of the wrong length) used to be reported as an input error with status 2
    monkeypatch.setattr(
        "skcharclf.diagnostics.analyze_dataset", lambda *a, **k: table(["a"], [["x", "y"]])
    )
    line = _error_line(capsys, ["analyze", data_dir], status=1)
    assert line.startswith("skcharclf analyze: unexpected error: ValueError: zip() argument 2")
    assert line.endswith("(run with --debug to see the traceback)")


def test_parameter_checks_at_fit_are_input_errors(data_dir, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "denoise__ksize": 10001}))
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line == (
        "skcharclf train: error: The 'ksize' parameter of Denoiser must be an int in the range "
        "[3, 31]. Got 10001 instead."
    )


def test_config_that_is_not_utf8(data_dir, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_bytes('{"epochs": 2, "note": "café"}'.encode("latin-1"))
    line = _error_line(capsys, ["train", data_dir, "--config", config, "--out", tmp_path / "m"])
    assert line == (
        f"skcharclf train: error: config file {str(config)!r} is not UTF-8 text (byte 26 "
        "cannot be decoded); save it as UTF-8."
    )


def _refuse_under(monkeypatch, folder):
    """Make ``os.open`` refuse paths under ``folder`` (root ignores read-only modes)."""
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)


def test_read_only_output_folder_fails_before_training(data_dir, tmp_path, monkeypatch, capsys):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    _refuse_under(monkeypatch, read_only)
    monkeypatch.setattr(_train, "_fit", lambda *a: pytest.fail("trained before checking --out"))
    out = read_only / "m.skc"
    line = _error_line(capsys, ["train", data_dir, "--out", out])
    assert line == (
        f"skcharclf train: error: --out {str(out)!r} cannot be written (Permission denied)."
    )


def test_damaged_npz_is_an_input_error(tmp_path, capsys):
    damaged = tmp_path / "d.npz"
    damaged.write_bytes(b"PK\x03\x04" + bytes(64))
    line = _error_line(capsys, ["analyze", damaged])
    assert line.startswith(f"skcharclf analyze: error: {str(damaged)!r} cannot be read as an .npz")


def test_unopenable_and_special_files_are_skipped(tmp_path, monkeypatch, capsys):
    root = _write_folder(tmp_path / "chars", n_per_class=3)
    os.mkfifo(root / "box" / "fifo.png")
    locked = root / "bar" / "000.png"
    _refuse_under(monkeypatch, locked)
    # the loader of train / analyze / evaluate / report
    assert main(["analyze", str(root), "--on-error", "skip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 8
    # the reader of predict
    with pytest.warns(UserWarning, match="2 unreadable file") as record:
        files, images = read_images(root, "warn")
    assert len(files) == len(images) == 8
    assert str(locked) in str(record[0].message) and "fifo.png" in str(record[0].message)
    with pytest.raises(CommandError, match=re.escape(
        f"{str(locked)!r}: it cannot be opened (Permission denied). Pass --on-error"
    )):
        read_images(root, "raise")


def test_max_pixels_option(data_dir, capsys):
    line = _error_line(capsys, ["analyze", data_dir, "--max-pixels", "159"])
    assert "it has 16 x 10 pixels, more than max_pixels=159" in line
    assert main(["analyze", str(data_dir), "--max-pixels", "160"]) == 0


def test_predict_refuses_a_huge_image_before_decoding(tmp_path):
    huge = tmp_path / "huge.png"
    assert cv2.imwrite(str(huge), np.zeros((2100, 2100), np.uint8))
    with pytest.raises(CommandError, match=re.escape(
        f"{str(huge)!r}: it has 2100 x 2100 pixels, more than max_pixels=4194304"
    )):
        read_images(huge, "raise")
    assert read_images(huge, "raise", max_pixels=2100 * 2100)[1][0].shape == (2100, 2100)


def test_closed_output_pipe_ends_quietly(data_dir, monkeypatch, capsys):
    class ClosedPipe(io.StringIO):  # stdout of `skcharclf analyze DATA | head -1`
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["analyze", str(data_dir)]) == 0
    assert capsys.readouterr().err == ""


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "skcharclf", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for command in ("demo", "analyze", "train", "evaluate", "predict", "report"):
        assert f"    {command} " in result.stdout
