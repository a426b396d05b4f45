"""A cascade on the store's entities: FullModel proxies trained by dmas' own training loop.

The store is pinned and tensorized once per cascade (`load_entity_rows`); every run then trains
`dmas.train.loop.train_model` with a `TrainConfig` of its own (its seed, the tier's width and depth)
on a share of the training entities, and is scored by the loop's multi-task validation loss over the
whole validation split. Gradient norms are read through the loop's `after_backward` hook, before the
update, per layer: each modality encoder (the event encoder's input, each of its blocks, its output
apart), the fusion layer and the heads. What a run "sees" (D of the scaling law) is entity-epochs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dmas.cascade.config import CascadeConfig, EntityData, ModelShape
from dmas.cascade.proxy import ProxyResult, ProxySpec, gradient_norm, run_seed, weights_sha256
from dmas.config import Settings
from dmas.errors import DmasError, StoreError
from dmas.model import FullModel
from dmas.store import Store
from dmas.train.config import TrainConfig
from dmas.train.loop import model_config_for, train_model
from dmas.train.runner import pin_data
from dmas.train.tensorize import SPLITS, DataManifest, EntityTensors, tensorize
from dmas.vocabulary import TARGET_KEYS

LEFT_OUT = len(SPLITS)  # a split value in none of the splits: training entities a run does not read


class EntityDataError(DmasError):
    """The store's entities cannot feed a cascade (none, none with a target, an empty split)."""


@dataclasses.dataclass(frozen=True, eq=False)
class EntityRows:
    """The store's entities as model arrays, and the seeded order in which fractions take training entities.

    Implements the cascade's data interface (`dmas.cascade.kinds.CascadeData`).
    """

    tensors: EntityTensors
    manifest: DataManifest
    order: np.ndarray  # int64: the training split's rows in their seeded order
    sha256: str  # of the arrays, the split and the entity ids

    kind = "entities"

    def train_rows(self, fraction: float) -> int:
        """How many training entities a run with this data fraction reads (at least one)."""
        return max(1, math.ceil(fraction * len(self.order)))

    def describe(self) -> dict:
        labelled = {name: int(_labelled(self.tensors)[self.tensors.indices(name)].sum()) for name in SPLITS}
        return {"kind": self.kind, "sha256": self.sha256, **self.manifest.to_dict(),
                "entities": {name: int(len(self.tensors.indices(name))) for name in SPLITS},
                "labelled": labelled, "attributes": list(self.tensors.attribute_names),
                "event_types": len(self.tensors.event_types)}

    def report_settings(self, config: CascadeConfig) -> dict:
        """The report's `model` (what every run's FullModel shares) and `schedule` (how each trains)."""
        data = _entity_data(config)
        model = data.model.model_dump(mode="json", exclude={"d_event", "d_fused", "event_layers"})
        schedule = data.model_dump(mode="json", include={"epochs", "batch_size", "learning_rate", "weight_decay",
                                                         "record_every", "loss_weights", "tensorize"})
        return {"model": model, "schedule": schedule}

    def steps(self, config: CascadeConfig, train_rows: int) -> int:
        """Optimiser steps of a run on `train_rows` entities, at most (a batch without a target is skipped)."""
        data = _entity_data(config)
        return math.ceil(train_rows / data.batch_size) * data.epochs

    def seen(self, config: CascadeConfig, train_rows: int) -> int:
        """Entity-epochs a run reads (D of the scaling law)."""
        return train_rows * _entity_data(config).epochs

    def parameters(self, config: CascadeConfig, shape: ModelShape) -> int:
        """Every parameter of the FullModel of `shape` on this data (built on the meta device)."""
        with torch.device("meta"):
            model = FullModel(model_config_for(self.tensors, train_config(config, shape, seed=0)))
        return sum(parameter.numel() for parameter in model.parameters())

    def subset(self, fraction: float) -> EntityTensors:
        """The tensors with the training entities past this fraction's share left out (arrays shared)."""
        split = self.tensors.split.copy()
        split[self.order[self.train_rows(fraction):]] = LEFT_OUT
        return dataclasses.replace(self.tensors, split=split)

    def train(self, spec: ProxySpec, config: CascadeConfig, *, device: torch.device | None = None,
              on_step: Callable[[int, int, float], None] = lambda step, steps, loss: None) -> ProxyResult:
        return train_entity_proxy(spec, config, self, on_step=on_step)


