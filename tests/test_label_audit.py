"""Label audit: confident learning on out-of-fold probabilities, the audit of a data set, its
page and CSV file, and the corrections fed back into load_image_folder."""

import contextlib
import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from _data import bar_chars
from sklearn.ensemble import RandomForestClassifier

from skcharclf.cli import main
from skcharclf.datasets import load_image_folder
from skcharclf.diagnostics import LabelAudit, audit_labels, find_label_issues
from skcharclf.diagnostics._labels import FILTER_RULES
from skcharclf.pipeline import make_baseline_pipeline
from skcharclf.report import make_audit_report

# every rule but the simplest baseline, which flags all the uncertain images too
FILTERS = [rule for rule in FILTER_RULES if rule != "predicted_neq_given"]


def _planted(labels=(0, 1, 2), n_per_class=30, planted=(3, 35, 50, 71, 88), seed=0):
    """Out-of-fold probabilities of a good model (most images near 1 on their true class, a
    few down to 0.7), and given labels with ``planted`` images filed under the next class,
    which the model is sure of (0.9 to 1 on the true class)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    true = np.repeat(np.arange(len(labels)), n_per_class)
    doubt = 0.3 * rng.random((len(true), 1)) ** 4
    proba = rng.dirichlet(np.ones(len(labels)), size=len(true)) * doubt
    proba[np.arange(len(true)), true] += 1.0 - doubt[:, 0]
    given = true.copy()
    planted = np.asarray(planted, dtype=int)
    proba[planted] = rng.dirichlet(np.ones(len(labels)), size=len(planted)) * 0.1
    proba[planted, true[planted]] += 0.9
    given[planted] = (true[planted] + 1) % len(labels)
    return labels[given], proba, planted, labels[true]


@pytest.mark.parametrize("rank_by", ["self_confidence", "normalized_margin"])
@pytest.mark.parametrize("filter_by", FILTERS)
def test_planted_errors_are_found_and_ranked_first(rank_by, filter_by):
    y, proba, planted, true = _planted()
    result = find_label_issues(y, proba, rank_by=rank_by, filter_by=filter_by)
    assert sorted(result.indices[: len(planted)]) == sorted(planted.tolist())
    if filter_by.startswith("low_"):  # as many as the calibrated joint estimates (6 here)
        assert result.n_flagged == round(len(y) * result.estimated_noise_rate)
        assert len(planted) <= result.n_flagged <= len(planted) + 2
    else:
        assert result.n_flagged == len(planted)
    first = result.indices[: len(planted)]
    assert result.suggested_labels[: len(planted)].tolist() == true[first].tolist()
    assert result.given_labels.tolist() == y[result.indices].tolist()
    assert np.all(np.diff(result.scores) >= 0)
    # calibration spreads the unconfident images like the confident ones: close, not exact
    assert result.estimated_noise_rate == pytest.approx(len(planted) / len(y), abs=0.02)


def test_low_score_filters_take_the_estimated_count_from_one_ranking():
    # Two classes; labels 0..3 of class "a" are wrong (the model is sure they are "b"), and
    # image 20, a correct "b", is a hard one (p_b 0.55). The confident joint counts 4 wrong
    # labels; the 4 lowest scores of all images are the planted ones, not image 20.
    y = np.array(["a"] * 20 + ["b"] * 20)
    proba = np.tile([[0.95, 0.05]], (40, 1))
    proba[20:] = [0.05, 0.95]
    proba[:4] = [0.02, 0.98]
    proba[20] = [0.45, 0.55]
    for filter_by in ("low_normalized_margin", "low_self_confidence"):
        result = find_label_issues(y, proba, filter_by=filter_by)
        assert result.n_flagged == round(len(y) * result.estimated_noise_rate) == 4
        assert sorted(result.indices.tolist()) == [0, 1, 2, 3]
    # more estimated errors than images that can be judged: all of those, no more
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.1, 0.9], [0.1, 0.9], [0.9, 0.1], [0.9, 0.1]])
    assert find_label_issues(y, proba).n_flagged == 4


def test_a_weak_model_is_named_and_a_good_one_is_not():
    y, proba, planted, _ = _planted()
    good = find_label_issues(y, proba)
    # the model agrees with every label but the planted ones
    assert good.model_agreement == pytest.approx(1 - len(planted) / len(y))
    assert good.caution == "" and "Caution" not in str(good)
    assert "agrees with 94.4% of the given labels" in str(good)
    # a model that learnt nothing: flat probabilities with a little noise
    rng = np.random.default_rng(1)
    flat = 1.0 + 0.05 * rng.random(proba.shape)
    weak = find_label_issues(y, flat / flat.sum(axis=1, keepdims=True))
    assert weak.model_agreement < 0.5
    assert "agrees with only" in weak.caution and f"Caution: {weak.caution}" in str(weak)
    assert weak.to_dict()["caution"] == weak.caution
    assert weak.to_dict()["model_agreement"] == pytest.approx(weak.model_agreement)


def test_confident_joint_and_thresholds_by_hand():
    y = np.array(["a"] * 6 + ["b"] * 6)
    proba = np.tile([[0.9, 0.1]], (12, 1))
    proba[6:] = [0.2, 0.8]
    proba[2] = [0.1, 0.9]
    result = find_label_issues(y, proba)
    # threshold of a: (5 * 0.9 + 0.1) / 6; of b: 0.8. Image 2 reaches b's threshold only.
    assert [c.threshold for c in result.per_class] == pytest.approx([4.6 / 6, 0.8])
    assert result.confident_joint.tolist() == [[5, 1], [0, 6]]
    assert result.joint.sum() == pytest.approx(1.0)
    assert result.joint[0, 1] == pytest.approx(1 / 12)
    assert [(i.index, i.given_label, i.suggested_label) for i in result.issues] == [(2, "a", "b")]


def test_string_labels_and_column_order_from_classes():
    y, proba, planted, _ = _planted(labels=("owl", "cat", "dog"))
    # columns in the order of the labels passed, not sorted
    result = find_label_issues(
        y, proba, classes=["owl", "cat", "dog"], filter_by="prune_by_noise_rate"
    )
    assert sorted(result.indices.tolist()) == sorted(planted.tolist())
    assert all(isinstance(issue.given_label, str) for issue in result.issues)
    # planted: an owl filed as cat, cats as dog, dogs as owl
    assert {i.given_label: i.suggested_label for i in result.issues} == {
        "cat": "owl", "dog": "cat", "owl": "dog"
    }
    text = str(result)
    assert "owl" in text and "5 of 90 images suspected" in text


def test_ranking_rules_differ_as_documented():
    y = np.array([0] * 8 + [1] * 8 + [2] * 8)
    proba = np.repeat(np.eye(3) * 0.9 + 0.05, 8, axis=0)
    # image 0: given 0, p = (0.10, 0.85, 0.05); image 1: given 0, p = (0.05, 0.50, 0.45)
    proba[0], proba[1] = [0.10, 0.85, 0.05], [0.05, 0.50, 0.45]
    by_confidence = find_label_issues(
        y, proba, filter_by="predicted_neq_given", rank_by="self_confidence"
    )
    by_margin = find_label_issues(
        y, proba, filter_by="predicted_neq_given", rank_by="normalized_margin"
    )
    assert by_confidence.indices.tolist() == [1, 0]
    assert by_margin.indices.tolist() == [0, 1]
    margins = [(0.10 - 0.85 + 1) / 2, (0.05 - 0.50 + 1) / 2]
    assert by_margin.scores.tolist() == pytest.approx(margins)


def test_max_issues_keeps_the_lowest_scores():
    y, proba, planted, _ = _planted()
    every = find_label_issues(y, proba)
    first = find_label_issues(y, proba, max_issues=2)
    assert first.indices.tolist() == every.indices[:2].tolist()
    assert first.n_flagged == every.n_flagged >= len(planted)


def test_rare_classes_are_flagged_as_limited_or_not_judged():
    y, proba, _, _ = _planted(planted=())
    # class 3 with 2 images, class 4 with a single image; probabilities over 5 columns
    proba = np.hstack([proba * 0.9, np.full((len(y), 2), 0.05)])
    y = np.concatenate([y, [3, 3, 4]])
    extra = np.array([[0.05, 0.05, 0.05, 0.8, 0.05], [0.9, 0.025, 0.025, 0.025, 0.025],
                      [0.9, 0.025, 0.025, 0.025, 0.025]])
    proba = np.vstack([proba, extra])
    result = find_label_issues(y, proba)
    status = {c.label: c.status for c in result.per_class}
    assert status == {0: "judged", 1: "judged", 2: "judged", 3: "limited", 4: "not_judged"}
    notes = {c.label: c.note for c in result.per_class}
    assert "only 2 images" in notes[3] and "single image" in notes[4]
    # the rare image that looks like a 0 is found, with a note; the single image is not judged
    assert result.indices.tolist() == [91]
    assert "rare class 3 (2 images)" in result.issues[0].note
    assert np.isnan(result.label_quality[92]) and np.isnan(result.per_class[4].threshold)
    assert 92 not in result.indices and 4 not in result.suggested_labels
    assert "Classes the audit cannot fully judge" in str(result)


@pytest.mark.parametrize(
    ("y", "proba", "kwargs", "message"),
    [
        ([0, 1], [[0.5, 0.5]], {}, "oof_proba has 1 rows but y has 2"),
        ([0, 1], [0.5, 0.5], {}, "must be 2-D"),
        ([0, 1], [[0.5, np.nan], [0.5, 0.5]], {}, "row 0"),
        ([0, 1], [[0.5, 0.5], [-0.1, 1.1]], {}, "row 1"),
        ([0, 1], [[0.0, 0.0], [0.5, 0.5]], {}, "row 0 sums to 0"),
        ([0, 1], [[0.2, 0.3, 0.5]] * 2, {}, "pass classes="),
        ([0, 5], [[0.5, 0.5]] * 2, {"classes": [0, 1]}, "label 5, which is not among"),
        ([0, 1], [[0.5, 0.5]] * 2, {"classes": [0, 1, 2]}, "classes has 3 labels"),
    ],
)
def test_bad_inputs_are_named(y, proba, kwargs, message):
    with pytest.raises(ValueError, match=message):
        find_label_issues(y, proba, **kwargs)


def test_unnormalised_rows_are_normalised():
    y, proba, planted, _ = _planted()
    result = find_label_issues(y, proba * 3.0)
    assert result.indices.tolist() == find_label_issues(y, proba).indices.tolist()
    assert sorted(result.indices[: len(planted)].tolist()) == sorted(planted.tolist())


# --------------------------------------------------------------------------------------------
# audit_labels
# --------------------------------------------------------------------------------------------


def _forest():
    return RandomForestClassifier(n_estimators=30, random_state=0)


def _image_forest():
    """The baseline pipeline, small: it takes lists of images of any size."""
    return make_baseline_pipeline(n_estimators=30, size=(16, 16), random_state=0)


def _flipped_bars(flips=(4, 27, 45)):
    X, y = bar_chars([20, 20, 20], [0, 3, 6], seed=1)
    noisy = y.copy()
    noisy[list(flips)] = (y[list(flips)] + 1) % 3
    return X, noisy, y


def test_audit_with_a_forest_finds_planted_flips():
    X, noisy, clean = _flipped_bars()
    audit = audit_labels(_forest(), X, noisy, cv=3)
    assert isinstance(audit, LabelAudit)
    assert sorted(audit.label_issues.indices[:3].tolist()) == [4, 27, 45]
    assert audit.label_issues.suggested_labels[:3].tolist() == clean[
        audit.label_issues.indices[:3]
    ].tolist()
    assert audit.oof_proba.shape == (60, 3) and audit.n_splits == 3
    assert audit.duplicate_conflicts == [] and audit.notes == []


@pytest.mark.slow
def test_audit_reports_copies_with_disagreeing_labels():
    rng = np.random.default_rng(0)
    labels = ["bar", "box", "dash"]
    X = [_shape(label, rng) for label in labels for _ in range(10)]
    y = np.repeat(labels, 10)
    near = X[12].copy()
    near[5, 5] = near[5, 5] // 2  # one pixel differs
    # a copy of image 0 (a bar) filed as dash, a near copy of image 12 (a box) as bar
    X, y = [*X, X[0].copy(), near], np.concatenate([y, ["dash", "bar"]])
    audit = audit_labels(_image_forest(), X, y, cv=3)
    exact, near = audit.duplicate_conflicts  # exact groups come first
    assert (exact.kind, exact.indices, exact.labels) == ("exact", [0, 30], ["bar", "dash"])
    # the near group also holds the other boxes drawn at the same position
    assert near.kind == "near" and {12, 31} <= set(near.indices)
    assert dict(zip(near.indices, near.labels, strict=True))[31] == "bar"
    rows = {row["index"]: row for row in audit.to_rows()}
    assert {rows[i]["reason"] for i in (0, 30) if rows[i]["reason"] != "label_issue"} <= {
        "exact_duplicate_conflict"
    }
    assert "exact copy of images [0, 30]" in rows[30]["note"]
    assert "Copies of one image with different labels: 2 group(s)" in str(audit)


def test_audit_handles_classes_smaller_than_the_folds():
    X, y = bar_chars([12, 12, 2, 1], [0, 3, 6, 5], seed=2)
    audit = audit_labels(_forest(), X, y, cv=3)
    text = " ".join(audit.notes)
    assert "single image (3)" in text and "fewer images than the 3 folds (2)" in text
    status = {c.label: c.status for c in audit.label_issues.per_class}
    assert status[2] == "limited" and status[3] == "not_judged"
    assert 26 not in audit.label_issues.indices
    with pytest.raises(ValueError, match="cv=13 folds, but the largest class has only 12"):
        audit_labels(_forest(), X, y, cv=13)


# --------------------------------------------------------------------------------------------
# The page, the CSV file and the corrections
# --------------------------------------------------------------------------------------------


def _shape(label, rng):
    image = np.full((16, 12), 225, np.uint8)
    if label == "bar":
        cv2.line(image, (6, 2), (6, 13), 25, 2)
    elif label == "box":
        cv2.rectangle(image, (2, 3), (9, 12), 25, 1)
    else:
        cv2.line(image, (1, 8), (10, 8), 25, 2)
    image = np.roll(image, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    image[rng.random(image.shape) < 0.02] = 0
    return image


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three classes of 12 shapes; two bars are filed under "box", and a copy of the first
    bar under "dash"."""
    root = tmp_path_factory.mktemp("audit") / "chars"
    rng = np.random.default_rng(0)
    for label in ("bar", "box", "dash"):
        (root / label).mkdir(parents=True)
        for k in range(12):
            cv2.imwrite(str(root / label / f"{k:02d}.png"), _shape(label, rng))
    for k in range(2):
        cv2.imwrite(str(root / "box" / f"wrong{k}.png"), _shape("bar", rng))
    (root / "dash" / "copy.png").write_bytes((root / "bar" / "00.png").read_bytes())
    return root


