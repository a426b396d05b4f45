"""Extract features of every pending blob with Ray Data and commit them in one atomic commit.

Pending = blobs referenced by artifacts that have no row (ok or failed) at the current
`feature_version`. Each blob is extracted once however many artifacts share it. Vectors are pure
functions of the bytes and the table is sorted by sha256 before the commit, so the stored result
is the same whatever the concurrency, batch size, task order or retries.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dmas.config import Settings
from dmas.features import extract_features
from dmas.features.allocator import keep_freed_memory
from dmas.features.version import FeatureConfig, feature_version
from dmas.store import Store
from dmas.store.blobs import BlobStore
from dmas.store.location import StoreLocation
from dmas.store.schemas import FEATURES
from dmas.task_plan import plan_tasks as plan_equal_tasks

log = logging.getLogger(__name__)

Extractor = Callable[[str, bytes, FeatureConfig], np.ndarray]
_KIND_THEN_LARGEST = (("artifact_type", "ascending"), ("size_bytes", "descending"), ("sha256", "ascending"))


def pending_blobs(store: Store, version: str) -> pa.Table:
    """(sha256, artifact_type, size_bytes) of blobs with no features row at `version`, sorted by sha256."""
    artifacts = store.table("artifacts").read(columns=["sha256", "artifact_type", "size_bytes"])
    distinct = artifacts.group_by(["sha256", "artifact_type", "size_bytes"]).aggregate([])
    done = store.table("features").read(columns=["sha256", "feature_version"])
    done = done.filter(pc.equal(done["feature_version"], version))["sha256"]
    pending = distinct.filter(pc.invert(pc.is_in(distinct["sha256"], value_set=done.combine_chunks())))
    return pending.sort_by([("sha256", "ascending")])


def extract_pending(store: Store, settings: Settings, *, extract: Extractor | None = None,
                    use_ray: bool = True) -> dict:
    """Extract and commit the features of every pending blob; says so when nothing is pending.

    The summary counts blobs (`pending`, `extracted`, `failed`) and, for the original platform's
    clients, `updated_artifacts`: the artifact rows, as the artifacts table holds them at the end of
    this call, whose blob got a vector in this call (artifacts sharing one blob each count; a blob
    that failed counts none; 0 when nothing was pending).

    `extract` replaces the extractor (tests inject faults); by default it is `extract_features`
    with the configured image pixel limit. `use_ray=False` runs the same batch function in this
    process (small stores, tests): the stored bytes are the same.
    """
    extract = extract or functools.partial(extract_features, max_pixels=settings.limits.max_image_pixels)
    config = settings.features.extractor_config()
    version = feature_version(config)
    pending = pending_blobs(store, version)
    summary = {"feature_version": version, "pending": pending.num_rows, "extracted": 0, "failed": 0, "tasks": 0,
               "updated_artifacts": 0, "version": store.table("features").version()}
    if pending.num_rows == 0:
        return {**summary, "message": "nothing pending: every blob has features at this feature_version"}
    results, tasks = (_extract_with_ray_data(store.uri, pending, config, version, settings, extract) if use_ray else
                      (extract_batch(pending, store_uri=store.uri, config=config, version=version, extract=extract)
                       .cast(FEATURES.schema), 1))
    commit = store.table("features").upsert(results, {"dmas_operation": "extract features",
                                                      "feature_version": version})
    failed = results.filter(pc.equal(results["status"], "failed"))
    ok = results.filter(pc.equal(results["status"], "ok"))["sha256"]
    _record_artifact_status(store, failed, ok=ok)
    log.info("extracted features", extra={"feature_version": version, "rows": results.num_rows})
    return {**summary, "extracted": results.num_rows - failed.num_rows, "failed": failed.num_rows, "tasks": tasks,
            "updated_artifacts": _artifacts_of(store, ok), "version": commit.version,
            "failures": [{"sha256": sha, "artifact_type": kind, "error": error} for sha, kind, error in zip(
                failed["sha256"].to_pylist(), failed["artifact_type"].to_pylist(), failed["error"].to_pylist())]}


def _artifacts_of(store: Store, sha256s: pa.ChunkedArray) -> int:
    """How many artifact rows hold one of these blobs."""
    stored = store.table("artifacts").read(columns=["sha256"])["sha256"]
    return int(pc.sum(pc.is_in(stored, value_set=sha256s.combine_chunks())).as_py() or 0)


def _extract_with_ray_data(store_uri: str, pending: pa.Table, config: FeatureConfig, version: str,
                           settings: Settings, extract: Extractor) -> tuple[pa.Table, int]:
    """The features of `pending`, sorted by sha256, and how many Ray Data tasks computed them."""
    import ray

    from dmas.runtime import ensure_ray

    ensure_ray(settings.ray)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    # One map operator: the per-operator CPU reservation only holds tasks back here (measured on
    # Ray 2.60 with 2 CPUs: one task at a time, Ray Data 0.79x a plain loop). Ray calls this switch
    # historical; without it the pipeline is still correct, only slower.
    context.op_resource_reservation_enabled = False
    features = settings.features
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    tasks = plan_tasks(pending, features.batch_size, min(cpus, features.concurrency or cpus), features.tasks_per_cpu)
    log.info("extracting %d blobs in %d tasks", pending.num_rows, len(tasks))
    dataset = ray.data.from_arrow(tasks)  # one block per task, each its own batch: no shuffle, no re-bundling
    extracted = dataset.map_batches(
        extract_batch, batch_size=None, batch_format="pyarrow", concurrency=features.concurrency,
        num_cpus=1, **_finite_retries(features.max_retries),
        fn_kwargs={"store_uri": store_uri, "config": config, "version": version, "extract": extract},
    )
    tables = [batch for batch in extracted.iter_batches(batch_size=None, batch_format="pyarrow")]
    return pa.concat_tables(tables).cast(FEATURES.schema).sort_by([("sha256", "ascending")]), len(tasks)


def plan_tasks(pending: pa.Table, batch_size: int, slots: int, tasks_per_slot: int) -> list[pa.Table]:
    """Split the pending blobs into tasks of about equal work (see `dmas.task_plan.plan_tasks`).

    Equal work: blobs are dealt kind by kind, largest first, so every task gets the same mix of
    kinds and sizes.
    """
    return plan_equal_tasks(pending, batch_size, slots, tasks_per_slot, _KIND_THEN_LARGEST)


def _finite_retries(max_retries: int) -> dict:
    """A crashed extraction task (worker died) runs again at most `max_retries` times.

    Ray Data's default is to retry forever, which would loop on a file that crashes its decoder
    every time. Ray 2.60 has no named parameter for this yet and warns that the generic task
    options go away in 2.64 (pyproject pins ray below it); the warning is expected here.
    """
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", module="dmas.features.pipeline")
    return {"max_retries": max_retries}


def extract_batch(batch: pa.Table, *, store_uri: str, config: FeatureConfig, version: str,
                  extract: Extractor = extract_features) -> pa.Table:
    """One Ray Data task: read each blob and extract it; a file that does not decode is marked failed."""
    keep_freed_memory()
    blobs = BlobStore(StoreLocation.parse(store_uri))
    statuses, errors, vectors = [], [], []
    for sha256, artifact_type in zip(batch["sha256"].to_pylist(), batch["artifact_type"].to_pylist()):
        try:
            vector = extract(artifact_type, blobs.read(sha256), config)
        except Exception as exc:  # decoders raise many types; the artifact is marked, the pipeline goes on
            statuses.append("failed")
            errors.append(str(exc) or type(exc).__name__)
            vectors.append(None)
            continue
        statuses.append("ok")
        errors.append(None)
        vectors.append(np.asarray(vector, dtype=np.float32))
    return pa.table({
        "sha256": batch["sha256"],
        "feature_version": pa.array([version] * batch.num_rows, pa.string()),
        "artifact_type": batch["artifact_type"],
        "status": pa.array(statuses, pa.string()),
        "error": pa.array(errors, pa.string()),
        "vector": pa.array(vectors, pa.list_(pa.float32())),
    })


def _record_artifact_status(store: Store, failed: pa.Table, ok: pa.ChunkedArray) -> None:
    """Mark artifacts whose blob failed (with the reason); clear the mark where a blob now succeeded."""
    table = store.table("artifacts")
    metadata = {"dmas_operation": "record extraction status"}
    if failed.num_rows:
        table.update_matching(failed.select(["sha256", "error"]), "sha256",
                              {"status": "'failed'", "error": "s.error"}, metadata)
    marked = table.read(columns=["sha256", "status"], filter=pc.field("status") == "failed")["sha256"]
    recovered = pc.unique(marked.filter(pc.is_in(marked, value_set=ok.combine_chunks())))
    if len(recovered):
        table.update_matching(pa.table({"sha256": recovered}), "sha256", {"status": "'stored'", "error": "NULL"},
                              metadata)
