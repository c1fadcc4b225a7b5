"""MP3 (MPEG-1/2/2.5 layer III), after any ID3v2 tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pipeline.media.flac import parse_flac
from pipeline.media.foreign import is_adts, raw_aac
from pipeline.media.info import HEADER_BYTES, MediaInfo, MediaRejected
from pipeline.media.reading import U32BE, Truncated, take, uint
from pipeline.media.reasons import corrupt, unsupported

_MPEG_RATES: Final = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_LAYER3_KBPS: Final = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Encoders that write LAME's extension (with the encoder delay and padding) after Xing/Info
_LAME_TAGS: Final = (b"LAME", b"Lavf", b"Lavc")


@dataclass(frozen=True, slots=True)
class Frame:
    version: int  # 1, 2 or 25 (MPEG-2.5)
    layer: int
    sample_rate: int
    channels: int
    kbps: int  # layer III only (0 otherwise)
    length: int  # bytes, layer III only (0 otherwise)
    samples: int  # per frame, layer III only


def mpeg_frame(data: bytes, pos: int) -> Frame | None:
    """The MPEG audio frame header at pos, or None if there is none."""
    if pos < 0 or pos + 4 > len(data):
        return None
    b0, b1, b2, b3 = data[pos : pos + 4]
    if b0 != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = {3: 1, 2: 2, 0: 25}.get((b1 >> 3) & 3)
    layer = 4 - ((b1 >> 1) & 3)  # 01 -> III, 10 -> II, 11 -> I, 00 reserved -> 4
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    # Free-format (index 0) is too rare to be worth the false positives
    if version is None or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    if b3 & 3 == 2:  # reserved emphasis
        return None
    rate = _MPEG_RATES[version][rate_index]
    channels = 1 if b3 >> 6 == 3 else 2
    if layer != 3:
        return Frame(version, layer, rate, channels, 0, 0, 0)
    kbps = _LAYER3_KBPS[1 if version == 1 else 2][bitrate_index]
    samples = 1152 if version == 1 else 576
    length = samples // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
    return Frame(version, layer, rate, channels, kbps, length, samples)


def _next_agrees(data: bytes, pos: int, frame: Frame, *, unseen_ok: bool) -> bool:
    """Whether the frame after this one is a frame of the same stream."""
    following = pos + frame.length
    if following + 4 > len(data):
        return unseen_ok
    other = mpeg_frame(data, following)
    return other is not None and (other.version, other.layer, other.sample_rate) == (
        frame.version,
        frame.layer,
        frame.sample_rate,
    )


def find_mp3(header: bytes, start: int, *, search: bool) -> tuple[int, Frame] | None:
    """The first MPEG frame at start (after NUL padding), or found by a search if allowed."""
    pos = len(header) - len(header[start:].lstrip(b"\x00"))  # some encoders pad with NULs
    frame = mpeg_frame(header, pos)
    if frame is not None and (frame.layer != 3 or _next_agrees(header, pos, frame, unseen_ok=True)):
        return pos, frame
    if not search:
        return None
    # Junk before the audio: demand two chained frames so random bytes do not pass
    pos = header.find(b"\xff", start)
    while pos >= 0:
        frame = mpeg_frame(header, pos)
        if frame and frame.layer == 3 and _next_agrees(header, pos, frame, unseen_ok=False):
            return pos, frame
        pos = header.find(b"\xff", pos + 1)
    return None


def parse_id3_tagged(ext: str, header: bytes, size: int) -> MediaInfo:
    """MP3 (or, rarely, FLAC) behind one or more ID3v2 tags."""
    start = 0
    while header.startswith(b"ID3", start):  # some taggers stack two tags
        start = _id3_end(header, start)
        if start >= size:
            raise MediaRejected(
                f"the file is named {ext} but holds only a tag and no audio; "
                "export the recording again and upload that file"
            )
    if start + 4 > len(header):
        # A big tag (cover art) outlasts the bytes we read; FLAC rarely carries ID3
        return MediaInfo("flac" if ext == ".flac" else "mp3")
    if header.startswith(b"fLaC", start):
        try:
            return parse_flac(header, start)
        except Truncated:
            raise corrupt("FLAC") from None
    found = find_mp3(header, start, search=True)
    if found is not None:
        return parse_mp3(ext, header, size, *found)
    if is_adts(header, start):
        raise raw_aac(ext)
    raise MediaRejected(
        f"the file is named {ext} but no MP3 audio follows its tag in the first "
        f"{HEADER_BYTES // 1024} KB; re-export the recording as MP3, FLAC or 16-bit PCM WAV"
    )


def _id3_end(header: bytes, start: int) -> int:
    """Offset just past the ID3v2 tag at start."""
    version, _revision, flags = take(header, start + 3, 3)
    size_bytes = take(header, start + 6, 4)
    if version == 0xFF or any(b >= 0x80 for b in size_bytes):
        raise corrupt("MP3", "its ID3 tag is damaged")
    tag_size = 0
    for b in size_bytes:  # "syncsafe": 7 bits a byte
        tag_size = tag_size << 7 | b
    footer = 10 if flags & 0x10 else 0
    return start + 10 + tag_size + footer


def parse_mp3(ext: str, header: bytes, size: int, pos: int, frame: Frame) -> MediaInfo:
    if frame.layer != 3:
        name = "I" * frame.layer
        raise unsupported(ext, f"MPEG layer {name} audio (MP{frame.layer})")
    duration = _mp3_duration(header, size, pos, frame)
    return MediaInfo("mp3", frame.sample_rate, frame.channels, None, duration)


def _mp3_duration(header: bytes, size: int, pos: int, frame: Frame) -> float | None:
    # A VBR file says its frame count in a Xing/Info or VBRI header inside the first frame
    side_info = (
        (32 if frame.channels == 2 else 17)
        if frame.version == 1
        else (17 if frame.channels == 2 else 9)
    )
    xing = pos + 4 + side_info
    try:
        if header[xing : xing + 4] in (b"Xing", b"Info"):
            return _xing_duration(header, xing, frame)
        if header[pos + 36 : pos + 40] == b"VBRI":
            frames = uint(U32BE, header, pos + 36 + 14)
            return frames * frame.samples / frame.sample_rate if frames else None
    except Truncated:
        return None
    # Otherwise constant bitrate, if every frame we can see agrees
    at = pos
    while (current := mpeg_frame(header, at)) is not None and current.length > 0:
        if current.kbps != frame.kbps:
            return None
        at += current.length
    return (size - pos) * 8 / (frame.kbps * 1000)


def _xing_duration(header: bytes, xing: int, frame: Frame) -> float | None:
    """Frames times samples per frame, less the encoder delay and padding of a LAME tag.

    The count includes the samples the encoder added at both ends; ffprobe (and every
    gapless player) drops them, which matters only near the 0.5 s floor.
    """
    flags = uint(U32BE, header, xing + 4)
    if not flags & 1:  # no frame count
        return None
    frames = uint(U32BE, header, xing + 8)
    if not frames:
        return None
    samples = frames * frame.samples
    # Optional fields follow in flag order: frames (4), bytes (4), TOC (100), quality (4)
    lame = xing + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4)
    lame += 4 * bool(flags & 8)
    if header[lame : lame + 4] in _LAME_TAGS and lame + 24 <= len(header):
        # 9 version bytes, then revision, lowpass, peak (4), two gains (2+2), flags, bitrate
        packed = int.from_bytes(take(header, lame + 21, 3), "big")
        delay, padding = packed >> 12, packed & 0xFFF
        if delay + padding < samples:
            samples -= delay + padding
    return samples / frame.sample_rate
