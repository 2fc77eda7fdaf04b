"""Synthetic character images shared by the test modules.

Each builder is deterministic in its ``seed`` and tiny, so tests stay fast:

* :func:`bar_chars`: separable flat 8x8 "characters", a bright bar whose row is the class.
* :func:`random_glyph`: one ragged character-like image, a few strokes on flat paper.
* :func:`prototype_images`: 8x8 images around a fixed prototype per class, with uniform noise.
"""

import cv2
import numpy as np

BAR_SHAPE = (8, 8)
# The smallest KerasCharClassifier that still learns the bar characters: one stage of 4 filters.
TINY_CLASSIFIER = {
    "image_shape": BAR_SHAPE,
    "filters": (4,),
    "epochs": 2,
    "batch_size": 32,
    "online_augmentation": None,
    "random_state": 0,
}


def bar_chars(n_per_class, rows, *, seed=0, labels=None):
    """Flat ``float32`` batch of 8x8 images in [0, 1] and its labels.

    Class ``k`` has ``n_per_class[k]`` images of uniform noise below 0.3 with a bright bar
    on rows ``rows[k]`` and ``rows[k] + 1``; ``labels`` names the classes (0, 1, ... by
    default). Extra counts or rows without a partner are ignored.
    """
    rng = np.random.RandomState(seed)
    labels = range(len(n_per_class)) if labels is None else labels
    X, y = [], []
    for label, (count, row) in zip(labels, zip(n_per_class, rows, strict=False), strict=False):
        images = rng.rand(count, *BAR_SHAPE).astype("float32") * 0.3
        images[:, row : row + 2, 1:7] += 0.7
        X.append(images.reshape(count, -1))
        y += [label] * count
    return np.concatenate(X), np.array(y)


def random_glyph(rng, height=24, dark_on_light=True):
    """A ragged character-like ``uint8`` image: a few random strokes on a flat background."""
    width = int(rng.integers(8, 21))
    image = np.zeros((height, width), dtype=np.float32)
    for _ in range(3):
        p1 = (int(rng.integers(1, width - 1)), int(rng.integers(1, height - 1)))
        p2 = (int(rng.integers(1, width - 1)), int(rng.integers(1, height - 1)))
        cv2.line(image, p1, p2, 1.0, int(rng.integers(2, 4)))
    background, ink = rng.uniform(190, 235), rng.uniform(20, 60)
    if not dark_on_light:
        background, ink = 255 - background, 255 - ink
    return np.rint(background + image * (ink - background)).astype(np.uint8)


PROTOTYPES = np.random.RandomState(42).rand(3, 64)


def prototype_images(n, seed, noise):
    """Three classes of flat 8x8 images: a fixed prototype per class plus uniform noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    return (PROTOTYPES[y] + noise * (rng.rand(n, 64) - 0.5)).astype(np.float32), y
