"""A training run's configuration: everything that shapes the model, hashed into its run_id."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dmas.train.tensorize import TensorizeConfig


class ModelSettings(BaseModel):
    """The model's sizes and switches (the data-dependent sizes are filled in from the tensors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_encoder: Literal["attention", "spectral"] = "attention"
    d_attr: int = Field(16, gt=0)
    d_event: int = Field(64, gt=0)
    n_heads: int = Field(4, gt=0)
    d_graph: int = Field(32, gt=0)
    d_artifact: int = Field(32, gt=0)
    d_fused: int = Field(64, gt=0)
    disabled: tuple[Literal["events", "graph", "artifacts"], ...] = Field((), description="ablated modalities")


class LossWeightSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    regression: float = Field(1.0, ge=0)
    classification: float = Field(1.0, ge=0)
    ranking: float = Field(1.0, ge=0)


class TrainConfig(BaseModel):
    """One training run. `quality_gates` maps "task.metric" (e.g. "classification.auc_roc") to a minimum
    (or, for lower-is-better metrics, a maximum); a run that misses one is recorded as rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0)
    epochs: int = Field(30, gt=0)
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    num_workers: int = Field(1, gt=0, description="Ray Train workers (DDP when > 1)")
    use_gpu: bool = False
    deterministic: bool = Field(True, description="deterministic kernels, one thread, fixed batch order")
    tensorize: TensorizeConfig = Field(default_factory=TensorizeConfig)
    model: ModelSettings = Field(default_factory=ModelSettings)
    loss_weights: LossWeightSettings = Field(default_factory=LossWeightSettings)
    quality_gates: dict[str, float] = Field(default_factory=dict)

    def canonical_json(self) -> str:
        """Sorted-key JSON of every field: the config part of the run_id."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def run_id_for(config: TrainConfig, manifest: dict, code_version: str) -> str:
    """sha256 of the canonical config, the data manifest (table and feature versions) and the code version."""
    payload = json.dumps({"config": json.loads(config.canonical_json()), "data": manifest, "code": code_version},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
