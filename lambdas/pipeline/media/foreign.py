"""Content that is not audio, or audio in a container Transcribe Medical does not take."""

from __future__ import annotations

import codecs
from typing import Final

from pipeline.media.info import MediaRejected
from pipeline.media.reasons import CONVERT, corrupt, not_audio, unsupported

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


def foreign(ext: str, header: bytes) -> MediaRejected | None:
    """A rejection for recognised content that is not a supported audio format."""
    for magic, description in _NOT_AUDIO_MAGIC:
        if header.startswith(magic):
            return not_audio(ext, description)
    for magic, description in _UNSUPPORTED_MAGIC:
        if header.startswith(magic):
            return unsupported(ext, description)
    if header.startswith(b"RIFF"):
        form = header[8:12]
        if len(form) < 4:
            return corrupt("WAV")
        if form == b"WEBP":
            return not_audio(ext, "a WebP image")
        if form == b"AVI ":
            return unsupported(ext, "an AVI video")
        return not_audio(ext, "a RIFF file that is not WAV audio")
    if header.startswith(b"RIFX"):
        return unsupported(ext, "big-endian WAV (RIFX) audio", "re-export it as 16-bit PCM WAV")
    if header.startswith(b"FORM") and header[8:12] in (b"AIFF", b"AIFC"):
        return unsupported(ext, "AIFF audio")
    if is_adts(header, 0):
        return raw_aac(ext)
    return None


def raw_aac(ext: str) -> MediaRejected:
    return unsupported(ext, "raw AAC (ADTS) audio", "wrap it in M4A or " + CONVERT)


def is_adts(data: bytes, pos: int) -> bool:
    # 12-bit sync, then MPEG version bit, layer 00: AAC in ADTS frames
    return len(data) >= pos + 2 and data[pos] == 0xFF and data[pos + 1] & 0xF6 == 0xF0


def text_kind(header: bytes) -> str | None:
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
