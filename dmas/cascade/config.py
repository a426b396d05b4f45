"""A cascade's configuration (`configs/cascade.yaml`): the data, the tiers of proxy runs, how each trains.

Everything that shapes a run's numbers is here and in the run's seed: sizes, data fractions, seeds,
epochs, the optimiser's schedule. Nothing is a wall-clock budget, so the same config gives the same
runs, fit and report bytes on any machine. `execution` says where runs train (which never changes
their bytes on the CPU); `profiles` holds named overrides of any of it, such as the 4-GPU profile.

The data is one of two kinds (`data.kind`): `sequence` (the default: next-token SequenceModel proxies
shaped by `model` and trained by `schedule`) or `entities` (the store's entities with their targets:
FullModel proxies trained by dmas' own training loop with the settings in `data`; `model` and
`schedule` then play no part).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag, ValidationError, model_validator

from dmas.cascade.scaling import ScalingLawConfig
from dmas.errors import ConfigError
from dmas.model.config import ModelArchitecture, SequenceModelSize
from dmas.model.losses import LossWeights
from dmas.train.tensorize import TensorizeConfig

BYTE_VOCABULARY = 256  # text is read as UTF-8 bytes
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cascade.yaml"
# fields that say where and how fast runs execute, not what they compute: kept out of the config hash
EXECUTION_FIELDS = frozenset({"execution", "progress_interval_s", "profiles", "profile"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SequenceData(_Strict):
    """A sequence dataset: one column of text (read as UTF-8 bytes, vocabulary 256) or of token-id lists.

    Documents are joined, in file order, each followed by `separator` (a newline byte for text), and cut
    into windows of `seq_len + 1` tokens (inputs and next-token targets). A seeded permutation of the
    windows puts `validation_fraction` of them aside; a run with data fraction f trains on the first f
    of the rest, so a smaller fraction's windows are always part of a larger one's.
    """

    # left out of the dump (and so of config_sha256): sequence configs hash as they did before kinds existed
    kind: Literal["sequence"] = Field("sequence", exclude=True)
    path: str | None = Field(None, description="table file (csv tsv json jsonl parquet feather hdf5 xlsx); "
                                               "null: the embedded synthetic corpus")
    column: str = Field("text", description="the column holding each document")
    encoding: Literal["bytes", "token_ids"] = "bytes"
    vocab_size: int | None = Field(None, ge=2, description="token_ids only: ids run 0 .. vocab_size-1 "
                                                           "(default: the largest id + 1)")
    validation_path: str | None = Field(None, description="a separate held-out file (same column); "
                                                          "default: validation_fraction of the data")
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    max_validation_windows: int = Field(512, ge=1, description="validation windows scored per run, at most")
    synthetic_documents: int = Field(1200, ge=10, description="documents of the embedded corpus")
    seed: int = Field(0, ge=0)


def _entity_architecture() -> ModelArchitecture:
    return ModelArchitecture(event_encoder="resonance")


# set per run from the tier's shape (d_model, n_layers), never in `data.model`
TIER_SET_WIDTHS = ("d_event", "d_fused", "event_layers")


class EntityData(_Strict):
    """The store's entities with their targets: each run trains a FullModel with dmas' training loop.

    The store's tables are read once per cascade, at the versions current when it starts, and split
    by `tensorize` (keyed by `seed`) into train / validation / test. A run with data fraction f trains
    on the first f of a seeded order of the training entities (a smaller fraction's entities are always
    part of a larger one's); every run is scored on the same whole validation split, by the multi-task
    validation loss the loop computes, so losses are comparable. A tier's `d_model` is the model's
    hidden width (the event tokens' `d_event` and the entity embedding's `d_fused`), its `n_layers`
    the event encoder's blocks (`event_layers`); the rest of the architecture is `model`.
    """

    kind: Literal["entities"]
    store: str | None = Field(None, description="store folder or URI (default: the settings' store, "
                                                "DMAS_STORE_URI or --store)")
    seed: int = Field(0, ge=0, description="the split's hash key and the training entities' order")
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    record_every: int = Field(4, ge=1, description="optimiser steps per loss / gradient-norm record")
    tensorize: TensorizeConfig = Field(default_factory=TensorizeConfig)
    model: ModelArchitecture = Field(default_factory=_entity_architecture,
                                     description="the FullModel's settings but its widths and depth "
                                                 f"({', '.join(TIER_SET_WIDTHS)}: the tiers' sizes)")
    loss_weights: LossWeights = Field(default_factory=LossWeights)

    @model_validator(mode="after")
    def _widths_come_from_tiers(self) -> EntityData:
        default = ModelArchitecture()
        changed = [name for name in TIER_SET_WIDTHS if getattr(self.model, name) != getattr(default, name)]
        if changed:
            raise ValueError(f"model.{changed[0]} is set per run by the tiers' sizes (d_model: d_event and "
                             "d_fused, n_layers: event_layers); leave it out of data.model")
        return self

    def architecture(self, shape: ModelShape) -> ModelArchitecture:
        """The FullModel settings of a run of `shape`."""
        return ModelArchitecture.model_validate({**self.model.model_dump(), "d_event": shape.d_model,
                                                 "d_fused": shape.d_model, "event_layers": shape.n_layers})


def _data_kind(value: Any) -> str:
    """The data's kind: `kind` of a mapping or model; a mapping without one is sequence data."""
    kind = value.get("kind", "sequence") if isinstance(value, dict) else getattr(value, "kind", "sequence")
    return str(kind)


DataConfig = Annotated[Annotated[SequenceData, Tag("sequence")] | Annotated[EntityData, Tag("entities")],
                        Discriminator(_data_kind, custom_error_type="data_kind",
                                      custom_error_message="data.kind must be sequence or entities")]


class ModelShape(_Strict):
    """A proxy model's width and depth; the other sizes are the cascade's `model` settings (sequence data)
    or `data.model` (entities)."""

    d_model: int = Field(ge=1)
    n_layers: int = Field(ge=1)


class SequenceModelSettings(_Strict):
    """What every proxy model shares (see `SequenceModelSize`)."""

    layer: Literal["resonance", "eigenstate"] = "resonance"
    n_heads: int = Field(4, ge=1)
    seq_len: int = Field(64, ge=2)
    n_scales: int = Field(3, ge=1)
    d_state: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class Tier(_Strict):
    """One tier: every combination of its sizes, data fractions and seeds is a proxy run."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    sizes: list[ModelShape] = Field(min_length=1)
    fractions: list[float] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1)

    @model_validator(mode="after")
    def _check_fractions(self) -> Tier:
        for fraction in self.fractions:
            if not 0 < fraction <= 1:
                raise ValueError(f"tier {self.name}: data fraction {fraction} must be in (0, 1]")
        return self

    @property
    def runs(self) -> int:
        return len(self.sizes) * len(self.fractions) * len(self.seeds)


class FullRun(_Strict):
    """The full-size model whose metric the cascade predicts; `train: true` also trains it (the truth)."""

    size: ModelShape
    fraction: float = Field(1.0, gt=0, le=1)
    seed: int = Field(0, ge=0)
    train: StrictBool = False


class Schedule(_Strict):
    """How each proxy run trains: epochs over its data fraction, AdamW, warmup then cosine decay."""

    epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    min_learning_rate_ratio: float = Field(0.1, ge=0, le=1, description="cosine decay ends at this share")
    warmup_share: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float | None = Field(1.0, gt=0, description="clip the global gradient norm (null: never)")
    record_every: int = Field(4, ge=1, description="steps per loss / gradient-norm record")


class Execution(_Strict):
    """Where runs train. Not part of the config hash: on the CPU every choice gives the same bytes."""

    executor: Literal["ray_train", "in_process"] = Field(
        "ray_train", description="ray_train: one Ray Train run whose workers train the runs concurrently; "
                                 "in_process: one after another in this process (small cascades, tests)")
    workers: int | None = Field(None, ge=1, description="concurrent runs (default: cluster CPUs / cpus_per_run, "
                                                        "or GPUs)")
    cpus_per_run: float = Field(1.0, gt=0)
    use_gpu: StrictBool = False
    bf16: StrictBool = Field(False, description="bf16 autocast on GPU (recorded in each run)")
    gradient_checkpointing: StrictBool = False


class CascadeConfig(_Strict):
    """The whole cascade; `config_sha256` hashes everything but `execution` and the progress interval."""

    data: DataConfig = Field(default_factory=SequenceData)
    model: SequenceModelSettings = Field(default_factory=SequenceModelSettings)
    tiers: list[Tier] = Field(min_length=1)
    full: FullRun
    schedule: Schedule = Field(default_factory=Schedule)
    scaling: ScalingLawConfig = Field(default_factory=ScalingLawConfig)
    execution: Execution = Field(default_factory=Execution)
    progress_interval_s: float = Field(10.0, gt=0)
    seed: int = Field(0, ge=0, description="mixed into every run's seed")

    @model_validator(mode="after")
    def _check_names(self) -> CascadeConfig:
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names) or "full" in names:
            raise ValueError(f"tier names must be distinct and not 'full': {names}")
        for shape in [size for tier in self.tiers for size in tier.sizes] + [self.full.size]:
            # every shape must build (d_model a multiple of n_heads...)
            if isinstance(self.data, EntityData):
                self.data.architecture(shape)
            else:
                self.model_size(shape, BYTE_VOCABULARY)
        if isinstance(self.data, EntityData) and (self.execution.use_gpu or self.execution.bf16):
            raise ValueError("entity data trains on the CPU with dmas' training loop: set execution.use_gpu and "
                             "execution.bf16 to false (the gpu profile is for sequence data)")
        return self

    def model_size(self, shape: ModelShape, vocab_size: int) -> SequenceModelSize:
        """The full model size of `shape` for a dataset of `vocab_size` token ids."""
        settings = self.model.model_dump(exclude={"dropout"})
        return SequenceModelSize(**settings, d_model=shape.d_model, n_layers=shape.n_layers, vocab_size=vocab_size)

    def config_sha256(self) -> str:
        # entity runs read neither `model` nor `schedule` (their settings are in `data`)
        unused = {"model", "schedule"} if isinstance(self.data, EntityData) else set()
        body = self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS) | unused)
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_cascade_config(path: str | Path | None = None, *, profile: str | None = None,
                        overrides: dict[str, Any] | None = None) -> CascadeConfig:
    """Read a cascade YAML (default `configs/cascade.yaml`), apply `profiles[profile]` (default: the file's
    `profile`, else none) and then `overrides` (nested dicts merge, lists replace; a `data` of another
    `kind` replaces the data block whole); a bad field is a ConfigError naming it."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"cascade config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(raw).__name__}")
    profiles = raw.pop("profiles", None) or {}
    chosen = profile or raw.pop("profile", None)
    raw.pop("profile", None)
    if chosen is not None:
        if chosen not in profiles:
            raise ConfigError(f"{path}: unknown profile '{chosen}'; the file defines {sorted(profiles) or 'none'}")
        raw = _laid_over(raw, profiles[chosen])
    raw = _laid_over(raw, overrides or {})
    try:
        return CascadeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in _without_kind_tag(error['loc'])) or 'config'}: "
                             f"{error['msg']}" for error in exc.errors())
        raise ConfigError(f"{path}{f' (profile {chosen})' if chosen else ''}: {problems}") from None


def _laid_over(base: dict, changes: dict) -> dict:
    """`merged`, but data of another kind than the base's replaces it (sequence keys mean nothing to entities)."""
    data = changes.get("data")
    if isinstance(data, dict) and isinstance(base.get("data"), dict) and \
            _data_kind(data) != _data_kind(base["data"]) and "kind" in data:
        base = {**base, "data": {}}
    return merged(base, changes)


def _without_kind_tag(location: tuple) -> tuple:
    """An error's location without the union's tag: `data.column`, not `data.sequence.column`."""
    if len(location) > 1 and location[0] == "data" and location[1] in ("sequence", "entities"):
        return (location[0], *location[2:])
    return location


def merged(base: dict, changes: dict) -> dict:
    """`base` with `changes` laid over it: mappings merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in changes.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key),
                                                                                               dict) else value
    return result
