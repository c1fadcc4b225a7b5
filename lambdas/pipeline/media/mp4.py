"""MP4 / M4A (ISO base media file format): the audio track inside ``moov``.

``moov`` holds every track's description. ffmpeg writes it after the media unless told
``-movflags +faststart``, so it is often past the bytes read: then only the brand is known
and the file is accepted on that (best effort). When ``moov`` is in reach, the first audio
track (handler ``soun``) gives the rate and channels (its sample entry in
``mdia/minf/stbl/stsd``; for AAC the ``esds`` AudioSpecificConfig, which is what decoders
and ffprobe use) and the duration (``mdia/mdhd``). A complete ``moov`` without an audio
track is a video or an image sequence: rejected.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from pipeline.media.aac import audio_specific_config
from pipeline.media.flac import streaminfo
from pipeline.media.info import MediaInfo
from pipeline.media.reading import F64BE, U8, U16BE, U32BE, U64BE, Truncated, take, uint, unpack
from pipeline.media.reasons import no_audio_track, not_audio, unsupported

# Still-image formats that share the ISO container
_IMAGE_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
_AUDIO_BRANDS: Final = frozenset({b"M4A ", b"M4B "})
_HANDLER_KINDS: Final = {
    b"vide": "video",
    b"text": "text",
    b"sbtl": "subtitles",
    b"subt": "subtitles",
}
# ES descriptor object types that carry an AudioSpecificConfig (MPEG-4 and MPEG-2 AAC)
_AAC_OBJECT_TYPES: Final = frozenset({0x40, 0x66, 0x67, 0x68})
_OPUS_RATE = 48000


@dataclass
class _Track:
    handler: bytes = b""
    duration_s: float | None = None  # mdhd: every sample, with the encoder's priming
    edited: int = 0  # the edit list's length in the movie's timescale: what is played
    rate: int | None = None
    channels: int | None = None


@dataclass
class _Movie:
    tracks: list[_Track] = field(default_factory=list)
    duration_s: float | None = None  # mvhd: the longest track
    timescale: int = 0  # mvhd: the unit of edit lists
    complete: bool = False  # moov read to its end


def parse_iso_bmff(ext: str, header: bytes, size: int) -> MediaInfo:
    box_size = uint(U32BE, header, 0)
    major = take(header, 8, 4)
    brands = {major}
    for at in range(16, min(box_size, len(header)) - 3, 4):
        brands.add(header[at : at + 4])
    if major in _IMAGE_BRANDS:
        raise not_audio(ext, "a HEIF/AVIF image")
    if major == b"M4P ":
        raise unsupported(
            ext, "copy-protected (DRM) iTunes audio", "export an unprotected copy as FLAC or MP3"
        )
    media_format = "m4a" if brands & _AUDIO_BRANDS else "mp4"
    movie = _movie(header, size)
    audio = next((track for track in movie.tracks if track.handler == b"soun"), None)
    if audio is not None:
        # As ffprobe: the edit list (which skips AAC's priming samples), else the media's own
        edited = audio.edited / movie.timescale if audio.edited and movie.timescale else None
        duration = edited or audio.duration_s or movie.duration_s
        return MediaInfo(media_format, audio.rate, audio.channels, None, duration)
    if movie.complete:
        kinds = [_HANDLER_KINDS.get(track.handler, "other data") for track in movie.tracks]
        raise no_audio_track(ext, "MP4", " and ".join(dict.fromkeys(kinds)) or "metadata")
    return MediaInfo(media_format, duration_s=movie.duration_s)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, box end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= min(end, len(data)):
        box_size = uint(U32BE, data, pos)
        box_type = data[pos + 4 : pos + 8]
        header_size = 8
        if box_size == 1:  # 64-bit size follows
            box_size, header_size = uint(U64BE, data, pos + 8), 16
        elif box_size == 0:  # runs to the end of its parent
            box_size = end - pos
        if box_size < header_size:
            return
        yield box_type, pos + header_size, pos + box_size
        pos += box_size


def _child(data: bytes, start: int, end: int, wanted: bytes) -> tuple[int, int] | None:
    return next(
        ((body, box_end) for kind, body, box_end in _boxes(data, start, end) if kind == wanted),
        None,
    )


def _movie(header: bytes, size: int) -> _Movie:
    """What moov says, as far as it lies within the bytes read."""
    movie = _Movie()
    try:
        found = _child(header, 0, size, b"moov")
        if found is None:
            return movie  # moov comes after the media: past the bytes read
        body, end = found
        reached = body
        for kind, child, child_end in _boxes(header, body, end):
            reached = child_end
            if kind == b"mvhd":
                movie.duration_s = _header_duration(header, child)
                movie.timescale = uint(U32BE, header, child + (20 if header[child] == 1 else 12))
            elif kind == b"trak":
                if child_end > len(header):
                    return movie  # cut by the end of the bytes read
                movie.tracks.append(_track(header, child, child_end))
        movie.complete = reached == end <= len(header)  # every box read, none malformed
    except Truncated:
        pass  # a box cut short: keep what was read
    return movie


def _header_duration(data: bytes, body: int) -> float | None:
    """Duration in seconds from an mvhd or mdhd box (the same layout up to the duration)."""
    if uint(U8, data, body) == 1:  # 64-bit times
        return _seconds(uint(U64BE, data, body + 24), uint(U32BE, data, body + 20), 64)
    return _seconds(uint(U32BE, data, body + 16), uint(U32BE, data, body + 12), 32)


def _seconds(duration: int, timescale: int, width: int) -> float | None:
    # Fragmented files say 0: the length lives in the fragments, past what we read
    if timescale == 0 or duration in (0, 2**width - 1):
        return None
    return duration / timescale


def _track(data: bytes, start: int, end: int) -> _Track:
    track = _Track()
    edits = _child(data, start, end, b"edts")
    if edits is not None:
        track.edited = _edited_length(data, *edits)
    media = _child(data, start, end, b"mdia")
    if media is None:
        return track
    for kind, body, box_end in _boxes(data, *media):
        if kind == b"hdlr":
            track.handler = take(data, body + 8, 4)
        elif kind == b"mdhd":
            track.duration_s = _header_duration(data, body)
        elif kind == b"minf":
            table = _child(data, body, box_end, b"stbl")
            descriptions = _child(data, *table, b"stsd") if table else None
            if descriptions is not None:
                track.rate, track.channels = _sample_entry(data, *descriptions)
    return track


def _edited_length(data: bytes, start: int, end: int) -> int:
    """The summed length of an elst's edits that play media (empty edits are gaps)."""
    found = _child(data, start, end, b"elst")
    if found is None:
        return 0
    body, box_end = found
    wide = uint(U8, data, body) == 1
    entry_size = 20 if wide else 12
    count = min(uint(U32BE, data, body + 4), max(0, box_end - body - 8) // entry_size)
    total = 0
    for at in range(body + 8, body + 8 + count * entry_size, entry_size):
        if wide:
            length, media_time = uint(U64BE, data, at), uint(U64BE, data, at + 8)
            empty = media_time == 2**64 - 1
        else:
            length, media_time = uint(U32BE, data, at), uint(U32BE, data, at + 4)
            empty = media_time == 2**32 - 1
        total += 0 if empty else length
    return total


def _sample_entry(data: bytes, body: int, end: int) -> tuple[int | None, int | None]:
    """Rate and channels of the first entry in stsd (after its version, flags and count)."""
    entry = next(_boxes(data, body + 8, end), None)
    if entry is None:
        return None, None
    kind, at, entry_end = entry
    version = uint(U16BE, data, at + 8)
    channels: int | None = uint(U16BE, data, at + 16)
    rate: int | None = uint(U32BE, data, at + 24) >> 16  # 16.16 fixed point
    children = at + 28
    if version == 1:  # QuickTime sound description v1: 16 more bytes
        children += 16
    elif version == 2:  # v2: the rate as a double and the channels as 32 bits
        exact = float(unpack(F64BE, data, at + 32)[0])
        rate = round(exact) if math.isfinite(exact) and 0 < exact < 1e7 else None
        channels = uint(U32BE, data, at + 40)
        children += 36
    boxes = {
        kind: (child, child_end) for kind, child, child_end in _boxes(data, children, entry_end)
    }
    if b"srat" in boxes:  # ISO AudioSampleEntryV1: rates above 65535 Hz
        rate = uint(U32BE, data, boxes[b"srat"][0] + 4)
    if kind == b"Opus":
        rate = _OPUS_RATE
    elif kind == b"fLaC" and b"dfLa" in boxes:
        rate, channels, _, _ = streaminfo(data, boxes[b"dfLa"][0] + 4, "MP4")
    elif b"esds" in boxes:
        config = _aac_config(data, *boxes[b"esds"])
        if config is not None:
            config_rate, config_channels = audio_specific_config(config)
            rate = config_rate or rate
            channels = config_channels or channels
    return rate or None, channels or None


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """An MPEG-4 descriptor's (tag, body start, body end): 1 to 4 size bytes, 7 bits each."""
    tag = uint(U8, data, pos)
    length = 0
    for index in range(4):
        byte = uint(U8, data, pos + 1 + index)
        length = length << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    body = pos + 2 + index
    return tag, body, body + length


def _aac_config(data: bytes, body: int, end: int) -> bytes | None:
    """The AudioSpecificConfig inside an esds box, if it describes AAC."""
    tag, at, es_end = _descriptor(data, body + 4)  # after version and flags
    if tag != 0x03:  # ES_Descriptor
        return None
    flags = uint(U8, data, at + 2)
    at += 3
    if flags & 0x80:  # depends on another stream
        at += 2
    if flags & 0x40:  # a URL
        at += 1 + uint(U8, data, at)
    if flags & 0x20:  # an OCR stream
        at += 2
    tag, at, config_end = _descriptor(data, at)
    if tag != 0x04 or uint(U8, data, at) not in _AAC_OBJECT_TYPES:  # DecoderConfigDescriptor
        return None
    at += 13  # object type, stream type, buffer size, bit rates
    while at < min(config_end, es_end, end):
        tag, child, child_end = _descriptor(data, at)
        if tag == 0x05:  # DecoderSpecificInfo
            return take(data, child, child_end - child)
        at = child_end
    return None
