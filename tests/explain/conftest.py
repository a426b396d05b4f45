"""Small models trained briefly on synthetic entities (so attributions are not those of a random init), as fixtures."""

from __future__ import annotations

import functools

import pytest
import torch

from dmas.model import FullModel, ModelConfig, multitask_loss
from tests.padding import fill_padding_with_garbage

SMALL = {"n_attributes": 6, "n_event_types": 5, "n_interaction_types": 3, "artifact_dims": {1: 12, 2: 7},
         "max_events": 12}
NEIGHBORS, ARTIFACTS = 4, 2
TRAIN_STEPS = 300


def _config(**overrides) -> ModelConfig:
    return ModelConfig(**{**SMALL, **overrides})


def _entities(config: ModelConfig, n: int, seed: int, *, align: str = "left", garbage: bool = False) -> dict:
    """n random entities with random counts of events, neighbours and artifacts, plus targets that depend on
    every modality. Real items sit left or right; with `garbage`, padding holds huge values, NaN and bad types."""
    g = torch.Generator().manual_seed(seed)
    length, a, d = config.max_events, config.n_attributes, config.artifact_vector_dim

    def mask(size: int) -> torch.Tensor:
        counts = torch.randint(0, size + 1, (n, 1), generator=g)
        slots = torch.arange(size) if align == "left" else torch.arange(size).flip(0)
        return slots < counts

    events, neighbors, artifacts = mask(length), mask(NEIGHBORS), mask(ARTIFACTS)
    kinds = torch.tensor(sorted(config.artifact_dims))[torch.randint(0, len(config.artifact_dims), (n, ARTIFACTS),
                                                                     generator=g)]
    lengths = torch.tensor([[config.artifact_dims[int(t)] for t in row] for row in kinds])
    batch = {
        "attributes": torch.randn(n, a, generator=g),
        "event_type": torch.randint(1, config.n_event_types + 1, (n, length), generator=g),
        "event_value": torch.randn(n, length, generator=g),
        "event_dt_prev": torch.rand(n, length, generator=g) * 10,
        "event_age": torch.rand(n, length, generator=g) * 15,
        "event_mask": events,
        "neighbor_attributes": torch.randn(n, NEIGHBORS, a, generator=g),
        "neighbor_type": torch.randint(1, config.n_interaction_types + 1, (n, NEIGHBORS), generator=g),
        "neighbor_value": torch.randn(n, NEIGHBORS, generator=g),
        "neighbor_mask": neighbors,
        "artifact_vector": torch.randn(n, ARTIFACTS, d, generator=g) * (torch.arange(d) < lengths[..., None]),
        "artifact_type": kinds,
        "artifact_mask": artifacts,
    }
    first_type = events & (batch["event_type"] == 1)
    signal = (batch["attributes"][:, 0] - 0.5 * batch["attributes"][:, 1] * batch["attributes"][:, 2]
              + 2 * (batch["event_value"] * first_type).sum(1) / events.sum(1).clamp(min=1)
              + 0.5 * (batch["artifact_vector"][..., :4].sum(-1) * artifacts).sum(1) / artifacts.sum(1).clamp(min=1)
              + 0.5 * (batch["neighbor_attributes"][..., 0] * neighbors).sum(1) / neighbors.sum(1).clamp(min=1))
    labelled = torch.ones(n, dtype=torch.bool)
    batch |= {"target_regression": signal, "target_binary": (signal > 0).float(), "target_ranking": signal,
              "target_regression_mask": labelled, "target_binary_mask": labelled, "target_ranking_mask": labelled}
    if garbage:
        batch["artifact_vector"] = torch.where(torch.arange(d) < lengths[..., None], batch["artifact_vector"], 1e4)
        fill_padding_with_garbage(batch, g, nan_share=0.3)
    return batch


def _one(batch: dict, index: int) -> dict:
    return {key: value[index:index + 1] for key, value in batch.items()}


def _train(config: ModelConfig, steps: int = TRAIN_STEPS, seed: int = 0) -> FullModel:
    """A model trained on fresh synthetic entities each step, in eval mode."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = FullModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = _entities(config, 32, seed=10_000 + step)
        loss, _ = multitask_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(previous)
    return model.eval()


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""


@functools.cache
def _trained(mixer: str) -> FullModel:
    return _train(_config(event_encoder=mixer))


@pytest.fixture(params=["attention", "spectral"])
def trained(request) -> FullModel:
    """A small model of each event encoder, trained for a few hundred steps (once per session)."""
    return _trained(request.param)


@pytest.fixture
def attention_model() -> FullModel:
    """The trained small model with the self-attention event encoder."""
    return _trained("attention")


@pytest.fixture
def small_config():
    """small_config(**overrides) -> the ModelConfig of the test models."""
    return _config


@pytest.fixture
def entities():
    """entities(config, n, seed, align="left", garbage=False) -> a batch with targets, following BATCH_SPEC."""
    return _entities


@pytest.fixture
def one():
    """one(batch, i) -> entity i as a batch of one."""
    return _one


@pytest.fixture
def train():
    """train(config, steps) -> a FullModel trained on synthetic entities, in eval mode."""
    return _train
