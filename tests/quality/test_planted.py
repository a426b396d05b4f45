"""The planted-collapse generator itself: the reference has the properties the suite relies on, each
corruption does what it says at its severity, and everything is reproducible from its seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from dmas.quality.planted import (
    COLUMNS,
    LADDERS,
    MERCHANT_SHARES,
    MERCHANTS,
    ROW_SECONDS,
    SIGNAL_FREQUENCIES,
    TIME_COLUMNS,
    attributed,
    correlation_change,
    localized_bad_rows,
    low_pass,
    mean_shift,
    memorization,
    minor_mode,
    mode_collapse,
    rare_category_drop,
    rare_levels,
    recursive_refit,
    reference_table,
    tail_truncation,
    variance_shrink,
)

N = 20_000  # the goal's row count; drawing it takes milliseconds
ROW_COLUMNS = tuple(name for name in COLUMNS if name not in TIME_COLUMNS)  # what a row-replacing corruption may change


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return reference_table(N, 0)


@pytest.fixture(scope="module")
def clean(reference) -> pd.DataFrame:
    """The candidate every corruption with seed 1 starts from."""
    return reference_table(N, 1)


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Arrow IPC bytes (values, dtypes and column order)."""
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def power_spectrum(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (cycles per row) and periodogram of a series."""
    return np.fft.rfftfreq(len(values)), np.abs(np.fft.rfft(values - values.mean())) ** 2


def unchanged(candidate: pd.DataFrame, clean: pd.DataFrame, but: tuple[str, ...]) -> None:
    for name in COLUMNS:
        if name not in but:
            assert candidate[name].equals(clean[name]), name


# the reference


def test_reference_has_the_columns_and_kinds_in_time_order(reference):
    assert tuple(reference.columns) == COLUMNS and len(reference) == N
    assert np.allclose(np.diff(reference["t"]), ROW_SECONDS)
    assert reference["flag"].dtype == bool and reference["target"].dtype == bool
    assert pd.api.types.is_string_dtype(reference["merchant"])
    assert not reference.isna().any().any()


def test_reference_normals_have_the_planted_correlations(reference):
    correlation = reference[["x1", "x2", "x3"]].corr().to_numpy()
    assert correlation[0, 1] == pytest.approx(0.6, abs=0.03)
    assert correlation[1, 2] == pytest.approx(-0.4, abs=0.03)
    assert correlation[0, 2] == pytest.approx(0.0, abs=0.03)


def test_reference_marginals_are_lognormal_exponential_and_binary(reference):
    log_amount = np.log(reference["amount"])
    assert log_amount.mean() == pytest.approx(3.0, abs=0.03) and log_amount.std() == pytest.approx(0.8, abs=0.03)
    assert stats.skew(reference["amount"]) > 2  # a long right tail
    wait = reference["wait"]
    assert wait.min() > 0 and wait.mean() == pytest.approx(5.0, rel=0.05) and wait.std() == pytest.approx(5.0, rel=0.05)
    assert reference["flag"].mean() == pytest.approx(0.3, abs=0.02)


def test_merchant_is_zipf_with_a_level_near_three_percent_and_rarer_ones(reference):
    shares = reference["merchant"].value_counts(normalize=True)
    assert sorted(shares.index) == list(MERCHANTS)  # every level present, the rarest (0.21%) included
    assert np.allclose(shares[list(MERCHANTS)].to_numpy(), MERCHANT_SHARES, atol=0.006)
    assert 0.025 < shares["m06"] < 0.03 and shares["m05"] > 0.033  # the ~3% level, and the next one up
    assert (shares < 0.005).sum() >= 10


def test_bimodal_has_two_separated_modes(reference):
    values = reference["bimodal"].to_numpy()
    assert minor_mode(reference)(values).mean() == pytest.approx(0.35, abs=0.015)
    counts, edges = np.histogram(values, bins=60)
    centers = (edges[:-1] + edges[1:]) / 2
    left, right = counts[centers < 0.5].max(), counts[centers > 0.5].max()
    trough = counts[(centers > -1) & (centers < 1.5)].min()
    assert trough < 0.05 * min(left, right)


def test_signal_spectrum_peaks_at_the_planted_frequencies(reference):
    frequencies, power = power_spectrum(reference["signal"].to_numpy())
    peaks = sorted(frequencies[np.argsort(-power)[:2]])
    assert np.allclose(peaks, SIGNAL_FREQUENCIES, atol=1.5 / N)


def test_target_depends_on_x1_amount_and_merchant(reference):
    target = reference["target"]
    for name in ("x1", "amount"):
        high = reference[name] > reference[name].median()
        assert target[high].mean() - target[~high].mean() > 0.15, name
    by_merchant = target.groupby(reference["merchant"]).mean()
    assert by_merchant[["m01", "m02", "m03", "m04"]].std() > 0.1
    assert target[reference["x3"] > 0].mean() == pytest.approx(target[reference["x3"] <= 0].mean(), abs=0.03)


# each corruption at its severities


@pytest.mark.parametrize("factor", LADDERS["variance_shrink"].severities)
def test_variance_shrink_scales_the_variance_and_keeps_the_mean(reference, clean, factor):
    candidate = variance_shrink(reference, factor, 1)
    assert candidate["x1"].var() / clean["x1"].var() == pytest.approx(factor, rel=1e-9)
    assert candidate["x1"].mean() == pytest.approx(clean["x1"].mean(), rel=1e-12)
    correlation = np.corrcoef(clean["x1"], clean["x2"])[0, 1]
    assert np.corrcoef(candidate["x1"], candidate["x2"])[0, 1] == pytest.approx(correlation)
    unchanged(candidate, clean, but=("x1",))


@pytest.mark.parametrize("share", LADDERS["tail_truncation"].severities)
def test_tail_truncation_resamples_the_extreme_rows_from_the_interior(reference, clean, share):
    candidate = tail_truncation(reference, share, 1)
    k = round(share * N)
    ordered = np.sort(clean["amount"])
    interior = (ordered[k // 2 - 1], ordered[N - (k - k // 2)])  # the last values removed on each side
    assert candidate["amount"].between(*interior, inclusive="neither").all()
    assert (candidate["amount"] != clean["amount"]).sum() <= k
    unchanged(candidate, clean, but=ROW_COLUMNS)
    low, high = reference["amount"].quantile([0.01, 0.99])
    beyond = (candidate["amount"] < low) | (candidate["amount"] > high)
    expected = max(0.02 - share, 0.0)  # the mass beyond the reference's 1%/99% quantiles that is left
    assert beyond.mean() == pytest.approx(expected, abs=0.003)


@pytest.mark.parametrize("share", LADDERS["rare_category_drop"].severities)
def test_rare_category_drop_removes_exactly_the_rare_levels(reference, clean, share):
    candidate = rare_category_drop(reference, share, 1)
    dropped = rare_levels(reference, share)
    assert dropped and set(candidate["merchant"]) == set(MERCHANTS) - set(dropped)
    kept_rows = ~clean["merchant"].isin(dropped)
    assert candidate[kept_rows].equals(clean[kept_rows])
    if share == 0.03:
        assert "m06" in dropped and "m05" not in dropped  # the ~3% level goes, the 3.7% one stays


@pytest.mark.parametrize("severity", LADDERS["mode_collapse"].severities)
def test_mode_collapse_empties_the_smaller_mode(reference, clean, severity):
    candidate = mode_collapse(reference, severity, 1)
    in_minor = minor_mode(reference)
    before = int(in_minor(clean["bimodal"].to_numpy()).sum())
    assert int(in_minor(candidate["bimodal"].to_numpy()).sum()) == before - round(severity * before)
    unchanged(candidate, clean, but=ROW_COLUMNS)


@pytest.mark.parametrize("share", LADDERS["memorization"].severities)
def test_memorization_plants_the_share_of_exact_reference_copies(reference, clean, share):
    candidate = memorization(reference, share, 1)
    reference_rows = set(pd.util.hash_pandas_object(reference, index=False))
    copied = pd.util.hash_pandas_object(candidate, index=False).isin(reference_rows)
    assert copied.sum() == round(share * N)
    assert not pd.util.hash_pandas_object(clean, index=False).isin(reference_rows).any()
    assert candidate["t"].is_monotonic_increasing  # copies keep their time slot


@pytest.mark.parametrize("delta", LADDERS["correlation_inflation"].severities + LADDERS["correlation_break"].severities)
def test_correlation_change_moves_the_correlation_and_keeps_the_marginals(reference, clean, delta):
    candidate = correlation_change(reference, delta, 1)
    moved = np.corrcoef(candidate["x1"], candidate["x2"])[0, 1] - np.corrcoef(clean["x1"], clean["x2"])[0, 1]
    assert moved == pytest.approx(delta, abs=0.02)
    assert np.array_equal(np.sort(candidate["x2"]), np.sort(clean["x2"]))
    unchanged(candidate, clean, but=("x2",))


@pytest.mark.parametrize("share", LADDERS["localized_bad_rows"].severities)
def test_localized_bad_rows_are_one_block_of_constants(reference, clean, share):
    candidate = localized_bad_rows(reference, share, 1)
    changed = np.flatnonzero((candidate["x3"] != clean["x3"]).to_numpy())
    k = round(share * N)
    assert len(changed) == k  # an even row count: the median is no row's value
    assert changed[-1] - changed[0] < k  # consecutive rows
    block = slice(changed[0], changed[0] + k)
    for name in ("x3", "wait"):
        assert candidate[name].iloc[block].nunique() == 1
        assert candidate[name].iloc[block].iloc[0] == np.median(clean[name])
    unchanged(candidate, clean, but=("x3", "wait"))


def test_recursive_refit_loses_tails_and_levels_over_generations():
    small = reference_table(2_000, 0)
    clean = reference_table(2_000, 1)
    generations = [recursive_refit(small, g, 1) for g in LADDERS["recursive_refit"].severities]
    levels = [candidate["merchant"].nunique() for candidate in generations]
    top = [candidate["amount"].max() for candidate in generations]
    assert levels == sorted(levels, reverse=True) and levels[-1] < clean["merchant"].nunique()
    assert top == sorted(top, reverse=True) and top[-1] < clean["amount"].max()
    for candidate in generations:
        assert set(candidate["merchant"]) <= set(clean["merchant"])
        assert np.corrcoef(candidate["x1"], candidate["x2"])[0, 1] == pytest.approx(0.6, abs=0.1)  # the fit keeps it
        unchanged(candidate, clean, but=ROW_COLUMNS)


def test_low_pass_removes_high_frequency_power_and_keeps_the_slow_sinusoid(reference, clean):
    frequencies, before = power_spectrum(clean["signal"].to_numpy())
    high, slow = frequencies > 0.2, np.argmin(np.abs(frequencies - SIGNAL_FREQUENCIES[0]))
    kept = []
    for window in LADDERS["low_pass"].severities:
        candidate = low_pass(reference, window, 1)
        _, after = power_spectrum(candidate["signal"].to_numpy())
        kept.append(after[high].sum() / before[high].sum())
        assert after[slow] / before[slow] > 0.85
        unchanged(candidate, clean, but=("signal",))
    assert kept == sorted(kept, reverse=True) and kept[0] < 0.15


@pytest.mark.parametrize("shift", LADDERS["mean_shift"].severities)
def test_mean_shift_moves_the_mean_and_keeps_the_shape(reference, clean, shift):
    candidate = mean_shift(reference, shift, 1)
    for name in ("x1", "amount"):
        assert candidate[name].mean() - clean[name].mean() == pytest.approx(shift * reference[name].std())
        assert candidate[name].std() == pytest.approx(clean[name].std(), rel=1e-9)
        assert stats.skew(candidate[name]) == pytest.approx(stats.skew(clean[name]), rel=1e-6)
    unchanged(candidate, clean, but=("x1", "amount"))


def test_a_given_candidate_is_corrupted_instead_of_a_fresh_draw(reference, clean):
    given = clean.copy()
    assert tail_truncation(reference, 0.01, 1, candidate=given).equals(tail_truncation(reference, 0.01, 1))
    assert given.equals(clean)  # not modified in place


# determinism and the ladders


def test_same_seed_same_bytes_other_seed_other_bytes():
    assert frame_bytes(reference_table(3_000, 0)) == frame_bytes(reference_table(3_000, 0))
    assert frame_bytes(reference_table(3_000, 0)) != frame_bytes(reference_table(3_000, 1))


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_every_corruption_is_reproducible_and_changes_the_candidate(name):
    ladder = LADDERS[name]
    reference = reference_table(3_000, 0)
    severity = ladder.severities[-1]
    once = ladder.corrupt(reference, severity, 1)
    assert frame_bytes(once) == frame_bytes(ladder.corrupt(reference, severity, 1))
    assert frame_bytes(once) != frame_bytes(ladder.corrupt(reference, severity, 2))
    assert frame_bytes(once) != frame_bytes(reference_table(3_000, 1))
    assert list(once.dtypes) == list(reference.dtypes)


def test_ladders_state_the_issue_goals():
    goals = {name: ladder.goal for name, ladder in LADDERS.items() if ladder.goal is not None}
    assert goals == {"variance_shrink": 0.9, "tail_truncation": 0.01, "rare_category_drop": 0.03, "memorization": 0.1,
                     "correlation_inflation": 0.3, "mean_shift": 0.25}
    for ladder in LADDERS.values():
        assert ladder.goal is None or ladder.goal in ladder.severities
    assert LADDERS["mean_shift"].finding == "drift"
    assert all(ladder.finding == "collapse" for name, ladder in LADDERS.items() if name != "mean_shift")


def test_attributed_needs_the_finding_the_dimension_and_the_exact_columns():
    def report(*flags):
        return {"flags": [{"dimension": d, "finding": f, "columns": c} for d, f, c in flags]}

    correlation = LADDERS["correlation_inflation"]
    assert attributed(report(("correlation_preservation", "collapse", ["x2", "x1"])), correlation)
    assert not attributed(report(("correlation_preservation", "collapse", ["x1", "x3"])), correlation)
    assert not attributed(report(("correlation_preservation", "collapse", ["x1"])), correlation)
    assert not attributed(report(("distribution_fidelity", "collapse", ["x1", "x2"])), correlation)
    assert not attributed(report(("correlation_preservation", "drift", ["x1", "x2"])), correlation)
    assert attributed(report(("memorization", "collapse", [])), LADDERS["memorization"])
    assert attributed(report(("distribution_fidelity", "drift", ["amount"])), LADDERS["mean_shift"])
    assert not attributed(report(), LADDERS["variance_shrink"])
