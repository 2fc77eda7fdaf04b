"""
=============================
Diagnosing learning curves
=============================

:func:`skcharclf.diagnose_history` reads a training history (the per-epoch ``loss``,
``accuracy``, ``val_loss`` and ``val_accuracy`` that :class:`skcharclf.KerasCharClassifier`
keeps in ``history_``) and reports the symptoms of the procedure's learning-curve table, each
with its evidence, an explanation and what to try.

This example needs no training: it builds six synthetic histories, one healthy run and five
with a typical problem, diagnoses each and draws the curves with the findings marked on them.
"""

# %%
# Six synthetic training runs
# ---------------------------
# Each history holds 30 epochs of smooth curves with a little noise, as a real run would.
import matplotlib.pyplot as plt
import numpy as np

from skcharclf import diagnose_history
from skcharclf.diagnostics import format_findings

rng = np.random.default_rng(0)
epochs = np.arange(30)
zigzag = np.where(epochs % 2 == 0, 1.0, -1.0)


def noisy(values, scale=0.01):
    return values * (1 + scale * rng.standard_normal(len(values)))


def run(loss, val_loss, accuracy, val_accuracy):
    return {
        "loss": noisy(loss),
        "val_loss": noisy(val_loss),
        "accuracy": accuracy,
        "val_accuracy": val_accuracy,
    }


decay = np.exp(-epochs / 4)
histories = {
    "healthy": run(
        0.05 + 2.0 * decay, 0.12 + 2.04 * decay, 0.97 - 0.87 * decay, 0.95 - 0.87 * decay
    ),
    # Train accuracy reaches 100 %, the validation loss turns up after epoch 9.
    "overfitting": run(
        0.001 + 2.0 * np.exp(-epochs / 3),
        0.6 + 1.5 * np.exp(-epochs / 3) + 0.06 * np.clip(epochs - 8, 0, None),
        1.0 - 0.9 * np.exp(-epochs / 3),
        0.77 - 0.6 * np.exp(-epochs / 3),
    ),
    # learning_rate far too low: nothing moves from ln(10) = 2.30.
    "plateau": run(np.full(30, 2.302), np.full(30, 2.303), np.full(30, 0.1), np.full(30, 0.1)),
    # The validation loss stops at epoch 5 while the training loss keeps falling.
    "stalled validation": run(
        0.15 + 2.0 * np.exp(-epochs / 6),
        0.9 + 1.3 * np.exp(-epochs / 1.5),
        0.93 - 0.8 * np.exp(-epochs / 6),
        0.8 - 0.6 * np.exp(-epochs / 1.5),
    ),
    # Small batches or unscaled inputs: the validation loss jumps from epoch to epoch.
    "oscillating validation": run(
        0.05 + 2.0 * decay,
        (0.12 + 2.04 * decay) * (1 + 0.4 * zigzag * (epochs > 3)),
        0.97 - 0.87 * decay,
        0.95 - 0.87 * decay,
    ),
    # Validation easier than training (or regularisation active only in training).
    "validation below training": run(
        0.05 + 2.0 * decay, 0.7 * (0.05 + 2.0 * decay), 0.97 - 0.87 * decay, 0.99 - 0.87 * decay
    ),
}

# %%
# Diagnose them
# -------------
# ``n_classes`` gives the rules the loss of a model that knows nothing, ln C; the classifier's
# ``initial_loss_`` (the loss before the first update) could be passed too. Each finding has
# a code, a severity and the epochs it points at (counted from 1, as Keras prints them).
diagnoses = {name: diagnose_history(h, n_classes=10) for name, h in histories.items()}
for name, findings in diagnoses.items():
    print(f"{name:>26}: {[f.code for f in findings]}")

# %%
# Every finding prints with its evidence, explanation and remedies:
print(format_findings(diagnoses["overfitting"]))

# %%
# The curves with the findings marked
# -----------------------------------
# The shaded span covers the epochs each finding points at; the dashed line is ln(10), the
# loss of an uninformed model.
colours = {"info": "tab:blue", "warning": "tab:orange", "error": "tab:red"}
fig, axes = plt.subplots(2, 3, figsize=(11, 6.4), sharex=True, layout="constrained")
x = epochs + 1
for ax, (name, history) in zip(axes.ravel(), histories.items(), strict=True):
    ax.plot(x, history["loss"], color="tab:blue", label="training loss")
    ax.plot(x, history["val_loss"], color="tab:orange", label="validation loss")
    ax.axhline(np.log(10), color="gray", lw=0.8, ls="--")
    findings = diagnoses[name]
    for k, finding in enumerate(findings):
        first, last = min(finding.epochs), max(finding.epochs)
        ax.axvspan(first - 0.5, last + 0.5, color=colours[finding.severity], alpha=0.12)
        ax.text(
            0.97,
            0.93 - 0.1 * k,
            f"{finding.code} ({finding.severity})",
            transform=ax.transAxes,
            ha="right",
            va="top",
            color=colours[finding.severity],
            fontsize=9,
            fontweight="bold",
        )
    if not findings:
        ax.text(
            0.97,
            0.93,
            "no findings",
            transform=ax.transAxes,
            ha="right",
            va="top",
            color="tab:green",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_title(name, loc="left", fontsize=10)
    ax.set_ylim(0, 2.9)
for ax in axes[1]:
    ax.set_xlabel("epoch")
axes[0, 0].set_ylabel("loss")
axes[1, 0].set_ylabel("loss")
axes[0, 0].legend(loc="center right", fontsize=8, frameon=False)
plt.show()

# %%
# With a real model
# -----------------
# :class:`skcharclf.KerasCharClassifier` runs the diagnosis at the end of ``fit`` and keeps
# it in ``diagnosis_``; ``diagnose_history(clf)`` reads ``history_``, ``classes_`` and
# ``initial_loss_`` from the fitted classifier (or from the last step of a pipeline). Before
# a long run, :func:`skcharclf.sanity_check` verifies the loss before training and that the
# model can learn 50 images by heart. See :ref:`learning_curves` for every rule and its
# thresholds.
