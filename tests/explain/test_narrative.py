"""Template narratives: the heads alone, and what a request for a language model's narrative is told."""

import pytest

from dmas.explain import NARRATIVE_MODES, ExplainError, heads_narrative, narrative, narrative_fields, narrative_note

PREDICTION = {"probability": 0.8512, "regression": 12.306, "ranking_score": -0.414}


def test_heads_narrative_names_every_head_in_a_fixed_order():
    assert heads_narrative(PREDICTION) == "probability 0.85, regression 12.31, ranking score -0.41"
    assert heads_narrative(dict(reversed(PREDICTION.items()))) == heads_narrative(PREDICTION)


def test_narrative_fields_say_the_text_is_the_template():
    assert narrative_fields("probability 0.85") == {"narrative": "probability 0.85",
                                                    "narrative_template": "probability 0.85",
                                                    "narrative_source": "template"}


def test_a_language_model_mode_is_answered_by_the_template_and_says_so():
    assert NARRATIVE_MODES == ("template", "llm", "both")
    assert narrative_note("template") is None
    for mode in ("llm", "both"):
        assert "template" in narrative_note(mode) and repr(mode) in narrative_note(mode)
    with pytest.raises(ExplainError, match="narrative_mode"):
        narrative_note("gpt")


def test_without_reasons_the_narrative_is_the_headline():
    explanation = {"target": "logit", "top_reasons": []}
    assert narrative(explanation, PREDICTION) == "probability 0.85"
