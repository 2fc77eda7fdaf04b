"""Tests of the HTML report: content, self-containment, escaping, and rendering in Chromium."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

from skcharclf import ImageResizer, make_baseline_pipeline, make_report
from skcharclf.datasets import load_digit_chars
from skcharclf.diagnostics import analyze_dataset, diagnose_history

SECTION_IDS = (
    "summary",
    "class-balance",
    "samples",
    "learning-curves",
    "confusion-matrix",
    "per-class",
    "mistakes",
    "dataset-analysis",
)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


class HistoryClassifier(ClassifierMixin, BaseEstimator):
    """A small random forest that carries a scripted Keras-style training record.

    It stands in for KerasCharClassifier where the test is about how the report shows a
    history and its diagnosis, not about training a network: ``history_`` is an overfitting
    run and ``diagnosis_`` is what the real ``diagnose_history`` makes of it.
    """

    def __init__(self, n_epochs=20):
        self.n_epochs = n_epochs

    def fit(self, X, y):
        self.model_ = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
        self.classes_ = self.model_.classes_
        self.image_shape_ = (16, 16)
        epochs = np.arange(self.n_epochs)
        n_classes = len(self.classes_)
        loss = np.log(n_classes) * np.exp(-epochs / 3) + 0.01
        val_loss = np.log(n_classes) * np.exp(-epochs / 3) + 0.4 + 0.08 * np.maximum(epochs - 6, 0)
        accuracy = 1 - 0.9 * np.exp(-epochs / 2)
        val_accuracy = 0.8 - 0.7 * np.exp(-epochs / 2)
        self.history_ = {
            "loss": loss.tolist(),
            "val_loss": val_loss.tolist(),
            "accuracy": accuracy.tolist(),
            "val_accuracy": val_accuracy.tolist(),
            "f1_macro": accuracy.tolist(),
            "val_f1_macro": (val_accuracy - 0.05).tolist(),
            "learning_rate": (1e-3 * 0.5 ** (epochs // 5)).tolist(),
        }
        self.initial_loss_ = float(np.log(n_classes))
        self.best_epoch_ = 6
        self.diagnosis_ = diagnose_history(
            self.history_, n_classes=n_classes, initial_loss=self.initial_loss_
        )
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


@pytest.fixture(scope="module")
def chars():
    X, y = load_digit_chars(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def analysis(chars):
    X_train, X_test, y_train, _ = chars
    return analyze_dataset(X_train, y_train, X_test=X_test)


@pytest.fixture(scope="module")
def rf_model(chars):
    X_train, _, y_train, _ = chars
    return make_baseline_pipeline(n_estimators=25, random_state=0).fit(X_train, y_train)


@pytest.fixture(scope="module")
def history_model(chars):
    X_train, _, y_train, _ = chars
    model = Pipeline([("resize", ImageResizer(size=(16, 16))), ("clf", HistoryClassifier())])
    return model.fit(X_train, y_train)


@pytest.fixture(scope="module")
def rf_report(tmp_path_factory, chars, rf_model, analysis):
    X_train, X_test, y_train, y_test = chars
    path = tmp_path_factory.mktemp("rf") / "report.html"
    returned = make_report(rf_model, X_test, y_test, path, X_train, y_train, analysis=analysis)
    return returned, path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def history_report(tmp_path_factory, chars, history_model, analysis):
    X_train, X_test, y_train, y_test = chars
    path = tmp_path_factory.mktemp("history") / "report.html"
    make_report(history_model, X_test, y_test, path, X_train, y_train, analysis=analysis)
    return path, path.read_text(encoding="utf-8")


class _Collector(HTMLParser):
    """Every start tag with its attributes, and the text of the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(document: str) -> _Collector:
    collector = _Collector()
    collector.feed(document)
    return collector


