"""How pending blobs are split into extraction tasks: every blob once, few tasks, equal work."""

import numpy as np
import pyarrow as pa

from dmas.features.pipeline import plan_tasks


def _pending(rng: np.random.Generator, counts: dict[str, int]) -> pa.Table:
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    sizes = {"image": (50_000, 900_000), "audio": (200_000, 3_000_000), "video": (20_000, 200_000)}
    return pa.table({
        "sha256": [f"{i:064x}" for i in rng.permutation(len(kinds))],
        "artifact_type": kinds,
        "size_bytes": [int(rng.integers(*sizes[kind])) for kind in kinds],
    })


def test_every_blob_goes_to_exactly_one_task():
    pending = _pending(np.random.default_rng(0), {"image": 200, "audio": 80, "video": 20})
    tasks = plan_tasks(pending, batch_size=256, slots=2, tasks_per_slot=2)
    shas = [sha for task in tasks for sha in task["sha256"].to_pylist()]
    assert sorted(shas) == sorted(pending["sha256"].to_pylist())


def test_few_tasks_until_the_batch_size_caps_them():
    pending = _pending(np.random.default_rng(1), {"image": 300})
    assert len(plan_tasks(pending, batch_size=256, slots=2, tasks_per_slot=2)) == 4  # 75 each, not 10 of 32
    capped = plan_tasks(pending, batch_size=16, slots=2, tasks_per_slot=2)
    assert len(capped) == 20 and max(task.num_rows for task in capped) <= 16
    assert len(plan_tasks(pending.slice(0, 3), batch_size=256, slots=2, tasks_per_slot=2)) == 3  # none empty


def test_every_slot_gets_the_same_number_of_tasks():
    pending = _pending(np.random.default_rng(5), {"image": 1200})
    assert len(plan_tasks(pending, batch_size=256, slots=2, tasks_per_slot=2)) == 6  # not 5: one CPU idle a task
    assert len(plan_tasks(pending, batch_size=256, slots=3, tasks_per_slot=1)) == 6


def test_each_task_gets_the_same_mix_of_kinds_and_about_the_same_bytes():
    pending = _pending(np.random.default_rng(2), {"image": 200, "audio": 80, "video": 20})
    tasks = plan_tasks(pending, batch_size=256, slots=2, tasks_per_slot=2)
    for kind in ("image", "audio", "video"):
        per_task = [task["artifact_type"].to_pylist().count(kind) for task in tasks]
        assert max(per_task) - min(per_task) <= 1, (kind, per_task)
    task_bytes = [sum(task["size_bytes"].to_pylist()) for task in tasks]
    assert max(task_bytes) / min(task_bytes) < 1.05, task_bytes
    naive = [sum(pending.slice(start, 75)["size_bytes"].to_pylist()) for start in range(0, 300, 75)]
    assert max(naive) / min(naive) > max(task_bytes) / min(task_bytes)  # slicing in stored order is worse


def test_the_plan_does_not_depend_on_the_order_blobs_arrive_in():
    pending = _pending(np.random.default_rng(3), {"image": 50, "audio": 30, "video": 7})
    shuffled = pending.take(np.random.default_rng(4).permutation(pending.num_rows))
    assert [task.to_pylist() for task in plan_tasks(pending, 256, 2, 2)] == \
           [task.to_pylist() for task in plan_tasks(shuffled, 256, 2, 2)]
