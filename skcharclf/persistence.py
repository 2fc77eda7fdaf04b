"""Save and load fitted skcharclf pipelines without pickle.

A pickled model runs arbitrary code when it is loaded, so a model file shared between people
is a security risk. :func:`save_pipeline` writes a fitted pipeline as a single zip archive
(extension ``.skc`` by convention) that holds only data:

* ``skcharclf.json``: the format name and version, the skcharclf version that wrote it, the
  class list, and each preprocessing step as its class name, its ``get_params()`` and its
  fitted attributes, all as plain JSON. Only whitelisted classes (:class:`~skcharclf.Denoiser`,
  :class:`~skcharclf.ImageResizer`) are rebuilt from it.
* ``classifier/``: the fitted :class:`~skcharclf.KerasCharClassifier`, written by its own
  :meth:`~skcharclf.KerasCharClassifier.save` and read back by :func:`load_model` in Keras
  safe mode.

That classifier file (``.keras``) is implemented here too (:func:`save_classifier`,
:func:`load_model`): Keras's own archive of the network with a ``skcharclf.json`` added.
Both ``skcharclf.json`` files are one format: the tag ``"skcharclf-model"``, a
``format_version`` (:data:`FORMAT_VERSION`), a ``content`` field (``"pipeline"`` or
``"classifier"``) and one encoding of values (:func:`_encode`). Files of format version 1
(earlier skcharclf) still load: their pipeline metadata was already in this format, their
classifier metadata had its own tag (``skcharclf.KerasCharClassifier/1``) and parameter tags.

Training-only samplers (such as :class:`~skcharclf.RareClassAugmenter`) do nothing at
prediction time; they are left out and named in the metadata.

The metadata also records the SHA-256 of each ``classifier/`` member (``checksums``), so that
accidental corruption is detected; it is not a signature. Reading is bounded (see
:func:`load_pipeline`): a damaged or hostile file costs bounded memory, disk and time and
gives one ``ValueError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skcharclf._atomic import atomic_output

from ._archive import (
    MAX_MODEL_BYTES,
    ArchiveError,
    Budget,
    copy_member,
    open_archive,
    read_json_member,
    short_text,
    verify_members,
)
from ._bounds import check_network_config

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "load_model",
    "load_pipeline",
    "save_classifier",
    "save_pipeline",
]

#: Name written in the ``format`` field of every skcharclf model file.
FORMAT_NAME = "skcharclf-model"
#: Version of the model-file layout this skcharclf writes and the newest it reads. Version 2
#: gave the classifier file the pipeline file's tag, version field and value encoding.
FORMAT_VERSION = 2
# What a skcharclf.json describes ("content"), and the function that reads it.
_CONTENTS = {
    "pipeline": "a pipeline file, which skcharclf.persistence.load_pipeline reads",
    "classifier": "a classifier file, which skcharclf.load_model reads",
}

_METADATA = "skcharclf.json"
_CLASSIFIER_DIR = "classifier"
_CLASSIFIER_FILE = "model.keras"
_PASSTHROUGH = "passthrough"
# Fitted attributes are restored with setattr: only plain public names ending in "_".
_FITTED_NAME = re.compile(r"^[a-z][a-z0-9_]*_$")
# numpy dtype kinds an array in the metadata may have: bool, integers, floats, unicode.
_ARRAY_KINDS = frozenset("biufU")
# Largest item of such an array (a U1000000000 dtype would make each element 4 GB).
_MAX_ITEMSIZE = 4096


class _UnsavableValue(TypeError):
    """A parameter value that plain JSON cannot hold."""


class _NewerFormatError(ValueError):
    """A file written in a newer format version than this skcharclf reads."""


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def save_pipeline(pipeline: Any, path: str | os.PathLike) -> Path:
    """Save a fitted pipeline (or a bare classifier) to a pickle-free model file.

    Parameters
    ----------
    pipeline : Pipeline or KerasCharClassifier
        A fitted :class:`imblearn.pipeline.Pipeline` or :class:`sklearn.pipeline.Pipeline`
        whose final step is a :class:`~skcharclf.KerasCharClassifier` and whose other steps
        are :class:`~skcharclf.Denoiser`, :class:`~skcharclf.ImageResizer`,
        ``"passthrough"`` or samplers, such as the pipelines of
        :func:`~skcharclf.make_char_pipeline`; or a fitted
        :class:`~skcharclf.KerasCharClassifier` on its own.
    path : str or path-like
        The file to write (conventionally with the extension ``.skc``). An existing file is
        replaced only once the new one is complete.

    Returns
    -------
    path : pathlib.Path
        The path of the written file.

    Raises
    ------
    TypeError
        If a step is of a class that cannot be saved without pickle (for example a
        random forest or a custom transformer), or one of its parameters is not plain data
        (numbers, strings, lists, tuples, dicts, arrays of numbers or strings).
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.

    See Also
    --------
    load_pipeline : Load the file back.
    skcharclf.KerasCharClassifier.save : Save the classifier alone.

    Notes
    -----
    Samplers (steps with ``fit_resample``, such as :class:`~skcharclf.RareClassAugmenter`)
    only act during ``fit``, so the loaded pipeline predicts exactly like the saved one; they
    are listed under ``dropped_steps`` in the metadata. The loaded pipeline cannot be refitted
    with its augmentation: build a new one for that.

    Examples
    --------
    >>> from skcharclf.persistence import load_pipeline, save_pipeline
    >>> save_pipeline(fitted_pipeline, "chars.skc")  # doctest: +SKIP
    PosixPath('chars.skc')
    >>> model = load_pipeline("chars.skc")  # doctest: +SKIP
    """
    from skcharclf.classifier import KerasCharClassifier

    steps = list(getattr(pipeline, "steps", [])) or [("clf", pipeline)]
    final_name, final = steps[-1]
    if not isinstance(final, KerasCharClassifier):
        raise TypeError(
            f"only pipelines ending in a KerasCharClassifier can be saved without pickle; the "
            f"final step {final_name!r} is a {type(final).__name__}."
        )
    check_is_fitted(final)
    kept, dropped = [], []
    for name, step in steps[:-1]:
        if step is None or step == _PASSTHROUGH:
            kept.append({"name": name, "class": _PASSTHROUGH})
        elif hasattr(step, "fit_resample"):
            dropped.append({"name": name, "class": type(step).__name__})
        else:
            kept.append(_describe_step(name, step))

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "content": "pipeline",
        "skcharclf_version": _skcharclf_version(),
        "pipeline_class": _pipeline_class(pipeline),
        "classes": _encode(np.asarray(final.classes_).tolist(), "classes_"),
        "steps": kept,
        "dropped_steps": dropped,
        "dropped_steps_note": (
            "Samplers only change the training set during fit; they are not needed to predict "
            "and are not saved."
        ),
        "classifier": {
            "name": final_name,
            "class": type(final).__name__,
            "path": f"{_CLASSIFIER_DIR}/{_CLASSIFIER_FILE}",
        },
    }
    # the classifier's parameters, for the record (it is restored from its own file)
    metadata["classifier"]["params"], metadata["classifier"]["params_not_saved"] = (
        _encode_params(final.get_params(deep=False))
    )
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="skcharclf-save-") as tmp:
        folder = Path(tmp) / _CLASSIFIER_DIR
        folder.mkdir()
        final.save(folder / _CLASSIFIER_FILE)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        metadata["checksums"] = {
            file.relative_to(tmp).as_posix(): _sha256(file) for file in files
        }
        with (
            atomic_output(path) as partial,
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            archive.writestr(_METADATA, json.dumps(metadata, indent=2))
            for file in files:
                archive.write(file, file.relative_to(tmp).as_posix())
    return path


def load_pipeline(path: str | os.PathLike, *, max_bytes: int = MAX_MODEL_BYTES) -> Any:
    """Load a model file written by :func:`save_pipeline`.

    Loading runs no code from the file: the preprocessing steps are rebuilt from plain JSON
    (only :class:`~skcharclf.Denoiser` and :class:`~skcharclf.ImageResizer` are allowed) and
    the classifier is read by :func:`load_model` in Keras safe mode.
    Reading costs bounded memory, disk and time whatever the file holds (see Notes).

    Parameters
    ----------
    path : str or path-like
        A ``.skc`` model file.
    max_bytes : int, default=256 MiB
        The most bytes the archive's members may expand to, together. A real model is
        100 kB to a few MB.

    Returns
    -------
    model : Pipeline or KerasCharClassifier
        The fitted pipeline (of the same class as the saved one, without its training-only
        sampler steps), or the classifier when a bare classifier was saved. Its
        ``predict`` and ``predict_proba`` give the same results as the saved model's.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a skcharclf model file (the message starts with
        ``"<path> is not a skcharclf model file"`` and says why: not a regular file, not a
        zip archive, a damaged member, a checksum that does not match, a limit exceeded,
        damaged metadata), or was written in a newer format version than this skcharclf
        reads.

    See Also
    --------
    save_pipeline : Write a model file.

    Notes
    -----
    The limits: the file must be a regular file (a FIFO would block forever); each JSON
    member expands to at most 16 MiB and is nested at most 32 levels deep; all members
    together expand to at most ``max_bytes``; beyond its first MiB no member may expand more
    than 200 times its compressed size (a zip bomb); at most 1000 members. Sizes are counted
    while decompressing, not taken from the archive's headers.

    Model files record the SHA-256 of each classifier member, which detects accidental
    corruption (files written before checksums were added have none and load unchecked). A
    checksum is not a signature: anyone can edit a file and its checksums, so a model file
    does not prove who made it, and tampered weights load. Load model files from people you
    trust to give you a good model; what a model file cannot do is run code when it is
    loaded.

    Examples
    --------
    >>> from skcharclf.persistence import load_pipeline
    >>> model = load_pipeline("chars.skc")  # doctest: +SKIP
    >>> model.predict(images)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist.")
    budget = Budget(max_bytes)
    try:
        archive = open_archive(path, max_bytes)
    except ArchiveError as exc:
        raise _not_a_model(path, exc.reason) from exc
    with archive, tempfile.TemporaryDirectory(prefix="skcharclf-load-") as tmp:
        metadata = _read_metadata(archive, path, budget)
        try:
            kind = metadata["pipeline_class"]
            if kind != _BARE_CLASSIFIER and kind not in _PIPELINE_CLASSES:
                raise ValueError(f"unknown pipeline class {_short_repr(kind)}")
            steps = [_rebuild_step(step) for step in metadata["steps"]]
            classes = _decode(metadata["classes"])
            final_name = str(metadata["classifier"]["name"])
            classifier_file = _safe_member(metadata["classifier"]["path"])
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"damaged metadata: {_reason(exc)}"
            written = metadata.get("skcharclf_version")
            if written != _skcharclf_version():  # e.g. a step parameter this version lacks
                reason += f"; it was written by skcharclf {short_text(str(written))}"
            raise _not_a_model(path, reason) from exc
        try:
            digests = _extract_classifier(archive, Path(tmp), budget)
            _check_digests(digests, metadata.get("checksums"))
        except (TypeError, ValueError) as exc:
            raise _not_a_model(path, str(exc)) from exc
        try:
            classifier = load_model(
                Path(tmp).joinpath(*classifier_file.parts), max_bytes=budget.remaining
            )
        except (FileNotFoundError, ValueError) as exc:
            reason = getattr(exc, "reason", str(exc))
            raise _not_a_model(path, f"its classifier cannot be loaded: {reason}") from exc
    if np.asarray(classifier.classes_).tolist() != classes:
        raise _not_a_model(path, "its classifier's classes differ from those in its metadata")
    if kind == _BARE_CLASSIFIER:
        return classifier
    return _PIPELINE_CLASSES[kind]()([*steps, (final_name, classifier)])


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _allowed_steps() -> dict[str, type]:
    from skcharclf.preprocessing import Denoiser, ImageResizer

    return {cls.__name__: cls for cls in (Denoiser, ImageResizer)}


