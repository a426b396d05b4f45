"""Training-dynamics flags fire on planted failures, stay quiet on clean runs; the risk score grows with flags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmas.cascade.dynamics import (
    WEIGHTS,
    DynamicsError,
    DynamicsFlag,
    assess_run,
    dynamics_report,
    run_risk,
)

STEPS = 200


def clean_loss(seed: int = 0) -> np.ndarray:
    """An exponentially decaying loss that has settled, with 1% seeded noise."""
    t = np.arange(STEPS)
    return (2.0 + 3.0 * np.exp(-t / 20.0)) * (1.0 + 0.01 * np.random.default_rng(seed).normal(size=STEPS))


def clean_norms(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"block{i}": np.exp(rng.normal(np.log(0.5 + 0.2 * i), 0.2, size=STEPS)) for i in range(4)}


def names(run) -> set[str]:
    return {flag.name for flag in run.flags}


def test_clean_run_raises_no_flag():
    for seed in range(5):
        run = assess_run(f"clean{seed}", clean_loss(seed), clean_norms(seed))
        assert run.flags == () and run.skipped == () and run.risk == 0.0
    report = dynamics_report([assess_run("clean", clean_loss(), clean_norms())])
    assert report.risk_score == 0.0 and not report.unstable


def test_a_flat_noisy_curve_is_not_divergence():
    for seed in range(20):
        flat = 2.0 + 0.05 * np.random.default_rng(seed).normal(size=2000)
        assert "divergence" not in names(assess_run("flat", flat))


def test_a_loss_spike_is_flagged():
    loss = clean_loss()
    loss[120] += 1.5
    run = assess_run("spike", loss, clean_norms())
    assert names(run) == {"loss_spikes"}
    (flag,) = run.flags
    assert flag.evidence["spikes"] == 1 and flag.evidence["records"] == [120]
    loss[60] += 3.0
    (more,) = assess_run("two spikes", loss, clean_norms()).flags
    assert more.evidence["spikes"] == 2 and more.severity > flag.severity


def test_divergence_is_flagged():
    t = np.arange(STEPS)
    rising = 2.0 + 3.0 * t / STEPS  # ends well above where it began
    run = assess_run("diverged", rising, clean_norms())
    assert "divergence" in names(run)
    flag = next(f for f in run.flags if f.name == "divergence")
    assert flag.severity == 1.0 and flag.evidence["relative_increase"] > 1


def test_nan_loss_is_flagged_and_the_finite_part_still_read():
    loss = clean_loss()
    loss[150:] = np.nan
    run = assess_run("nan", loss, clean_norms())
    assert names(run) == {"non_finite_loss"}
    assert run.flags[0].evidence == {"first_record": 150, "non_finite_records": 50}
    inf = clean_loss()
    inf[-1] = np.inf
    assert "non_finite_loss" in names(assess_run("inf", inf))


def test_exploding_gradients_are_flagged():
    above_bound = clean_norms()
    above_bound["block2"][100] = 5e4
    run = assess_run("explode", clean_loss(), above_bound)
    assert names(run) == {"exploding_gradients"}
    assert run.flags[0].evidence["layers"] == ["block2"]
    grows = clean_norms()
    grows["block1"] = grows["block1"] * np.logspace(0, 3, STEPS)
    assert "exploding_gradients" in names(assess_run("grows", clean_loss(), grows))
    nan = clean_norms()
    nan["block0"][10] = np.nan
    flag = next(f for f in assess_run("nan-grad", clean_loss(), nan).flags if f.name == "exploding_gradients")
    assert flag.severity == 1.0


def test_vanishing_gradients_are_flagged():
    faded = clean_norms()
    faded["block0"] = faded["block0"] * 1e-5  # far below the other layers, above the absolute bound
    run = assess_run("vanish", clean_loss(), faded)
    assert names(run) == {"vanishing_gradients"}
    assert run.flags[0].evidence["layers"] == ["block0"]
    tiny = {name: values * 1e-9 for name, values in clean_norms().items()}  # every layer below 1e-7
    assert names(assess_run("tiny", clean_loss(), tiny)) == {"vanishing_gradients"}


def test_a_dead_layer_with_zero_gradients_is_vanishing_at_full_severity():
    # a layer whose units all died (zero gradients at every record, as in a 4-wide FullModel's artifacts)
    dead = {**clean_norms(), "artifacts": np.zeros(STEPS)}
    run = assess_run("dead", clean_loss(), dead)
    assert names(run) == {"vanishing_gradients"}
    assert run.flags[0].severity == 1.0 and run.flags[0].evidence["layers"] == ["artifacts"]


def test_a_curve_still_falling_at_the_end_has_not_converged():
    t = np.arange(STEPS)
    run = assess_run("early stop", 5.0 - 2.0 * t / STEPS, clean_norms())
    assert names(run) == {"non_convergence"}
    assert run.flags[0].evidence["direction"] == "falling"
    report = dynamics_report([run])
    assert not report.unstable and report.risk_score > 0  # a risk, not an instability


def test_short_curves_and_missing_norms_say_what_was_skipped():
    run = assess_run("short", [3.0, 2.5, 2.0])
    assert run.flags == ()
    assert any("loss_spikes" in s for s in run.skipped) and any("no gradient norms" in s for s in run.skipped)
    with pytest.raises(DynamicsError, match="loss curve is empty"):
        assess_run("empty", [])
    with pytest.raises(DynamicsError, match="layer head has no gradient norms"):
        assess_run("x", clean_loss(), {"head": []})
    with pytest.raises(DynamicsError, match="no runs"):
        dynamics_report([])


def test_risk_grows_with_every_flag_and_severity():
    previous = 0.0
    flags: list[DynamicsFlag] = []
    for name in WEIGHTS:
        flags.append(DynamicsFlag(name, 0.5))
        risk = run_risk(flags)
        assert previous < risk <= 100.0
        previous = risk
    for name, weight in WEIGHTS.items():  # alone at full severity a flag is worth its weight
        assert run_risk([DynamicsFlag(name, 1.0)]) == pytest.approx(weight)
        low, high = run_risk([DynamicsFlag(name, 0.3)]), run_risk([DynamicsFlag(name, 0.9)])
        assert low < high
    assert run_risk([DynamicsFlag(n, 1.0) for n in WEIGHTS]) < 100.0


def test_report_risk_is_monotone_in_bad_runs_and_stable_bytes():
    clean = [assess_run(f"r{i}", clean_loss(i), clean_norms(i)) for i in range(6)]
    spiky = clean_loss(9)
    spiky[50] += 2.0
    nan = clean_loss(8)
    nan[80:] = np.nan
    bad = [assess_run("spiky", spiky, clean_norms()), assess_run("nan", nan, clean_norms())]
    scores = [dynamics_report(clean + bad[:k]).risk_score for k in range(3)]
    assert scores[0] == 0.0 and scores[0] < scores[1] < scores[2] <= 100.0
    report = dynamics_report(clean + bad)
    assert report.unstable
    assert report.flag_counts()["non_finite_loss"] == 1 and report.flag_counts()["loss_spikes"] == 1
    first = json.dumps(report.to_dict(), sort_keys=True)
    again = json.dumps(dynamics_report(list(reversed(clean + bad))).to_dict(), sort_keys=True)
    assert first == again
