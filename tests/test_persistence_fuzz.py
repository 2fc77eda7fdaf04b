"""Hostile and damaged model files: targeted cases, then a fuzz test over a real ``.skc``.

Every damaged file must give one clear ``ValueError`` naming the file (the command line: exit
status 2, one line) at a bounded cost in time and memory, or load a model that predicts like
the saved one when its network is unchanged.
"""

import copy
import functools
import hashlib
import io
import json
import os
import random
import resource
import struct
import threading
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from imblearn.pipeline import Pipeline

from skcharclf.classifier import KerasCharClassifier, load_model
from skcharclf.cli import main
from skcharclf.persistence import load_pipeline, save_pipeline
from skcharclf.preprocessing import ImageResizer

MODEL = "classifier/model.keras"
METADATA = "skcharclf.json"
MiB = 2**20


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), [10, 8, 6])
    X = []
    for label in y:
        image = rng.integers(0, 60, (12, 10), dtype=np.uint8)
        band = "abc".index(label) * 3
        image[band : band + 4] += 180  # each class its own bright band
        X.append(image)
    return X, y


@pytest.fixture(scope="module")
def model_file(images, tmp_path_factory):
    """A real model file of a tiny fitted pipeline, and the pipeline."""
    pipeline = Pipeline(
        [
            ("resize", ImageResizer(size=(8, 8))),
            (
                "clf",
                KerasCharClassifier(image_shape=(8, 8), filters=(4,), epochs=1, random_state=0),
            ),
        ]
    ).fit(*images)
    path = save_pipeline(pipeline, tmp_path_factory.mktemp("model") / "tiny.skc")
    return path, pipeline


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _write(target, members, compression=zipfile.ZIP_DEFLATED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate member names
        with zipfile.ZipFile(target, "w", compression=compression) as archive:
            for name, content in members:
                archive.writestr(name, content)
    return target


def _edit_json(content, edit):
    value = json.loads(content)
    edit(value)
    return json.dumps(value).encode()


def _edit_keras(content, edits):
    """A ``model.keras`` (bytes) with ``edits`` {member: function(bytes) -> bytes} applied."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            new.writestr(info.filename, edits.get(info.filename, lambda d: d)(data))
    return out.getvalue()


def _tampered(source, target, metadata=None, keras=None, reseal=True):
    """Copy a ``.skc``, editing its metadata (a function of the dict) and its classifier's
    members (``{member: function(bytes) -> bytes}``); ``reseal`` records the new checksums,
    as someone editing the file on purpose would."""
    members = dict(_members(source))
    if keras:
        members[MODEL] = _edit_keras(members[MODEL], keras)

    def edit(value):
        if reseal:
            value["checksums"] = {MODEL: hashlib.sha256(members[MODEL]).hexdigest()}
        if metadata:
            metadata(value)

    members[METADATA] = _edit_json(members[METADATA], edit)
    return _write(target, list(members.items()))


def _peak_rss_reset():
    """Reset the process's peak resident memory (Linux); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        return False
    return True


def _memory_kib(field):
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) for line in file if line.startswith(field))


def _resident_kib():
    """The process's resident memory (Linux), else its peak resident memory."""
    try:
        return _memory_kib("VmRSS:")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _bounded(function, seconds=2.0, megabytes=200):
    """Call ``function``; assert it took less than ``seconds`` and ``megabytes`` of extra
    memory. Return (its result or the exception it raised, seconds, extra MiB).

    The memory is the growth of the process's peak resident size (native allocations of
    TensorFlow and OpenCV included) where Linux can reset that peak, else Python's
    allocations as tracemalloc sees them.
    """
    whole_process = _peak_rss_reset()
    if whole_process:
        before = _memory_kib("VmRSS:")
    else:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        outcome = function()
    except Exception as exc:
        outcome = exc
    elapsed = time.perf_counter() - start
    if whole_process:
        extra = (_memory_kib("VmHWM:") - before) / 1024
    else:
        extra = tracemalloc.get_traced_memory()[1] / MiB
        tracemalloc.stop()
    assert elapsed < seconds and extra < megabytes, (elapsed, extra, outcome)
    return outcome, elapsed, extra


