"""Entropy stability finds lost variance, a lost mode and a lost (nonlinear) dependence on the right
column or pair, leaves clean samples and shifted columns alone, judged by the real calibration, and
declines the entropy ratio of a column too even for one."""

from __future__ import annotations

import numpy as np
import pytest

from dmas.quality.dimension import CheckContext
from dmas.quality.entropy import EntropyStability, entropy, histogram_counts, pca_spectra
from dmas.quality.frame import QualityFrame
from tests.quality import judging

N = 20_000
REPORT_STATISTICS = 300  # about a full report's count: thresholds as strict as in a real check
CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)
CONTINUOUS = ("bimodal", "lognormal", "x", "y")
KINDS = {"x": "numeric", "y": "numeric", "lognormal": "numeric", "bimodal": "numeric", "t": "datetime",
         "level": "categorical", "flag": "boolean", "even": "boolean"}
LEVELS = {"level": ("l0", "l1", "l2", "l3", "l4"), "flag": ("False", "True"), "even": ("False", "True")}


def sample(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """y depends on x only through x^2 (no correlation to see), bimodal 35/65, `even` a 50/50 flag."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return {"x": x, "y": x**2 + rng.standard_normal(n), "lognormal": rng.lognormal(2.0, 0.8, n),
            "bimodal": np.where(rng.random(n) < 0.35, rng.normal(3.0, 0.8, n), rng.normal(-2.0, 0.6, n)),
            "t": np.arange(n, dtype=np.float64),
            "level": rng.choice(5, size=n, p=(0.45, 0.25, 0.15, 0.1, 0.05)).astype(np.int32),
            "flag": (rng.random(n) < 0.3).astype(np.int32), "even": (rng.random(n) < 0.5).astype(np.int32)}


def frame(values: dict[str, np.ndarray]) -> QualityFrame:
    return judging.frame_of(values, KINDS, LEVELS, order="t")


def shrunk(values: np.ndarray, variance: float) -> np.ndarray:
    return values.mean() + np.sqrt(variance) * (values - values.mean())


reference, calibration = judging.calibrated_fixtures(EntropyStability, lambda: frame(sample(0)), N, CONTEXT)


def flagged(reference, calibration, candidate) -> set[tuple[str, ...]]:
    """(statistic, *columns) of every flagged statistic."""
    return judging.flagged_keys(judging.judged(EntropyStability(), calibration, reference, candidate, CONTEXT,
                                               REPORT_STATISTICS))


def test_variance_shrunk_to_0_9_on_every_column_flags_the_total_variance_and_each_entropy(reference, calibration):
    values = sample(1)
    for name in CONTINUOUS:
        values[name] = shrunk(values[name], 0.9)
    found = flagged(reference, calibration, frame(values))
    assert ("pca_total_variance_ratio",) in found
    assert {("entropy_ratio", name) for name in CONTINUOUS} <= found


def test_variance_shrunk_to_0_9_on_one_column_flags_that_column(reference, calibration):
    values = sample(2)
    values["lognormal"] = shrunk(values["lognormal"], 0.9)
    found = flagged(reference, calibration, frame(values))
    assert ("entropy_ratio", "lognormal") in found
    assert {tuple(columns) for _, *columns in found} <= {("lognormal",), ()}  # () = the PCA spectrum


def test_a_lost_mode_flags_that_columns_entropy(reference, calibration):
    values = sample(3)
    minor = values["bimodal"] > 0.5
    values["bimodal"][minor] = np.random.default_rng(4).choice(values["bimodal"][~minor], minor.sum())
    found = flagged(reference, calibration, frame(values))
    assert ("entropy_ratio", "bimodal") in found
    assert {tuple(columns) for _, *columns in found} <= {("bimodal",), ()}


def test_a_lost_nonlinear_dependence_flags_that_pair(reference, calibration):
    values = sample(5)
    values["y"] = np.random.default_rng(6).permutation(values["y"])  # same marginal, no dependence on x
    found = flagged(reference, calibration, frame(values))
    assert ("dependence_change", "x", "y") in found
    assert {tuple(columns) for _, *columns in found} <= {("x", "y"), ()}


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_clean_independent_samples_flag_nothing(reference, calibration, seed):
    assert flagged(reference, calibration, frame(sample(seed))) == set()


def test_a_mean_shift_flags_nothing(reference, calibration):
    values = sample(10)
    for name in CONTINUOUS:
        values[name] = values[name] + 2.5 * values[name].std()
    assert flagged(reference, calibration, frame(values)) == set()


def test_a_column_as_even_as_its_noise_gets_no_entropy_ratio_and_a_note(reference):
    dimension = EntropyStability()
    candidate = frame(sample(11))
    statistics = {s.key: s for s in dimension.statistics(reference, candidate, CONTEXT)}
    assert np.isnan(statistics["entropy_ratio:even"].value)
    assert np.isfinite(statistics["entropy_ratio:flag"].value) and np.isfinite(statistics["entropy_ratio:x"].value)
    assert statistics["entropy_ratio:even"].evidence["reference_nats"] == pytest.approx(np.log(2), abs=1e-3)
    assert any("even" in note for note in dimension.describe(reference, candidate, CONTEXT)["notes"])


def test_statistic_keys_depend_on_the_columns_only(reference):
    dimension = EntropyStability()
    changed = sample(12)
    changed["x"][::3] = np.nan
    changed["level"][::4] = -1
    changed["y"] = np.zeros(N)
    keys = [s.key for s in dimension.statistics(reference, reference, CONTEXT)]
    assert keys == [s.key for s in dimension.statistics(reference, frame(changed), CONTEXT)]
    pairs = [key.split(":")[1].split(",") for key in keys if key.startswith("dependence_change")]
    assert len(pairs) == 7 * 6 // 2 - 3  # every pair of the 7 columns but t, less the 3 categorical-only ones
    assert not any(key.split(":")[1] == "t" or "t" in key.split(":")[1].split(",") for key in keys)
    assert [key for key in keys if key.startswith("pca")] == ["pca_total_variance_ratio:"] + [
        f"pca_eigenvalue_ratio_pc{k}:" for k in range(1, 5)]


def test_identical_inputs_give_identical_values_and_ideal_statistics(reference):
    dimension = EntropyStability()
    candidate = frame(sample(13))
    first, second = (dimension.statistics(reference, candidate, CONTEXT) for _ in range(2))
    assert [(s.key, repr(s.value), s.evidence) for s in first] == [(s.key, repr(s.value), s.evidence) for s in second]
    for statistic in dimension.statistics(reference, reference, CONTEXT):
        if np.isfinite(statistic.value):
            assert statistic.value == pytest.approx(statistic.ideal, abs=1e-12), statistic.key


def test_missing_values_and_missing_kinds_never_crash():
    values = sample(14, n=500)
    values["x"][::4] = np.nan
    values["lognormal"][:] = np.nan
    values["level"][::3] = -1
    dimension = EntropyStability()
    statistics = {s.key: s.value for s in dimension.statistics(frame(values), frame(sample(15, n=500)), CONTEXT)}
    assert np.isnan(statistics["entropy_ratio:lognormal"]) and np.isnan(statistics["pca_total_variance_ratio:"])
    assert np.isfinite(statistics["entropy_ratio:x"]) and np.isfinite(statistics["dependence_change:x,y"])
    only_levels = {name: values[name] for name in ("level", "flag")}
    assert [s.key for s in dimension.statistics(frame(only_levels), frame(only_levels), CONTEXT)] == [
        "entropy_ratio:flag", "entropy_ratio:level"]
    details = dimension.describe(frame(only_levels), frame(only_levels), CONTEXT)
    assert details["pca_spectrum"] == {"reference": [], "candidate": []}


def test_describe_gives_both_spectra_and_every_columns_entropy(reference):
    values = sample(16)
    values["x"] = shrunk(values["x"], 0.5)
    details = EntropyStability().describe(reference, frame(values), CONTEXT)
    assert set(details) == {"pca_spectrum", "entropy", "notes"}
    assert len(details["pca_spectrum"]["reference"]) == len(details["pca_spectrum"]["candidate"]) == 4
    assert sorted(details["entropy"]) == ["bimodal", "even", "flag", "level", "lognormal", "x", "y"]
    assert details["entropy"]["x"]["candidate"] == pytest.approx(details["entropy"]["x"]["reference"]
                                                                 + np.log(np.sqrt(0.5)), abs=0.02)
    assert sum(details["pca_spectrum"]["candidate"]) < sum(details["pca_spectrum"]["reference"])


def test_histogram_entropy_tracks_a_shrunk_spread_and_ignores_a_shift():
    rng = np.random.default_rng(17)
    x, y = rng.standard_normal(50_000), rng.standard_normal(50_000)
    quantiles = np.quantile(x, np.r_[0.005, np.arange(1, 8) / 8, 0.995])
    before, after = histogram_counts(x, quantiles, 0.9 * y, quantiles)
    assert entropy(after) - entropy(before) == pytest.approx(np.log(0.9), abs=0.01)
    before, after = histogram_counts(x, quantiles, y + 7.3, quantiles)
    assert entropy(after) - entropy(before) == pytest.approx(0.0, abs=0.01)
    limits = np.quantile(np.column_stack([x, y]), [0.005, 0.995], axis=0)
    both = np.column_stack([x, y])
    spectra = pca_spectra(lambda: [both], lambda: [both + 5.0], (limits, limits + 5.0))
    assert np.allclose(spectra[0], spectra[1])


def test_many_columns_get_a_fixed_choice_of_pairs_and_a_note():
    rng = np.random.default_rng(21)
    values = {f"c{k:02d}": rng.standard_normal(600) for k in range(12)}
    wide = QualityFrame({name: "numeric" for name in values}, values)
    shifted = QualityFrame(wide.kinds, {name: 3.0 * array + 1.0 for name, array in values.items()})
    dimension = EntropyStability()
    keys = [s.key for s in dimension.statistics(wide, wide, CONTEXT) if s.name == "dependence_change"]
    assert len(keys) == 45 and keys == [s.key for s in dimension.statistics(wide, shifted, CONTEXT)
                                        if s.name == "dependence_change"]
    assert dimension.describe(wide, wide, CONTEXT)["notes"] == [
        "dependence compared on a fixed choice of 45 of the 66 column pairs"]


def test_statistics_stream_in_blocks_with_the_numbers_of_one_pass(monkeypatch):
    """Counts in blocks are the same integers whatever the block size, the PCA spectrum the same up to the
    order of float sums; a take's blocks are the rows `matrix` would gather, and a frame of one block
    gives exactly the bytes of one pass."""
    from dmas.quality import entropy as module
    from dmas.quality.entropy import pair_tables

    values = sample(23, 5_000)
    values["x"][::97] = np.nan
    reference, candidate = frame(values), frame(sample(24, 5_000))
    rows = np.random.default_rng(3).integers(0, 5_000, 3_000)
    taken = reference.take(rows)
    names = ["bimodal", "level", "x"]
    assert np.array_equal(np.vstack(list(taken.row_blocks(names, 700))), reference.matrix(names)[rows],
                          equal_nan=True)

    def run() -> tuple[list, dict]:
        statistics = EntropyStability().statistics(reference, candidate, CONTEXT)
        return [(s.key, s.value) for s in statistics], EntropyStability().describe(reference, candidate, CONTEXT)

    whole = run()
    monkeypatch.setattr(module, "CHUNK_ROWS", 512)
    monkeypatch.setattr(QualityFrame.row_blocks, "__defaults__", (512,))
    blocked = run()
    assert [key for key, _ in blocked[0]] == [key for key, _ in whole[0]]
    for (key, got), (_, want) in zip(blocked[0], whole[0], strict=True):
        if key.startswith(("entropy_ratio", "dependence_change")):
            assert got == want or (np.isnan(got) and np.isnan(want)), key  # counts: exact
        else:
            assert got == pytest.approx(want, rel=1e-9, nan_ok=True), key
    quantiles = {name: np.quantile(values[name][~np.isnan(values[name])], module.QUANTILES)
                 for name in ("bimodal", "x")}
    pairs, sizes = [("bimodal", "x"), ("level", "x")], {"bimodal": 8, "x": 8, "level": 5}
    monkeypatch.setattr(module, "CHUNK_ROWS", 333)
    small = pair_tables(reference, {**quantiles, "level": None}, pairs, sizes)
    monkeypatch.setattr(module, "CHUNK_ROWS", 65_536)
    assert all(np.array_equal(small[pair], table)
               for pair, table in pair_tables(reference, {**quantiles, "level": None}, pairs, sizes).items())
