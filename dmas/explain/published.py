"""The original stack's explanation keys, derived from a dmas explanation and set beside its own.

The old clients read `attribute_attributions` (name -> attribution), `event_attention_weights`
(one weight per real event, in the order of its `events`) and `artifact_contributions` (each artifact by its id in
the artifacts table, its type and its share of the attribution). dmas' explanation knows artifacts
by blob sha256; the caller names them (`ArtifactName` per artifact, in the explanation's order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dmas.explain.integrated_gradients import ExplainError


@dataclass(frozen=True)
class ArtifactName:
    """An artifact row of the store: its id and type (None: the blob has no row the run could read)."""

    artifact_id: str | None
    artifact_type: str | None


def published_fields(explanation: dict, artifact_names: Sequence[ArtifactName]) -> dict:
    """`attribute_attributions`, `event_attention_weights` and `artifact_contributions` of `explanation`."""
    artifacts = explanation["artifacts"]
    if len(artifact_names) != len(artifacts):
        raise ExplainError(f"{len(artifact_names)} artifact names for {len(artifacts)} explained artifacts")
    return {
        "attribute_attributions": {row["name"]: row["attribution"] for row in explanation["attributes"]},
        "event_attention_weights": [row["attention"] for row in explanation["events"]],
        "artifact_contributions": [
            {"artifact_id": name.artifact_id, "artifact_type": name.artifact_type or row["artifact_type"],
             "sha256": row["sha256"], "contribution": row["attribution"]}
            for row, name in zip(artifacts, artifact_names)],
    }
