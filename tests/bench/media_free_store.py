"""A benchmark's store: synthetic entities without media, built once into a folder and reused, with one run."""

from __future__ import annotations

import tempfile
from pathlib import Path


def media_free_store(folder: str | None, prefix: str, entities: int):
    """(root folder, store, run_id): the store under `folder` (built there with `entities` synthetic
    entities, 5 events each, when it has none yet) and its latest completed run (trained once, 1 epoch)."""
    from conftest import build_synthetic_store

    from dmas.config import load_settings
    from dmas.store import Store
    from dmas.store.runs import RunRegistry
    from dmas.train.config import TrainConfig
    from dmas.train.runner import train_run

    root = Path(folder or tempfile.mkdtemp(prefix=prefix))
    if (root / "store").exists():
        store = Store(root / "store")
    else:
        store = build_synthetic_store(root, n_entities=entities, seed=0, events_per_entity=5,
                                      image_fraction=0.0, audio_fraction=0.0, video_fraction=0.0)
    run = RunRegistry(store).latest_completed()
    run_id = run.run_id if run else train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=1),
                                              use_ray=False)["run_id"]
    return root, store, run_id
