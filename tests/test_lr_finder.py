"""The learning-rate range test: skcharclf.lr_find, its plot, report section and command."""

import json

import cv2
import numpy as np
import pytest
from _data import TINY_CLASSIFIER, bar_chars
from _diagnostics_data import divergence_jump, divergence_nan, plateau
from imblearn import FunctionSampler
from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from skcharclf import KerasCharClassifier, lr_find, make_report, plot_lr_find
from skcharclf.cli import main
from skcharclf.diagnostics import diagnose_history

START, END, STEPS = 1e-5, 10.0, 60


@pytest.fixture(scope="module")
def bars():
    return bar_chars([40, 40, 40], [0, 3, 6])


@pytest.fixture(scope="module")
def result(bars):
    return lr_find(
        KerasCharClassifier(**TINY_CLASSIFIER), *bars, start_lr=START, end_lr=END, num_steps=STEPS
    )


def test_loss_is_flat_then_falls_then_explodes(result):
    smoothed = result.smoothed_losses
    lowest = int(np.nanargmin(smoothed))
    assert 0 < lowest < smoothed.size - 1
    # flat at tiny rates: the first steps barely move the loss
    assert abs(smoothed[5] - smoothed[0]) < 0.02 * smoothed[0]
    # then it falls well below where it started ...
    assert smoothed[lowest] < 0.9 * smoothed[0]
    # ... and explodes: the test stopped before the end of the range
    assert result.diverged and result.rates.size < STEPS
    last = result.losses[-1]
    assert not np.isfinite(last) or smoothed[-1] > 4 * smoothed[lowest]


def test_rates_grow_exponentially_over_the_range(result):
    rates = result.rates
    assert rates[0] == pytest.approx(START)
    assert np.allclose(np.diff(np.log(rates)), np.log(END / START) / (STEPS - 1))
    assert rates.shape == result.losses.shape == result.smoothed_losses.shape


def test_suggestion_is_a_tenth_of_the_minimum_strictly_inside_the_range(result):
    lowest = result.rates[int(np.nanargmin(result.smoothed_losses))]
    assert result.min_loss_rate == lowest
    assert result.suggested_rate == pytest.approx(lowest / 10)
    assert START < result.suggested_rate < END
    assert START < result.steepest_rate <= lowest
    assert f"{result.suggested_rate:.3g}" in str(result)


@pytest.mark.slow
def test_suggested_rate_trains(bars, result):
    """Training at the suggested rate learns the bars."""
    X, y = bars
    params = {**TINY_CLASSIFIER, "epochs": 3, "lr_schedule": "constant"}
    good = KerasCharClassifier(**params, learning_rate=result.suggested_rate).fit(X, y)
    assert good.history_["loss"][-1] < 0.8 * good.initial_loss_


def test_unfitted_estimator_stays_unfitted(bars):
    clf = KerasCharClassifier(**TINY_CLASSIFIER)
    before = clf.get_params()
    lr_find(clf, *bars, num_steps=10)
    assert vars(clf).keys() == before.keys() and clf.get_params() == before
    assert not clf.__sklearn_is_fitted__()


@pytest.mark.slow
def test_fitted_estimator_keeps_its_weights(bars):
    X, y = bars
    clf = KerasCharClassifier(**TINY_CLASSIFIER).fit(X, y)
    weights = [w.copy() for w in clf.model_.get_weights()]
    state = dict(vars(clf))
    proba = clf.predict_proba(X)
    lr_find(clf, X, y, start_lr=1e-3, end_lr=100.0, num_steps=20)
    assert all(np.array_equal(a, b) for a, b in zip(weights, clf.model_.get_weights(), strict=True))
    assert vars(clf).keys() == state.keys()
    assert all(vars(clf)[key] is value for key, value in state.items())
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_pipeline_steps_before_the_classifier_prepare_its_data(bars):
    """A sampler's fit_resample runs on a clone; the pipeline itself stays unfitted."""
    X, y = bars
    seen = []

    def keep_two_classes(X, y):
        seen.append(len(y))
        return X[y != 2], y[y != 2]

    sampler = FunctionSampler(func=keep_two_classes, validate=False)
    pipe = Pipeline([("drop", sampler), ("clf", KerasCharClassifier(**TINY_CLASSIFIER))])
    found = lr_find(pipe, X, y, num_steps=10)
    assert seen == [len(y)] and found.rates.size == 10
    assert not hasattr(sampler, "n_features_in_")
    assert not pipe.named_steps["clf"].__sklearn_is_fitted__()


