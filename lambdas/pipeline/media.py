"""Cheap checks of an uploaded recording against Transcribe Medical's batch limits.

The start-job Lambda reads only the first ``HEADER_BYTES`` of an object (one ranged GET)
plus its size, and asks :func:`inspect_media` whether Transcribe Medical can take it. The
format is decided by the bytes, not by the name: FLAC named ``.wav`` goes to Transcribe as
FLAC, a PNG named ``.wav`` is rejected before it costs a job.

Stdlib only and no AWS imports: this runs on every cold start. Every read goes through a
bounds-checked helper, so a truncated or hostile header ends in :class:`MediaRejected`,
never in ``IndexError`` or ``struct.error``. Reasons never carry the object key (keys may
hold patient names): the caller hands over only the extension.
"""

from __future__ import annotations

import codecs
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "EXTENSION_FORMATS",
    "HEADER_BYTES",
    "MAX_CHANNELS",
    "MAX_DURATION_S",
    "MAX_FILE_BYTES",
    "MAX_SAMPLE_RATE_HZ",
    "MIN_DURATION_S",
    "MIN_SAMPLE_RATE_HZ",
    "MediaInfo",
    "MediaRejected",
    "inspect_media",
]

HEADER_BYTES: Final = 65536  # what the caller reads with one ranged GET
MAX_FILE_BYTES: Final = 2 * 1024**3  # Transcribe: "file size too large" at 2 GB
MIN_SAMPLE_RATE_HZ: Final = 16_000
MAX_SAMPLE_RATE_HZ: Final = 48_000
MAX_CHANNELS: Final = 2  # more fails with "number of channels too large"
MIN_DURATION_S: Final = 0.5
MAX_DURATION_S: Final = 14_400.0  # 4 hours, exclusive

# Extension -> Transcribe MediaFormat; the content may still overrule it (see module doc)
EXTENSION_FORMATS: Final[dict[str, str]] = {
    ".wav": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".mp4": "mp4",
    ".m4a": "m4a",
    ".ogg": "ogg",
    ".webm": "webm",
    ".amr": "amr",
}

_EXTENSION_LIST = ".wav, .flac, .mp3, .mp4, .m4a, .ogg, .webm or .amr"
_UPLOAD_AUDIO = "upload WAV, FLAC, MP3, MP4/M4A, OGG, WebM or AMR audio"
_CONVERT = "convert it to FLAC, MP3 or 16-bit PCM WAV"


@dataclass(frozen=True)
class MediaInfo:
    """What the header says about the media; None where it does not say cheaply."""

    media_format: str  # Transcribe MediaFormat: wav flac mp3 mp4 m4a ogg webm amr
    sample_rate_hz: int | None = None
    channels: int | None = None
    bits_per_sample: int | None = None
    duration_s: float | None = None


