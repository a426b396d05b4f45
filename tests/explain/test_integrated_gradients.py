"""Integrated gradients: completeness on trained models, exact zeros where inputs cannot matter, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmas.explain import ExplainError, attribute
from dmas.explain.integrated_gradients import ATTRIBUTED, EVENT_TIMES
from dmas.scoring.forward import SCORING_BATCH, score_arrays

ENTITIES = 8


@pytest.mark.parametrize("target", ["regression", "logit", "ranking_score"])
def test_completeness_within_one_percent(trained, entities, one, target):
    batch = entities(trained.config, ENTITIES, seed=1)
    for i in range(ENTITIES):
        found = attribute(trained, one(batch, i), target)
        change = found.f_x - found.f_baseline
        assert abs(change) > 0.01, "an entity whose prediction equals the baseline's says nothing about completeness"
        assert found.delta <= 0.01 * abs(change), (i, found.delta, change)
        assert found.delta == pytest.approx(abs(found.total - change), abs=1e-9)


def test_completeness_with_event_times_and_probability(attention_model, entities, one):
    batch = entities(attention_model.config, 4, seed=2)
    for i in range(4):
        found = attribute(attention_model, one(batch, i), "probability", event_times=True)
        assert set(found.attributions) == set(ATTRIBUTED) | set(EVENT_TIMES)
        assert found.delta <= 0.01 * abs(found.f_x - found.f_baseline)


def test_f_x_is_the_prediction_as_served(trained, entities, one):
    """To the bit: the explanation's f_x is what /predict answers (its fixed-shape scoring pass)."""
    entity = one(entities(trained.config, 1, seed=3), 0)
    heads = ("regression", "logit", "probability", "ranking_score")
    served = score_arrays(trained, {key: value.numpy() for key, value in entity.items()}, heads)
    for target in heads:
        assert attribute(trained, entity, target).f_x == float(served[target][0])


def test_padding_gets_exactly_zero(trained, entities, one):
    """Right-aligned items with NaN and huge values in the padding (and past each artifact type's length)."""
    batch = entities(trained.config, 6, seed=4, align="right", garbage=True)
    for i in range(6):
        entity = one(batch, i)
        found = attribute(trained, entity, "regression")
        scores = found.attributions
        assert all(np.isfinite(values).all() for values in scores.values())
        assert (scores["event_value"][~entity["event_mask"][0].numpy()] == 0).all()
        neighbor_padding = ~entity["neighbor_mask"][0].numpy()
        assert (scores["neighbor_attributes"][neighbor_padding] == 0).all()
        assert (scores["neighbor_value"][neighbor_padding] == 0).all()
        for slot, (real, kind) in enumerate(zip(entity["artifact_mask"][0], entity["artifact_type"][0])):
            read = trained.config.artifact_dims[int(kind)] if real else 0
            assert (scores["artifact_vector"][slot, read:] == 0).all()
        assert found.delta <= 0.01 * abs(found.f_x - found.f_baseline)


def test_an_entity_without_items_has_attributions_only_on_attributes(attention_model, entities, one):
    entity = one(entities(attention_model.config, 1, seed=5), 0)
    for key in ("event_mask", "neighbor_mask", "artifact_mask"):
        entity[key] = torch.zeros_like(entity[key])
    found = attribute(attention_model, entity, "regression")
    assert all((found.attributions[key] == 0).all() for key in ATTRIBUTED if key != "attributes")
    assert found.attributions["attributes"].sum() == pytest.approx(found.f_x - found.f_baseline, rel=0.01)


@pytest.mark.parametrize("disabled, unread", [("artifacts", ["artifact_vector"]),
                                              ("events", ["event_value", *EVENT_TIMES]),
                                              ("graph", ["neighbor_attributes", "neighbor_value"])])
