"""The training feed: epoch order, class-balanced sampling, mixup and cutmix."""

import numpy as np
import pytest
from _data import BAR_SHAPE, TINY_CLASSIFIER, bar_chars

from skcharclf._feed import (
    class_frequencies,
    epoch_order,
    mix_batch,
    sampling_probabilities,
    training_batches,
)
from skcharclf._tf import import_keras
from skcharclf.classifier import KerasCharClassifier
from skcharclf.losses import CrossEntropy, LabelAccuracy, MacroF1Score

keras = import_keras()
CODES = np.repeat([0, 1, 2], [80, 16, 4])


def test_epoch_order_depends_on_seed_and_epoch_only():
    rows = np.arange(100)
    first = epoch_order(rows, 7, 3, None)
    assert np.array_equal(first, epoch_order(rows, 7, 3, None))  # a resumed fit sees the same
    assert sorted(first) == list(rows)  # natural sampling: each row once per epoch
    assert not np.array_equal(first, epoch_order(rows, 7, 4, None))
    assert not np.array_equal(first, epoch_order(rows, 8, 3, None))


@pytest.mark.parametrize(("name", "power"), [("natural", 1.0), ("sqrt", 0.5), ("balanced", 0.0)])
def test_sampling_draws_classes_in_proportion_to_a_power_of_their_size(name, power):
    rows = np.arange(CODES.size)
    probabilities = sampling_probabilities(CODES, rows, power)
    expected = np.array([80, 16, 4], dtype=float) ** power
    expected /= expected.sum()
    if power == 1.0:
        assert probabilities is None
        drawn = epoch_order(rows, 0, 0, None)
    else:
        per_class = np.bincount(CODES, weights=probabilities)
        np.testing.assert_allclose(per_class, expected)
        # many epochs: the drawn class shares converge to the target shares
        drawn = np.concatenate([epoch_order(rows, 0, e, probabilities) for e in range(200)])
        assert drawn.size == 200 * rows.size
    shares = np.bincount(CODES[drawn], minlength=3) / drawn.size
    np.testing.assert_allclose(shares, expected, atol=0.01)
    # the loss's class priors are the shares it is shown
    np.testing.assert_allclose(class_frequencies(CODES, None, rows, 3, power), expected)


def test_class_frequencies_skip_rows_and_weigh_samples():
    rows = np.arange(90)  # 80 of class 0, 10 of class 1, none of class 2
    weights = np.where(CODES == 1, 2.0, 1.0)
    np.testing.assert_allclose(
        class_frequencies(CODES, weights, rows, 3), [80 / 100, 20 / 100, 0.0]
    )
    # balanced draws, then the weights: class 1 weighs twice as much per drawn sample
    balanced = class_frequencies(CODES, weights, rows, 3, power=0.0)
    np.testing.assert_allclose(balanced, [1 / 3, 2 / 3, 0.0])


def test_mixup_blends_images_and_targets():
    rng = np.random.default_rng(0)
    x = np.stack([np.zeros(16), np.ones(16)]).astype(np.float32)
    y = np.array([0, 1])
    mixed, targets, weights = mix_batch(x, y, np.array([1.0, 3.0]), rng, (4, 4), 0.4, 0.0)
    share = targets[:, 2]
    assert np.all(share >= 0.5) and np.all(share <= 1.0)
    for row in range(2):
        a, b = int(targets[row, 0]), int(targets[row, 1])
        # every pixel is share * image of label a + (1 - share) * image of label b
        np.testing.assert_allclose(mixed[row], share[row] * a + (1 - share[row]) * b, atol=1e-6)
    assert weights.min() >= 1.0 and weights.max() <= 3.0


def test_cutmix_pastes_a_box_and_shares_follow_its_area():
    rng = np.random.default_rng(3)
    x = np.stack([np.zeros(64), np.ones(64)]).astype(np.float32)
    y = np.array([0, 1])
    for _ in range(20):
        mixed, targets, _ = mix_batch(x, y, None, rng, (8, 8), 0.0, 1.0)
        for row in range(2):
            a, b, share = int(targets[row, 0]), int(targets[row, 1]), targets[row, 2]
            from_b = np.mean(mixed[row] == b) if a != b else 0.0
            # the label shares are the pixel shares of the two images (a the larger one)
            assert share == pytest.approx(1 - from_b if a != b else share)
            assert share >= 0.5


def test_training_batches_cover_each_epoch_and_resume_at_any_epoch():
    X = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    data, steps = training_batches(X, y, None, np.arange(10), 4, seed=5, epochs=3)
    assert steps == 3
    batches = [b[1].numpy() for b in data]
    assert len(batches) == 9 and [len(b) for b in batches[:3]] == [4, 4, 2]
    epochs = [np.concatenate(batches[i * 3 : i * 3 + 3]) for i in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    resumed, _ = training_batches(X, y, None, np.arange(10), 4, seed=5, epochs=3, first_epoch=2)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in resumed]), epochs[2])


def test_mixed_targets_in_losses_and_metrics():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    loss = CrossEntropy()
    mixed = np.array([[0, 1, 0.7], [1, 2, 0.6]], dtype=np.float32)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(0.7 * log_p[0, 0] + 0.3 * log_p[0, 1] + 0.6 * log_p[1, 1] + 0.4 * log_p[1, 2]) / 2
    assert float(loss(mixed, logits)) == pytest.approx(expected, rel=1e-5)
    # the mixed loss with a share of 1 is the loss of the plain labels
    plain = np.array([[0, 2, 1.0], [1, 0, 1.0]], dtype=np.float32)
    assert float(loss(plain, logits)) == pytest.approx(float(loss(np.array([0, 1]), logits)))
    accuracy, f1 = LabelAccuracy(), MacroF1Score(3)
    accuracy.update_state(mixed, logits)
    f1.update_state(mixed, logits)
    assert float(accuracy.result()) == 1.0 and float(f1.result()) == 1.0


@pytest.mark.filterwarnings("ignore::skcharclf.diagnostics.NoValidationWarning")
@pytest.mark.parametrize(
    "params",
    [{"class_sampling": "balanced"}, {"mixup_alpha": 0.2}, {"cutmix_alpha": 1.0},
     {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "class_weight": "balanced"}],
)
def test_classifier_trains_with_balanced_sampling_and_mixing(params):
    X, y = bar_chars([60, 30, 6], [0, 3, 6])
    settings = {**TINY_CLASSIFIER, "filters": (8,), "epochs": 12, "learning_rate": 0.01}
    clf = KerasCharClassifier(**settings, **params).fit(X, y)
    assert clf.score(X, y) > 0.9
    again = KerasCharClassifier(**settings, **params).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    if "class_sampling" in params:
        np.testing.assert_allclose(clf.class_priors_, [1 / 3] * 3)
    assert clf.image_shape_ == BAR_SHAPE