class MediaRejected(Exception):
    """The media cannot be transcribed; ``reason`` tells a person what is wrong and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def inspect_media(*, extension: str, header: bytes, size: int) -> MediaInfo:
    """Check an object by its extension, first bytes and total size.

    ``extension`` is the lower-cased extension with its dot (".wav") or "". ``header`` is
    the first ``HEADER_BYTES`` (or all, if smaller) of the object. Raises MediaRejected.
    """
    ext = extension.strip().lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    if ext not in EXTENSION_FORMATS:
        raise MediaRejected(_extension_reason(ext))
    if size <= 0:
        raise MediaRejected("the file is empty (0 bytes); upload the recording again")
    if size >= MAX_FILE_BYTES:
        gigabytes = math.floor(size / 1024**3 * 10) / 10
        raise MediaRejected(
            f"the file is {gigabytes:.1f} GB but Transcribe Medical accepts files under 2 GB; "
            "compress it (for example to FLAC or MP3) or split it into smaller parts"
        )
    if not header:
        raise MediaRejected("the start of the file could not be read; upload it again")
    data = bytes(header)
    try:
        info = _inspect_content(ext, data, max(size, len(data)))
    except (IndexError, KeyError, ValueError, OverflowError, ZeroDivisionError, struct.error):
        # Safety net for a parser bug (the tests fuzz _inspect_content without it): a file we
        # cannot read is rejected with a reason rather than retried until the dead-letter queue.
        raise MediaRejected(
            f"the file is named {ext} but its header could not be read; "
            "re-export the recording as FLAC, MP3 or 16-bit PCM WAV and upload it again"
        ) from None
    _check_limits(info)
    return info


def _extension_reason(ext: str) -> str:
    if not ext or ext == ".":
        return f"the file name has no extension; name it with one of {_EXTENSION_LIST}"
    # Echo only what looks like a file-type suffix: a longer one may be part of a name
    # ("Jane.Smithson") and reasons must not carry key text.
    what = (
        f"files ending in {ext} are"
        if len(ext) <= 5 and ext[1:].isascii() and ext[1:].isalnum()
        else "the file's extension is"
    )
    return (
        f"{what} not accepted; convert the recording to a supported audio format "
        f"and name it with one of {_EXTENSION_LIST}"
    )


# --- reasons -------------------------------------------------------------------------------


def _corrupt(label: str, detail: str | None = None) -> MediaRejected:
    why = f" ({detail})" if detail else ""
    return MediaRejected(
        f"the {label} header is truncated or corrupt{why}; "
        "re-export the recording or upload it again"
    )


def _not_audio(ext: str, description: str) -> MediaRejected:
    return MediaRejected(
        f"the file is named {ext} but its content is {description}, not audio; {_UPLOAD_AUDIO}"
    )


def _unsupported(ext: str, description: str, action: str = _CONVERT) -> MediaRejected:
    return MediaRejected(
        f"the file is named {ext} but its content is {description}, "
        f"which Transcribe Medical does not accept; {action}"
    )


def _check_limits(info: MediaInfo) -> None:
    rate = info.sample_rate_hz
    if rate is not None and rate < MIN_SAMPLE_RATE_HZ:
        raise MediaRejected(
            f"sample rate {rate} Hz is below the 16000 Hz that Transcribe Medical requires; "
            "record or resample at 16 kHz or higher"
        )
    if rate is not None and rate > MAX_SAMPLE_RATE_HZ:
        raise MediaRejected(
            f"sample rate {rate} Hz is above the 48000 Hz that Transcribe Medical accepts; "
            "resample it to 48 kHz or lower"
        )
    if info.channels is not None and info.channels > MAX_CHANNELS:
        raise MediaRejected(
            f"the recording has {info.channels} audio channels but Transcribe Medical accepts "
            "at most 2; downmix it to mono or stereo"
        )
    duration = info.duration_s
    if duration is not None and duration < MIN_DURATION_S:
        # Truncate, never round up: "0.5 s long" must not read as long enough
        shown = math.floor(duration * 100 + 1e-9) / 100
        raise MediaRejected(
            f"the recording is {shown:g} s long; Transcribe Medical needs at least 0.5 s of audio"
        )
    if duration is not None and duration >= MAX_DURATION_S:
        hours, minutes = divmod(int(duration // 60), 60)
        shown_long = f"{hours} h {minutes} min" if minutes else f"{hours} h"
        raise MediaRejected(
            f"the recording is {shown_long} long but Transcribe Medical accepts recordings "
            "under 4 hours; split it into parts under 4 hours"
        )


# --- bounds-checked reads ------------------------------------------------------------------


class _Truncated(Exception):
    """A read ran past the bytes we have: the header is cut short or lies about a size."""


_U8 = struct.Struct("B")
_U16LE = struct.Struct("<H")
_U32LE = struct.Struct("<I")
_U64LE = struct.Struct("<Q")
_U32BE = struct.Struct(">I")
_U64BE = struct.Struct(">Q")
_F32BE = struct.Struct(">f")
_F64BE = struct.Struct(">d")


def _unpack(layout: struct.Struct, data: bytes, offset: int) -> tuple[Any, ...]:
    if offset < 0 or offset + layout.size > len(data):
        raise _Truncated
    return layout.unpack_from(data, offset)


def _uint(layout: struct.Struct, data: bytes, offset: int) -> int:
    return int(_unpack(layout, data, offset)[0])


def _take(data: bytes, offset: int, length: int) -> bytes:
    if offset < 0 or length < 0 or offset + length > len(data):
        raise _Truncated
    return data[offset : offset + length]


# --- recognising the content ---------------------------------------------------------------


def _inspect_content(ext: str, header: bytes, size: int) -> MediaInfo:
    """Decide the format from the content and parse its header (fuzzed without a safety net)."""
    label, parse = _recognise(ext, header, size)
    try:
        return parse()
    except _Truncated:
        raise _corrupt(label) from None


def _recognise(ext: str, header: bytes, size: int) -> tuple[str, Callable[[], MediaInfo]]:
    """The label for messages and the parser for the content; raises for non-audio."""
    if header.startswith(b"ID3"):
        return "MP3", lambda: _id3_tagged(ext, header, size)
    if header[:4] in (b"RIFF", b"RF64") and header[8:12] == b"WAVE":
        return "WAV", lambda: _wav(header, size)
    if header.startswith(b"fLaC"):
        return "FLAC", lambda: _flac(header, 0)
    if header.startswith(b"OggS"):
        return "OGG", lambda: _ogg(header)
    if header.startswith(_EBML_MAGIC):
        return "WebM", lambda: _ebml(ext, header)
    if header[4:8] == b"ftyp":
        return "MP4", lambda: _iso_bmff(ext, header, size)
    if header.startswith(b"#!AMR"):
        return "AMR", lambda: _amr(header, size)
    foreign = _foreign(ext, header)
    if foreign is not None:
        raise foreign
    found = _find_mp3(header, 0, search=ext == ".mp3")
    if found is not None:
        return "MP3", lambda: _mp3(ext, header, size, *found)
    text = _text_kind(header)
    if text is not None:
        raise _not_audio(ext, text)
    raise MediaRejected(
        f"the file is named {ext} but its content is not a recognised audio format; {_UPLOAD_AUDIO}"
    )


# Signatures of content that is not audio at all
_NOT_AUDIO_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"{\\rtf", "an RTF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office document"),
    (b"\x7fELF", "a program file"),
    (b"MThd", "a MIDI file (notes, not recorded sound)"),
    # Before the MPEG sync check: FF FE also reads as an MPEG layer I frame header
    (b"\xff\xfe", "text (UTF-16)"),
    (b"\xfe\xff", "text (UTF-16)"),
)

# Audio or video containers that Transcribe Medical does not take
_UNSUPPORTED_MAGIC: Final = (
    (b"caff", "Core Audio (CAF) audio"),
    (b".snd", "Sun/NeXT AU audio"),
    (b"0&\xb2u\x8ef\xcf\x11", "Windows Media (WMA/WMV) media"),
    (b"FLV\x01", "a Flash video"),
)


def _foreign(ext: str, header: bytes) -> MediaRejected | None:
    """A rejection for recognised content that is not a supported audio format."""
    for magic, description in _NOT_AUDIO_MAGIC:
        if header.startswith(magic):
            return _not_audio(ext, description)
    for magic, description in _UNSUPPORTED_MAGIC:
        if header.startswith(magic):
            return _unsupported(ext, description)
    if header.startswith(b"RIFF"):
        form = header[8:12]
        if len(form) < 4:
            return _corrupt("WAV")
        if form == b"WEBP":
            return _not_audio(ext, "a WebP image")
        if form == b"AVI ":
            return _unsupported(ext, "an AVI video")
        return _not_audio(ext, "a RIFF file that is not WAV audio")
    if header.startswith(b"RIFX"):
        return _unsupported(ext, "big-endian WAV (RIFX) audio", "re-export it as 16-bit PCM WAV")
    if header.startswith(b"FORM") and header[8:12] in (b"AIFF", b"AIFC"):
        return _unsupported(ext, "AIFF audio")
    if _is_adts(header, 0):
        return _unsupported(ext, "raw AAC (ADTS) audio", "wrap it in M4A or " + _CONVERT)
    return None


def _is_adts(data: bytes, pos: int) -> bool:
    # 12-bit sync, then MPEG version bit, layer 00: AAC in ADTS frames
    return len(data) >= pos + 2 and data[pos] == 0xFF and data[pos + 1] & 0xF6 == 0xF0


def _text_kind(header: bytes) -> str | None:
    """A description if the bytes read as UTF-8 text without control characters."""
    sample = header[:4096].removeprefix(b"\xef\xbb\xbf")
    try:
        # Incremental: a multi-byte character cut by the sample's end is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(sample)
    except UnicodeDecodeError:
        return None
    if any(ch < " " and ch not in "\t\n\r\f\v" for ch in text):
        return None
    lead = text.lstrip().lower()
    if lead.startswith(("{", "[")):
        return "JSON text"
    if lead.startswith("<?xml"):
        return "an XML document"
    if lead.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    return "plain text"


# --- WAV -----------------------------------------------------------------------------------

_WAV_FMT = struct.Struct("<HHIIHH")
_WAV_PCM = 1
_WAV_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_* GUIDs share this tail; the first two bytes are the format tag
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_WAV_SAMPLE_CODECS: Final = {3: "floating point", 6: "A-law", 7: "mu-law"}
_WAV_COMPRESSED: Final = {2: "ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM", 0x50: "MPEG", 0x55: "MP3"}
_STREAMING_SIZES = (0, 0xFFFFFFFF)  # written by streaming recorders: "until end of file"


@dataclass(frozen=True, slots=True)
class _WavFormat:
    tag: int | None  # None: an extensible subformat we do not know
    channels: int
    rate: int
    byte_rate: int
    block_align: int
    bits: int


def _wav(header: bytes, size: int) -> MediaInfo:
    fmt: _WavFormat | None = None
    ds64_data: int | None = None
    data_at: int | None = None
    data_size = 0
    pos = 12
    while pos + 8 <= len(header):  # chunks can come in any order: LIST, bext, JUNK...
        chunk_id = header[pos : pos + 4]
        chunk_size = _uint(_U32LE, header, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = _wav_format(header, body, chunk_size)
        elif chunk_id == b"ds64":  # RF64: the real 64-bit sizes
            ds64_data = _uint(_U64LE, header, body + 8)
        elif chunk_id == b"data":
            data_at, data_size = body, chunk_size
            if fmt is not None or chunk_size in _STREAMING_SIZES:
                break
        pos = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        raise _corrupt("WAV", "it does not describe its audio format")
    _check_wav_format(fmt)
    if data_at is None:
        if pos + 8 > size:
            raise _corrupt("WAV", "it contains no audio data")
        # The audio starts past the bytes we read: the format is known, the length is not
        return MediaInfo("wav", fmt.rate, fmt.channels, fmt.bits, None)
    declared: int | None = data_size
    if header.startswith(b"RF64") and data_size == 0xFFFFFFFF and ds64_data is not None:
        declared = ds64_data
    elif data_size in _STREAMING_SIZES:
        declared = None
    available = max(0, size - data_at)
    data_bytes = available if declared is None else min(declared, available)
    return MediaInfo("wav", fmt.rate, fmt.channels, fmt.bits, data_bytes / fmt.byte_rate)


def _wav_format(header: bytes, body: int, chunk_size: int) -> _WavFormat:
    if chunk_size < 16:
        raise _corrupt("WAV", "its format description is too short")
    tag, channels, rate, byte_rate, block_align, bits = _unpack(_WAV_FMT, header, body)
    real_tag: int | None = tag
    if tag == _WAV_EXTENSIBLE:
        if chunk_size < 40:
            raise _corrupt("WAV", "its format description is too short")
        subformat = _take(header, body + 24, 16)
        real_tag = _U16LE.unpack_from(subformat)[0] if subformat[2:] == _KSDATAFORMAT_TAIL else None
    return _WavFormat(real_tag, channels, rate, byte_rate, block_align, bits)


def _check_wav_format(fmt: _WavFormat) -> None:
    if fmt.channels == 0:
        raise _corrupt("WAV", "it reports zero channels")
    if fmt.rate == 0:
        raise _corrupt("WAV", "it reports a sample rate of 0 Hz")
    if fmt.bits == 0:
        raise _corrupt("WAV", "it reports 0 bits per sample")
    if fmt.tag != _WAV_PCM or fmt.bits != 16:
        raise MediaRejected(
            f"WAV audio must be 16-bit PCM; this file is {_wav_encoding(fmt)}. "
            "Re-export it as 16-bit PCM WAV or as FLAC"
        )
    if fmt.block_align != fmt.channels * 2 or fmt.byte_rate != fmt.rate * fmt.block_align:
        raise _corrupt("WAV", "its byte rate does not match its sample rate and channels")


def _wav_encoding(fmt: _WavFormat) -> str:
    if fmt.tag is None:
        return "in an unknown encoding"
    if fmt.tag == _WAV_PCM:
        return f"{fmt.bits}-bit PCM"
    if fmt.tag in _WAV_SAMPLE_CODECS:
        return f"{fmt.bits}-bit {_WAV_SAMPLE_CODECS[fmt.tag]}"
    if fmt.tag in _WAV_COMPRESSED:
        return f"{_WAV_COMPRESSED[fmt.tag]}-compressed"
    return f"compressed with an unsupported codec (format code 0x{fmt.tag:04X})"


# --- FLAC ----------------------------------------------------------------------------------


def _flac(header: bytes, start: int) -> MediaInfo:
    rate, channels, bits, total = _streaminfo(header, start + 4, "FLAC")
    return MediaInfo("flac", rate, channels, bits, total / rate if total else None)


def _streaminfo(data: bytes, at: int, label: str) -> tuple[int, int, int, int]:
    """Rate, channels, bits per sample and total samples (0: unknown) from STREAMINFO."""
    block_type = _uint(_U8, data, at) & 0x7F
    length = int.from_bytes(_take(data, at + 1, 3), "big")
    if block_type != 0 or length < 34:  # STREAMINFO must come first
        raise _corrupt(label, "its stream description is missing")
    # 20 bits rate, 3 bits channels-1, 5 bits bits-1, 36 bits total samples
    packed = _uint(_U64BE, data, at + 4 + 10)
    rate = packed >> 44
    if rate == 0:
        raise _corrupt(label, "it reports a sample rate of 0 Hz")
    return rate, ((packed >> 41) & 0x7) + 1, ((packed >> 36) & 0x1F) + 1, packed & (2**36 - 1)


# --- MP3 -----------------------------------------------------------------------------------

_MPEG_RATES: Final = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_LAYER3_KBPS: Final = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


@dataclass(frozen=True, slots=True)
class _Frame:
    version: int  # 1, 2 or 25 (MPEG-2.5)
    layer: int
    sample_rate: int
    channels: int
    kbps: int  # layer III only (0 otherwise)
    length: int  # bytes, layer III only (0 otherwise)
    samples: int  # per frame, layer III only


def _mpeg_frame(data: bytes, pos: int) -> _Frame | None:
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
        return _Frame(version, layer, rate, channels, 0, 0, 0)
    kbps = _LAYER3_KBPS[1 if version == 1 else 2][bitrate_index]
    samples = 1152 if version == 1 else 576
    length = samples // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
    return _Frame(version, layer, rate, channels, kbps, length, samples)


def _next_agrees(data: bytes, pos: int, frame: _Frame, *, unseen_ok: bool) -> bool:
    """Whether the frame after this one is a frame of the same stream."""
    following = pos + frame.length
    if following + 4 > len(data):
        return unseen_ok
    other = _mpeg_frame(data, following)
    return other is not None and (other.version, other.layer, other.sample_rate) == (
        frame.version,
        frame.layer,
        frame.sample_rate,
    )


def _find_mp3(header: bytes, start: int, *, search: bool) -> tuple[int, _Frame] | None:
    """The first MPEG frame at start (after NUL padding), or found by a search if allowed."""
    pos = len(header) - len(header[start:].lstrip(b"\x00"))  # some encoders pad with NULs
    frame = _mpeg_frame(header, pos)
    if frame is not None and (frame.layer != 3 or _next_agrees(header, pos, frame, unseen_ok=True)):
        return pos, frame
    if not search:
        return None
    # Junk before the audio: demand two chained frames so random bytes do not pass
    pos = header.find(b"\xff", start)
    while pos >= 0:
        frame = _mpeg_frame(header, pos)
        if frame and frame.layer == 3 and _next_agrees(header, pos, frame, unseen_ok=False):
            return pos, frame
        pos = header.find(b"\xff", pos + 1)
    return None


def _id3_tagged(ext: str, header: bytes, size: int) -> MediaInfo:
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
            return _flac(header, start)
        except _Truncated:
            raise _corrupt("FLAC") from None
    found = _find_mp3(header, start, search=True)
    if found is not None:
        return _mp3(ext, header, size, *found)
    if _is_adts(header, start):
        raise _unsupported(ext, "raw AAC (ADTS) audio", "wrap it in M4A or " + _CONVERT)
    raise MediaRejected(
        f"the file is named {ext} but no MP3 audio follows its tag in the first "
        f"{HEADER_BYTES // 1024} KB; re-export the recording as MP3, FLAC or 16-bit PCM WAV"
    )


def _id3_end(header: bytes, start: int) -> int:
    """Offset just past the ID3v2 tag at start."""
    version, _revision, flags = _take(header, start + 3, 3)
    size_bytes = _take(header, start + 6, 4)
    if version == 0xFF or any(b >= 0x80 for b in size_bytes):
        raise _corrupt("MP3", "its ID3 tag is damaged")
    tag_size = 0
    for b in size_bytes:  # "syncsafe": 7 bits a byte
        tag_size = tag_size << 7 | b
    footer = 10 if flags & 0x10 else 0
    return start + 10 + tag_size + footer


def _mp3(ext: str, header: bytes, size: int, pos: int, frame: _Frame) -> MediaInfo:
    if frame.layer != 3:
        name = "I" * frame.layer
        raise _unsupported(ext, f"MPEG layer {name} audio (MP{frame.layer})")
    duration = _mp3_duration(header, size, pos, frame)
    return MediaInfo("mp3", frame.sample_rate, frame.channels, None, duration)


def _mp3_duration(header: bytes, size: int, pos: int, frame: _Frame) -> float | None:
    # A VBR file says its frame count in a Xing/Info or VBRI header inside the first frame
    side_info = (
        (32 if frame.channels == 2 else 17)
        if frame.version == 1
        else (17 if frame.channels == 2 else 9)
    )
    xing = pos + 4 + side_info
    try:
        if header[xing : xing + 4] in (b"Xing", b"Info"):
            if not _uint(_U32BE, header, xing + 4) & 1:  # no frame count
                return None
            frames = _uint(_U32BE, header, xing + 8)
            return frames * frame.samples / frame.sample_rate if frames else None
        if header[pos + 36 : pos + 40] == b"VBRI":
            frames = _uint(_U32BE, header, pos + 36 + 14)
            return frames * frame.samples / frame.sample_rate if frames else None
    except _Truncated:
        return None
    # Otherwise constant bitrate, if every frame we can see agrees
    at = pos
    while (current := _mpeg_frame(header, at)) is not None and current.length > 0:
        if current.kbps != frame.kbps:
            return None
        at += current.length
    return (size - pos) * 8 / (frame.kbps * 1000)


# --- OGG -----------------------------------------------------------------------------------


def _ogg(header: bytes) -> MediaInfo:
    if _uint(_U8, header, 4) != 0:
        raise _corrupt("OGG", "unknown Ogg version")
    segments = _uint(_U8, header, 26)
    length = 0
    for lacing in _take(header, 27, segments):  # the first packet's length
        length += lacing
        if lacing < 255:
            break
    packet = _take(header, 27 + segments, length)
    if packet.startswith(b"OpusHead"):
        channels = _uint(_U8, packet, 9)
        if channels == 0:
            raise _corrupt("OGG", "it reports zero channels")
        # Opus always decodes at 48 kHz; the header's input rate is only informational
        return MediaInfo("ogg", 48000, channels)
    if packet.startswith(b"\x01vorbis"):
        channels = _uint(_U8, packet, 11)
        rate = _uint(_U32LE, packet, 12)
        if channels == 0 or rate == 0:
            raise _corrupt("OGG", "it reports zero channels or a sample rate of 0 Hz")
        return MediaInfo("ogg", rate, channels)
    if packet.startswith(b"\x7fFLAC") and packet[9:13] == b"fLaC":
        rate, channels, bits, total = _streaminfo(packet, 13, "OGG")
        return MediaInfo("ogg", rate, channels, bits, total / rate if total else None)
    # Speex, a video stream first...: the container is fine, leave the verdict to Transcribe
    return MediaInfo("ogg")


# --- WebM (EBML) ---------------------------------------------------------------------------

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_INFO, _TIMECODE_SCALE, _DURATION = 0x1549A966, 0x2AD7B1, 0x4489
_TRACKS, _TRACK_ENTRY, _TRACK_TYPE = 0x1654AE6B, 0xAE, 0x83
_AUDIO, _SAMPLING_FREQUENCY, _CHANNELS = 0xE1, 0xB5, 0x9F
_CLUSTER = 0x1F43B675
_AUDIO_TRACK = 2


def _vint(data: bytes, pos: int) -> tuple[int, int, int]:
    """An EBML variable-length integer: (raw with marker, value without marker, length)."""
    first = _uint(_U8, data, pos)
    if first == 0:  # longer than 8 bytes: not EBML
        raise _Truncated
    length = 9 - first.bit_length()
    raw = int.from_bytes(_take(data, pos, length), "big")
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
    return int.from_bytes(_take(data, body, end - body), "big") if end - body <= 8 else None


def _ebml_float(data: bytes, body: int, end: int) -> float | None:
    if end - body not in (4, 8):
        return None
    value = float(_unpack(_F32BE if end - body == 4 else _F64BE, data, body)[0])
    return value if math.isfinite(value) and value > 0 else None


def _ebml(ext: str, header: bytes) -> MediaInfo:
    _, body, header_end = next(_elements(header, 0, len(header)))
    if header_end > len(header):
        raise _Truncated
    doc_type = "matroska"  # the EBML default when DocType is absent
    for element_id, child, child_end in _elements(header, body, header_end):
        if element_id == _EBML_DOCTYPE:
            raw = _take(header, child, child_end - child)
            doc_type = raw.rstrip(b"\x00").decode("ascii", "replace")
    if doc_type == "matroska":
        raise _unsupported(ext, "Matroska (MKV/MKA) media", "remux it to WebM or " + _CONVERT)
    if doc_type != "webm":
        raise _not_audio(ext, "an EBML document of an unknown type")
    rate, channels, duration = _webm_details(header, header_end)
    return MediaInfo("webm", rate, channels, None, duration)


def _webm_details(data: bytes, start: int) -> tuple[int | None, int | None, float | None]:
    """Best effort: rate, channels and duration from the Segment's Info and Tracks."""
    rate: int | None = None
    channels: int | None = None
    duration: float | None = None
    try:
        for element_id, body, end in _elements(data, start, len(data)):
            if element_id != _SEGMENT:
                continue
            for child_id, child, child_end in _elements(data, body, end):
                if child_id == _INFO:
                    duration = _webm_duration(data, child, child_end)
                elif child_id == _TRACKS and rate is None:
                    rate, channels = _webm_audio(data, child, child_end)
                elif child_id == _CLUSTER:  # media data: no more headers to read
                    break
            break
    except _Truncated:  # headers running past what we read: keep what we have
        pass
    return rate, channels, duration


