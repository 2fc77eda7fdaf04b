"""Do the defaults generalise? Four approaches on three development data sets of different kinds.

Data sets (all built in, no download; each with a *balanced* held-out test set):

* ``digits``: :func:`skcharclf.datasets.load_digit_chars`, handwritten digits, 10 classes,
  digits 2, 5 and 8 rare (ratio ~10), 50 test images per class;
* ``fonts-small``: :func:`skcharclf.datasets.load_font_chars` ``variant="small"``, printed and
  drawn glyphs, 20 classes, ratio 5, 1,000 training images, 30 test images per class;
* ``fonts-large``: ``variant="large"``, 40 classes, ratio 100 (``--large-samples`` training
  images, 50,000 by default), 30 test images per class.

Approaches:

* ``RF baseline``: :func:`skcharclf.make_baseline_pipeline`;
* ``procedure CNN``: the procedure's plain approach, written from its notes: every class topped
  up offline to the majority with augmented copies (:class:`~skcharclf.RareClassAugmenter`),
  a plain CNN without shortcuts (``architecture="cnn"``, 32-64 filters, global average
  pooling), cross-entropy, Adam at a constant 1e-3, batch 64, ``--procedure-epochs`` epochs;
* ``default before``: the defaults before issue 12 (offline top-up to the majority, 20
  epochs, natural sampling, no mixing);
* ``new default``: :func:`skcharclf.make_char_pipeline` with its defaults.

Columns: macro-F1, balanced accuracy, tail recall (mean recall of the third of the classes with
the fewest training images), fit seconds (mean +- standard deviation over the seeds).

Usage::

    python benchmarks/bench_generalisation.py                       # everything, 3 seeds
    python benchmarks/bench_generalisation.py --sets digits fonts-small --seeds 0
    python benchmarks/bench_generalisation.py --large-samples 15000 \
        --skip "default before@fonts-large"

``--skip NAME@SET`` leaves out one approach on one set (``default before`` on the full large set
materialises 225,000 images and trains 20 epochs of them: hours on 2 cores). Results go to
``benchmarks/results/generalisation.json`` (merged with the runs already there, keyed by set,
approach and seed, so a long benchmark can be run in parts).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from skcharclf.datasets import load_digit_chars, load_font_chars
from skcharclf.pipeline import make_baseline_pipeline, make_char_pipeline

RESULTS = Path(__file__).parent / "results" / "generalisation.json"


def procedure_cnn(seed: int, epochs: int) -> Any:
    return make_char_pipeline(
        architecture="cnn", filters=(32, 64), loss="ce", label_smoothing=0.0,
        online_augmentation=None, lr_schedule="constant", bias_init="zeros",
        epochs=epochs, random_state=seed,
    )


def default_before(seed: int, epochs: int) -> Any:
    return make_char_pipeline(epochs=20, class_sampling="natural", mixup_alpha=0.0,
                              cutmix_alpha=0.0, augment="rare", random_state=seed)


APPROACHES: dict[str, Callable[[int, int], Any]] = {
    "RF baseline": lambda seed, epochs: make_baseline_pipeline(random_state=seed),
    "procedure CNN": procedure_cnn,
    "default before": default_before,
    "new default": lambda seed, epochs: make_char_pipeline(random_state=seed),
}


def load(name: str, seed: int, large_samples: int) -> tuple:
    if name == "digits":
        return load_digit_chars(test_size_per_class=50, random_state=seed, return_X_y=True)
    if name == "fonts-small":
        return load_font_chars(variant="small", test_size_per_class=30, random_state=seed,
                               return_X_y=True)
    return load_font_chars(variant="large", n_samples=large_samples, test_size_per_class=30,
                           random_state=seed, return_X_y=True)


def scores(y_train: np.ndarray, y_test: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    classes, counts = np.unique(y_train, return_counts=True)
    tail = classes[np.argsort(counts, kind="stable")[: max(1, classes.size // 3)]]
    recall = recall_score(y_test, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "macro_f1": float(f1_score(y_test, y_pred, average="macro")),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, y_pred)),
        "tail_recall": float(recall[np.isin(classes, tail)].mean()),
    }


def summarise(runs: list[dict]) -> dict:
    table: dict = {}
    for run in runs:
        table.setdefault(run["set"], {}).setdefault(run["approach"], []).append(run)
    summary: dict = {}
    for set_name, by_approach in table.items():
        for approach, rows in by_approach.items():
            summary.setdefault(set_name, {})[approach] = {
                metric: (float(np.mean([r[metric] for r in rows])),
                         float(np.std([r[metric] for r in rows])))
                for metric in ("macro_f1", "balanced_accuracy", "tail_recall", "fit_seconds")
            } | {"seeds": sorted(r["seed"] for r in rows)}
    return summary


def print_table(summary: dict) -> None:
    print(f"\n{'set':<12} {'approach':<15} {'macro-F1':>13} {'bal. acc.':>13} "
          f"{'tail recall':>13} {'fit s':>13}  seeds")
    for set_name, by_approach in summary.items():
        for approach in APPROACHES:
            if approach not in by_approach:
                continue
            row = by_approach[approach]
            cells = " ".join(f"{row[m][0]:>6.3f}+-{row[m][1]:.3f}"
                             for m in ("macro_f1", "balanced_accuracy", "tail_recall"))
            fit = f"{row['fit_seconds'][0]:>7.0f}+-{row['fit_seconds'][1]:<4.0f}"
            print(f"{set_name:<12} {approach:<15} {cells} {fit}  {row['seeds']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["digits", "fonts-small", "fonts-large"],
                        choices=["digits", "fonts-small", "fonts-large"])
    parser.add_argument("--approaches", nargs="+", default=list(APPROACHES),
                        choices=list(APPROACHES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--large-samples", type=int, default=50_000)
    parser.add_argument("--procedure-epochs", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], metavar="APPROACH@SET")
    args = parser.parse_args()

    previous = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    runs = {(r["set"], r["approach"], r["seed"]): r for r in previous}
    for set_name in args.sets:
        for seed in args.seeds:
            X_train, X_test, y_train, y_test = load(set_name, seed, args.large_samples)
            for approach in args.approaches:
                if f"{approach}@{set_name}" in args.skip:
                    continue
                model = APPROACHES[approach](seed, args.procedure_epochs)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                fit_seconds = time.perf_counter() - start
                run = {"set": set_name, "approach": approach, "seed": seed,
                       "n_train": len(y_train), "fit_seconds": fit_seconds,
                       **scores(np.asarray(y_train), np.asarray(y_test), model.predict(X_test))}
                if approach == "procedure CNN":
                    run["procedure_epochs"] = args.procedure_epochs
                if set_name == "fonts-large":
                    run["large_samples"] = args.large_samples
                runs[(set_name, approach, seed)] = run
                print(f"{set_name:<12} seed {seed} {approach:<15} macro-F1 {run['macro_f1']:.3f} "
                      f"bal. acc. {run['balanced_accuracy']:.3f} ({fit_seconds:.0f} s)",
                      flush=True)
                RESULTS.parent.mkdir(exist_ok=True)
                RESULTS.write_text(json.dumps(
                    {"summary": summarise(list(runs.values())), "runs": list(runs.values())},
                    indent=2))
    print_table(summarise(list(runs.values())))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
