r"""Benchmark: does the cascade rank candidate datasets the way their full models rank? (issue 13)

    flock /tmp/dmas-cpu.lock timeout 1800 .venv/bin/python tests/bench/bench_cascade_decision.py \
        [--profile NAME] [--overrides JSON] [--only clean,noise_05] [--executor in_process] [--keep DIR]

From one source corpus (the embedded synthetic corpus's first 1,200 documents, the default cascade's
data) `dmas.cascade.candidates` builds eight candidate training sets of known quality: the clean
source; mode collapse at 25/50/75% (that share of the documents replaced by copies of 8 others);
character noise at 5% and 15% (each character replaced at that rate by one of the corpus's own);
a random half of the documents; one generation of recursive refit (every document replaced by a
sample of a character 4-gram model fitted to the source). Every candidate is judged on the SAME
clean held-out set, documents 1,200-1,499 of the same generator (never in any candidate), through
`data.validation_path`: the question is which dataset gives the best model on the target data.

For each candidate the cascade of `configs/cascade.yaml` (default: 18 proxies, and the config's full
model, `full.train: true`) runs once; its prediction of the full model's validation loss is the
decision, and the full model's measured validation loss is the truth. The baseline in the same run,
from the same runs, is the simplest one: rank by the smallest tier's metric alone (its best run's
validation loss; its mean and the largest proxy tier's best are reported too).

Pairwise decision accuracy (DataDecide, Magnusson et al. 2025) is the share of candidate pairs whose
order by a ranking matches their order by the truth (lower loss is better). Ties rule
(`candidates.pairwise_decision_accuracy`): a pair tied in the truth is left out; a pair tied in the
ranking, or with a candidate the cascade could not predict, scores one half. Prints a table on
stderr and one JSON line on stdout. `--overrides` (a JSON object merged over the config, e.g. a tiny
cascade to try the script out) and `--only` change what is measured: the reported numbers are those
of the default config and all eight candidates.

Measured 2026-12-02 on 2 shared cores (default config, Ray Train with 2 workers, 773 s for all eight):
cascade 0.929 (26 of 28 pairs; both misordered pairs put the half-size candidate below collapse 75%
and noise 15%: its prediction is the only one above its truth, +8.6%, the others -7% to -12%), the
smallest tier's best 0.786 (22 of 28; its mean 0.821), ratio 1.18; every truth inside its 90%
interval. The largest proxy tier's best alone ranked all 28 pairs right (1.000): on these
candidates a single scale near the full model's is the stronger baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

SOURCE_DOCUMENTS = 1200  # the default cascade's corpus
VALIDATION_DOCUMENTS = 300  # the next documents of the same generator: the clean target distribution
SEED = 1  # every candidate's corruption seed


def candidate_makers() -> dict[str, Callable[[list[str]], list[str]]]:
    from dmas.cascade import candidates as c

    return {
        "clean": list,
        "collapse_25": lambda docs: c.mode_collapse(docs, 0.25, SEED),
        "collapse_50": lambda docs: c.mode_collapse(docs, 0.50, SEED),
        "collapse_75": lambda docs: c.mode_collapse(docs, 0.75, SEED),
        "noise_05": lambda docs: c.token_noise(docs, 0.05, SEED),
        "noise_15": lambda docs: c.token_noise(docs, 0.15, SEED),
        "subset_50": lambda docs: c.subset(docs, 0.5, SEED),
        "refit_4gram": lambda docs: c.recursive_refit(docs, 1, SEED, order=4),
    }


def run_candidate(name: str, documents: list[str], validation: Path, folder: Path, args) -> dict:
    from cascade_with_truth import cascade_with_truth

    from dmas.cascade.config import merged

    overrides = merged({"data": {"validation_path": str(validation)}},
                       json.loads(args.overrides) if args.overrides else {})
    report, brief, seconds = cascade_with_truth(name, documents, folder, profile=args.profile,
                                                executor=args.executor, overrides=overrides,
                                                keep=Path(args.keep) if args.keep else None)
    tiers = report["tiers"]
    interval = brief["interval"] or {}
    truth = report["truth"]
    return {"candidate": name, "documents": len(documents), "train_tokens": report["data"]["tokens"],
            "train_windows": report["data"]["windows"]["train"],
            "validation_windows": report["data"]["windows"]["validation"],
            "predicted": brief["predicted_validation_loss"], "lower": interval.get("lower"),
            "upper": interval.get("upper"), "prediction_error": brief["prediction_error"],
            "truth": truth["validation_loss"], "inside_interval": truth.get("inside_interval"),
            "relative_error": truth.get("relative_error"),
            "smallest_tier_best": tiers[0]["best_validation_loss"],
            "smallest_tier_mean": tiers[0]["mean_validation_loss"],
            "largest_proxy_tier_best": tiers[-1]["best_validation_loss"],
            "r2_log": (brief["fit"] or {}).get("r2_log"), "risk_score": report["risk_score"],
            "report_sha256": brief["report_sha256"], "seconds": round(seconds, 1),
            "executor": brief["executor"], "workers": brief["workers"]}


def ranks(values: dict[str, float | None]) -> dict[str, int | None]:
    known = sorted((v, k) for k, v in values.items() if v is not None)
    return {k: (next(i for i, (_, name) in enumerate(known, 1) if name == k) if v is not None else None)
            for k, v in values.items()}


def table(rows: list[dict]) -> str:
    truth_rank = ranks({r["candidate"]: r["truth"] for r in rows})
    predicted_rank = ranks({r["candidate"]: r["predicted"] for r in rows})
    baseline_rank = ranks({r["candidate"]: r["smallest_tier_best"] for r in rows})
    header = (f"{'candidate':<12} {'tokens':>7} {'predicted':>9} {'interval':>19} {'truth':>7} {'in':>3} "
              f"{'rel.err':>7} {'tier1best':>9} {'tier1mean':>9} {'tier3best':>9} {'rank t/p/b':>10} {'s':>6}")
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: r["truth"]):
        name = r["candidate"]
        interval = f"[{r['lower']:.4f}, {r['upper']:.4f}]" if r["lower"] is not None else "-"
        predicted = f"{r['predicted']:.4f}" if r["predicted"] is not None else "-"
        inside = {True: "yes", False: "no", None: "-"}[r["inside_interval"]]
        error = f"{r['relative_error']:+.3f}" if r["relative_error"] is not None else "-"
        order = f"{truth_rank[name]}/{predicted_rank[name] or '-'}/{baseline_rank[name]}"
        lines.append(f"{name:<12} {r['train_tokens']:>7} {predicted:>9} {interval:>19} {r['truth']:>7.4f} {inside:>3} "
                     f"{error:>7} {r['smallest_tier_best']:>9.4f} {r['smallest_tier_mean']:>9.4f} "
                     f"{r['largest_proxy_tier_best']:>9.4f} {order:>10} {r['seconds']:>6.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="a profile of configs/cascade.yaml (default: none, the CPU cascade)")
    parser.add_argument("--overrides", help="JSON object merged over the config (trying the script out)")
    parser.add_argument("--only", help="comma-separated candidates (default: all eight)")
    parser.add_argument("--keep", help="folder to keep each cascade's report in (to refit its runs later)")
    parser.add_argument("--executor", choices=("ray_train", "in_process"), help="default: the config's")
    args = parser.parse_args()

    from dmas.cascade.candidates import pairwise_decision_accuracy
    from dmas.cascade.corpus import synthetic_documents

    makers = candidate_makers()
    chosen = args.only.split(",") if args.only else list(makers)
    unknown = sorted(set(chosen) - set(makers))
    if unknown:
        parser.error(f"unknown candidates {unknown}; choose from {sorted(makers)}")
    documents = synthetic_documents(SOURCE_DOCUMENTS + VALIDATION_DOCUMENTS, 0)
    source, held_out = documents[:SOURCE_DOCUMENTS], documents[SOURCE_DOCUMENTS:]
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dmas-bench-decision-") as tmp:
        folder = Path(tmp)
        validation = folder / "validation.parquet"
        pd.DataFrame({"text": held_out}).to_parquet(validation, index=False)
        for name in chosen:
            rows.append(run_candidate(name, makers[name](source), validation, folder, args))
            row = rows[-1]
            print(f"{name}: {json.dumps(row, sort_keys=True)}", file=sys.stderr, flush=True)
    truth = {r["candidate"]: r["truth"] for r in rows}
    rankings = {"cascade_prediction": "predicted", "smallest_tier_best": "smallest_tier_best",
                "smallest_tier_mean": "smallest_tier_mean", "largest_proxy_tier_best": "largest_proxy_tier_best"}
    accuracy = {label: pairwise_decision_accuracy({r["candidate"]: r[key] for r in rows}, truth)
                for label, key in rankings.items()}
    cascade, baseline = accuracy["cascade_prediction"]["accuracy"], accuracy["smallest_tier_best"]["accuracy"]
    print(table(rows), file=sys.stderr)
    print("pairwise decision accuracy: " + ", ".join(f"{label} {value['accuracy']:.3f} ({value['pairs']} pairs)"
                                                     for label, value in accuracy.items()), file=sys.stderr)
    print(json.dumps({
        "bench": "cascade_decision", "profile": args.profile, "overrides": args.overrides,
        "candidates": len(rows), "source_documents": SOURCE_DOCUMENTS, "validation_documents": VALIDATION_DOCUMENTS,
        "decision_accuracy": accuracy, "cascade_accuracy": cascade, "baseline_accuracy": baseline,
        "ratio_to_baseline": round(cascade / baseline, 4) if baseline else None,
        "goal_90_met": cascade >= 0.9, "above_baseline": cascade > baseline,
        "inside_interval": sum(bool(r["inside_interval"]) for r in rows),
        "rows": rows, "total_s": round(time.perf_counter() - started, 1),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