def _section(document: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', document, re.S)
    assert match, f"section {section_id!r} missing"
    return match.group(1)


def _decode_images(fragment: str) -> list[np.ndarray]:
    uris = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', fragment)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(u), np.uint8), -1) for u in uris]


# --------------------------------------------------------------------------------------------
# Content and self-containment
# --------------------------------------------------------------------------------------------


def test_report_is_self_contained(rf_report):
    returned, path, document = rf_report
    assert returned == path
    parsed = _parse(document)
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) > 20  # charts plus sample and mistake thumbnails
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert attrs.get("alt")
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "srcset", "poster", "data", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {name}={value!r}>"
        if tag == "a":
            assert attrs["href"].startswith("#")
        assert tag not in {"script", "link", "iframe", "object", "embed"}
    assert "@import" not in document and "url(" not in document
    assert not re.search(r"https?://", document)
    viewport = [a for t, a in parsed.tags if t == "meta" and a.get("name") == "viewport"]
    assert viewport and "width=device-width" in viewport[0]["content"]
    for section_id in SECTION_IDS:
        assert f'<section id="{section_id}">' in document
        assert f'href="#{section_id}"' in document
    assert all(image is not None and image.size for image in _decode_images(document))


def test_summary_metrics_match_sklearn(rf_report, rf_model, chars):
    _, X_test, _, y_test = chars
    _, _, document = rf_report
    y_pred = rf_model.predict(X_test)
    summary = _section(document, "summary")
    assert f"{accuracy_score(y_test, y_pred):.3f}" in summary
    assert f"{f1_score(y_test, y_pred, average='macro'):.3f}" in summary
    for name in ("Accuracy", "Balanced accuracy", "Macro F1", "Macro precision", "Macro recall"):
        assert f">{name}<" in summary
    assert ">Macro ROC AUC<" in summary  # the forest has predict_proba
    assert f"<b>{len(y_test):,}</b> test images" in summary


def test_model_without_history_says_so(rf_report):
    _, _, document = rf_report
    curves = _section(document, "learning-curves")
    assert "RandomForestClassifier keeps no training history" in curves
    assert "<img" not in curves


def test_history_curves_and_findings(history_report, history_model):
    _, document = history_report
    curves = _section(document, "learning-curves")
    # loss, accuracy, macro F1 and the (stepped, so non-constant) learning rate
    assert len(_decode_images(curves)) == 4
    findings = history_model[-1].diagnosis_
    assert any(f.code == "overfitting" for f in findings)
    for finding in findings:
        assert html.escape(finding.title) in curves
        assert f'<span class="badge {finding.severity}">' in curves
        for remedy in finding.remedies:
            assert html.escape(remedy) in curves
    assert curves.count('<span class="num ') == len(findings)
    summary = _section(document, "summary")
    assert "training findings" in summary


def test_findings_show_their_epoch_span_and_evidence_like_the_printed_text(
    history_report, history_model
):
    """A finding's [first, last] epochs are a stretch of the run, as in format_findings."""
    _, document = history_report
    curves = _section(document, "learning-curves")
    overfitting = next(f for f in history_model[-1].diagnosis_ if f.code == "overfitting")
    first, last = overfitting.epochs
    assert last > first + 1
    assert f"epochs {first}\u2013{last}" in curves
    assert f"epochs: {first}-{last}" in str(overfitting)
    assert f"<td>{overfitting.evidence['best_val_loss']:.4g}</td>" in curves


class NoValidationClassifier(HistoryClassifier):
    """The same run as ``HistoryClassifier``, trained without a validation set."""

    def fit(self, X, y):
        super().fit(X, y)
        self.history_ = {k: v for k, v in self.history_.items() if not k.startswith("val_")}
        self.diagnosis_ = diagnose_history(self.history_, n_classes=len(self.classes_))
        return self


