import pytest

from dmas.api.query import interpret


@pytest.mark.parametrize(("text", "order_by", "descending"), [
    ("top customers", "ranking_score", True),
    ("show the strongest entities", "ranking_score", True),
    ("weakest accounts first", "ranking_score", False),
    ("lowest ranked", "ranking_score", False),
    ("who is most likely to churn", "probability", True),
    ("highest risk", "probability", True),
    ("least likely", "probability", False),
    ("largest value", "regression", True),
])
def test_words_map_to_a_deterministic_ordering(text, order_by, descending):
    ordering = interpret(text, limit=10, known_ids=set())
    assert (ordering.order_by, ordering.descending) == (order_by, descending)
    assert interpret(text, limit=10, known_ids=set()) == ordering


def test_named_entities_and_a_count_in_the_text():
    ordering = interpret("compare ent_000007 and ent_000012, top 3", limit=10, known_ids={"ent_000007", "ent_000012"})
    assert ordering.entity_ids == ("ent_000007", "ent_000012") and ordering.limit == 3
