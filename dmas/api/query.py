"""The /query endpoint's reading of a request: a structured ordering, or words mapped to one.

The original stack accepted free text; its words map deterministically to an ordering, and the
answer says how the text was read, in words (`interpreted_as`, what the old UI prints) and as data
(`interpretation`), so nothing is guessed silently.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_PROBABILITY_WORDS = ("likely", "likelihood", "risk", "risky", "probability", "probable", "chance")
_ASCENDING_WORDS = ("weakest", "lowest", "least", "bottom", "worst", "smallest")
_DESCENDING_WORDS = ("top", "strongest", "highest", "best", "most", "largest", "first")
_VALUE_WORDS = ("value", "amount", "regression", "score")
_WORD = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class Ordering:
    order_by: str  # regression | probability | ranking_score
    descending: bool
    limit: int
    entity_ids: tuple[str, ...] = ()  # entities named in the text: answered directly

    def to_dict(self) -> dict:
        return {**asdict(self), "entity_ids": list(self.entity_ids)}

    def describe(self, among: int = 0) -> str:
        """The ordering in words, e.g. "top 5 by probability, highest first" (`among`: a filter's size)."""
        if self.entity_ids:
            return f"the entities named in the query: {', '.join(self.entity_ids)}"
        direction = "highest first" if self.descending else "lowest first"
        scope = f", among the {among} entities given" if among else ""
        return f"top {self.limit} by {self.order_by}, {direction}{scope}"


def mentioned(text: str) -> list[str]:
    """The words of `text` that could name an entity, once each, in order (ask the run which it knows)."""
    return list(dict.fromkeys(_WORD.findall(text)))


def interpret(text: str, limit: int, known_ids: set[str]) -> Ordering:
    """Map free text to an ordering: probability words -> probability, value words -> regression,
    otherwise ranking; "weakest/lowest/..." ascending, else descending; known entity ids are kept."""
    words = [word.lower() for word in _WORD.findall(text)]
    named = tuple(word for word in mentioned(text) if word in known_ids)
    if any(word in _PROBABILITY_WORDS for word in words):
        order_by = "probability"
    elif any(word in _VALUE_WORDS for word in words) and not any(word in ("rank", "ranking") for word in words):
        order_by = "regression"
    else:
        order_by = "ranking_score"
    descending = not any(word in _ASCENDING_WORDS for word in words)
    number = next((int(word) for word in words if word.isdigit() and 0 < int(word) <= 10_000), None)
    return Ordering(order_by, descending, number or limit, named)