def _imblearn_pipeline() -> type:
    from imblearn.pipeline import Pipeline

    return Pipeline


def _sklearn_pipeline() -> type:
    from sklearn.pipeline import Pipeline

    return Pipeline


# "pipeline_class" value -> factory of the pipeline class to rebuild
_PIPELINE_CLASSES = {
    "imblearn.pipeline.Pipeline": _imblearn_pipeline,
    "sklearn.pipeline.Pipeline": _sklearn_pipeline,
}
# "pipeline_class" of a classifier saved on its own
_BARE_CLASSIFIER = "classifier"


def _pipeline_class(pipeline: Any) -> str:
    if not hasattr(pipeline, "steps"):
        return _BARE_CLASSIFIER
    for name, factory in _PIPELINE_CLASSES.items():
        if type(pipeline) is factory():
            return name
    raise TypeError(
        f"cannot save a {type(pipeline).__name__} without pickle; use an "
        "imblearn.pipeline.Pipeline or a sklearn.pipeline.Pipeline."
    )


def _describe_step(name: str, step: Any) -> dict[str, Any]:
    allowed = _allowed_steps()
    if type(step) not in allowed.values():
        raise TypeError(
            f"step {name!r} is a {type(step).__name__}; a model file can hold only "
            f"{', '.join(allowed)}, 'passthrough' and samplers (which are left out), because "
            "other objects could only be saved with pickle."
        )
    fitted = {key: value for key, value in vars(step).items() if _FITTED_NAME.match(key)}
    return {
        "name": name,
        "class": type(step).__name__,
        "params": _encode(step.get_params(deep=False), f"step {name!r}"),
        "fitted": _encode(fitted, f"fitted step {name!r}"),
    }


