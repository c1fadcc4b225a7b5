"""WebM (EBML/Matroska): the Segment's Info (duration) and its first audio track."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.media.info import MediaInfo
from pipeline.media.reading import F32BE, F64BE, U8, Truncated, take, uint, unpack
from pipeline.media.reasons import CONVERT, no_audio_track, not_audio, unsupported

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_INFO, _TIMECODE_SCALE, _DURATION = 0x1549A966, 0x2AD7B1, 0x4489
_TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _CODEC_ID = 0x1654AE6B, 0xAE, 0x83, 0x86
_AUDIO, _SAMPLING_FREQUENCY, _CHANNELS = 0xE1, 0xB5, 0x9F
_CLUSTER = 0x1F43B675
_VIDEO_TRACK, _AUDIO_TRACK = 1, 2
_OPUS_RATE = 48000  # Opus always decodes at 48 kHz: SamplingFrequency holds the input rate


def _vint(data: bytes, pos: int) -> tuple[int, int, int]:
    """An EBML variable-length integer: (raw with marker, value without marker, length)."""
    first = uint(U8, data, pos)
    if first == 0:  # longer than 8 bytes: not EBML
        raise Truncated
    length = 9 - first.bit_length()
    raw = int.from_bytes(take(data, pos, length), "big")
    return raw, raw & ((1 << (7 * length)) - 1), length


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, body start, body end) of the elements in data[start:end]; unknown size runs to end."""
    end = min(end, len(data))
    pos = start
    while pos < end:
        element_id, _, id_length = _vint(data, pos)
        _, size, size_length = _vint(data, pos + id_length)
        body = pos + id_length + size_length
        unknown = size == (1 << (7 * size_length)) - 1
        body_end = end if unknown else body + size
        yield element_id, body, body_end
        pos = body_end


def _ebml_uint(data: bytes, body: int, end: int) -> int | None:
    return int.from_bytes(take(data, body, end - body), "big") if end - body <= 8 else None


def _ebml_float(data: bytes, body: int, end: int) -> float | None:
    if end - body not in (4, 8):
        return None
    value = float(unpack(F32BE if end - body == 4 else F64BE, data, body)[0])
    return value if math.isfinite(value) and value > 0 else None


@dataclass
class _Tracks:
    """What the Tracks element said: the first audio track, or that there is none."""

    rate: int | None = None
    channels: int | None = None
    complete: bool = False  # Tracks was read to its end
    audio: bool = False
    video: bool = False


def parse_webm(ext: str, header: bytes) -> MediaInfo:
    _, body, header_end = next(_elements(header, 0, len(header)))
    if header_end > len(header):
        raise Truncated
    doc_type = "matroska"  # the EBML default when DocType is absent
    for element_id, child, child_end in _elements(header, body, header_end):
        if element_id == _EBML_DOCTYPE:
            raw = take(header, child, child_end - child)
            doc_type = raw.rstrip(b"\x00").decode("ascii", "replace")
    if doc_type == "matroska":
        raise unsupported(ext, "Matroska (MKV/MKA) media", "remux it to WebM or " + CONVERT)
    if doc_type != "webm":
        raise not_audio(ext, "an EBML document of an unknown type")
    tracks, duration = _segment(header, header_end)
    if tracks.complete and not tracks.audio and tracks.video:
        raise no_audio_track(ext, "WebM", "video")
    return MediaInfo("webm", tracks.rate, tracks.channels, None, duration)


def _segment(data: bytes, start: int) -> tuple[_Tracks, float | None]:
    """Best effort: the tracks and the duration from the Segment's Info and Tracks."""
    tracks = _Tracks()
    duration: float | None = None
    try:
        for element_id, body, end in _elements(data, start, len(data)):
            if element_id != _SEGMENT:
                continue
            for child_id, child, child_end in _elements(data, body, end):
                if child_id == _INFO:
                    duration = _webm_duration(data, child, child_end)
                elif child_id == _TRACKS and not tracks.complete:
                    tracks = _webm_tracks(data, child, child_end)
                elif child_id == _CLUSTER:  # media data: no more headers to read
                    break
            break
    except Truncated:  # headers running past what we read: keep what we have
        pass
    return tracks, duration


def _webm_duration(data: bytes, start: int, end: int) -> float | None:
    scale: int | None = 1_000_000  # nanoseconds per tick, the default
    ticks: float | None = None
    for element_id, body, element_end in _elements(data, start, end):
        if element_id == _TIMECODE_SCALE:
            scale = _ebml_uint(data, body, element_end)
        elif element_id == _DURATION:
            ticks = _ebml_float(data, body, element_end)
    return ticks * scale / 1e9 if ticks and scale else None  # live recordings have none


def _webm_tracks(data: bytes, start: int, end: int) -> _Tracks:
    found = _Tracks()
    for element_id, body, entry_end in _elements(data, start, end):
        if element_id != _TRACK_ENTRY:
            continue
        track_type: int | None = None
        codec = b""
        rate: int | None = None
        channels: int | None = None
        for child_id, child, child_end in _elements(data, body, entry_end):
            if child_id == _TRACK_TYPE:
                track_type = _ebml_uint(data, child, child_end)
            elif child_id == _CODEC_ID:
                codec = take(data, child, child_end - child).rstrip(b"\x00")
            elif child_id == _AUDIO:
                for audio_id, value, value_end in _elements(data, child, child_end):
                    if audio_id == _SAMPLING_FREQUENCY:
                        frequency = _ebml_float(data, value, value_end)
                        rate = round(frequency) if frequency and frequency < 1e7 else None
                    elif audio_id == _CHANNELS:
                        channels = _ebml_uint(data, value, value_end) or None
        if track_type == _AUDIO_TRACK:
            if codec == b"A_OPUS":
                rate = _OPUS_RATE
            channels = channels if channels is not None else 1  # the Matroska default
            return _Tracks(rate, channels, complete=True, audio=True, video=found.video)
        found.video = found.video or track_type == _VIDEO_TRACK
    found.complete = end <= len(data)
    return found
