"""Parallel hyperparameter search and fold ensembles of the character CNN.

Part 1, **search scale-out**: one fixed :class:`~sklearn.model_selection.RandomizedSearchCV`
of the CNN pipeline (:func:`skcharclf.make_char_pipeline`: Denoiser -> ImageResizer ->
RareClassAugmenter -> KerasCharClassifier; 8 candidates from
:func:`skcharclf.model_selection.search_space` x 3 stratified folds, a few epochs each,
``refit=False``) on the built-in long-tailed digits
(:func:`skcharclf.datasets.load_digit_chars`), run four ways:

* ``n_jobs=1`` in this process (TensorFlow's default thread pools);
* ``n_jobs=2`` with loky and no thread limit (each worker's TensorFlow starts one thread per
  core: the oversubscribed case);
* ``n_jobs=2`` with loky and ``clf__n_threads=threads_per_job(2)`` (the documented rule);
* a Dask ``LocalCluster`` of 2 single-threaded worker processes, through
  ``joblib.parallel_backend("dask")``, with ``clf__n_threads=threads_per_job()``.

Every run gets fresh worker processes, warmed up by importing TensorFlow (the warm-up is timed
separately and not counted). Reported per run: wall time, speed-up over ``n_jobs=1``, CPU
seconds of this process and all its child processes (psutil) and CPU utilisation =
CPU seconds / (wall seconds x cores), plus whether all runs chose the same best parameters.

Part 2, **fold-ensemble gain**: on the data's balanced held-out test split, a single CNN
(early stopping on its own stratified 10 % validation split) against a 5-fold
:class:`skcharclf.FoldEnsembleClassifier` of the same pipeline (each member early-stops on
its own held-out fold; members trained 2 at a time by warmed-up loky workers, 1 TensorFlow
thread each on 2 cores): macro-F1 and balanced accuracy, and the fit times.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_search.py            # full run (estimated 20-30 min
                                                           # on 2 idle cores)
    .venv/bin/python benchmarks/bench_search.py --quick    # smoke test, a few minutes

The table is printed and written with the machine details to
``benchmarks/results/search.json`` (``search_quick.json`` with ``--quick``). Run it on a
quiet machine: the load average at the start and the end is recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "search.json"
QUICK_RESULTS = HERE / "results" / "search_quick.json"

FULL = {
    "n_samples_per_class": None,  # every source digit: ~1,100 training images
    "rare_ratio": 0.1,
    "test_size_per_class": 30,
    "size": (32, 32),
    "filters": (24, 48, 96),
    "n_iter": 8,
    "cv": 3,
    "search_epochs": 3,
    "ensemble_folds": 5,
    "ensemble_epochs": 30,
    "patience": 5,
}
QUICK = {
    "n_samples_per_class": 12,
    "rare_ratio": 0.25,
    "test_size_per_class": 6,
    "size": (16, 16),
    "filters": (4, 8),
    "n_iter": 2,
    "cv": 2,
    "search_epochs": 1,
    "ensemble_folds": 2,
    "ensemble_epochs": 2,
    "patience": 1,
}


def _load(config: dict) -> tuple:
    from skcharclf.datasets import load_digit_chars

    return load_digit_chars(
        n_samples_per_class=config["n_samples_per_class"],
        rare_ratio=config["rare_ratio"],
        test_size_per_class=config["test_size_per_class"],
        random_state=0,
        return_X_y=True,
    )


def _pipeline(config: dict, **clf_params: Any):
    from skcharclf import make_char_pipeline

    return make_char_pipeline(
        size=config["size"], filters=config["filters"], random_state=0, **clf_params
    )


# ---------------------------------------------------------------------------------------------
# CPU accounting
# ---------------------------------------------------------------------------------------------


def _cpu_seconds_by_process() -> dict[int, float]:
    """CPU seconds (user + system) of this process, every live descendant, and (under the key
    ``-1``) every child process that has already exited and been reaped.

    The last term matters for loky: it replaces a worker whose memory has grown by more than
    300 MB since its first task, and the CPU time of the replaced worker would be lost.
    """
    import psutil

    me = psutil.Process()
    reaped = os.times()
    seconds = {-1: reaped.children_user + reaped.children_system}
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


@contextmanager
def _measure(record: dict):
    """Fill ``record`` with the wall time and the CPU seconds spent inside the block.

    Worker processes are alive for the whole block (started and warmed up before), so the
    difference of per-process CPU times covers all the work.
    """
    before = _cpu_seconds_by_process()
    start = time.perf_counter()
    yield
    wall = time.perf_counter() - start
    after = _cpu_seconds_by_process()
    cpu = sum(t - before.get(pid, 0.0) for pid, t in after.items())
    cores = os.cpu_count() or 1
    record.update(
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 2),
        cpu_utilisation=round(cpu / (wall * cores), 3),
    )


# ---------------------------------------------------------------------------------------------
# Part 1: search
# ---------------------------------------------------------------------------------------------


def _import_tensorflow(pause: float = 0.0, n_threads: int | None = None) -> int:
    """Warm-up task: import TensorFlow in a worker and start its runtime with a tiny fit.

    A long-lived worker has paid both; loky also takes its reference memory size after a
    worker's first task, so the runtime's start-up memory is not later mistaken for a leak.
    ``n_threads`` is the thread limit the run's fits will ask for: TensorFlow's pools are
    fixed by the first fit.
    """
    from skcharclf.classifier import KerasCharClassifier

    rng = np.random.default_rng(0)
    KerasCharClassifier(
        (4, 4), filters=(2,), epochs=1, n_threads=n_threads, online_augmentation=None,
        random_state=0,
    ).fit(rng.random((8, 16), dtype=np.float32), np.arange(8) % 2)
    time.sleep(pause)
    return os.getpid()


def _search(config: dict, X, y, n_threads: int | None):
    from sklearn.model_selection import RandomizedSearchCV

    from skcharclf.model_selection import check_cv_for_classes, search_space

    pipe = _pipeline(config, epochs=config["search_epochs"], n_threads=n_threads)
    return RandomizedSearchCV(
        pipe,
        search_space(pipe, augmentation=False),
        n_iter=config["n_iter"],
        cv=check_cv_for_classes(config["cv"], y, random_state=0),
        scoring="f1_macro",
        refit=False,
        random_state=0,
        error_score="raise",
    )


def _start_loky_workers(n_threads: int | None) -> tuple[float, int]:
    """Start 2 fresh, warmed-up loky workers; return (seconds, processes)."""
    import joblib

    _shutdown_loky()  # fresh workers: TensorFlow's pools are fixed once it runs
    start = time.perf_counter()
    pids = joblib.Parallel(n_jobs=2)(
        joblib.delayed(_import_tensorflow)(1.0, n_threads) for _ in "ab"
    )
    return round(time.perf_counter() - start, 2), len(set(pids))


def _shutdown_loky() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _run_search(config: dict, X, y, mode: str) -> dict:
    import joblib

    from skcharclf.model_selection import threads_per_job

    record: dict[str, Any] = {"mode": mode}
    cluster = client = None
    if mode == "n_jobs=1":
        backend, n_jobs, n_threads = "sequential", 1, None
        _import_tensorflow()
        record["warmup_s"] = 0.0
    elif mode.startswith("loky"):
        backend, n_jobs = "loky", 2
        with joblib.parallel_backend("loky", n_jobs=2):
            n_threads = threads_per_job() if mode == "loky, n_threads rule" else None
        record["warmup_s"], record["worker_processes"] = _start_loky_workers(n_threads)
    else:
        from distributed import Client, LocalCluster

        backend, n_jobs = "dask", None
        start = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        with joblib.parallel_backend("dask"):
            n_threads = threads_per_job()
        client.run(_import_tensorflow, 0.0, n_threads)
        record["warmup_s"] = round(time.perf_counter() - start, 2)
        record["worker_processes"] = len(client.scheduler_info()["workers"])
    record["clf__n_threads"] = n_threads
    search = _search(config, X, y, n_threads)
    try:
        with _measure(record), joblib.parallel_backend(backend, n_jobs=n_jobs):
            search.fit(X, y)
    finally:
        if client is not None:
            client.close()
            cluster.close()
        if backend == "loky":
            _shutdown_loky()
    record["best_params"] = {k: _plain(v) for k, v in search.best_params_.items()}
    record["best_score"] = round(float(search.best_score_), 4)
    return record


def _plain(value: Any) -> Any:
    """JSON-friendly parameter values (numpy scalars to Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------------------
# Part 2: fold ensemble vs one model
# ---------------------------------------------------------------------------------------------


def _scores(model, X_test, y_test) -> dict:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    pred = model.predict(X_test)
    return {
        "macro_f1": round(float(f1_score(y_test, pred, average="macro")), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y_test, pred)), 4),
    }


