"""Predictions, explanations and queries over a trained run (the Predictor and Explainer deployments).

Answers carry the original stack's keys beside dmas' own: a template narrative on every
prediction (at its top level, where the old UI reads it, also when explained), the old explanation
keys inside `explanation`, and /query's reading of the request as text (`interpreted_as`) with the
structured form in `interpretation`.
"""


from fastapi import APIRouter, HTTPException, Request

from dmas.api.query import Ordering, interpret, mentioned
from dmas.explain.narrative import narrative_fields, narrative_note
from serve.context import ReplicaContext, Viewer, current
from serve.schemas import ExplainRequest, PredictRequest, QueryRequest

router = APIRouter(tags=["scoring"])


def _limit(context: ReplicaContext, request: Request, entity_ids: list[str], explained: bool) -> None:
    """413 past the setting's cap (explanations cost far more than lookups, so they have their own)."""
    request.state.entity_count = len(entity_ids)
    setting = "max_explanations_per_request" if explained else "max_entities_per_request"
    limit = getattr(context.settings.serve, setting)
    if len(entity_ids) > limit:
        what = "explained entities" if explained else "entity ids"
        raise HTTPException(413, f"{len(entity_ids)} {what} is over the limit of {limit} per request: send them in "
                                 f"pages of at most {limit} ids (an entity's answer does not depend on the others "
                                 f"in its request, so the pages add up to the same answers), or raise "
                                 f"serve.{setting} (env DMAS_SERVE__{setting.upper()})")


async def _predicted(context: ReplicaContext, run_id: str, entity_ids: list[str],
                     explain_target: str | None) -> list[dict]:
    """The run's predictions for the ids; with `explain_target`, each explained, its narrative on top."""
    predictions = await context.predictor.predict.remote(run_id, entity_ids)
    if explain_target is None:
        return predictions
    explained = await context.explainer.explain.remote(run_id, entity_ids, explain_target)
    return [{**prediction, **narrative_fields(explanation["narrative"]), "explanation": explanation}
            for prediction, explanation in zip(predictions, explained)]


def _answer(run_id: str, predictions: list[dict], narrative_mode: str) -> dict:
    note = narrative_note(narrative_mode)
    return {"run_id": run_id, "predictions": predictions, **({"narrative_note": note} if note else {})}


@router.post("/predict")
async def predict(body: PredictRequest, request: Request, key: Viewer) -> dict:
    context = current()
    _limit(context, request, body.entity_ids, body.explanations)
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    target = "probability" if body.explanations else None
    return _answer(run_id, await _predicted(context, run_id, body.entity_ids, target), body.narrative_mode)


@router.post("/explain")
async def explain(body: ExplainRequest, request: Request, key: Viewer) -> dict:
    context = current()
    _limit(context, request, body.entity_ids, explained=True)
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    return _answer(run_id, await _predicted(context, run_id, body.entity_ids, body.target), body.narrative_mode)


@router.post("/query")
async def query(body: QueryRequest, request: Request, key: Viewer) -> dict:
    context = current()
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    among = body.filter.entity_ids if body.filter else []
    if body.query is not None:
        known = await context.predictor.known.remote(run_id, mentioned(body.query))
        ordering = interpret(body.query, body.limit, set(known))
    else:
        ordering = Ordering(body.order_by, body.descending, body.limit)
    if ordering.entity_ids:
        predictions = await _predicted(context, run_id, list(ordering.entity_ids), None)
        results = [{name: value for name, value in row.items() if name != "embedding"} for row in predictions]
    else:
        results = await context.predictor.query.remote(run_id, ordering.order_by, ordering.descending,
                                                       ordering.limit, among)
    return {"run_id": run_id, "query": body.query, "interpreted_as": ordering.describe(len(among)),
            "interpretation": ordering.to_dict(), "llm_used": False, "results": results}
