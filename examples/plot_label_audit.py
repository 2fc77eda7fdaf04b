"""
=======================================
Finding wrong labels with a label audit
=======================================

:func:`skcharclf.diagnostics.audit_labels` cross-validates a model, and confident learning
on its out-of-fold probabilities lists the images whose given label is probably wrong,
likeliest first, with the label the model suggests. This example files 3 % of the built-in
digits under a wrong class, audits them with the RandomForest baseline (seconds) and looks
at what the audit finds. See :ref:`label_audit` for the method and the benchmark.
"""

# %%
# Plant wrong labels
# ------------------
# 33 of the 1,098 training digits get a random other label; the audit does not know which.
import numpy as np

from skcharclf import make_baseline_pipeline
from skcharclf.datasets import load_digit_chars

X, _, y, _ = load_digit_chars(test_size_per_class=30, random_state=0, return_X_y=True)
rng = np.random.default_rng(0)
planted = rng.choice(len(y), size=33, replace=False)
y_given = y.copy()
y_given[planted] = (y[planted] + rng.integers(1, 10, size=planted.size)) % 10
print(f"{len(y)} images, {planted.size} wrong labels")

# %%
# Audit
# -----
# Any estimator with ``predict_proba`` will do; the CNN pipeline trained as for real use
# judges better, the forest is faster. The result prints the suspects, lowest score first,
# and says how far the out-of-fold model agrees with the given labels: a weak model's list
# mixes its own mistakes with wrong labels, and the audit cautions when it is below 80 %.
from skcharclf.diagnostics import audit_labels

audit = audit_labels(make_baseline_pipeline(random_state=0), X, y_given, cv=5, random_state=0)
issues = audit.label_issues
print(str(issues).split("\n\n")[0])

# %%
# How many of the suspects are planted errors, and how many of the planted errors are
# suspected? The list is as long as the estimated number of errors; the first ones are the
# surest.
found = np.isin(issues.indices, planted)
print(f"suspected {issues.n_flagged}, of which planted: {found.sum()}")
print(f"precision {found.mean():.2f}, recall {found.sum() / planted.size:.2f}")
first = issues.indices[: planted.size]
print(f"among the first {planted.size}: {np.isin(first, planted).sum()} planted")

# %%
# Look at them
# ------------
# The first suspects, with the given and the suggested label. A planted error's true label
# is shown in green when the suggestion is right.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 8, figsize=(8, 3))
for ax, issue in zip(axes.ravel(), issues.issues, strict=False):
    ax.imshow(X[issue.index], cmap="gray")
    right = issue.suggested_label == y[issue.index]
    ax.set_title(
        f"{issue.given_label} \u2192 {issue.suggested_label}",
        color="tab:green" if right else "tab:red",
        fontsize=9,
    )
    ax.axis("off")
fig.suptitle("Suspected labels: given \u2192 suggested")
fig.tight_layout()

# %%
# What to do with the list
# ------------------------
# Review it by eye: the suspects that are not errors are the hardest correct images. The
# audit's ``to_csv`` writes one row per suspect with an ``action`` column (keep, drop or
# relabel) that :func:`~skcharclf.datasets.load_image_folder` and the command line read
# back (``corrections=``), so a reviewed list corrects a folder of images without touching
# the files. Here, with the true labels at hand, dropping every suspect removes this many
# wrong labels and this many right ones:
keep = np.setdiff1d(np.arange(len(y)), issues.indices)
print(f"wrong labels left: {np.sum(y_given[keep] != y[keep])} of {planted.size}")
print(f"right labels dropped: {np.sum(y_given[issues.indices] == y[issues.indices])}")
