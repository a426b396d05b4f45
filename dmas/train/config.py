"""A training run's configuration: everything that shapes the model, hashed into its run_id.

The model and loss parts are the model's own config types (`ModelArchitecture`, `LossWeights`), so
a field added to the model can be set from a training config without a second copy to keep in step.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dmas.model.config import ModelArchitecture
from dmas.model.losses import LossWeights
from dmas.train.tensorize import TensorizeConfig

# How a run is executed, not what it computes (the same bytes either way): kept out of the run_id.
EXECUTION_FIELDS = frozenset({"in_process_max_entity_epochs"})


class TrainConfig(BaseModel):
    """One training run. `quality_gates` maps "task.metric" (e.g. "classification.auc_roc") to a minimum
    (or, for lower-is-better metrics, a maximum); a run that misses one is recorded as rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # JSON bodies may say Infinity

    seed: int = Field(0, ge=0)
    epochs: int = Field(30, gt=0)
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    num_workers: int = Field(1, gt=0, description="Ray Train workers (DDP when > 1)")
    use_gpu: StrictBool = False
    deterministic: StrictBool = Field(True, description="deterministic kernels, one thread, fixed batch order")
    in_process_max_entity_epochs: int = Field(
        20_000, ge=0, description="a one-worker CPU run of at most this many training entities x epochs trains "
        "in the calling process instead of paying Ray Train's ~15 s start (same bytes); 0: always Ray Train")
    tensorize: TensorizeConfig = Field(default_factory=TensorizeConfig)
    model: ModelArchitecture = Field(default_factory=ModelArchitecture)
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    quality_gates: dict[str, float] = Field(default_factory=dict)

    def canonical_json(self) -> str:
        """Sorted-key JSON of every field that shapes the model: the config part of the run_id."""
        return json.dumps(self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS)), sort_keys=True,
                          separators=(",", ":"))


def run_id_for(config: TrainConfig, manifest: dict, code_version: str) -> str:
    """sha256 of the canonical config, the data manifest (table and feature versions) and the code version."""
    payload = json.dumps({"config": json.loads(config.canonical_json()), "data": manifest, "code": code_version},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