def _run_ensemble(config: dict, X, X_test, y, y_test) -> dict:
    from skcharclf import FoldEnsembleClassifier

    params = {
        "epochs": config["ensemble_epochs"],
        "early_stopping": True,
        "patience": config["patience"],
    }
    single = _pipeline(config, **params)
    single_record: dict[str, Any] = {}
    with _measure(single_record):
        single.fit(X, y)
    single_record.update(_scores(single, X_test, y_test))
    single_record["epochs_trained"] = len(single[-1].history_["loss"])

    ensemble = FoldEnsembleClassifier(
        _pipeline(config, **params), cv=config["ensemble_folds"], n_jobs=2, random_state=0
    )
    ensemble_record: dict[str, Any] = {"n_folds": config["ensemble_folds"], "n_jobs": 2}
    ensemble_record["warmup_s"], _ = _start_loky_workers(1)
    with _measure(ensemble_record):
        ensemble.fit(X, y)
    _shutdown_loky()
    ensemble_record.update(_scores(ensemble, X_test, y_test))
    ensemble_record["epochs_trained"] = [len(m[-1].history_["loss"]) for m in ensemble.estimators_]
    ensemble_record["cv_scores_mean"] = {
        k: round(float(v.mean()), 4) for k, v in ensemble.cv_scores_.items()
    }
    members = [_scores(m, X_test, y_test) for m in ensemble.estimators_]
    ensemble_record["member_macro_f1_mean"] = round(
        float(np.mean([m["macro_f1"] for m in members])), 4
    )
    return {
        "single": single_record,
        "fold_ensemble": ensemble_record,
        "gain": {
            key: round(ensemble_record[key] - single_record[key], 4)
            for key in ("macro_f1", "balanced_accuracy")
        },
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _machine() -> dict:
    import joblib
    import sklearn

    from skcharclf._tf import import_keras

    keras = import_keras()

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "keras": keras.__version__,
    }