def _webm_duration(data: bytes, start: int, end: int) -> float | None:
    scale: int | None = 1_000_000  # nanoseconds per tick, the default
    ticks: float | None = None
    for element_id, body, element_end in _elements(data, start, end):
        if element_id == _TIMECODE_SCALE:
            scale = _ebml_uint(data, body, element_end)
        elif element_id == _DURATION:
            ticks = _ebml_float(data, body, element_end)
    return ticks * scale / 1e9 if ticks and scale else None  # live recordings have none


def _webm_audio(data: bytes, start: int, end: int) -> tuple[int | None, int | None]:
    for element_id, body, entry_end in _elements(data, start, end):
        if element_id != _TRACK_ENTRY:
            continue
        track_type: int | None = None
        rate: int | None = None
        channels: int | None = None
        for child_id, child, child_end in _elements(data, body, entry_end):
            if child_id == _TRACK_TYPE:
                track_type = _ebml_uint(data, child, child_end)
            elif child_id == _AUDIO:
                for audio_id, value, value_end in _elements(data, child, child_end):
                    if audio_id == _SAMPLING_FREQUENCY:
                        frequency = _ebml_float(data, value, value_end)
                        rate = round(frequency) if frequency and frequency < 1e7 else None
                    elif audio_id == _CHANNELS:
                        channels = _ebml_uint(data, value, value_end) or None
        if track_type == _AUDIO_TRACK:
            return rate, channels if channels is not None else 1  # the Matroska default
    return None, None


