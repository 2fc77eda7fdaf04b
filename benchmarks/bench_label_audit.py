"""Does the label audit find injected label errors, and does removing them help?

For each data set and seed, a share of the training labels (``--rates``) is changed, in two
ways:

* ``uniform``: the chosen images get a label drawn uniformly among the other classes;
* ``pairs``: each chosen image gets the class most confusable with its own: the other class
  to which the CNN trained on the clean labels gives the highest mean probability on the
  held-out test images of that class (a class-confusable pair map, fixed per seed).

The images to corrupt are drawn uniformly over the training set. Out-of-fold probabilities
(stratified ``--cv``-fold cross-validation) go to
:func:`skcharclf.diagnostics.find_label_issues`. They come from the random-forest baseline
(:func:`skcharclf.make_baseline_pipeline`, 100 trees: seconds) at every rate, and from the
default CNN pipeline (:func:`skcharclf.make_char_pipeline`, ``--oof-epochs`` epochs: minutes)
at the rates in ``--cnn-rates``. The script reports, over the seeds:

* precision and recall of the top-k list at k = the number of injected errors
  (``max_issues=k``) with the default rules (the lowest normalised margins, as many as the
  confident joint estimates), and the precision of two other lists: the lowest
  self-confidence, and per-cell pruning (``prune_by_noise_rate`` ranked by self-confidence,
  the default of the first release);
* precision and recall of the whole list each filter flags (no k given);
* for the CNN at the rates in ``--f1-rates`` and the kinds in ``--f1-kinds``: the macro-F1
  on the balanced held-out test set of the default pipeline trained (``--epochs`` epochs)
  on (a) the noisy labels, (b) the noisy labels without the images flagged with
  ``--prune-filter`` (the default filter), (c) the clean labels, and the share of the F1
  lost from (c) to (a) that (b) recovers.

Data: the built-in digits (:func:`skcharclf.datasets.load_digit_chars`, 30 test images per
class) and the small font set (:func:`skcharclf.datasets.load_font_chars`
``variant="small"``, 20 test images per class). Goal: precision and recall >= 0.80 at 5 %
noise with the CNN's out-of-fold probabilities, and (b) recovers at least half of the F1
lost from (c) to (a).

The defaults train every CNN as a user would (``epochs="auto"``, the classifier's own
budget) with 3-fold cross-validation for the out-of-fold models (``audit_labels`` uses 5),
audit with the CNN at 5 % noise and compare F1 at 5 % noise of both kinds: about 60 minutes
on a 2-core machine (per data set and seed: 1 clean, 6 out-of-fold and 4 F1 trainings).
Fewer ``--epochs`` / ``--oof-epochs`` make it faster and the out-of-fold model weaker,
which costs the audit precision (8 epochs: precision 0.5-0.7 at 5 % noise). Usage (from the
repository root)::

    python benchmarks/bench_label_audit.py                    # the defaults, ~60 min
    python benchmarks/bench_label_audit.py --seeds 1 --rates 0.05 --datasets digits \\
        --epochs 3 --oof-epochs 2                             # a smoke test, ~3 min
    python benchmarks/bench_label_audit.py --cnn-rates 0.02 0.05 0.1 \\
        --f1-rates 0.02 0.05 0.1                              # all of it, hours

Results go to ``benchmarks/results/label_audit.json`` (rewritten after every data set and
seed, so an interrupted run keeps what it finished).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from skcharclf.datasets import load_digit_chars, load_font_chars
from skcharclf.diagnostics import NoValidationWarning, find_label_issues
from skcharclf.pipeline import make_baseline_pipeline, make_char_pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "label_audit.json"
DATASETS = {
    "digits": lambda seed: load_digit_chars(
        test_size_per_class=30, random_state=seed, return_X_y=True
    ),
    "fonts": lambda seed: load_font_chars(
        variant="small", test_size_per_class=20, random_state=seed, return_X_y=True
    ),
}
KINDS = ("uniform", "pairs")
# (ranking rule, filter) of each top-k list: the default (normalised margin), the same with
# self-confidence, and the first release's default (per-cell pruning, self-confidence)
TOP_K = {
    "default": ("normalized_margin", "low_normalized_margin"),
    "self_confidence": ("self_confidence", "low_self_confidence"),
    "cell_pruning": ("self_confidence", "prune_by_noise_rate"),
}
# the default filter first: its list is the one removed for the (b) models
FILTERS = ("low_normalized_margin", "low_self_confidence", "prune_by_noise_rate", "both")


def inject_noise(y, classes, rate, kind, pair_map, rng):
    """Noisy labels and the indices changed: ``round(rate * n)`` images drawn uniformly."""
    chosen = np.sort(rng.choice(len(y), size=round(rate * len(y)), replace=False))
    noisy = y.copy()
    for i in chosen:
        if kind == "pairs":
            noisy[i] = pair_map[y[i]]
        else:
            noisy[i] = rng.choice(classes[classes != y[i]])
    return noisy, chosen


def confusable_pairs(model, X_test, y_test, classes):
    """For each class, the other class the model gives the most probability on its images."""
    proba = model.predict_proba(X_test)
    pair_map = {}
    for k, c in enumerate(classes):
        mean = proba[y_test == c].mean(axis=0)
        mean[k] = -1.0
        pair_map[c] = classes[int(np.argmax(mean))]
    return pair_map


def precision_recall(found, injected):
    hits = len(set(found.tolist()) & set(injected.tolist()))
    precision = hits / len(found) if len(found) else 0.0
    return precision, hits / len(injected) if len(injected) else 1.0


def fit_f1(X, y, X_test, y_test, epochs, seed, keep=None):
    if keep is not None:
        X, y = [X[i] for i in keep], y[keep]
    model = make_char_pipeline(epochs=epochs, random_state=seed).fit(X, y)
    return f1_score(y_test, model.predict(X_test), average="macro"), model


def oof_model(model, seed, args):
    if model == "forest":
        return make_baseline_pipeline(n_estimators=100, random_state=seed)
    return make_char_pipeline(epochs=args.oof_epochs, random_state=seed)


def score_audit(row, proba, y, y_noisy, injected, classes, prune_filter):
    """Precision and recall of the top-k lists and of the flagged lists, into ``row``; returns
    the list ``prune_filter`` flags (removed for the (b) models)."""
    row["oof_accuracy_vs_clean"] = float(np.mean(classes[proba.argmax(1)] == y))
    for name, (rank_by, filter_by) in TOP_K.items():
        top = find_label_issues(y_noisy, proba, classes=classes, rank_by=rank_by,
                                filter_by=filter_by, max_issues=len(injected))
        row[f"precision_at_k_{name}"], row[f"recall_at_k_{name}"] = (
            precision_recall(top.indices, injected))
    for filter_by in FILTERS:
        listed = find_label_issues(y_noisy, proba, classes=classes, filter_by=filter_by)
        suffix = "" if filter_by == FILTERS[0] else f"_{filter_by}"
        row[f"n_flagged{suffix}"] = listed.n_flagged
        row[f"precision_flagged{suffix}"], row[f"recall_flagged{suffix}"] = (
            precision_recall(listed.indices, injected))
    row["estimated_noise_rate"] = find_label_issues(
        y_noisy, proba, classes=classes).estimated_noise_rate
    return find_label_issues(y_noisy, proba, classes=classes, filter_by=prune_filter)


def run_one(name, seed, args):
    X, X_test, y, y_test = DATASETS[name](seed)
    classes = np.unique(y)
    start = time.perf_counter()
    f1_clean, clean_model = fit_f1(X, y, X_test, y_test, args.epochs, seed)
    pair_map = confusable_pairs(clean_model, X_test, y_test, classes)
    print(f"[{name} seed {seed}] clean F1 {f1_clean:.3f} ({time.perf_counter() - start:.0f} s)",
          flush=True)
    rows = []
    rng = np.random.default_rng(seed)
    for kind in args.kinds:
        for rate in args.rates:
            y_noisy, injected = inject_noise(y, classes, rate, kind, pair_map, rng)
            models = ["forest"] if args.forest else []
            if any(np.isclose(rate, r) for r in args.cnn_rates):
                models.append("cnn")
            for model in models:
                start = time.perf_counter()
                proba = cross_val_predict(
                    oof_model(model, seed, args), X, y_noisy,
                    cv=StratifiedKFold(args.cv, shuffle=True, random_state=seed),
                    method="predict_proba")
                row = {"dataset": name, "model": model, "seed": seed, "kind": kind,
                       "rate": rate, "n_train": len(y), "n_injected": len(injected),
                       "oof_seconds": time.perf_counter() - start}
                flagged = score_audit(row, proba, y, y_noisy, injected, classes,
                                      args.prune_filter)
                if args.save_proba is not None:
                    args.save_proba.mkdir(parents=True, exist_ok=True)
                    np.savez(args.save_proba / f"{name}_{model}_{seed}_{kind}_{rate}.npz",
                             proba=proba, y=y, y_noisy=y_noisy, injected=injected)
                if model == "cnn" and kind in args.f1_kinds and any(
                        np.isclose(rate, r) for r in args.f1_rates):
                    keep = np.setdiff1d(np.arange(len(y)), flagged.indices)
                    row["f1_noisy"] = fit_f1(X, y_noisy, X_test, y_test, args.epochs, seed)[0]
                    row["f1_cleaned"] = fit_f1(X, y_noisy, X_test, y_test, args.epochs, seed,
                                               keep)[0]
                    row["f1_clean"] = f1_clean
                rows.append(row)
                print(f"[{name} seed {seed}] {model:<6} {kind:<7} {rate:.0%}: OOF acc "
                      f"{row['oof_accuracy_vs_clean']:.2f}, P@k "
                      f"{row['precision_at_k_default']:.2f} R@k "
                      f"{row['recall_at_k_default']:.2f}; flagged {row['n_flagged']} "
                      f"(P {row['precision_flagged']:.2f} R {row['recall_flagged']:.2f})"
                      + (f"; F1 noisy {row['f1_noisy']:.3f} cleaned {row['f1_cleaned']:.3f} "
                         f"clean {f1_clean:.3f}" if "f1_noisy" in row else "")
                      + f" ({row['oof_seconds']:.0f} s OOF)", flush=True)
    return rows


def summarise(runs):
    """Mean and standard deviation over the seeds per data set, kind and rate."""
    groups = {}
    for row in runs:
        key = (row["dataset"], row["model"], row["kind"], row["rate"])
        groups.setdefault(key, []).append(row)
    summary = []
    for (name, model, kind, rate), rows in sorted(groups.items()):
        entry = {"dataset": name, "model": model, "kind": kind, "rate": rate,
                 "n_seeds": len(rows)}
        for key in rows[0]:
            values = [r[key] for r in rows if key in r]
            if key not in ("dataset", "model", "kind", "rate", "seed") and len(
                    values) == len(rows):
                entry[key] = [float(np.mean(values)), float(np.std(values))]
        if "f1_noisy" in entry:
            lost = [r["f1_clean"] - r["f1_noisy"] for r in rows]
            regained = [r["f1_cleaned"] - r["f1_noisy"] for r in rows]
            entry["f1_recovered_share"] = (
                float(np.sum(regained) / np.sum(lost)) if np.sum(lost) > 0 else None)
        summary.append(entry)
    return summary


def print_table(summary):
    def cell(entry, key):
        value = entry.get(key)
        return f"{value[0]:.2f}+-{value[1]:.2f}" if value else "-"

    print(f"\n{'data':<7} {'model':<7} {'noise':<8} {'rate':>5} {'k':>4} {'OOF acc':>10}  "
          f"{'P@k':>10} {'R@k':>10} {'P@k SC':>10} {'P@k cell':>10}  "
          f"{'flagged':>7} {'P flag':>10} {'R flag':>10}  "
          f"{'F1 noisy':>10} {'F1 pruned':>10} {'F1 clean':>10} {'recov.':>6}")
    for e in summary:
        recovered = e.get("f1_recovered_share")
        print(f"{e['dataset']:<7} {e['model']:<7} {e['kind']:<8} {e['rate']:>5.0%} "
              f"{e['n_injected'][0]:>4.0f} {cell(e, 'oof_accuracy_vs_clean'):>10}  "
              f"{cell(e, 'precision_at_k_default'):>10} "
              f"{cell(e, 'recall_at_k_default'):>10} "
              f"{cell(e, 'precision_at_k_self_confidence'):>10} "
              f"{cell(e, 'precision_at_k_cell_pruning'):>10}  {e['n_flagged'][0]:>7.0f} "
              f"{cell(e, 'precision_flagged'):>10} {cell(e, 'recall_flagged'):>10}  "
              f"{cell(e, 'f1_noisy'):>10} {cell(e, 'f1_cleaned'):>10} {cell(e, 'f1_clean'):>10} "
              f"{'-' if recovered is None else f'{recovered:.2f}':>6}")
    print("k = injected errors. P@k, R@k: the default top-k list (normalised margin); P@k SC: "
          "the lowest self-confidence instead; P@k cell: per-cell pruning (prune_by_noise_rate, "
          "ranked by self-confidence, the first release's default). flagged: the default list "
          "(no k); recov.: share of the F1 lost to the noise that removing it regains.")


def _epochs(text: str) -> int | str:
    """``--epochs`` / ``--oof-epochs``: an int, or "auto" (the classifier's own budget)."""
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.02, 0.05, 0.10])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS),
                        default=["digits", "fonts"])
    parser.add_argument("--epochs", type=_epochs, default="auto",
                        help="epochs of the F1 models (an int or 'auto')")
    parser.add_argument("--oof-epochs", type=_epochs, default="auto",
                        help="epochs of the CNN out-of-fold models")
    parser.add_argument("--cv", type=int, default=3, help="folds of the out-of-fold models")
    parser.add_argument("--cnn-rates", type=float, nargs="*", default=[0.05],
                        help="rates audited with the CNN's out-of-fold probabilities")
    parser.add_argument("--no-forest", dest="forest", action="store_false",
                        help="skip the audits with the random forest's probabilities")
    parser.add_argument("--f1-rates", type=float, nargs="*", default=[0.05],
                        help="rates at which to train the (a), (b), (c) models")
    parser.add_argument("--f1-kinds", nargs="*", choices=KINDS, default=list(KINDS),
                        help="noise kinds for which to train the (a), (b), (c) models")
    parser.add_argument("--prune-filter", choices=FILTERS, default=FILTERS[0],
                        help="the filter whose flagged images the (b) models leave out")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--save-proba", type=Path, metavar="DIR",
                        help="also save each run's out-of-fold probabilities and labels here")
    args = parser.parse_args()
    # Every training here runs without a validation set on purpose (as audit_labels does).
    warnings.simplefilter("ignore", NoValidationWarning)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["machine"] = f"{platform.machine()}, {platform.python_version()}"
    runs = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        for name in args.datasets:
            runs += run_one(name, seed, args)
            args.out.parent.mkdir(exist_ok=True)
            args.out.write_text(json.dumps(
                {"settings": settings, "minutes": (time.perf_counter() - start) / 60,
                 "summary": summarise(runs), "runs": runs}, indent=2))
    summary = summarise(runs)
    print_table(summary)
    print(f"\n{(time.perf_counter() - start) / 60:.1f} minutes; written to {args.out}")


if __name__ == "__main__":
    main()
