"""The multimodal multi-task model: encoders per modality, the spectral layers, FullModel and its loss;
and the next-token SequenceModel the cascade trains at named sizes."""

from dmas.model.batch import BATCH_SPEC, LABEL_SPEC, BatchError, validate_batch
from dmas.model.config import MODALITIES, SEQUENCE_MODEL_SIZES, ModelConfig, SequenceModelSize
from dmas.model.eigenstate import EigenstateBlock, TemporalEigenstateLayer
from dmas.model.encoders import ArtifactEncoder, AttrEncoder, EventSequenceEncoder, GraphEncoder
from dmas.model.full import EncodedParts, FullModel, ModelOutput
from dmas.model.losses import LossWeights, multitask_loss, ranknet_loss
from dmas.model.resonance import AdvancedSpectralGating, HierarchicalFFT, MultiHeadFrequencyLayer, ResonanceBlock
from dmas.model.sequence import SequenceModel
from dmas.model.spectral import SpectralMixer

__all__ = [
    "BATCH_SPEC",
    "LABEL_SPEC",
    "MODALITIES",
    "SEQUENCE_MODEL_SIZES",
    "AdvancedSpectralGating",
    "ArtifactEncoder",
    "AttrEncoder",
    "BatchError",
    "EigenstateBlock",
    "EncodedParts",
    "EventSequenceEncoder",
    "FullModel",
    "GraphEncoder",
    "HierarchicalFFT",
    "LossWeights",
    "ModelConfig",
    "ModelOutput",
    "MultiHeadFrequencyLayer",
    "ResonanceBlock",
    "SequenceModel",
    "SequenceModelSize",
    "SpectralMixer",
    "TemporalEigenstateLayer",
    "multitask_loss",
    "ranknet_loss",
    "validate_batch",
]
