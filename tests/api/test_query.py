import pytest

from dmas.api.query import interpret, mentioned


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


def test_the_reading_in_words_for_the_old_ui():
    assert interpret("weakest 4", limit=10, known_ids=set()).describe() == "top 4 by ranking_score, lowest first"
    assert interpret("most likely", limit=10, known_ids=set()).describe(among=3) == (
        "top 10 by probability, highest first, among the 3 entities given")
    named = interpret("how is ent_000009 doing", limit=10, known_ids={"ent_000009"})
    assert named.describe() == "the entities named in the query: ent_000009"


def test_the_words_that_could_name_an_entity():
    assert mentioned("compare ent_7 and ent_7, then ent_9!") == ["compare", "ent_7", "and", "then", "ent_9"]
