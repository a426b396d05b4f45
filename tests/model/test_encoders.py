"""Each encoder: output shapes, masks that really mask, finite outputs for entities with nothing."""

from __future__ import annotations

import torch

from dmas.model import ArtifactEncoder, AttrEncoder, EventSequenceEncoder, GraphEncoder

COUNTS = [(5, 2, 1), (0, 0, 0), (12, 4, 3), (1, 1, 2)]  # (events, neighbours, artifacts) per entity


def events(encoder: EventSequenceEncoder, batch: dict):
    return encoder(batch["event_type"], batch["event_value"], batch["event_dt_prev"], batch["event_age"],
                   batch["event_mask"])


def event_encoder(config, mixer: str) -> EventSequenceEncoder:
    torch.manual_seed(0)
    encoder = EventSequenceEncoder(config.n_event_types, config.d_event, config.n_heads, config.max_events, mixer)
    with torch.no_grad():  # a non-trivial pooling query, so the weights are not a plain mean
        encoder.pool.query.normal_()
    return encoder


def graph(encoder: GraphEncoder, batch: dict):
    return encoder(batch["attributes"], batch["neighbor_attributes"], batch["neighbor_type"],
                   batch["neighbor_value"], batch["neighbor_mask"])


def artifacts(encoder: ArtifactEncoder, batch: dict):
    return encoder(batch["artifact_vector"], batch["artifact_type"], batch["artifact_mask"])


def test_attribute_encoder_shape(small_config, make_batch):
    config = small_config()
    out = AttrEncoder(config.n_attributes, 16)(make_batch(config, COUNTS)["attributes"])
    assert out.shape == (4, 16)


def test_event_encoder_shapes_and_attention(small_config, make_batch, mixer):
    config = small_config()
    batch = make_batch(config, COUNTS)
    pooled, weights = events(event_encoder(config, mixer), batch)
    assert pooled.shape == (4, 64)
    assert weights.shape == (4, 12)
    assert torch.isfinite(pooled).all()
    mask = batch["event_mask"]
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert (weights[mask] > 0).all()


def test_entity_without_events_gets_the_learned_empty_vector(small_config, make_batch, mixer):
    config = small_config()
    encoder = event_encoder(config, mixer)
    with torch.no_grad():
        encoder.pool.empty.normal_()
    pooled, weights = events(encoder, make_batch(config, COUNTS))
    assert torch.equal(pooled[1], encoder.pool.empty.detach())
    assert (weights[1] == 0).all()


def test_event_padding_is_never_read(small_config, make_batch, scramble_padding, mixer):
    config = small_config()
    encoder = event_encoder(config, mixer)
    batch = make_batch(config, COUNTS)
    clean, garbage = events(encoder, batch), events(encoder, scramble_padding(batch, config))
    assert torch.equal(clean[0], garbage[0])
    assert torch.equal(clean[1], garbage[1])


def test_event_alignment_does_not_matter(small_config, make_batch, mixer):
    config = small_config()
    encoder = event_encoder(config, mixer)
    left = make_batch(config, COUNTS, align="left")
    right = make_batch(config, COUNTS, align="right")
    (left_pooled, left_weights), (right_pooled, right_weights) = events(encoder, left), events(encoder, right)
    torch.testing.assert_close(left_pooled, right_pooled)
    torch.testing.assert_close(left_weights[left["event_mask"]], right_weights[right["event_mask"]])


def test_event_encoder_takes_histories_shorter_than_max_events(small_config, make_batch, mixer):
    config = small_config()
    pooled, weights = events(event_encoder(config, mixer), make_batch(config, [(3, 0, 0), (5, 0, 0)], length=5))
    assert pooled.shape == (2, 64) and weights.shape == (2, 5)


def test_graph_encoder(small_config, make_batch, scramble_padding):
    config = small_config()
    torch.manual_seed(0)
    encoder = GraphEncoder(config.n_attributes, config.n_interaction_types, 32)
    batch = make_batch(config, COUNTS)
    out = graph(encoder, batch)
    assert out.shape == (4, 32)
    assert torch.equal(out, graph(encoder, scramble_padding(batch, config)))
    # no neighbours: the attributes with a zero mean
    alone = torch.relu(encoder.out(torch.cat([batch["attributes"][1], torch.zeros(32)])))
    torch.testing.assert_close(out[1], alone)


def test_artifact_encoder(small_config, make_batch, scramble_padding):
    config = small_config()
    torch.manual_seed(0)
    encoder = ArtifactEncoder(config.artifact_dims, 32)
    batch = make_batch(config, COUNTS)
    out = artifacts(encoder, batch)
    assert out.shape == (4, 32)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all()
    assert torch.equal(out, artifacts(encoder, scramble_padding(batch, config)))


def test_artifact_type_selects_the_projection(small_config, make_batch):
    config = small_config()
    torch.manual_seed(0)
    encoder = ArtifactEncoder(config.artifact_dims, 32)
    batch = make_batch(config, [(0, 0, 1)])
    batch["artifact_vector"][0, 0, :7] = 1.0
    outputs = []
    for artifact_type in (1, 2, 3):
        batch["artifact_type"][0, 0] = artifact_type
        outputs.append(artifacts(encoder, batch))
    assert not torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[1], outputs[2])