# --- MP4 / M4A (ISO base media file format) ------------------------------------------------

# Still-image formats that share the ISO container
_IMAGE_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
_AUDIO_BRANDS: Final = frozenset({b"M4A ", b"M4B "})


def _iso_bmff(ext: str, header: bytes, size: int) -> MediaInfo:
    box_size = _uint(_U32BE, header, 0)
    major = _take(header, 8, 4)
    brands = {major}
    for at in range(16, min(box_size, len(header)) - 3, 4):
        brands.add(header[at : at + 4])
    if major in _IMAGE_BRANDS:
        raise _not_audio(ext, "a HEIF/AVIF image")
    if major == b"M4P ":
        raise _unsupported(
            ext, "copy-protected (DRM) iTunes audio", "export an unprotected copy as FLAC or MP3"
        )
    media_format = "m4a" if brands & _AUDIO_BRANDS else "mp4"
    return MediaInfo(media_format, duration_s=_mp4_duration(header, size))


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, box end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= min(end, len(data)):
        box_size = _uint(_U32BE, data, pos)
        box_type = data[pos + 4 : pos + 8]
        header_size = 8
        if box_size == 1:  # 64-bit size follows
            box_size, header_size = _uint(_U64BE, data, pos + 8), 16
        elif box_size == 0:  # runs to the end of its parent
            box_size = end - pos
        if box_size < header_size:
            return
        yield box_type, pos + header_size, pos + box_size
        pos += box_size


