"""Cheap checks of an uploaded recording against Transcribe Medical's batch limits.

The start-job Lambda reads only the first ``HEADER_BYTES`` of an object (one ranged GET)
plus its size, and asks :func:`inspect_media` whether Transcribe Medical can take it. The
format is decided by the bytes, not by the name: FLAC named ``.wav`` goes to Transcribe as
FLAC, a PNG named ``.wav`` is rejected before it costs a job. Facts are read as ffprobe
reads them; where they lie past the bytes read, they stay unknown (None) and Transcribe
decides.

One module per container (``wav``, ``flac``, ``mp3``, ``ogg``, ``webm``, ``mp4`` with
``aac``, ``amr``), the dispatcher in ``dispatch``, the facts and limits in ``info``.
Stdlib only and no AWS imports: this runs on every cold start. Every read goes through a
bounds-checked helper (``reading``), so a truncated or hostile header ends in
:class:`MediaRejected`, never in ``IndexError`` or ``struct.error``. Reasons never carry
the object key (keys may hold patient names): the caller hands over only the extension.
"""

from __future__ import annotations

from pipeline.media.dispatch import inspect_content as _inspect_content
from pipeline.media.dispatch import inspect_media
from pipeline.media.info import (
    EXTENSION_FORMATS,
    HEADER_BYTES,
    MAX_CHANNELS,
    MAX_DURATION_S,
    MAX_FILE_BYTES,
    MAX_SAMPLE_RATE_HZ,
    MIN_DURATION_S,
    MIN_SAMPLE_RATE_HZ,
    MediaInfo,
    MediaRejected,
)

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
    "_inspect_content",
    "inspect_media",
]
