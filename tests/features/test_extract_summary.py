"""What `extract_pending` tells its caller (`POST /features/extract`, `dmas features`)."""

import numpy as np

from dmas.config import load_settings
from dmas.features.pipeline import extract_pending
from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.synth_media import encode_image

RED = encode_image(np.full((8, 8, 3), (200, 0, 0), dtype=np.uint8), "png")
BLUE = encode_image(np.full((8, 8, 3), (0, 0, 200), dtype=np.uint8), "png")


def _fails_on_blue(artifact_type, data, config):
    if data == BLUE:
        raise ValueError("cannot decode")
    return np.zeros(4, dtype=np.float32)


def test_updated_artifacts_counts_every_artifact_of_each_blob_given_features(store, write, tmp_path):
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\ne1,{}\ne2,{}\n"))
    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "blue.png").write_bytes(BLUE)
    manifest = write("artifacts.csv", "path,artifact_type,entity_id\nred.png,image,e1\nred.png,image,e2\n"
                                      "blue.png,image,e1\n")
    assert ingest_artifact_manifest(store, manifest)["success_rows"] == 3
    settings = load_settings(store_uri=store.uri)

    first = extract_pending(store, settings, extract=_fails_on_blue, use_ray=False)
    assert (first["extracted"], first["failed"], first["updated_artifacts"]) == (1, 1, 2)  # one blob, two artifacts
    again = extract_pending(store, settings, extract=_fails_on_blue, use_ray=False)
    assert (again["pending"], again["updated_artifacts"]) == (0, 0)
