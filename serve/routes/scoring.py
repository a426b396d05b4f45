"""Predictions, explanations, queries and receipts, scored in this replica from the store as it is now.

Answers carry the original stack's keys beside dmas' own: a template narrative on every
prediction (at its top level, where the old UI reads it, also when explained), the old explanation
keys inside `explanation`, and /query's reading of the request as text (`interpreted_as`) with the
structured form in `interpretation`. Each prediction carries its receipt; POST /verify checks one.
"""

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from dmas.api.query import Ordering, interpret, mentioned
from dmas.errors import ConflictError
from dmas.explain.narrative import narrative_fields, narrative_note
from dmas.scoring.answers import explanations, predictions
from dmas.scoring.receipts import verify as verify_receipt
from dmas.vocabulary import HEADS
from serve.context import ReplicaContext, Viewer, current
from serve.schemas import ExplainRequest, PredictRequest, QueryRequest, ScoringRequest, VerifyRequest

router = APIRouter(tags=["scoring"])
_INLINE_WORK = 64  # entities scored on the event loop; a larger request goes to a worker thread


def _limit(context: ReplicaContext, request: Request, count: int, explained: bool) -> None:
    """413 past the setting's cap (explanations cost far more than predictions, so they have their own)."""
    request.state.entity_count = count
    setting = "max_explanations_per_request" if explained else "max_entities_per_request"
    limit = getattr(context.settings.serve, setting)
    if count > limit:
        what = "explained entities" if explained else "entity ids"
        raise HTTPException(413, f"{count} {what} is over the limit of {limit} per request: send them in "
                                 f"pages of at most {limit} ids (or inline entities; an entity's answer does not "
                                 f"depend on the others in its request, so the pages add up to the same answers), "
                                 f"or raise "
                                 f"serve.{setting} (env DMAS_SERVE__{setting.upper()})")


def _scored_answer(context: ReplicaContext, run_id: str, body: ScoringRequest, explain_target: str | None) -> dict:
    scored = context.scorer.score(run_id, body.entity_ids, body.entities, as_of=body.as_of,
                                  store_version=body.store_version)
    answers = predictions(scored)
    if explain_target is not None:
        explained = explanations(scored, explain_target, answers)
        answers = [{**answer, **narrative_fields(explanation["narrative"]), "explanation": explanation}
                   for answer, explanation in zip(answers, explained)]
    note = narrative_note(body.narrative_mode)
    return {"run_id": run_id, "predictions": answers, "unknown_entity_ids": scored.unknown_entity_ids,
            "store_versions": scored.store_versions, "as_of": body.as_of.isoformat() if body.as_of else None,
            **({"narrative_note": note} if note else {})}


async def _answer(request: Request, body: ScoringRequest, explain_target: str | None) -> dict:
    context = current()
    count = len(body.entity_ids) + len(body.entities)
    _limit(context, request, count, explain_target is not None)
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    if count <= _INLINE_WORK and explain_target is None:  # ~3 ms: cheaper than a thread hop
        return _scored_answer(context, run_id, body, None)
    return await run_in_threadpool(_scored_answer, context, run_id, body, explain_target)


@router.post("/predict")
async def predict(body: PredictRequest, request: Request, key: Viewer) -> dict:
    return await _answer(request, body, "probability" if body.explanations else None)


@router.post("/explain")
async def explain(body: ExplainRequest, request: Request, key: Viewer) -> dict:
    return await _answer(request, body, body.target)


@router.post("/verify")
async def verify(body: VerifyRequest, key: Viewer) -> dict:
    """Rebuild a receipt's inputs from the store at its versions, re-run the model, say what (if anything) differs."""
    return await run_in_threadpool(verify_receipt, current().store, body.receipt, body.entity)


def _ranked(context: ReplicaContext, run_id: str, ordering: Ordering, among: list[str]) -> tuple[list[dict], str]:
    """The top entities by a head (ties by entity_id), and where the scores came from: the run's latest
    `dmas score` commit when there is one (holding every entity of `among`), else scored now."""
    from dmas.explain.narrative import heads_narrative
    from dmas.scoring.batch import ranked_from_scores, scores_receipt

    if ordering.order_by not in HEADS:
        raise HTTPException(422, f"order_by must be one of {', '.join(HEADS)}")

    def answer(row: dict) -> dict:
        heads = {head: float(row[head]) for head in HEADS}
        return {"entity_id": row["entity_id"], **heads, **narrative_fields(heads_narrative(heads)),
                "receipt": scores_receipt(row)}

    stored = ranked_from_scores(context.store, run_id, ordering.order_by, ordering.descending, ordering.limit,
                                among, answer)
    if stored is not None:
        return stored
    entity_ids = among or context.view.entity_ids()
    limit = context.settings.serve.max_query_scan
    if len(entity_ids) > limit:
        raise ConflictError(f"/query would score {len(entity_ids)} entities on the fly, over serve.max_query_scan="
                            f"{limit}: run `dmas score --run-id {run_id}` (a batch job) and query again, or "
                            "filter by entity_ids")
    answers = predictions(context.scorer.score(run_id, entity_ids), with_embedding=False)
    sign = -1 if ordering.descending else 1
    answers.sort(key=lambda answer: answer["entity_id"])
    answers.sort(key=lambda answer: sign * answer[ordering.order_by])
    return answers[:ordering.limit], f"scored now ({len(entity_ids)} entities)"


@router.post("/query")
async def query(body: QueryRequest, request: Request, key: Viewer) -> dict:
    context = current()
    run_id = request.state.run_id = context.runs.run_id(body.run_id)
    among = body.filter.entity_ids if body.filter else []
    if body.query is not None:
        ordering = interpret(body.query, body.limit, set(context.view.known(mentioned(body.query))))
    else:
        ordering = Ordering(body.order_by, body.descending, body.limit)
    if ordering.entity_ids:
        scored = await run_in_threadpool(context.scorer.score, run_id, list(ordering.entity_ids))
        results, source = predictions(scored, with_embedding=False), "scored now"
    else:
        results, source = await run_in_threadpool(_ranked, context, run_id, ordering, among)
    return {"run_id": run_id, "query": body.query, "interpreted_as": ordering.describe(len(among)),
            "interpretation": ordering.to_dict(), "llm_used": False, "scores_from": source, "results": results}