def test_a_disabled_modality_gets_zero(small_config, train, entities, one, disabled, unread):
    model = train(small_config(disabled=frozenset({disabled})), steps=30)
    batch = entities(model.config, 3, seed=6)
    for i in range(3):
        found = attribute(model, one(batch, i), "ranking_score", event_times=True)
        assert all((found.attributions[key] == 0).all() for key in unread)
        assert found.delta <= 0.01 * abs(found.f_x - found.f_baseline)


def test_attributes_still_count_through_the_graph_when_their_encoder_is_disabled(small_config, train, entities, one):
    model = train(small_config(disabled=frozenset({"attributes"})), steps=30)
    found = attribute(model, one(entities(model.config, 1, seed=7), 0), "regression")
    assert np.abs(found.attributions["attributes"]).sum() > 0


def test_same_entity_same_bits(trained, entities, one):
    entity = one(entities(trained.config, 1, seed=8), 0)
    first, second = (attribute(trained, entity, "logit") for _ in range(2))
    assert first.delta == second.delta and first.n_nodes == second.n_nodes
    assert all(np.array_equal(first.attributions[key], second.attributions[key]) for key in first.attributions)


def test_the_first_pass_runs_all_steps_in_one_batch(attention_model, entities, one):
    rows = []
    hook = attention_model.register_forward_pre_hook(lambda _, args: rows.append(args[0]["attributes"].shape[0]))
    try:
        found = attribute(attention_model, one(entities(attention_model.config, 1, seed=9), 0), "regression",
                          n_steps=50)
    finally:
        hook.remove()
    # f(x) and f(baseline) in one scoring-shaped pass, every Gauss-Legendre node of the first pass at once,
    # then the head at the 26 segment ends (for each segment's completeness error)
    assert rows[:3] == [SCORING_BATCH, 50, 26]
    assert found.n_nodes == 50 + sum(rows[3::2])  # each later round: the nodes of the segments it bisected


def test_the_path_integral_reads_only_the_entitys_event_slots(trained, entities, one):
    """Events in the middle of the window: the IG passes run on the slots from the
    first real event to the last, and the head there equals the full window's (both mixers)."""
    entity = one(entities(trained.config, 1, seed=11), 0)
    mask = torch.zeros_like(entity["event_mask"])
    mask[0, 3:7] = True
    entity["event_mask"] = mask
    lengths = []
    hook = trained.register_forward_pre_hook(lambda _, args: lengths.append(args[0]["event_type"].shape[1]))
    try:
        found = attribute(trained, entity, "regression")
    finally:
        hook.remove()
    full = trained.config.max_events
    assert lengths[0] == full and set(lengths[1:]) == {4}  # the scoring-shape pass, then only slots 3..6
    assert (found.attributions["event_value"][:3] == 0).all() and (found.attributions["event_value"][7:] == 0).all()
    assert found.attributions["event_value"][3:7].any()
    assert found.delta <= 0.01 * abs(found.f_x - found.f_baseline)
    cleaned = {key: torch.where(mask, value, 0) if key.startswith("event_") and key != "event_mask" else value
               for key, value in entity.items()}
    window = {key: value[:, 3:7] if key.startswith("event_") else value for key, value in cleaned.items()}
    with torch.no_grad():
        assert float(trained(window).regression) == pytest.approx(float(trained(cleaned).regression), rel=1e-5)


def test_bad_requests_are_refused(attention_model, entities, one):
    batch = entities(attention_model.config, 2, seed=10)
    with pytest.raises(ExplainError, match="one entity at a time"):
        attribute(attention_model, batch, "regression")
    with pytest.raises(ExplainError, match="target must be one of"):
        attribute(attention_model, one(batch, 0), "embedding")
    with pytest.raises(ExplainError, match="baseline must be one of"):
        attribute(attention_model, one(batch, 0), "regression", baseline="zeros")
    attention_model.train()
    try:
        with pytest.raises(ExplainError, match="eval"):
            attribute(attention_model, one(batch, 0), "regression")
    finally:
        attention_model.eval()
