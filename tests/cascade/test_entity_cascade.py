"""A cascade on the store's entities: FullModel proxies through dmas' training loop, end to end.

A 240-entity synthetic store (made as tests/train make theirs) and 6 + 3 + 2 tiny runs: the law has
five parameters, and a bootstrap draw must keep six distinct (N, D) points to refit it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmas.cascade.config import EntityData, SequenceData, load_cascade_config, merged
from dmas.cascade.entities import EntityDataError, layer_groups, load_entity_rows, train_config
from dmas.cascade.proxy import ProxySpec
from dmas.cascade.run import report_sha256, run_cascade
from dmas.config import load_settings
from dmas.errors import ConfigError
from dmas.ingest.tabular import ingest_table
from dmas.model import FullModel
from dmas.train.loop import model_config_for, train_model
from dmas.train.runner import serialize_weights

TIERS = {
    "tiers": [
        {"name": "tier1", "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 12, "n_layers": 1}],
         "fractions": [0.25, 0.5, 1.0]},
        {"name": "tier2", "sizes": [{"d_model": 16, "n_layers": 1}, {"d_model": 20, "n_layers": 1},
                                    {"d_model": 24, "n_layers": 1}], "fractions": [0.5]},
        {"name": "tier3", "sizes": [{"d_model": 24, "n_layers": 2}], "fractions": [0.75, 1.0]},
    ],
    "full": {"size": {"d_model": 32, "n_layers": 2}},
    "scaling": {"bootstrap_draws": 40, "starts": 4},
}


def entity_config(store_uri: str, **changes):
    base = merged(TIERS, {"data": {"kind": "entities", "store": store_uri, "epochs": 2, "batch_size": 32,
                                   "record_every": 1}, "execution": {"executor": "in_process"}})
    return load_cascade_config(overrides=merged(base, changes))


@pytest.fixture(scope="module")
def store(tmp_path_factory, synthetic_store):
    return synthetic_store(tmp_path_factory.mktemp("entity-cascade"), n_entities=240, seed=5,
                           events_per_entity=8, image_fraction=0.3, audio_fraction=0.1, video_fraction=0.0)


@pytest.fixture(scope="module")
def in_process(store):
    return run_cascade(entity_config(store.uri))


def test_the_entity_cascade_trains_fullmodels_and_predicts_the_full_one(in_process, store):
    report = in_process.report
    rows = load_entity_rows(entity_config(store.uri).data, load_settings(store_uri=store.uri))
    assert report["data"]["kind"] == "entities" and report["data"]["sha256"] == rows.sha256
    assert report["data"]["entities"]["train"] == len(rows.order)
    assert [run["run"] for run in report["runs"]] == [*(f"tier1-0{i}" for i in range(6)), "tier2-00", "tier2-01",
                                                       "tier2-02", "tier3-00", "tier3-01"]
    assert "error" not in report["prediction"], report["prediction"]
    interval = report["prediction"]["interval"]
    assert interval["lower"] <= report["prediction"]["predicted"] <= interval["upper"]
    for run in report["runs"]:
        train_rows = rows.train_rows(run["fraction"])
        assert run["tokens_seen"] == 2 * train_rows  # entity-epochs
        assert run["steps"] == 2 * -(-train_rows // 32)  # every synthetic entity has targets: no batch skipped
        assert run["validation_loss"] > 0 and len(run["loss_curve"]) == run["steps"]
        blocks = {f"events.block_{i}" for i in range(run["n_layers"])}
        assert set(run["gradient_norms"]) == {"attributes", "events.input", *blocks, "events.output", "graph",
                                              "artifacts", "fusion", "heads"}
        assert all(summary["median"] > 0 for summary in run["gradient_norms"].values())  # (4 wide: dead ReLUs)
    model = report["model"]
    assert model["event_encoder"] == "resonance" and "d_event" not in model
    assert report["schedule"]["epochs"] == 2
    widths = {run["d_model"]: run["parameters"] for run in report["runs"] if run["n_layers"] == 1}
    assert sorted(widths.values()) == [widths[width] for width in sorted(widths)]  # wider, more parameters
    assert report["full"]["parameters"] > max(run["parameters"] for run in report["runs"])
    assert report["full"]["tokens_seen"] == 2 * len(rows.order)
    assert report["truth"] is None


def test_parameters_are_counted_from_the_model_each_run_trains(store):
    config = entity_config(store.uri)
    rows = load_entity_rows(config.data, load_settings(store_uri=store.uri))
    shape = config.tiers[2].sizes[0]
    torch.manual_seed(0)
    model = FullModel(model_config_for(rows.tensors, train_config(config, shape, seed=0)))
    assert rows.parameters(config, shape) == sum(p.numel() for p in model.parameters())
    assert model.config.d_event == model.config.d_fused == 24 and model.config.event_layers == 2


def test_a_fraction_takes_a_seeded_share_of_the_training_entities_and_keeps_validation_whole(store):
    rows = load_entity_rows(entity_config(store.uri).data, load_settings(store_uri=store.uri))
    quarter, half, whole = (rows.subset(fraction) for fraction in (0.25, 0.5, 1.0))
    assert set(quarter.indices("train")) < set(half.indices("train")) < set(whole.indices("train"))
    assert len(half.indices("train")) == rows.train_rows(0.5) == -(-len(rows.order) // 2)
    for subset in (quarter, half):
        np.testing.assert_array_equal(subset.indices("validation"), whole.indices("validation"))
    assert set(whole.indices("train")) == set(rows.tensors.indices("train"))
    other = load_entity_rows(entity_config(store.uri, data={"seed": 1}).data, load_settings(store_uri=store.uri))
    assert other.sha256 != rows.sha256  # the seed keys the split too


def test_the_same_config_gives_the_same_report_bytes_in_process_and_on_ray_train(in_process, store, local_ray):
    again = run_cascade(entity_config(store.uri))
    assert again.report_bytes() == in_process.report_bytes()
    events = []
    on_ray = run_cascade(entity_config(store.uri, execution={"executor": "ray_train", "workers": 2},
                                       progress_interval_s=0.5), on_progress=events.append)
    assert on_ray.timings["executor"] == "ray_train" and on_ray.timings["workers"] == 2
    assert on_ray.report_bytes() == in_process.report_bytes()
    assert events[-1]["completed"] == events[-1]["total"] == 11 and events[-1]["percent"] == 100.0
    other_seed = run_cascade(entity_config(store.uri, seed=1))
    assert report_sha256(other_seed.report) != report_sha256(in_process.report)


def test_the_store_defaults_to_the_settings_store_and_the_full_run_is_the_truth(store):
    config = entity_config(store.uri, data={"store": None}, tiers=TIERS["tiers"][2:],
                           full={"train": True, "size": {"d_model": 20, "n_layers": 1}})
    report = run_cascade(config, settings=load_settings(store_uri=store.uri)).report
    truth = report["truth"]
    assert truth["parameters"] == report["full"]["parameters"] and truth["validation_loss"] > 0
    assert len(report["runs"]) == 2 and "error" in report["prediction"]  # two runs cannot be fitted: said so


def test_the_gradient_hook_reads_the_gradients_without_changing_the_training(store):
    config = entity_config(store.uri)
    rows = load_entity_rows(config.data, load_settings(store_uri=store.uri))
    run = train_config(config, config.tiers[0].sizes[1], seed=3)
    plain, _ = train_model(rows.tensors, run)
    seen = []
    hooked, _ = train_model(rows.tensors, run, after_backward=lambda model, loss: seen.append(
        (float(loss), sum(float(p.grad.norm()) for group in layer_groups(model).values() for p in group
                          if p.grad is not None))))
    assert serialize_weights(hooked) == serialize_weights(plain)
    assert len(seen) == 2 * -(-len(rows.order) // 32) and all(norm > 0 for _, norm in seen)


def test_an_empty_store_or_one_without_targets_is_a_clear_error(tmp_path, write):
    from dmas.store import Store

    empty = Store(tmp_path / "empty")
    with pytest.raises(EntityDataError, match=r"store .*empty.*no entities"):
        run_cascade(entity_config(empty.uri))
    unlabelled = Store(tmp_path / "unlabelled")
    rows = "".join(f'e{i},"{{""x"": {i}, ""y"": {i % 7}}}"\n' for i in range(60))
    report = ingest_table(unlabelled, "entities", write("entities.csv", "entity_id,attributes\n" + rows))
    assert report["success_rows"] == 60
    with pytest.raises(EntityDataError, match=r"none of the \d+ train entities has a target.*target_regression"):
        run_cascade(entity_config(unlabelled.uri))


def test_choosing_entity_data_replaces_the_sequence_block_and_bad_fields_are_named():
    config = load_cascade_config(overrides={"data": {"kind": "entities", "store": "somewhere"}})
    assert isinstance(config.data, EntityData) and config.data.store == "somewhere"
    assert config.data.model.event_encoder == "resonance"
    assert isinstance(load_cascade_config().data, SequenceData)
    assert load_cascade_config().config_sha256() != config.config_sha256()
    with pytest.raises(ConfigError, match="data.epochs"):
        load_cascade_config(overrides={"data": {"kind": "entities", "epochs": 0}})
    with pytest.raises(ConfigError, match="model.d_event is set per run by the tiers"):
        load_cascade_config(overrides={"data": {"kind": "entities", "model": {"d_event": 32}}})
    with pytest.raises(ConfigError, match="data.kind must be sequence or entities"):
        load_cascade_config(overrides={"data": {"kind": "images"}})
    with pytest.raises(ConfigError, match="entity data trains on the CPU"):
        load_cascade_config(profile="gpu", overrides={"data": {"kind": "entities"}})
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        load_cascade_config(overrides={"data": {"kind": "entities"}, "full": {"size": {"d_model": 30, "n_layers": 1}}})


def test_a_run_spec_trains_the_same_weights_twice(store):
    config = entity_config(store.uri)
    rows = load_entity_rows(config.data, load_settings(store_uri=store.uri))
    spec = ProxySpec("tier1", 0, 8, 1, 0.5, 0)
    first, second = rows.train(spec, config), rows.train(spec, config)
    assert first.weights_sha256 == second.weights_sha256 and first.gradient_norms == second.gradient_norms
    assert rows.train(ProxySpec("tier1", 0, 8, 1, 0.5, 1), config).weights_sha256 != first.weights_sha256


def test_the_yaml_documents_the_entity_data_defaults():
    import yaml

    from dmas.cascade.config import DEFAULT_CONFIG

    lines = DEFAULT_CONFIG.read_text().splitlines()
    start = lines.index("#   data:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line[4:])
    documented = EntityData.model_validate(yaml.safe_load("\n".join(block))["data"])
    assert documented == EntityData(kind="entities")


def test_dmas_cascade_with_a_store_runs_the_entity_cascade(store, tmp_path, capsys):
    import json

    import yaml

    from dmas.cli import main

    path = tmp_path / "cascade.yaml"
    path.write_text(yaml.safe_dump(merged(TIERS, {"tiers": TIERS["tiers"][:1], "execution": {"executor": "in_process"},
                                                  "data": {"kind": "entities", "epochs": 1}})))
    code = main(["cascade", "--cascade-config", str(path), "--store", store.uri, "--out", str(tmp_path / "out"),
                 "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["runs"] == 6
    report = json.loads((tmp_path / "out" / "cascade_report.json").read_text())
    assert report["data"]["kind"] == "entities" and report["schedule"]["epochs"] == 1
    assert main(["cascade", "--store", store.uri, "--data", "docs.csv"]) == 2
    assert "--data name sequence data" in capsys.readouterr().err
