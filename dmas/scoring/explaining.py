"""Explanations for the HTTP layer: one entity at a time, from the run's stored inputs."""

from __future__ import annotations

from dmas.scoring.bundle import RunBundle


def explain_entities(bundle: RunBundle, entity_ids: list[str], target: str) -> list[dict]:
    """An explanation per requested entity (duplicates once), each computed on a batch of only that entity.

    Each holds dmas' fields, its narrative, and beside them the original stack's keys (artifacts by id).
    """
    from dmas.explain import explain_entity, narrative, published_fields

    rows = bundle.rows_of(entity_ids)
    predictions = bundle.predictions_for(entity_ids)
    explanations = []
    for row, prediction in zip(rows, predictions):
        meta = bundle.entity_meta(int(row))
        explanation = explain_entity(bundle.model, bundle.inputs_for(int(row)), meta, target)
        explanation["narrative"] = narrative(explanation, prediction)
        explanation.update(published_fields(explanation, bundle.artifacts_of(int(row))))
        explanations.append(explanation)
    return explanations
