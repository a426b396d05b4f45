"""The multimodal multi-task model: encoders per modality, the spectral mixer, FullModel and its loss."""

from dmas.model.batch import BATCH_SPEC, LABEL_SPEC, BatchError, validate_batch
from dmas.model.config import MODALITIES, ModelConfig
from dmas.model.encoders import ArtifactEncoder, AttrEncoder, EventSequenceEncoder, GraphEncoder
from dmas.model.full import EncodedParts, FullModel, ModelOutput
from dmas.model.losses import LossWeights, multitask_loss, ranknet_loss
from dmas.model.spectral import SpectralMixer

__all__ = [
    "BATCH_SPEC",
    "LABEL_SPEC",
    "MODALITIES",
    "ArtifactEncoder",
    "AttrEncoder",
    "BatchError",
    "EncodedParts",
    "EventSequenceEncoder",
    "FullModel",
    "GraphEncoder",
    "LossWeights",
    "ModelConfig",
    "ModelOutput",
    "SpectralMixer",
    "multitask_loss",
    "ranknet_loss",
    "validate_batch",
]
