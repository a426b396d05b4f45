"""Request bodies of the HTTP API (the original stack's shapes), validated by pydantic -> 422 naming the field.

A /train body is a plain JSON object turned into a TrainConfig by `dmas.train.requests` (it takes
the original stack's several forms); its errors are 422s in the same `problems` shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dmas.errors import ConfigError
from dmas.explain.narrative import NarrativeMode
from dmas.scoring.inline import InlineEntity
from dmas.train.requests import train_config_from_request

Narrative = Annotated[NarrativeMode, Field(description="the original stack's narrative modes; dmas has no language "
                                                       "model, so every mode is answered by the template narrative")]


class ScoringRequest(BaseModel):
    """Which entities to score, with which run, on which data (the present unless as_of / store_version)."""

    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] = Field(default_factory=list, description="stored entities; duplicates are answered once, "
                                  "unknown ones listed in unknown_entity_ids")
    entities: list[InlineEntity] = Field(default_factory=list, description="entities given in full (attributes, "
                                         "events, interactions with stored entities, stored blobs): scored as if "
                                         "ingested, nothing is written")
    run_id: str | None = Field(None, description="a run; the latest completed run when omitted")
    as_of: AwareDatetime | None = Field(None, description="score the past: nothing after this time is used")
    store_version: dict[str, NonNegativeInt] | None = Field(None, description="table versions to read, as `dmas "
                                                            "store snapshot` prints them (tables left out: latest)")
    narrative_mode: Narrative = "template"

    @model_validator(mode="wrap")
    @classmethod
    def _something_to_score(cls, data: Any, handler) -> ScoringRequest:
        """A body naming no entity is a 422 on `entity_ids`, reported beside any other problem of the body."""
        nothing = isinstance(data, dict) and not data.get("entity_ids") and not data.get("entities")
        problems = [{"type": PydanticCustomError("nothing_to_score", "give entity_ids (stored entities) or entities "
                                                 "(inline), or both"), "loc": ("entity_ids",), "input": data}] \
            if nothing else []
        try:
            request = handler(data)
        except ValidationError as exc:
            found = [{key: error[key] for key in ("type", "loc", "input", "ctx") if key in error}
                     for error in exc.errors()]
            raise ValidationError.from_exception_data(cls.__name__, [*found, *problems]) from None
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return request


class PredictRequest(ScoringRequest):
    explanations: StrictBool = Field(False, description="explain the probability of each entity (slower)")


class ExplainRequest(ScoringRequest):
    target: Literal["probability", "regression", "ranking_score"] = "probability"


class VerifyRequest(BaseModel):
    """POST /verify: a receipt from /predict, /explain or `dmas score`; an inline entity's receipt with the entity."""

    model_config = ConfigDict(extra="forbid")

    receipt: dict[str, Any]
    entity: InlineEntity | None = None


class QueryFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] = Field(default_factory=list, description="rank only these entities")


class QueryRequest(BaseModel):
    """Either the structured form (order_by, descending, limit, filter) or the original {"query": text}."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, min_length=1, pattern=r"\S", description="free text, e.g. 'top 5 most likely "
                              "to churn'")
    run_id: str | None = None
    order_by: Literal["ranking_score", "probability", "regression"] = "ranking_score"
    descending: StrictBool = True
    limit: int = Field(10, gt=0, le=10_000)
    filter: QueryFilter | None = None


class PreloadRequest(BaseModel):
    """POST /demo/preload: the original UI's body (profile, reset_existing, extract_features, train_model)
    or dmas' own (n_entities, epochs); see dmas.operations.preload_demo for what each step does."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["small", "medium"] = Field("small", description="200 or 1,000 synthetic entities")
    n_entities: int | None = Field(None, ge=10, le=100_000, description="any other size; overrides the profile")
    epochs: int = Field(5, gt=0, le=200)
    reset_existing: StrictBool = Field(False, description="accepted on a store without entities only: a demo "
                                       "never deletes data (forget entities with DELETE /entities/{id})")
    extract_features: StrictBool = Field(True, description="extract the media features (else training uses none)")
    train_model: StrictBool = Field(True, description="train a quick run on the demo data")


IdempotencyKey = Annotated[str | None, Field(min_length=1, max_length=200, description=(
    "the same key (from the same caller, for the same operation) answers with the same task, on any replica; "
    "also accepted as the Idempotency-Key header"))]


class AsyncRequest(BaseModel):
    """The original async routes' optional body: only the idempotency key."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey = None


class PredictAsyncRequest(AsyncRequest):
    """POST /predict/async: predictions as a job (for id lists too long to wait for); no explanations."""

    entity_ids: list[str] = Field(min_length=1, description="entities to score; duplicates are answered once")
    run_id: str | None = Field(None, description="a run; the latest completed run (when the task is queued) "
                               "when omitted")
    explanations: StrictBool = Field(False, description="false only: explanations are answered by POST /predict")

    @field_validator("explanations")
    @classmethod
    def _no_explanations(cls, value: bool) -> bool:
        if value:
            raise ValueError("explanations are answered by POST /predict; /predict/async scores only")
        return value


TrainBody = Annotated[dict[str, Any] | None, Body(description=(
    "none, {}, TrainConfig fields at the top level (the original form, e.g. {\"epochs\": 100, \"batch_size\": 32, "
    "\"learning_rate\": 0.001, \"seed\": 1234}), or wrapped as {\"config\": {...}}; the original "
    "max_neighbors / max_artifacts_per_entity set tensorize.*; epochs default to 3 (the original default)"))]


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the app's `problems` shape, for checks pydantic cannot make ("" is the body as a whole)."""
    return RequestValidationError([{"loc": ("body", field) if field else ("body",), "msg": message,
                                    "type": "value_error"}])


def train_params(body: dict | None) -> dict:
    """The train job's parameters for a /train body; a setting dmas does not know is a 422 naming it."""
    try:
        config, ignored = train_config_from_request(body)
    except ConfigError as exc:
        raise invalid("", str(exc)) from None
    return {"config": config.model_dump(mode="json"), "ignored_keys": ignored}
