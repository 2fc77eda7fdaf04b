"""
===================================
The built-in noisy digit characters
===================================

:func:`skcharclf.datasets.load_digit_chars` turns scikit-learn's 8x8 handwritten digits into
the kind of data skcharclf is made for: gray character images of height 32 and varying width,
dark ink on a light background, with scanner-like noise and three rare classes. This example
shows a few samples of each class with and without noise, and the long-tailed class counts.
"""

# %%
# Load the data
# -------------
# By default the rare classes 2, 5 and 8 keep 10 % of their samples. ``clean_data`` holds
# the same images before the noise was added.
import matplotlib.pyplot as plt
import numpy as np

from skcharclf.datasets import load_digit_chars

chars = load_digit_chars(random_state=0)
counts = np.bincount(chars.target, minlength=10)
widths = [image.shape[1] for image in chars.data]
print(f"{len(chars.data)} images, per class {counts.tolist()}")
print(f"height 32, width {min(widths)} to {max(widths)}")

# %%
# Clean and noisy samples
# -----------------------
# Each row is one class: three clean images on the left, the same three with noise on the
# right (uneven shading, stray strokes, ink blobs, blur, salt-and-pepper). The images keep
# their own width; they are drawn on a 32x28 canvas of background colour.
n_shown = 3
fig, axes = plt.subplots(10, 2 * n_shown, figsize=(6, 9.5))
for c in range(10):
    indices = np.flatnonzero(chars.target == c)[:n_shown]
    for j, index in enumerate(indices):
        for offset, images in ((0, chars.clean_data), (n_shown, chars.data)):
            image = images[index]
            canvas = np.full((32, 28), np.median(image[0]), dtype=np.uint8)
            left = (28 - image.shape[1]) // 2
            canvas[:, left : left + image.shape[1]] = image
            ax = axes[c, offset + j]
            ax.imshow(canvas, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
    rare = " (rare)" if c in chars.rare_classes else ""
    axes[c, 0].set_ylabel(f"{c}{rare}", rotation=0, ha="right", va="center")
axes[0, 0].set_title("clean", loc="left")
axes[0, n_shown].set_title("noisy", loc="left")
fig.tight_layout()

# %%
# A long-tailed class distribution
# --------------------------------
# The rare classes have about a tenth of the samples of the others: a classifier that gets
# every rare image wrong can still reach 96 % accuracy, which is why skcharclf reports
# balanced accuracy and per-class recall.
colours = ["tab:orange" if c in chars.rare_classes else "tab:blue" for c in range(10)]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(10), counts, color=colours)
ax.set_xticks(range(10))
ax.set_xlabel("class")
ax.set_ylabel("images")
ax.set_title(f"Class counts (imbalance ratio {counts.max() / counts.min():.1f})")
fig.tight_layout()

# %%
# A balanced test set and the balanced upper bound
# ------------------------------------------------
# ``test_size_per_class`` holds out the same number of digits per class *before* the rare
# classes are thinned. The held-out set depends only on the seed, so a model trained on the
# long-tailed data and one trained on the balanced data (``rare_ratio=1.0``) are scored on
# identical test images.
long_tail = load_digit_chars(test_size_per_class=30, random_state=0)
balanced = load_digit_chars(test_size_per_class=30, rare_ratio=1.0, random_state=0)
print("training counts, long-tailed:", np.bincount(long_tail.target).tolist())
print("training counts, balanced:   ", np.bincount(balanced.target).tolist())
print("test counts:                 ", np.bincount(long_tail.target_test).tolist())
print("same test images:", np.array_equal(long_tail.source_index_test, balanced.source_index_test))
