"""Image extractor: shape and names, known answers on generated images, modes, EXIF, failures, determinism."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dmas import synth_media
from dmas.features.decode import UndecodableMediaError, decode_image
from dmas.features.image import IMAGE_FEATURE_NAMES, extract_image_features, image_feature_names
from dmas.features.version import FeatureConfig

INDEX = {name: i for i, name in enumerate(IMAGE_FEATURE_NAMES)}


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    return encode(Image.new("RGB", size, colour))


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[INDEX[name]])


def features_named(vector: np.ndarray, part: str) -> np.ndarray:
    return np.array([v for name, v in zip(IMAGE_FEATURE_NAMES, vector) if part in name])


def test_vector_shape_names_and_finiteness():
    rng = np.random.default_rng(0)
    vector = extract_image_features(synth_media.encode_image(synth_media.render_image(0.4, rng), "jpeg"))
    assert vector.dtype == np.float32 and vector.shape == (len(IMAGE_FEATURE_NAMES),)
    assert len(IMAGE_FEATURE_NAMES) >= 240
    assert len(set(IMAGE_FEATURE_NAMES)) == len(IMAGE_FEATURE_NAMES)
    assert all(name.startswith("img.") for name in IMAGE_FEATURE_NAMES)
    assert np.isfinite(vector).all()


def test_names_follow_the_config():
    config = FeatureConfig(image_hist_bins=16, hog_cells=2, hog_orientations=6, image_size=64)
    vector = extract_image_features(solid((10, 20, 30)), config)
    assert vector.shape == (len(image_feature_names(config)),)
    assert len(image_feature_names(config)) == 4 * 16 + 12 + 4 + 2 * 2 * 6 + 4 + 4


def test_pure_red_puts_all_mass_in_the_extreme_bins():
    vector = extract_image_features(solid((255, 0, 0)))
    assert feature(vector, "img.hist.r.b31") == 1.0
    assert feature(vector, "img.hist.g.b00") == 1.0
    assert feature(vector, "img.hist.b.b00") == 1.0
    assert features_named(vector, "img.hist.r.").sum() == pytest.approx(1.0)
    assert feature(vector, "img.r.mean") == 1.0 and feature(vector, "img.r.std") == 0.0
    assert feature(vector, "img.r.skew") == 0.0
    assert feature(vector, "img.chroma.mean") == 1.0 and feature(vector, "img.val.mean") == 1.0


def test_grey_image_has_no_edges_or_gradients():
    vector = extract_image_features(solid((128, 128, 128)))
    assert features_named(vector, "img.edge.").tolist() == [0.0] * 4
    assert not features_named(vector, "img.hog.").any()
    assert feature(vector, "img.grad.mean") == 0.0
    assert feature(vector, "img.gray.mean") == pytest.approx(128 / 255)


def test_a_hard_vertical_edge_votes_for_horizontal_gradients():
    array = np.zeros((128, 128, 3), np.uint8)  # the HOG size: no resize blurs the step
    array[:, 64:] = 255
    vector = extract_image_features(encode(Image.fromarray(array)))
    assert feature(vector, "img.edge.gt40pct") == pytest.approx(2 / 128)
    hog = features_named(vector, "img.hog.").reshape(16, 9)
    # 0 degrees sits between the bins centred on 10 and 170 degrees, which share every vote
    assert hog[:, [0, 8]].sum() == pytest.approx(hog.sum())
    assert hog[:, 0].sum() == pytest.approx(hog[:, 8].sum())


def test_size_features_and_skew_sign():
    array = np.zeros((16, 64, 3), np.uint8)
    array[:, :4] = 255  # few bright pixels: positive skew
    vector = extract_image_features(encode(Image.fromarray(array)))
    assert feature(vector, "img.log2_width") == 6.0 and feature(vector, "img.log2_height") == 4.0
    assert feature(vector, "img.gray.skew") > 1.0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "1", "P", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_mode_extracts(mode):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray((rng.integers(0, 65536, (24, 32))).astype(np.uint16))
    else:
        image = rgb.convert(mode)
    fmt = {"CMYK": "JPEG", "I": "TIFF", "F": "TIFF", "YCbCr": "JPEG"}.get(mode, "PNG")
    vector = extract_image_features(encode(image, fmt))
    assert vector.shape == (len(IMAGE_FEATURE_NAMES),) and np.isfinite(vector).all()


def test_sixteen_bit_images_are_scaled_to_eight_bits():
    image = Image.fromarray(np.full((8, 8), 0xFFFF, np.uint16))
    assert image.mode == "I;16"
    vector = extract_image_features(encode(image))
    assert feature(vector, "img.gray.mean") == 1.0
    half = extract_image_features(encode(Image.fromarray(np.full((8, 8), 0x8000, np.uint16))))
    assert feature(half, "img.gray.mean") == pytest.approx(128 / 255)


def test_transparency_is_composited_over_the_background():
    transparent = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    white = extract_image_features(solid((255, 255, 255), (20, 20)))
    assert np.array_equal(extract_image_features(encode(transparent)), white)
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 0, 0] * 256)
    assert np.array_equal(extract_image_features(encode(palette, transparency=0)), white)
    black = FeatureConfig(image_background=(0, 0, 0))
    assert feature(extract_image_features(encode(transparent), black), "img.gray.mean") == 0.0


def test_exif_orientation_is_applied():
    y, x = np.mgrid[0:96, 0:128]
    array = np.stack([x * 2, y * 2, x + y], axis=-1).astype(np.uint8)
    array[20:50, 10:30] = (250, 250, 0)
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    tagged = extract_image_features(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    upright = extract_image_features(encode(image.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95))
    untagged = extract_image_features(encode(image, "JPEG", quality=95))
    assert np.abs(tagged - upright).max() < 0.01
    assert np.abs(untagged - upright).max() > 0.3
    assert feature(tagged, "img.log2_width") == pytest.approx(np.log2(96))


def test_only_the_first_frame_of_an_animation_counts():
    first = Image.new("RGB", (16, 16), (255, 0, 0))
    second = Image.new("RGB", (16, 16), (0, 0, 255))
    animated = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert np.array_equal(extract_image_features(animated), extract_image_features(encode(first, "GIF")))


def test_pixel_limit_is_the_argument_not_pillow_global_state():
    data = solid((1, 2, 3), (100, 100))
    assert extract_image_features(data, max_pixels=10_000).shape == (len(IMAGE_FEATURE_NAMES),)
    with pytest.raises(UndecodableMediaError, match="above the limit of 9999"):
        extract_image_features(data, max_pixels=9_999)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated_png", "truncated_jpeg", "zeroed_header"])
def test_broken_images_raise(damage):
    rng = np.random.default_rng(2)
    picture = synth_media.render_image(0.5, rng)
    png = synth_media.encode_image(picture, "png")
    data = {
        "garbage": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "empty": b"",
        "truncated_png": png[: len(png) // 2],
        "truncated_jpeg": synth_media.encode_image(picture, "jpeg")[:600],
        "zeroed_header": bytes(16) + png[16:],
    }[damage]
    with pytest.raises(UndecodableMediaError) as caught:
        extract_image_features(data)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_decode_image_returns_upright_rgb():
    image = decode_image(encode(Image.new("LA", (7, 5), (30, 255))))
    assert image.mode == "RGB" and image.size == (7, 5) and image.getpixel((0, 0)) == (30, 30, 30)


def test_same_bytes_give_identical_vectors():
    data = synth_media.encode_image(synth_media.render_image(0.7, np.random.default_rng(3)), "jpeg")
    first, second = extract_image_features(data), extract_image_features(data)
    assert np.array_equal(first, second) and first.tobytes() == second.tobytes()
