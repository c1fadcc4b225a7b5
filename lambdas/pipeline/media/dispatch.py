"""Which parser reads an upload: the content's signature decides, not the file's name."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

from pipeline.media.amr import parse_amr
from pipeline.media.flac import parse_flac
from pipeline.media.foreign import foreign, text_kind
from pipeline.media.info import (
    EXTENSION_FORMATS,
    MAX_FILE_BYTES,
    MediaInfo,
    MediaRejected,
    check_limits,
)
from pipeline.media.mp3 import find_mp3, parse_id3_tagged, parse_mp3
from pipeline.media.mp4 import parse_iso_bmff
from pipeline.media.ogg import parse_ogg
from pipeline.media.reading import Truncated
from pipeline.media.reasons import UPLOAD_AUDIO, corrupt, extension_reason, not_audio
from pipeline.media.wav import parse_wav
from pipeline.media.webm import EBML_MAGIC, parse_webm


def inspect_media(*, extension: str, header: bytes, size: int) -> MediaInfo:
    """Check an object by its extension, first bytes and total size.

    ``extension`` is the lower-cased extension with its dot (".wav") or "". ``header`` is
    the first ``HEADER_BYTES`` (or all, if smaller) of the object. Raises MediaRejected.
    """
    ext = extension.strip().lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    if ext not in EXTENSION_FORMATS:
        raise MediaRejected(extension_reason(ext))
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
        info = inspect_content(ext, data, max(size, len(data)))
    except (IndexError, KeyError, ValueError, OverflowError, ZeroDivisionError, struct.error):
        # Safety net for a parser bug (the tests fuzz inspect_content without it): a file we
        # cannot read is rejected with a reason rather than retried until the dead-letter queue.
        raise MediaRejected(
            f"the file is named {ext} but its header could not be read; "
            "re-export the recording as FLAC, MP3 or 16-bit PCM WAV and upload it again"
        ) from None
    check_limits(info)
    return info


def inspect_content(ext: str, header: bytes, size: int) -> MediaInfo:
    """Decide the format from the content and parse its header (fuzzed without a safety net)."""
    label, parse = _recognise(ext, header, size)
    try:
        return parse()
    except Truncated:
        raise corrupt(label) from None


def _recognise(ext: str, header: bytes, size: int) -> tuple[str, Callable[[], MediaInfo]]:
    """The label for messages and the parser for the content; raises for non-audio."""
    if header.startswith(b"ID3"):
        return "MP3", lambda: parse_id3_tagged(ext, header, size)
    if header[:4] in (b"RIFF", b"RF64") and header[8:12] == b"WAVE":
        return "WAV", lambda: parse_wav(header, size)
    if header.startswith(b"fLaC"):
        return "FLAC", lambda: parse_flac(header, 0)
    if header.startswith(b"OggS"):
        return "OGG", lambda: parse_ogg(ext, header, size)
    if header.startswith(EBML_MAGIC):
        return "WebM", lambda: parse_webm(ext, header)
    if header[4:8] == b"ftyp":
        return "MP4", lambda: parse_iso_bmff(ext, header, size)
    if header.startswith(b"#!AMR"):
        return "AMR", lambda: parse_amr(header, size)
    rejection = foreign(ext, header)
    if rejection is not None:
        raise rejection
    found = find_mp3(header, 0, search=ext == ".mp3")
    if found is not None:
        return "MP3", lambda: parse_mp3(ext, header, size, *found)
    text = text_kind(header)
    if text is not None:
        raise not_audio(ext, text)
    raise MediaRejected(
        f"the file is named {ext} but its content is not a recognised audio format; {UPLOAD_AUDIO}"
    )
