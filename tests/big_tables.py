"""Large deterministic table files, for tests that need an ingest to take a while (to kill it mid-write)."""

from pathlib import Path

import numpy as np
import pandas as pd


def write_entities_and_events(folder: Path, n_events: int, n_entities: int = 500) -> tuple[Path, Path]:
    """`entities.csv` and `events.csv` in `folder`: one event a second from 2024-01-01, entities in turn."""
    ids = np.array([f"e{i}" for i in range(n_entities)])
    pd.DataFrame({"entity_id": ids, "attributes": "{}"}).to_csv(folder / "entities.csv", index=False)
    stamps = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n_events), unit="s")
    pd.DataFrame({"entity_id": ids[np.arange(n_events) % n_entities],
                  "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_type": "a",
                  "event_value": np.arange(n_events) % 7}).to_csv(folder / "events.csv", index=False)
    return folder / "entities.csv", folder / "events.csv"
