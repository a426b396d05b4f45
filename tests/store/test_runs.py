"""The run registry: statuses as a type, leases that show a dead training process within seconds."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from dmas.errors import StoreError
from dmas.store.runs import RunLease, RunRegistry, RunStatus, lease_alive, lease_path, read_lease


@pytest.fixture
def registry(store):
    return RunRegistry(store)


def _write_lease(registry: RunRegistry, run_id: str, *, holder: str, beat: int, renewed_at: datetime,
                 ttl_s: float) -> None:
    state = {"holder": holder, "beat": beat, "renewed_at": renewed_at.isoformat(), "ttl_s": ttl_s}
    with registry.location.filesystem.open_output_stream(lease_path(registry.location, run_id)) as out:
        out.write(json.dumps(state).encode())


def test_statuses_are_a_type_whose_values_serving_reads_as_strings(registry):
    registry.set_status("r1", "completed")
    record = registry.require("r1")
    assert record.status is RunStatus.COMPLETED and record.status == "completed"
    assert json.loads(json.dumps(record.to_dict()))["status"] == "completed"
    assert RunStatus.REJECTED.finished and not RunStatus.FAILED.finished and not RunStatus.RUNNING.finished
    assert [status.value for status in RunStatus] == ["running", "completed", "rejected", "failed"]


def test_every_record_carries_the_original_top_level_fields(registry):
    registry.set_status("r2", RunStatus.FAILED, error="boom")
    record = registry.require("r2").to_dict()
    assert {"run_id", "created_at", "status", "metrics"} <= set(record)
    assert record["metrics"] == {}


def test_a_held_lease_keeps_its_run_running_and_is_removed_on_release(registry):
    with RunLease(registry.location, "live", renew_every_s=0.1, ttl_s=0.5) as lease:
        registry.set_status("live", RunStatus.RUNNING)
        time.sleep(1.0)  # twice the TTL: only renewals keep it alive
        assert registry.require("live").status == RunStatus.RUNNING
        assert registry.get("live", confirm=True).status == RunStatus.RUNNING
        assert read_lease(registry.location, "live")["beat"] >= 5
        assert lease.held
    assert read_lease(registry.location, "live") is None


def test_a_lease_that_stops_being_renewed_fails_its_run_within_its_ttl(registry):
    registry.set_status("dead", RunStatus.RUNNING)
    _write_lease(registry, "dead", holder="gone", beat=3, renewed_at=datetime.now(UTC), ttl_s=0.5)
    time.sleep(0.6)
    start = time.monotonic()
    record = registry.require("dead")
    assert record.status == RunStatus.FAILED and "lease was not renewed" in record.error
    assert time.monotonic() - start < 2


def test_confirm_watches_even_a_fresh_looking_lease(registry):
    registry.set_status("just-died", RunStatus.RUNNING)
    _write_lease(registry, "just-died", holder="gone", beat=0, renewed_at=datetime.now(UTC), ttl_s=0.5)
    assert registry.get("just-died").status == RunStatus.RUNNING  # renewed a moment ago by its clock
    assert registry.get("just-died", confirm=True).status == RunStatus.FAILED  # and then never again


@pytest.mark.parametrize("skew", [timedelta(hours=-1), timedelta(hours=1)])
def test_a_beating_holder_with_a_skewed_clock_is_alive(registry, skew):
    registry.set_status("skewed", RunStatus.RUNNING)
    stop = threading.Event()

    def beat() -> None:
        for n in range(1000):
            _write_lease(registry, "skewed", holder="far", beat=n, renewed_at=datetime.now(UTC) + skew, ttl_s=0.5)
            if stop.wait(0.1):
                return

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        assert lease_alive(registry.location, ["skewed"]) == {"skewed"}
        assert registry.require("skewed").status == RunStatus.RUNNING
    finally:
        stop.set()
        thread.join()


def test_a_dead_holder_whose_clock_ran_ahead_is_still_found_dead(registry):
    registry.set_status("ahead", RunStatus.RUNNING)
    _write_lease(registry, "ahead", holder="gone", beat=1, renewed_at=datetime.now(UTC) + timedelta(hours=1),
                 ttl_s=0.5)
    assert registry.require("ahead").status == RunStatus.FAILED


def test_a_run_that_finishes_while_judged_is_not_marked_failed(registry):
    registry.set_status("ending", RunStatus.RUNNING)
    _write_lease(registry, "ending", holder="h", beat=1, renewed_at=datetime.now(UTC), ttl_s=0.5)
    finisher = threading.Timer(0.2, registry.set_status, ("ending", RunStatus.COMPLETED))
    finisher.start()
    record = registry.get("ending", confirm=True)
    finisher.join()
    assert record.status == RunStatus.COMPLETED


def test_a_holder_whose_lease_was_taken_over_knows_and_leaves_the_new_lease(registry):
    with RunLease(registry.location, "taken", renew_every_s=0.05, ttl_s=0.5) as lease:
        _write_lease(registry, "taken", holder="retry-on-node-2", beat=0, renewed_at=datetime.now(UTC), ttl_s=0.5)
        time.sleep(0.3)
        assert not lease.held
        with pytest.raises(StoreError, match="taken over by retry-on-node-2"):
            lease.check()
    assert read_lease(registry.location, "taken")["holder"] == "retry-on-node-2"


def test_publishing_the_same_files_again_is_accepted_and_other_files_refused(registry):
    files = {"model_sha256.txt": b"abc\n", "metrics.json": b"{}"}
    registry.publish("p", files)
    registry.publish("p", files)  # a retry after its holder died between publishing and its status
    with pytest.raises(StoreError, match="immutable"):
        registry.publish("p", {**files, "model_sha256.txt": b"other\n"})
    assert registry.read_file("p", "metrics.json") == b"{}"
