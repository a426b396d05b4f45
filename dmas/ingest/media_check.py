"""Checks that a media file really decodes before it is admitted to the store."""

from __future__ import annotations

import io
import warnings
from typing import BinaryIO

import av
from PIL import Image

from dmas.errors import LimitExceededError
from dmas.heif import enable_heif_images
from dmas.media_streams import content_type, moving_video_streams


class UnreadableMediaError(ValueError):
    """The content does not decode as the media it claims to be; the message says why."""


def check_media(handle: BinaryIO, artifact_type: str, max_image_pixels: int) -> None:
    """Raise UnreadableMediaError / LimitExceededError unless `handle` decodes as `artifact_type`."""
    if artifact_type == "image":
        _check_image(handle, max_image_pixels)
    else:
        _check_stream(handle, artifact_type)


def container_content(handle: BinaryIO) -> str:
    """'audio' or 'video', from the streams a container file holds (see `dmas.media_streams`)."""
    try:
        with av.open(handle, mode="r") as container:
            kind = content_type(container)
    except Exception as exc:  # PyAV raises FFmpeg errors of many types
        raise UnreadableMediaError(f"does not open as media: {exc}") from None
    if kind is None:
        raise UnreadableMediaError("no audio or video stream in the file")
    return kind


def _check_image(handle: BinaryIO, max_pixels: int) -> None:
    """Header within limits, structure verified, pixels decoded: as `decode_image` will later decode them.

    Pillow gets the bytes in memory, as the decoders do: some of its plugins (pillow-heif) read
    with sizes a store's file handle does not take.
    """
    enable_heif_images()
    data = io.BytesIO(handle.read())
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(data) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise LimitExceededError(
                        f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}")
                image.verify()
            data.seek(0)
            with Image.open(data) as image:
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise LimitExceededError(f"image exceeds the decompression-bomb limit: {exc}") from None
        except LimitExceededError:
            raise
        except Exception as exc:  # Pillow raises many types for broken files
            raise UnreadableMediaError(f"image does not decode: {exc}") from None


def _check_stream(handle: BinaryIO, artifact_type: str) -> None:
    """Audio must have an audio stream and video a video stream, and the first frame must decode."""
    try:
        with av.open(handle, mode="r") as container:
            streams = container.streams.audio if artifact_type == "audio" else moving_video_streams(container)
            if not streams:
                raise UnreadableMediaError(f"no {artifact_type} stream in the file")
            for _ in container.decode(streams[0]):
                return
            raise UnreadableMediaError(f"the {artifact_type} stream has no decodable frame")
    except UnreadableMediaError:
        raise
    except Exception as exc:  # PyAV raises FFmpeg errors of many types
        raise UnreadableMediaError(f"{artifact_type} does not decode: {exc}") from None
