"""The original stack's explanation keys, set beside dmas' explanation."""

import json

import pytest

from dmas.explain import ArtifactName, ExplainError, published_fields

EXPLANATION = {
    "attributes": [{"name": "income", "value": 5.0, "attribution": 0.35},
                   {"name": "age", "value": 40.0, "attribution": -0.02}],
    "events": [{"index": 0, "event_type": "login", "attention": 0.6, "attribution": 0.1},
               {"index": 1, "event_type": "purchase", "attention": 0.4, "attribution": 0.2}],
    "artifacts": [{"sha256": "a" * 64, "artifact_type": "image", "attribution": 0.22},
                  {"sha256": "b" * 64, "artifact_type": "audio", "attribution": -0.01}],
}


def test_each_key_in_the_old_shape():
    names = [ArtifactName("art_1", "image"), ArtifactName(None, None)]
    fields = published_fields(EXPLANATION, names)
    assert fields["attribute_attributions"] == {"income": 0.35, "age": -0.02}
    assert list(fields["attribute_attributions"]) == ["income", "age"]  # largest |attribution| first, as listed
    assert fields["event_attention_weights"] == [0.6, 0.4]
    assert fields["artifact_contributions"] == [
        {"artifact_id": "art_1", "artifact_type": "image", "sha256": "a" * 64, "contribution": 0.22},
        {"artifact_id": None, "artifact_type": "audio", "sha256": "b" * 64, "contribution": -0.01}]
    assert json.dumps(published_fields(EXPLANATION, names)) == json.dumps(fields)


def test_one_name_per_explained_artifact():
    with pytest.raises(ExplainError, match="1 artifact names for 2"):
        published_fields(EXPLANATION, [ArtifactName("art_1", "image")])
