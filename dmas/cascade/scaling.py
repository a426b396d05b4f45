"""Scaling-law fit over a cascade's proxy runs: predict the full-size model's metric, with an interval.

The law is Chinchilla's (Hoffmann et al. 2022), L(N, D) = E + A / N^a + B / D^b, with N the model's
parameters and D the rows (or tokens) it saw. It is fitted in log space, as they did: the residual of
a run is log L_fitted - log L_observed, with log L_fitted = logsumexp(e, alpha - a log N, beta - b log D)
(E = exp(e), A = exp(alpha), B = exp(beta)), minimised under a Huber loss by bounded
`scipy.optimize.least_squares` from several seeded starting points (each first taken to its
squared-loss optimum, where Gauss-Newton gets in a few steps); the lowest Huber loss wins.

A term is fitted only when the runs can identify it:

- a size with one distinct value across the runs is constant: its term is folded into E and the
  one-variable law E + A / N^a (or E + B / D^b) is fitted; the fit says so in its notes;
- when N and D both vary but always together (each N goes with one D and each D with one N, as in
  tiers that grow both), their two terms cannot be told apart: the law is fitted in N alone, D's
  effect folded into it, and the prediction holds for full sizes on the same path;
- a fitted size needs `MIN_DISTINCT_VALUES` distinct values, and the runs `PARAMETERS_PER_FORM + 1`
  distinct (N, D) points (one more than the law's parameters, so the fit has a residual to judge);
  fewer raise `TooFewSizesError`, naming the size and its values.

The interval is a percentile bootstrap: runs are resampled with replacement (seeded), the law is
refitted to each draw (warm-started from the full fit: a draw's optimum lies near it), and the
full-size predictions' quantiles at (1 -+ level) / 2 bound it. A draw that leaves a fitted size with
too few distinct values cannot identify it and is skipped (counted); when more than half are skipped
the interval is refused.

The bootstrap only sees how noisy the runs are, not whether the law's shape holds beyond them, and
the full model lies beyond them. So the runs also backtest the law: the `backtest_share` of runs with
the most compute (N x D) are held out, the law is fitted to the rest and predicts them, and the
largest log error it makes, scaled by how much further the full size lies beyond the runs than the
held-out runs lay beyond the rest (in log compute, never less than 1x), is a half-width around the
prediction. The interval is the union of the two; both parts are in the report. (Measured before
this: on real text the bootstrap interval alone missed both full models, by 15-17%.)

Runs are sorted by (N, D, metric) before anything else, so the order they arrive in never changes a
result, and every float of `to_dict()` follows one rule (`rounded`): 6 significant digits, NaN/inf as
None, so report bytes are stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import least_squares

from dmas.errors import DmasError
from dmas.numbers import rounded

# a fitted size needs this many distinct values: its term has an amplitude and an exponent, E is shared
MIN_DISTINCT_VALUES = 3
PARAMETERS_PER_FORM = {"parameters_and_data": 5, "parameters": 3, "data": 3}
FORMULAS = {"parameters_and_data": "L = E + A/N^a + B/D^b", "parameters": "L = E + A/N^a", "data": "L = E + B/D^b"}
# bounds of the fitted values (log-space amplitudes, exponents): wide, but keep the optimiser finite
LOG_AMPLITUDE_BOUNDS = (-30.0, 80.0)
EXPONENT_BOUNDS = (0.01, 3.0)
LOG_E_FLOOR = -30.0
MAX_EVALUATIONS = 2000  # per least_squares call; a fit that needs more ends where it is (still bounded)


class ScalingFitError(DmasError):
    """The proxy runs cannot be fitted as given (non-positive metric, too few runs, unusable draws)."""


class TooFewSizesError(ScalingFitError):
    """A size (parameters or rows_seen) has too few distinct values across the runs to fit its term."""

    def __init__(self, message: str, *, variable: str, distinct: int, needed: int):
        super().__init__(message)
        self.variable = variable
        self.distinct = distinct
        self.needed = needed


class ScalingLawConfig(BaseModel):
    """How the law is fitted and how its prediction interval is drawn (the cascade config's `scaling` part)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    huber_delta: float = Field(1e-3, gt=0, description="Huber loss threshold on log residuals (Hoffmann et al.)")
    starts: int = Field(16, ge=1, description="seeded starting points of the full fit")
    bootstrap_draws: int = Field(200, ge=10, description="resamples of the runs for the interval")
    level: float = Field(0.9, gt=0, lt=1, description="coverage of the percentile interval")
    backtest_share: float = Field(0.17, ge=0, lt=0.5, description="share of the runs with the most compute held "
                                  "out to measure the law's extrapolation error (0: no backtest)")
    seed: int = Field(0, ge=0)


@dataclass(frozen=True)
class ProxyPoint:
    """One proxy run's result: its parameter count N, rows (or tokens) seen D, and final metric.

    The metric is positive and falls with scale (a validation loss, or 1 - accuracy)."""

    parameters: int
    rows_seen: int
    metric: float


@dataclass(frozen=True)
class Residual:
    """How far the law is from one run, in log space (observed minus fitted)."""

    parameters: int
    rows_seen: int
    observed: float
    fitted: float
    log_residual: float

    def to_dict(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "rows_seen": self.rows_seen, "observed": rounded(self.observed),
                "fitted": rounded(self.fitted), "log_residual": rounded(self.log_residual)}


@dataclass(frozen=True)
class ScalingLawFit:
    """A fitted law: its form, coefficients (None for a term not fitted), and how well it fits the runs."""

    form: str  # "parameters_and_data" | "parameters" | "data"
    E: float
    A: float | None
    a: float | None
    B: float | None
    b: float | None
    runs: int
    distinct_parameters: int
    distinct_rows_seen: int
    residuals: tuple[Residual, ...]
    r2_log: float  # 1 - SS_res / SS_tot of log metric; NaN when every run has the same metric
    rmse_log: float
    notes: tuple[str, ...]

    def predict(self, parameters: float, rows_seen: float) -> float:
        """The law's metric at N = parameters, D = rows_seen (a size the form leaves out is ignored)."""
        value = self.E
        if self.A is not None:
            value += self.A / float(parameters) ** self.a
        if self.B is not None:
            value += self.B / float(rows_seen) ** self.b
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"form": self.form, "formula": FORMULAS[self.form],
                "coefficients": {name: rounded(getattr(self, name)) for name in ("E", "A", "a", "B", "b")},
                "runs": self.runs, "distinct_parameters": self.distinct_parameters,
                "distinct_rows_seen": self.distinct_rows_seen, "r2_log": rounded(self.r2_log),
                "rmse_log": rounded(self.rmse_log), "residuals": [r.to_dict() for r in self.residuals],
                "notes": list(self.notes)}


