"""The store works from Ray workers: nothing assumes the writer is the driver process."""

import pytest

from dmas.store import Store


@pytest.mark.slow
def test_ingest_inside_ray_tasks_is_seen_by_the_driver(local_ray, tmp_path, write):
    entities = write("entities.csv", "entity_id,attributes\na,{}\nb,{}\n")
    events = write("events.csv", "entity_id,timestamp,event_type,event_value\na,2024-01-01T00:00:00Z,x,1\n")
    uri = str(tmp_path / "store")

    @local_ray.remote
    def ingest(kind: str, path: str) -> dict:
        from dmas.ingest.tabular import ingest_table

        return ingest_table(Store(uri), kind, path)

    assert local_ray.get(ingest.remote("entities", str(entities)))["inserted_rows"] == 2
    # the same file ingested by several tasks at once: exactly one inserts, the others find it there
    reports = local_ray.get([ingest.remote("events", str(events)) for _ in range(4)])
    assert sorted(r["inserted_rows"] for r in reports) == [0, 0, 0, 1]
    assert Store(uri).table("events").read().num_rows == 1