def _encode(value: Any, where: str) -> Any:
    """``value`` as JSON data, with tuples, arrays and dicts with non-string keys tagged (a
    one-key object such as ``{"__tuple__": [...]}``) so that they decode exactly.

    Raises
    ------
    TypeError
        If ``value`` holds anything other than plain data.
    """
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, os.PathLike):  # decodes as a str
        return os.fspath(value)
    if isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
        return value.item()
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, where) for k, v in value.items()}
        # other keys (class_weight={0: 1.0, ...}) as [key, value] pairs
        return {"__dict__": [[_encode(k, where), _encode(v, where)] for k, v in value.items()]}
    if isinstance(value, np.ndarray) and value.dtype.kind in _ARRAY_KINDS:
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    raise _UnsavableValue(
        f"{where} holds a {type(value).__name__} ({_short_repr(value)}), which a model file "
        "cannot store without pickle."
    )


def _encode_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A classifier's parameters that JSON can hold, encoded, and the names of the others."""
    encoded, not_saved = {}, []
    for key, value in params.items():
        try:
            encoded[key] = _encode(value, key)
        except _UnsavableValue:
            not_saved.append(key)
    return encoded, not_saved


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _skcharclf_version() -> str:
    from skcharclf import __version__

    return __version__


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _not_a_model(path: Path, reason: str) -> ValueError:
    reason = short_text(reason, 800)  # a tampered value can be megabytes long
    return ValueError(f"{str(path)!r} is not a skcharclf model file ({reason}).")


