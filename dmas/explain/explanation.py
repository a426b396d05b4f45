"""One entity's explanation as JSON-ready data (its narrative: dmas.explain.narrative).

The explanation names real inputs: each attribute (in original units when the training statistics
are given), each real event (type, time, the model's attention on it), each artifact (by sha256, its
share of the attribution) and the neighbours as one group. Numbers are rounded to 6 significant
digits; the same model and entity give the same bytes, whatever else is being explained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import torch
from torch import Tensor

from dmas.explain.integrated_gradients import EVENT_TIMES, attribute
from dmas.inputs.encode import ARTIFACT_TYPE_INDEX
from dmas.model import BATCH_SPEC, FullModel

ARTIFACT_TYPE_NAMES = {index: name for name, index in ARTIFACT_TYPE_INDEX.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EntityMeta:
    """What names one entity's input slots: the run's vocabularies and the entity's row of ids and times."""

    attribute_names: Sequence[str]
    event_types: Sequence[str]  # event_type index i + 1 is event_types[i]; 0 is padding
    event_keys: Sequence[int]  # [L] microsecond timestamp of the event in each slot
    artifact_sha256: Sequence[str]  # [M] blob filling each artifact slot ("" for padding)
    normalisation: Mapping[str, Sequence[float]] | None = None  # training statistics ("attributes_mean", ...)


def explain_entity(model: FullModel, inputs: Mapping[str, Tensor | np.ndarray], entity_meta: EntityMeta,
                   target: str, top_k: int = 5, *, n_steps: int = 50, event_times: bool = False) -> dict:
    """Integrated-gradients explanation of head `target` for one entity (inputs: a batch of one).

    With `event_times`, an event's attribution includes its time features (see `attribute`).
    `top_reasons` holds the `top_k` inputs with the largest |attribution| across all groups; the
    attributions of all groups add up to f_x - f_baseline within `convergence_delta`.
    """
    batch = {key: torch.as_tensor(inputs[key]) for key in BATCH_SPEC if key in inputs}
    found = attribute(model, batch, target, n_steps=n_steps, event_times=event_times)
    with torch.no_grad():
        attention = model(batch).event_attention[0].numpy()
    scores = found.attributions
    attributes = _attributes(batch["attributes"][0].numpy(), scores["attributes"], entity_meta)
    event_scores = sum(scores[key] for key in ("event_value", *EVENT_TIMES) if key in scores)
    events = _events(batch, attention, event_scores, entity_meta)
    artifacts = _artifacts(batch, scores["artifact_vector"], entity_meta)
    graph = {"neighbors": int(batch["neighbor_mask"][0].sum()),
             "attribution": _number(scores["neighbor_attributes"].sum(dtype=np.float64)
                                    + scores["neighbor_value"].sum(dtype=np.float64))}
    return {
        "target": target,
        "baseline": found.baseline,
        "f_x": _number(found.f_x),
        "f_baseline": _number(found.f_baseline),
        "convergence_delta": _number(found.delta),
        "attributes": attributes,
        "events": events,
        "artifacts": artifacts,
        "graph": graph,
        "top_reasons": _top_reasons(attributes, events, artifacts, graph, top_k),
    }


def _attributes(values: np.ndarray, scores: np.ndarray, meta: EntityMeta) -> list[dict]:
    """Attributes by decreasing |attribution|, values back in original units when statistics are known."""
    if meta.normalisation is not None:
        values = values * np.asarray(meta.normalisation["attributes_std"]) + np.asarray(
            meta.normalisation["attributes_mean"])
    rows = [{"name": name, "value": _number(value), "attribution": _number(score)}
            for name, value, score in zip(meta.attribute_names, values, scores)]
    return sorted(rows, key=lambda row: -abs(row["attribution"]))


def _events(batch: dict[str, Tensor], attention: np.ndarray, scores: np.ndarray, meta: EntityMeta) -> list[dict]:
    """The real events in slot order, numbered from 0: type, time, attention weight and attribution [L]."""
    rows = []
    for index, slot in enumerate(np.flatnonzero(batch["event_mask"][0].numpy())):
        when = _EPOCH + timedelta(microseconds=int(meta.event_keys[slot]))
        rows.append({"index": index, "event_type": meta.event_types[int(batch["event_type"][0, slot]) - 1],
                     "timestamp": when.isoformat(), "attention": _number(attention[slot]),
                     "attribution": _number(scores[slot])})
    return rows


def _artifacts(batch: dict[str, Tensor], scores: np.ndarray, meta: EntityMeta) -> list[dict]:
    """The real artifacts in slot order: sha256, type and the sum of their vector's attributions [M, D]."""
    rows = []
    for slot in np.flatnonzero(batch["artifact_mask"][0].numpy()):
        kind = int(batch["artifact_type"][0, slot])
        rows.append({"sha256": str(meta.artifact_sha256[slot]),
                     "artifact_type": ARTIFACT_TYPE_NAMES.get(kind, str(kind)),
                     "attribution": _number(scores[slot].sum(dtype=np.float64))})
    return rows


def _top_reasons(attributes: list[dict], events: list[dict], artifacts: list[dict], graph: dict,
                 top_k: int) -> list[dict]:
    """The `top_k` non-zero attributions across groups, largest |attribution| first (ties: listing order)."""
    reasons = [{"kind": "attribute", "label": f"attribute {row['name']}", "attribution": row["attribution"]}
               for row in attributes]
    reasons += [{"kind": "event", "label": f"event #{row['index']} {row['event_type']}",
                 "attribution": row["attribution"], "attention": row["attention"]} for row in events]
    reasons += [{"kind": "artifact", "label": f"{row['artifact_type']} {row['sha256'][:8]}",
                 "attribution": row["attribution"]} for row in artifacts]
    reasons.append({"kind": "graph", "label": f"{graph['neighbors']} neighbours", "attribution": graph["attribution"]})
    ranked = sorted((reason for reason in reasons if reason["attribution"] != 0.0),
                    key=lambda reason: -abs(reason["attribution"]))
    return ranked[:top_k]


def _number(value: float) -> float:
    """A float rounded to 6 significant digits: short JSON, no false precision."""
    return float(f"{float(value):.6g}")
