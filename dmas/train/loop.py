"""The training loop, identical whether Ray Train runs it in a worker or a test calls it directly.

Batch order is a seeded permutation per epoch, sharded by rank (never by timing), so a fixed seed
and worker count give the same weights, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dmas.model import FullModel, LossWeights, ModelConfig, multitask_loss
from dmas.scoring.forward import score_arrays
from dmas.train.config import TrainConfig
from dmas.train.determinism import seed_everything
from dmas.train.tensorize import EntityTensors
from dmas.vocabulary import HEADS


def model_config_for(tensors: EntityTensors, config: TrainConfig) -> ModelConfig:
    """The model's sizes: data-dependent ones from the tensors, the rest from the run's `model` settings."""
    return ModelConfig(
        **config.model.model_dump(),
        n_attributes=len(tensors.attribute_names),
        n_event_types=max(1, len(tensors.event_types)),
        n_interaction_types=max(1, len(tensors.interaction_types)),
        artifact_dims=tensors.artifact_dims or {1: 1},
        max_events=config.tensorize.max_events,
    )


class TorchRows:
    """The tensors' arrays as torch tensors, made once (sharing memory), from which batches are gathered.

    Gathering a batch is one `index_select` per key instead of NumPy fancy indexing plus a tensor
    per key per batch; the gathered values, and so the trained bytes, are the same.
    """

    def __init__(self, tensors: EntityTensors):
        self.arrays = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in tensors.arrays.items()}

    def batch(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inputs and targets of `rows` (int64 indices), stacked in that order."""
        return {key: value.index_select(0, rows) for key, value in self.arrays.items()}


def epoch_order(train_rows: np.ndarray, seed: int, epoch: int, rank: int, world_size: int) -> np.ndarray:
    """This rank's rows for `epoch`: a seeded permutation, trimmed so every rank gets as many, then strided."""
    order = np.random.default_rng([seed, epoch]).permutation(train_rows)
    usable = len(order) - len(order) % world_size
    return order[:usable][rank::world_size]


def train_model(tensors: EntityTensors, config: TrainConfig, *, rank: int = 0, world_size: int = 1,
                wrap: Callable[[torch.nn.Module], torch.nn.Module] = lambda model: model,
                report: Callable[[dict], None] = lambda _: None,
                after_backward: Callable[[FullModel, torch.Tensor], None] | None = None,
                ) -> tuple[FullModel, list[dict]]:
    """Train a FullModel on the training split; returns the (unwrapped) model and one log entry per epoch.

    `wrap` lets Ray Train put the model under DistributedDataParallel; `report` receives each
    epoch's metrics (Ray Train's reporting, or nothing); `after_backward(model, loss)` is called at
    each optimiser step between the backward pass and the update, while the gradients are there to
    read (the cascade records per-layer gradient norms); it must not change them.
    """
    seed_everything(config.seed, config.deterministic)
    model = FullModel(model_config_for(tensors, config))
    trained = wrap(model)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    weights = config.loss_weights
    train_rows, validation_rows = tensors.indices("train"), tensors.indices("validation")
    data = TorchRows(tensors)
    log = []
    for epoch in range(config.epochs):
        trained.train()
        order = torch.from_numpy(epoch_order(train_rows, config.seed, epoch, rank, world_size))
        total, batches = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = data.batch(order[start:start + config.batch_size])
            loss, parts = multitask_loss(trained(batch), batch, weights)
            if not parts:  # no labelled entity in this batch: nothing to learn from it
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if after_backward is not None:
                after_backward(model, loss.detach())
            optimizer.step()
            total, batches = total + float(loss.detach()), batches + 1
        entry = {"epoch": epoch, "train_loss": total / max(batches, 1),
                 "validation_loss": validation_loss(model, data, validation_rows, weights, config.batch_size)}
        log.append(entry)
        report(entry)
    return model, log


@torch.inference_mode()
def validation_loss(model: FullModel, data: TorchRows, rows: np.ndarray, weights: LossWeights,
                    batch_size: int) -> float | None:
    """Mean multi-task loss over `rows` (weighted by batch size), in eval mode, with no autograd bookkeeping."""
    if len(rows) == 0:
        return None
    model.eval()
    total = 0.0
    order = torch.from_numpy(rows)
    for start in range(0, len(rows), batch_size):
        chunk = order[start:start + batch_size]
        batch = data.batch(chunk)
        loss, parts = multitask_loss(model(batch), batch, weights)
        total += float(loss) * len(chunk) if parts else 0.0
    return total / len(rows)


def predict(model: FullModel, tensors: EntityTensors, rows: np.ndarray,
            outputs: tuple[str, ...] = HEADS) -> dict[str, np.ndarray]:
    """Model outputs (heads, optionally "embedding") for `rows`, scored as every scoring path scores them."""
    model.eval()
    return score_arrays(model, tensors.rows(rows), outputs)