def _print_table(result: dict) -> None:
    print(f"\nRandomizedSearchCV: {result['config']['n_iter']} candidates x "
          f"{result['config']['cv']} folds, {result['config']['search_epochs']} epoch(s)")
    header = f"{'mode':<24}{'wall s':>9}{'speed-up':>10}{'CPU s':>9}{'CPU util':>10}"
    print(header + f"{'n_threads':>11}{'warm-up s':>11}  best macro-F1")
    for row in result["search"]:
        print(
            f"{row['mode']:<24}{row['wall_s']:>9.1f}{row['speedup']:>10.2f}{row['cpu_s']:>9.1f}"
            f"{row['cpu_utilisation']:>10.0%}{row['clf__n_threads']!s:>11}"
            f"{row['warmup_s']:>11.1f}  {row['best_score']:.4f}"
        )
    print(f"same best parameters in every run: {result['search_same_best_params']}")
    ens = result["ensemble"]
    print(f"\nTest split ({result['n_test']} images, balanced): one CNN vs "
          f"{ens['fold_ensemble']['n_folds']}-fold ensemble")
    print(f"{'model':<24}{'macro-F1':>10}{'bal. acc':>10}{'fit wall s':>12}{'CPU util':>10}")
    for name, row in (("single CNN", ens["single"]), ("fold ensemble", ens["fold_ensemble"])):
        print(f"{name:<24}{row['macro_f1']:>10.4f}{row['balanced_accuracy']:>10.4f}"
              f"{row['wall_s']:>12.1f}{row['cpu_utilisation']:>10.0%}")
    gain = ens["gain"]
    print(f"{'gain':<24}{gain['macro_f1']:>+10.4f}{gain['balanced_accuracy']:>+10.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, a smoke test")
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)

    X, X_test, y, y_test = _load(config)
    result: dict[str, Any] = {
        "machine": _machine(),
        "quick": args.quick,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "n_train": len(y),
        "n_test": len(y_test),
        "search": [],
    }
    for mode in ("n_jobs=1", "loky, no thread limit", "loky, n_threads rule", "dask, 2 workers"):
        print(f"search: {mode} ...", file=sys.stderr, flush=True)
        result["search"].append(_run_search(config, X, y, mode))
    reference = result["search"][0]["wall_s"]
    for row in result["search"]:
        row["speedup"] = round(reference / row["wall_s"], 2)
    result["search_same_best_params"] = all(
        row["best_params"] == result["search"][0]["best_params"] for row in result["search"]
    )
    print("fold ensemble ...", file=sys.stderr, flush=True)
    result["ensemble"] = _run_ensemble(config, X, X_test, y, y_test)
    result["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(result)
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
