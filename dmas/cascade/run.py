"""A cascade end to end: plan the tiers' runs, train them, fit the scaling law, read the dynamics, report.

    report = run_cascade(load_cascade_config()).report

The report is deterministic for a fixed config (and data): the runs, the fit, the prediction and
the dynamics, every float at 6 significant digits. How long things took and where they ran are in
`timings`, apart, so the report's bytes can be compared across machines and executors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from dmas.cascade.config import CascadeConfig
from dmas.cascade.data import TokenWindows
from dmas.cascade.dynamics import assess_run, dynamics_report
from dmas.cascade.execute import execute
from dmas.cascade.kinds import CascadeData, load_cascade_data
from dmas.cascade.proxy import ProxyResult, ProxySpec
from dmas.cascade.scaling import ProxyPoint, ScalingFitError, predict_full_size
from dmas.config import Settings
from dmas.numbers import rounded
from dmas.runtime import RaySettings

FULL_TIER = "full"
MAX_CURVE_POINTS = 200  # the report's loss curves are evenly thinned to at most this many records


@dataclass(frozen=True)
class CascadeOutcome:
    report: dict
    timings: dict

    def report_bytes(self) -> bytes:
        return (json.dumps(self.report, sort_keys=True, indent=2) + "\n").encode()


def plan_runs(config: CascadeConfig) -> list[ProxySpec]:
    """Every proxy run, tier by tier: each tier's sizes x fractions x seeds (then the full run if trained)."""
    specs = []
    for tier in config.tiers:
        combinations = [(size, fraction, seed) for size in tier.sizes for fraction in tier.fractions
                        for seed in tier.seeds]
        specs += [ProxySpec(tier.name, index, size.d_model, size.n_layers, fraction, seed)
                  for index, (size, fraction, seed) in enumerate(combinations)]
    if config.full.train:
        full = config.full
        specs.append(ProxySpec(FULL_TIER, 0, full.size.d_model, full.size.n_layers, full.fraction, full.seed))
    return specs


def queue_plan(specs: list[ProxySpec], config: CascadeConfig, data: CascadeData) -> list[dict]:
    """The queue's hand-out order: tiers in order, each tier's costliest runs first."""
    entries = []
    for spec in specs:
        steps = data.steps(config, data.train_rows(spec.fraction))
        parameters = data.parameters(config, spec.shape)
        entries.append({"name": spec.name, "spec": asdict(spec), "steps": steps, "parameters": parameters})
    tier_order = {name: index for index, name in enumerate(dict.fromkeys(spec.tier for spec in specs))}
    return sorted(entries, key=lambda e: (tier_order[e["spec"]["tier"]], -e["steps"] * e["parameters"], e["name"]))


def run_cascade(config: CascadeConfig, *, on_progress: Callable[[dict], None] = lambda _: None,
                ray_settings: RaySettings | None = None, windows: TokenWindows | None = None,
                settings: Settings | None = None) -> CascadeOutcome:
    """Train the cascade's runs and analyse them (see the module docstring).

    Sequence data is `windows` when given, else read from `config.data`; entity data is read from
    `config.data.store`, else from the store of `settings` (default: the environment's settings).
    """
    data = load_cascade_data(config, settings=settings, windows=windows)
    specs = plan_runs(config)
    results, execution = execute(queue_plan(specs, config, data), config, data, on_progress, ray_settings)
    ordered = [results[spec.name] for spec in specs]
    proxies = [result for result in ordered if result.spec.tier != FULL_TIER]
    full_rows = data.train_rows(config.full.fraction)
    full = {"d_model": config.full.size.d_model, "n_layers": config.full.size.n_layers,
            "fraction": config.full.fraction,
            "parameters": data.parameters(config, config.full.size),
            "tokens_seen": data.seen(config, full_rows)}
    prediction = _prediction(proxies, full["parameters"], full["tokens_seen"], config)
    dynamics = dynamics_report([assess_run(r.spec.name, r.loss_curve, r.gradient_norms) for r in proxies])
    truth = next((r for r in ordered if r.spec.tier == FULL_TIER), None)
    report = {
        "config_sha256": config.config_sha256(),
        "data": data.describe(),
        **data.report_settings(config),  # "model" and "schedule"
        "runs": [_run_entry(result) for result in proxies],
        "tiers": [_tier_summary(tier.name, [r for r in proxies if r.spec.tier == tier.name]) for tier in config.tiers],
        "full": full,
        "prediction": prediction,
        "truth": None if truth is None else _truth(truth, prediction),
        "dynamics": dynamics.to_dict(),
        "risk_score": rounded(dynamics.risk_score),
        "unstable": dynamics.unstable,
        "execution": {"bf16": config.execution.bf16, "gradient_checkpointing": config.execution.gradient_checkpointing,
                      "device": sorted({r.device for r in ordered})},
    }
    timings = {**execution, "runs_s": {r.spec.name: round(r.seconds, 2) for r in ordered}}
    return CascadeOutcome(report=report, timings=timings)


