"""Speed and memory of KerasCharClassifier on a CPU.

Measures, for the default architecture on 32x32 images:

* its cost (MFLOPs per image forward);
* the fit time of ``KerasCharClassifier`` beside a bare ``keras.Model.fit`` of the identical
  network, data and epochs (fed as NumPy arrays, the usual way, and through the same
  ``tf.data`` pipeline the classifier uses, which isolates the wrapper's own overhead);
* training and inference throughput (images/s);
* peak memory when training on 100,000 images, in extra copies of the data set (run in a
  fresh process, so nothing else in it has touched memory).

Usage::

    python benchmarks/bench_classifier.py            # full run (~10 minutes on 2 cores)
    python benchmarks/bench_classifier.py --quick    # smoke test (~2 minutes)

The table is printed and written, with the settings, to
``benchmarks/results/bench_classifier.json``. Run it on an otherwise idle machine: the
numbers are throughputs of the whole CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_classifier.json"


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 32x32 images in [0, 1] and 10 labels, made without temporaries."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, 1024), dtype=np.float32)
    for start in range(0, n, 8192):
        X[start : start + 8192] = rng.random((min(8192, n - start), 1024), dtype=np.float32)
    return X, rng.integers(0, 10, n)


def _bare_model(clf, X, y):
    """The classifier's network, freshly built, compiled like the classifier compiles it."""
    from skcharclf._tf import import_keras
    from skcharclf.losses import LogitAdjustedLoss
    from skcharclf.models import build_char_model

    keras = import_keras()
    model = build_char_model((32, 32), 10, seed=0, online_augmentation=clf.online_augmentation)
    priors = np.bincount(y, minlength=10) / len(y)
    steps = clf.epochs * math.ceil(len(y) / clf.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(clf.learning_rate, steps)
        ),
        loss=LogitAdjustedLoss(priors),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overhead(n: int, epochs: int, repeats: int) -> dict:
    """Fit time of the classifier and of bare Keras on the same network, data and epochs."""
    from skcharclf.classifier import KerasCharClassifier

    X, y = _data(n)
    clf = KerasCharClassifier(epochs=epochs, random_state=0)

    def bare_numpy():
        _bare_model(clf, X, y).fit(X, y, batch_size=clf.batch_size, epochs=epochs, verbose=0)

    def bare_tf_data():
        model = _bare_model(clf, X, y)
        data = KerasCharClassifier._dataset(
            X, y.astype(np.int32), None, np.arange(n), clf.batch_size, 0
        )
        model.fit(data, epochs=epochs, verbose=0, shuffle=False)

    times = {"classifier": [], "bare_keras_numpy": [], "bare_keras_tf_data": []}
    for _ in range(repeats):  # interleaved, so a busy moment hits all three alike
        times["classifier"].append(_time(lambda: clf.fit(X, y)))
        times["bare_keras_numpy"].append(_time(bare_numpy))
        times["bare_keras_tf_data"].append(_time(bare_tf_data))
    best = {k: min(v) for k, v in times.items()}
    return {
        "n_images": n,
        "epochs": epochs,
        "fit_seconds": best,
        "overhead_vs_bare_tf_data": best["classifier"] / best["bare_keras_tf_data"],
        "overhead_vs_bare_numpy": best["classifier"] / best["bare_keras_numpy"],
    }


def throughput(n: int, epochs: int, batch_sizes: list[int]) -> dict:
    """Training images/s (compile excluded) and inference images/s of the default network."""
    from skcharclf.classifier import KerasCharClassifier
    from skcharclf.models import build_char_model, count_flops

    X, y = _data(n)
    result = {"mflops_per_image": count_flops(build_char_model((32, 32), 10)) / 1e6}
    for batch_size in batch_sizes:
        clf = KerasCharClassifier(batch_size=batch_size, random_state=0)
        # the difference of two fits is `epochs` epochs without the one-off compile
        short = _time(lambda clf=clf: clf.set_params(epochs=1).fit(X, y))
        long = _time(lambda clf=clf: clf.set_params(epochs=1 + epochs).fit(X, y))
        result[f"train_images_per_s_batch{batch_size}"] = epochs * n / max(long - short, 1e-9)
    clf.predict(X[:2048])
    result["predict_images_per_s"] = n / _time(lambda: clf.predict(X))
    return result


def memory_child(n: int) -> None:
    """Run in a fresh process: peak memory of one epoch on n images, in data-set copies."""
    from skcharclf.classifier import KerasCharClassifier

    X, y = _data(n)
    # warm up TensorFlow's runtime (kernels, thread pools) so it is not counted as data
    KerasCharClassifier(epochs=1, random_state=0).fit(X[:256], y[:256])
    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak (VmHWM) to now
        handle.write("5")
    before = _status("VmRSS")
    KerasCharClassifier(epochs=1, random_state=0).fit(X, y)
    peak = _status("VmHWM")
    print(json.dumps({"rss_before_mb": before / 2**20, "peak_mb": peak / 2**20,
                      "data_mb": X.nbytes / 2**20,
                      "extra_copies": (peak - before) / X.nbytes}))


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory(n: int) -> dict:
    if not Path("/proc/self/clear_refs").exists():
        return {"skipped": "needs Linux /proc to measure peak memory"}
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n)],
        check=True, capture_output=True, text=True,
    ).stdout
    return {"n_images": n, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    quick = args.quick
    results = {
        "settings": {
            "quick": quick,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "overhead": overhead(n=1024 if quick else 8192, epochs=1 if quick else 3,
                             repeats=1 if quick else 2),
        "throughput": throughput(n=1024 if quick else 8192, epochs=1 if quick else 2,
                                 batch_sizes=[64] if quick else [64, 128, 256]),
        "memory": memory(n=10_000 if quick else 100_000),
    }
    import tensorflow as tf  # already imported (and quieted) by skcharclf

    results["settings"]["tensorflow"] = tf.__version__
    over, speed, mem = results["overhead"], results["throughput"], results["memory"]
    print(f"{'measure':<44} {'value':>10}  goal")
    print(f"{'MFLOPs per 32x32 image (forward)':<44} {speed['mflops_per_image']:>10.1f}  <= 25")
    for key, value in speed.items():
        if key.startswith("train_images_per_s"):
            goal = ">= 600" if key.endswith("batch64") else ""
            print(f"{key.replace('_', ' '):<44} {value:>10.0f}  {goal}")
    print(f"{'inference images/s':<44} {speed['predict_images_per_s']:>10.0f}  >= 3000")
    for key, value in over["fit_seconds"].items():
        print(f"{'fit seconds, ' + key.replace('_', ' '):<44} {value:>10.1f}")
    print(f"{'overhead vs bare Keras (same tf.data feed)':<44} "
          f"{over['overhead_vs_bare_tf_data']:>10.3f}  <= 1.05")
    print(f"{'overhead vs bare Keras (NumPy arrays)':<44} {over['overhead_vs_bare_numpy']:>10.3f}")
    if "extra_copies" in mem:
        print(f"{'extra data-set copies, ' + str(mem['n_images']) + ' images':<44} "
              f"{mem['extra_copies']:>10.2f}  <= 2")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
