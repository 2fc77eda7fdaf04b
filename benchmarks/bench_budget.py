"""Quality against the training budget (optimizer steps) on the development data sets.

Trains :func:`skcharclf.make_char_pipeline` with its defaults except ``epochs``, set so that the
run takes about the given number of optimizer steps (the learning-rate schedule spans the whole
run, so each budget is a separate fit), and reports macro-F1 and balanced accuracy on each set's
balanced test set, with the steps that ``epochs="auto"`` chooses marked. This is the evidence
behind the ``epochs="auto"`` rule (see the user guide's imbalance page).

Usage::

    python benchmarks/bench_budget.py                        # seed 0, all three sets
    python benchmarks/bench_budget.py --sets digits --steps 500 1500 --seeds 0 1

Results go to ``benchmarks/results/budget.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from bench_generalisation import load, scores

from skcharclf._training import resolve_epochs
from skcharclf.pipeline import make_char_pipeline

RESULTS = Path(__file__).parent / "results" / "budget.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["digits", "fonts-small", "fonts-large"])
    parser.add_argument("--steps", nargs="+", type=int, default=[400, 1500, 4000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--large-samples", type=int, default=15_000)
    args = parser.parse_args()
    rows = []
    for set_name in args.sets:
        for seed in args.seeds:
            X_train, X_test, y_train, y_test = load(set_name, seed, args.large_samples)
            probe = make_char_pipeline(random_state=seed)
            # The rows the classifier trains on (after the augmenter), for steps per epoch.
            n_rows = len(probe[:-1].fit_resample(X_train, y_train)[1])
            per_epoch = math.ceil(n_rows / probe[-1].batch_size)
            auto = resolve_epochs("auto", per_epoch, n_rows * 32 * 32) * per_epoch
            for steps in sorted({*args.steps, auto}):
                epochs = max(1, round(steps / per_epoch))
                model = make_char_pipeline(epochs=epochs, random_state=seed)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                row = {"set": set_name, "seed": seed, "epochs": epochs,
                       "steps": epochs * per_epoch, "auto": steps == auto,
                       "fit_seconds": time.perf_counter() - start,
                       **scores(np.asarray(y_train), np.asarray(y_test), model.predict(X_test))}
                rows.append(row)
                print(f"{set_name:<12} seed {seed} {row['steps']:>6} steps ({epochs:>3} epochs)"
                      f"{' auto' if row['auto'] else '     '} macro-F1 {row['macro_f1']:.3f} "
                      f"bal. acc. {row['balanced_accuracy']:.3f} ({row['fit_seconds']:.0f} s)",
                      flush=True)
                RESULTS.parent.mkdir(exist_ok=True)
                RESULTS.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