def test_mixed_batches_are_fed_as_in_fit(bars):
    clf = KerasCharClassifier(**TINY_CLASSIFIER, mixup_alpha=0.4, cutmix_alpha=0.4)
    found = lr_find(clf, *bars, start_lr=1e-4, end_lr=1e-2, num_steps=10)
    assert np.isfinite(found.losses).all() and not found.diverged


def test_refuses_what_is_not_a_keras_classifier(bars):
    with pytest.raises(TypeError, match="KerasCharClassifier or a pipeline ending in one"):
        lr_find(Pipeline([("rf", RandomForestClassifier())]), *bars)
    with pytest.raises(ValueError, match=r"start_lr=1 must be smaller than end_lr=0\.1"):
        lr_find(KerasCharClassifier(), *bars, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="num_steps"):
        lr_find(KerasCharClassifier(), *bars, num_steps=1)


def test_plot_writes_a_png(result, tmp_path):
    path = tmp_path / "lr.png"
    figure = plot_lr_find(result, path)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] > 400
    assert figure.axes[0].get_xscale() == "log"
    assert [tmp.name for tmp in tmp_path.iterdir()] == ["lr.png"]


def test_report_shows_the_range_test(bars, result, tmp_path):
    X, y = bars
    model = LogisticRegression(max_iter=200).fit(X, y)
    page = make_report(model, X, y, tmp_path / "r.html", lr_find=result).read_text()
    assert '<section id="lr-find">' in page and 'href="#lr-find"' in page
    assert f"<b>{result.suggested_rate:.3g}</b> suggested learning rate" in page
    without = make_report(model, X, y, tmp_path / "plain.html").read_text()
    assert "lr-find" not in without
    with pytest.raises(TypeError, match="LRFindResult"):
        make_report(model, X, y, tmp_path / "bad.html", lr_find=0.1)


@pytest.mark.parametrize(
    ("make_history", "code"),
    [(plateau, "plateau"), (divergence_jump, "divergence"), (divergence_nan, "divergence")],
)
def test_plateau_and_divergence_remedies_point_to_lr_find(make_history, code):
    findings = diagnose_history(make_history(np.random.default_rng(0)), n_classes=10)
    (finding,) = [f for f in findings if f.code == code]
    remedies = " ".join(finding.remedies)
    assert "skcharclf.lr_find(estimator, X, y)" in remedies
    assert "skcharclf lr-find DATA" in remedies


def _write_chars(root):
    rng = np.random.default_rng(0)
    for k, label in enumerate(["bar", "dash"]):
        (root / label).mkdir(parents=True)
        for i in range(12):
            image = np.full((16, 16), 230, np.uint8)
            image[2:14, 7:9] = 30 if k == 0 else 230
            image[7:9, 2:14] = 30 if k == 1 else 230
            image[rng.random(image.shape) < 0.03] = 0
            assert cv2.imwrite(str(root / label / f"{i}.png"), image)
    return root


@pytest.mark.slow
def test_command_prints_the_suggestion_and_writes_the_plot(tmp_path, capsys):
    data = _write_chars(tmp_path / "chars")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"size": [16, 16], "clf__filters": [4], "batch_size": 8}))
    plot = tmp_path / "lr.png"
    argv = ["lr-find", data, "--config", config, "--num-steps", 40, "--end-lr", 10]
    status = main([str(a) for a in [*argv, "--plot", plot, "--random-state", 0]])
    out = capsys.readouterr().out
    assert status == 0, out
    (line,) = [line for line in out.splitlines() if line.startswith("Suggested learning rate")]
    rate = float(line.split()[3])
    assert 1e-6 < rate < 10
    assert cv2.imread(str(plot)) is not None


def test_command_refuses_an_empty_range(tmp_path, capsys):
    data = _write_chars(tmp_path / "chars")
    assert main(["lr-find", str(data), "--start-lr", "1", "--end-lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "skcharclf lr-find: error: --start-lr 1 must be smaller than --end-lr 0.5."
    )