def _mp4_duration(header: bytes, size: int) -> float | None:
    """The movie header's duration, when the moov box comes first ("fast start")."""
    try:
        for box_type, body, end in _boxes(header, 0, size):
            if box_type != b"moov":
                continue
            for child_type, child, _ in _boxes(header, body, end):
                if child_type == b"mvhd":
                    return _mvhd_duration(header, child)
            return None
    except _Truncated:
        return None
    return None


def _mvhd_duration(data: bytes, body: int) -> float | None:
    if _uint(_U8, data, body) == 1:  # 64-bit times
        timescale = _uint(_U32BE, data, body + 20)
        duration, unknown = _uint(_U64BE, data, body + 24), 2**64 - 1
    else:
        timescale = _uint(_U32BE, data, body + 12)
        duration, unknown = _uint(_U32BE, data, body + 16), 2**32 - 1
    # Fragmented files say 0: the length lives in the fragments, past what we read
    if timescale == 0 or duration in (0, unknown):
        return None
    return duration / timescale


# --- AMR -----------------------------------------------------------------------------------

# Frame sizes in bytes (with the table-of-contents byte) by frame type; 15 is "no data"
_AMR_NB_FRAMES: Final = {**dict(enumerate((13, 14, 16, 18, 20, 21, 27, 32, 6))), 15: 1}
_AMR_WB_FRAMES: Final = {**dict(enumerate((18, 24, 33, 37, 41, 47, 51, 59, 61, 6))), 14: 1, 15: 1}
_AMR_MAGICS: Final = (
    (b"#!AMR-WB_MC1.0\n", 16000, _AMR_WB_FRAMES, True),
    (b"#!AMR-WB\n", 16000, _AMR_WB_FRAMES, False),
    (b"#!AMR_MC1.0\n", 8000, _AMR_NB_FRAMES, True),
    (b"#!AMR\n", 8000, _AMR_NB_FRAMES, False),
)


def _amr(header: bytes, size: int) -> MediaInfo:
    for magic, rate, frame_sizes, multichannel in _AMR_MAGICS:
        if not header.startswith(magic):
            continue
        if multichannel:
            channels = _uint(_U32BE, header, len(magic)) & 0xF
            if channels == 0:
                raise _corrupt("AMR", "it reports zero channels")
            return MediaInfo("amr", rate, channels)
        duration = _amr_duration(header, size, len(magic), frame_sizes)
        return MediaInfo("amr", rate, 1, None, duration)
    raise _corrupt("AMR", "its first line is not an AMR signature")


def _amr_duration(
    header: bytes, size: int, start: int, frame_sizes: dict[int, int]
) -> float | None:
    """20 ms a frame, if every frame we can see has the same size (no silence frames)."""
    if start >= size:
        return 0.0
    at = start
    frame_size = frame_sizes.get((header[at] >> 3) & 0xF) if at < len(header) else None
    if frame_size is None:
        return None
    while at < len(header):
        if frame_sizes.get((header[at] >> 3) & 0xF) != frame_size:
            return None
        at += frame_size
    return (size - start) / frame_size * 0.020
