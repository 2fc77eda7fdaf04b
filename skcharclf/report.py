"""A self-contained HTML report card for a fitted character classifier.

:func:`make_report` writes one HTML file that holds everything it shows: plots are inline
PNG ``data:`` URIs, the style sheet is inline, nothing is fetched from the network and no
JavaScript runs, so the file can be mailed, archived with an experiment or opened on a phone.
"""

from __future__ import annotations

import base64
import datetime
import functools
import html
import math
import os
from collections.abc import Sequence
from importlib import resources
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from . import __version__
from . import _plotting as plots
from ._atomic import atomic_output
from ._audit_report import AUDIT_SECTIONS, audit_sections
from ._format import epoch_span, format_value
from ._images import check_image_batch, is_flat_batch, resolve_image_shape
from ._utils import final_estimator

__all__ = ["make_audit_report", "make_report"]

_ELLIPSIS = "\u2026"  # the end of a shortened list of values or epochs

_SAMPLES = 8  # sample images shown per class
_SECTIONS = (
    ("summary", "Summary"),
    ("class-balance", "Class balance"),
    ("samples", "Samples"),
    ("learning-curves", "Learning curves"),
    ("lr-find", "Learning-rate range test"),
    ("confusion-matrix", "Confusion matrix"),
    ("per-class", "Per class"),
    ("mistakes", "Mistakes"),
    ("dataset-analysis", "Dataset analysis"),
)
# Rows of the page: pairs of related sections share a row on wide screens, unless there are
# more than _MAX_PAIRED_CLASSES classes.
_MAX_PAIRED_CLASSES = 12
_LAYOUT = (
    ("summary",),
    ("class-balance", "samples"),
    ("learning-curves",),
    ("lr-find",),
    ("confusion-matrix", "per-class"),
    ("mistakes",),
    ("dataset-analysis",),
)


