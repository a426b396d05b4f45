"""Benchmark: training on 10,000 entities with 50 events, 5 neighbours and 2 artifacts each.

Measured in one run: tensorisation time; seconds per epoch and entities/s of the plain loop in
deterministic mode and in non-deterministic mode (their ratio is the cost of determinism); and
the same epochs through Ray Train, whose extra wall time over the plain loop is its start-up
overhead. Prints one JSON line:

    .venv/bin/python tests/bench/bench_train.py [--entities 10000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def build_store(folder: Path, entities: int):
    """Synthetic data shaped as the issue asks, ingested and with features (extracted in-process)."""
    from dmas.config import load_settings
    from dmas.features.pipeline import extract_pending
    from dmas.ingest.artifacts import ingest_artifact_manifest
    from dmas.ingest.tabular import ingest_table
    from dmas.store import Store
    from dmas.synth import generate

    data = generate(folder / "synth", n_entities=entities, seed=0, events_per_entity=50,
                    interactions_per_entity=3, image_fraction=1.0, audio_fraction=1.0, video_fraction=0.0)
    store = Store(folder / "store")
    for kind, path in (("entities", data.entities_path), ("events", data.events_path),
                       ("interactions", data.interactions_path)):
        ingest_table(store, kind, path)
    ingest_artifact_manifest(store, data.artifacts_path)
    extract_pending(store, load_settings(store_uri=store.uri), use_ray=False)
    return store


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    import ray

    from dmas.config import load_settings
    from dmas.store.runs import RunRegistry
    from dmas.train.config import TrainConfig
    from dmas.train.runner import fit, fit_locally, pin_data
    from dmas.train.tensorize import tensorize

    with tempfile.TemporaryDirectory() as folder:
        store, setup_s = timed(lambda: build_store(Path(folder), args.entities))
        settings = load_settings(store_uri=store.uri)
        deterministic = TrainConfig(epochs=args.epochs, batch_size=256)
        manifest = pin_data(store, settings, deterministic)
        tensors, tensorize_s = timed(lambda: tensorize(store, manifest, deterministic.tensorize, deterministic.seed))
        train_rows = len(tensors.indices("train"))
        shapes = {key: list(value.shape) for key, value in tensors.arrays.items() if key.startswith(("event_t",
                                                                                                  "neighbor_t",
                                                                                                  "artifact_t"))}
        filled = {"events_per_entity": float(tensors.arrays["event_mask"].sum(1).mean()),
                  "neighbors_per_entity": float(tensors.arrays["neighbor_mask"].sum(1).mean()),
                  "artifacts_per_entity": float(tensors.arrays["artifact_mask"].sum(1).mean())}
        plain, plain_s = timed(lambda: fit_locally(tensors, deterministic))
        free = deterministic.model_copy(update={"deterministic": False})
        _, free_s = timed(lambda: fit_locally(tensors, free))
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2)
        through_ray, ray_s = timed(lambda: fit(store.uri, manifest, deterministic,
                                               RunRegistry(store).folder(".ray_train"), "bench"))
        ray.shutdown()
    print(json.dumps({
        "bench": "train",
        "entities": args.entities, "train_entities": train_rows, "epochs": args.epochs,
        "filled_slots": {key: round(value, 2) for key, value in filled.items()}, "shapes": shapes,
        "data_setup_s": round(setup_s, 1),
        "tensorize_s": round(tensorize_s, 2),
        "deterministic_s_per_epoch": round(plain_s / args.epochs, 3),
        "deterministic_entities_per_s": round(train_rows * args.epochs / plain_s),
        "nondeterministic_s_per_epoch": round(free_s / args.epochs, 3),
        "determinism_cost_ratio": round(plain_s / free_s, 2),
        "ray_train_total_s": round(ray_s, 2),
        "ray_train_overhead_s": round(ray_s - plain_s, 2),
        "ray_train_same_weights_as_plain_loop": through_ray.weights == plain.weights,
        "training_log_last": plain.training_log[-1],
    }))


if __name__ == "__main__":
    main()
