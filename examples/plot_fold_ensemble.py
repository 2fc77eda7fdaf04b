"""
=====================================================
A k-fold ensemble of CNNs, each at its best epoch
=====================================================

The procedure behind skcharclf trains "several models in parallel" on k folds, keeps each
one's best checkpoint and averages them. :class:`skcharclf.FoldEnsembleClassifier` does this
behind ``fit`` / ``predict``:

* one clone of the pipeline per fold, trained on the fold's training part (the rare classes
  topped up by :class:`skcharclf.RareClassAugmenter` there only);
* each member validates on its own held-out fold (resized like its training images) and,
  with early stopping, keeps its best epoch;
* the ensemble averages the members' probabilities, and the held-out folds give an
  out-of-fold prediction for every training image and per-fold scores.

Tiny settings (16x16 images, a small network, 3 folds, a few epochs) keep this example
quick; ``n_jobs=2`` would train two folds at once (see the user guide on threads).
"""

# %%
# A CNN pipeline with early stopping
# ----------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, f1_score

from skcharclf import FoldEnsembleClassifier, make_char_pipeline
from skcharclf.datasets import load_digit_chars

X, X_test, y, y_test = load_digit_chars(test_size_per_class=20, random_state=0,
                                        return_X_y=True)
cnn = make_char_pipeline(
    size=(16, 16),
    resize_mode="stretch",
    filters=(8, 16),
    batch_size=32,
    learning_rate=5e-3,
    epochs=15,
    early_stopping=True,
    patience=3,
    random_state=0,
)

# %%
# Fit a 3-fold ensemble
# ---------------------
# ``cv=3`` means shuffled stratified folds, checked against the rarest class (about 15
# images of each rare digit here, so 3 folds are fine).
ensemble = FoldEnsembleClassifier(cnn, cv=3, random_state=0).fit(X, y)
for metric, scores in ensemble.cv_scores_.items():
    print(f"{metric:>18} per fold: {np.round(scores, 3).tolist()}")
covered = np.sort(np.concatenate(ensemble.test_indices_))
print("every training image has exactly one out-of-fold prediction:",
      np.array_equal(covered, np.arange(len(y))))

# %%
# Each member stopped at its own best epoch
# -----------------------------------------
# The validation curves are on each member's held-out fold; the dot marks the epoch whose
# weights the member kept.
fig, ax = plt.subplots(figsize=(5, 3.2))
for fold, member in enumerate(ensemble.estimators_):
    history = member[-1].history_
    best = member[-1].best_epoch_
    line = ax.plot(history["val_loss"], label=f"member {fold}")[0]
    ax.plot(best, history["val_loss"][best], "o", color=line.get_color())
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss (own fold)")
ax.set_title("Fold members: best epochs")
ax.legend()
fig.tight_layout()

# %%
# The ensemble against one network
# --------------------------------
# One network trained on all the training images, early-stopped on its own stratified 10 %
# validation split, against the members alone and their soft vote, on the balanced test set.
# Averaging smooths out the members' individual mistakes, but with 3 folds each member has
# seen only two thirds of the images: whether the vote beats one network trained on all of
# them depends on the data and the budget. More folds (``cv=5``: members see 80 %) and longer
# training favour the ensemble; ``benchmarks/bench_search.py`` measures it at full size.
single = clone(cnn).fit(X, y)


def scores(model):
    pred = model.predict(X_test)
    return f1_score(y_test, pred, average="macro"), balanced_accuracy_score(y_test, pred)


rows = {"single CNN": scores(single)}
for fold, member in enumerate(ensemble.estimators_):
    rows[f"member {fold}"] = scores(member)
rows["fold ensemble"] = scores(ensemble)
for name, (f1, bacc) in rows.items():
    print(f"{name:>14}: macro-F1 {f1:.3f}  balanced accuracy {bacc:.3f}")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.bar(list(rows), [f1 for f1, _ in rows.values()],
       color=["tab:gray"] + ["tab:blue"] * len(ensemble.estimators_) + ["tab:green"])
ax.set_ylim(min(f1 for f1, _ in rows.values()) - 0.1, 1.0)
ax.set_ylabel("test macro-F1")
ax.set_title("Soft vote of the fold members")
ax.tick_params(axis="x", labelrotation=30)
fig.tight_layout()
plt.show()
