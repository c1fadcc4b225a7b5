"""WAV (RIFF/RF64 WAVE): Transcribe Medical wants 16-bit PCM."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pipeline.media.info import MediaInfo, MediaRejected
from pipeline.media.reading import U16LE, U32LE, U64LE, Truncated, take, uint, unpack
from pipeline.media.reasons import corrupt

_WAV_FMT = struct.Struct("<HHIIHH")
_WAV_PCM = 1
_WAV_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_* GUIDs share this tail; the first two bytes are the format tag
KSDATAFORMAT_TAIL: Final = bytes.fromhex("000000001000800000aa00389b71")
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


def parse_wav(header: bytes, size: int) -> MediaInfo:
    fmt: _WavFormat | None = None
    ds64_data: int | None = None
    data_at: int | None = None
    data_size = 0
    pos = 12
    while pos + 8 <= len(header):  # chunks can come in any order: LIST, bext, JUNK...
        chunk_id = header[pos : pos + 4]
        chunk_size = uint(U32LE, header, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            try:
                fmt = _wav_format(header, body, chunk_size)
            except Truncated:
                if body + chunk_size > size:  # the file itself ends inside it
                    raise
                return MediaInfo("wav")  # it straddles the end of the bytes read: not known
        elif chunk_id == b"ds64":  # RF64: the real 64-bit sizes
            ds64_data = uint(U64LE, header, body + 8)
        elif chunk_id == b"data":
            data_at, data_size = body, chunk_size
            if fmt is not None or chunk_size in _STREAMING_SIZES:
                break
        pos = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        if (data_at is not None and data_size in _STREAMING_SIZES) or pos + 8 > size:
            raise corrupt("WAV", "it does not describe its audio format")
        # A big chunk (LIST, bext, JUNK) pushes the format past the bytes read: RIFF/WAVE
        # says it is WAV, the rest is not known from the prefix (ffprobe reads it further on)
        return MediaInfo("wav")
    _check_wav_format(fmt)
    if data_at is None:
        if pos + 8 > size:
            raise corrupt("WAV", "it contains no audio data")
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
        raise corrupt("WAV", "its format description is too short")
    tag, channels, rate, byte_rate, block_align, bits = unpack(_WAV_FMT, header, body)
    real_tag: int | None = tag
    if tag == _WAV_EXTENSIBLE:
        if chunk_size < 40:
            raise corrupt("WAV", "its format description is too short")
        subformat = take(header, body + 24, 16)
        real_tag = U16LE.unpack_from(subformat)[0] if subformat[2:] == KSDATAFORMAT_TAIL else None
    return _WavFormat(real_tag, channels, rate, byte_rate, block_align, bits)


def _check_wav_format(fmt: _WavFormat) -> None:
    if fmt.channels == 0:
        raise corrupt("WAV", "it reports zero channels")
    if fmt.rate == 0:
        raise corrupt("WAV", "it reports a sample rate of 0 Hz")
    if fmt.bits == 0:
        raise corrupt("WAV", "it reports 0 bits per sample")
    if fmt.tag != _WAV_PCM or fmt.bits != 16:
        raise MediaRejected(
            f"WAV audio must be 16-bit PCM; this file is {_wav_encoding(fmt)}. "
            "Re-export it as 16-bit PCM WAV or as FLAC"
        )
    if fmt.block_align != fmt.channels * 2 or fmt.byte_rate != fmt.rate * fmt.block_align:
        raise corrupt("WAV", "its byte rate does not match its sample rate and channels")


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