def test_report_says_when_overfitting_cannot_be_judged(tmp_path, chars, analysis):
    X_train, X_test, y_train, y_test = chars
    model = Pipeline(
        [("resize", ImageResizer(size=(16, 16))), ("clf", NoValidationClassifier())]
    ).fit(X_train, y_train)
    document = make_report(model, X_test, y_test, tmp_path / "r.html", analysis=analysis)
    curves = _section(document.read_text("utf-8"), "learning-curves")
    assert "no_validation" in curves
    assert "Overfitting cannot be judged, and training accuracy reached" in curves
    assert "the procedure&#x27;s classic overfitting sign" in curves
    assert "validation_data=(X_val, y_val)" in curves


def test_sample_grid_shows_raw_images(rf_report, chars):
    X_train, _, y_train, _ = chars
    _, _, document = rf_report
    samples = _section(document, "samples")
    thumbs = _decode_images(samples)
    n_classes = len(np.unique(y_train))
    assert len(thumbs) == 8 * n_classes  # every class has at least 8 training images
    raw_sizes = {image.shape for image in X_train}
    assert {thumb.shape for thumb in thumbs} <= raw_sizes  # raw, ragged, not resized
    assert len({thumb.shape for thumb in thumbs}) > 1


def test_mistakes_sorted_by_confidence(rf_report, rf_model, chars):
    _, X_test, _, y_test = chars
    _, _, document = rf_report
    mistakes = _section(document, "mistakes")
    n_wrong = int(np.sum(rf_model.predict(X_test) != y_test))
    assert f"{n_wrong:,} of {len(y_test):,} test images are misclassified" in mistakes
    sure = [int(v) for v in re.findall(r"(\d+)% sure", mistakes)]
    assert len(sure) == min(n_wrong, 24) > 0
    assert sure == sorted(sure, reverse=True)


def test_confusion_and_per_class_table(rf_report, rf_model, chars):
    _, X_test, _, y_test = chars
    _, _, document = rf_report
    assert len(_decode_images(_section(document, "confusion-matrix"))) == 1
    per_class = _section(document, "per-class")
    rows = re.findall(r"<tr[^>]*><td>([^<]*)</td>", per_class)
    assert rows == [str(c) for c in rf_model.classes_]
    f1 = f1_score(y_test, rf_model.predict(X_test), average=None)
    assert f"{f1.min():.3f}" in re.search(r'<tr class="worst">(.*?)</tr>', per_class).group(1)


def test_dataset_analysis_section(rf_report, analysis):
    _, _, document = rf_report
    section = _section(document, "dataset-analysis")
    assert analysis.recommendations
    for finding in analysis.recommendations:
        assert html.escape(finding.title) in section
    assert html.escape(str(analysis)) in section


def test_string_labels_and_title_are_escaped(tmp_path, chars):
    X_train, X_test, y_train, y_test = chars
    names = np.array(["<b>", "a&b", '"q"', "$x$", "<script>", "five", "6", "7", "8", "9"])
    model = make_baseline_pipeline(n_estimators=10, random_state=0)
    model.fit(X_train, names[y_train])
    path = make_report(
        model,
        X_test,
        names[y_test],
        tmp_path / "escaped.html",
        title="<script>alert(1)</script> & co",
    )
    document = path.read_text(encoding="utf-8")
    assert "&lt;b&gt;" in document and "a&amp;b" in document and "&quot;q&quot;" in document
    assert "<script" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in document
    # no raw label leaks into the markup: every "<b>" in the page is a bold tag we wrote
    parsed = _parse(document)
    assert "<b>" in "".join(parsed.text)  # the label reads as text
    per_class = _section(document, "per-class")
    assert "<td>&lt;b&gt;</td>" in per_class


def test_flat_batch_is_shown_with_the_model_image_shape(tmp_path):
    digits = load_digits()
    X = digits.data.astype(np.float32) / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    path = make_report(model, X_test, y_test, tmp_path / "flat.html")
    document = path.read_text(encoding="utf-8")
    thumbs = _decode_images(_section(document, "samples"))
    assert thumbs and all(thumb.shape == (8, 8) for thumb in thumbs)
    assert "keeps no training history" in _section(document, "learning-curves")


