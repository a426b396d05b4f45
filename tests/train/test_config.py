"""TrainConfig: configs/train.yaml maps onto it, the model's own settings, what is in the run_id."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from dmas.model.config import ModelArchitecture
from dmas.model.losses import LossWeights
from dmas.train.config import TrainConfig, run_id_for

REPO_CONFIG = "configs/train.yaml"
MANIFEST = {"tables": {"entities": 1}, "feature_version": "f", "as_of": None}


def test_the_shipped_yaml_is_the_defaults_and_names_the_real_flag():
    from dmas.cli import _parser

    with open(REPO_CONFIG) as handle:
        text = handle.read()
    assert TrainConfig.model_validate(yaml.safe_load(text)) == TrainConfig()
    assert "dmas train --train-config configs/train.yaml" in text
    assert _parser().parse_args(["train", "--train-config", REPO_CONFIG]).train_config == REPO_CONFIG


def test_model_and_loss_settings_are_the_models_own_types():
    config = TrainConfig.model_validate({"model": {"dropout": 0.2, "event_encoder": "spectral"},
                                         "loss_weights": {"ranking": 0.5}})
    assert isinstance(config.model, ModelArchitecture) and config.model.dropout == 0.2
    assert isinstance(config.loss_weights, LossWeights) and config.loss_weights.ranking == 0.5
    with pytest.raises(ValidationError, match="dropout"):
        TrainConfig.model_validate({"model": {"dropout": 1.5}})
    with pytest.raises(ValidationError, match="n_attributes"):  # sizes come from the data, not the config
        TrainConfig.model_validate({"model": {"n_attributes": 3}})


def test_dropout_changes_the_run_id_and_how_a_run_trains_does_not():
    base = run_id_for(TrainConfig(), MANIFEST, "code")
    assert run_id_for(TrainConfig.model_validate({"model": {"dropout": 0.2}}), MANIFEST, "code") != base
    assert run_id_for(TrainConfig(in_process_max_entity_epochs=0), MANIFEST, "code") == base
    assert "in_process_max_entity_epochs" not in TrainConfig().canonical_json()


@pytest.mark.parametrize("field", ["deterministic", "use_gpu"])
def test_booleans_are_strict(field):
    with pytest.raises(ValidationError, match=field):
        TrainConfig.model_validate({field: 0})
    assert getattr(TrainConfig.model_validate({field: True}), field) is True
