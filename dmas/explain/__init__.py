"""Explanations: integrated gradients over real inputs, attention over events, artifact shares, a narrative."""

from dmas.explain.explanation import EntityMeta, explain_entity, narrative
from dmas.explain.integrated_gradients import BASELINES, TARGETS, Attribution, ExplainError, attribute

__all__ = [
    "BASELINES",
    "TARGETS",
    "Attribution",
    "EntityMeta",
    "ExplainError",
    "attribute",
    "explain_entity",
    "narrative",
]
