"""Explanations: integrated gradients over real inputs, attention over events, artifact shares, a narrative."""

from dmas.explain.explanation import EntityMeta, explain_entity
from dmas.explain.integrated_gradients import BASELINES, TARGETS, Attribution, ExplainError, attribute
from dmas.explain.narrative import NARRATIVE_MODES, heads_narrative, narrative, narrative_fields, narrative_note
from dmas.explain.published import ArtifactName, published_fields

__all__ = [
    "BASELINES",
    "NARRATIVE_MODES",
    "TARGETS",
    "ArtifactName",
    "Attribution",
    "EntityMeta",
    "ExplainError",
    "attribute",
    "explain_entity",
    "heads_narrative",
    "narrative",
    "narrative_fields",
    "narrative_note",
    "published_fields",
]
