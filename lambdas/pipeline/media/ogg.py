"""Ogg (.ogg, .opus): the first audio stream among the streams that begin the file.

Every logical stream of an Ogg file opens with a "beginning of stream" page carrying its
identification packet, and all of those come before any other page. Reading them in turn
tells an audio file from a video-only one (Theora) without reading past the headers.
"""

from __future__ import annotations

from typing import Final

from pipeline.media.flac import streaminfo
from pipeline.media.info import MediaInfo
from pipeline.media.reading import U8, U32LE, Truncated, take, uint
from pipeline.media.reasons import corrupt, no_audio_track

_BEGINNING_OF_STREAM = 0x02
# Identification packets of streams that are not sound
_NOT_AUDIO: Final = (
    (b"\x80theora", "video"),
    (b"BBCD\x00", "video"),  # Dirac
    (b"\x80daala", "video"),
    (b"OVP80", "video"),  # VP8 in Ogg
    (b"\x80kate\x00\x00\x00", "subtitles"),
    (b"fishead\x00", "an index"),  # Skeleton: describes the other streams
    (b"fisbone\x00", "an index"),
)


def parse_ogg(ext: str, header: bytes, size: int) -> MediaInfo:
    if uint(U8, header, 4) != 0:
        raise corrupt("OGG", "unknown Ogg version")
    found: list[str] = []
    pos = 0
    first = True
    while True:
        try:
            page_type, packet, next_page = _first_packet(header, pos)
        except Truncated:
            if first:
                raise
            return MediaInfo("ogg")  # the stream headers run past the bytes read
        if not first and not page_type & _BEGINNING_OF_STREAM:
            break  # past the last stream's first page: every stream has been seen
        info = _audio_stream(packet)
        if info is not None:
            return info
        kind = next((what for magic, what in _NOT_AUDIO if packet.startswith(magic)), None)
        if kind is None:
            # Speex's cousins, a codec we do not know: leave the verdict to Transcribe
            return MediaInfo("ogg")
        found.append(kind)
        first = False
        pos = next_page
        if pos >= size:
            break
        if not header.startswith(b"OggS", pos):
            if pos + 4 > len(header):
                return MediaInfo("ogg")
            raise corrupt("OGG", "a page does not start where the previous one ends")
    media = [kind for kind in found if kind != "an index"] or found
    raise no_audio_track(ext, "Ogg", " and ".join(dict.fromkeys(media)))


def _first_packet(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """The page's header type, its first packet and where the next page starts."""
    page_type = uint(U8, data, pos + 5)
    segments = uint(U8, data, pos + 26)
    lacing = take(data, pos + 27, segments)
    length = 0
    for value in lacing:  # the first packet's length
        length += value
        if value < 255:
            break
    body = pos + 27 + segments
    return page_type, take(data, body, length), body + sum(lacing)


def _audio_stream(packet: bytes) -> MediaInfo | None:
    """What an audio stream's identification packet says; None for other streams."""
    if packet.startswith(b"OpusHead"):
        channels = uint(U8, packet, 9)
        if channels == 0:
            raise corrupt("OGG", "it reports zero channels")
        # Opus always decodes at 48 kHz; the header's input rate is only informational
        return MediaInfo("ogg", 48000, channels)
    if packet.startswith(b"\x01vorbis"):
        channels = uint(U8, packet, 11)
        rate = uint(U32LE, packet, 12)
        if channels == 0 or rate == 0:
            raise corrupt("OGG", "it reports zero channels or a sample rate of 0 Hz")
        return MediaInfo("ogg", rate, channels)
    if packet.startswith(b"\x7fFLAC") and packet[9:13] == b"fLaC":
        rate, channels, bits, total = streaminfo(packet, 13, "OGG")
        return MediaInfo("ogg", rate, channels, bits, total / rate if total else None)
    if packet.startswith(b"Speex   "):
        rate, channels = uint(U32LE, packet, 36), uint(U32LE, packet, 48)
        return MediaInfo("ogg", rate or None, channels or None)
    return None
