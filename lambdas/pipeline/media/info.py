"""What inspection learns of a recording, the limits it is held to, and the rejection."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

HEADER_BYTES: Final = 65536  # what the caller reads with one ranged GET
MAX_FILE_BYTES: Final = 2 * 1024**3  # Transcribe: "file size too large" at 2 GB
MIN_SAMPLE_RATE_HZ: Final = 16_000
MAX_SAMPLE_RATE_HZ: Final = 48_000
MAX_CHANNELS: Final = 2  # more fails with "number of channels too large"
MIN_DURATION_S: Final = 0.5
MAX_DURATION_S: Final = 14_400.0  # 4 hours, exclusive

# Extension -> Transcribe MediaFormat; the content may still overrule it (see the package doc).
# Ogg Opus files are commonly named .opus: Transcribe takes them as "ogg".
EXTENSION_FORMATS: Final[dict[str, str]] = {
    ".wav": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".mp4": "mp4",
    ".m4a": "m4a",
    ".ogg": "ogg",
    ".opus": "ogg",
    ".webm": "webm",
    ".amr": "amr",
}


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


def check_limits(info: MediaInfo) -> None:
    """Raise MediaRejected if what is known breaks one of Transcribe Medical's limits."""
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
