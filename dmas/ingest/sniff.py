"""Media type from content (magic bytes), never from the file name."""

from __future__ import annotations

from dataclasses import dataclass

_MP4_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")
# ISO base media files whose major brand says still image (HEIF/HEIC from phones, AVIF), not movie
_AVIF_BRANDS = (b"avif", b"avis")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
# Formats that hold audio, video or both: the streams inside, not the magic bytes, say which it is.
CONTAINER_FORMATS = frozenset({"mp4", "m4a", "matroska", "ogg", "ogv", "avi", "flv", "mpegts"})


@dataclass(frozen=True)
class MediaKind:
    artifact_type: str  # image | audio | video
    media_format: str  # png, jpeg, wav, mp4, ...


def sniff_media(head: bytes) -> MediaKind | None:
    """The media kind of a file from its first bytes (4 KiB is plenty), or None if unrecognised."""
    for test, kind in _SIGNATURES:
        if test(head):
            return kind
    if head[4:8] == b"ftyp":
        return _iso_media_kind(head[8:12])
    if head.startswith(b"OggS"):
        is_video = b"\x80theora" in head[:512]
        return MediaKind("video", "ogv") if is_video else MediaKind("audio", "ogg")
    if _is_mpeg_audio_frame(head):
        return MediaKind("audio", "mp3")
    return None


def _iso_media_kind(brand: bytes) -> MediaKind:
    """An ISO base media file (MP4, MOV, M4A, 3GP, HEIC, AVIF) by its major brand."""
    if brand in _AVIF_BRANDS:
        return MediaKind("image", "avif")
    if brand in _HEIF_BRANDS:
        return MediaKind("image", "heif")
    return MediaKind("audio", "m4a") if brand in _MP4_AUDIO_BRANDS else MediaKind("video", "mp4")


def _riff(form: bytes):
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _is_mpeg_transport_stream(head: bytes) -> bool:
    """MPEG-TS (188-byte packets) or M2TS/AVCHD (192: a 4-byte timestamp first): a 0x47 sync byte
    starting each of the first four packets."""
    return any(len(head) >= offset + 3 * size + 1 and all(head[offset + i * size] == 0x47 for i in range(4))
               for offset, size in ((0, 188), (4, 192)))


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version, layer and bitrate index."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0 and bitrate not in (0, 0b1111) and rate != 0b11


_SIGNATURES = (
    (lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"), MediaKind("image", "png")),
    (lambda h: h.startswith(b"\xff\xd8\xff"), MediaKind("image", "jpeg")),
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), MediaKind("image", "gif")),
    (lambda h: h.startswith(b"BM") and len(h) >= 26, MediaKind("image", "bmp")),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*"), MediaKind("image", "tiff")),
    (_riff(b"WEBP"), MediaKind("image", "webp")),
    (lambda h: h.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")), MediaKind("image", "jpeg2000")),
    (lambda h: h[:1] == b"P" and h[1:2] in b"123456" and h[2:3] in (b" ", b"\t", b"\n", b"\r"),
     MediaKind("image", "netpbm")),
    (_riff(b"WAVE"), MediaKind("audio", "wav")),
    (lambda h: h.startswith(b"fLaC"), MediaKind("audio", "flac")),
    (lambda h: h.startswith(b"ID3"), MediaKind("audio", "mp3")),
    (_riff(b"AVI "), MediaKind("video", "avi")),
    (lambda h: h.startswith(b"\x1a\x45\xdf\xa3"), MediaKind("video", "matroska")),
    (lambda h: h.startswith(b"FLV\x01"), MediaKind("video", "flv")),
    (_is_mpeg_transport_stream, MediaKind("video", "mpegts")),
    (lambda h: h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"), MediaKind("audio", "aiff")),
    (lambda h: h.startswith(b"#!AMR"), MediaKind("audio", "amr")),
    (lambda h: h.startswith(b"caff"), MediaKind("audio", "caf")),
)
