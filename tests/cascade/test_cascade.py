"""A small cascade end to end: 6 + 3 + 2 tiny runs on Ray Train and in this process, same report bytes.

Eleven runs, not fewer: the law has five parameters, and a bootstrap draw of the runs must keep at least
six distinct (N, D) points and three distinct sizes of each to refit it.
"""

from __future__ import annotations

import json
import time

import pytest

from dmas.cascade.config import load_cascade_config
from dmas.cascade.data import load_windows
from dmas.cascade.execute import CascadeRunError, worker_count
from dmas.cascade.proxy import ProxySpec, train_proxy
from dmas.cascade.run import plan_runs, run_cascade
from dmas.errors import ConfigError

SMALL = {
    "data": {"synthetic_documents": 150},
    "model": {"seq_len": 32, "n_heads": 2},
    "tiers": [
        {"name": "tier1", "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 12, "n_layers": 1}],
         "fractions": [0.25, 0.5, 1.0]},
        {"name": "tier2", "sizes": [{"d_model": 16, "n_layers": 1}, {"d_model": 20, "n_layers": 1},
                                    {"d_model": 24, "n_layers": 1}], "fractions": [0.5]},
        {"name": "tier3", "sizes": [{"d_model": 32, "n_layers": 1}], "fractions": [0.75, 1.0]},
    ],
    "full": {"size": {"d_model": 64, "n_layers": 2}},
    "schedule": {"epochs": 2, "record_every": 2},
    "scaling": {"bootstrap_draws": 40, "starts": 4},
}


def small_config(**changes):
    from dmas.cascade.config import merged

    return load_cascade_config(overrides=merged(SMALL, changes))


@pytest.fixture(scope="module")
def in_process():
    events = []
    outcome = run_cascade(small_config(execution={"executor": "in_process"}, progress_interval_s=0.05),
                          on_progress=lambda event: events.append((time.monotonic(), event)))
    return outcome, events


def test_the_report_predicts_the_full_model_with_an_interval(in_process):
    outcome, _ = in_process
    report = outcome.report
    assert [run["run"] for run in report["runs"]] == [*(f"tier1-0{i}" for i in range(6)), "tier2-00", "tier2-01",
                                                       "tier2-02", "tier3-00", "tier3-01"]
    prediction = report["prediction"]
    assert "error" not in prediction, prediction
    interval = prediction["interval"]
    assert interval["lower"] <= prediction["predicted"] <= interval["upper"]
    assert prediction["fit"]["form"] == "parameters_and_data"
    assert report["full"]["parameters"] > max(run["parameters"] for run in report["runs"])
    losses = {run["run"]: run["validation_loss"] for run in report["runs"]}
    assert losses["tier1-02"] < losses["tier1-00"]  # more data helps
    assert losses["tier3-01"] < losses["tier1-02"]  # a bigger model on the same data helps
    for run in report["runs"]:
        assert set(run["gradient_norms"]) == {"token_embedding", "block_0", "final_norm"}
        assert run["loss_curve"][-1] < run["loss_curve"][0]
    assert 0 <= report["risk_score"] <= 100 and report["unstable"] is False
    assert report["truth"] is None


def test_ray_train_workers_give_the_same_report_bytes_as_one_process(in_process, local_ray):
    outcome, _ = in_process
    events = []
    on_ray = run_cascade(small_config(execution={"executor": "ray_train", "workers": 2}, progress_interval_s=0.5),
                         on_progress=events.append)
    assert on_ray.timings["executor"] == "ray_train" and on_ray.timings["workers"] == 2
    assert on_ray.report_bytes() == outcome.report_bytes()
    assert events[-1]["completed"] == events[-1]["total"] == 11 and events[-1]["percent"] == 100.0
    assert 0 <= on_ray.timings["overhead_share"] < 1


def test_progress_arrives_at_the_configured_interval(in_process):
    _, events = in_process
    assert len(events) >= 3
    times = [at for at, _ in events]
    gaps = [later - earlier for earlier, later in zip(times, times[1:-1])]  # the last one is the end's
    assert all(gap >= 0.05 * 0.95 for gap in gaps), gaps
    completed = [event["completed"] for _, event in events]
    assert completed == sorted(completed) and completed[-1] == 11
    last = events[-1][1]
    assert last["percent"] == 100.0 and last["eta_s"] == 0.0 and last["running"] == []
    assert any(event["running"] and event["current_loss"] is not None for _, event in events[:-1])


def test_the_same_config_gives_the_same_report_bytes(in_process):
    outcome, _ = in_process
    again = run_cascade(small_config(execution={"executor": "in_process"}))
    assert again.report_bytes() == outcome.report_bytes()
    assert "seconds" not in json.dumps(again.report)


