"""FullModel: outputs, independence from padding and from other entities, ablation, batch checks,
bit-exact determinism, and that it can learn a signal spread over two modalities."""

from __future__ import annotations

import pytest
import torch

from dmas.model import BatchError, FullModel, ModelConfig, multitask_loss

COUNTS = [(5, 2, 1), (0, 0, 0), (12, 4, 3), (1, 1, 2)]  # (events, neighbours, artifacts) per entity


def model_for(config: ModelConfig, seed: int = 0) -> FullModel:
    torch.manual_seed(seed)
    return FullModel(config).eval()


def test_output_shapes(small_config, make_batch, mixer):
    config = small_config(event_encoder=mixer)
    out = model_for(config)(make_batch(config, COUNTS))
    assert out.regression.shape == out.logit.shape == out.probability.shape == out.ranking_score.shape == (4,)
    assert out.embedding.shape == (4, 64)
    assert out.event_attention.shape == (4, 12)
    torch.testing.assert_close(out.probability, torch.sigmoid(out.logit))
    for tensor in out:
        assert torch.isfinite(tensor).all()


def test_parts_have_the_published_widths(small_config, make_batch):
    config = small_config()
    parts = model_for(config).encode_parts(make_batch(config, COUNTS))
    assert [part.shape[1] for part in parts[:4]] == [16, 64, 32, 32]


def test_padding_is_never_read(small_config, make_batch, scramble_padding, mixer):
    config = small_config(event_encoder=mixer)
    model = model_for(config)
    batch = make_batch(config, COUNTS)
    for clean, garbage in zip(model(batch), model(scramble_padding(batch, config))):
        assert torch.equal(clean, garbage)


def test_an_entity_does_not_depend_on_the_rest_of_the_batch(small_config, make_batch, mixer):
    config = small_config(event_encoder=mixer)
    model = model_for(config)
    pair = make_batch(config, COUNTS[:2])
    together = model(pair)
    for i in range(2):
        alone = model({key: value[i:i + 1] for key, value in pair.items()})
        for joint, single in zip(together, alone):
            torch.testing.assert_close(joint[i:i + 1], single, rtol=1e-5, atol=1e-6)


def test_disabled_modality_is_zero_and_has_no_encoder(small_config, make_batch):
    config = small_config(disabled={"graph", "events"})
    model = model_for(config)
    parts = model.encode_parts(make_batch(config, COUNTS))
    assert sorted(model.encoders) == ["artifacts", "attributes"]
    assert (parts.graph == 0).all() and (parts.events == 0).all() and (parts.event_attention == 0).all()
    assert (parts.attributes != 0).any() and (parts.artifacts != 0).any()
    assert model.fuse.in_features == 144


def test_without_zeroes_only_the_named_parts(small_config, make_batch):
    config = small_config()
    model = model_for(config)
    parts = model.encode_parts(make_batch(config, COUNTS))
    ablated = parts.without("artifacts", "events")
    assert (ablated.artifacts == 0).all() and (ablated.events == 0).all() and (ablated.event_attention == 0).all()
    assert torch.equal(ablated.attributes, parts.attributes) and torch.equal(ablated.graph, parts.graph)
    assert not torch.equal(model.from_parts(ablated).regression, model.from_parts(parts).regression)
    with pytest.raises(ValueError, match="sound"):
        parts.without("sound")


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.pop("neighbor_mask"), "neighbor_mask"),
    (lambda b: b.update(event_type=b["event_type"].int()), "event_type.*int64"),
    (lambda b: b.update(attributes=b["attributes"][:, :5]), "A=5"),
    (lambda b: b.update(event_mask=b["event_mask"][:3]), "event_mask.*B=3"),
    (lambda b: b.update(artifact_vector=b["artifact_vector"][..., :9]), "D=9"),
    (lambda b: b["event_type"].__setitem__((0, 0), 6), "n_event_types"),
    (lambda b: b["neighbor_type"].__setitem__((0, 0), 0), "n_interaction_types"),
    (lambda b: b["artifact_type"].__setitem__((0, 0), 4), "artifact_dims"),
])
def test_batch_errors_name_the_key(small_config, make_batch, change, message):
    config = small_config()
    batch = make_batch(config, COUNTS)
    change(batch)
    with pytest.raises(BatchError, match=message):
        model_for(config)(batch)


def test_rejects_more_events_than_max_events(small_config, make_batch):
    config = small_config()
    with pytest.raises(BatchError, match="max_events=12"):
        model_for(config)(make_batch(config, COUNTS, length=13))


def sgd_weights(config: ModelConfig, batch: dict) -> dict[str, torch.Tensor]:
    model = model_for(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        total, _ = multitask_loss(model(batch), batch)
        total.backward()
        optimizer.step()
    return model.state_dict()


def test_same_seed_gives_bit_identical_outputs_and_training(small_config, make_batch, mixer):
    config = small_config(event_encoder=mixer, dropout=0.1)
    batch = make_batch(config, COUNTS)
    for first, second in zip(model_for(config)(batch), model_for(config)(batch)):
        assert torch.equal(first, second)
    batch.update(target_regression=torch.randn(4), target_regression_mask=torch.ones(4, dtype=torch.bool),
                 target_binary=torch.tensor([0.0, 1.0, 1.0, 0.0]), target_binary_mask=torch.ones(4, dtype=torch.bool),
                 target_ranking=torch.tensor([0.0, 1.0, 2.0, 1.0]), target_ranking_mask=torch.ones(4, dtype=torch.bool))
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(1)
        first = sgd_weights(config, batch)
        torch.manual_seed(1)
        second = sgd_weights(config, batch)
    finally:
        torch.use_deterministic_algorithms(previous)
    initial = model_for(config).state_dict()
    assert any(not torch.equal(first[name], initial[name]) for name in first)
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_learns_attributes_plus_mean_event_value(small_config, make_batch, mixer):
    config = small_config(event_encoder=mixer)
    generator = torch.Generator().manual_seed(0)
    counts = [(int(n), 2, 1) for n in torch.randint(1, 13, (128,), generator=generator)]
    batch = make_batch(config, counts, seed=3)
    mask = batch["event_mask"]
    mean_value = (batch["event_value"] * mask).sum(1) / mask.sum(1)
    target = 2 * batch["attributes"][:, 0] + mean_value
    batch.update(target_regression=target, target_regression_mask=torch.ones(128, dtype=torch.bool))
    model = model_for(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        optimizer.zero_grad()
        total, parts = multitask_loss(model(batch), batch)
        total.backward()
        optimizer.step()
    # attributes alone would leave the variance of the event mean unexplained
    assert parts["regression"].item() < 0.1 * mean_value.var().item()


def test_a_deeper_event_encoder_stacks_blocks_and_still_ignores_padding(small_config, make_batch, scramble_padding,
                                                                        mixer):
    shallow, deep = small_config(event_encoder=mixer), small_config(event_encoder=mixer, event_layers=3)
    assert len(model_for(shallow).encoders["events"].more_blocks) == 0
    model = model_for(deep)
    assert len(model.encoders["events"].more_blocks) == 2
    block = sum(p.numel() for p in model.encoders["events"].block.parameters())
    assert (sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model_for(shallow).parameters())
            == 2 * block)
    batch = make_batch(deep, COUNTS)
    for clean, garbage in zip(model(batch), model(scramble_padding(batch, deep))):
        torch.testing.assert_close(clean, garbage, rtol=0, atol=0)
    assert ModelConfig.model_validate_json(deep.model_dump_json()).event_layers == 3
    assert "event_layers" not in shallow.model_dump_json()  # one block serialises as before (run_ids unchanged)
