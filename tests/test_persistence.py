"""Pickle-free model files: save_pipeline / load_pipeline."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import StandardScaler

from skcharclf.augmentation import RareClassAugmenter
from skcharclf.persistence import _decode, _encode, load_model, load_pipeline, save_pipeline
from skcharclf.preprocessing import Denoiser, ImageResizer

SHAPE = (16, 10)
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def data():
    """A flat batch of 16x10 images (so the first steps learn ``n_features_in_``)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), [20, 12, 6])
    X = rng.random((len(y), SHAPE[0] * SHAPE[1])).astype(np.float32) * 0.2
    for k, label in enumerate("abc"):
        X[y == label, 20 * k : 20 * k + 30] += 0.7  # each class its own bright band
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    from skcharclf.classifier import KerasCharClassifier

    pipeline = ImbPipeline(
        [
            ("denoise", Denoiser(method=["median", "sharpen"], image_shape=SHAPE)),
            ("resize", ImageResizer(size=(16, 16), image_shape=SHAPE)),
            ("augment", RareClassAugmenter(image_shape=(16, 16), random_state=0)),
            (
                "clf",
                KerasCharClassifier(image_shape=(16, 16), filters=(4, 8), epochs=1, random_state=0),
            ),
        ]
    )
    return pipeline.fit(*data)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    return save_pipeline(fitted, tmp_path_factory.mktemp("model") / "chars.skc")