@validate_params(
    {
        "model": [HasMethods(["predict"])],
        "X_test": ["array-like"],
        "y_test": ["array-like"],
        "path": [str, os.PathLike],
        "X_train": ["array-like", None],
        "y_train": ["array-like", None],
        "title": [str],
        "analysis": [HasMethods(["to_dict"]), None],
        "max_mistakes": [Interval(Integral, 0, None, closed="left")],
        "lr_find": [object],  # checked below: importing its class would start TensorFlow
    },
    prefer_skip_nested_validation=True,
)
def make_report(
    model: Any,
    X_test: Any,
    y_test: Any,
    path: str | os.PathLike,
    X_train: Any = None,
    y_train: Any = None,
    *,
    title: str = "skcharclf report",
    analysis: Any = None,
    max_mistakes: int = 24,
    lr_find: Any = None,
) -> Path:
    """Write an HTML report card of a fitted classifier evaluated on a test set.

    The report has eight sections: summary metrics; class balance; a grid of sample images
    per class; learning curves with the training diagnosis marked on them (followed by the
    learning-rate range test when ``lr_find`` is given); a row-normalised
    confusion matrix; precision, recall and F1 per class (table and bars); the most confident
    mistakes; and the dataset analysis with its recommendations. The file is self-contained
    (inline images and style, no network access, no JavaScript) and readable on a phone.

    Parameters
    ----------
    model : fitted classifier
        Anything with ``predict``: a pipeline from :func:`~skcharclf.make_char_pipeline` or
        :func:`~skcharclf.make_baseline_pipeline`, a bare
        :class:`~skcharclf.KerasCharClassifier`, or any scikit-learn classifier. Learning
        curves come from the final estimator's ``history_`` and ``diagnosis_``; a model
        without them (a RandomForest) gets a note instead. ``predict_proba``, when present,
        adds the macro one-vs-rest ROC AUC and the confidence of each mistake.
    X_test : image batch or flat batch
        The test images in the form ``model`` takes: a (possibly ragged) list of 2D images,
        a 3D / 4D array, or a flat ``(n_samples, H*W)`` batch, which is shown reshaped to the
        model's ``image_shape_`` (square when it has none).
    y_test : array-like of shape (n_samples,)
        True labels of ``X_test``.
    path : str or path-like
        Where to write the HTML file (its folder must exist).
    X_train, y_train : image batch and array-like, optional
        The training data. When given, the class balance and sample grid show it and the
        dataset analysis covers it (with leakage checks against ``X_test``); otherwise they
        show the test set.
    title : str, default="skcharclf report"
        Title of the page.
    analysis : DatasetReport, optional
        A precomputed :func:`~skcharclf.analyze_dataset` result, which saves recomputing it.
        By default it is computed on ``X_train, y_train`` (or on the test set).
    max_mistakes : int, default=24
        How many misclassified test images to show, most confident first.
    lr_find : LRFindResult, optional
        A learning-rate range test (:func:`~skcharclf.lr_find`) to show after the learning
        curves: the loss against the rate, with the suggested rate.

    Returns
    -------
    path : pathlib.Path
        The path of the written report.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install skcharclf[plot]``).
    ValueError
        If ``X_test`` and ``y_test`` (or ``X_train`` and ``y_train``) differ in length, or
        only one of ``X_train`` and ``y_train`` is given.
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.

    See Also
    --------
    skcharclf.analyze_dataset : The dataset analysis shown in the last section.
    skcharclf.diagnose_history : The learning-curve diagnosis marked on the curves.

    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from skcharclf import make_baseline_pipeline, make_report
    >>> from skcharclf.datasets import load_digit_chars
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, stratify=y, random_state=0)
    >>> model = make_baseline_pipeline(random_state=0).fit(X_train, y_train)
    >>> make_report(model, X_test, y_test, "report.html", X_train, y_train)  # doctest: +SKIP
    PosixPath('report.html')
    """
    plots.import_matplotlib()  # fail before any expensive work
    if lr_find is not None and not hasattr(lr_find, "suggested_rate"):
        raise TypeError(
            f"lr_find must be the LRFindResult of skcharclf.lr_find, got {type(lr_find).__name__}."
        )
    check_is_fitted(model)
    y_test = _check_labels(X_test, y_test, "X_test", "y_test")
    if (X_train is None) != (y_train is None):
        raise ValueError("give both X_train and y_train, or neither.")
    if y_train is not None:
        y_train = _check_labels(X_train, y_train, "X_train", "y_train")

    final = final_estimator(model)
    test_images = _display_images(X_test, final)
    y_pred = np.asarray(model.predict(X_test))
    proba = np.asarray(model.predict_proba(X_test)) if hasattr(model, "predict_proba") else None
    model_classes, classes = _classes(model, y_test, y_pred)
    confidence = _confidence(y_pred, proba, model_classes)
    history, findings = _training_record(final, len(model_classes))
    if analysis is None:
        from .diagnostics import analyze_dataset

        if X_train is not None:
            analysis = analyze_dataset(X_train, y_train, X_test=X_test)
        else:
            analysis = analyze_dataset(X_test, y_test)
    if X_train is not None:
        data_images, data_labels, data_name = _display_images(X_train, final), y_train, "training"
    else:
        data_images, data_labels, data_name = test_images, y_test, "test"
    labels = [str(c) for c in classes]

    with plots.style():
        sections = [
            _summary_section(
                y_test, y_pred, proba, model_classes, classes, y_train, history, findings
            ),
            _balance_section(data_labels, classes, labels, data_name, analysis),
            _samples_section(data_images, data_labels, classes, labels, data_name),
            _curves_section(final, history, findings, len(model_classes)),
            *([] if lr_find is None else [_lr_find_section(final, lr_find)]),
            _confusion_section(y_test, y_pred, classes, labels),
            _per_class_section(y_test, y_pred, classes, labels),
            _mistakes_section(test_images, y_test, y_pred, confidence, max_mistakes),
            _analysis_section(analysis, data_name),
        ]
    # Side by side, charts of many classes would be too small to read.
    layout = _LAYOUT if len(classes) <= _MAX_PAIRED_CLASSES else [(sid,) for sid, _ in _SECTIONS]
    shown = {sid for sid, *_ in sections}
    layout = [row for row in layout if set(row) <= shown]
    document = _page(title, _describe_model(model), sections, layout)
    path = Path(path)
    with atomic_output(path) as partial:
        partial.write_text(document, encoding="utf-8")
    return path


