"""A scored request as JSON: the original stack's prediction objects plus receipts, and explanations."""

from __future__ import annotations

from dmas.explain.narrative import heads_narrative, narrative_fields
from dmas.explain.published import ArtifactName
from dmas.scoring.receipts import receipts
from dmas.vocabulary import HEADS


def predictions(scored, with_embedding: bool = True) -> list[dict]:
    """Per entity: entity_id, the three heads, the template narrative, the embedding, its receipt, and
    (only when there is any) what the run never saw and left out (`unseen`)."""
    answers = []
    for row, receipt in enumerate(receipts(scored)):
        heads = {head: float(scored.outputs[head][row]) for head in HEADS}
        answer = {"entity_id": scored.entity_ids[row], **heads, **narrative_fields(heads_narrative(heads))}
        if with_embedding:
            answer["embedding"] = scored.outputs["embedding"][row].tolist()
        answer["receipt"] = receipt
        if scored.notes[row]:
            answer["unseen"] = scored.notes[row]
        answers.append(answer)
    return answers


def explanations(scored, target: str, answers: list[dict]) -> list[dict]:
    """An explanation per entity, each computed on a batch of only that entity (IG, attention, artifacts)."""
    from dmas.explain import EntityMeta, explain_entity, narrative, published_fields

    run, inputs = scored.run, scored.inputs
    found = []
    for row, prediction in enumerate(answers):
        meta = EntityMeta(attribute_names=run.encoding.attribute_names, event_types=run.encoding.event_types,
                          event_keys=inputs.event_keys[row].tolist(),
                          artifact_sha256=inputs.artifact_sha256[row].tolist(),
                          normalisation=run.encoding.normalisation)
        one = {key: value[row:row + 1] for key, value in inputs.arrays.items()}
        explanation = explain_entity(run.model, one, meta, target)
        explanation["narrative"] = narrative(explanation, prediction)
        names = [ArtifactName(artifact_id or None, _type_name(kind)) for artifact_id, kind in zip(
            inputs.artifact_ids[row].tolist(), inputs.arrays["artifact_type"][row].tolist()) if artifact_id]
        explanation.update(published_fields(explanation, names))
        found.append(explanation)
    return found


def _type_name(kind: int) -> str | None:
    from dmas.explain.explanation import ARTIFACT_TYPE_NAMES

    return ARTIFACT_TYPE_NAMES.get(kind)
