"""
======================================
An HTML report card of a trained model
======================================

:func:`skcharclf.make_report` writes one self-contained HTML file about a fitted model and
its test set: summary metrics, class balance, sample images, learning curves with their
diagnosis, a normalised confusion matrix, per-class precision / recall / F1, the most
confident mistakes and the dataset analysis with its recommendations. This example fits the
RandomForest baseline on the built-in noisy digits and writes its report.

.. image:: /_static/report_screenshot.png
   :alt: The top of a report: summary tiles, class balance, sample images, learning curves.
   :width: 100%
"""

# sphinx_gallery_thumbnail_path = '_static/report_screenshot.png'

# %%
# Fit a baseline
# --------------
# The built-in data are ragged: 32 pixels high, 9 to 28 wide, with three rare classes. The
# baseline pipeline denoises, pads every image to 32x32 and fits a RandomForest.
from sklearn.model_selection import train_test_split

from skcharclf import analyze_dataset, make_baseline_pipeline, make_report
from skcharclf.datasets import load_digit_chars

X, y = load_digit_chars(return_X_y=True, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
model = make_baseline_pipeline(n_estimators=100, random_state=0).fit(X_train, y_train)

# %%
# Write the report
# ----------------
# The test images go in raw, as the pipeline takes them; the report shows them that way
# too. With the training data the class balance, the sample grid and the dataset analysis
# describe the training set, and the analysis also checks the test set for copies of
# training images. The file needs nothing else: mail it, archive it next to the model, open
# it on a phone.
import tempfile
from pathlib import Path

folder = Path(tempfile.mkdtemp())
path = make_report(
    model, X_test, y_test, folder / "baseline.html", X_train, y_train, title="RandomForest baseline"
)
print(f"{path.name}: {path.stat().st_size / 1e3:.0f} kB")

# %%
# The sections, in order:
import re

document = path.read_text(encoding="utf-8")
for section_id, heading in re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', document):
    print(f"#{section_id:<18} {heading}")

# %%
# A RandomForest has no training history, so its learning-curve section says so; a
# :class:`~skcharclf.KerasCharClassifier` (bare or at the end of a pipeline) fills it with
# loss, accuracy and macro F1 per epoch and marks the findings of its ``diagnosis_`` on them.

# %%
# Reuse an analysis
# -----------------
# The dataset analysis is computed inside ``make_report`` unless one is passed in; when
# comparing several models on the same split, compute it once.
analysis = analyze_dataset(X_train, y_train, X_test=X_test)
print(analysis.recommendations[0].title)
path = make_report(model, X_test, y_test, folder / "again.html", analysis=analysis, max_mistakes=8)

# %%
# To look at a report, open it in a browser, e.g. ``webbrowser.open(path.as_uri())``.
