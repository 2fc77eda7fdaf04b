"""Learning-curve shapes and helpers shared by the diagnostics test modules
(tests/test_diagnostics_*.py); their images come from tests/_data.py."""

import numpy as np


def codes(findings):
    return [finding.code for finding in findings]


def _tiny_classifier(**params):
    from skcharclf import KerasCharClassifier

    settings = {
        "image_shape": (8, 8),
        "filters": (8,),
        "lr_schedule": "constant",
        "random_state": 0,
        "n_threads": 1,
    }
    return KerasCharClassifier(**{**settings, **params})


# --------------------------------------------------------------------------------------------
# Synthetic learning curves: one healthy run and one run per symptom (30 epochs)
# --------------------------------------------------------------------------------------------

EPOCHS = np.arange(30)
ZIGZAG = np.where(EPOCHS % 2 == 0, 1.0, -1.0)


def _jitter(values, rng, scale=0.01):
    return values * (1 + scale * rng.standard_normal(len(values)))


def healthy(rng):
    """Smoothly falling training loss, validation loss levelling off slightly above it."""
    acc = 0.97 - 0.87 * np.exp(-EPOCHS / 4)
    return {
        "loss": _jitter(0.05 + 2.0 * np.exp(-EPOCHS / 4), rng),
        "val_loss": _jitter(0.12 + 2.04 * np.exp(-EPOCHS / 4), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.02,
    }


def overfitting(rng):
    val = 0.6 + 1.5 * np.exp(-EPOCHS / 3) + 0.06 * np.clip(EPOCHS - 8, 0, None)
    return {
        "loss": _jitter(0.001 + 2.0 * np.exp(-EPOCHS / 3), rng),
        "val_loss": _jitter(val, rng),
        "accuracy": 1.0 - 0.9 * np.exp(-EPOCHS / 3),
        "val_accuracy": 0.77 - 0.6 * np.exp(-EPOCHS / 3),
    }


def underfitting(rng):
    acc = 0.45 - 0.35 * np.exp(-EPOCHS / 6)
    return {
        "loss": _jitter(1.6 + 0.7 * np.exp(-EPOCHS / 6), rng),
        "val_loss": _jitter(1.7 + 0.6 * np.exp(-EPOCHS / 6), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.03,
    }


def plateau(rng):
    acc = 0.1 + 0.01 * rng.standard_normal(30)
    return {
        "loss": _jitter(np.full(30, 2.302), rng, 0.001),
        "val_loss": _jitter(np.full(30, 2.303), rng, 0.001),
        "accuracy": acc,
        "val_accuracy": acc,
    }


def divergence_nan(rng):
    history = healthy(rng)
    history["loss"][6:] = np.nan
    return history


def divergence_jump(rng):
    history = healthy(rng)
    history["loss"][10:] = [5.0, 30.0, 80.0, 1e3] + [1e4] * 16
    return history


def train_oscillation(rng):
    acc = 0.85 - 0.7 * np.exp(-EPOCHS / 2) - 0.05 * ZIGZAG * (EPOCHS > 6)
    return {
        "loss": 0.6 + 1.6 * np.exp(-EPOCHS / 2) + 0.25 * ZIGZAG * (EPOCHS > 6),
        "val_loss": _jitter(0.8 + 1.5 * np.exp(-EPOCHS / 2), rng),
        "accuracy": acc,
        "val_accuracy": acc - 0.03,
    }


def val_stalled_early(rng):
    return {
        "loss": _jitter(0.15 + 2.0 * np.exp(-EPOCHS / 6), rng),
        "val_loss": _jitter(0.9 + 1.3 * np.exp(-EPOCHS / 1.5), rng),
        "accuracy": 0.93 - 0.8 * np.exp(-EPOCHS / 6),
        "val_accuracy": 0.8 - 0.6 * np.exp(-EPOCHS / 1.5),
    }


def val_oscillation(rng):
    history = healthy(rng)
    history["val_loss"] = history["val_loss"] * (1 + 0.4 * ZIGZAG * (EPOCHS > 3))
    return history


def val_below_train(rng):
    history = healthy(rng)
    history["val_loss"] = history["loss"] * 0.7
    history["val_accuracy"] = np.minimum(history["accuracy"] + 0.03, 1.0)
    return history


SYMPTOMS = {
    "overfitting": overfitting,
    "underfitting": underfitting,
    "plateau": plateau,
    "divergence": divergence_nan,
    "train_oscillation": train_oscillation,
    "val_stalled_early": val_stalled_early,
    "val_oscillation": val_oscillation,
    "val_below_train": val_below_train,
}




def as_lists(history):
    return {key: np.asarray(values).tolist() for key, values in history.items()}
