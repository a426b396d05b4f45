"""FullModel: four modality encoders, fused into a 64-d entity embedding, read by three task heads.

    attributes [B, A]          -> AttrEncoder          -> [B, 16] --+
    events     [B, L]          -> EventSequenceEncoder -> [B, 64] --+-> concat [B, 144]
    neighbours [B, K]          -> GraphEncoder         -> [B, 32] --+   -> Linear+ReLU -> embedding [B, 64]
    artifacts  [B, M, D]       -> ArtifactEncoder      -> [B, 32] --+      -> regression, logit, ranking score

A modality in `config.disabled` has no encoder and contributes zeros, so ablated models keep the
same fusion weights' shape; `EncodedParts.without` zeros modalities of a trained model the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dmas.model.batch import validate_batch
from dmas.model.config import MODALITIES, Modality, ModelConfig
from dmas.model.encoders import ArtifactEncoder, AttrEncoder, EventSequenceEncoder, GraphEncoder


class EncodedParts(NamedTuple):
    """The four encoder outputs of a batch, before fusion."""

    attributes: Tensor  # [B, d_attr]
    events: Tensor  # [B, d_event]
    graph: Tensor  # [B, d_graph]
    artifacts: Tensor  # [B, d_artifact]
    event_attention: Tensor  # [B, L] pooling weights over each entity's events

    def without(self, *modalities: Modality) -> EncodedParts:
        """These parts with `modalities` replaced by zeros (the events' attention too)."""
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; expected some of {MODALITIES}")
        zeroed = {name: torch.zeros_like(getattr(self, name)) for name in modalities}
        if "events" in modalities:
            zeroed["event_attention"] = torch.zeros_like(self.event_attention)
        return self._replace(**zeroed)


class ModelOutput(NamedTuple):
    """Predictions of every head for a batch of B entities."""

    regression: Tensor  # [B]
    logit: Tensor  # [B]
    probability: Tensor  # [B] sigmoid(logit)
    ranking_score: Tensor  # [B] higher ranks first
    embedding: Tensor  # [B, d_fused]
    event_attention: Tensor  # [B, L]


class FullModel(nn.Module):
    """The multimodal multi-task model; `forward(batch)` takes the keys of `dmas.model.batch.BATCH_SPEC`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        enabled = set(MODALITIES) - config.disabled
        self.encoders = nn.ModuleDict()  # built in a fixed order, so a seed gives the same weights
        if "attributes" in enabled:
            self.encoders["attributes"] = AttrEncoder(config.n_attributes, config.d_attr)
        if "events" in enabled:
            self.encoders["events"] = EventSequenceEncoder(
                config.n_event_types, config.d_event, config.n_heads, config.max_events,
                config.event_encoder, config.dropout, config.event_layers)
        if "graph" in enabled:
            self.encoders["graph"] = GraphEncoder(config.n_attributes, config.n_interaction_types, config.d_graph)
        if "artifacts" in enabled:
            self.encoders["artifacts"] = ArtifactEncoder(config.artifact_dims, config.d_artifact)
        self.fuse = nn.Linear(config.d_concat, config.d_fused)
        self.dropout = nn.Dropout(config.dropout)
        self.regression_head = nn.Linear(config.d_fused, 1)
        self.classification_head = nn.Linear(config.d_fused, 1)
        self.ranking_head = nn.Linear(config.d_fused, 1)

    def encode_parts(self, batch: dict[str, Tensor]) -> EncodedParts:
        """Validate `batch` and run the encoders; disabled modalities come back as zeros."""
        sizes = validate_batch(batch, self.config)
        zeros = batch["attributes"].new_zeros
        parts = EncodedParts(
            attributes=zeros(sizes["B"], self.config.d_attr),
            events=zeros(sizes["B"], self.config.d_event),
            graph=zeros(sizes["B"], self.config.d_graph),
            artifacts=zeros(sizes["B"], self.config.d_artifact),
            event_attention=zeros(sizes["B"], sizes["L"]),
        )
        encoded = {}
        if "attributes" in self.encoders:
            encoded["attributes"] = self.encoders["attributes"](batch["attributes"])
        if "events" in self.encoders:
            encoded["events"], encoded["event_attention"] = self.encoders["events"](
                batch["event_type"], batch["event_value"], batch["event_dt_prev"], batch["event_age"],
                batch["event_mask"])
        if "graph" in self.encoders:
            encoded["graph"] = self.encoders["graph"](
                batch["attributes"], batch["neighbor_attributes"], batch["neighbor_type"],
                batch["neighbor_value"], batch["neighbor_mask"])
        if "artifacts" in self.encoders:
            encoded["artifacts"] = self.encoders["artifacts"](
                batch["artifact_vector"], batch["artifact_type"], batch["artifact_mask"])
        return parts._replace(**encoded)

    def from_parts(self, parts: EncodedParts) -> ModelOutput:
        """Fuse encoder outputs into the entity embedding and apply the three heads."""
        concat = torch.cat([parts.attributes, parts.events, parts.graph, parts.artifacts], dim=-1)  # [B, 144]
        embedding = F.relu(self.fuse(concat))  # [B, d_fused]
        hidden = self.dropout(embedding)
        logit = self.classification_head(hidden).squeeze(-1)
        return ModelOutput(
            regression=self.regression_head(hidden).squeeze(-1),
            logit=logit,
            probability=torch.sigmoid(logit),
            ranking_score=self.ranking_head(hidden).squeeze(-1),
            embedding=embedding,
            event_attention=parts.event_attention,
        )

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        return self.from_parts(self.encode_parts(batch))
