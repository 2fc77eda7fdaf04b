"""
=====================================
Denoising and resizing variants
=====================================

The first two steps of every skcharclf pipeline are a :class:`~skcharclf.Denoiser` and an
:class:`~skcharclf.ImageResizer`. This example applies each denoising method to a few noisy
characters of :func:`~skcharclf.datasets.load_digit_chars`, measures how close each variant
comes to the clean characters, and shows the three resize modes and the polarity handling.
"""

# %%
# Noisy characters and their clean versions
# -----------------------------------------
# The built-in data are dark ink on a light background, height 32 and width 9 to 28, with
# uneven shading, stray strokes, ink blobs, blur and salt-and-pepper pixels. ``clean_data``
# holds the same images before the noise was added, which lets us score each filter.
import matplotlib.pyplot as plt
import numpy as np

from skcharclf import Denoiser, ImageResizer
from skcharclf.datasets import load_digit_chars
from skcharclf.preprocessing import images_from_flat

chars = load_digit_chars(random_state=0)
shown = [0, 7, 19, 42, 64]
noisy = [chars.data[i] for i in shown]


def psnr(images, references):
    """Peak signal-to-noise ratio in dB, over all pixels of the batch (higher is closer)."""
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in
              zip(images, references, strict=True)]
    return 10 * np.log10(255.0**2 / np.mean(errors))


# %%
# Every Denoiser method
# ---------------------
# Each row is one ``method``; a list of methods is applied in order. The filters keep each
# image's size and dtype (here ``uint8``). The scores use 300 images.
variants = [
    "none", "median", "bilateral", "gaussian", "nl_means", "sharpen", "threshold",
    "open", "close", "dilate", "erode", ["median", "sharpen"],
]
sample = list(range(300))
X_sample = [chars.data[i] for i in sample]
clean_sample = [chars.clean_data[i] for i in sample]

fig, axes = plt.subplots(len(variants), len(shown), figsize=(5, 13))
for row, method in enumerate(variants):
    denoiser = Denoiser(method=method)
    score = psnr(denoiser.fit_transform(X_sample), clean_sample)
    for col, image in enumerate(denoiser.fit_transform(noisy)):
        ax = axes[row, col]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
    label = method if isinstance(method, str) else " + ".join(method)
    axes[row, 0].set_ylabel(f"{label}\n{score:.1f} dB", rotation=0, ha="right", va="center",
                            fontsize=8)
fig.tight_layout()

# %%
# The scores put the median filter first: it removes the isolated pixels of salt-and-pepper
# noise and keeps the strokes, which is why it is the default of
# :func:`~skcharclf.make_baseline_pipeline`. Morphology acts on the *bright* pixels: on these
# dark-on-light images ``"close"`` removes small dark specks from the background and
# ``"open"`` fills small light holes in the strokes, ``"erode"`` thickens the dark strokes
# and ``"dilate"`` thins them. After the :class:`~skcharclf.ImageResizer` ink is bright, and
# the names mean what they say about the ink.
#
# Which variant helps the *classifier* is a different question from which one looks
# cleanest; ``Denoiser(method=...)`` is a pipeline parameter, so a search answers it:
# ``GridSearchCV(pipeline, {"denoise__method": ["none", "median", "bilateral"]})``.

# %%
# Resize modes
# ------------
# ``"pad"`` (the default) keeps the aspect ratio and fills the sides with the background,
# ``"stretch"`` distorts each character to the full square, ``"fit_height"`` keeps the
# height and centre-crops the sides of wide characters. Every mode returns a flat
# ``float32`` batch with bright ink on a dark background; ``images_from_flat`` turns it back
# into images for plotting.
modes = ["pad", "stretch", "fit_height"]
fig, axes = plt.subplots(len(modes) + 1, len(shown), figsize=(5, 4.5))
for col, image in enumerate(noisy):
    axes[0, col].imshow(image, cmap="gray", vmin=0, vmax=255)
axes[0, 0].set_ylabel("input", rotation=0, ha="right", va="center")
for row, mode in enumerate(modes, start=1):
    resizer = ImageResizer(size=(32, 32), mode=mode)
    resized = images_from_flat(resizer.fit_transform(Denoiser("median").fit_transform(noisy)),
                               (32, 32))
    for col, image in enumerate(resized):
        axes[row, col].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[row, 0].set_ylabel(mode, rotation=0, ha="right", va="center")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# Polarity
# --------
# ``polarity="auto"`` reads each image's background from its border and inverts the images
# drawn dark on light, so a batch mixing both kinds gives one consistent output.
mixed = [noisy[0], 255 - noisy[0]]
out = images_from_flat(ImageResizer().fit_transform(mixed), (32, 32))
print("largest difference between the two outputs:", float(np.abs(out[0] - out[1]).max()))

fig, axes = plt.subplots(1, 4, figsize=(5, 1.6))
for ax, image, title in zip(
    axes, [*mixed, *out], ["dark on light", "light on dark", "resized", "resized"],
    strict=True,
):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