def load_entity_rows(data: EntityData, settings: Settings) -> EntityRows:
    """Pin the store (`data.store`, else the settings' store) at its current versions and tensorize it."""
    uri = data.store or settings.store_uri
    store = Store(uri)
    config = TrainConfig(seed=data.seed, tensorize=data.tensorize)
    manifest = pin_data(store, settings, config)
    try:
        tensors = tensorize(store, manifest, data.tensorize, data.seed)
    except StoreError as exc:
        raise EntityDataError(f"store {uri}: {exc}") from None
    train, validation = tensors.indices("train"), tensors.indices("validation")
    for name, rows in (("train", train), ("validation", validation)):
        if not _labelled(tensors)[rows].any():
            raise EntityDataError(
                f"store {uri}: none of the {len(rows)} {name} entities has a target; a cascade needs entities with "
                f"attributes {', '.join(TARGET_KEYS)} (at least one each) in the train and validation splits "
                f"(split_fractions {list(data.tensorize.split_fractions)})")
    order = train[np.random.default_rng([data.seed, 11]).permutation(len(train))]
    return EntityRows(tensors=tensors, manifest=manifest, order=order, sha256=_tensors_sha256(tensors))


def train_config(config: CascadeConfig, shape: ModelShape, seed: int) -> TrainConfig:
    """The dmas training run behind a proxy of `shape` (its widths and depth from the tier)."""
    data = _entity_data(config)
    return TrainConfig(seed=seed, epochs=data.epochs, batch_size=data.batch_size, learning_rate=data.learning_rate,
                       weight_decay=data.weight_decay, tensorize=data.tensorize, model=data.architecture(shape),
                       loss_weights=data.loss_weights)


def train_entity_proxy(spec: ProxySpec, config: CascadeConfig, rows: EntityRows, *,
                       on_step: Callable[[int, int, float], None] = lambda step, steps, loss: None) -> ProxyResult:
    """Train and score one entity run; `on_step(step, steps, latest_loss)` at each record (progress)."""
    started = time.perf_counter()
    record_every = _entity_data(config).record_every
    run = train_config(config, spec.shape, run_seed(config, spec))
    train_rows = rows.train_rows(spec.fraction)
    steps = rows.steps(config, train_rows)
    curve: list[float] = []
    norms: dict[str, list[float]] = {}
    pending: list[torch.Tensor] = []
    counted = [0]
    groups: dict[str, list[nn.Parameter]] = {}

    def record(model: FullModel) -> None:
        if not groups:
            groups.update(layer_groups(model))
        for name, parameters in groups.items():
            norms.setdefault(name, []).append(gradient_norm(parameters))
        curve.append(float(torch.stack(pending).mean()))
        pending.clear()
        on_step(counted[0], steps, curve[-1])

    def after_backward(model: FullModel, loss: torch.Tensor) -> None:
        pending.append(loss)
        counted[0] += 1
        if counted[0] % record_every == 0:
            record(model)

    model, log = train_model(rows.subset(spec.fraction), run, after_backward=after_backward)
    if pending:  # the last steps since a record: their gradients are still on the parameters
        record(model)
    validation = log[-1]["validation_loss"]
    if validation is None or not counted[0]:
        raise EntityDataError(f"run {spec.name}: no labelled entity to train on or score "
                              f"({train_rows} training entities)")
    return ProxyResult(spec=spec, parameters=sum(p.numel() for p in model.parameters()), steps=counted[0],
                       tokens_seen=rows.seen(config, train_rows), loss_curve=curve, gradient_norms=norms,
                       validation_loss=float(validation), weights_sha256=weights_sha256(model), bf16=False,
                       gradient_checkpointing=False, seconds=time.perf_counter() - started, device="cpu")


def layer_groups(model: FullModel) -> dict[str, list[nn.Parameter]]:
    """The layers whose gradient norms are recorded: each encoder (the event encoder's input, blocks and
    output apart), the fusion layer, the heads."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, encoder in model.encoders.items():
        if name == "events":
            groups["events.input"] = [*encoder.event_type.parameters(), *encoder.value.parameters(),
                                      *encoder.time.parameters()]
            for index, block in enumerate([encoder.block, *encoder.more_blocks]):
                groups[f"events.block_{index}"] = list(block.parameters())
            groups["events.output"] = [*encoder.ln_f.parameters(), *encoder.pool.parameters()]
        else:
            groups[name] = list(encoder.parameters())
    groups["fusion"] = list(model.fuse.parameters())
    groups["heads"] = [*model.regression_head.parameters(), *model.classification_head.parameters(),
                       *model.ranking_head.parameters()]
    return groups


def _entity_data(config: CascadeConfig) -> EntityData:
    if not isinstance(config.data, EntityData):
        raise TypeError(f"the cascade's data is {config.data.kind}, not entities")
    return config.data


def _labelled(tensors: EntityTensors) -> np.ndarray:
    """Whether each entity has at least one target."""
    return np.any([tensors.arrays[f"{key}_mask"] for key in TARGET_KEYS], axis=0)


def _tensors_sha256(tensors: EntityTensors) -> str:
    digest = hashlib.sha256("\0".join(tensors.entity_ids.tolist()).encode())
    digest.update(np.ascontiguousarray(tensors.split).tobytes())
    for key in sorted(tensors.arrays):
        digest.update(key.encode() + np.ascontiguousarray(tensors.arrays[key]).tobytes())
    return digest.hexdigest()