@dataclass(frozen=True)
class ScalingPrediction:
    """The full-size model's predicted metric with its bootstrap percentile interval."""

    fit: ScalingLawFit
    parameters: int
    rows_seen: int
    predicted: float
    lower: float
    upper: float
    level: float
    bootstrap_draws: int  # draws asked for
    bootstrap_fitted: int  # draws that could be fitted (the interval's sample)
    bootstrap_lower: float
    bootstrap_upper: float
    backtest: Backtest | None  # None: switched off, or the runs left after holding out cannot be fitted
    seed: int
    notes: tuple[str, ...]

    def covers(self, value: float) -> bool:
        """Whether `value` (e.g. the full model's actual metric) lies inside the interval."""
        return self.lower <= value <= self.upper

    def to_dict(self) -> dict[str, Any]:
        method = "percentile bootstrap over runs" + (", widened by the backtest's extrapolation error"
                                                     if self.backtest is not None else "")
        return {"target": {"parameters": self.parameters, "rows_seen": self.rows_seen},
                "predicted": rounded(self.predicted),
                "interval": {"lower": rounded(self.lower), "upper": rounded(self.upper), "level": rounded(self.level),
                             "method": method},
                "bootstrap": {"draws": self.bootstrap_draws, "fitted": self.bootstrap_fitted, "seed": self.seed,
                              "lower": rounded(self.bootstrap_lower), "upper": rounded(self.bootstrap_upper)},
                "backtest": None if self.backtest is None else self.backtest.to_dict(),
                "fit": self.fit.to_dict(), "notes": list(self.notes)}


