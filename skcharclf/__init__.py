"""skcharclf: scikit-learn compatible classifiers for small, noisy, imbalanced character images.

Every public estimator composes in an :class:`imblearn.pipeline.Pipeline`, so scikit-learn's
model selection (``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingRandomSearchCV``,
``cross_validate``) works unchanged.

TensorFlow is only imported when a Keras-backed object is first used, so
``import skcharclf`` is fast and the preprocessing steps work without starting TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it (imported on first access)
_LAZY = {
    "FlatImages": "_images",
    "ImageResizer": "preprocessing",
    "Denoiser": "preprocessing",
    "RareClassAugmenter": "augmentation",
    "KerasCharClassifier": "classifier",
    "load_model": "classifier",
    "FoldEnsembleClassifier": "ensemble",
    "make_char_pipeline": "pipeline",
    "make_baseline_pipeline": "pipeline",
    "search_space": "model_selection",
    "CachedEstimator": "model_selection",
    "analyze_dataset": "diagnostics",
    "diagnose_history": "diagnostics",
    "sanity_check": "diagnostics",
    "find_label_issues": "diagnostics",
    "audit_labels": "diagnostics",
    "make_report": "report",
    "make_audit_report": "report",
    "lr_find": "lr_finder",
    "plot_lr_find": "lr_finder",
    "save_pipeline": "persistence",
    "load_pipeline": "persistence",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skcharclf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
