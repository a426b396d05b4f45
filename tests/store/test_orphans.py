"""Orphaned data files (a killed writer's) are removed; files any version names, and young files, stay."""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from dmas.cli import main
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from tests.big_tables import write_entities_and_events

DAY = 24 * 3600


def _entities(store, rows):
    return pa.table({"entity_id": [r[0] for r in rows], "attributes": [r[1] for r in rows]},
                    schema=store.table("entities").spec.schema)


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _plant_orphans(table_folder: Path) -> tuple[Path, Path]:
    """Copies of a data file under names no version has: one as a killed writer's of two days ago
    (staged, '#1'), one as a running writer's."""
    source = _data_files(table_folder)[0]
    old = table_folder / "part-00000-0b1d6e5e-0000-4000-8000-000000000001-c000.snappy.parquet#1"
    young = table_folder / "part-00000-0b1d6e5e-0000-4000-8000-000000000002-c000.snappy.parquet"
    shutil.copy(source, old)
    shutil.copy(source, young)
    _age(old, 2 * DAY)
    return old, young


def test_old_orphans_go_young_files_and_every_version_stay(store, tmp_path):
    entities = store.table("entities")
    for value in range(3):  # each update replaces the data file: older versions name the old ones
        entities.upsert(_entities(store, [("a", f'{{"x":{value}}}'), ("b", "{}")]), {})
    folder = tmp_path / "store" / "tables" / "entities"
    for path in _data_files(folder):
        _age(path, 2 * DAY)
    old, young = _plant_orphans(folder)
    versions = {version: entities.read(version=version) for version in range(4)}

    removed = entities.remove_orphans()

    assert [r.path for r in removed] == [old.name] and removed[0].size_bytes > 0
    assert not old.exists() and young.exists()
    assert all(entities.read(version=version).equals(table) for version, table in versions.items())


def test_files_named_only_by_a_checkpoint_stay(store, tmp_path):
    entities = store.table("entities")
    for value in range(3):
        entities.upsert(_entities(store, [("a", f'{{"x":{value}}}')]), {})
    DeltaTable(entities.uri).create_checkpoint()  # of version 3
    entities.upsert(_entities(store, [("a", '{"x":9}')]), {})
    log = tmp_path / "store" / "tables" / "entities" / "_delta_log"
    for commit in sorted(log.glob("*.json"))[:-1]:  # what Delta's log clean-up does after a checkpoint
        commit.unlink()
    for path in _data_files(tmp_path / "store" / "tables" / "entities"):
        _age(path, 2 * DAY)
    as_of_3, latest = entities.read(version=3), entities.read()  # version 3's file: named by the checkpoint only

    assert entities.remove_orphans(grace=timedelta(0)) == []
    assert entities.read(version=3).equals(as_of_3) and entities.read().equals(latest)


def test_the_next_commit_removes_orphans(store, tmp_path, write):
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\na,{}\n"))
    old, young = _plant_orphans(tmp_path / "store" / "tables" / "entities")
    ingest_table(store, "entities", write("f.csv", "entity_id,attributes\nb,{}\n"))
    assert not old.exists() and young.exists()
    assert store.table("entities").read().column("entity_id").to_pylist() == ["a", "b"]


def test_store_vacuum_prints_what_it_removed(store, tmp_path, write, capsys):
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\na,{}\n"))
    old, young = _plant_orphans(tmp_path / "store" / "tables" / "entities")
    size = old.stat().st_size

    assert main(["store", "vacuum", "--store", str(tmp_path / "store"), "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["grace_hours"] == 24 and result["files_removed"] == 1
    assert result["tables"]["entities"] == {"files_removed": 1, "bytes_removed": size, "removed": [old.name]}
    assert result["tables"]["events"] == {"files_removed": 0, "bytes_removed": 0, "removed": []}
    assert young.exists()

    assert main(["store", "vacuum", "--store", str(tmp_path / "store"), "--grace-hours", "0", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["tables"]["entities"]["removed"] == [young.name]
    assert store.table("entities").read().column("entity_id").to_pylist() == ["a"]


def test_vacuum_refuses_a_negative_grace(tmp_path, capsys):
    assert main(["store", "vacuum", "--store", str(tmp_path / "s"), "--grace-hours", "-1"]) == 2
    assert "--grace-hours" in capsys.readouterr().err


@pytest.mark.slow
def test_vacuum_while_another_process_writes_keeps_its_files(tmp_path):
    n = 2_000_000
    write_entities_and_events(tmp_path, n)
    store = Store(tmp_path / "store")
    ingest_table(store, "entities", tmp_path / "entities.csv")
    events = store.table("events")
    folder = tmp_path / "store" / "tables" / "events"

    writer = subprocess.Popen([sys.executable, "-m", "dmas.cli", "ingest", "events", str(tmp_path / "events.csv"),
                               "--store", str(tmp_path / "store"), "--quiet"], stdout=subprocess.DEVNULL)
    seen_in_flight = 0
    while writer.poll() is None:
        listed = _data_files(folder)
        if listed and events.version() == 0:  # listed before the commit: the writer's files in flight
            seen_in_flight += 1
            assert events.remove_orphans() == []
        time.sleep(0.001)

    assert writer.returncode == 0
    assert seen_in_flight > 0, "the writer committed before its files could be seen"
    assert events.read().num_rows == n
