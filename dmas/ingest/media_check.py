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


def check_media(handle: BinaryIO, artifact_type: str | None, max_image_pixels: int) -> str:
    """The type `handle` decodes as; UnreadableMediaError / LimitExceededError unless it decodes.

    `artifact_type` None: a container (MP4, WebM, ...) whose streams decide between audio and video
    (see `dmas.media_streams`), read in the same pass that checks it.
    """
    if artifact_type == "image":
        _check_image(handle, max_image_pixels)
        return artifact_type
    return _check_stream(handle, artifact_type)


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


def _check_stream(handle: BinaryIO, artifact_type: str | None) -> str:
    """Audio must have an audio stream and video a video stream, and the first frame must decode."""
    try:
        with av.open(handle, mode="r") as container:
            artifact_type = artifact_type or content_type(container)
            if artifact_type is None:
                raise UnreadableMediaError("no audio or video stream in the file")
            streams = container.streams.audio if artifact_type == "audio" else moving_video_streams(container)
            if not streams:
                raise UnreadableMediaError(f"no {artifact_type} stream in the file")
            for _ in container.decode(streams[0]):
                return artifact_type
            raise UnreadableMediaError(f"the {artifact_type} stream has no decodable frame")
    except UnreadableMediaError:
        raise
    except Exception as exc:  # PyAV raises FFmpeg errors of many types
        raise UnreadableMediaError(f"{artifact_type or 'media'} does not decode: {exc}") from None
