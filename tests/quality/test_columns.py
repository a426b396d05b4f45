"""Tests for dmas.quality.columns: kinds, left-out columns, schema comparison, encoding, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dmas.errors import ConfigError
from dmas.quality.columns import encode_pair, fingerprint, infer_kind, load_pair

N = 1000


def mixed_table(seed: int = 0, n: int = N) -> pa.Table:
    """A reference-like table of every kind, plus a key and a free-text column."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "id": [f"user-{i:05d}" for i in range(n)],
        "x": rng.normal(size=n),
        "grade": rng.choice(["a", "b", "c"], n),
        "level": rng.integers(1, 6, n),
        "flag": rng.integers(0, 2, n),
        "when": pa.array(pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")),
        "note": [f"customer wrote a long free text comment number {i}" for i in range(n)],
    })


def text(values: list) -> pa.Array:
    return pa.array(values, pa.string())


# --- kinds --------------------------------------------------------------------------------------


def test_text_columns_are_read_as_what_they_hold() -> None:
    numbers = [f"{v:.3f}" for v in np.linspace(-5, 5, N)]
    assert infer_kind(text(numbers)) == "numeric"
    assert infer_kind(text([" 1e3", "-2.5", "NA", None] * 250)) == "numeric"
    assert infer_kind(text(["Yes", "no", "TRUE", "false", None] * 200)) == "boolean"
    assert infer_kind(text(["0", "1"] * 500)) == "boolean"
    assert infer_kind(text(["2024-01-01T02:00:00+02:00", "2024-03-01", "2024-06-30 12:00:00"] * 300)) == "datetime"
    assert infer_kind(text(["31/12/2024", "01/02/2023 10:30"] * 300)) == "datetime"
    assert infer_kind(text(["red", "green", "12", "2024-01-01"] * 250)) == "categorical"
    assert infer_kind(text([None, "NA", "null"])) is None


def test_a_few_unreadable_numbers_keep_a_column_numeric_and_are_counted() -> None:
    values = [str(v) for v in range(N)]
    values[10], values[20], values[30] = "oops", "inf", "n/a"  # two unreadable, one missing marker
    table = pa.table({"v": text(values)})
    pair = encode_pair(table, table)
    assert pair.inputs["kinds"] == {"v": "numeric"}
    assert np.isnan(pair.reference.values["v"][[10, 20, 30]]).all()
    assert pair.reference.values["v"][11] == 11.0
    assert pair.inputs["unparsed"] == {"v": {"reference": 2, "candidate": 2}}


def test_numbers_read_the_same_from_clean_and_from_patchy_text() -> None:
    clean = pa.table({"v": text([" 1.5", "2", "3e2", "-0.25"] * 100)})
    patchy = pa.table({"v": text([" 1.5", "2", "3e2", "-0.25"] * 100 + ["NA", None])})
    clean_values = encode_pair(clean, clean).reference.values["v"]
    patchy_values = encode_pair(patchy, patchy).reference.values["v"]
    assert clean_values.tolist() == patchy_values[:400].tolist() and np.isnan(patchy_values[400:]).all()
    assert clean_values[:4].tolist() == [1.5, 2.0, 300.0, -0.25]


def test_whole_numbers_with_few_values_are_discrete() -> None:
    rng = np.random.default_rng(1)
    assert infer_kind(pa.array(rng.integers(0, 2, N))) == "boolean"
    assert infer_kind(pa.array([0.0, 1.0, None] * 300)) == "boolean"  # pandas' integer-with-missing floats
    assert infer_kind(pa.array(rng.integers(0, 10, N))) == "categorical"
    assert infer_kind(text([str(v) for v in rng.integers(0, 10, N)])) == "categorical"
    assert infer_kind(pa.array(rng.integers(0, 10_000, N))) == "numeric"
    assert infer_kind(pa.array(rng.integers(0, 10, 100))) == "numeric"  # 10 values in 100 rows: not sparse
    assert infer_kind(pa.array(rng.normal(size=N))) == "numeric"
    assert infer_kind(pa.array([True, None])) == "boolean"
    assert infer_kind(pa.array([[1], [2]])) is None