def _reason(exc: Exception) -> str:
    return f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)


def _read_metadata(archive: zipfile.ZipFile, path: Path, budget: Budget) -> dict[str, Any]:
    try:
        metadata = read_json_member(archive, _METADATA, budget)
    except KeyError as exc:
        raise _not_a_model(path, f"a zip archive without {_METADATA}") from exc
    except ArchiveError as exc:
        raise _not_a_model(path, exc.reason) from exc
    try:
        _check_format(metadata, "pipeline")
    except _NewerFormatError as exc:
        raise ValueError(f"{str(path)!r} was {exc}.") from exc
    except ValueError as exc:
        raise _not_a_model(path, str(exc)) from exc
    return metadata


def _check_format(metadata: Any, content: str) -> None:
    """Check that ``metadata`` (a ``skcharclf.json``) is of a format version this skcharclf
    reads and describes ``content`` (``"pipeline"`` or ``"classifier"``).

    Raises
    ------
    _NewerFormatError
        If it was written in a newer format version.
    ValueError
        Otherwise, with the reason.
    """
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise ValueError(f"format {_short_repr(found)}, expected {FORMAT_NAME!r}")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"invalid format version {_short_repr(version)}")
    if version > FORMAT_VERSION:
        raise _NewerFormatError(
            f"written by skcharclf {short_text(str(metadata.get('skcharclf_version')))} in "
            f"model format version {version}; this skcharclf ({_skcharclf_version()}) reads "
            f"versions up to {FORMAT_VERSION}: upgrade skcharclf to load it"
        )
    # version 1 tagged only pipeline files (classifier files had their own tag)
    found = metadata.get("content", "pipeline" if version == 1 else None)
    if found != content:
        raise ValueError(
            f"it is {_CONTENTS[found]}" if found in _CONTENTS else f"content {_short_repr(found)}"
        )


