"""Photo formats users send beyond PNG and JPEG: HEIC (iPhone), AVIF, JPEG 2000 (imaging), Netpbm.

Each is recognised by content, stored as an image (never as video, although HEIC and AVIF share
MP4's file structure) and extracted; a solid colour comes out as that colour.
"""

import io

import numpy as np
import pytest
from PIL import Image, features

from dmas.features import extract_features
from dmas.features.image import IMAGE_FEATURE_NAMES
from dmas.ingest.artifacts import ingest_artifact

ORANGE = (230, 120, 20)


def _encode(fmt: str) -> bytes:
    if fmt == "HEIF":
        from dmas.heif import enable_heif_images

        enable_heif_images()  # pillow-heif also writes HEIC
    out = io.BytesIO()
    Image.new("RGB", (96, 64), ORANGE).save(out, format=fmt)
    return out.getvalue()


CASES = {
    "photo.heic": ("HEIF", "heif"),
    "photo.avif": ("AVIF", "avif"),
    "scan.jp2": ("JPEG2000", "jpeg2000"),
    "frame.ppm": ("PPM", "netpbm"),
}
NEEDS = {"AVIF": "avif", "JPEG2000": "jpg_2000"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_photo_formats_ingest_as_images_and_keep_their_colour(store, tmp_path, name):
    fmt, media_format = CASES[name]
    if fmt in NEEDS and not features.check(NEEDS[fmt]):
        pytest.skip(f"this Pillow build has no {fmt} codec")
    path = tmp_path / name
    path.write_bytes(_encode(fmt))
    result = ingest_artifact(store, path)
    assert (result["artifact_type"], result["media_format"]) == ("image", media_format)
    vector = extract_features("image", path.read_bytes())
    means = [vector[IMAGE_FEATURE_NAMES.index(f"img.{channel}.mean")] for channel in "rgb"]
    assert np.allclose(means, np.array(ORANGE) / 255, atol=0.03), means