# On 39 images the confident joint counts one of the three wrong labels; the default filter
# then flags the lowest margin (the copy filed under dash), prune_by_noise_rate a wrong box.
def test_audit_page_shows_suspects_beside_typical_images(folder, tmp_path):
    bunch = load_image_folder(folder)
    audit = audit_labels(
        _image_forest(), bunch.data, bunch.target, cv=3, filter_by="prune_by_noise_rate"
    )
    first = audit.label_issues.issues[0]
    assert "wrong" in bunch.filenames[first.index]
    assert (first.given_label, first.suggested_label) == ("box", "bar")
    page = make_audit_report(audit, bunch.data, tmp_path / "audit.html", n_typical=2)
    text = page.read_text(encoding="utf-8")
    assert text.count('class="acard"') == audit.label_issues.n_flagged
    assert "given <b>box</b>" in text and "suggested <b>bar</b>" in text
    assert text.count('alt="typical bar"') >= 2
    assert "exact copies" in text and "labelled dash" in text
    assert "out-of-fold agreement with the given labels" in text
    with pytest.raises(ValueError, match="X holds 3 images but the audit covers 39"):
        make_audit_report(audit, bunch.data[:3], tmp_path / "bad.html")


def test_csv_round_trip_drops_and_relabels(folder, tmp_path):
    bunch = load_image_folder(folder)
    audit = audit_labels(
        _image_forest(), bunch.data, bunch.target, cv=3, filter_by="prune_by_noise_rate"
    )
    relative = [str(Path(p).relative_to(folder)) for p in bunch.filenames]
    path = audit.to_csv(tmp_path / "audit.csv", filenames=relative)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == ["index", "path", "given_label", "suggested_label", "score",
                             "reason", "note", "action"]
    assert {r["action"] for r in rows} == {"keep"}
    by_path = {r["path"]: r for r in rows}
    wrong = next(r for r in rows if "wrong" in r["path"])
    assert (wrong["reason"], wrong["given_label"], wrong["suggested_label"]) == (
        "label_issue", "box", "bar"
    )
    assert by_path["dash/copy.png"]["reason"] == "exact_duplicate_conflict"
    assert by_path["dash/copy.png"]["suggested_label"] == "bar"
    wrong["action"] = "relabel"
    by_path["dash/copy.png"]["action"] = "drop"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    corrected = load_image_folder(folder, corrections=path)
    files = corrected.filenames.tolist()
    assert str(folder / "dash" / "copy.png") not in files
    assert corrected.target[files.index(str(folder / wrong["path"]))] == "bar"
    assert len(files) == len(bunch.filenames) - 1
    assert corrected.dropped == [str(folder / "dash" / "copy.png")]
    assert corrected.relabelled == [str(folder / wrong["path"])]
    assert "1 file(s) dropped, 1 relabelled" in corrected.DESCR


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,action\nbox/00.png,drop\n", "line 1: no column 'path'"),
        ("path,action\nbox/00.png,remove\n", "line 2, column 'action': 'remove' is not one of"),
        ("path,action\n,drop\n", "line 2, column 'path': empty"),
        ("path,action,suggested_label\nbox/00.png,relabel,\n",
         "line 2, column 'suggested_label': empty, but the action is 'relabel'"),
        ("path,action,suggested_label\n\nbox/00.png,relabel,cow\n",
         "line 3, column 'suggested_label': 'cow' is not a label"),
        ("path,action\nbox/99.png,drop\n", "line 2, column 'path': 'box/99.png' is not an image"),
        ("path,action\nbox/00.png,drop\nbox/00.png,keep\n", "line 3, column 'path'.*line 2"),
        ("path,given_label,action\nbox/00.png,bar,drop\n",
         "line 2, column 'given_label': 'bar', but 'box/00.png' is labelled 'box'"),
    ],
)
def test_bad_corrections_file_names_line_and_column(folder, tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_image_folder(folder, corrections=_write(tmp_path / "c.csv", text))


def test_corrections_read_semicolons_absolute_paths_and_empty_actions(folder, tmp_path):
    text = f"path;action\n{folder / 'bar' / '00.png'};DROP\nbar/01.png;\n"
    bunch = load_image_folder(folder, corrections=_write(tmp_path / "c.csv", text))
    assert bunch.dropped == [str(folder / "bar" / "00.png")] and bunch.relabelled == []


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_cli_audit_writes_page_and_csv_and_analyze_reads_corrections(folder, tmp_path):
    page, table = tmp_path / "audit.html", tmp_path / "audit.csv"
    status, out, err = _run(
        ["audit", folder, "--model", "forest", "--cv", "3", "--report", page, "--csv", table]
    )
    assert status == 0, err
    assert "Suspected label errors" in out and "Wrote the findings" in out
    assert 'class="acard"' in page.read_text(encoding="utf-8")
    paths = {r["path"] for r in csv.DictReader(table.open(encoding="utf-8"))}
    assert "dash/copy.png" in paths and {"box/wrong0.png", "box/wrong1.png"} & paths
    table.write_text(
        "path,action\nbox/wrong0.png,drop\nbox/wrong1.png,drop\n", encoding="utf-8"
    )
    status, out, err = _run(["analyze", folder, "--corrections", table, "--json"])
    assert status == 0, err
    assert '"box": 12' in out
    status, _, err = _run(["analyze", folder, "--corrections", tmp_path / "none.csv"])
    assert status == 2 and "does not exist" in err
    _write(table, "path,action\nbox/wrong0.png,burn\n")
    status, _, err = _run(["analyze", folder, "--corrections", table])
    assert status == 2 and "line 2, column 'action'" in err


def test_cli_audit_filter_by_passes_the_rule_on(folder):
    status, out, err = _run(
        ["audit", folder, "--model", "forest", "--cv", "3", "--filter-by", "prune_by_noise_rate",
         "--rank-by", "self_confidence"]
    )
    assert status == 0, err
    assert "(filter prune_by_noise_rate, ranked by self_confidence)" in out
    status, out, err = _run(["audit", folder, "--model", "forest", "--cv", "3"])
    assert "(filter low_normalized_margin, ranked by normalized_margin)" in out
