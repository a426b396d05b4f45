"""The original stack's /train bodies and dmas' own give the TrainConfig they ask for; typos fail loudly."""

from __future__ import annotations

import pytest

from dmas.errors import ConfigError, DmasError
from dmas.train.config import TrainConfig
from dmas.train.requests import REQUEST_DEFAULT_EPOCHS, train_config_from_request

ORIGINAL_FLAT = {"epochs": 100, "batch_size": 32, "learning_rate": 0.001, "seed": 1234}


@pytest.mark.parametrize("body", [None, {}, {"config": {}}, {"config": None}])
def test_an_empty_request_trains_the_original_default_of_three_epochs(body):
    config, ignored = train_config_from_request(body)
    assert config == TrainConfig(epochs=REQUEST_DEFAULT_EPOCHS) and REQUEST_DEFAULT_EPOCHS == 3
    assert ignored == []


@pytest.mark.parametrize("body", [ORIGINAL_FLAT, {"config": ORIGINAL_FLAT}])
def test_the_flat_and_wrapped_forms_set_the_same_fields(body):
    config, ignored = train_config_from_request(body)
    assert (config.epochs, config.batch_size, config.learning_rate, config.seed) == (100, 32, 0.001, 1234)
    assert ignored == []


def test_a_request_without_epochs_gets_three_and_keeps_the_rest():
    config, _ = train_config_from_request({"seed": 7, "model": {"dropout": 0.1}})
    assert (config.epochs, config.seed, config.model.dropout) == (3, 7, 0.1)


def test_the_original_top_level_limits_are_tensorize_settings():
    original = {**ORIGINAL_FLAT, "max_neighbors": 10, "max_artifacts_per_entity": 5}
    for body in (original, {"config": original}, {"config": ORIGINAL_FLAT, "max_neighbors": 10,
                                                  "max_artifacts_per_entity": 5}):
        config, _ = train_config_from_request(body)
        assert (config.tensorize.max_neighbors, config.tensorize.max_artifacts_per_entity) == (10, 5)
        assert config.tensorize.max_events == 50  # the rest of tensorize keeps its defaults
    config, _ = train_config_from_request({"max_neighbors": 3, "tensorize": {"max_events": 20}})
    assert (config.tensorize.max_neighbors, config.tensorize.max_events) == (3, 20)


def test_keys_the_original_api_took_without_a_dmas_equivalent_are_ignored_and_listed():
    config, ignored = train_config_from_request({"epochs": 4, "idempotency_key": "nightly-2026-12-01"})
    assert config.epochs == 4 and ignored == ["idempotency_key"]


@pytest.mark.parametrize(("body", "named"), [
    ({"epoch": 10}, "'epoch' (did you mean 'epochs'?)"),
    ({"config": {"learning_rte": 0.1}}, "'learning_rte' (did you mean 'learning_rate'?)"),
    ({"epochs": 2, "colour": "red", "bach_size": 3}, "'bach_size' (did you mean 'batch_size'?), 'colour'"),
    ({"tensorize": {"max_neighbour": 3}}, "tensorize.max_neighbour"),
    ({"model": {"dropuot": 0.2}}, "model.dropuot"),
])
def test_unknown_keys_fail_with_an_error_naming_them(body, named):
    with pytest.raises(ConfigError) as caught:
        train_config_from_request(body)
    assert named in str(caught.value) and isinstance(caught.value, DmasError)


@pytest.mark.parametrize(("body", "message"), [
    ({"epochs": 0}, "epochs: Input should be greater than 0"),
    ({"deterministic": 0}, "deterministic: Input should be a valid boolean"),
    ({"config": {"epochs": 5}, "epochs": 6}, "'epochs' is given twice"),
    ({"max_neighbors": 2, "tensorize": {"max_neighbors": 3}}, "'tensorize.max_neighbors' is given twice"),
    ({"config": [1, 2]}, "'config' must be a JSON object"),
    ({"max_neighbors": 2, "tensorize": 5}, "'tensorize' must be a JSON object"),
])
def test_invalid_requests_say_what_is_wrong(body, message):
    with pytest.raises(ConfigError) as caught:
        train_config_from_request(body)
    assert message in str(caught.value)


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(ConfigError, match="JSON object"):
        train_config_from_request([{"epochs": 3}])  # type: ignore[arg-type]


@pytest.mark.parametrize("body, field", [({"learning_rate": float("inf")}, "learning_rate"),
                                         ({"loss_weights": {"regression": float("nan")}}, "loss_weights.regression"),
                                         ({"quality_gates": {"regression.rmse": float("-inf")}}, "quality_gates")])
def test_numbers_that_json_bodies_can_spell_but_cannot_train_are_refused(body, field):
    """Python's JSON reads Infinity and NaN: a run must not start with them (nor a job end in a 500)."""
    with pytest.raises(ConfigError, match=f"{field}.*finite"):
        train_config_from_request(body)
