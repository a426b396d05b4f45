"""The scaling-law fit recovers a known law, its interval covers the truth, same bytes twice; refuses what it cannot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmas.cascade.scaling import (
    ProxyPoint,
    ScalingFitError,
    ScalingLawConfig,
    TooFewSizesError,
    fit_scaling_law,
    predict_full_size,
    rounded,
)

E, A, ALPHA, B, BETA = 1.7, 400.0, 0.34, 410.0, 0.28
SIZES = (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000)
ROWS = (1_000_000, 4_000_000, 16_000_000)
FULL = (300_000_000, 160_000_000)  # 10x past the largest run in both sizes
DRAWS = ScalingLawConfig(bootstrap_draws=60)


def law(n: float, d: float) -> float:
    return E + A / n**ALPHA + B / d**BETA


def grid(noise: float = 0.0, seed: int = 0, sizes=SIZES, rows=ROWS) -> list[ProxyPoint]:
    """18 runs (6 sizes x 3 data amounts) with multiplicative lognormal noise of `noise` (log sd)."""
    rng = np.random.default_rng(seed)
    return [ProxyPoint(n, d, law(n, d) * float(np.exp(rng.normal(0.0, noise)))) for n in sizes for d in rows]


def test_recovers_the_exact_law_from_noiseless_runs():
    fit = fit_scaling_law(grid())
    assert fit.form == "parameters_and_data"
    for got, want in ((fit.E, E), (fit.A, A), (fit.a, ALPHA), (fit.B, B), (fit.b, BETA)):
        assert got == pytest.approx(want, rel=1e-5)
    assert fit.r2_log == pytest.approx(1.0, abs=1e-9)


def test_recovers_exponents_under_half_a_percent_noise():
    # measured over seeds 0..19 at this design: |a - 0.34| <= 0.019, |b - 0.28| <= 0.035
    fit = fit_scaling_law(grid(noise=0.005, seed=3))
    assert abs(fit.a - ALPHA) < 0.03
    assert abs(fit.b - BETA) < 0.05
    assert fit.r2_log > 0.999
    assert fit.rmse_log < 0.01
    assert len(fit.residuals) == 18 and all(abs(r.log_residual) < 0.03 for r in fit.residuals)


def test_the_interval_covers_the_true_full_size_metric():
    truth = law(*FULL)
    for seed in range(3):
        prediction = predict_full_size(grid(noise=0.005, seed=seed), *FULL, DRAWS)
        assert prediction.lower <= prediction.predicted <= prediction.upper
        assert prediction.covers(truth), (seed, prediction.lower, truth, prediction.upper)
        # measured over seeds 0..19: |error| <= 4.6%, the 90% interval ~9.6% wide, covering 19 of 20
        assert prediction.predicted == pytest.approx(truth, rel=0.06)
        assert prediction.bootstrap_fitted == DRAWS.bootstrap_draws
    assert any("extrapolated" in note for note in prediction.notes)


def test_a_wider_level_gives_a_wider_interval():
    runs = grid(noise=0.005)
    narrow = predict_full_size(runs, *FULL, DRAWS.model_copy(update={"level": 0.5}))
    wide = predict_full_size(runs, *FULL, DRAWS.model_copy(update={"level": 0.95}))
    assert wide.lower <= narrow.lower and narrow.upper <= wide.upper


def test_same_bytes_twice_and_in_any_run_order():
    runs = grid(noise=0.005)
    first = json.dumps(predict_full_size(runs, *FULL, DRAWS).to_dict(), sort_keys=True)
    again = json.dumps(predict_full_size(list(reversed(runs)), *FULL, DRAWS).to_dict(), sort_keys=True)
    assert first == again
    other_seed = json.dumps(predict_full_size(runs, *FULL, DRAWS.model_copy(update={"seed": 1})).to_dict(),
                            sort_keys=True)
    assert other_seed != first
    report = json.loads(first)
    assert report["fit"]["formula"] == "L = E + A/N^a + B/D^b"
    assert report["interval"]["level"] == 0.9


def test_rounding_rule():
    assert rounded(1.234567891) == 1.23457
    assert rounded(12345678.9) == 12345700.0
    assert rounded(float("nan")) is None and rounded(float("inf")) is None and rounded(None) is None


def test_constant_rows_fits_parameters_alone_and_says_so():
    runs = [ProxyPoint(n, 4_000_000, law(n, 4_000_000)) for n in SIZES]
    fit = fit_scaling_law(runs)
    assert fit.form == "parameters" and fit.B is None and fit.b is None
    assert fit.a == pytest.approx(ALPHA, rel=1e-4)
    assert fit.E == pytest.approx(E + B / 4_000_000**BETA, rel=1e-4)  # D's term folded into E
    assert any("rows_seen is 4000000 in every run" in note for note in fit.notes)
    assert fit.to_dict()["coefficients"]["B"] is None
    rng = np.random.default_rng(0)
    noisy = [ProxyPoint(p.parameters, p.rows_seen, p.metric * float(np.exp(rng.normal(0, 0.005)))) for p in runs]
    prediction = predict_full_size(noisy, FULL[0], 4_000_000, DRAWS)
    assert prediction.covers(law(FULL[0], 4_000_000))
    elsewhere = predict_full_size(runs, FULL[0], FULL[1], DRAWS)
    assert any("differs from the runs' 4000000" in note for note in elsewhere.notes)


def test_constant_parameters_fits_data_alone():
    rows = (250_000, 1_000_000, 4_000_000, 16_000_000, 64_000_000)
    fit = fit_scaling_law([ProxyPoint(1_000_000, d, law(1_000_000, d)) for d in rows])
    assert fit.form == "data" and fit.A is None and fit.a is None
    assert fit.b == pytest.approx(BETA, rel=1e-4)
    assert fit.to_dict()["formula"] == "L = E + B/D^b"


def test_sizes_that_grow_together_are_fitted_in_parameters():
    runs = [ProxyPoint(n, 10 * n, law(n, 10 * n)) for n in SIZES]
    fit = fit_scaling_law(runs)
    assert fit.form == "parameters"
    assert any("cannot be told apart" in note for note in fit.notes)
    assert fit.predict(3_000_000, 30_000_000) == pytest.approx(law(3_000_000, 30_000_000), rel=1e-3)


def test_too_few_distinct_sizes_is_refused_by_name():
    with pytest.raises(TooFewSizesError, match="parameters has 2 distinct values") as error:
        fit_scaling_law(grid(sizes=(1_000_000, 4_000_000)))
    assert error.value.variable == "parameters" and error.value.distinct == 2 and error.value.needed == 3
    with pytest.raises(TooFewSizesError, match="rows_seen has 2 distinct values"):
        fit_scaling_law(grid(rows=(1_000_000, 2_000_000)))
    with pytest.raises(TooFewSizesError, match="all 4 runs have parameters=1000"):
        fit_scaling_law([ProxyPoint(1000, 5000, 2.0 + i / 10) for i in range(4)])
    with pytest.raises(TooFewSizesError, match="needs at least 4"):  # 3 coefficients, 3 sizes: no residual
        fit_scaling_law([ProxyPoint(n, 5000, law(n, 5000)) for n in SIZES[:3]])
    with pytest.raises(TooFewSizesError, match=r"\(parameters, rows_seen\) values; fitting it needs at least 6"):
        fit_scaling_law([ProxyPoint(n, d, law(n, d)) for n, d in ((1, 1), (2, 2), (3, 3), (1, 2), (3, 2))])


def test_bad_metrics_and_sizes_are_refused():
    runs = grid()
    with pytest.raises(ScalingFitError, match="positive finite metric"):
        fit_scaling_law([*runs[:-1], ProxyPoint(runs[-1].parameters, runs[-1].rows_seen, float("nan"))])
    with pytest.raises(ScalingFitError, match="sizes must be positive"):
        fit_scaling_law([*runs, ProxyPoint(0, 10, 1.0)])
    with pytest.raises(ScalingFitError, match="no proxy runs"):
        fit_scaling_law([])
    with pytest.raises(ScalingFitError, match="full size must be positive"):
        predict_full_size(runs, 0, 10, DRAWS)


def bent(n: float, d: float, k: float = 0.04) -> float:
    """The law, but past 1e13 compute the loss falls more slowly than any power law of its form can bend."""
    return law(n, d) * (1 + k * max(0.0, np.log(n * d) - np.log(1e13)))


def test_the_backtest_finds_no_error_in_an_exact_law_and_leaves_the_interval_as_the_bootstrap_drew_it():
    prediction = predict_full_size(grid(), *FULL, DRAWS)
    backtest = prediction.backtest
    assert backtest is not None and len(backtest.held_out) == 3  # 17% of 18 runs, those of most compute
    assert {(r.parameters, r.rows_seen) for r in backtest.held_out} == {(30_000_000, 16_000_000),
                                                                        (30_000_000, 4_000_000),
                                                                        (10_000_000, 16_000_000)}
    assert backtest.max_abs_log_error < 1e-6
    assert backtest.distance_ratio == pytest.approx(2.0)  # the full size lies 100x beyond, the held-out 10x
    assert (prediction.lower, prediction.upper) == pytest.approx((prediction.bootstrap_lower,
                                                                  prediction.bootstrap_upper), rel=1e-6)


def test_runs_that_bend_away_from_the_law_widen_the_interval_by_what_the_backtest_missed():
    errors = []
    for k in (0.02, 0.04):
        runs = [ProxyPoint(n, d, bent(n, d, k)) for n in SIZES for d in ROWS]
        prediction = predict_full_size(runs, *FULL, DRAWS)
        backtest = prediction.backtest
        errors.append(backtest.max_abs_log_error)
        assert backtest.half_width_log == pytest.approx(backtest.max_abs_log_error * backtest.distance_ratio)
        reach = prediction.predicted * np.exp([-backtest.half_width_log, backtest.half_width_log])
        assert prediction.lower <= min(prediction.bootstrap_lower, reach[0])
        assert prediction.upper >= max(prediction.bootstrap_upper, reach[1])
        assert prediction.covers(bent(*FULL, k))
        assert prediction.to_dict()["interval"]["method"].endswith("widened by the backtest's extrapolation error")
    assert errors[0] > 0.01 and errors[1] > 1.5 * errors[0], "a stronger bend must show as a larger backtest error"


def test_without_a_backtest_the_interval_is_the_bootstrap_alone():
    prediction = predict_full_size(grid(noise=0.005), *FULL, DRAWS.model_copy(update={"backtest_share": 0}))
    assert prediction.backtest is None and prediction.to_dict()["backtest"] is None
    assert (prediction.lower, prediction.upper) == (prediction.bootstrap_lower, prediction.bootstrap_upper)
    assert not any("no backtest" in note for note in prediction.notes)
