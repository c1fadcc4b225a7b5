"""AMR (RFC 4867 storage format): narrow band is 8 kHz, wide band 16 kHz, 20 ms a frame."""

from __future__ import annotations

from typing import Final

from pipeline.media.info import MediaInfo
from pipeline.media.reading import U32BE, uint
from pipeline.media.reasons import corrupt

# Frame sizes in bytes (with the table-of-contents byte) by frame type; 15 is "no data"
_AMR_NB_FRAMES: Final = {**dict(enumerate((13, 14, 16, 18, 20, 21, 27, 32, 6))), 15: 1}
_AMR_WB_FRAMES: Final = {**dict(enumerate((18, 24, 33, 37, 41, 47, 51, 59, 61, 6))), 14: 1, 15: 1}
_AMR_MAGICS: Final = (
    (b"#!AMR-WB_MC1.0\n", 16000, _AMR_WB_FRAMES, True),
    (b"#!AMR-WB\n", 16000, _AMR_WB_FRAMES, False),
    (b"#!AMR_MC1.0\n", 8000, _AMR_NB_FRAMES, True),
    (b"#!AMR\n", 8000, _AMR_NB_FRAMES, False),
)


def parse_amr(header: bytes, size: int) -> MediaInfo:
    for magic, rate, frame_sizes, multichannel in _AMR_MAGICS:
        if not header.startswith(magic):
            continue
        if multichannel:
            channels = uint(U32BE, header, len(magic)) & 0xF
            if channels == 0:
                raise corrupt("AMR", "it reports zero channels")
            return MediaInfo("amr", rate, channels)
        duration = _amr_duration(header, size, len(magic), frame_sizes)
        return MediaInfo("amr", rate, 1, None, duration)
    raise corrupt("AMR", "its first line is not an AMR signature")


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