def test_overrides_beat_inference_and_the_key_rules() -> None:
    table = mixed_table()
    pair = encode_pair(table, table, kinds={"level": "numeric", "id": "categorical", "flag": "categorical"})
    assert pair.inputs["kinds"]["level"] == "numeric" and pair.reference.values["level"].dtype == np.float64
    assert pair.inputs["kinds"]["id"] == "categorical" and "id" not in pair.excluded["keys"]
    assert pair.reference.levels["flag"] == ("0", "1")
    assert pair.inputs["overridden"] == ["flag", "id", "level"]


@pytest.mark.parametrize(("kinds", "message"), [({"x": "ordinal"}, "'ordinal' for column 'x' is not a column kind"),
                                                ({"nope": "numeric"}, "column 'nope' is in neither table")])
def test_bad_overrides_are_config_errors(kinds: dict, message: str) -> None:
    table = mixed_table()
    with pytest.raises(ConfigError, match=message):
        encode_pair(table, table, kinds=kinds)


# --- left-out columns ---------------------------------------------------------------------------


def test_keys_and_free_text_are_left_out_and_listed() -> None:
    rng = np.random.default_rng(2)
    table = mixed_table()
    for name, column in (("row", pa.array(np.arange(N))), ("account_id", pa.array(rng.integers(0, 700, N))),
                         ("cityId", text([f"c{i % 600}" for i in range(N)]))):
        table = table.append_column(name, column)
    pair = encode_pair(table, table)
    assert pair.excluded["keys"] == ["account_id", "cityId", "id", "row"]
    assert pair.excluded["text"] == ["note"]
    assert pair.inputs["excluded"] == pair.excluded
    assert pair.schema.compared == ("flag", "grade", "level", "when", "x")  # unique floats are measurements
    assert set(pair.reference.names) == set(pair.schema.compared)


def test_a_declared_target_or_order_column_is_never_left_out() -> None:
    table = mixed_table().append_column("step", pa.array(np.arange(N)))
    pair = encode_pair(table, table, target="id", order="step")
    assert pair.reference.target == "id" and pair.candidate.order == "step"
    assert {"id", "step"} <= set(pair.reference.names)
    assert pair.excluded["keys"] == []


def test_empty_and_unsupported_columns_are_left_out() -> None:
    table = pa.table({"x": np.arange(N) / 3, "blank": pa.nulls(N), "vec": pa.array([[1.0]] * N)})
    pair = encode_pair(table, table)
    assert (pair.excluded["empty"], pair.excluded["unsupported"]) == (["blank"], ["vec"])


# --- schema comparison --------------------------------------------------------------------------


def test_a_mismatched_schema_is_reported_not_raised() -> None:
    reference = mixed_table(0)
    candidate = mixed_table(1).drop_columns(["grade"]).append_column("new", pa.array(np.ones(N)))
    candidate = candidate.set_column(candidate.schema.get_field_index("x"), "x", text(["lots"] * N))
    pair = encode_pair(reference, candidate)
    assert pair.schema.as_dict() == {
        "matches": False, "compared": ["flag", "level", "when"], "missing": ["grade"], "extra": ["new"],
        "retyped": {"x": {"reference": "numeric", "candidate": "categorical"}}}
    assert pair.candidate.names == pair.reference.names == ["flag", "level", "when"]


def test_a_collapsed_candidate_keeps_the_reference_kind() -> None:
    reference = mixed_table(0)
    candidate = mixed_table(1)
    collapsed = {"x": pa.array(np.where(np.arange(N) % 2, 1.0, 0.0)), "grade": text(["a"] * N),
                 "level": pa.array(np.full(N, 3.0)), "when": text(["2024-01-01T00:00:00Z"] * N)}
    for name, column in collapsed.items():
        candidate = candidate.set_column(candidate.schema.get_field_index(name), name, column)
    pair = encode_pair(reference, candidate)
    assert pair.schema.matches and pair.inputs["kinds"]["x"] == "numeric"
    assert pair.inputs["kinds"]["level"] == "categorical"
    assert set(np.unique(pair.candidate.values["x"])) == {0.0, 1.0}


