"""Small configs and synthetic batches for the model tests, as fixtures; padding can be filled with garbage."""

from __future__ import annotations

import pytest
import torch

from dmas.model import ModelConfig
from tests.padding import fill_padding_with_garbage

SMALL = {"n_attributes": 6, "n_event_types": 5, "n_interaction_types": 3,
         "artifact_dims": {1: 12, 2: 7, 3: 9}, "max_events": 12}

def _small_config(**overrides) -> ModelConfig:
    return ModelConfig(**{**SMALL, **overrides})


def _slots(size: int, n: int, align: str) -> slice:
    return slice(0, n) if align == "left" else slice(size - n, size)


def _make_batch(config: ModelConfig, counts: list[tuple[int, int, int]], *, length: int | None = None,
               neighbors: int = 4, artifacts: int = 3, seed: int = 0, align: str = "left") -> dict:
    """One entity per (events, neighbours, artifacts) count; real items left- or right-aligned.

    An entity's real content depends only on `seed` and its position, never on `align` or `length`.
    """
    length = length or config.max_events
    n, a, d = len(counts), config.n_attributes, config.artifact_vector_dim
    types = sorted(config.artifact_dims)
    batch = {
        "attributes": torch.zeros(n, a),
        "event_type": torch.zeros(n, length, dtype=torch.int64),
        "event_value": torch.zeros(n, length),
        "event_dt_prev": torch.zeros(n, length),
        "event_age": torch.zeros(n, length),
        "event_mask": torch.zeros(n, length, dtype=torch.bool),
        "neighbor_attributes": torch.zeros(n, neighbors, a),
        "neighbor_type": torch.zeros(n, neighbors, dtype=torch.int64),
        "neighbor_value": torch.zeros(n, neighbors),
        "neighbor_mask": torch.zeros(n, neighbors, dtype=torch.bool),
        "artifact_vector": torch.zeros(n, artifacts, d),
        "artifact_type": torch.zeros(n, artifacts, dtype=torch.int64),
        "artifact_mask": torch.zeros(n, artifacts, dtype=torch.bool),
    }
    for i, (n_events, n_neighbors, n_artifacts) in enumerate(counts):
        g = torch.Generator().manual_seed(seed * 10_000 + i)
        batch["attributes"][i] = torch.randn(a, generator=g)
        ev = _slots(length, n_events, align)
        batch["event_type"][i, ev] = torch.randint(1, config.n_event_types + 1, (n_events,), generator=g)
        batch["event_value"][i, ev] = torch.randn(n_events, generator=g)
        batch["event_dt_prev"][i, ev] = torch.rand(n_events, generator=g) * 10
        batch["event_age"][i, ev] = torch.rand(n_events, generator=g) * 15
        batch["event_mask"][i, ev] = True
        nb = _slots(neighbors, n_neighbors, align)
        batch["neighbor_attributes"][i, nb] = torch.randn(n_neighbors, a, generator=g)
        batch["neighbor_type"][i, nb] = torch.randint(1, config.n_interaction_types + 1, (n_neighbors,), generator=g)
        batch["neighbor_value"][i, nb] = torch.randn(n_neighbors, generator=g)
        batch["neighbor_mask"][i, nb] = True
        art = _slots(artifacts, n_artifacts, align)
        kinds = torch.tensor(types)[torch.randint(0, len(types), (n_artifacts,), generator=g)]
        lengths = torch.tensor([config.artifact_dims[int(t)] for t in kinds])
        vectors = torch.randn(n_artifacts, d, generator=g) * (torch.arange(d) < lengths[:, None])
        batch["artifact_vector"][i, art] = vectors
        batch["artifact_type"][i, art] = kinds
        batch["artifact_mask"][i, art] = True
    return batch


def _scramble_padding(batch: dict, config: ModelConfig, seed: int = 1) -> dict:
    """A copy of `batch` with every padded entry (and each artifact row past its type's length) replaced
    by garbage: large values, NaN and out-of-range types."""
    g = torch.Generator().manual_seed(seed)
    out = {key: value.clone() for key, value in batch.items()}
    fill_padding_with_garbage(out, g, nan_share=0.2)
    for artifact_type, dim in config.artifact_dims.items():
        of_type = out["artifact_mask"] & (out["artifact_type"] == artifact_type)
        tail = out["artifact_vector"][..., dim:]
        tail[of_type] = torch.randn(tail[of_type].shape, generator=g) * 100
    return out


@pytest.fixture(params=["attention", "spectral", "resonance", "eigenstate"])
def mixer(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""


@pytest.fixture
def small_config():
    """small_config(**overrides) -> a ModelConfig with 6 attributes, 12 events and short artifact vectors."""
    return _small_config


@pytest.fixture
def make_batch():
    """make_batch(config, [(events, neighbours, artifacts), ...], ...) -> a batch following BATCH_SPEC."""
    return _make_batch


@pytest.fixture
def scramble_padding():
    """scramble_padding(batch, config, seed) -> a copy with garbage in every padded entry."""
    return _scramble_padding