def test_model_without_predict_proba(tmp_path):
    digits = load_digits()
    X = digits.data[:600] / 16.0
    y = digits.target[:600]
    model = LinearSVC(C=0.01).fit(X[:400], y[:400])
    document = make_report(model, X[400:], y[400:], tmp_path / "svc.html").read_text("utf-8")
    assert "Macro ROC AUC" not in document
    mistakes = _section(document, "mistakes")
    assert "% sure" not in mistakes and "true <b>" in mistakes


def test_max_mistakes(tmp_path, chars, rf_model, analysis):
    _, X_test, _, y_test = chars
    path = make_report(
        rf_model, X_test, y_test, tmp_path / "r.html", analysis=analysis, max_mistakes=3
    )
    assert len(re.findall(r'class="mcard"', path.read_text("utf-8"))) == 3
    path = make_report(
        rf_model, X_test, y_test, tmp_path / "r.html", analysis=analysis, max_mistakes=0
    )
    assert 'class="mcard"' not in path.read_text("utf-8")


def test_precomputed_analysis_is_used(tmp_path, monkeypatch, chars, rf_model, analysis):
    _, X_test, _, y_test = chars

    def fail(*args, **kwargs):
        raise AssertionError("analyze_dataset should not run when analysis is given")

    monkeypatch.setattr("skcharclf.diagnostics.analyze_dataset", fail)
    make_report(rf_model, X_test[:60], y_test[:60], tmp_path / "r.html", analysis=analysis)