@validate_params(
    {
        "audit": [HasMethods(["to_rows"])],
        "X": ["array-like"],
        "path": [str, os.PathLike],
        "title": [str],
        "max_shown": [Interval(Integral, 0, None, closed="left")],
        "n_typical": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_audit_report(
    audit: Any,
    X: Any,
    path: str | os.PathLike,
    *,
    title: str = "skcharclf label audit",
    max_shown: int = 100,
    n_typical: int = 4,
) -> Path:
    """Write the HTML page of a label audit: the suspected images beside typical images.

    The page has three sections: what was audited (folds, thresholds and status of every
    class, what the audit cannot judge); the suspected label errors, lowest score first,
    each beside the images the model is surest of in its given class and in the suggested
    class; and the copies of one image that carry different labels. Like
    :func:`make_report`, the file is self-contained (inline images and style, no network
    access, no JavaScript).

    Parameters
    ----------
    audit : LabelAudit
        The result of :func:`skcharclf.diagnostics.audit_labels`.
    X : image batch or flat batch
        The audited images, in the order of the audit (flat rows are shown as squares).
    path : str or path-like
        Where to write the HTML file (its folder must exist).
    title : str, default="skcharclf label audit"
        Title of the page.
    max_shown : int, default=100
        How many suspected images to show, likeliest errors first.
    n_typical : int, default=4
        Typical images shown per class: the class's images with the highest out-of-fold
        probability of their label, among those not suspected.

    Returns
    -------
    path : pathlib.Path
        The path of the written page.

    Raises
    ------
    ValueError
        If ``X`` does not hold as many images as the audit.

    See Also
    --------
    skcharclf.diagnostics.audit_labels : The audit the page shows.
    skcharclf.diagnostics.LabelAudit.to_csv : The same findings as an editable CSV file.

    Examples
    --------
    >>> from skcharclf import make_baseline_pipeline
    >>> from skcharclf.datasets import load_digit_chars
    >>> from skcharclf.diagnostics import audit_labels
    >>> from skcharclf.report import make_audit_report
    >>> X, y = load_digit_chars(return_X_y=True)
    >>> audit = audit_labels(make_baseline_pipeline(random_state=0), X, y)  # doctest: +SKIP
    >>> make_audit_report(audit, X, "audit.html")  # doctest: +SKIP
    PosixPath('audit.html')
    """
    images = _display_images(X, None)
    n_audited = len(audit.label_issues.labels)
    if len(images) != n_audited:
        raise ValueError(f"X holds {len(images)} images but the audit covers {n_audited}.")
    sections = audit_sections(
        audit, images, _thumbnail_html, max_shown=max_shown, n_typical=n_typical
    )
    subtitle = f"{n_audited:,} images, {len(audit.classes)} classes"
    document = _page(title, subtitle, sections, [(sid,) for sid, _ in AUDIT_SECTIONS])
    path = Path(path)
    with atomic_output(path) as partial:
        partial.write_text(document, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _check_labels(X: Any, y: Any, x_name: str, y_name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{y_name} must be 1-D (one label per image), got shape {y.shape}.")
    n_images = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_images != len(y):
        raise ValueError(
            f"{x_name} holds {n_images} images but {y_name} holds {len(y)} labels; they must match."
        )
    return y


def _display_images(X: Any, final: Any) -> list[np.ndarray]:
    """The images of a batch as 2D arrays to show: raw images as they are, flat rows reshaped."""
    if is_flat_batch(X):
        flat = np.asarray(X, dtype=np.float32)
        shape = getattr(final, "image_shape_", None)
        if shape is None or int(np.prod(shape)) != flat.shape[1]:
            shape = resolve_image_shape("auto", flat.shape[1])
        return list(np.clip(flat, 0.0, 1.0).reshape(-1, *shape))
    return check_image_batch(X, dense=False)


def _classes(model: Any, y_test: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's classes (the columns of ``predict_proba``) and the classes to display.

    Test labels the model never saw still belong in the confusion matrix and the table.
    """
    model_classes = getattr(model, "classes_", None)
    if model_classes is None:
        model_classes = unique_labels(y_test, y_pred)
    model_classes = np.asarray(model_classes)
    unseen = np.setdiff1d(unique_labels(y_test), model_classes)
    shown = unique_labels(model_classes, y_test) if unseen.size else model_classes
    return model_classes, shown


def _confidence(y_pred: np.ndarray, proba: Any, classes: np.ndarray) -> np.ndarray | None:
    """The probability the model gave its own prediction, per sample (None without proba)."""
    if proba is None or proba.ndim != 2 or proba.shape[1] != len(classes):
        return None
    column = {c: k for k, c in enumerate(classes.tolist())}
    index = np.array([column[v] for v in y_pred.tolist()], dtype=int)
    return proba[np.arange(len(y_pred)), index]


def _training_record(final: Any, n_classes: int) -> tuple[dict | None, list[Any]]:
    """The final estimator's per-epoch history (None if it has none) and its findings."""
    history = getattr(final, "history_", None)
    if not history or not len(history.get("loss", ())):
        return None, []
    n_epochs = len(history["loss"])
    history = {key: _per_epoch(values, n_epochs) for key, values in history.items()}
    findings = getattr(final, "diagnosis_", None)
    if findings is None:
        from .diagnostics import diagnose_history

        findings = diagnose_history(
            history, n_classes=n_classes, initial_loss=getattr(final, "initial_loss_", None)
        )
    order = {"error": 0, "warning": 1, "info": 2}
    return history, sorted(findings, key=lambda f: order.get(f.severity, 3))


def _per_epoch(values: Sequence[float], n_epochs: int) -> np.ndarray:
    """A history list as floats, one per epoch (NaN where a metric was not recorded)."""
    values = np.asarray(values, dtype=float).ravel()[:n_epochs]
    return np.pad(values, (0, n_epochs - values.size), constant_values=np.nan)


# --------------------------------------------------------------------------------------------
# Sections: each returns (id, heading, lead text, body HTML)
# --------------------------------------------------------------------------------------------


def _summary_section(
    y_test, y_pred, proba, model_classes, classes, y_train, history, findings
) -> tuple:
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_test, y_pred, average="macro", zero_division=0
    )
    auc, auc_note = _macro_auc(y_test, proba, model_classes)
    tiles = [
        ("Accuracy", accuracy_score(y_test, y_pred), "share of test images classified right"),
        (
            "Balanced accuracy",
            balanced_accuracy_score(y_test, y_pred),
            "mean recall over classes: each class counts the same",
        ),
        ("Macro F1", f1, "unweighted mean of the per-class F1 scores"),
        ("Macro precision", precision, "mean over classes of: right / predicted as the class"),
        ("Macro recall", recall, "mean over classes of: right / true members of the class"),
    ]
    if auc is not None:
        tiles.append(("Macro ROC AUC", auc, auc_note))
    body = ['<div class="kpis">']
    for name, value, help_text in tiles:
        body.append(
            f'<div class="kpi" title="{_e(help_text)}"><div class="l">{_e(name)}</div>'
            f'<div class="v">{value:.3f}</div>'
            f'<div class="bar"><i style="width:{100 * value:.1f}%"></i></div></div>'
        )
    body.append("</div>")
    facts = [
        ("test images", f"{len(y_test):,}"),
        ("classes", f"{len(classes)}"),
        ("errors", f"{int(np.sum(y_pred != y_test)):,}"),
    ]
    if y_train is not None:
        facts.insert(0, ("training images", f"{len(y_train):,}"))
    if history is not None:
        facts.append(("training findings", _count_by_severity(findings)))
    body.append(_facts_html(facts))
    lead = "Scores on the test set. Macro averages weigh every class equally, rare or not."
    return "summary", "Summary", lead, "".join(body)


def _macro_auc(y_test, proba, classes) -> tuple[float | None, str]:
    """Macro one-vs-rest ROC AUC over the classes that have positives and negatives."""
    if proba is None or proba.ndim != 2 or proba.shape[1] != len(classes):
        return None, ""
    scores = []
    for k, cls in enumerate(classes):
        positives = y_test == cls
        if positives.all() or not positives.any():
            continue
        scores.append(roc_auc_score(positives, proba[:, k]))
        if len(classes) == 2:  # the two one-vs-rest AUCs of a binary problem are equal
            break
    if not scores:
        return None, ""
    note = "mean one-vs-rest area under the ROC curve"
    present = len(scores) if len(classes) > 2 else 2
    if present < len(classes):
        note += f" (over the {present} of {len(classes)} classes present in the test set)"
    return float(np.mean(scores)), note


def _count_by_severity(findings: Sequence[Any]) -> str:
    if not findings:
        return "no"
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    order = ("error", "warning", "info")
    return ", ".join(f"{counts[s]} {s}" for s in order if s in counts)


def _balance_section(y, classes, labels, data_name, analysis) -> tuple:
    counts = np.array([int(np.sum(y == c)) for c in classes])
    rare = _rare_mask(classes, counts, analysis)
    fig = plots.class_balance(labels, counts, rare, f"{data_name} images")
    largest, smallest = int(np.argmax(counts)), int(np.argmin(counts))
    facts = [
        ("largest class", f"{labels[largest]} ({counts[largest]:,})"),
        ("smallest class", f"{labels[smallest]} ({counts[smallest]:,})"),
        (
            "imbalance ratio",
            f"{counts[largest] / counts[smallest]:.1f}" if counts[smallest] else "\u221e",
        ),
        (
            "rare classes",
            ", ".join(lab for lab, r in zip(labels, rare, strict=True) if r) or "none",
        ),
    ]
    lead = (
        f"How many {data_name} images each class has; rare classes are in orange. A model "
        "trained on imbalanced data tends to neglect rare classes: compare with their recall "
        "under Per-class metrics."
    )
    body = _figure_html(
        fig, f"Bar chart of the number of {data_name} images per class."
    ) + _facts_html(facts)
    return "class-balance", "Class balance", lead, body


def _facts_html(facts: Sequence[tuple[str, str]]) -> str:
    return (
        '<ul class="facts">'
        + "".join(f"<li><b>{_e(value)}</b> {_e(name)}</li>" for name, value in facts)
        + "</ul>"
    )


def _rare_mask(classes, counts, analysis) -> list[bool]:
    rare = getattr(analysis, "rare_classes", None)
    if rare is not None:
        names = {str(c) for c in rare}
        return [str(c) in names for c in classes]
    # analyze_dataset's default: under half the largest class
    return [bool(c < 0.5 * counts.max()) for c in counts]


def _samples_section(images, y, classes, labels, data_name) -> tuple:
    rng = np.random.default_rng(0)
    rows = []
    for cls, label in zip(classes, labels, strict=True):
        members = np.flatnonzero(y == cls)
        chosen = np.sort(rng.choice(members, size=min(_SAMPLES, members.size), replace=False))
        thumbs = "".join(_thumbnail_html(images[i], f"{label} sample") for i in chosen)
        rows.append(
            f'<div class="srow"><span class="slab">{_e(label)}</span>'
            f'<span class="thumbs">{thumbs or "<i>none</i>"}</span></div>'
        )
    lead = (
        f"Up to {_SAMPLES} random {data_name} images per class, at their raw size and "
        "before any preprocessing: look for noise, varying widths, inverted polarity and "
        "images that do not look like their class."
    )
    return "samples", "Samples", lead, '<div class="samples">' + "".join(rows) + "</div>"


def _thumbnail_html(image: np.ndarray, alt: str) -> str:
    data = base64.b64encode(plots.thumbnail_png(image)).decode("ascii")
    height, width = image.shape
    return (
        f'<img class="thumb" src="data:image/png;base64,{data}" alt="{_e(alt)}" '
        f'width="{width}" height="{height}" style="aspect-ratio:{width}/{height}">'
    )


_CURVES = (
    ("loss", "Loss", {}),
    ("accuracy", "Accuracy", {"percent": True}),
    ("f1_macro", "Macro F1", {"percent": True}),
    ("learning_rate", "Learning rate", {"log_y": True}),
)


def _curves_section(final, history, findings, n_classes: int) -> tuple:
    heading = "Learning curves"
    if history is None:
        lead = (
            f"{type(final).__name__} keeps no training history, so there are no learning "
            "curves to show. Neural models (KerasCharClassifier) record loss, accuracy and "
            "macro F1 per epoch here, with the diagnosis marked on them."
        )
        return "learning-curves", heading, lead, '<p class="note">No training history.</p>'

    epochs = np.arange(1, len(history["loss"]) + 1)
    markers = [
        (number, [e for e in finding.epochs if 0 <= e <= epochs[-1]], finding.severity)
        for number, finding in enumerate(findings, start=1)
    ]
    markers = [m for m in markers if m[1]]
    best = getattr(final, "best_epoch_", None)
    best = int(best) + 1 if best is not None and len(epochs) > 1 else None

    panels = []
    for key, name, options in _CURVES:
        train, val = history.get(key), history.get(f"val_{key}")
        if train is None and val is None:
            continue
        if key == "learning_rate":
            if train is None or np.ptp(train) == 0:
                continue  # a constant rate is one number, not a curve
            fig = plots.learning_curve(epochs, train, None, title=name, legend=False, **options)
        else:
            if key == "loss":
                options = {
                    "reference": (math.log(n_classes), f"ln C = {math.log(n_classes):.2f}"),
                    "initial": getattr(final, "initial_loss_", None),
                }
            fig = plots.learning_curve(
                epochs,
                train,
                val,
                title=name,
                markers=markers,
                best_epoch=best,
                legend=not panels,
                **options,
            )
        panels.append(_figure_html(fig, f"Learning curve: {name.lower()} per epoch."))
    body = ['<div class="grid g2">', *panels, "</div>"]
    if findings:
        body += ["<h3>Diagnosis</h3>", _findings_html(findings)]
    else:
        body.append(
            '<div class="finding ok"><b>No findings.</b> The curves show none of the symptoms '
            "the diagnosis looks for (overfitting, underfitting, plateaus, divergence, "
            "oscillation, split problems, initialisation problems).</div>"
        )
    lead = (
        "Training (blue) and validation (orange) curves per epoch"
        if "val_loss" in history
        else "Training curves per epoch (no validation set was used)"
    )
    if findings:
        lead += "; numbered markers point at the epochs of the findings listed below"
    if best is not None:
        lead += "; the star marks the epoch whose weights were kept"
    lead += "."
    return "learning-curves", heading, lead, "".join(body)


def _lr_find_section(final: Any, result: Any) -> tuple:
    fig = plots.lr_find_curve(result)
    current = getattr(final, "learning_rate", None)
    facts = [
        ("suggested learning rate", f"{result.suggested_rate:.3g}"),
        ("rate at the lowest smoothed loss", f"{result.min_loss_rate:.3g}"),
        (f"steps, rates {result.rates[0]:.3g} to {result.rates[-1]:.3g}", f"{len(result.rates)}"),
    ]
    if current is not None:
        facts.append(("learning_rate of this model", f"{current:g}"))
    lead = (
        "The training loss of a fresh network while its learning rate grew exponentially, "
        "one batch per rate (skcharclf.lr_find): flat where the rate is too small to matter, "
        "falling where it trains, exploding where it is too high"
        + (" (the test stopped there)" if result.diverged else "")
        + ". The suggestion is a tenth of the rate at the lowest smoothed loss."
    )
    body = _figure_html(fig, "Loss against learning rate.") + _facts_html(facts)
    return "lr-find", "Learning-rate range test", lead, body


def _findings_html(findings: Sequence[Any], *, numbered: bool = True) -> str:
    """Finding cards: severity, title, rule code and epochs, explanation, evidence, remedies."""
    items = []
    for number, finding in enumerate(findings, start=1):
        severity = _e(finding.severity)
        evidence = "".join(
            f"<tr><th>{_e(key)}</th><td>{_e(format_value(value, ellipsis=_ELLIPSIS))}</td></tr>"
            for key, value in dict(finding.evidence or {}).items()
        )
        remedies = "".join(f"<li>{_e(remedy)}</li>" for remedy in finding.remedies or ())
        epochs = list(finding.epochs or ())
        where = f" \u00b7 {_e(_epoch_list(epochs))}" if epochs else ""
        badge = f'<span class="num {severity}">{number}</span>' if numbered else ""
        items.append(
            f'<div class="finding {severity}"><div class="fhead">{badge}'
            f'<span class="badge {severity}">{severity}</span>'
            f"<b>{_e(finding.title)}</b>"
            f'<span class="code">{_e(finding.code)}{where}</span></div>'
            + (f"<p>{_e(finding.explanation)}</p>" if finding.explanation else "")
            + (f'<table class="evidence">{evidence}</table>' if evidence else "")
            + (f'<p class="rl">What to try</p><ul>{remedies}</ul>' if remedies else "")
            + "</div>"
        )
    return "".join(items)


def _epoch_list(epochs: Sequence[int]) -> str:
    """'epochs 3-9', 'epochs 2, 5, 7' or 'before training' (epoch 0)."""
    epochs = sorted({int(e) for e in epochs})
    if epochs == [0]:
        return "before training"
    span = epoch_span(epochs, dash="\u2013", ellipsis=_ELLIPSIS)
    return f"epoch{'s' if len(epochs) > 1 else ''} {span}"


def _confusion_section(y_test, y_pred, classes, labels) -> tuple:
    counts = sk_confusion_matrix(y_test, y_pred, labels=classes)
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(support > 0, counts / np.maximum(support, 1), np.nan)
    fig = plots.confusion_matrix(matrix, labels)
    off = matrix.copy()
    np.fill_diagonal(off, np.nan)
    lead = "Each row is a true class and sums to 100 %: the diagonal is the recall of the class, "
    lead += "off-diagonal cells show where its images go instead."
    if np.isfinite(off).any() and np.nanmax(off) > 0:
        i, j = np.unravel_index(np.nanargmax(off), off.shape)
        lead += (
            f" The largest confusion: {100 * matrix[i, j]:.0f} % of class {labels[i]} "
            f"predicted as {labels[j]}."
        )
    body = _figure_html(fig, "Row-normalised confusion matrix.")
    return "confusion-matrix", "Confusion matrix", lead, body


def _per_class_section(y_test, y_pred, classes, labels) -> tuple:
    precision, recall, f1, support = precision_recall_fscore_support(
        y_test, y_pred, labels=classes, zero_division=0
    )
    rows = []
    present = support > 0
    worst = int(np.argmin(np.where(present, f1, np.inf))) if present.any() else -1
    for k, label in enumerate(labels):
        cells = "".join(
            _score_cell(value) if support[k] else '<td class="na">\u2014</td>'
            for value in (precision[k], recall[k], f1[k])
        )
        marker = ' class="worst"' if k == worst else ""
        rows.append(f"<tr{marker}><td>{_e(label)}</td>{cells}<td>{support[k]:,}</td></tr>")
    table = (
        '<div class="scroll"><table class="metrics"><thead><tr><th>class</th><th>precision</th>'
        "<th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
    fig = plots.per_class_bars(labels, {"precision": precision, "recall": recall, "f1": f1})
    lead = (
        "Precision: of the images predicted as the class, the share that belong to it. "
        "Recall: of the images of the class, the share found. F1 is their harmonic mean; "
        "support is the number of test images of the class."
    )
    if worst >= 0:
        lead += f" The weakest class by F1 is {labels[worst]} ({f1[worst]:.2f}), in bold."
    body = table + _figure_html(fig, "Grouped bars of precision, recall and F1 per class.")
    return "per-class", "Per-class metrics", lead, body


def _score_cell(value: float) -> str:
    return f'<td class="m" style="--v:{100 * value:.1f}%">{value:.3f}</td>'


def _mistakes_section(images, y_test, y_pred, confidence, max_mistakes) -> tuple:
    wrong = np.flatnonzero(y_pred != y_test)
    heading = "Most confident mistakes"
    if confidence is not None:
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:max_mistakes]
    lead = f"{len(wrong):,} of {len(y_test):,} test images are misclassified. " + (
        f"The {len(shown)} the model was surest about are shown: under each, its true class "
        "and the predicted class with the probability given to it. Confident mistakes point "
        "at mislabelled images, look-alike classes or missing preprocessing."
        if confidence is not None
        else f"The first {len(shown)} are shown with their true and predicted class."
    )
    if len(shown) == 0:
        note = "No mistakes on the test set." if len(wrong) == 0 else "max_mistakes=0."
        return "mistakes", heading, lead, f'<p class="note">{_e(note)}</p>'
    cards = []
    for i in shown:
        score = (
            "" if confidence is None else f'<div class="mc">{100 * confidence[i]:.0f}% sure</div>'
        )
        cards.append(
            '<div class="mcard">'
            + _thumbnail_html(images[i], f"test image {i}: {y_test[i]} predicted as {y_pred[i]}")
            + f'<div class="mt">true <b>{_e(y_test[i])}</b></div>'
            f'<div class="mp">pred <b>{_e(y_pred[i])}</b></div>{score}</div>'
        )
    return "mistakes", heading, lead, '<div class="mistakes">' + "".join(cards) + "</div>"


def _analysis_section(analysis, data_name) -> tuple:
    lead = (
        f"What skcharclf.analyze_dataset finds in the {data_name} data: balance, sizes, "
        "polarity, noise, duplicates and train/test leakage, and what to do about it."
    )
    body = [_facts_html(_analysis_facts(analysis))]
    recommendations = list(getattr(analysis, "recommendations", None) or [])
    if recommendations:
        body += ["<h3>Recommendations</h3>", _findings_html(recommendations, numbered=False)]
    else:
        body.append('<p class="note">No recommendations: nothing in the data calls for action.</p>')
    body.append(
        f"<details><summary>Full analysis</summary><pre>{_e(str(analysis))}</pre></details>"
    )
    return "dataset-analysis", "Dataset analysis", lead, "".join(body)


def _analysis_facts(analysis: Any) -> list[tuple[str, str]]:
    """Headline numbers of a DatasetReport (the ones it has)."""
    facts = []
    n_samples = getattr(analysis, "n_samples", None)
    if n_samples is not None:
        facts.append(("images", f"{n_samples:,}"))
    for name, key in (("height", "height"), ("width", "width")):
        stats = getattr(analysis, key, None)
        if stats:
            low, high = stats["min"], stats["max"]
            facts.append((name, f"{low:g}" if low == high else f"{low:g}\u2013{high:g} px"))
    for name, key, scale in (
        ("dark ink on light", "dark_on_light_fraction", 100),
        ("isolated (noise) pixels", "isolated_pixel_fraction", 100),
    ):
        value = getattr(analysis, key, None)
        if value is not None:
            facts.append((name, f"{scale * value:.{0 if value > 0.1 else 2}f}%"))
    groups = getattr(analysis, "exact_duplicate_groups", None)
    if groups is not None:
        near = getattr(analysis, "near_duplicate_groups", None) or []
        facts.append(("exact / near duplicate groups", f"{len(groups)} / {len(near)}"))
    if getattr(analysis, "n_test_samples", None) is not None:
        leaked = len(getattr(analysis, "test_exact_duplicates", ()) or ()) + len(
            getattr(analysis, "test_near_duplicates", ()) or ()
        )
        facts.append(("test images copying a training image", f"{leaked:,}"))
    return facts


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _figure_html(fig: Any, alt: str) -> str:
    png, (width, height) = plots.figure_to_png(fig)
    data = base64.b64encode(png).decode("ascii")
    # width/height attributes give the browser the aspect ratio before decoding (no layout
    # jump); CSS fits it to its column, at most 3/4 of its pixel size so text stays legible.
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}" '
        f'width="{width}" height="{height}" style="max-width:{round(0.75 * width)}px"></figure>'
    )


def _describe_model(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if steps:
        return " \u2192 ".join(
            f"{name}: {type(step).__name__}" for name, step in steps if step != "passthrough"
        )
    return type(model).__name__


@functools.cache
def _stylesheet() -> str:
    """The report's CSS, package data (``skcharclf/_static/report.css``)."""
    return resources.files("skcharclf").joinpath("_static/report.css").read_text(encoding="utf-8")


def _page(
    title: str, model_text: str, sections: Sequence[tuple], layout: Sequence[tuple[str, ...]]
) -> str:
    names = dict(_SECTIONS + AUDIT_SECTIONS)
    nav = "".join(f'<a href="#{sid}">{_e(names[sid])}</a>' for sid, *_ in sections)
    html_of = {
        sid: f'<section id="{sid}"><h2>{_e(heading)}</h2><p class="lead">{_e(lead)}</p>'
        f"{content}</section>"
        for sid, heading, lead, content in sections
    }
    body = "".join(
        f'<div class="pair">{"".join(html_of[sid] for sid in row)}</div>'
        if len(row) > 1
        else html_of[row[0]]
        for row in layout
    )
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="skcharclf {_e(__version__)}">'
        f"<title>{_e(title)}</title><style>{_stylesheet()}</style></head><body>"
        f'<header><div class="wrap"><h1>{_e(title)}</h1>'
        f'<p class="sub">{_e(model_text)}</p><nav>{nav}</nav></div></header>'
        f'<main class="wrap">{body}</main>'
        f'<footer class="wrap">Generated by skcharclf {_e(__version__)} on {_e(stamp)}.</footer>'
        "</body></html>\n"
    )
