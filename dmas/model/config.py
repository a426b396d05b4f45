"""The model's shape: the widths and switches a training config chooses, plus input sizes from the data.

`ModelArchitecture` is what a run's config sets (`TrainConfig.model`); `ModelConfig` adds the sizes
read from the tensors, so every field is declared once. Both are part of a run's config (and so of
its `run_id`): they serialise to canonical JSON, with `artifact_dims` and `disabled` in sorted
order, and read back equal.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

Modality = Literal["attributes", "events", "graph", "artifacts"]
MODALITIES: tuple[Modality, ...] = ("attributes", "events", "graph", "artifacts")
EventEncoder = Literal["attention", "spectral", "resonance", "eigenstate"]


class ModelArchitecture(BaseModel):
    """Widths and switches of the FullModel that do not depend on the data."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # JSON bodies may say Infinity

    d_attr: int = Field(16, ge=1, description="width of the attribute encoding")
    d_event: int = Field(64, ge=1, description="width of the event sequence encoding")
    n_heads: int = Field(4, ge=1, description="attention heads of the event encoder")
    d_graph: int = Field(32, ge=1, description="width of the graph encoding")
    d_artifact: int = Field(32, ge=1, description="width of the artifact encoding")
    d_fused: int = Field(64, ge=1, description="width of the entity embedding")
    event_encoder: EventEncoder = Field(
        "attention", description="token mixer of the event encoder: self-attention, or an O(L log L) one: a "
        "global FFT filter (spectral), a Resonance block (resonance), a Temporal Eigenstate block (eigenstate)")
    event_layers: int = Field(1, ge=1, description="mixing blocks of the event encoder, one after another "
                              "(the depth the cascade's tiers vary)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout in the event encoder and after fusion")
    disabled: frozenset[Modality] = Field(
        frozenset(), description="modalities replaced by zeros (ablation); their encoders are not built")

    @field_serializer("disabled")
    def _sorted_disabled(self, disabled: frozenset[str]) -> list[str]:
        return sorted(disabled)

    @model_serializer(mode="wrap")
    def _one_event_layer_unsaid(self, handler: SerializerFunctionWrapHandler) -> dict:
        # one block is how every model was built before the field existed: its JSON (hashed into
        # run_ids) stays as it was, and reads back to 1
        data = handler(self)
        if data.get("event_layers") == 1:
            del data["event_layers"]
        return data

    @model_validator(mode="after")
    def _check_widths(self) -> ModelArchitecture:
        if self.d_event % self.n_heads:
            raise ValueError(f"d_event={self.d_event} must be a multiple of n_heads={self.n_heads}")
        if set(self.disabled) == set(MODALITIES):
            raise ValueError(f"disabled={sorted(self.disabled)} leaves the model no input; keep one modality")
        return self


class ModelConfig(ModelArchitecture):
    """Sizes of the FullModel; type indices start at 1 everywhere, 0 is padding."""

    n_attributes: int = Field(ge=1, description="numeric attributes per entity (A)")
    n_event_types: int = Field(ge=1, description="real event types; index 0 is padding")
    n_interaction_types: int = Field(ge=1, description="real interaction types; index 0 is padding")
    artifact_dims: dict[int, int] = Field(min_length=1, description="artifact type index -> feature vector length")
    max_events: int = Field(ge=1, description="longest event history (L) the model accepts")

    @field_validator("artifact_dims")
    @classmethod
    def _sorted_positive_dims(cls, dims: dict[int, int]) -> dict[int, int]:
        for artifact_type, dim in dims.items():
            if artifact_type < 1:
                raise ValueError(f"artifact_dims: type index {artifact_type} is invalid; types start at 1 "
                                 "(0 is padding)")
            if dim < 1:
                raise ValueError(f"artifact_dims: type {artifact_type} has length {dim}; it must be at least 1")
        return dict(sorted(dims.items()))

    @property
    def artifact_vector_dim(self) -> int:
        """D: length of the zero-padded artifact vectors in a batch (the longest type)."""
        return max(self.artifact_dims.values())

    @property
    def d_concat(self) -> int:
        """Width of the four encodings side by side (144 with the defaults)."""
        return self.d_attr + self.d_event + self.d_graph + self.d_artifact


class SequenceModelSize(BaseModel):
    """Shape of a next-token `SequenceModel` (dmas.model.sequence): token ids in, logits out, causal blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: Literal["resonance", "eigenstate"] = Field("resonance", description="the blocks' kind")
    vocab_size: int = Field(256, ge=2, description="token ids 0 .. vocab_size-1; 256 reads text as raw bytes")
    d_model: int = Field(ge=1)
    n_layers: int = Field(ge=1)
    n_heads: int = Field(ge=1, description="frequency-filter heads of a Resonance block")
    seq_len: int = Field(ge=1, description="longest sequence; Resonance filters have one tap per position")
    n_scales: int = Field(3, ge=1, description="HierarchicalFFT scales: seq_len, seq_len/2, ...")
    d_state: int = Field(16, ge=1, description="modes per channel of a Temporal Eigenstate layer")

    @model_validator(mode="after")
    def _check_heads(self) -> SequenceModelSize:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        return self


# Named sizes. tiny / small / base are the CPU profile (train here in minutes). The gpu-* sizes are the
# original engine's 76M / 454M / 983M-parameter models (byte vocabulary, 2,048 positions) for the 4-GPU
# profile; they build anywhere (tests count them on the meta device) but are meant to train on GPUs.
SEQUENCE_MODEL_SIZES: dict[str, SequenceModelSize] = {
    "tiny": SequenceModelSize(d_model=64, n_layers=2, n_heads=4, seq_len=256),
    "small": SequenceModelSize(d_model=128, n_layers=4, n_heads=4, seq_len=512),
    "base": SequenceModelSize(d_model=256, n_layers=6, n_heads=8, seq_len=1024),
    "gpu-76m": SequenceModelSize(d_model=640, n_layers=10, n_heads=10, seq_len=2048),  # 77.1M
    "gpu-454m": SequenceModelSize(d_model=1024, n_layers=26, n_heads=16, seq_len=2048),  # 453.1M
    "gpu-983m": SequenceModelSize(d_model=1536, n_layers=27, n_heads=24, seq_len=2048),  # 981.8M
}
