"""Throughput of RareClassAugmenter beside the Augmentor library on 32x28 character images.

Both generate augmented copies of the same images: the built-in digit characters
(:func:`skcharclf.datasets.load_digit_chars`) resized to 32x28 by
:class:`skcharclf.ImageResizer`, as ``float32`` rows for skcharclf and as the same pixels in
``uint8`` for Augmentor (its fastest input). Rows:

* skcharclf, ``transforms="default"`` (all nine transforms of the default preset);
* skcharclf restricted to Augmentor's operations (rotate, elastic distortion, zoom);
* Augmentor 0.2.12: ``rotate`` + ``random_distortion`` + ``zoom`` through
  ``Pipeline.keras_generator_from_array`` (arrays in, arrays out; ``sample_with_array`` fails
  on array input in 0.2.12). On several cores Augmentor runs one process per core.

Each measurement runs in a fresh process pinned to 1 or 2 cores (``os.sched_setaffinity``);
skcharclf uses ``n_jobs`` = number of cores. Throughput is generated images per wall-clock
second, the median of the repeats, including ``fit_resample``'s input checks. The goals of
issue 3: the default preset at least 10x Augmentor's throughput on the same cores, and at
least 20,000 images/s on 2 cores.

Augmentor is not a dependency of skcharclf: it lives in its own environment::

    python -m venv benchmarks/.venv-augmentor
    benchmarks/.venv-augmentor/bin/pip install Augmentor numpy pillow

Run (from the repository root, with skcharclf's environment)::

    .venv/bin/python benchmarks/bench_augmentation.py            # full run, ~2 minutes
    .venv/bin/python benchmarks/bench_augmentation.py --quick    # smoke test, ~20 s

The table is printed and written with the machine details to
``benchmarks/results/augmentation.json`` (``augmentation_quick.json`` with ``--quick``).
Run it on a quiet machine: the load average at the start is recorded, and a busy machine
lowers every row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "augmentation.json"
QUICK_RESULTS = HERE / "results" / "augmentation_quick.json"
DEFAULT_AUGMENTOR_PYTHON = HERE / ".venv-augmentor" / "bin" / "python"
IMAGE_SHAPE = (32, 28)

# Augmentor's operations and the closest skcharclf transforms, with the same probabilities
# and ranges (Augmentor's distortion magnitude 1 on a 4x4 grid moves control points by up
# to ~1 pixel, about 3 % of the image).
AUGMENTOR_OPERATIONS = {
    "rotate": {"probability": 0.7, "max_left_rotation": 12, "max_right_rotation": 12},
    "random_distortion": {"probability": 0.5, "grid_width": 4, "grid_height": 4, "magnitude": 1},
    "zoom": {"probability": 0.5, "min_factor": 0.9, "max_factor": 1.1},
}
COMPARABLE_TRANSFORMS = [
    ("rotate", 0.7, (-12.0, 12.0)),
    ("elastic", 0.5, (0.015, 0.035)),
    ("scale", 0.5, (0.9, 1.1)),
]


def _pin(cores: int) -> None:
    """Restrict this process (and the threads it starts later) to ``cores`` CPUs."""
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[:cores])


def _worker_skcharclf(images_path: str, n_images: int, cores: int, transforms: str) -> dict:
    import numpy as np

    from skcharclf.augmentation import RareClassAugmenter

    images = np.load(images_path)
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    y = np.arange(len(X)) % 10  # ten classes of equal size
    per_class = n_images // 10
    strategy = {klass: int((y == klass).sum()) + per_class for klass in range(10)}
    specs = "default" if transforms == "default" else COMPARABLE_TRANSFORMS
    augmenter = RareClassAugmenter(
        sampling_strategy=strategy,
        transforms=specs,
        image_shape=IMAGE_SHAPE,
        random_state=0,
        n_jobs=cores,
    )
    augmenter.fit_resample(X[:50], y[:50])  # warm-up: imports, thread pool, caches
    wall0, cpu0 = time.perf_counter(), time.process_time()
    X_res, _ = augmenter.fit_resample(X, y)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    generated = len(X_res) - len(X)
    return {"images": generated, "wall_s": wall, "cpu_s": cpu}


def _augmentor_chunk(args: tuple) -> int:
    images_path, n_images, seed = args
    import random

    import Augmentor
    import numpy as np

    random.seed(seed)
    images = np.load(images_path)
    pipeline = Augmentor.Pipeline()
    pipeline.rotate(**AUGMENTOR_OPERATIONS["rotate"])
    pipeline.random_distortion(**AUGMENTOR_OPERATIONS["random_distortion"])
    pipeline.zoom(**AUGMENTOR_OPERATIONS["zoom"])
    batches = pipeline.keras_generator_from_array(
        images, np.zeros(len(images), dtype=int), batch_size=256, scaled=True
    )
    done = 0
    while done < n_images:
        batch, _ = next(batches)
        done += len(batch)
    return done


def _worker_augmentor(images_path: str, n_images: int, cores: int) -> dict:
    import multiprocessing

    import Augmentor

    _augmentor_chunk((images_path, 256, 0))  # warm-up
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if cores == 1:
        generated = _augmentor_chunk((images_path, n_images, 1))
        cpu = time.process_time() - cpu0
    else:
        with multiprocessing.get_context("fork").Pool(cores) as pool:
            jobs = [(images_path, n_images // cores, 1 + i) for i in range(cores)]
            generated = sum(pool.map(_augmentor_chunk, jobs))
        cpu = float("nan")  # spent in the pool's processes
    wall = time.perf_counter() - wall0
    return {"images": generated, "wall_s": wall, "cpu_s": cpu, "version": Augmentor.__version__}


def _run_worker(python: str, args: list[str]) -> dict:
    command = [python, str(Path(__file__).resolve()), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _source_images(path: str) -> int:
    import numpy as np

    from skcharclf.datasets import load_digit_chars
    from skcharclf.preprocessing import ImageResizer

    X, _ = load_digit_chars(return_X_y=True)
    flat = ImageResizer(size=IMAGE_SHAPE).fit_transform(X)
    images = np.rint(flat * 255).astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    np.save(path, images)
    return len(images)


def _measure(python: str, args: list[str], repeats: int) -> dict:
    runs = [_run_worker(python, args) for _ in range(repeats)]
    rates = [run["images"] / run["wall_s"] for run in runs]
    cpu = [run["cpu_s"] / run["images"] * 1000 for run in runs]
    return {
        "images_per_s": statistics.median(rates),
        "images_per_s_runs": rates,
        "cpu_s_per_1000": statistics.median(cpu),
        "images": runs[0]["images"],
        "version": runs[0].get("version"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images, one repeat")
    parser.add_argument(
        "--augmentor-python",
        default=str(DEFAULT_AUGMENTOR_PYTHON),
        help="python of an environment with Augmentor (default: %(default)s)",
    )
    parser.add_argument("--output", help=f"default: {RESULTS} ({QUICK_RESULTS} with --quick)")
    args = parser.parse_args(argv)
    output = Path(args.output or (QUICK_RESULTS if args.quick else RESULTS))

    n_ours, n_augmentor, repeats = (4000, 1000, 1) if args.quick else (40000, 8000, 3)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images_path = str(Path(tmp) / "images.npy")
        n_sources = _source_images(images_path)
        for cores in (1, 2):
            for transforms in ("default", "comparable"):
                result = _measure(
                    sys.executable,
                    ["skcharclf", images_path, str(n_ours), str(cores), transforms],
                    repeats,
                )
                rows.append(
                    {"library": "skcharclf", "transforms": transforms, "cores": cores, **result}
                )
            if Path(args.augmentor_python).exists():
                result = _measure(
                    args.augmentor_python,
                    ["augmentor", images_path, str(n_augmentor), str(cores)],
                    repeats,
                )
                rows.append(
                    {"library": "Augmentor", "transforms": "comparable", "cores": cores, **result}
                )

    goals = _goals(rows)
    _print_table(rows, goals, load, args.augmentor_python)
    report = {
        "benchmark": "augmented images per second, 32x28 images",
        "quick": args.quick,
        "image_shape": IMAGE_SHAPE,
        "source_images": n_sources,
        "repeats": repeats,
        "load_average_at_start": load,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "augmentor_operations": AUGMENTOR_OPERATIONS,
        "comparable_transforms": COMPARABLE_TRANSFORMS,
        "rows": rows,
        "goals": goals,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


def _rate(rows: list[dict], library: str, transforms: str, cores: int) -> float | None:
    for row in rows:
        if (row["library"], row["transforms"], row["cores"]) == (library, transforms, cores):
            return row["images_per_s"]
    return None


def _goals(rows: list[dict]) -> dict:
    goals: dict = {}
    ours_2 = _rate(rows, "skcharclf", "default", 2)
    goals["default_2_cores_images_per_s"] = ours_2
    goals["at_least_20000_per_s_on_2_cores"] = ours_2 is not None and ours_2 >= 20000
    for cores in (1, 2):
        theirs = _rate(rows, "Augmentor", "comparable", cores)
        ours = _rate(rows, "skcharclf", "default", cores)
        ratio = ours / theirs if ours and theirs else None
        goals[f"speedup_vs_augmentor_{cores}_cores"] = ratio
    ratio_2 = goals["speedup_vs_augmentor_2_cores"]
    goals["at_least_10x_augmentor"] = None if ratio_2 is None else ratio_2 >= 10
    return goals


def _print_table(rows: list[dict], goals: dict, load: float, augmentor_python: str) -> None:
    print(f"load average at start: {load:.2f}")
    print("| library | transforms | cores | images/s | CPU s per 1,000 images |")
    print("| --- | --- | --- | ---: | ---: |")
    for row in rows:
        label = (
            "default preset (9 transforms)"
            if row["transforms"] == "default"
            else ("rotate + elastic + zoom")
        )
        cpu = row["cpu_s_per_1000"]
        cpu_text = "n/a (worker processes)" if cpu != cpu else f"{cpu:.3f}"
        print(
            f"| {row['library']} | {label} | {row['cores']} | "
            f"{row['images_per_s']:,.0f} | {cpu_text} |"
        )
    if not any(row["library"] == "Augmentor" for row in rows):
        print(f"\nAugmentor not measured: {augmentor_python} does not exist (see the docstring).")
    for cores in (1, 2):
        ratio = goals[f"speedup_vs_augmentor_{cores}_cores"]
        if ratio is not None:
            print(f"default preset vs Augmentor on {cores} core(s): {ratio:.1f}x")
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    print(
        f"goal >= 20,000 images/s on 2 cores: "
        f"{verdict[goals['at_least_20000_per_s_on_2_cores']]}; "
        f"goal >= 10x Augmentor on 2 cores: {verdict[goals['at_least_10x_augmentor']]}"
    )


def _worker_main(argv: list[str]) -> int:
    kind, images_path, n_images, cores = argv[0], argv[1], int(argv[2]), int(argv[3])
    _pin(cores)
    if kind == "skcharclf":
        result = _worker_skcharclf(images_path, n_images, cores, argv[4])
    else:
        result = _worker_augmentor(images_path, n_images, cores)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit(main())