# --- encoding -----------------------------------------------------------------------------------


def test_discrete_codes_mean_the_same_level_on_both_sides() -> None:
    reference = pa.table({"c": text(["b", "a", None] * 400), "k": pa.array([2, 10, 3] * 400),
                          "f": text(["yes", "no", "no"] * 400)})
    candidate = pa.table({"c": text(["c", "a", "a"] * 400), "k": text(["10", "10", "3"] * 400),
                          "f": pa.array([True, True, None] * 400)})
    pair = encode_pair(reference, candidate)
    assert pair.reference.levels["c"] == pair.candidate.levels["c"] == ("a", "b", "c")
    assert pair.reference.values["c"][:3].tolist() == [1, 0, -1]
    assert pair.candidate.values["c"][:3].tolist() == [2, 0, 0]
    assert pair.reference.levels["k"] == ("2", "3", "10")  # numbers sort as numbers
    assert pair.candidate.values["k"][:3].tolist() == [2, 2, 1]
    assert pair.reference.levels["f"] == ("false", "true")
    assert pair.reference.values["f"][:3].tolist() == [1, 0, 0]
    assert pair.candidate.values["f"][:3].tolist() == [1, 1, -1]
    assert all(values.dtype == np.int32 for values in pair.candidate.values.values())


def test_number_levels_are_spelled_one_way_on_both_sides() -> None:
    reference = pa.table({"k": pa.array([1, 2, 3] * 400)})
    candidate = pa.table({"k": text(["1", " 02", "NA", "3.0"] * 300)})  # text, as a CSV delivers it
    pair = encode_pair(reference, candidate)
    assert pair.reference.levels["k"] == ("1", "2", "3")
    assert pair.candidate.values["k"][:4].tolist() == [0, 1, -1, 2]


def test_datetimes_are_utc_seconds_whatever_their_form() -> None:
    instants = ["2024-01-01T02:00:00+02:00", "2024-01-01 00:00:00", None] * 10
    reference = pa.table({"t": text(instants)})
    stamp = pd.Timestamp("2024-01-01", tz="UTC")
    candidate = pa.table({"t": pa.array([stamp, stamp.tz_localize(None), None] * 10)})
    pair = encode_pair(reference, candidate)
    assert pair.inputs["kinds"] == {"t": "datetime"}
    expected = stamp.timestamp()
    for frame in (pair.reference, pair.candidate):
        assert frame.values["t"][0] == frame.values["t"][1] == expected and np.isnan(frame.values["t"][2])


def test_target_and_order_are_kept_and_checked() -> None:
    table = mixed_table()
    pair = encode_pair(table, table, target="grade", order="when")
    assert (pair.reference.target, pair.reference.order) == ("grade", "when")
    assert "grade" not in pair.reference.features()
    with pytest.raises(ConfigError, match="target: column 'y' is not in the reference"):
        encode_pair(table, table, target="y")
    with pytest.raises(ConfigError, match="order: column 'grade' is categorical; an order column must be numeric"):
        encode_pair(table, table, order="grade")
    candidate = table.set_column(table.schema.get_field_index("x"), "x", text(["word"] * N))
    with pytest.raises(ConfigError, match="target: column 'x' is numeric in the reference but reads as categorical"):
        encode_pair(table, candidate, target="x")
    with pytest.raises(ConfigError, match="target: column 'grade' is not in the candidate"):
        encode_pair(table, table.drop_columns(["grade"]), target="grade")


# --- load_pair and fingerprints -----------------------------------------------------------------