def _rewrite(source, target, edit_metadata=None, extra=None):
    """Copy a model file, editing its metadata and adding members."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            content = old.read(info)
            if info.filename == "skcharclf.json" and edit_metadata is not None:
                metadata = json.loads(content)
                edit_metadata(metadata)
                content = json.dumps(metadata)
            new.writestr(info, content)
        for name, content in (extra or {}).items():
            new.writestr(name, content)
    return target


@pytest.mark.slow
def test_round_trip_predicts_the_same(fitted, saved, data):
    X, _ = data
    loaded = load_pipeline(saved)
    assert type(loaded) is ImbPipeline
    assert [name for name, _ in loaded.steps] == ["denoise", "resize", "clf"]
    for name in ("denoise", "resize"):
        step = loaded.named_steps[name]
        assert type(step) is type(fitted.named_steps[name])
        assert step.get_params() == fitted.named_steps[name].get_params()
        assert step.n_features_in_ == 160  # fitted attributes come back too
    assert loaded.named_steps["resize"].size == (16, 16)  # tuples stay tuples
    assert loaded.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


@pytest.mark.slow
def test_metadata_is_plain_json(saved):
    with zipfile.ZipFile(saved) as archive:
        assert archive.namelist() == ["skcharclf.json", "classifier/model.keras"]
        metadata = json.loads(archive.read("skcharclf.json"))
    assert metadata["format"] == "skcharclf-model"
    assert metadata["format_version"] == 2 and metadata["content"] == "pipeline"
    assert metadata["pipeline_class"] == "imblearn.pipeline.Pipeline"
    assert metadata["classes"] == ["a", "b", "c"]
    assert metadata["steps"][0]["params"]["method"] == ["median", "sharpen"]
    assert metadata["steps"][1]["params"]["size"] == {"__tuple__": [16, 16]}
    assert metadata["steps"][1]["fitted"] == {"n_features_in_": 160}
    assert metadata["dropped_steps"] == [{"name": "augment", "class": "RareClassAugmenter"}]
    assert "fit" in metadata["dropped_steps_note"]
    assert metadata["classifier"]["params"]["filters"] == {"__tuple__": [4, 8]}
    assert metadata["classifier"]["params_not_saved"] == []


@pytest.mark.slow
def test_bare_classifier_and_sklearn_pipeline(fitted, data, tmp_path):
    X, _ = data
    clf = fitted.named_steps["clf"]
    Xt = fitted[:2].transform(X)
    loaded = load_pipeline(save_pipeline(clf, tmp_path / "clf.skc"))
    assert type(loaded) is type(clf)
    np.testing.assert_allclose(loaded.predict_proba(Xt), clf.predict_proba(Xt), atol=1e-6)

    sk = SkPipeline([("denoise", "passthrough"), ("resize", fitted[1]), ("clf", clf)])
    loaded = load_pipeline(save_pipeline(sk, tmp_path / "sk.skc"))
    assert type(loaded) is SkPipeline
    assert loaded.steps[0] == ("denoise", "passthrough")
    np.testing.assert_array_equal(loaded.predict(X), sk.predict(X))


@pytest.mark.slow
def test_saving_replaces_an_existing_file(saved, tmp_path):
    target = tmp_path / "again.skc"
    target.write_text("old content")
    assert save_pipeline(load_pipeline(saved), target) == target
    assert zipfile.is_zipfile(target)
    assert list(tmp_path.iterdir()) == [target]  # no partial file left behind


def test_only_keras_pipelines_can_be_saved(data, tmp_path):
    X, y = data
    forest = SkPipeline([("clf", RandomForestClassifier(n_estimators=2).fit(X, y))])
    with pytest.raises(TypeError, match="final step 'clf' is a RandomForestClassifier"):
        save_pipeline(forest, tmp_path / "forest.skc")
    assert not (tmp_path / "forest.skc").exists()


@pytest.mark.slow
def test_unsupported_step_and_unfitted_classifier(fitted, tmp_path):
    from skcharclf.classifier import KerasCharClassifier

    scaled = SkPipeline([("scale", StandardScaler()), ("clf", fitted.named_steps["clf"])])
    with pytest.raises(TypeError, match=r"step 'scale' is a StandardScaler; a model file can"):
        save_pipeline(scaled, tmp_path / "scaled.skc")
    with pytest.raises(NotFittedError):
        save_pipeline(KerasCharClassifier(), tmp_path / "unfitted.skc")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda m: m["steps"][0].update({"class": "Popen"}),
            "damaged metadata: step 'denoise' has class 'Popen', not one of",
        ),
        (
            lambda m: m["steps"][1]["fitted"].update({"__class__": 1}),
            "damaged metadata: unexpected object",
        ),
        (
            lambda m: m["classifier"].update({"path": "classifier/../../evil.keras"}),
            "damaged metadata: unsafe classifier path 'classifier/../../evil.keras'",
        ),
        (lambda m: m.pop("steps"), "damaged metadata: missing field 'steps'"),
        (lambda m: m.update({"format_version": "1"}), "invalid format version '1'"),
    ],
)
@pytest.mark.slow
def test_tampered_files_are_rejected(saved, tmp_path, edit, reason):
    bad = _rewrite(saved, tmp_path / "bad.skc", edit)
    with pytest.raises(ValueError, match="is not a skcharclf model file") as info:
        load_pipeline(bad)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("step", "params", "message"),
    [
        (
            1,
            {"size": {"__tuple__": [30000, 30000]}},
            "step 'resize' has an invalid parameter: size must be at most 1024 pixels per side",
        ),
        (
            0,
            {"method": "bilateral", "ksize": 10001},
            "step 'denoise' has an invalid parameter: The 'ksize' parameter of Denoiser must be "
            "an int in the range [3, 31]",
        ),
        (
            0,
            {"method": "erode", "iterations": 5000},
            "The 'iterations' parameter of Denoiser must be an int in the range [1, 50]",
        ),
        (0, {"method": "erode", "ksize": 31, "iterations": 4}, "reaches 60 pixels"),
        (0, {"ksize": 4}, "step 'denoise' has an invalid parameter: ksize must be odd"),
    ],
)
@pytest.mark.slow
def test_tampered_step_parameters_fail_at_load(saved, tmp_path, step, params, message):
    # Such parameters used to load and then cost gigabytes or minutes per image at predict.
    bad = _rewrite(saved, tmp_path / "bad.skc", lambda m: m["steps"][step]["params"].update(params))
    with pytest.raises(ValueError, match="is not a skcharclf model file") as info:
        load_pipeline(bad)
    assert message in str(info.value)


@pytest.mark.slow
def test_damaged_file_from_another_version_says_so(saved, tmp_path):
    def edit(metadata):
        metadata["skcharclf_version"] = "9.0"
        metadata["steps"][0]["params"]["strength"] = 2

    with pytest.raises(ValueError, match=r"'strength'; it was written by skcharclf 9\.0\)\.$"):
        load_pipeline(_rewrite(saved, tmp_path / "other.skc", edit))


@pytest.mark.slow
def test_unsafe_member_names_are_rejected(saved, tmp_path):
    bad = _rewrite(saved, tmp_path / "bad.skc", extra={"classifier/../../x.py": "print(1)"})
    with pytest.raises(ValueError, match=r"unsafe classifier path 'classifier/\.\./\.\./x.py'"):
        load_pipeline(bad)
    assert not (tmp_path.parent / "x.py").exists()


@pytest.mark.slow
def test_newer_format_asks_for_an_upgrade(saved, tmp_path):
    newer = _rewrite(saved, tmp_path / "newer.skc", lambda m: m.update({"format_version": 99}))
    with pytest.raises(ValueError, match=r"model format version 99; .* upgrade skcharclf"):
        load_pipeline(newer)


def test_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pipeline(tmp_path / "missing.skc")
    with pytest.raises(ValueError, match=r"is not a skcharclf model file \(it is a folder\)"):
        load_pipeline(tmp_path)
    text = tmp_path / "notes.skc"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"is not a skcharclf model file \(not a zip archive\)"):
        load_pipeline(text)
    with zipfile.ZipFile(tmp_path / "broken.skc", "w") as archive:
        archive.writestr("skcharclf.json", "{not json")
    with pytest.raises(ValueError, match=r"\(skcharclf.json is not valid JSON: Expecting"):
        load_pipeline(tmp_path / "broken.skc")


def test_codec_round_trip():
    value = {
        "size": (32, 20),
        "methods": ["median", ("open", 2)],
        "class_weight": {0: 1.0, 7: 2.5},
        "classes": np.array([3, 1, 2], dtype=np.int16),
        "names": np.array(["x", "yy"]),
        "scalar": np.float32(0.5),
        "none": None,
    }
    encoded = _encode(value, "value")
    assert json.loads(json.dumps(encoded)) == encoded
    decoded = _decode(encoded)
    assert decoded["size"] == (32, 20) and decoded["methods"] == ["median", ("open", 2)]
    assert decoded["class_weight"] == {0: 1.0, 7: 2.5}
    assert decoded["classes"].dtype == np.int16 and decoded["classes"].tolist() == [3, 1, 2]
    assert decoded["names"].tolist() == ["x", "yy"]
    assert decoded["scalar"] == 0.5 and decoded["none"] is None


def test_codec_refuses_code_and_objects():
    with pytest.raises(TypeError, match=r"step 'x' holds a function \(<function"):
        _encode({"f": lambda: 0}, "step 'x'")
    with pytest.raises(TypeError, match="holds a ndarray"):
        _encode(np.array([object()]), "step 'x'")
    with pytest.raises(ValueError, match="arrays of dtype object are not allowed"):
        _decode({"__ndarray__": [1], "dtype": "|O"})


# -- files written by earlier versions --------------------------------------------------------

# skcharclf.json of a classifier file (KerasCharClassifier.save) as skcharclf 0.1.0 wrote it:
# format "skcharclf.KerasCharClassifier/1", parameters tagged {"tuple": ...}, {"list": ...},
# {"dict": [[key, value], ...]} (not the pipeline format's "__tuple__" tags).
_CLASSIFIER_FILE_0_1_0 = {
    "format": "skcharclf.KerasCharClassifier/1",
    "skcharclf_version": "0.1.0",
    "params": {
        "image_shape": {"tuple": [16, 16]},
        "filters": {"tuple": [4, 8]},
        "epochs": 1,
        "class_weight": {"dict": [["a", 2.0]]},
        "focal_alpha": {"list": [1.0, 2.0, 3.0]},
        "validation_data": None,
        "random_state": 0,
    },
    "params_not_saved": [],
    "classes": ["a", "b", "c"],
    "classes_dtype": "<U1",
    "n_features_in": 256,
    "image_shape": [16, 16],
    "history": {"loss": [1.25], "accuracy": [0.5], "f1_macro": [0.4], "learning_rate": [0.001]},
    "initial_loss": 1.1,
    "best_epoch": 0,
    "class_priors": [0.5, 0.3, 0.2],
    "unvalidated_classes": [0, 1, 2],
}


def test_classifier_file_written_by_0_1_0_loads(fitted, data, tmp_path):
    from skcharclf.classifier import load_model

    clf = fitted.named_steps["clf"]
    path = tmp_path / "old.keras"
    clf.model_.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("skcharclf.json", json.dumps(_CLASSIFIER_FILE_0_1_0))
    loaded = load_model(path)
    params = loaded.get_params()
    assert params["filters"] == (4, 8) and params["image_shape"] == (16, 16)
    assert params["class_weight"] == {"a": 2.0} and params["focal_alpha"] == [1.0, 2.0, 3.0]
    assert loaded.history_["loss"] == [1.25] and loaded.image_shape_ == (16, 16)
    np.testing.assert_array_equal(loaded.unvalidated_classes_, ["a", "b", "c"])
    images = fitted[:2].transform(data[0])
    np.testing.assert_array_equal(loaded.predict_proba(images), clf.predict_proba(images))


def test_classifier_and_pipeline_files_share_one_format(fitted, saved, tmp_path):
    """One tag, one version, one value encoding in both skcharclf.json files."""
    clf = fitted.named_steps["clf"]
    clf.save(tmp_path / "now.keras")
    with zipfile.ZipFile(tmp_path / "now.keras") as archive:
        metadata = json.loads(archive.read("skcharclf.json"))
    with zipfile.ZipFile(saved) as archive:
        pipeline_metadata = json.loads(archive.read("skcharclf.json"))
    assert (metadata["format"], metadata["format_version"], metadata["content"]) == (
        "skcharclf-model",
        2,
        "classifier",
    )
    assert metadata["params"]["image_shape"] == {"__tuple__": [16, 16]}
    assert metadata["params"]["validation_data"] is None
    assert set(metadata["params"]) == set(clf.get_params()) and not metadata["params_not_saved"]
    assert metadata["params"] == pipeline_metadata["classifier"]["params"]


def test_each_loader_names_the_other_file_kind(fitted, saved, tmp_path):
    clf = fitted.named_steps["clf"]
    clf.save(tmp_path / "clf.keras")
    with pytest.raises(ValueError, match=r"\(it is a pipeline file, which .*load_pipeline reads"):
        load_model(saved)
    with pytest.raises(ValueError, match=r"\(it is a classifier file, which .*load_model reads"):
        load_pipeline(tmp_path / "clf.keras")


def test_newer_classifier_file_asks_for_an_upgrade(fitted, tmp_path):
    fitted.named_steps["clf"].save(tmp_path / "clf.keras")
    newer = _rewrite(
        tmp_path / "clf.keras", tmp_path / "newer.keras", lambda m: m.update({"format_version": 3})
    )
    with pytest.raises(ValueError, match=r"model format version 3; .* upgrade skcharclf"):
        load_model(newer)


def test_pipeline_file_written_by_0_1_0_loads(fitted, saved, data, tmp_path):
    """A .skc file in the 0.1.0 layout (pipeline tags "__tuple__", no checksums) loads."""

    def as_written_by_0_1_0(metadata):
        metadata.pop("checksums")
        metadata["skcharclf_version"] = "0.1.0"
        resize = next(step for step in metadata["steps"] if step["name"] == "resize")
        assert resize["params"]["size"] == {"__tuple__": [16, 16]}

    old = _rewrite(saved, tmp_path / "old.skc", as_written_by_0_1_0)
    model = load_pipeline(old)
    assert model.named_steps["resize"].size == (16, 16)
    np.testing.assert_array_equal(model.predict_proba(data[0]), fitted.predict_proba(data[0]))


# tests/data/format1_pipeline.skc: a .skc file written by skcharclf at commit 99df281 (model
# format 1, the last version with two format tags) of
#   Pipeline([("resize", ImageResizer(size=(8, 8), image_shape=(8, 8))),
#             ("clf", KerasCharClassifier(**TINY_CLASSIFIER, class_weight={"c": 2.0},
#                                         loss="focal", focal_alpha=[1.0, 2.0, 3.0]))])
# fitted on bar_chars([12, 8, 6], [0, 3, 5], seed=0, labels=["a", "b", "c"]) (tests/_data.py);
# its classifier/model.keras is that version's KerasCharClassifier.save() file.
# tests/data/format1_expected.json holds that pipeline's predict_proba on the same data.


def _format1_expected():
    from _data import bar_chars

    X, _ = bar_chars([12, 8, 6], [0, 3, 5], seed=0, labels=["a", "b", "c"])
    expected = json.loads((DATA / "format1_expected.json").read_text())
    return X, np.array(expected["predict_proba"])


def test_files_written_in_format_1_load():
    X, expected = _format1_expected()
    model = load_pipeline(DATA / "format1_pipeline.skc")
    assert model.named_steps["resize"].size == (8, 8)
    np.testing.assert_allclose(model.predict_proba(X), expected, atol=1e-5)


def test_classifier_file_written_in_format_1_loads(tmp_path):
    X, expected = _format1_expected()
    with zipfile.ZipFile(DATA / "format1_pipeline.skc") as archive:
        metadata = json.loads(archive.read("skcharclf.json"))
        (tmp_path / "old.keras").write_bytes(archive.read("classifier/model.keras"))
    with zipfile.ZipFile(tmp_path / "old.keras") as archive:
        assert json.loads(archive.read("skcharclf.json"))["format"] == (
            "skcharclf.KerasCharClassifier/1"
        )
    assert metadata["format_version"] == 1 and "content" not in metadata
    clf = load_model(tmp_path / "old.keras")
    assert clf.get_params()["class_weight"] == {"c": 2.0} and clf.filters == (4,)
    assert clf.focal_alpha == [1.0, 2.0, 3.0] and clf.loss == "focal"
    assert clf.diagnosis_ is not None
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-5)
