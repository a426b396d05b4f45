"""Tests of the synthetic data generator: determinism, valid files, duplicates, targets and signal."""

from __future__ import annotations

import hashlib
import json
import wave
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dmas import synth_media
from dmas.errors import ConfigError
from dmas.synth import ARTIFACT_TYPES, SynthResult, generate

ATTRIBUTE_NAMES = ["age", "tenure_months", "income", "sessions_per_week", "credit_score", "household_size"]


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, keyed by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _small(out: Path, seed: int = 0) -> SynthResult:
    """A small dataset that still has every media type and some duplicates."""
    return generate(out, n_entities=60, seed=seed, events_per_entity=8, audio_fraction=0.5,
                    video_fraction=0.3, duplicate_fraction=0.2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The default-size dataset, generated once for the checks that only read it."""
    return generate(tmp_path_factory.mktemp("synth") / "data", seed=7)


@pytest.fixture(scope="module")
def entities(dataset: SynthResult) -> pd.DataFrame:
    """entities.csv with its JSON attributes expanded into columns."""
    table = pd.read_csv(dataset.entities_path)
    attributes = pd.DataFrame([json.loads(a) for a in table["attributes"]])
    return pd.concat([table[["entity_id"]], attributes], axis=1)


def _fit(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """In-sample predictions of an ordinary least-squares fit with intercept."""
    design = np.column_stack([np.ones(len(target)), features])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return design @ coef


def _r2(features: np.ndarray, target: np.ndarray) -> float:
    """In-sample R^2 of an ordinary least-squares fit with intercept."""
    return 1.0 - (target - _fit(features, target)).var() / target.var()


def _neighbour_mean(interactions: pd.DataFrame, ids: pd.Series, values: np.ndarray) -> np.ndarray:
    """Mean of `values` over each entity's interaction partners, both directions (what a graph encoder sees)."""
    by_id = pd.Series(values, index=ids)
    pairs = pd.concat([
        pd.DataFrame({"me": interactions["src_entity_id"], "other": interactions["dst_entity_id"]}),
        pd.DataFrame({"me": interactions["dst_entity_id"], "other": interactions["src_entity_id"]}),
    ])
    pairs["value"] = by_id.reindex(pairs["other"]).to_numpy()
    return pairs.groupby("me")["value"].mean().reindex(ids).fillna(by_id.mean()).to_numpy()


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = _small(tmp_path / "a")
    _small(tmp_path / "b")
    _small(tmp_path / "c", seed=1)
    assert first.n_duplicate_media > 0 and first.artifacts_by_type["video"] > 0
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    for name in ["entities.csv", "events.csv", "interactions.csv", "artifacts.csv"]:
        assert a[name] != c[name]
    assert a.get("media/img_000000.png") != c.get("media/img_000000.png")  # stock images are shared by design
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_media_file_opens_and_manifest_paths_stay_inside(tmp_path: Path) -> None:
    result = _small(tmp_path / "d")
    manifest = pd.read_csv(result.artifacts_path)
    root = result.out_dir.resolve()
    assert sorted(manifest["path"]) == sorted(f"media/{p.name}" for p in (root / "media").iterdir())
    assert set(manifest["artifact_type"]) == set(ARTIFACT_TYPES)
    assert manifest["artifact_type"].value_counts().to_dict() == dict(result.artifacts_by_type)
    for row in manifest.itertuples():
        path = (root / row.path).resolve()
        assert path.is_relative_to(root) and path.is_file()
        assert isinstance(json.loads(row.metadata), dict)
        if row.artifact_type == "image":
            with Image.open(path) as image:
                image.load()
                assert image.format == ("PNG" if path.suffix == ".png" else "JPEG")
        elif row.artifact_type == "audio":
            with wave.open(str(path)) as audio:
                assert audio.getnframes() > 0
        else:
            with av.open(str(path)) as video:
                assert sum(1 for _ in video.decode(video=0)) >= 1


def test_duplicates_are_byte_identical_copies_with_one_row_per_entity(tmp_path: Path) -> None:
    result = _small(tmp_path / "e")
    manifest = pd.read_csv(result.artifacts_path)
    manifest["sha256"] = [hashlib.sha256((result.out_dir / p).read_bytes()).hexdigest() for p in manifest["path"]]
    assert result.n_duplicate_media == len(manifest) - manifest["sha256"].nunique()
    shared = manifest[manifest["sha256"].duplicated(keep=False)]
    assert not shared.empty and shared["path"].is_unique
    assert set(shared["metadata"].map(lambda m: json.loads(m)["source"])) <= {"stock", "jingle"}
    assert not manifest.duplicated(["entity_id", "artifact_type"]).any()


def test_tables_reference_known_entities_and_timestamps_are_consistent(dataset: SynthResult) -> None:
    ids = set(pd.read_csv(dataset.entities_path)["entity_id"])
    events = pd.read_csv(dataset.events_path)
    interactions = pd.read_csv(dataset.interactions_path)
    assert len(ids) == dataset.n_entities and len(events) == dataset.n_events
    assert set(events["entity_id"]) <= ids
    assert set(interactions["src_entity_id"]) | set(interactions["dst_entity_id"]) <= ids
    assert (interactions["src_entity_id"] != interactions["dst_entity_id"]).all()
    assert events["timestamp"].str.endswith("Z").mean() > 0.7
    assert events["timestamp"].str.contains(r"[+-]\d\d:\d\d$").any()
    instants = pd.to_datetime(events["timestamp"], utc=True, format="ISO8601")
    assert instants.min() >= pd.Timestamp("2024-01-01", tz="UTC")
    assert instants.max() < pd.Timestamp("2024-06-29", tz="UTC")


def test_targets_have_promised_ranges(entities: pd.DataFrame) -> None:
    assert set(entities["target_binary"]) == {0, 1}
    assert 0.3 <= entities["target_binary"].mean() <= 0.5
    assert set(entities["target_ranking"]) == {0, 1, 2, 3, 4}
    assert np.isfinite(entities["target_regression"]).all()
    assert entities["target_regression"].std() > 0.5


def test_events_media_and_graph_each_add_signal_beyond_attributes(dataset: SynthResult,
                                                                  entities: pd.DataFrame) -> None:
    events = pd.read_csv(dataset.events_path)
    purchases = events[events["event_type"] == "purchase"].assign(log_value=lambda e: np.log(e["event_value"]))
    purchase_level = (purchases.groupby("entity_id")["log_value"].mean()
                      .reindex(entities["entity_id"]).fillna(purchases["log_value"].mean()).to_numpy())

    manifest = pd.read_csv(dataset.artifacts_path)
    images = manifest[(manifest["artifact_type"] == "image") & (manifest["metadata"].str.contains("camera"))]
    brightness = pd.Series({row.entity_id: np.asarray(Image.open(dataset.out_dir / row.path).convert("L")).mean()
                            for row in images.itertuples()}).reindex(entities["entity_id"])
    brightness = brightness.fillna(brightness.mean()).to_numpy()

    attributes = entities[ATTRIBUTE_NAMES].assign(income=np.log(entities["income"])).to_numpy()
    target = entities["target_regression"].to_numpy()
    base = _r2(attributes, target)
    fitted = _fit(attributes, target)
    neighbour_fitted = _neighbour_mean(pd.read_csv(dataset.interactions_path), entities["entity_id"], fitted)
    assert _r2(np.column_stack([attributes, purchase_level]), target) > base + 0.1
    assert _r2(np.column_stack([attributes, brightness]), target) > base + 0.1
    assert _r2(np.column_stack([attributes, neighbour_fitted]), target) > base + 0.05


def test_rejects_non_empty_folder_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        generate(tmp_path / "full", n_entities=5)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    with pytest.raises(ConfigError, match="video_fraction"):
        generate(tmp_path / "x", n_entities=5, video_fraction=1.5)
    with pytest.raises(ConfigError, match="n_entities"):
        generate(tmp_path / "x", n_entities=1, interactions_per_entity=2)
    (tmp_path / "empty").mkdir()
    assert generate(tmp_path / "empty", n_entities=1, interactions_per_entity=0).n_interactions == 0


def test_a_crash_leaves_nothing_under_the_final_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_encoder(frames: np.ndarray) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(synth_media, "encode_mp4", broken_encoder)
    with pytest.raises(OSError, match="disk full"):
        generate(tmp_path / "out", n_entities=20, video_fraction=1.0)
    assert list(tmp_path.iterdir()) == []
