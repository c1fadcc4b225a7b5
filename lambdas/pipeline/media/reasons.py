"""The sentences a rejection carries: what is wrong and what to do, never the object key."""

from __future__ import annotations

from typing import Final

from pipeline.media.info import EXTENSION_FORMATS, MediaRejected

_EXTENSIONS: Final = list(EXTENSION_FORMATS)
EXTENSION_LIST: Final = ", ".join(_EXTENSIONS[:-1]) + " or " + _EXTENSIONS[-1]
UPLOAD_AUDIO: Final = "upload WAV, FLAC, MP3, MP4/M4A, OGG, WebM or AMR audio"
CONVERT: Final = "convert it to FLAC, MP3 or 16-bit PCM WAV"


def extension_reason(ext: str) -> str:
    """Why an upload with this (unaccepted) extension is refused."""
    if not ext or ext == ".":
        return f"the file name has no extension; name it with one of {EXTENSION_LIST}"
    # Echo only what looks like a file-type suffix: a longer one may be part of a name
    # ("Jane.Smithson") and reasons must not carry key text.
    what = (
        f"files ending in {ext} are"
        if len(ext) <= 5 and ext[1:].isascii() and ext[1:].isalnum()
        else "the file's extension is"
    )
    return (
        f"{what} not accepted; convert the recording to a supported audio format "
        f"and name it with one of {EXTENSION_LIST}"
    )


def corrupt(label: str, detail: str | None = None) -> MediaRejected:
    why = f" ({detail})" if detail else ""
    return MediaRejected(
        f"the {label} header is truncated or corrupt{why}; "
        "re-export the recording or upload it again"
    )


def not_audio(ext: str, description: str) -> MediaRejected:
    return MediaRejected(
        f"the file is named {ext} but its content is {description}, not audio; {UPLOAD_AUDIO}"
    )


def unsupported(ext: str, description: str, action: str = CONVERT) -> MediaRejected:
    return MediaRejected(
        f"the file is named {ext} but its content is {description}, "
        f"which Transcribe Medical does not accept; {action}"
    )


def no_audio_track(ext: str, container: str, found: str) -> MediaRejected:
    """A container that holds tracks, none of them audio (a video, a still)."""
    return MediaRejected(
        f"the file is named {ext} but this {container} file holds no audio track "
        f"(only {found}); export the recording's sound as FLAC, MP3 or 16-bit PCM WAV"
    )
