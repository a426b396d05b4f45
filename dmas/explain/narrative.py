"""Template narratives: one line of text per prediction, the same bytes for the same entity and run.

Two templates: the heads alone ("probability 0.85, regression 12.31, ranking score 0.41"), for
every prediction, and the explained head with its top reasons ("probability 0.85, mainly:
attribute income (+0.35), event #3 purchase (+0.12; 0.40 attention)"), when an explanation was
computed. There is no language model in dmas: a request for one is answered with the template and
says so (`narrative_note`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from dmas.explain.integrated_gradients import ExplainError
from dmas.vocabulary import HEADS

# the heads as a narrative names them, the probability first (as an explained probability leads its narrative)
HEADS_IN_WORDS = tuple((head, head.replace("_", " ")) for head in sorted(HEADS, key=lambda head: head != "probability"))
NARRATIVE_REASONS = 3
NarrativeMode = Literal["template", "llm", "both"]  # the original stack's narrative_mode values
NARRATIVE_MODES = get_args(NarrativeMode)


def heads_narrative(prediction: Mapping[str, float]) -> str:
    """The three heads of a prediction in one line."""
    return ", ".join(f"{words} {prediction[head]:.2f}" for head, words in HEADS_IN_WORDS)


def narrative(explanation: dict, prediction: Mapping[str, float]) -> str:
    """A line like "probability 0.85, mainly: attribute income (+0.35), event #3 purchase (+0.12; 0.40 attention)".

    The top reasons of `explanation` by |attribution|, at most three. `prediction` holds the heads'
    values (as /predict answers them); a logit is reported as its probability.
    """
    head = "probability" if explanation["target"] in ("logit", "probability") else explanation["target"]
    if head not in prediction:
        raise ExplainError(f"prediction has no {head!r} value; it has {sorted(prediction)}")
    reasons = [_reason_text(reason) for reason in explanation["top_reasons"][:NARRATIVE_REASONS]]
    headline = f"{head} {prediction[head]:.2f}"
    return f"{headline}, mainly: {', '.join(reasons)}" if reasons else headline


def narrative_fields(text: str) -> dict:
    """The original stack's narrative keys of a prediction, all from the template."""
    return {"narrative": text, "narrative_template": text, "narrative_source": "template"}


def narrative_note(mode: str) -> str | None:
    """What a response says when it was asked for a narrative it cannot give (None for the template)."""
    if mode not in NARRATIVE_MODES:
        raise ExplainError(f"narrative_mode must be one of {', '.join(NARRATIVE_MODES)}, got {mode!r}")
    if mode == "template":
        return None
    return (f"narrative_mode {mode!r} asks for a language model's narrative; dmas has none, so every "
            "narrative is the deterministic template (narrative_source: template)")


def _reason_text(reason: dict) -> str:
    amount = reason["attribution"]
    signed = f"{amount:+.2f}" if abs(amount) >= 0.005 else f"{amount:+.1e}"
    if reason["kind"] == "event":
        return f"{reason['label']} ({signed}; {reason['attention']:.2f} attention)"
    return f"{reason['label']} ({signed})"
