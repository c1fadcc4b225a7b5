"""Turn a Transcribe Medical transcript JSON into five readable documents.

Pure Python (stdlib only), no AWS and no logging: transcript text must never
reach logs, and error messages never quote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .captions import build_cues, render_captions
from .dialogue import render_dialogue
from .model import Transcript, TranscriptError, parse_transcript, turns
from .plain_text import render_plain_text
from .summary import build_summary, render_summary

__all__ = [
    "DOCUMENT_NAMES",
    "RenderedDocuments",
    "Transcript",
    "TranscriptError",
    "parse_transcript",
    "render_documents",
]

DOCUMENT_NAMES = (
    "transcript.txt",
    "dialogue.txt",
    "captions.vtt",
    "captions.srt",
    "summary.json",
)


@dataclass(frozen=True)
class RenderedDocuments:
    files: dict[str, bytes]  # DOCUMENT_NAMES -> UTF-8 content
    stats: dict[str, Any]  # words, duration_s, speakers, channels, mean_confidence,
    # low_confidence_words (a count): ints and floats only, for the job index item


def render_documents(
    transcript_json: bytes | str,
    *,
    job: Mapping[str, Any],
    low_confidence_threshold: float = 0.5,
) -> RenderedDocuments:
    """Render the five documents and the stats from a transcript file's bytes.

    Raises TranscriptError (a ValueError) when the bytes are not a transcript,
    ValueError when the threshold is not within [0, 1].
    """
    if not 0.0 <= low_confidence_threshold <= 1.0:
        raise ValueError("low_confidence_threshold must be within [0, 1]")
    transcript = parse_transcript(transcript_json)
    runs = turns(transcript)
    cues = build_cues(transcript, runs)
    summary, stats = build_summary(
        transcript, runs, job=job, low_confidence_threshold=low_confidence_threshold
    )
    vtt, srt = render_captions(cues)
    texts = {
        "transcript.txt": render_plain_text(transcript.text),
        "dialogue.txt": render_dialogue(transcript, runs),
        "captions.vtt": vtt,
        "captions.srt": srt,
        "summary.json": render_summary(summary),
    }
    files = {name: text.encode("utf-8", "replace") for name, text in texts.items()}
    return RenderedDocuments(files=files, stats=stats)
