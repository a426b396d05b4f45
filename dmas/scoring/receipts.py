"""Receipts: what an auditor needs to re-derive a score, and the check that does it (`dmas verify`).

A receipt names the run and its weights (model_sha256), the code that scored, the table versions
read and the `as_of` cut, and hashes the exact model inputs and outputs. Verifying rebuilds the
inputs from the tables at those versions (an inline entity from its payload, whose sha256 the
receipt records), re-runs the model and names what differs: the data, the weights or the code.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache

import numpy as np

from dmas.errors import DmasError, StoreError
from dmas.model import BATCH_SPEC
from dmas.scoring.inline import InlineEntity
from dmas.store import Store
from dmas.train.determinism import code_version

RECEIPT_KEYS = ("run_id", "model_sha256", "code_version", "entity_id", "source", "store_versions", "as_of",
                "input_sha256", "output_sha256", "payload_sha256")


def input_sha256(arrays: dict[str, np.ndarray], row: int) -> str:
    """sha256 over one entity's model inputs (every BATCH_SPEC key in order, its dtype's bytes)."""
    digest = hashlib.sha256()
    for key in sorted(BATCH_SPEC):
        digest.update(key.encode() + b"\0" + np.ascontiguousarray(arrays[key][row]).tobytes())
    return digest.hexdigest()


def output_sha256(outputs: dict[str, np.ndarray], row: int) -> str:
    """sha256 over one entity's outputs (the heads and the embedding, float32)."""
    digest = hashlib.sha256()
    for key in sorted(outputs):
        digest.update(key.encode() + b"\0" + np.ascontiguousarray(outputs[key][row], np.float32).tobytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_version_now() -> str:
    """The running code's code_version (hashed once per process)."""
    return code_version()


def receipts(scored) -> list[dict]:
    """A receipt per entity of a `dmas.scoring.scorer.Scored` answer."""
    common = {"run_id": scored.run.run_id, "model_sha256": scored.run.model_sha256,
              "code_version": code_version_now(),
              "store_versions": scored.store_versions,
              "as_of": scored.as_of.isoformat() if scored.as_of else None}
    found = []
    for row, (entity_id, inline) in enumerate(zip(scored.entity_ids, scored.inline)):
        found.append({**common, "entity_id": entity_id, "source": "inline" if inline else "stored",
                      "input_sha256": input_sha256(scored.inputs.arrays, row),
                      "output_sha256": output_sha256(scored.outputs, row),
                      "payload_sha256": inline.payload_sha256() if inline else None})
    return found


def verify(store: Store, receipt: dict, entity: InlineEntity | None = None) -> dict:
    """Re-derive the score a receipt describes; `verified`, or what differs (data, weights, code)."""
    from dmas.scoring.scorer import IntegrityError, Scorer

    missing = [key for key in RECEIPT_KEYS if key not in receipt]
    if missing:
        raise DmasError(f"receipt lacks {missing}; a receipt has {list(RECEIPT_KEYS)}")
    differences: list[dict] = []
    if receipt["source"] == "inline":
        if entity is None:
            raise DmasError("an inline entity's receipt is verified with its payload: send the entity too")
        if entity.payload_sha256() != receipt["payload_sha256"]:
            differences.append({"what": "data", "detail": "the entity sent is not the one scored "
                                f"(payload sha256 {entity.payload_sha256()}, receipt {receipt['payload_sha256']})"})
    try:
        scorer = Scorer(store)
        run = scorer.run(receipt["run_id"])
    except IntegrityError as exc:
        return _verdict(receipt, [{"what": "weights", "detail": str(exc)}])
    if run.model_sha256 != receipt["model_sha256"]:
        differences.append({"what": "weights", "detail": f"the run's weights are {run.model_sha256}, the receipt "
                            f"names {receipt['model_sha256']}"})
    as_of = datetime.fromisoformat(receipt["as_of"]) if receipt["as_of"] else None
    try:
        scored = scorer.score(run.run_id, [] if entity else [receipt["entity_id"]], [entity] if entity else [],
                              as_of=as_of, store_version=receipt["store_versions"])
    except StoreError as exc:  # versions purged, or the entity is gone from them
        return _verdict(receipt, [*differences, {"what": "data", "detail": str(exc)}])
    inputs, outputs = input_sha256(scored.inputs.arrays, 0), output_sha256(scored.outputs, 0)
    if inputs != receipt["input_sha256"]:
        differences.append({"what": "data", "detail": f"the inputs rebuilt at {receipt['store_versions']} hash to "
                            f"{inputs}, the receipt records {receipt['input_sha256']}"})
    elif outputs != receipt["output_sha256"] and not any(d["what"] == "weights" for d in differences):
        code_note = "" if code_version_now() == receipt["code_version"] else \
            f" (code_version {receipt['code_version'][:12]} then, {code_version_now()[:12]} now)"
        differences.append({"what": "code", "detail": f"same inputs and weights, different outputs{code_note}"})
    return _verdict(receipt, differences, inputs, outputs)


def _verdict(receipt: dict, differences: list[dict], inputs: str | None = None, outputs: str | None = None) -> dict:
    return {"verified": not differences, "status": "verified" if not differences else "differs",
            "differences": differences, "run_id": receipt["run_id"], "entity_id": receipt["entity_id"],
            "rebuilt": {"input_sha256": inputs, "output_sha256": outputs}}