def test_training_the_full_model_reports_the_truth_against_the_interval():
    config = small_config(execution={"executor": "in_process"}, full={"train": True, "size": {"d_model": 32,
                                                                                              "n_layers": 2}})
    report = run_cascade(config).report
    truth = report["truth"]
    assert truth["parameters"] == report["full"]["parameters"]
    assert isinstance(truth["inside_interval"], bool)
    assert truth["relative_error"] == pytest.approx(
        (report["prediction"]["predicted"] - truth["validation_loss"]) / truth["validation_loss"], rel=1e-3)
    assert len(report["runs"]) == 11  # the full run is the truth, not a point of the fit


def test_an_exploding_learning_rate_is_flagged_unstable(in_process):
    config = small_config(execution={"executor": "in_process"}, schedule={"learning_rate": 50.0, "grad_clip": None,
                                                                           "warmup_share": 0.0})
    report = run_cascade(config).report
    counts = report["dynamics"]["flag_counts"]
    assert report["unstable"] is True
    assert counts["divergence"] + counts["non_finite_loss"] + counts["loss_spikes"] + counts["exploding_gradients"]
    assert report["risk_score"] > in_process[0].report["risk_score"] + 10


def test_a_run_that_fails_stops_the_cascade_naming_it(local_ray, monkeypatch):
    config = small_config(execution={"executor": "ray_train", "workers": 1})
    windows = load_windows(config.data, config.model.seq_len)
    broken = type(windows)(train=windows.train, validation=windows.validation[:, :1], vocab_size=windows.vocab_size,
                           sha256=windows.sha256, source=windows.source, tokens=windows.tokens)
    with pytest.raises(CascadeRunError, match=r"proxy run tier1-0\d failed"):
        run_cascade(config, windows=broken)


def test_the_same_run_trains_the_same_weights_and_gradients():
    config = small_config()
    windows = load_windows(config.data, config.model.seq_len)
    spec = ProxySpec("tier1", 0, 8, 1, 0.5, 3)
    first, second = train_proxy(spec, config, windows), train_proxy(spec, config, windows)
    assert first.weights_sha256 == second.weights_sha256
    assert first.gradient_norms == second.gradient_norms and first.loss_curve == second.loss_curve
    other = train_proxy(ProxySpec("tier1", 0, 8, 1, 0.5, 4), config, windows)
    assert other.weights_sha256 != first.weights_sha256


def test_the_plan_is_every_size_fraction_and_seed_of_each_tier():
    config = small_config(tiers=[{"name": "a", "sizes": [{"d_model": 8, "n_layers": 1},
                                                          {"d_model": 16, "n_layers": 1}],
                                  "fractions": [0.5, 1.0], "seeds": [0, 1]}])
    specs = plan_runs(config)
    assert len(specs) == 8 and len({(s.d_model, s.fraction, s.seed) for s in specs}) == 8
    assert [s.name for s in specs][:2] == ["a-00", "a-01"]


def test_the_default_config_has_tiers_of_10_5_and_3_and_a_gpu_profile():
    default = load_cascade_config()
    assert [tier.runs for tier in default.tiers] == [10, 5, 3]
    assert default.execution.use_gpu is False
    gpu = load_cascade_config(profile="gpu")
    assert [tier.runs for tier in gpu.tiers] == [10, 5, 3]
    assert gpu.execution.use_gpu and gpu.execution.bf16 and gpu.execution.workers == 4
    assert gpu.config_sha256() != default.config_sha256()
    with pytest.raises(ConfigError, match="unknown profile 'tpu'"):
        load_cascade_config(profile="tpu")


def test_a_bad_config_field_is_named():
    with pytest.raises(ConfigError, match=r"tiers\.0\.fractions"):
        load_cascade_config(overrides={"tiers": [{"name": "a", "sizes": [{"d_model": 8, "n_layers": 1}],
                                                  "fractions": "half"}]})
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        load_cascade_config(overrides={"full": {"size": {"d_model": 30, "n_layers": 1}}})


def test_asking_for_gpus_without_gpus_fails_at_once():
    config = load_cascade_config(profile="gpu")
    with pytest.raises(ConfigError, match=r"asks for 4 GPU\(s\), the cluster has 0"):
        worker_count(config, 10, {"CPU": 2.0})
    assert worker_count(load_cascade_config(), 10, {"CPU": 2.0}) == 2
    assert worker_count(load_cascade_config(), 1, {"CPU": 8.0}) == 1


def test_a_cascade_that_cannot_place_its_workers_says_so_instead_of_waiting_for_ever():
    config = load_cascade_config()
    assert worker_count(config, 18, {"CPU": 1.75}) == 1, "a Serve replica holds a quarter CPU: one run at a time"
    with pytest.raises(ConfigError, match="the cluster has 0.75 free"):
        worker_count(config, 18, {"CPU": 0.75})
    with pytest.raises(ConfigError, match="3 run"):
        worker_count(load_cascade_config(overrides={"execution": {"workers": 3}}), 18, {"CPU": 2.0})
    assert worker_count(load_cascade_config(overrides={"execution": {"cpus_per_run": 0.5}}), 18, {"CPU": 1.75}) == 3
