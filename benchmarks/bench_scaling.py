"""Memory and time per epoch of the default pipeline on the large long-tailed development set.

Compares the rare-class top-up before issue 12 (every class topped up to the majority:
``max_new_samples=None``) with today's default (``max_new_samples="auto"``: at most as many new
images as the data has). Each configuration runs in a fresh process, which reports its peak
resident memory, the rows the classifier trains on, the seconds the augmenter took, the steps
``epochs="auto"`` chooses, and the seconds of one training epoch (a one-epoch fit timed by a
Keras callback, so graph compilation is left out of the second of two epochs).

Usage::

    python benchmarks/bench_scaling.py                      # 50,000 images (variant="large")
    python benchmarks/bench_scaling.py --n-samples 15000

Results go to ``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "scaling.json"
CONFIGS = {"top-up to the majority (before)": None, "max_new_samples='auto' (now)": "auto"}


def child(cap: str | None, n_samples: int) -> dict:
    import numpy as np

    from skcharclf._tf import import_keras
    from skcharclf._training import resolve_epochs
    from skcharclf.datasets import load_font_chars
    from skcharclf.pipeline import make_char_pipeline

    keras = import_keras()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    X, y = load_font_chars(variant="large", n_samples=n_samples, random_state=0,
                           return_X_y=True)
    model = make_char_pipeline(random_state=0, epochs=2)
    model.set_params(augment__max_new_samples=cap)
    start = time.perf_counter()
    X_fit, y_fit = model[:-1].fit_resample(X, y)
    augment_seconds = time.perf_counter() - start
    clf = model[-1]
    timer = EpochTimer()
    timer.seconds = []
    clf.set_params(callbacks=[timer])  # runs after the package's own; fit copies it
    clf.fit(X_fit, y_fit)
    timer = clf.callbacks_[0]
    per_epoch = -(-len(y_fit) // clf.batch_size)
    auto_epochs = resolve_epochs("auto", per_epoch, len(y_fit) * X_fit.shape[1])
    return {
        "n_samples": len(y),
        "rows_trained_on": len(y_fit),
        "materialised_mb": X_fit.nbytes / 2**20,
        "augment_seconds": augment_seconds,
        "steps_per_epoch": per_epoch,
        "epoch_seconds": timer.seconds[-1],
        "auto_epochs": auto_epochs,
        "auto_steps": auto_epochs * per_epoch,
        # a whole default fit, from the augmenter's and one epoch's time: 20 epochs before
        # issue 12, the epochs="auto" step budget now
        "fit_minutes_20_epochs": (augment_seconds + 20 * timer.seconds[-1]) / 60,
        "fit_minutes_auto": (augment_seconds + auto_epochs * timer.seconds[-1]) / 60,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "classes": int(np.unique(y).size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        cap = None if args.child == "none" else args.child
        print(json.dumps(child(cap, args.n_samples)))
        return
    results = {}
    for name, cap in CONFIGS.items():
        out = subprocess.run(
            [sys.executable, __file__, "--n-samples", str(args.n_samples),
             "--child", "none" if cap is None else cap],
            check=True, capture_output=True, text=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    keys = ["rows_trained_on", "materialised_mb", "peak_rss_mb", "augment_seconds",
            "epoch_seconds", "auto_steps", "fit_minutes_20_epochs", "fit_minutes_auto"]
    print(f"\n{'configuration':<34}" + "".join(f" {k:>22}" for k in keys))
    for name, row in results.items():
        print(f"{name:<34}" + "".join(f" {row[k]:>22.1f}" for k in keys))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
