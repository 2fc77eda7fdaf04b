"""Quality of the CNN pipeline and its imbalance remedies on the built-in long-tailed data.

For each seed, :func:`skcharclf.datasets.load_digit_chars` makes a long-tailed, noisy training
set (digits 2, 5 and 8 keep 10 % of their samples) and a *balanced* held-out test set of 50
images per class. On it this script trains:

* the random-forest baseline (:func:`skcharclf.make_baseline_pipeline`);
* the CNN with plain cross-entropy and neither label smoothing nor online augmentation (the
  network alone), then with the classifier's default regularisation (``label_smoothing=0.1``,
  ``online_augmentation="default"``) and plain cross-entropy, with ``class_weight="balanced"``,
  with the focal loss, with the logit-adjusted loss, and with plain cross-entropy after the
  rare-class augmenter;
* the default :func:`skcharclf.make_char_pipeline`;
* the same default pipeline trained on the balanced version of the data (every class keeps all
  its samples): the upper bound of what the remedies can recover.

and reports accuracy, balanced accuracy, macro-F1 and rare-class recall (mean and standard
deviation over the seeds). Goal: the default pipeline beats the forest on macro-F1 and comes
within 2 points of the balanced upper bound.

Usage::

    python benchmarks/bench_quality.py           # 3 seeds (~17 minutes on 2 cores)
    python benchmarks/bench_quality.py --quick   # 1 seed, 3 epochs, a smoke test

Results go to ``benchmarks/results/bench_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from skcharclf.classifier import KerasCharClassifier
from skcharclf.datasets import load_digit_chars
from skcharclf.pipeline import make_baseline_pipeline, make_char_pipeline

RESULTS = Path(__file__).parent / "results" / "bench_quality.json"
RARE = (2, 5, 8)

# name -> (rare_ratio of the training data, factory(seed, epochs))
MODELS = {
    "RF baseline": (0.1, lambda seed, epochs: make_baseline_pipeline(random_state=seed)),
    "CNN, CE, no smoothing/online aug.": (
        0.1, lambda seed, epochs: make_char_pipeline(
            augment=None, loss="ce", label_smoothing=0.0, online_augmentation=None,
            epochs=epochs, random_state=seed)),
    "CNN, cross-entropy": (
        0.1, lambda seed, epochs: make_char_pipeline(
            augment=None, loss="ce", epochs=epochs, random_state=seed)),
    "CNN + class_weight": (
        0.1, lambda seed, epochs: make_char_pipeline(
            augment=None, loss="ce", class_weight="balanced", epochs=epochs, random_state=seed)),
    "CNN + focal loss": (
        0.1, lambda seed, epochs: make_char_pipeline(
            augment=None, loss="focal", epochs=epochs, random_state=seed)),
    "CNN + logit_adjusted": (
        0.1, lambda seed, epochs: make_char_pipeline(
            augment=None, loss="logit_adjusted", epochs=epochs, random_state=seed)),
    "CNN + RareClassAugmenter": (
        0.1, lambda seed, epochs: make_char_pipeline(
            loss="ce", epochs=epochs, random_state=seed)),
    "make_char_pipeline() default": (
        0.1, lambda seed, epochs: make_char_pipeline(epochs=epochs, random_state=seed)),
    "upper bound: default on balanced data": (
        1.0, lambda seed, epochs: make_char_pipeline(epochs=epochs, random_state=seed)),
}


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    rare = np.isin(y_true, RARE)
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro"),
        "rare_recall": float(np.mean(y_pred[rare] == y_true[rare])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs: a smoke test")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    epochs = 3 if args.quick else KerasCharClassifier().epochs  # the default: what users get
    runs: dict[str, list[dict]] = {name: [] for name in MODELS}
    for seed in seeds:
        data = {}
        for ratio in {ratio for ratio, _ in MODELS.values()}:
            data[ratio] = load_digit_chars(
                rare_ratio=ratio, test_size_per_class=50, random_state=seed, return_X_y=True
            )
        for name, (ratio, make) in MODELS.items():
            X_train, X_test, y_train, y_test = data[ratio]
            model = make(seed, epochs)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            fit_seconds = time.perf_counter() - start
            result = {"seed": seed, "n_train": len(y_train), "fit_seconds": fit_seconds,
                      **scores(y_test, model.predict(X_test))}
            runs[name].append(result)
            print(f"seed {seed} {name:<40} macro-F1 {result['macro_f1']:.3f} "
                  f"({fit_seconds:.0f} s)", flush=True)

    metrics = ["accuracy", "balanced_accuracy", "macro_f1", "rare_recall"]
    summary = {
        name: {m: (float(np.mean([r[m] for r in rs])), float(np.std([r[m] for r in rs])))
               for m in [*metrics, "fit_seconds"]}
        for name, rs in runs.items()
    }
    print(f"\n{'model':<40} {'accuracy':>13} {'bal. acc.':>13} {'macro-F1':>13} "
          f"{'rare recall':>13} {'fit s':>7}")
    for name, row in summary.items():
        cells = " ".join(f"{row[m][0]:>6.3f}+-{row[m][1]:.3f}" for m in metrics)
        print(f"{name:<40} {cells} {row['fit_seconds'][0]:>7.0f}")
    default = summary["make_char_pipeline() default"]["macro_f1"][0]
    forest = summary["RF baseline"]["macro_f1"][0]
    bound = summary["upper bound: default on balanced data"]["macro_f1"][0]
    print(f"\ndefault pipeline vs forest: {100 * (default - forest):+.1f} macro-F1 points "
          f"(goal > 0); vs balanced upper bound: {100 * (default - bound):+.1f} (goal >= -2)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"seeds": seeds, "epochs": epochs,
                                   "summary": summary, "runs": runs}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
