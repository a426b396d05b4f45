"""The JSON explanation of one entity, and the narrative of a real explanation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch

from dmas.explain import EntityMeta, ExplainError, explain_entity, narrative

ATTRIBUTES = ("age", "balance", "income", "visits", "tenure", "score")
EVENT_TYPES = ("click", "login", "purchase", "refund", "view")
START_US = 1_717_200_000_000_000  # 2024-06-01T00:00:00Z
MEAN, STD = [10.0, -2.0, 50_000.0, 3.0, 0.0, 1.0], [2.0, 0.5, 10_000.0, 1.0, 4.0, 0.1]


def _meta(entity: dict, normalised: bool = True) -> EntityMeta:
    """Names for `entity`'s slots: an event every hour from START_US, a made-up sha256 per real artifact."""
    keys = [START_US + slot * 3_600_000_000 if real else -1 for slot, real in enumerate(entity["event_mask"][0])]
    shas = [f"{slot:02d}" + "ab" * 31 if real else "" for slot, real in enumerate(entity["artifact_mask"][0])]
    normalisation = {"attributes_mean": MEAN, "attributes_std": STD} if normalised else None
    return EntityMeta(ATTRIBUTES, EVENT_TYPES, np.array(keys), shas, normalisation)


def _busy(entities, one, config, seed: int, **options) -> dict:
    """An entity with at least two events, one neighbour and one artifact."""
    batch = entities(config, 16, seed=seed, **options)
    busy = (batch["event_mask"].sum(1) >= 2) & batch["neighbor_mask"].any(1) & batch["artifact_mask"].any(1)
    return one(batch, int(np.flatnonzero(busy.numpy())[0]))


def test_lists_only_real_events_with_their_types_times_and_attention(trained, entities, one):
    entity = _busy(entities, one, trained.config, seed=20, align="right", garbage=True)
    explanation = explain_entity(trained, entity, _meta(entity), "regression")
    slots = np.flatnonzero(entity["event_mask"][0].numpy())
    with torch.no_grad():
        attention = trained(entity).event_attention[0]
    assert [event["index"] for event in explanation["events"]] == list(range(len(slots)))
    for event, slot in zip(explanation["events"], slots):
        assert event["event_type"] == EVENT_TYPES[int(entity["event_type"][0, slot]) - 1]
        expected = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(hours=int(slot))
        assert datetime.fromisoformat(event["timestamp"]) == expected
        assert event["attention"] == pytest.approx(float(attention[slot]), rel=1e-5, abs=1e-9)
    assert sum(event["attention"] for event in explanation["events"]) == pytest.approx(1.0, rel=1e-4)


def test_groups_name_real_inputs_and_add_up_to_the_change(attention_model, entities, one):
    entity = _busy(entities, one, attention_model.config, seed=21, align="right", garbage=True)
    explanation = explain_entity(attention_model, entity, _meta(entity), "logit")
    attributes = explanation["attributes"]
    assert sorted(row["name"] for row in attributes) == sorted(ATTRIBUTES)
    assert [abs(row["attribution"]) for row in attributes] == sorted((abs(row["attribution"]) for row in attributes),
                                                                     reverse=True)
    for row in attributes:
        index = ATTRIBUTES.index(row["name"])
        original = float(entity["attributes"][0, index]) * STD[index] + MEAN[index]
        assert row["value"] == pytest.approx(original, rel=1e-5, abs=1e-6)
    real = np.flatnonzero(entity["artifact_mask"][0].numpy())
    assert [artifact["sha256"][:2] for artifact in explanation["artifacts"]] == [f"{slot:02d}" for slot in real]
    assert {artifact["artifact_type"] for artifact in explanation["artifacts"]} <= {"image", "audio"}
    assert explanation["graph"]["neighbors"] == int(entity["neighbor_mask"].sum())
    total = (sum(row["attribution"] for row in attributes) + sum(row["attribution"] for row in explanation["events"])
             + sum(row["attribution"] for row in explanation["artifacts"]) + explanation["graph"]["attribution"])
    change = explanation["f_x"] - explanation["f_baseline"]
    assert abs(total - change) <= explanation["convergence_delta"] + 1e-4
    assert explanation["convergence_delta"] <= 0.01 * abs(change)
    assert len(explanation["top_reasons"]) == 5
    assert [abs(r["attribution"]) for r in explanation["top_reasons"]] == sorted(
        (abs(r["attribution"]) for r in explanation["top_reasons"]), reverse=True)


def test_values_stay_standardised_without_statistics(attention_model, entities, one):
    entity = _busy(entities, one, attention_model.config, seed=22)
    explanation = explain_entity(attention_model, entity, _meta(entity, normalised=False), "regression")
    values = {row["name"]: row["value"] for row in explanation["attributes"]}
    assert [values[name] for name in ATTRIBUTES] == pytest.approx(entity["attributes"][0].tolist(), rel=1e-5)


def test_same_entity_same_bytes(trained, entities, one):
    entity = _busy(entities, one, trained.config, seed=23, garbage=True)
    first, second = (json.dumps(explain_entity(trained, entity, _meta(entity), "probability")) for _ in range(2))
    assert first == second
    copy = {key: value.clone() for key, value in entity.items()}
    assert json.dumps(explain_entity(trained, copy, _meta(copy), "probability")) == first


def test_narrative_names_the_top_reasons(attention_model, entities, one):
    entity = _busy(entities, one, attention_model.config, seed=24)
    explanation = explain_entity(attention_model, entity, _meta(entity), "logit")
    with torch.no_grad():
        output = attention_model(entity)
    prediction = {"probability": float(output.probability[0]), "regression": float(output.regression[0])}
    text = narrative(explanation, prediction)
    assert text.startswith(f"probability {prediction['probability']:.2f}, mainly: ")
    assert all(reason["label"] in text for reason in explanation["top_reasons"][:3])
    assert text == narrative(explanation, prediction)


def test_narrative_mentions_the_top_attribute(attention_model, entities, one):
    entity = one(entities(attention_model.config, 1, seed=25), 0)
    for key in ("event_mask", "neighbor_mask", "artifact_mask"):
        entity[key] = torch.zeros_like(entity[key])
    explanation = explain_entity(attention_model, entity, _meta(entity), "regression")
    assert explanation["events"] == [] and explanation["artifacts"] == []
    top = explanation["attributes"][0]
    text = narrative(explanation, {"regression": explanation["f_x"]})
    assert f"attribute {top['name']} ({top['attribution']:+.2f})" in text


def test_narrative_needs_the_explained_head(attention_model, entities, one):
    entity = _busy(entities, one, attention_model.config, seed=26)
    explanation = explain_entity(attention_model, entity, _meta(entity), "ranking_score")
    with pytest.raises(ExplainError, match="ranking_score"):
        narrative(explanation, {"probability": 0.5})
