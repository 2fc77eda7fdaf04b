"""
=====================================================
Training the CNN pipeline and reading its history
=====================================================

:func:`skcharclf.make_char_pipeline` chains a denoiser, a resizer, the rare-class augmenter and
:class:`skcharclf.KerasCharClassifier`. This example trains a small version of it on the
built-in long-tailed digits, compares it with the random-forest baseline on a balanced test
set, plots the learning curves the classifier records in ``history_``, prints their diagnosis,
and saves the model to a pickle-free file.

The settings are shrunk so that the example runs in well under a minute on two CPU cores
(16x16 images, two stages of 8 and 16 filters, 12 epochs); the defaults (32x32, 24-48-96
filters, a budget of optimizer steps sized to the data) do better.
"""

# %%
# Data: a long tail, and a balanced test set
# ------------------------------------------
# Digits 2, 5 and 8 keep only 10 % of their images in the training set. The test set holds
# 30 images of every digit, so plain accuracy cannot hide a neglected rare class.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import f1_score, recall_score

from skcharclf import make_baseline_pipeline, make_char_pipeline
from skcharclf.datasets import load_digit_chars

X, X_test, y, y_test = load_digit_chars(test_size_per_class=30, random_state=0, return_X_y=True)
print("training images per class:", np.bincount(y))

# %%
# Train the CNN pipeline and the baseline
# ---------------------------------------
# ``size`` sets the resizer's output and the classifier's ``image_shape`` together; the other
# keyword arguments go to :class:`~skcharclf.KerasCharClassifier`. A validation set is only
# needed for the learning curves here, so we pass one explicitly.
cnn = make_char_pipeline(
    size=(16, 16),
    filters=(8, 16),
    epochs=12,
    learning_rate=3e-3,
    random_state=0,
)
# the validation images must go through the same denoise and resize steps
cnn[:2].fit(X)
cnn.set_params(clf__validation_data=(cnn[:2].transform(X_test), y_test))
cnn.fit(X, y)
forest = make_baseline_pipeline(size=(16, 16), n_estimators=100, random_state=0).fit(X, y)

rare = [2, 5, 8]
for name, model in [("CNN pipeline", cnn), ("random forest", forest)]:
    predicted = model.predict(X_test)
    rare_recall = recall_score(y_test, predicted, labels=rare, average="macro")
    print(f"{name:<14} macro-F1 {f1_score(y_test, predicted, average='macro'):.3f}  "
          f"rare-class recall {rare_recall:.3f}")

# %%
# The learning curves
# -------------------
# ``history_`` holds one value per epoch: the loss, accuracy and macro-F1 measured on the
# training batches as they go by, the same on the validation set, and the learning rate
# (the default cosine schedule anneals it to zero).
clf = cnn.named_steps["clf"]
history = clf.history_
epochs = np.arange(1, len(history["loss"]) + 1)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].plot(epochs, history["loss"], label="training")
axes[0].plot(epochs, history["val_loss"], label="validation")
axes[0].axhline(clf.initial_loss_, color="grey", linestyle=":", label="before training")
axes[0].set_title("loss")
axes[0].legend()
axes[1].plot(epochs, history["f1_macro"], label="training")
axes[1].plot(epochs, history["val_f1_macro"], label="validation")
axes[1].set_title("macro-F1")
axes[2].plot(epochs, history["learning_rate"])
axes[2].set_title("learning rate")
for ax in axes:
    ax.set_xlabel("epoch")
fig.tight_layout()

# %%
# The diagnosis
# -------------
# The classifier runs :func:`skcharclf.diagnose_history` on its own curves after ``fit``.
# Its loss before training is close to the entropy of the class priors, because the output
# bias starts at the log priors (the augmenter has balanced the classes, so that is ln 10).
# Here the validation loss stays below the training loss: expected, since the training
# batches are augmented online and hold the augmenter's harder copies of the rare digits.
from skcharclf.diagnostics import format_findings

priors = clf.class_priors_
print(f"initial loss {clf.initial_loss_:.3f}, "
      f"entropy of the priors {-(priors * np.log(priors)).sum():.3f}")
print(format_findings(clf.diagnosis_))

# %%
# Save without pickle
# -------------------
# :meth:`~skcharclf.KerasCharClassifier.save` writes a Keras ``.keras`` file with the labels
# and parameters inside; :func:`skcharclf.load_model` reads it in Keras's safe mode, so a
# model file cannot run code. The reloaded classifier predicts exactly like the original.
import tempfile
from pathlib import Path

from skcharclf import load_model

with tempfile.TemporaryDirectory() as folder:
    clf.save(Path(folder) / "digits.keras")
    reloaded = load_model(Path(folder) / "digits.keras")
flat_test = cnn[:2].transform(X_test)
print("identical predictions:", np.array_equal(reloaded.predict(flat_test),
                                               clf.predict(flat_test)))
