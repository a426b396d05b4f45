"""Entities sent with the request instead of stored: validated as strictly as ingest, scored as if ingested.

Nothing is written. Interactions name stored neighbours and artifacts name stored blobs (by
sha256); a neighbour or blob the store lacks is left out the way training leaves out what it
never saw, and the answer says so.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated

import numpy as np
import pyarrow as pa
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from dmas.inputs.rows import ARTIFACT_SCHEMA, EVENT_SCHEMA, FEATURE_SCHEMA, LINK_SCHEMA, UNDATED, EntityRows, micros


def _number(value: object) -> float:
    """A JSON number, finite; text, booleans and null are refused (ingest refuses them too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]


class InlineEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: AwareDatetime
    event_type: str = Field(min_length=1)
    event_value: Number


class InlineInteraction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dst_entity_id: str = Field(min_length=1, description="a stored entity")
    interaction_type: str = Field(min_length=1)
    interaction_value: Number = 1.0
    timestamp: AwareDatetime


class InlineEntity(BaseModel):
    """One entity as the request describes it (the ingest tables' fields)."""

    model_config = ConfigDict(extra="forbid")

    entity_id: str | None = Field(None, min_length=1, description="echoed in the answer; need not be stored")
    attributes: dict[str, bool | int | float | str | None] = Field(default_factory=dict)
    events: list[InlineEvent] = Field(default_factory=list, max_length=100_000)
    interactions: list[InlineInteraction] = Field(default_factory=list, max_length=10_000)
    artifact_sha256: list[str] = Field(default_factory=list, max_length=1_000,
                                       description="blobs already in the store, by sha256")

    @field_validator("attributes")
    @classmethod
    def _finite_attributes(cls, attributes: dict) -> dict:
        for name, value in attributes.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"attribute {name!r} must be a finite number")
        return attributes

    @field_validator("artifact_sha256")
    @classmethod
    def _hex_digests(cls, digests: list[str]) -> list[str]:
        for digest in digests:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{digest!r} is not a sha256 (64 lowercase hex digits)")
        return digests

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def payload_sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def latest_us(self) -> int:
        """The latest time this entity brings (it moves the reference time, as ingesting it would)."""
        times = [micros(event.timestamp) for event in self.events] + [
            micros(link.timestamp) for link in self.interactions]
        return max(times, default=np.iinfo(np.int64).min)


def inline_rows(entities: list[InlineEntity], neighbour_attributes: dict[str, str],
                features: dict[str, tuple[str, list[float]]]) -> tuple[EntityRows, list[dict[str, list[str]]]]:
    """`EntityRows` of the inline entities; `neighbour_attributes` and `features` are what the store holds
    for the neighbours and blobs they name. Also, per entity, the neighbours and blobs the store lacked."""
    missing: list[dict[str, list[str]]] = [{} for _ in entities]
    events = [(i, micros(e.timestamp), e.event_type, e.event_value) for i, entity in enumerate(entities)
              for e in entity.events]
    neighbours = sorted({link.dst_entity_id for entity in entities for link in entity.interactions
                         if link.dst_entity_id in neighbour_attributes})
    position = {entity: row for row, entity in enumerate(neighbours)}
    links, artifacts = [], []
    for i, entity in enumerate(entities):
        for link in entity.interactions:
            if link.dst_entity_id not in position:
                _add(missing[i], "neighbors", link.dst_entity_id)
                continue
            links.append((i, position[link.dst_entity_id], link.interaction_type, link.interaction_value,
                          micros(link.timestamp)))
        for digest in entity.artifact_sha256:
            if digest not in features:
                _add(missing[i], "artifacts_without_features", digest)
                continue
            artifacts.append((i, digest, digest, features[digest][0], UNDATED))
    used = sorted({row[2] for row in artifacts})
    rows = EntityRows(
        entity_ids=np.asarray([entity.entity_id for entity in entities], dtype=object),
        attributes=pa.array([json.dumps(entity.attributes, sort_keys=True) for entity in entities], pa.string()),
        events=_table(events, EVENT_SCHEMA),
        links=_table(links, LINK_SCHEMA),
        neighbour_attributes=pa.array([neighbour_attributes[entity] for entity in neighbours], pa.string()),
        artifacts=_table(artifacts, ARTIFACT_SCHEMA),
        features=_table([(digest, features[digest][0], features[digest][1]) for digest in used], FEATURE_SCHEMA),
    )
    return rows, missing


def _add(notes: dict[str, list[str]], what: str, value: str) -> None:
    names = notes.setdefault(what, [])
    if value not in names:
        names.append(value)


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.table([pa.array(list(column), field.type) for column, field in zip(columns, schema)], schema=schema)
