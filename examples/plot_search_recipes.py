"""
=======================================================
Search recipes: the input variant, then short CNN runs
=======================================================

Two of the searches of the user guide (:ref:`model_selection`), run on the built-in
long-tailed digits with tiny settings:

1. a ``GridSearchCV`` over the input variant (the :class:`skcharclf.Denoiser`'s ``method``
   and the :class:`skcharclf.ImageResizer`'s ``mode``) with the quick random-forest
   baseline: the procedure's "function to choose the input";
2. a ``HalvingRandomSearchCV`` over CNN hyperparameters with the *epochs* as its resource:
   every candidate trains briefly, the best ones go on for longer, and the winner is retrained
   on all the data at the full budget (the procedure's "short runs first, then the best for
   longer").

Both score folds from :func:`skcharclf.model_selection.check_cv_for_classes` with macro-F1,
which treats the three rare classes (2, 5, 8) like the others.
"""

# %%
# Data and folds
# --------------
# ``check_cv_for_classes`` builds shuffled stratified folds and would raise a clear error if
# a rare class had fewer images than folds.
import matplotlib.pyplot as plt
import numpy as np

from skcharclf.datasets import load_digit_chars
from skcharclf.model_selection import check_cv_for_classes

X, X_test, y, y_test = load_digit_chars(test_size_per_class=20, random_state=0,
                                        return_X_y=True)
print(f"{len(y)} training images, class counts {np.bincount(y).tolist()}")
cv = check_cv_for_classes(3, y, random_state=0)

# %%
# Recipe 1: grid search over the input variant
# --------------------------------------------
# Six variants, three folds, a 40-tree forest on 16x16 images: a few seconds.
from sklearn.model_selection import GridSearchCV

from skcharclf import make_baseline_pipeline

grid = GridSearchCV(
    make_baseline_pipeline(size=(16, 16), n_estimators=40, random_state=0),
    {
        "denoise__method": ["none", "median", ["median", "sharpen"]],
        "resize__mode": ["pad", "stretch"],
    },
    cv=cv,
    scoring="f1_macro",
).fit(X, y)
print("best input variant:", grid.best_params_, f"macro-F1 {grid.best_score_:.3f}")

scores = grid.cv_results_["mean_test_score"].reshape(3, 2)
fig, ax = plt.subplots(figsize=(4.5, 3.2))
image = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(2), ["pad", "stretch"])
ax.set_yticks(range(3), ["none", "median", "median+sharpen"])
ax.set_xlabel("resize__mode")
ax.set_ylabel("denoise__method")
for (row, col), value in np.ndenumerate(scores):
    ax.text(col, row, f"{value:.3f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax, label="mean CV macro-F1")
ax.set_title("Random forest: input variants")
fig.tight_layout()

# %%
# Recipe 2: successive halving with epochs as the resource
# --------------------------------------------------------
# The CNN pipeline: the winning input variant, rare-class augmentation on each training
# fold, and a small residual network on 16x16 images. Two candidates from
# :func:`skcharclf.search_space` train 2 epochs on each of two folds; the better one goes on
# with ``factor=2`` times more (4 epochs, which is ``max_resources``), and ``refit`` retrains
# it on all the training data for 4 epochs. A real search uses more candidates and rounds,
# e.g. 27 candidates, ``factor=3``, 2 -> 6 -> 18 epochs. A constant learning rate keeps
# short and long runs comparable (a cosine schedule would anneal a 2-epoch run to zero).
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingRandomSearchCV

from skcharclf import make_char_pipeline, search_space

cnn = make_char_pipeline(
    denoise=grid.best_params_["denoise__method"],
    resize_mode=grid.best_params_["resize__mode"],
    size=(16, 16),
    filters=(8, 16),
    lr_schedule="constant",
    random_state=0,
)
space = search_space(cnn, preprocessing=False, augmentation=False)
space.pop("clf__lr_schedule")
halving = HalvingRandomSearchCV(
    cnn,
    space,
    n_candidates=2,
    resource="clf__epochs",
    min_resources=2,
    max_resources=4,
    factor=2,
    cv=check_cv_for_classes(2, y, random_state=0),
    scoring="f1_macro",
    random_state=0,
).fit(X, y)

results = halving.cv_results_
for i in range(len(results["params"])):
    print(
        f"round {results['iter'][i]}: {results['n_resources'][i]} epochs, "
        f"lr={results['param_clf__learning_rate'][i]:.2g}, "
        f"loss={results['param_clf__loss'][i]}: macro-F1 {results['mean_test_score'][i]:.3f}"
    )

# %%
# The refitted winner trained the full budget
# -------------------------------------------
# ``best_params_`` carries the epochs of the last round, and the classifier's ``history_``
# shows it trained exactly that many epochs on all the training images.
best = halving.best_estimator_
print("epochs of the refit:", halving.best_params_["clf__epochs"],
      "| epochs trained:", len(best[-1].history_["loss"]))

from sklearn.metrics import f1_score

print(f"test macro-F1 of the winner: {f1_score(y_test, best.predict(X_test), average='macro'):.3f}")

fig, ax = plt.subplots(figsize=(5, 3.2))
for candidate, params in enumerate(results["params"][: halving.n_candidates_[0]]):
    same = [i for i, p in enumerate(results["params"])
            if {k: v for k, v in p.items() if k != "clf__epochs"}
            == {k: v for k, v in params.items() if k != "clf__epochs"}]
    ax.plot(results["n_resources"][same], results["mean_test_score"][same], "o-",
            label=f"candidate {candidate}")
ax.set_xlabel("epochs (resource)")
ax.set_ylabel("mean CV macro-F1")
ax.set_title("Successive halving: the best run longer")
ax.legend()
fig.tight_layout()
plt.show()
