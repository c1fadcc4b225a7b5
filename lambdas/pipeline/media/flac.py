"""FLAC: the STREAMINFO block (also carried inside Ogg FLAC)."""

from __future__ import annotations

from pipeline.media.info import MediaInfo
from pipeline.media.reading import U8, U64BE, take, uint
from pipeline.media.reasons import corrupt


def parse_flac(header: bytes, start: int) -> MediaInfo:
    """The FLAC stream whose "fLaC" marker is at start."""
    rate, channels, bits, total = streaminfo(header, start + 4, "FLAC")
    return MediaInfo("flac", rate, channels, bits, total / rate if total else None)


def streaminfo(data: bytes, at: int, label: str) -> tuple[int, int, int, int]:
    """Rate, channels, bits per sample and total samples (0: unknown) from STREAMINFO."""
    block_type = uint(U8, data, at) & 0x7F
    length = int.from_bytes(take(data, at + 1, 3), "big")
    if block_type != 0 or length < 34:  # STREAMINFO must come first
        raise corrupt(label, "its stream description is missing")
    # 20 bits rate, 3 bits channels-1, 5 bits bits-1, 36 bits total samples
    packed = uint(U64BE, data, at + 4 + 10)
    rate = packed >> 44
    if rate == 0:
        raise corrupt(label, "it reports a sample rate of 0 Hz")
    return rate, ((packed >> 41) & 0x7) + 1, ((packed >> 36) & 0x1F) + 1, packed & (2**36 - 1)