def test_no_pyplot_state_or_backend_change(tmp_path, chars, rf_model, analysis):
    import matplotlib

    _, X_test, _, y_test = chars
    backend = matplotlib.get_backend()
    make_report(rf_model, X_test[:80], y_test[:80], tmp_path / "r.html", analysis=analysis)
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_missing_matplotlib_gives_install_hint(tmp_path, monkeypatch, chars, rf_model):
    _, X_test, _, y_test = chars
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install skcharclf\[plot\]"):
        make_report(rf_model, X_test, y_test, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_input_errors(tmp_path, chars, rf_model):
    X_train, X_test, y_train, y_test = chars
    path = tmp_path / "r.html"
    with pytest.raises(ValueError, match=f"X_test holds {len(X_test)} images but y_test holds 10"):
        make_report(rf_model, X_test, y_test[:10], path)
    with pytest.raises(ValueError, match="give both X_train and y_train"):
        make_report(rf_model, X_test, y_test, path, X_train)
    with pytest.raises(ValueError, match=r"X_train holds .* but y_train holds 5 labels"):
        make_report(rf_model, X_test, y_test, path, X_train, y_train[:5])
    with pytest.raises(ValueError, match="'max_mistakes' parameter of make_report"):
        make_report(rf_model, X_test, y_test, path, max_mistakes=-1)
    with pytest.raises(NotFittedError):
        make_report(make_baseline_pipeline(), X_test, y_test, path)
    assert not path.exists()


# --------------------------------------------------------------------------------------------
# A real Keras classifier
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_a_keras_classifier(tmp_path, chars, analysis):
    from skcharclf import KerasCharClassifier

    X_train, X_test, y_train, y_test = chars
    model = Pipeline(
        [
            ("resize", ImageResizer(size=(16, 16))),
            (
                "clf",
                KerasCharClassifier(
                    image_shape=(16, 16),
                    architecture="cnn",
                    filters=(8, 16),
                    epochs=2,
                    early_stopping=True,  # holds out a validation set
                    validation_fraction=0.2,
                    random_state=0,
                    n_threads=1,
                ),
            ),
        ]
    ).fit(X_train, y_train)
    document = make_report(
        model, X_test, y_test, tmp_path / "keras.html", X_train, y_train, analysis=analysis
    ).read_text("utf-8")
    assert "val_loss" in model[-1].history_
    curves = _section(document, "learning-curves")
    assert "Training (blue) and validation (orange) curves per epoch" in curves
    # loss, accuracy, macro F1, and the learning rate of the default cosine schedule
    assert len(_decode_images(curves)) == 4

    # the bare classifier on the flat batch it takes: images shown with its image_shape_
    bare = make_report(
        model[-1], model[:-1].transform(X_test), y_test, tmp_path / "bare.html", analysis=analysis
    ).read_text("utf-8")
    assert "KerasCharClassifier" in bare
    assert len(_decode_images(_section(bare, "learning-curves"))) == 4
    thumbs = _decode_images(_section(bare, "mistakes")) or _decode_images(_section(bare, "samples"))
    assert thumbs and all(thumb.shape == (16, 16) for thumb in thumbs)
    assert "Macro ROC AUC" in document


# --------------------------------------------------------------------------------------------
# Rendering in a real browser
# --------------------------------------------------------------------------------------------

# Injected first in the report's <head> so that it sees every error, including failed image
# loads (resource errors do not bubble, hence the capture-phase listener). It reports to the
# harness page around it.
_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  __errors.push(e.message || ("failed to load " + (e.target && (e.target.src || e.target.href))));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    __errors.push(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    var box = img.getBoundingClientRect();
    return {alt: img.alt, complete: img.complete, natural: img.naturalWidth,
            width: box.width, height: box.height};
  });
  parent.postMessage(JSON.stringify({
    errors: __errors, images: images, innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    sections: Array.prototype.map.call(document.querySelectorAll("section"),
                                       function (s) { return s.id; })
  }), "*");
});
</script>"""

# Headless Chromium will not make its window narrower than 500 px, so the report is loaded in
# an iframe of the width under test: its media queries and layout see that width, like a phone.
_HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8">
<script>
window.addEventListener("message", function (e) {
  var out = document.createElement("pre");
  out.id = "__probe";
  out.textContent = e.data;
  document.body.appendChild(out);
});
</script></head><body style="margin:0">
<iframe style="border:0;width:{width}px;height:900px" srcdoc="{document}"></iframe>
</body></html>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("SKCHARCLF_SKIP_BROWSER") == "1":
        pytest.skip("SKCHARCLF_SKIP_BROWSER=1: the headless-Chromium rendering test is skipped")
    pytest.fail(
        "the report rendering test needs a headless Chromium: install it (Debian/Ubuntu: "
        "`apt-get install -y chromium`; CI's .ci/run does) or set SKCHARCLF_SKIP_BROWSER=1 "
        "to skip this test"
    )


def _chromium_args(profile) -> list[str]:
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


def _render(report_path, tmp_path, width: int) -> tuple[dict, str]:
    """Load the report with a probe in headless Chromium; return the probe's data and stderr."""
    document = report_path.read_text(encoding="utf-8").replace("<head>", "<head>" + _PROBE, 1)
    harness = tmp_path / f"harness_{width}.html"
    harness.write_text(
        _HARNESS.replace("{width}", str(width)).replace("{document}", html.escape(document)),
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            *_chromium_args(tmp_path / f"profile_{width}"),
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={max(width, 500) + 20},900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    match = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"Chromium did not render the page; stderr:\n{result.stderr[-3000:]}"
    return json.loads(html.unescape(match.group(1))), result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 400])
def test_report_renders_in_chromium(tmp_path, history_report, width):
    report_path, _ = history_report
    probe, stderr = _render(report_path, tmp_path, width)
    assert probe["errors"] == []
    console = [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "net::ERR_" in line
    ]
    assert console == []
    assert probe["sections"] == list(SECTION_IDS)
    assert probe["innerWidth"] == width
    assert len(probe["images"]) > 20
    for image in probe["images"]:
        assert image["complete"] and image["natural"] > 0, image
        assert image["width"] > 0 and image["height"] > 0, image
    # readable on a phone: nothing forces horizontal scrolling of the page
    assert probe["scrollWidth"] <= width