@dataclass(frozen=True)
class Backtest:
    """The law fitted without the runs of most compute, judged on them (see the module docstring)."""

    held_out: tuple[Residual, ...]  # observed vs what the law fitted to the other runs predicted
    max_abs_log_error: float
    distance_ratio: float  # (full size beyond the runs) / (held-out runs beyond the rest), in log compute, >= 1
    half_width_log: float  # max_abs_log_error x distance_ratio

    def to_dict(self) -> dict[str, Any]:
        return {"held_out": [r.to_dict() for r in self.held_out], "max_abs_log_error": rounded(self.max_abs_log_error),
                "distance_ratio": rounded(self.distance_ratio), "half_width_log": rounded(self.half_width_log)}


@dataclass(frozen=True)
class _Design:
    """Sorted runs as arrays and the form the runs can identify."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_metric: np.ndarray
    points: tuple[ProxyPoint, ...]
    form: str
    notes: tuple[str, ...]


def fit_scaling_law(points: Sequence[ProxyPoint], config: ScalingLawConfig | None = None) -> ScalingLawFit:
    """Fit the law to the proxy runs (the form their sizes can identify; see the module's docstring)."""
    config = config or ScalingLawConfig()
    design = _design(points)
    theta = _best_fit(design, _starts(design, config.starts, config.seed), config.huber_delta)
    return _fit_result(design, theta)


def predict_full_size(points: Sequence[ProxyPoint], parameters: int, rows_seen: int,
                      config: ScalingLawConfig | None = None) -> ScalingPrediction:
    """Fit the law and predict the metric at the full size (N = parameters, D = rows_seen) with an interval."""
    config = config or ScalingLawConfig()
    if parameters <= 0 or rows_seen <= 0:
        raise ScalingFitError(f"the full size must be positive (parameters={parameters}, rows_seen={rows_seen})")
    design = _design(points)
    starts = _starts(design, config.starts, config.seed)
    theta = _best_fit(design, starts, config.huber_delta)
    fit = _fit_result(design, theta)
    rng = np.random.default_rng([config.seed, 1])  # its own stream: the starts' draws never shift it
    n = len(design.points)
    predictions = []
    for _ in range(config.bootstrap_draws):
        rows = np.sort(rng.integers(0, n, size=n))
        draw = _subset(design, rows)
        if draw is None:
            continue
        draw_theta, _ = _refine(draw, theta, config.huber_delta)
        predictions.append(_predict(draw.form, draw_theta, parameters, rows_seen))
    if 2 * len(predictions) < config.bootstrap_draws:
        raise ScalingFitError(f"only {len(predictions)} of {config.bootstrap_draws} bootstrap draws kept enough "
                              f"distinct sizes to refit the {design.form} law; add runs at more sizes")
    tail = (1.0 - config.level) / 2.0
    boot_lower, boot_upper = (float(q) for q in np.quantile(np.asarray(predictions), [tail, 1.0 - tail]))
    predicted = fit.predict(parameters, rows_seen)
    backtest = _backtest(design, config, parameters, rows_seen)
    width = backtest.half_width_log if backtest is not None else 0.0
    notes = _target_notes(design, parameters, rows_seen)
    if backtest is None and config.backtest_share > 0:
        notes += ("no backtest: the runs left after holding out those of most compute cannot identify the law",)
    elif backtest is not None:
        notes += (f"backtest: fitted without the {len(backtest.held_out)} runs of most compute, the law missed them "
                  f"by up to {100 * math.expm1(backtest.max_abs_log_error):.1f}%; the interval holds that error around the "
                  f"prediction, x{backtest.distance_ratio:.3g} for how much further out the full size lies",)
    return ScalingPrediction(fit=fit, parameters=int(parameters), rows_seen=int(rows_seen), predicted=predicted,
                             lower=min(boot_lower, predicted * math.exp(-width)),
                             upper=max(boot_upper, predicted * math.exp(width)), level=config.level,
                             bootstrap_draws=config.bootstrap_draws, bootstrap_fitted=len(predictions),
                             bootstrap_lower=boot_lower, bootstrap_upper=boot_upper, backtest=backtest,
                             seed=config.seed, notes=notes)


def _backtest(design: _Design, config: ScalingLawConfig, parameters: int, rows_seen: int) -> Backtest | None:
    """Hold out the runs of most compute, fit the rest, and measure the law's error on them (or None)."""
    n = len(design.points)
    held = max(2, round(config.backtest_share * n)) if config.backtest_share > 0 else 0
    log_compute = design.log_n + design.log_d
    order = np.argsort(log_compute, kind="stable")  # points are sorted, so ties keep one order
    rest, out = np.sort(order[:n - held]), np.sort(order[n - held:])
    train = _subset(design, rest) if held and n - held > 0 else None
    if train is None:
        return None
    theta = _best_fit(train, _starts(train, config.starts, config.seed), config.huber_delta)
    held_out = tuple(Residual(parameters=p.parameters, rows_seen=p.rows_seen, observed=p.metric, fitted=fitted,
                              log_residual=math.log(p.metric) - math.log(fitted))
                     for p, fitted in ((design.points[i], _predict(train.form, theta, design.points[i].parameters,
                                                                   design.points[i].rows_seen)) for i in out))
    error = max(abs(r.log_residual) for r in held_out)
    reach = float(log_compute[out].max() - log_compute[rest].max())  # how far the backtest extrapolated
    beyond = math.log(parameters) + math.log(rows_seen) - float(log_compute.max())
    ratio = max(1.0, beyond / reach) if reach > 0 else 1.0
    return Backtest(held_out=held_out, max_abs_log_error=error, distance_ratio=ratio, half_width_log=error * ratio)


def _design(points: Sequence[ProxyPoint]) -> _Design:
    plain = (ProxyPoint(int(p.parameters), int(p.rows_seen), float(p.metric)) for p in points)  # numpy scalars too
    ordered = tuple(sorted(plain, key=lambda p: (p.parameters, p.rows_seen, p.metric)))
    if not ordered:
        raise ScalingFitError("no proxy runs to fit")
    for point in ordered:
        if not (point.parameters > 0 and point.rows_seen > 0):
            raise ScalingFitError(f"a run's sizes must be positive: parameters={point.parameters}, "
                                  f"rows_seen={point.rows_seen}")
        if not (math.isfinite(point.metric) and point.metric > 0):
            raise ScalingFitError(f"the run at parameters={point.parameters}, rows_seen={point.rows_seen} has "
                                  f"metric {point.metric}; the law needs a positive finite metric that falls with "
                                  f"scale (a loss, or 1 - accuracy)")
    form, notes = _form(ordered)
    return _Design(log_n=np.log([float(p.parameters) for p in ordered]),
                   log_d=np.log([float(p.rows_seen) for p in ordered]),
                   log_metric=np.log([p.metric for p in ordered]), points=ordered, form=form, notes=notes)


def _form(points: Sequence[ProxyPoint]) -> tuple[str, tuple[str, ...]]:
    """The law's form the runs' sizes can identify, with notes saying what was left out and why."""
    sizes = {"parameters": sorted({p.parameters for p in points}), "rows_seen": sorted({p.rows_seen for p in points})}
    pairs = {(p.parameters, p.rows_seen) for p in points}
    varied = [name for name, values in sizes.items() if len(values) > 1]
    for name in varied:
        if len(sizes[name]) < MIN_DISTINCT_VALUES:
            raise TooFewSizesError(
                f"{name} has {len(sizes[name])} distinct values across {len(points)} runs ({_values(sizes[name])}); "
                f"fitting its term needs at least {MIN_DISTINCT_VALUES} (or a single value, to leave it out)",
                variable=name, distinct=len(sizes[name]), needed=MIN_DISTINCT_VALUES)
    notes: list[str] = []
    if not varied:
        raise TooFewSizesError(f"all {len(points)} runs have parameters={sizes['parameters'][0]} and "
                               f"rows_seen={sizes['rows_seen'][0]}; a scaling law needs at least "
                               f"{MIN_DISTINCT_VALUES} distinct values of one of them",
                               variable="parameters", distinct=1, needed=MIN_DISTINCT_VALUES)
    if varied == ["parameters"]:
        form = "parameters"
        notes.append(f"rows_seen is {sizes['rows_seen'][0]} in every run: its term is not identifiable and is "
                     f"folded into E, so the prediction holds at that rows_seen")
    elif varied == ["rows_seen"]:
        form = "data"
        notes.append(f"parameters is {sizes['parameters'][0]} in every run: its term is not identifiable and is "
                     f"folded into E, so the prediction holds at that parameter count")
    elif len(pairs) == len(sizes["parameters"]) == len(sizes["rows_seen"]):
        form = "parameters"
        notes.append("rows_seen grows with parameters (each parameter count goes with one rows_seen): the two "
                     "terms cannot be told apart, so the law is fitted in parameters alone with rows_seen's effect "
                     "folded into it; the prediction holds for a full size on the same path")
    else:
        form = "parameters_and_data"
    needed = PARAMETERS_PER_FORM[form] + 1
    distinct_points = len(pairs)  # in a one-variable form, the distinct values of the varied size
    if distinct_points < needed:
        what = {"parameters": "parameters", "data": "rows_seen", "parameters_and_data": "(parameters, rows_seen)"}
        raise TooFewSizesError(f"{FORMULAS[form]} has {PARAMETERS_PER_FORM[form]} coefficients and the runs have "
                               f"{distinct_points} distinct {what[form]} values; fitting it needs at least {needed}",
                               variable=what[form], distinct=distinct_points, needed=needed)
    return form, tuple(notes)


def _values(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def _subset(design: _Design, rows: np.ndarray) -> _Design | None:
    """The design restricted to `rows` (a bootstrap draw), or None when it cannot identify the same form."""
    points = tuple(design.points[i] for i in rows)
    try:
        form, _ = _form(points)
    except TooFewSizesError:
        return None
    if form != design.form:
        return None
    return _Design(log_n=design.log_n[rows], log_d=design.log_d[rows], log_metric=design.log_metric[rows],
                   points=points, form=form, notes=design.notes)


# theta by form: parameters_and_data [e, alpha, a, beta, b]; parameters [e, alpha, a]; data [e, beta, b]


def _log_terms(form: str, theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, list]:
    """The law's terms in log space (rows: E, then each size's term) and the log of each term's variable."""
    e = np.full_like(log_n, theta[0])
    if form == "parameters_and_data":
        return np.stack([e, theta[1] - theta[2] * log_n, theta[3] - theta[4] * log_d]), [log_n, log_d]
    size = log_n if form == "parameters" else log_d
    return np.stack([e, theta[1] - theta[2] * size]), [size]


def _residuals(theta: np.ndarray, design: _Design) -> np.ndarray:
    terms, _ = _log_terms(design.form, theta, design.log_n, design.log_d)
    top = terms.max(axis=0)
    return top + np.log(np.exp(terms - top).sum(axis=0)) - design.log_metric


def _jacobian(theta: np.ndarray, design: _Design) -> np.ndarray:
    terms, logs = _log_terms(design.form, theta, design.log_n, design.log_d)
    weights = np.exp(terms - terms.max(axis=0))
    weights /= weights.sum(axis=0)  # d log L / d (log term) is each term's share of L
    columns = [weights[0]]
    for index, log_size in enumerate(logs, start=1):
        columns += [weights[index], -weights[index] * log_size]
    return np.stack(columns, axis=1)


def _bounds(design: _Design) -> tuple[np.ndarray, np.ndarray]:
    low, high = [LOG_E_FLOOR], [float(design.log_metric.max()) + 1.0]
    for _ in range(PARAMETERS_PER_FORM[design.form] // 2):
        low += [LOG_AMPLITUDE_BOUNDS[0], EXPONENT_BOUNDS[0]]
        high += [LOG_AMPLITUDE_BOUNDS[1], EXPONENT_BOUNDS[1]]
    return np.asarray(low), np.asarray(high)


def _starts(design: _Design, count: int, seed: int) -> list[np.ndarray]:
    """Seeded starting points scattered around the runs' own scale.

    E starts below the smallest metric; an exponent in [0.05, 1]; each amplitude so that its term at the
    median size is a share of the metrics' spread (or of the smallest metric when they are all equal)."""
    rng = np.random.default_rng([seed, 0])
    metric = np.exp(design.log_metric)
    spread = max(float(metric.max() - metric.min()), 0.1 * float(metric.min()))
    logs = {"parameters_and_data": [design.log_n, design.log_d], "parameters": [design.log_n],
            "data": [design.log_d]}[design.form]
    low, high = _bounds(design)
    starts = []
    for index in range(count):
        fraction = 0.5 if index == 0 else rng.uniform(0.0, 0.95)  # the first start is the centre of the box
        theta = [math.log(max(fraction * float(metric.min()), 1e-12))]
        for log_size in logs:
            exponent = 0.3 if index == 0 else rng.uniform(0.05, 1.0)
            share = 1.0 / len(logs) if index == 0 else rng.uniform(0.1, 2.0)
            theta += [math.log(share * spread) + exponent * float(np.median(log_size)), exponent]
        starts.append(np.clip(np.asarray(theta), low, high))
    return starts


def _best_fit(design: _Design, starts: Sequence[np.ndarray], delta: float) -> np.ndarray:
    """The lowest Huber loss over the starts (the first on ties: deterministic).

    Each start is first brought to its squared-loss optimum (Gauss-Newton converges there in a few
    steps) and the Huber fit refined from it: Huber from a far start crawls (~30x the evaluations)."""
    low, high = _bounds(design)
    best, best_cost = None, math.inf
    for start in starts:
        squared = least_squares(_residuals, np.clip(start, low, high), jac=_jacobian, bounds=(low, high),
                                x_scale="jac", args=(design,), method="trf", max_nfev=MAX_EVALUATIONS)
        theta, cost = _refine(design, squared.x, delta)
        if cost < best_cost:
            best, best_cost = theta, cost
    return best


def _refine(design: _Design, start: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """The Huber-loss optimum nearest `start`, and its loss."""
    low, high = _bounds(design)
    result = least_squares(_residuals, np.clip(start, low, high), jac=_jacobian, bounds=(low, high), loss="huber",
                           f_scale=delta, x_scale="jac", args=(design,), method="trf", max_nfev=MAX_EVALUATIONS)
    return result.x, float(result.cost)


def _predict(form: str, theta: np.ndarray, parameters: float, rows_seen: float) -> float:
    log_n = np.asarray([math.log(parameters)])
    log_d = np.asarray([math.log(rows_seen)])
    terms, _ = _log_terms(form, theta, log_n, log_d)
    return float(np.exp(terms[:, 0]).sum())


def _fit_result(design: _Design, theta: np.ndarray) -> ScalingLawFit:
    coefficients: dict[str, float | None] = {"E": math.exp(theta[0]), "A": None, "a": None, "B": None, "b": None}
    if design.form == "parameters_and_data":
        coefficients.update(A=math.exp(theta[1]), a=float(theta[2]), B=math.exp(theta[3]), b=float(theta[4]))
    elif design.form == "parameters":
        coefficients.update(A=math.exp(theta[1]), a=float(theta[2]))
    else:
        coefficients.update(B=math.exp(theta[1]), b=float(theta[2]))
    log_fitted = _residuals(theta, design) + design.log_metric
    log_residual = design.log_metric - log_fitted
    total = float(((design.log_metric - design.log_metric.mean()) ** 2).sum())
    r2 = 1.0 - float((log_residual ** 2).sum()) / total if total > 0 else math.nan
    residuals = tuple(Residual(parameters=p.parameters, rows_seen=p.rows_seen, observed=p.metric,
                               fitted=float(math.exp(f)), log_residual=float(r))
                      for p, f, r in zip(design.points, log_fitted, log_residual))
    return ScalingLawFit(form=design.form, **coefficients, runs=len(design.points),
                         distinct_parameters=len({p.parameters for p in design.points}),
                         distinct_rows_seen=len({p.rows_seen for p in design.points}), residuals=residuals,
                         r2_log=r2, rmse_log=float(np.sqrt((log_residual ** 2).mean())), notes=design.notes)


def _target_notes(design: _Design, parameters: int, rows_seen: int) -> tuple[str, ...]:
    """What the prediction cannot speak to: a full size off the runs' constant size or path, or extrapolation."""
    notes = []
    constant_n = {p.parameters for p in design.points}
    constant_d = {p.rows_seen for p in design.points}
    if design.form == "parameters" and len(constant_d) == 1 and rows_seen not in constant_d:
        notes.append(f"the full size's rows_seen={rows_seen} differs from the runs' {next(iter(constant_d))}; "
                     f"the fit cannot account for it")
    if design.form == "data" and len(constant_n) == 1 and parameters not in constant_n:
        notes.append(f"the full size's parameters={parameters} differs from the runs' {next(iter(constant_n))}; "
                     f"the fit cannot account for it")
    largest_n, largest_d = max(constant_n), max(constant_d)
    if parameters > largest_n or rows_seen > largest_d:
        notes.append(f"extrapolated from the largest run (parameters={largest_n}, rows_seen={largest_d})")
    return tuple(notes)