def _prediction(proxies: list[ProxyResult], parameters: int, tokens: int, config: CascadeConfig) -> dict:
    """The fit and the full-size prediction with its interval, or the reason the runs cannot be fitted."""
    points = [ProxyPoint(r.parameters, r.tokens_seen, r.validation_loss) for r in proxies]
    try:
        return predict_full_size(points, parameters, tokens, config.scaling).to_dict()
    except ScalingFitError as exc:
        return {"error": str(exc)}


def _run_entry(result: ProxyResult) -> dict:
    spec = result.spec
    step = max(1, -(-len(result.loss_curve) // MAX_CURVE_POINTS))
    return {"run": spec.name, "tier": spec.tier, "d_model": spec.d_model, "n_layers": spec.n_layers,
            "fraction": spec.fraction, "seed": spec.seed, "parameters": result.parameters, "steps": result.steps,
            "tokens_seen": result.tokens_seen, "validation_loss": rounded(result.validation_loss),
            "loss_curve": [rounded(value) for value in result.loss_curve[::step]],
            "gradient_norms": {name: _summary(values) for name, values in sorted(result.gradient_norms.items())},
            "weights_sha256": result.weights_sha256}


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"first": rounded(values[0]), "median": rounded(ordered[len(ordered) // 2]), "max": rounded(ordered[-1]),
            "last": rounded(values[-1])} if values else {}


def _tier_summary(name: str, runs: list[ProxyResult]) -> dict:
    losses = [r.validation_loss for r in runs]
    return {"tier": name, "runs": len(runs), "parameters": sorted({r.parameters for r in runs}),
            "fractions": sorted({r.spec.fraction for r in runs}),
            "best_validation_loss": rounded(min(losses)), "mean_validation_loss": rounded(sum(losses) / len(losses))}


def _truth(full: ProxyResult, prediction: dict) -> dict:
    """The trained full model against the prediction: inside the interval or not, and by how much."""
    actual = full.validation_loss
    entry = {"validation_loss": rounded(actual), "parameters": full.parameters, "tokens_seen": full.tokens_seen,
             "weights_sha256": full.weights_sha256}
    if "predicted" in prediction:
        lower, upper = prediction["interval"]["lower"], prediction["interval"]["upper"]
        entry.update(inside_interval=lower <= actual <= upper,
                     relative_error=rounded((prediction["predicted"] - actual) / actual))
    return entry


def report_sha256(report: dict) -> str:
    return hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()


def write_outcome(outcome: CascadeOutcome, out_dir: str | Path) -> Path:
    """`cascade_report.json` (the deterministic report) and `cascade_timings.json` into `out_dir`."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cascade_report.json"
    path.write_bytes(outcome.report_bytes())
    (folder / "cascade_timings.json").write_text(json.dumps(outcome.timings, sort_keys=True, indent=2) + "\n")
    return path


def summary(outcome: CascadeOutcome) -> dict:
    """What a person reads first: the prediction and its interval, the truth if trained, risk, each tier."""
    report, prediction = outcome.report, outcome.report["prediction"]
    return {"config_sha256": report["config_sha256"], "runs": len(report["runs"]), "full": report["full"],
            "predicted_validation_loss": prediction.get("predicted"), "interval": prediction.get("interval"),
            "fit": {key: prediction["fit"][key] for key in ("form", "formula", "coefficients", "r2_log")}
            if "fit" in prediction else None, "prediction_error": prediction.get("error"),
            "truth": report["truth"], "risk_score": report["risk_score"], "unstable": report["unstable"],
            "flag_counts": report["dynamics"]["flag_counts"], "tiers": report["tiers"],
            "report_sha256": report_sha256(report),
            "seconds": outcome.timings.get("total_s"), "overhead_share": outcome.timings.get("overhead_share"),
            "executor": outcome.timings.get("executor"), "workers": outcome.timings.get("workers")}
