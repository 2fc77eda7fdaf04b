"""
==========================================
Topping up rare classes with augmentation
==========================================

:class:`skcharclf.RareClassAugmenter` is an imbalanced-learn sampler: ``fit_resample``
returns the training set followed by randomly transformed copies of the rare classes' own
images (rotation, shear, zoom, translation, perspective skew, elastic distortion, random
erasing, stroke thickness, noise) until each class reaches the count ``sampling_strategy``
asks for. This example shows originals beside their augmented copies, to check by eye that
the characters stay readable, compares the three presets, and plugs the augmenter into the
random-forest baseline.
"""

# %%
# Resize the images, then augment
# -------------------------------
# The augmenter works on the flat batch :class:`skcharclf.ImageResizer` returns (rows of
# 32x32 pixels, bright ink on a dark background). With the default
# ``sampling_strategy="auto"`` every class is brought up to the size of the largest one.
import matplotlib.pyplot as plt
import numpy as np

from skcharclf import Denoiser, ImageResizer, RareClassAugmenter
from skcharclf.datasets import load_digit_chars

X, y = load_digit_chars(random_state=0, return_X_y=True)
flat = ImageResizer(size=(32, 32)).fit_transform(Denoiser(method="median").fit_transform(X))

augmenter = RareClassAugmenter(random_state=0)
X_res, y_res = augmenter.fit_resample(flat, y)
print("before:", np.bincount(y).tolist())
print("after: ", np.bincount(y_res).tolist())

# %%
# Originals and their augmented copies
# ------------------------------------
# ``sample_indices_`` tells which original each row comes from, so the copies of one image
# can be shown beside it. Each row: an original of a rare class (framed), then six copies.
n_copies = 6
generated = np.arange(len(y), len(y_res))
sources = augmenter.sample_indices_[generated]
originals = [i for c in (2, 5, 8) for i in np.flatnonzero(y == c)[:2]]

fig, axes = plt.subplots(len(originals), n_copies + 1, figsize=(6, 5.6))
for row, original in enumerate(originals):
    copies = generated[sources == original][:n_copies]
    for col, image in enumerate([flat[original], *X_res[copies]]):
        ax = axes[row, col]
        ax.imshow(image.reshape(32, 32), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if col == 0:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:orange")
                spine.set_linewidth(3)
    axes[row, 0].set_ylabel(f"class {y[original]}")
fig.suptitle("Originals (framed) and augmented copies, default preset")
fig.tight_layout()

# %%
# Three presets
# -------------
# ``transforms`` takes a preset name or a list of ``(name, probability, (low, high))``
# specs. ``"light"`` makes small changes, ``"strong"`` larger ones, with more erasing and
# noise.
# The augmenter gets one image of class 5 and nine of class 0, and makes eight copies of
# the 5.
original = np.flatnonzero(y == 5)[0]
few = np.concatenate([[original], np.flatnonzero(y == 0)[:9]])
fig, axes = plt.subplots(3, 9, figsize=(7.5, 2.9))
for row, preset in enumerate(("light", "default", "strong")):
    one_image = RareClassAugmenter(transforms=preset, random_state=1)
    X_few, _ = one_image.fit_resample(flat[few], y[few])
    for col, image in enumerate(X_few[[0, *range(len(few), len(X_few))]]):
        axes[row, col].imshow(image.reshape(32, 32), cmap="gray", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel(preset)
fig.suptitle("One original (left) and eight copies per preset")
fig.tight_layout()

# %%
# Your own list of transforms
# ---------------------------
# Each spec fires with its probability ``p``; its magnitude is drawn from ``(low, high)``.
# Transforms run in a fixed order (thickness, the geometric warp, erasing, noise) whatever
# the order of the list, and ``transforms_`` shows the resolved specs.
custom = RareClassAugmenter(
    transforms=[("rotate", 0.8, (-8, 8)), ("elastic", 0.6, (0.02, 0.04)), "thickness"],
    random_state=0,
).fit(flat, y)
for spec in custom.transforms_:
    print(spec)

# %%
# In a pipeline
# -------------
# In an :class:`imblearn.pipeline.Pipeline` the sampler runs during ``fit`` only: the
# classifier trains on originals plus copies, and ``predict`` sees the images unchanged.
# Here it sits in the ``"augment"`` slot of the random-forest baseline, scored on a
# balanced test split (``benchmarks/bench_imbalance_rf.py`` compares it with SMOTE, random
# over- and under-sampling over several seeds).
from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score, recall_score

X_train, X_test, y_train, y_test = load_digit_chars(
    test_size_per_class=40, random_state=0, return_X_y=True
)
for augment in ("passthrough", RareClassAugmenter(random_state=0)):
    model = Pipeline(
        [
            ("denoise", Denoiser(method="median")),
            ("resize", ImageResizer(size=(32, 32))),
            ("augment", augment),
            ("clf", RandomForestClassifier(n_estimators=100, random_state=0)),
        ]
    ).fit(X_train, y_train)
    predicted = model.predict(X_test)
    rare = recall_score(y_test, predicted, labels=[2, 5, 8], average="macro")
    name = "no sampler" if isinstance(augment, str) else "RareClassAugmenter"
    print(
        f"{name:>18}: balanced accuracy {balanced_accuracy_score(y_test, predicted):.3f}, "
        f"rare-class recall {rare:.3f}"
    )
