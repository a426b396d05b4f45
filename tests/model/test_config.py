"""ModelConfig: defaults, errors that name the field, canonical JSON."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dmas.model import ModelConfig
from dmas.model.config import SEQUENCE_MODEL_SIZES, ModelArchitecture, SequenceModelSize

BASE = {"n_attributes": 6, "n_event_types": 5, "n_interaction_types": 3,
        "artifact_dims": {3: 251, 1: 296, 2: 143}, "max_events": 50}


def test_defaults_give_the_published_widths():
    config = ModelConfig(**BASE)
    assert config.d_concat == 144
    assert config.d_fused == 64
    assert config.artifact_vector_dim == 296
    assert list(config.artifact_dims) == [1, 2, 3]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"d_event": 30}, "d_event"),
    ({"n_heads": 0}, "n_heads"),
    ({"artifact_dims": {0: 10}}, "artifact_dims"),
    ({"artifact_dims": {1: 0}}, "artifact_dims"),
    ({"artifact_dims": {}}, "artifact_dims"),
    ({"max_events": 0}, "max_events"),
    ({"n_attributes": 0}, "n_attributes"),
    ({"event_encoder": "lstm"}, "event_encoder"),
    ({"dropout": 1.0}, "dropout"),
    ({"disabled": ["sound"]}, "disabled"),
    ({"disabled": ["attributes", "events", "graph", "artifacts"]}, "disabled"),
    ({"d_evnt": 64}, "d_evnt"),
])
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ValidationError, match=field):
        ModelConfig(**{**BASE, **overrides})


def test_json_round_trip_is_canonical():
    config = ModelConfig(**BASE, disabled={"graph", "artifacts", "events"}, event_encoder="spectral")
    text = config.model_dump_json()
    assert '"disabled":["artifacts","events","graph"]' in text
    assert '"artifact_dims":{"1":296,"2":143,"3":251}' in text
    assert ModelConfig.model_validate_json(text) == config


def test_a_training_config_sets_every_non_data_field_of_the_model():
    architecture = ModelArchitecture(dropout=0.2, d_event=32, n_heads=2, disabled={"graph"})
    config = ModelConfig(**BASE, **architecture.model_dump())
    assert config.dropout == 0.2 and config.d_event == 32 and config.disabled == {"graph"}
    assert set(ModelConfig.model_fields) - set(ModelArchitecture.model_fields) == set(BASE)
    with pytest.raises(ValidationError, match="multiple of n_heads"):
        ModelArchitecture(d_event=30)


@pytest.mark.parametrize("encoder", ["attention", "spectral", "resonance", "eigenstate"])
def test_every_event_encoder_is_a_choice(encoder):
    assert ModelConfig(**BASE, event_encoder=encoder).event_encoder == encoder


def test_the_default_architecture_serialises_as_before():
    # a run_id hashes this JSON: new encoder choices must not change the default's bytes
    assert ModelArchitecture().model_dump_json() == (
        '{"d_attr":16,"d_event":64,"n_heads":4,"d_graph":32,"d_artifact":32,"d_fused":64,'
        '"event_encoder":"attention","dropout":0.0,"disabled":[]}')


def test_sequence_model_sizes_validate():
    assert set(SEQUENCE_MODEL_SIZES) == {"tiny", "small", "base", "gpu-76m", "gpu-454m", "gpu-983m"}
    with pytest.raises(ValidationError, match="multiple of n_heads"):
        SequenceModelSize(d_model=30, n_layers=1, n_heads=4, seq_len=8)
    with pytest.raises(ValidationError, match="layer"):
        SequenceModelSize(layer="lstm", d_model=8, n_layers=1, n_heads=2, seq_len=8)
