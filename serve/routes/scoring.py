"""Predictions, explanations and queries over a trained run (the Predictor and Explainer deployments)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from dmas.api.query import interpret
from dmas.api.security import ApiKey
from serve.context import ReplicaContext, current, viewer
from serve.schemas import ExplainRequest, PredictRequest, QueryRequest

router = APIRouter(tags=["scoring"])


def _limit(context: ReplicaContext, request: Request, entity_ids: list[str]) -> None:
    request.state.entity_count = len(entity_ids)
    if len(entity_ids) > context.settings.serve.max_entities_per_request:
        raise HTTPException(413, f"{len(entity_ids)} entity ids is over the limit of "
                                 f"{context.settings.serve.max_entities_per_request} per request")


async def _predicted(context: ReplicaContext, run_id: str, entity_ids: list[str],
                     explain_target: str | None) -> list[dict]:
    """The run's predictions for the ids, each with its explanation of `explain_target` when given."""
    predictions = await context.predictor.predict.remote(run_id, entity_ids)
    if explain_target is None:
        return predictions
    explained = await context.explainer.explain.remote(run_id, entity_ids, explain_target)
    return [{**prediction, "explanation": explanation} for prediction, explanation in zip(predictions, explained)]


@router.post("/predict")
async def predict(body: PredictRequest, request: Request, key: Annotated[ApiKey, Depends(viewer)]) -> dict:
    context = current()
    _limit(context, request, body.entity_ids)
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    target = "probability" if body.explanations else None
    return {"run_id": run_id, "predictions": await _predicted(context, run_id, body.entity_ids, target)}


@router.post("/explain")
async def explain(body: ExplainRequest, request: Request, key: Annotated[ApiKey, Depends(viewer)]) -> dict:
    context = current()
    _limit(context, request, body.entity_ids)
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    return {"run_id": run_id, "predictions": await _predicted(context, run_id, body.entity_ids, body.target)}


@router.post("/query")
async def query(body: QueryRequest, request: Request, key: Annotated[ApiKey, Depends(viewer)]) -> dict:
    context = current()
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    if body.query is not None:
        ordering = interpret(body.query, body.limit, await context.predictor.known_ids.remote(run_id))
        if ordering.entity_ids:
            results = await _predicted(context, run_id, list(ordering.entity_ids), None)
        else:
            results = await context.predictor.query.remote(run_id, ordering.order_by, ordering.descending,
                                                           ordering.limit, [])
        return {"run_id": run_id, "interpreted_as": ordering.to_dict(), "results": results}
    results = await context.predictor.query.remote(run_id, body.order_by, body.descending, body.limit,
                                                   body.filter.entity_ids if body.filter else [])
    return {"run_id": run_id, "interpreted_as": {"order_by": body.order_by, "descending": body.descending,
                                                 "limit": body.limit}, "results": results}
