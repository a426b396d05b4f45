"""What an FFmpeg container carries: moving pictures, sound, or neither.

Shared by the ingest check (is this file audio or video?) and the video decoder (which stream to
read), so both agree. Containers such as MP4, WebM/Matroska and Ogg hold either: a browser's voice
recording is WebM with only Opus, a phone's is often MP4 with only AAC. A still picture stream
(album art, a thumbnail) is not video.
"""

from __future__ import annotations

import av

_STILL_PICTURES = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails


def moving_video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The container's video streams, without album art and thumbnails."""
    return [stream for stream in container.streams.video if not stream.disposition & _STILL_PICTURES]


def content_type(container: av.container.InputContainer) -> str | None:
    """'video' when the container has moving pictures, else 'audio' when it has sound, else None."""
    if moving_video_streams(container):
        return "video"
    return "audio" if container.streams.audio else None