def write_both(folder: Path) -> None:
    """The same table as reference.csv (text) and candidate.parquet (native types)."""
    frame = mixed_table().to_pandas()
    frame.to_csv(folder / "reference.csv", index=False)
    frame.to_parquet(folder / "candidate.parquet")


def test_load_pair_records_each_side_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_both(tmp_path)
    pair = load_pair("candidate.parquet", "reference.csv", target="flag")
    reference, candidate = pair.inputs["reference"], pair.inputs["candidate"]
    assert {key: reference[key] for key in ("source", "format", "rows", "bad_rows")} == {
        "source": "reference.csv", "format": "csv", "rows": N, "bad_rows": 0}
    assert (candidate["source"], candidate["format"]) == ("candidate.parquet", "parquet")
    assert reference["sha256"] == candidate["sha256"]  # the same values, whether read from text or Parquet
    assert str(tmp_path) not in repr(pair.inputs)


def test_fingerprints_are_deterministic_and_follow_the_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_both(tmp_path)
    first = load_pair("candidate.parquet", "reference.csv")
    again = load_pair("candidate.parquet", "reference.csv")
    assert first.inputs == again.inputs
    changed = first.candidate.values["x"].copy()
    changed[5] += 1e-9
    nudged = type(first.candidate)(first.candidate.kinds, {**first.candidate.values, "x": changed},
                                   first.candidate.levels)
    assert fingerprint(nudged) != fingerprint(first.candidate)


def _wide_files(folder: Path) -> None:
    """A wide planted pair as Parquet in several row groups; the candidate lacks `heavy` and adds `extra`."""
    from dmas.quality import planted

    reference = planted.wide_table(3000, 0)
    candidate = planted.variance_shrink(reference, 0.9, 1, candidate=planted.wide_table(3000, 1))
    candidate = candidate.drop(columns=["heavy"]).assign(extra=np.arange(3000) % 7)
    reference.to_parquet(folder / "reference.parquet", index=False, row_group_size=700)
    candidate.to_parquet(folder / "candidate.parquet", index=False, row_group_size=700)


def test_load_pair_encodes_what_encode_pair_encodes(tmp_path: Path) -> None:
    from dmas.quality.tables import load_table

    _wide_files(tmp_path)
    paths = str(tmp_path / "candidate.parquet"), str(tmp_path / "reference.parquet")
    loaded = load_pair(*paths, target="target", order="t", kinds={"visits": "numeric"})
    tables = load_table(paths[1]).table, load_table(paths[0]).table
    encoded = encode_pair(*tables, target="target", order="t", kinds={"visits": "numeric"})
    assert loaded.schema == encoded.schema and loaded.excluded == encoded.excluded
    assert loaded.schema.missing == ("heavy",) and loaded.schema.extra == ("extra",)
    for side in ("reference", "candidate"):
        assert {k: v for k, v in loaded.inputs[side].items() if k in ("rows", "sha256")} == encoded.inputs[side]
    assert {k: v for k, v in loaded.inputs.items() if k not in ("reference", "candidate")} == \
        {k: v for k, v in encoded.inputs.items() if k not in ("reference", "candidate")}
    assert loaded.reference.levels == encoded.reference.levels and loaded.reference.kinds == encoded.reference.kinds


def test_load_pair_frees_each_column_of_the_tables_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow memory of the tables read falls as their columns are encoded and never grows by a second
    copy of them. (It falls in steps: a reader's pandas chunk keeps its float columns in one shared block.)"""
    from dmas.quality import columns

    _wide_files(tmp_path)
    held, read = [], columns._Column.__init__

    def counting(self, column):
        held.append(pa.total_allocated_bytes())
        read(self, column)

    monkeypatch.setattr(columns._Column, "__init__", counting)
    load_pair(str(tmp_path / "candidate.parquet"), str(tmp_path / "reference.parquet"), target="target", order="t")
    assert len(held) == 2 * 21 + 1  # both sides of every shared column, and `heavy` of the reference
    assert max(held) < 1.1 * held[0]
    assert held[-1] < 0.7 * held[0]
