"""Loaders for character-image data sets and the built-in demo data.

* :func:`load_image_folder` reads a folder of image files, labelled by class sub-folder or by
  file name.
* :func:`read_image` reads one image file as :func:`load_image_folder` does, and
  :func:`list_image_files` lists the image files of a folder as it finds them.
* :func:`load_npz` and :func:`load_idx` read NumPy archives and the IDX files of MNIST and
  Fashion-MNIST.
* :func:`load_digit_chars` builds a small, noisy, long-tailed set of character images from
  scikit-learn's 8x8 digits, in the shape of scanned characters (height 32, width 9 to 28, dark
  ink on a light background).
* :func:`load_font_chars` draws long-tailed sets of printed letters and digits with OpenCV's
  built-in fonts, distorted and noisy (height 32, width 9 to 40, both polarities), in a small
  and a large variant.

Every loader returns a :class:`sklearn.utils.Bunch` whose ``data`` is an image batch that the
first pipeline steps (:class:`~skcharclf.Denoiser`, :class:`~skcharclf.ImageResizer`) accept
as it is, or ``(data, target)`` with ``return_X_y=True``.
"""

from skcharclf.datasets._arrays import load_idx, load_npz
from skcharclf.datasets._digits import load_digit_chars
from skcharclf.datasets._files import (
    IMAGE_EXTENSIONS,
    list_image_files,
    load_image_folder,
    read_image,
)
from skcharclf.datasets._fonts import FONT_GLYPHS, load_font_chars
from skcharclf.datasets._scan_noise import NOISE_KINDS

__all__ = [
    "FONT_GLYPHS",
    "IMAGE_EXTENSIONS",
    "NOISE_KINDS",
    "list_image_files",
    "load_digit_chars",
    "load_font_chars",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "read_image",
]
