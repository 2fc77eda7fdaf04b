"""Which imbalance strategy helps the random-forest baseline on long-tailed character images?

The baseline pipeline (:func:`skcharclf.pipeline.make_baseline_pipeline`: median
:class:`~skcharclf.Denoiser`, :class:`~skcharclf.ImageResizer` to 32x32, a random forest with
``class_weight="balanced_subsample"``) is trained on the built-in long-tailed digits
(:func:`skcharclf.datasets.load_digit_chars`: classes 2, 5 and 8 keep 10 % of their
samples) with one sampler in its ``"augment"`` slot:

* nothing (the class-weighted forest alone);
* :class:`~skcharclf.RareClassAugmenter` (default preset, ``sampling_strategy="auto"``);
* :class:`~imblearn.over_sampling.SMOTE`, :class:`~imblearn.over_sampling.RandomOverSampler`
  and :class:`~imblearn.under_sampling.RandomUnderSampler` (imbalanced-learn defaults).

Each is scored on a held-out *balanced* test split (``test_size_per_class`` source digits
per class, never seen in training) with macro-F1, balanced accuracy and the mean recall of
the rare classes, for 3 seeds (the seed drives the data's noise and selection, the test
split, the sampler and the forest). Whatever comes out is reported.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_imbalance_rf.py           # 3 seeds, 300 trees, ~3 min
    .venv/bin/python benchmarks/bench_imbalance_rf.py --quick   # 1 seed, 50 trees, ~20 s

The table is printed and written to ``benchmarks/results/imbalance_rf.json``
(``imbalance_rf_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from skcharclf.augmentation import RareClassAugmenter
from skcharclf.datasets import load_digit_chars
from skcharclf.pipeline import make_baseline_pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "imbalance_rf.json"
QUICK_RESULTS = Path(__file__).resolve().parent / "results" / "imbalance_rf_quick.json"
RARE_CLASSES = (2, 5, 8)
STRATEGIES = ("none", "RareClassAugmenter", "SMOTE", "RandomOverSampler", "RandomUnderSampler")


def make_sampler(name: str, seed: int):
    """The step for the ``"augment"`` slot, or ``"passthrough"``."""
    return {
        "none": lambda: "passthrough",
        "RareClassAugmenter": lambda: RareClassAugmenter(random_state=seed),
        "SMOTE": lambda: SMOTE(random_state=seed),
        "RandomOverSampler": lambda: RandomOverSampler(random_state=seed),
        "RandomUnderSampler": lambda: RandomUnderSampler(random_state=seed),
    }[name]()


def make_pipeline(name: str, seed: int, n_estimators: int, n_jobs: int | None) -> Pipeline:
    """The baseline pipeline with ``name``'s sampler between the resizer and the forest."""
    baseline = make_baseline_pipeline(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    denoise, resize, clf = baseline.steps
    return Pipeline([denoise, resize, ("augment", make_sampler(name, seed)), clf])


def evaluate(name: str, seed: int, data: tuple, n_estimators: int, n_jobs: int | None) -> dict:
    X_train, X_test, y_train, y_test = data
    pipeline = make_pipeline(name, seed, n_estimators, n_jobs)
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    predicted = pipeline.predict(X_test)
    rare_recall = recall_score(y_test, predicted, labels=list(RARE_CLASSES), average=None)
    return {
        "strategy": name,
        "seed": seed,
        "macro_f1": f1_score(y_test, predicted, average="macro"),
        "balanced_accuracy": balanced_accuracy_score(y_test, predicted),
        "rare_recall": float(np.mean(rare_recall)),
        "rare_recall_per_class": dict(zip(RARE_CLASSES, rare_recall.tolist(), strict=True)),
        "fit_s": fit_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 50 trees")
    parser.add_argument("--n-jobs", type=int, default=None, help="forest's n_jobs")
    parser.add_argument("--test-size-per-class", type=int, default=60)
    parser.add_argument("--output", help=f"default: {RESULTS} ({QUICK_RESULTS} with --quick)")
    args = parser.parse_args(argv)
    output = Path(args.output or (QUICK_RESULTS if args.quick else RESULTS))

    seeds, n_estimators = ((0,), 50) if args.quick else ((0, 1, 2), 300)
    runs = []
    for seed in seeds:
        data = load_digit_chars(
            rare_classes=RARE_CLASSES,
            test_size_per_class=args.test_size_per_class,
            random_state=seed,
            return_X_y=True,
        )
        counts = np.bincount(data[2]).tolist()
        for name in STRATEGIES:
            runs.append(evaluate(name, seed, data, n_estimators, args.n_jobs))
            runs[-1]["train_counts"] = counts

    summary = _summarise(runs)
    _print_table(summary, seeds, n_estimators, args.test_size_per_class)
    report = {
        "benchmark": "imbalance strategies in the random-forest baseline",
        "quick": args.quick,
        "seeds": list(seeds),
        "n_estimators": n_estimators,
        "test_size_per_class": args.test_size_per_class,
        "rare_classes": list(RARE_CLASSES),
        "python": platform.python_version(),
        "summary": summary,
        "runs": runs,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


def _summarise(runs: list[dict]) -> dict:
    summary = {}
    for name in STRATEGIES:
        mine = [run for run in runs if run["strategy"] == name]
        summary[name] = {
            metric: {
                "mean": statistics.fmean(run[metric] for run in mine),
                "std": statistics.pstdev(run[metric] for run in mine),
            }
            for metric in ("macro_f1", "balanced_accuracy", "rare_recall", "fit_s")
        }
    return summary


def _print_table(summary: dict, seeds: tuple, n_estimators: int, test_size: int) -> None:
    print(
        f"{len(seeds)} seed(s), {n_estimators} trees, balanced test split of {test_size} "
        f"images per class; mean ± std over seeds"
    )
    print("| augment step | macro-F1 | balanced accuracy | rare-class recall | fit s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, metrics in summary.items():
        cells = [
            f"{metrics[m]['mean']:.3f} ± {metrics[m]['std']:.3f}"
            for m in ("macro_f1", "balanced_accuracy", "rare_recall")
        ]
        print(f"| {name} | {' | '.join(cells)} | {metrics['fit_s']['mean']:.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
