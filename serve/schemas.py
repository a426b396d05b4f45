"""Request bodies of the HTTP API (the original stack's shapes), validated by pydantic -> 422 naming the field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] = Field(min_length=1, description="entities to score; duplicates are answered once")
    run_id: str | None = Field(None, description="a run; the latest completed run when omitted")
    explanations: bool = False


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] = Field(min_length=1)
    run_id: str | None = None
    target: Literal["probability", "regression", "ranking_score"] = "probability"


class QueryFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] = Field(default_factory=list, description="rank only these entities")


class QueryRequest(BaseModel):
    """Either the structured form (order_by, descending, limit, filter) or the original {"query": text}."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, description="free text, e.g. 'top 5 most likely to churn'")
    run_id: str | None = None
    order_by: Literal["ranking_score", "probability", "regression"] = "ranking_score"
    descending: bool = True
    limit: int = Field(10, gt=0, le=10_000)
    filter: QueryFilter | None = None

    @model_validator(mode="after")
    def _one_form(self) -> QueryRequest:
        if self.query is not None and not self.query.strip():
            raise ValueError("query must not be empty")
        return self


class PreloadRequest(BaseModel):
    """POST /demo/preload: how much synthetic data, and how long the quick training run is."""

    model_config = ConfigDict(extra="forbid")

    n_entities: int = Field(200, ge=10, le=100_000)
    epochs: int = Field(5, gt=0, le=200)