def _rebuild_step(description: Mapping[str, Any]) -> tuple[str, Any]:
    name, class_name = str(description["name"]), description["class"]
    if class_name == _PASSTHROUGH:
        return name, _PASSTHROUGH
    allowed = _allowed_steps()
    if class_name not in allowed:
        raise ValueError(f"step {name!r} has class {class_name!r}, not one of {list(allowed)}")
    step = allowed[class_name](**_decode(description["params"]))
    try:
        # the constructor's own checks, bounds included: an edited file fails here, not at
        # predict with an image of 30000 x 30000 pixels
        step._validate_params()
        step._check_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"step {name!r} has an invalid parameter: {exc}") from exc
    fitted = _decode(description["fitted"])
    if not isinstance(fitted, dict):
        raise TypeError(f"step {name!r} has fitted attributes of type {type(fitted).__name__}")
    for key, value in fitted.items():
        if not isinstance(key, str) or not _FITTED_NAME.match(key):
            raise ValueError(f"step {name!r} has an invalid fitted attribute {key!r}")
        setattr(step, key, value)
    return name, step


def _decode(value: Any) -> Any:
    """Invert :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"__tuple__"}:
        return tuple(_decode(v) for v in value["__tuple__"])
    if value.keys() == {"__dict__"}:
        return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    if value.keys() == {"__ndarray__", "dtype"}:
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in _ARRAY_KINDS or dtype.itemsize > _MAX_ITEMSIZE:
            raise ValueError(f"arrays of dtype {dtype} are not allowed")
        return np.asarray(value["__ndarray__"], dtype=dtype)
    if any(key.startswith("__") for key in value):
        raise ValueError(f"unexpected object {_short_repr(value)}")
    return {key: _decode(v) for key, v in value.items()}


def _safe_member(name: Any) -> PurePosixPath:
    """A member name inside ``classifier/`` that cannot point outside the extraction folder."""
    member = PurePosixPath(str(name))
    if (
        member.is_absolute()
        or len(member.parts) < 2
        or member.parts[0] != _CLASSIFIER_DIR
        or any(part in ("", ".", "..") or "\\" in part for part in member.parts)
    ):
        raise ValueError(f"unsafe classifier path {str(name)!r}")
    return member


def _extract_classifier(archive: zipfile.ZipFile, folder: Path, budget: Budget) -> dict[str, str]:
    """Copy the ``classifier/`` members into ``folder``, checking each member's name and size.

    Returns
    -------
    digests : dict
        The SHA-256 of each member, by member name.
    """
    members = [
        info
        for info in archive.infolist()
        if not info.is_dir() and info.filename.startswith(f"{_CLASSIFIER_DIR}/")
    ]
    if not members:
        raise ValueError(f"no {_CLASSIFIER_DIR}/ folder in the archive")
    digests = {}
    for info in members:
        if info.filename in digests:
            raise ValueError(f"member {info.filename!r} appears twice")
        target = folder.joinpath(*_safe_member(info.filename).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        digests[info.filename] = copy_member(archive, info, target, budget)
    return digests


def _check_digests(digests: Mapping[str, str], recorded: Any) -> None:
    """Compare the members' SHA-256 with those recorded at saving (files from skcharclf
    versions that did not record them have none to compare)."""
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise ValueError(f"damaged metadata: checksums is a {type(recorded).__name__}")
    for name in sorted(set(digests) | set(recorded)):
        if name not in recorded:
            raise ValueError(f"member {name!r} has no recorded checksum")
        if name not in digests:
            raise ValueError(f"member {_short_repr(name)} is missing")
        if recorded[name] != digests[name]:
            raise ValueError(
                f"member {name!r} is corrupted: its SHA-256 differs from the one recorded "
                "when the file was saved"
            )


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Classifier files (.keras with skcharclf.json inside)
# --------------------------------------------------------------------------------------------

# The tag of classifier files of format version 1, whose parameters were tagged {"tuple": ...},
# {"list": ...}, {"dict": ...}: such files still load.
_CLASSIFIER_FORMAT_1 = "skcharclf.KerasCharClassifier/1"


def save_classifier(clf: Any, path: str | os.PathLike) -> None:
    """Write a fitted classifier as a Keras ``.keras`` file with ``skcharclf.json`` inside.

    The implementation of :meth:`skcharclf.KerasCharClassifier.save` (see there).
    """
    check_is_fitted(clf)
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path must end in '.keras', got {str(path)!r}.")
    kind, classes = clf.classes_.dtype.kind, clf.classes_.tolist()
    if kind not in "biufUSO" or not all(isinstance(c, (bool, int, float, str)) for c in classes):
        raise TypeError(
            "save() stores labels as JSON and supports int, float, bool and str labels; "
            "use joblib for other label types."
        )
    params, not_saved = _encode_params({**clf.get_params(deep=False), "validation_data": None})
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "content": "classifier",
        "skcharclf_version": _skcharclf_version(),
        "params": params,
        "params_not_saved": not_saved,
        "classes": classes,
        "classes_dtype": clf.classes_.dtype.str if kind != "O" else "object",
        "n_features_in": int(clf.n_features_in_),
        "image_shape": list(clf.image_shape_),
        "history": clf.history_,
        "initial_loss": clf.initial_loss_,
        "best_epoch": clf.best_epoch_,
        "class_priors": clf.class_priors_.tolist(),
        "unvalidated_classes": np.flatnonzero(
            np.isin(clf.classes_, clf.unvalidated_classes_)
        ).tolist(),
    }
    with atomic_output(path) as partial:
        clf.model_.save(partial)
        with zipfile.ZipFile(partial, "a") as archive:
            archive.writestr(_METADATA, json.dumps(metadata))


def load_model(path: str | os.PathLike, *, max_bytes: int = MAX_MODEL_BYTES) -> Any:
    """Load a classifier written by :meth:`~skcharclf.KerasCharClassifier.save`, running no code.

    The network is read with Keras's safe mode (no lambda layers or arbitrary Python objects
    are deserialised) and the labels and parameters from plain JSON. Every member of the file
    is decompressed once under size limits (and its CRC-32 checked) before Keras reads it, so
    a damaged or hostile file costs bounded memory, disk and time.

    Parameters
    ----------
    path : str or path
        A ``.keras`` file written by :meth:`~skcharclf.KerasCharClassifier.save`.
    max_bytes : int, default=256 MiB
        The most bytes the file's members may expand to, together.

    Returns
    -------
    clf : KerasCharClassifier
        A fitted classifier that predicts exactly like the saved one, with its
        ``diagnosis_``. Parameters that could not be stored as JSON (a callable
        ``architecture``) keep their defaults.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a regular file, is damaged or exceeds a limit, holds metadata
        that this skcharclf cannot use (such as a parameter from a newer skcharclf: the
        message names it and both versions, or one above its upper bound), was written in a
        newer format version (the message asks for an upgrade), is a pipeline file, a network
        configuration with oversized layers (refused, naming the layer and the value,
        before Keras builds anything), or a network that Keras cannot rebuild.

    Examples
    --------
    >>> from skcharclf import load_model  # doctest: +SKIP
    >>> clf = load_model("chars.keras")  # doctest: +SKIP
    """
    from ._tf import import_keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist.")

    def fail(reason: str) -> ArchiveError:
        reason = short_text(reason, 600)  # a tampered value can be megabytes long
        return ArchiveError(
            f"{path!r} is not a model file written by KerasCharClassifier.save() ({reason}).",
            reason,
        )

    budget = Budget(max_bytes)
    try:
        with open_archive(Path(path), max_bytes) as archive:
            metadata = read_json_member(archive, _METADATA, budget)
            verify_members(archive, budget, skip=frozenset({_METADATA}))
            network = (
                read_json_member(archive, _NETWORK_CONFIG, budget)
                if _NETWORK_CONFIG in archive.namelist()
                else None
            )
    except KeyError as exc:
        raise fail(f"no {_METADATA}") from exc
    except ArchiveError as exc:
        raise fail(exc.reason) from exc
    try:
        # The weights are in the file, at most max_bytes: 4 bytes per float32 parameter,
        # with a factor 2 to spare for the estimate.
        check_network_config(network, max_params=max_bytes // 2)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    decode = _decode
    if isinstance(metadata, dict) and metadata.get("format") == _CLASSIFIER_FORMAT_1:
        decode = _decode_param_1
    else:
        try:
            _check_format(metadata, "classifier")
        except ValueError as exc:
            raise fail(str(exc)) from exc
    written = metadata.get("skcharclf_version", "(version not recorded)")
    try:
        clf = _restore_classifier(metadata, short_text(str(written)), decode)
        # the user's own loss is code, not saved: the diagnosis then has no loss reference
        loss_known = "loss" not in _list_of(metadata, "params_not_saved", str)
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise fail(f"damaged metadata: {reason}") from exc
    try:
        clf.model_ = import_keras().saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types on a damaged configuration
        raise fail(f"Keras cannot rebuild its network: {_keras_reason(exc)}") from exc
    inputs, outputs = clf.model_.inputs[0].shape[-1], clf.model_.outputs[0].shape[-1]
    if (inputs, outputs) != (clf.n_features_in_, clf.n_classes_):
        raise fail(
            f"its network maps {inputs} pixels to {outputs} classes, its metadata says "
            f"{clf.n_features_in_} pixels and {clf.n_classes_} classes"
        )
    clf.diagnosis_ = clf._diagnose(clf.history_, loss_known)
    return clf


def _decode_param_1(value: Any) -> Any:
    """A parameter of a classifier file of format version 1, decoded."""
    if isinstance(value, list):
        raise TypeError(f"untagged list {_brief(value)} in the saved parameters")
    if not isinstance(value, dict):
        return value
    if value.keys() == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode_param_1(v) for v in value["tuple"])
    if value.keys() == {"list"} and isinstance(value["list"], list):
        return [_decode_param_1(v) for v in value["list"]]
    if value.keys() == {"dict"} and isinstance(value["dict"], list):
        return {_decode_param_1(k): _decode_param_1(v) for k, v in value["dict"]}
    raise TypeError(f"unexpected object {_brief(value)} in the saved parameters")


def _restore_classifier(metadata: dict, written: str, decode: Any) -> Any:
    """An unfitted-network classifier with the parameters (decoded by ``decode``) and fitted
    attributes of ``metadata``.

    Raises
    ------
    KeyError, TypeError, ValueError
        If a field is missing, of the wrong type or inconsistent with another.
    """
    from skcharclf.classifier import KerasCharClassifier

    params = metadata["params"]
    if not isinstance(params, dict):
        raise TypeError(f"params is a {type(params).__name__}, not an object")
    known = KerasCharClassifier().get_params(deep=False)
    for name in params:
        if name not in known:
            raise ValueError(
                f"saved parameter {_brief(name)} is unknown to this skcharclf "
                f"({_skcharclf_version()}); the file was written by skcharclf {written}"
            )
    clf = KerasCharClassifier(**{name: decode(v) for name, v in params.items()})
    try:
        clf._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"{short_text(str(exc), 300)} (a saved parameter; the file was written by "
            f"skcharclf {written})"
        ) from exc
    kind = metadata["classes_dtype"]
    dtype = object if kind == "object" else np.dtype(kind)
    if dtype is not object and (dtype.kind not in "biufU" or dtype.itemsize > 4096):
        raise ValueError(f"classes of dtype {dtype} are not allowed")
    classes = np.array(_list_of(metadata, "classes", (bool, int, float, str)), dtype=dtype)
    if classes.ndim != 1 or classes.size == 0:
        raise ValueError("classes must be a non-empty list")
    encoder = clf.target_encoder.fit(classes)
    vars(clf).update(encoder.get_metadata())
    clf.target_encoder_ = encoder
    shape = _list_of(metadata, "image_shape", int)
    if len(shape) != 2 or min(shape) < 1 or math.prod(shape) != metadata["n_features_in"]:
        raise ValueError(
            f"image_shape {_brief(shape)} does not match n_features_in "
            f"{_brief(metadata['n_features_in'])}"
        )
    clf.n_features_in_ = math.prod(shape)
    clf.image_shape_ = tuple(shape)
    clf.initial_loss_ = _number(metadata, "initial_loss")
    clf.class_priors_ = np.asarray(_list_of(metadata, "class_priors", (int, float)), float)
    if clf.class_priors_.shape != classes.shape:
        raise ValueError("class_priors must hold one number per class")
    clf.history_ = _history(metadata["history"])
    best = metadata["best_epoch"]
    if not isinstance(best, int) or not 0 <= best < len(clf.history_["loss"]):
        raise ValueError(f"best_epoch {_brief(best)} is not an epoch of the history")
    clf.best_epoch_ = best
    # Files written before unvalidated_classes was saved: all classes without validation
    # curves, none with them.
    if "unvalidated_classes" in metadata:
        unvalidated = _list_of(metadata, "unvalidated_classes", int)
        if not all(0 <= k < classes.size for k in unvalidated):
            raise ValueError("unvalidated_classes must hold indices into classes")
    else:
        unvalidated = [] if "val_loss" in clf.history_ else list(range(classes.size))
    clf.unvalidated_classes_ = classes[np.asarray(unvalidated, dtype=int)]
    return clf


def _list_of(metadata: dict, key: str, types: type | tuple) -> list:
    value = metadata[key]
    if not isinstance(value, list) or not all(
        isinstance(v, types) and (types is not int or not isinstance(v, bool)) for v in value
    ):
        raise TypeError(f"{key} is not a list of {getattr(types, '__name__', 'values')}")
    return value


def _number(metadata: dict, key: str) -> float:
    value = metadata[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{key} is a {type(value).__name__}, not a number")
    return float(value)


def _history(history: Any) -> dict[str, list[float]]:
    """The saved learning curves: lists of numbers of one length, with a ``"loss"`` curve."""
    if not isinstance(history, dict) or "loss" not in history:
        raise TypeError("history is not an object with a 'loss' curve")
    lengths = set()
    for key, curve in history.items():
        if not isinstance(curve, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in curve
        ):
            raise TypeError(f"history curve {_brief(key)} is not a list of numbers")
        lengths.add(len(curve))
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError("history curves must be non-empty and of one length")
    return {key: [float(v) for v in curve] for key, curve in history.items()}


def _keras_reason(exc: BaseException) -> str:
    """The innermost cause in a Keras deserialisation error, in one short sentence.

    Keras nests each failing object's error in its parent's ("... Exception encountered:
    ..."), quoting every configuration on the way.
    """
    innermost = str(exc).rsplit("Exception encountered:", 1)[-1]
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", innermost).splitlines() if line.strip()]
    sentence = lines[0].split(". ", 1)[0].strip() if lines else type(exc).__name__
    return short_text(sentence, 200)


_NETWORK_CONFIG = "config.json"  # the network configuration inside a .keras file


def _brief(value: Any) -> str:
    return short_text(repr(value))