def _cli_error(capsys, path, tmp_path):
    """``skcharclf evaluate path`` must fail with status 2 and one line, no traceback."""
    assert main(["evaluate", str(path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- S1 / S2: zip bombs ------------------------------------------------------------------------


def _bomb(target, name, size, others=()):
    """A zip whose member ``name`` is ``size`` zero bytes (deflated about 1000 times)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for other, content in others:
            archive.writestr(other, content)
        with archive.open(name, "w") as member:
            for _ in range(size // MiB):
                member.write(bytes(MiB))
    return target


def test_zip_bomb_in_a_classifier_member_is_refused_unread(model_file, tmp_path, capsys):
    bomb = _bomb(tmp_path / "bomb.skc", "classifier/x.bin", 64 * MiB, _members(model_file[0]))
    error, _, _ = _bounded(lambda: load_pipeline(bomb), megabytes=16)
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"{str(bomb)!r} is not a skcharclf model file (member ")
    assert "expands more than 200 times its compressed size" in str(error)
    assert "zip bomb" in _cli_error(capsys, bomb, tmp_path)


def test_zip_bomb_in_the_metadata_is_refused(tmp_path, capsys):
    bomb = _bomb(tmp_path / "bomb.skc", METADATA, 64 * MiB)
    error, _, _ = _bounded(lambda: load_pipeline(bomb), megabytes=16)
    assert isinstance(error, ValueError) and "member 'skcharclf.json' expands" in str(error)
    _cli_error(capsys, bomb, tmp_path)


def test_understated_member_size_is_not_trusted(model_file, tmp_path):
    """A header that declares 100 bytes for a 32 MiB member: reading stops, CRC fails."""
    bomb = _bomb(tmp_path / "liar.skc", "classifier/x.bin", 32 * MiB, _members(model_file[0]))
    data = bytearray(bomb.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.rfind(signature)  # the bomb is the last member
        data[at + offset : at + offset + 4] = struct.pack("<I", 100)
    bomb.write_bytes(bytes(data))
    error, _, _ = _bounded(lambda: load_pipeline(bomb), megabytes=16)
    assert isinstance(error, ValueError)
    assert "member 'classifier/x.bin' is damaged: Bad CRC-32" in str(error)


def test_big_metadata_is_refused_at_its_cap(tmp_path):
    """16 MiB of JSON at most, even when it does not compress."""
    text = json.dumps({"format": "skcharclf-model", "pad": os.urandom(9 * MiB).hex()})
    big = _write(tmp_path / "big.skc", [(METADATA, text)], zipfile.ZIP_STORED)
    error, _, _ = _bounded(lambda: load_pipeline(big), megabytes=48)
    assert "member 'skcharclf.json' is larger than the 16 MiB allowed" in str(error)


def test_total_size_cap(model_file, images, tmp_path):
    path, pipeline = model_file
    with pytest.raises(ValueError, match=r"members declare more than the 50000 bytes allowed"):
        load_pipeline(path, max_bytes=50_000)
    with pytest.raises(ValueError, match=r"the file is larger than the 1000 bytes allowed"):
        load_pipeline(path, max_bytes=1000)
    assert load_pipeline(path, max_bytes=10 * MiB).predict(images[0]).tolist() == (
        pipeline.predict(images[0]).tolist()
    )


def test_too_many_members_are_refused_before_reading_the_directory(tmp_path):
    many = _write(tmp_path / "many.skc", [(f"m{k}", b"") for k in range(1001)])
    with pytest.raises(ValueError, match=r"\(1001 members, more than the 1000 allowed\)"):
        load_pipeline(many)


# -- S5: model paths must be regular files -----------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "x.skc"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_bounded(lambda: load_pipeline(fifo))))
    worker.daemon = True  # a blocked open would otherwise hang the test run
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "load_pipeline blocked on a FIFO"
    error = outcome[0][0]
    assert isinstance(error, ValueError) and "it is not a regular file" in str(error)
    with pytest.raises(ValueError, match="it is not a regular file"):
        load_model(fifo)
    assert "not a regular file" in _cli_error(capsys, fifo, tmp_path)


# -- U2: damaged archives; checksums -----------------------------------------------------------


def test_bad_crc_is_a_clear_error(model_file, tmp_path, capsys):
    stored = _write(tmp_path / "stored.skc", _members(model_file[0]), zipfile.ZIP_STORED)
    data = bytearray(stored.read_bytes())
    at = data.find(b"model.weights.h5")  # inside the stored classifier member
    data[at + 4000] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        load_pipeline(stored)
    assert str(info.value) == (
        f"{str(stored)!r} is not a skcharclf model file (member 'classifier/model.keras' is "
        "damaged: Bad CRC-32 for file 'classifier/model.keras')."
    )
    assert "Bad CRC-32" in _cli_error(capsys, stored, tmp_path)


def test_checksums_detect_corruption(model_file, tmp_path):
    path, _ = model_file
    with zipfile.ZipFile(path) as archive:
        recorded = json.loads(archive.read(METADATA))["checksums"]
        assert recorded == {MODEL: hashlib.sha256(archive.read(MODEL)).hexdigest()}

    def flip(h5):
        return h5[:-100] + bytes([h5[-100] ^ 1]) + h5[-99:]

    corrupt = _tampered(
        path, tmp_path / "corrupt.skc", keras={"model.weights.h5": flip}, reseal=False
    )
    with pytest.raises(
        ValueError, match=r"member 'classifier/model.keras' is corrupted: its SHA-256"
    ):
        load_pipeline(corrupt)


def test_files_without_checksums_still_load(model_file, images, tmp_path):
    """Files written before checksums were recorded have none; they load unchecked."""
    path, pipeline = model_file
    old = _tampered(path, tmp_path / "old.skc", metadata=lambda m: m.pop("checksums"), reseal=False)
    with zipfile.ZipFile(old) as archive:
        assert "checksums" not in json.loads(archive.read(METADATA))
    np.testing.assert_array_equal(
        load_pipeline(old).predict(images[0]), pipeline.predict(images[0])
    )


# -- U3: deep JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "reason"),
    [(100_000, "skcharclf.json is nested too deeply"), (40, "nested more than 32 levels deep")],
)
def test_deeply_nested_metadata(model_file, tmp_path, capsys, depth, reason):
    members = dict(_members(model_file[0]))
    text = (
        members[METADATA]
        .decode()
        .replace('"steps": [', '"steps": [' + "[" * depth + "]" * depth + ",", 1)
    )
    deep = _write(tmp_path / "deep.skc", [(METADATA, text), (MODEL, members[MODEL])])
    error, _, _ = _bounded(lambda: load_pipeline(deep))
    assert isinstance(error, ValueError) and reason in str(error), error
    assert reason in _cli_error(capsys, deep, tmp_path)


# -- U4 / U5 / U6: the classifier's own file ---------------------------------------------------


def _inner_metadata(edit):
    return {METADATA: lambda content: _edit_json(content, edit)}


def test_unknown_saved_parameter_names_it_and_both_versions(model_file, tmp_path, capsys):
    def newer(metadata):
        metadata["skcharclf_version"] = "9.9"
        metadata["params"]["future_option"] = 1

    path = _tampered(model_file[0], tmp_path / "newer.skc", keras=_inner_metadata(newer))
    with pytest.raises(ValueError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} is not a skcharclf model file (its classifier")
    assert (
        "saved parameter 'future_option' is unknown to this skcharclf (0.1.0); the file was "
        in message
    )
    assert "written by skcharclf 9.9" in message
    assert "future_option" in _cli_error(capsys, path, tmp_path)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda m: m.update(history={"loss": "abc"}),
            "history curve 'loss' is not a list of numbers",
        ),
        (lambda m: m.update(history=[1.0]), "history is not an object with a 'loss' curve"),
        (
            lambda m: m["history"].update(loss=[]),
            "history curves must be non-empty and of one length",
        ),
        (lambda m: m.update(best_epoch=7), "best_epoch 7 is not an epoch of the history"),
        (
            lambda m: m.update(image_shape=[9, 9]),
            "image_shape [9, 9] does not match n_features_in 64",
        ),
        (lambda m: m.update(classes_dtype="|V8"), "classes of dtype |V8 are not allowed"),
        (lambda m: m.update(class_priors=[0.5]), "class_priors must hold one number per class"),
        (
            lambda m: m["params"].update(epochs="many"),
            "The 'epochs' parameter of KerasCharClassifier",
        ),
        (lambda m: m.pop("initial_loss"), "missing field 'initial_loss'"),
    ],
)
def test_malformed_classifier_metadata(model_file, tmp_path, edit, reason):
    path = _tampered(model_file[0], tmp_path / "bad.skc", keras=_inner_metadata(edit))
    error, _, _ = _bounded(lambda: load_pipeline(path))
    assert isinstance(error, ValueError) and "damaged metadata: " + reason in str(error), error


def test_keras_failure_is_one_clear_sentence(model_file, tmp_path):
    def bogus(config):
        config["config"]["layers"][1]["config"]["bogus"] = 1

    edit = {"config.json": lambda content: _edit_json(content, bogus)}
    path = _tampered(model_file[0], tmp_path / "bad.skc", keras=edit)
    with pytest.raises(ValueError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.endswith(
        "(its classifier cannot be loaded: Keras cannot rebuild its network: Unrecognized "
        "keyword arguments passed to Reshape: {'bogus': 1})."
    ), message
    assert "keras.src" not in message


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"filters": {"tuple": [4, 100000]}}, "The 'filters' parameter of KerasCharClassifier"),
        ({"filters": {"tuple": [4] * 9}}, "a tuple of 0 to 8 integers in [1, 1024]"),
        ({"image_shape": {"tuple": [30000, 30000]}}, "The 'image_shape' parameter"),
        ({"batch_size": 10**9}, "The 'batch_size' parameter of KerasCharClassifier"),
        ({"blocks_per_stage": 10**6}, "The 'blocks_per_stage' parameter"),
        ({"checkpoint_averaging": 10**6}, "The 'checkpoint_averaging' parameter"),
        ({"epochs": 10**12}, "The 'epochs' parameter"),
    ],
)
def test_oversized_saved_parameters_fail_at_load(model_file, tmp_path, params, reason):
    """The saved parameters meet the constructor's upper bounds (a refit would allocate them)."""
    edit = _inner_metadata(lambda metadata: metadata["params"].update(params))
    path = _tampered(model_file[0], tmp_path / "big.skc", keras=edit)
    error, _, _ = _bounded(lambda: load_pipeline(path))
    assert isinstance(error, ValueError), error
    message = str(error)
    assert message.startswith(f"{str(path)!r} is not a skcharclf model file"), message
    assert "damaged metadata: " in message and reason in message, message


def _layer(config, name):
    """The configuration of the layer called ``name`` in a Keras model configuration."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            layer_config = node.get("config")
            if isinstance(layer_config, dict) and layer_config.get("name") == name:
                return layer_config
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise KeyError(name)


@pytest.mark.parametrize(
    ("layer", "edit", "reason"),
    [
        ("logits", {"units": 10**9}, "layer 'logits' of the network configuration has "
         "units=1000000000; at most 1048576 is allowed"),
        ("stem_conv", {"filters": 2**40}, "layer 'stem_conv' of the network configuration has "
         "filters=1099511627776"),
        ("stem_conv", {"kernel_size": [3, 100000]}, "has kernel_size=100000; at most 1024"),
        ("pixels", {"batch_shape": [None, 10**7]}, "layer 'pixels' of the network configuration "
         "has batch_shape=10000000"),
        # Each size within its bound, the product not: 5 * 2**20 parameters (and the other
        # layers' 336), more than half the bytes left of max_bytes=2**23.
        ("logits", {"units": 2**20}, "asks for about 5,243,216 parameters by layer 'logits'; "
         "at most"),
    ],
)
def test_oversized_network_configuration_is_refused_before_keras_builds_it(
    model_file, tmp_path, layer, edit, reason
):
    # Keras would allocate these layers (gigabytes for units=10**9) before reading a weight.
    def grow(config):
        _layer(config, layer).update(edit)

    keras = {"config.json": lambda content: _edit_json(content, grow)}
    path = _tampered(model_file[0], tmp_path / "huge.skc", keras=keras)
    error, _, _ = _bounded(lambda: load_pipeline(path, max_bytes=2**23))
    assert isinstance(error, ValueError), error
    message = str(error)
    assert message.startswith(f"{str(path)!r} is not a skcharclf model file"), message
    assert reason in message, message
    assert "keras.src" not in message


def test_network_size_estimate_is_exact_on_the_package_networks(model_file):
    """The parameter estimate equals Keras's count on a real network, so the cap is tight."""
    from skcharclf._bounds import check_network_config

    network = model_file[1].named_steps["clf"].model_
    config = json.loads(json.dumps({"config": network.get_config(), "class_name": "Functional"}))
    n_weights = sum(int(np.prod(w.shape)) for w in network.trainable_weights)
    check_network_config(config, max_params=n_weights)
    with pytest.raises(ValueError, match=f"about {n_weights:,} parameters"):
        check_network_config(config, max_params=n_weights - 1)


# -- the fuzz test -----------------------------------------------------------------------------

_STRANGE_VALUES = [
    None,
    True,
    "x",
    "",
    -1,
    0,
    1.5,
    float("nan"),
    10**300,
    1e308,
    2**63,
    [],
    {},
    [1, "a", None],
    {"__tuple__": [1, 2]},
    {"__ndarray__": [1], "dtype": "<U1000000"},
    {"__dict__": [[[1], 2]]},
    "x" * 1_000_000,
]
_MEMBER_NAMES = ["skcharclf.JSON", "classifier/other.keras", "classifier/", "../model.keras", "x"]


def _paths(value, prefix=()):
    """Every path (a tuple of keys and indexes) to a value inside JSON data."""
    yield prefix
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def _mutate_json(content, rng):
    """The JSON text ``content`` with one value replaced, one key added or nesting inserted."""
    value = json.loads(content)
    path = rng.choice(list(_paths(value))[1:])
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    choice = rng.random()
    if choice < 0.1 and isinstance(parent, dict):
        parent[f"unknown_{rng.randrange(99)}"] = rng.choice(_STRANGE_VALUES)
    elif choice < 0.2:
        parent[path[-1]] = "@DEEP@"
        depth = rng.choice([33, 500, 50_000])
        return json.dumps(value).replace('"@DEEP@"', "[" * depth + "]" * depth).encode()
    elif choice < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(_STRANGE_VALUES))
    return json.dumps(value).encode()


def _mutations(source, rng, count):
    """``count`` damaged copies of ``source`` (bytes): (kind, bytes) pairs."""
    data = source
    members = _members_of(data)
    for case in range(count):
        kind = ["flip", "truncate", "members", "metadata", "classifier", "keras config"][case % 6]
        if kind == "flip":
            damaged = bytearray(data)
            for _ in range(rng.choice([1, 2, 8])):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            yield kind, bytes(damaged)
        elif kind == "truncate":
            yield kind, data[: rng.randrange(len(data))]
        elif kind == "members":
            mutated = list(members)
            operation = rng.choice(["remove", "duplicate", "rename"])
            at = rng.randrange(len(mutated))
            if operation == "remove":
                del mutated[at]
            elif operation == "duplicate":
                mutated.insert(rng.randrange(len(mutated) + 1), mutated[at])
            else:
                mutated[at] = (rng.choice(_MEMBER_NAMES), mutated[at][1])
            yield kind, _zip_bytes(mutated)
        else:
            table = dict(members)
            if kind == "metadata":
                table[METADATA] = _mutate_json(table[METADATA], rng)
            else:
                name = METADATA if kind == "classifier" else "config.json"
                table[MODEL] = _edit_keras(table[MODEL], {name: lambda c: _mutate_json(c, rng)})
                table[METADATA] = _resealed(table[METADATA], table[MODEL])
            yield kind, _zip_bytes(list(table.items()))


def _resealed(metadata, model):
    """The metadata (bytes) with the checksum of ``model`` (bytes) recorded."""
    checksums = {MODEL: hashlib.sha256(model).hexdigest()}
    return _edit_json(metadata, lambda value: value.update(checksums=checksums))


def _members_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _zip_bytes(members):
    out = io.BytesIO()
    _write(out, members)
    return out.getvalue()


def _network_and_steps(model):
    """What decides a loaded model's predictions: step parameters, network and weights."""
    steps = getattr(model, "steps", [("clf", model)])
    network = steps[-1][1].model_
    return (
        [
            (name, type(step).__name__, repr(step.get_params(deep=False)))
            for name, step in steps[:-1]
        ],
        json.dumps(network.get_config(), sort_keys=True, default=repr),
        [w.tobytes() for w in network.get_weights()],
    )


@pytest.mark.slow
def test_fuzzed_model_files_fail_clearly_or_load_correctly(model_file, images, tmp_path):
    path, pipeline = model_file
    X, _ = images
    expected = pipeline.predict(X)
    reference = _network_and_steps(load_pipeline(path))
    rng = random.Random(0)
    target = tmp_path / "fuzzed.skc"
    resident = _resident_kib()
    slowest, peak, outcomes = (0.0, ""), (0.0, ""), {}
    for kind, data in _mutations(path.read_bytes(), rng, 300):
        target.write_bytes(data)
        loaded, elapsed, megabytes = _bounded(functools.partial(load_pipeline, target))
        slowest, peak = max(slowest, (elapsed, f"load, {kind}")), max(peak, (megabytes, kind))
        if isinstance(loaded, Exception):
            assert type(loaded) is ValueError, (kind, repr(loaded))
            message = str(loaded)
            assert message.startswith(f"{str(target)!r} is not a skcharclf model file (") or (
                "upgrade skcharclf" in message
            ), (kind, message)
            assert len(message) < 1000, (kind, message[:2000])
            assert "\n" not in message and "keras.src" not in message
            outcomes[kind, "refused"] = outcomes.get((kind, "refused"), 0) + 1
            continue
        unchanged = _network_and_steps(loaded) == reference
        outcome = (kind, "loaded unchanged" if unchanged else "loaded changed")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        predicted, elapsed, megabytes = _bounded(functools.partial(loaded.predict, X))
        slowest = max(slowest, (elapsed, f"predict, {kind}"))
        peak = max(peak, (megabytes, f"predict, {kind}"))
        if unchanged:
            np.testing.assert_array_equal(predicted, expected, err_msg=kind)
        elif isinstance(predicted, Exception):
            assert isinstance(predicted, (ValueError, TypeError)) and str(predicted), repr(
                predicted
            )
        else:
            assert set(predicted) <= set(pipeline.classes_)
    growth = (_resident_kib() - resident) / 1024
    print(
        f"\n300 cases {sorted(outcomes.items())}; slowest {slowest[0]:.2f} s ({slowest[1]}); "
        f"largest extra memory {peak[0]:.1f} MiB ({peak[1]}); resident memory grew "
        f"{growth:.0f} MiB over all cases"
    )
    assert growth < 200  # nothing accumulates from case to case
