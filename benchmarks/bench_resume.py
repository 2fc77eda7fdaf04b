"""How exactly a fit killed with SIGKILL and resumed from ``checkpoint_dir`` matches an
uninterrupted one, and what the per-epoch checkpoint costs.

The default :class:`~skcharclf.KerasCharClassifier` (residual CNN, online augmentation,
cosine schedule; ``random_state=0``) trains on the built-in digit characters resized to 32x32
(:func:`skcharclf.datasets.load_digit_chars`, 1,317 images):

1. uninterrupted, in this process;
2. in a child process with ``checkpoint_dir``, killed with SIGKILL once it has saved
   ``--kill-after`` epochs (the kill lands somewhere in the next epoch);
3. resumed in this process with a new estimator, the same parameters and directory.

Printed and written to ``benchmarks/results/resume.json``: the largest absolute difference of
``predict_proba`` between 1 and 3 on all images, whether the learning curves are equal, the
epochs the resumed fit trained, the checkpoint file's size and the time one save took.

Usage::

    python benchmarks/bench_resume.py            # 6 epochs (~2 minutes on 2 cores)
    python benchmarks/bench_resume.py --quick    # 3 epochs on 400 images
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "resume.json"


def _data(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    from skcharclf import ImageResizer
    from skcharclf.datasets import load_digit_chars

    X, y = load_digit_chars(return_X_y=True)
    return np.asarray(ImageResizer(size=(32, 32)).fit_transform(X[:n_images])), y[:n_images]


def _classifier(epochs: int, checkpoint_dir: str | None = None):
    from skcharclf import KerasCharClassifier

    return KerasCharClassifier(epochs=epochs, random_state=0, checkpoint_dir=checkpoint_dir)


def _saved_epoch(directory: Path) -> int:
    try:
        with np.load(directory / "checkpoint.npz", allow_pickle=False) as file:
            return json.loads(str(file["meta"]))["epoch"]
    except (OSError, KeyError, ValueError):
        return 0


def _child(directory: str, epochs: int, n_images: int) -> None:
    X, y = _data(n_images)
    _classifier(epochs, directory).fit(X, y)


def _killed_fit(directory: Path, epochs: int, n_images: int, kill_after: int) -> int:
    """Run the fit in a child process, SIGKILL it after ``kill_after`` saved epochs."""
    argv = [sys.executable, __file__, "--child", str(directory), str(epochs), str(n_images)]
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while _saved_epoch(directory) < kill_after:
            if child.poll() is not None:
                raise RuntimeError(f"the child ended first: {child.stderr.read().decode()}")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    return _saved_epoch(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kill-after", type=int, default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    epochs, n_images = (3, 400) if args.quick else (6, 1317)
    kill_after = args.kill_after or epochs // 2
    X, y = _data(n_images)

    start = time.perf_counter()
    reference = _classifier(epochs).fit(X, y)
    reference_time = time.perf_counter() - start

    from skcharclf import _resume

    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "checkpoints"
        killed_at = _killed_fit(directory, epochs, n_images, kill_after)
        size = (directory / "checkpoint.npz").stat().st_size
        save_times = []
        save = _resume.FitCheckpoint.save

        def timed_save(self, *a, **k):
            begin = time.perf_counter()
            save(self, *a, **k)
            save_times.append(time.perf_counter() - begin)

        _resume.FitCheckpoint.save = timed_save
        resumed = _classifier(epochs, str(directory)).fit(X, y)
        _resume.FitCheckpoint.save = save
        done = sorted(os.listdir(directory))

    difference = float(np.abs(resumed.predict_proba(X) - reference.predict_proba(X)).max())
    results = {
        "images": n_images,
        "epochs": epochs,
        "killed_after_epoch": killed_at,
        "epochs_trained_after_resume": len(save_times),
        "max_abs_diff_predict_proba": difference,
        "history_equal": resumed.history_ == reference.history_,
        "optimizer_steps": [
            int(reference.model_.optimizer.iterations),
            int(resumed.model_.optimizer.iterations),
        ],
        "directory_after": done,
        "checkpoint_bytes": size,
        "save_seconds_median": float(np.median(save_times)) if save_times else None,
        "uninterrupted_fit_seconds": reference_time,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    out = RESULTS.with_name("resume_quick.json") if args.quick else RESULTS
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
