"""Turn a Transcribe Medical transcript JSON into readable and integrator documents.

Pure Python, no AWS and no logging: transcript text and PHI must never reach logs,
and error messages never quote them. One entry point, :func:`render_documents`.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, compress, count, repeat
from operator import lt
from typing import Any, NamedTuple

from .captions import Cue, cue_prefixes, render_captions, unit_cues
from .clinical_context import clinical_context
from .dialogue import (
    dialogue_lines,
    dialogue_turns,
    join_dialogue,
    join_turns,
    marked_display,
    turn_rows,
)
from .emulation import EMULATED_MARKER_KEY, EMULATED_NOTE
from .fhir_document import build_document_reference, render_document_reference, us_core_missing
from .hl7_mdm import build_mdm_t02
from .model import Transcript, TranscriptError, Turn, parse_transcript, turns
from .plain_text import render_plain_text
from .redaction import find_spans, redact_with_source
from .summary import build_summary, render_summary

__all__ = [
    "DOCUMENT_NAMES",
    "EMULATED_MARKER_KEY",
    "EMULATED_NOTE",
    "READABLE_NAMES",
    "REDACTED_NAMES",
    "RenderedDocuments",
    "Transcript",
    "TranscriptError",
    "parse_transcript",
    "render_documents",
]

# The readable documents, each also written as a redacted twin when PHI is redacted.
READABLE_NAMES = (
    "transcript.txt",
    "dialogue.txt",
    "captions.vtt",
    "captions.srt",
    "turns.json",
)
REDACTED_NAMES = {
    "transcript.txt": "transcript.redacted.txt",
    "dialogue.txt": "dialogue.redacted.txt",
    "captions.vtt": "captions.redacted.vtt",
    "captions.srt": "captions.redacted.srt",
    "turns.json": "turns.redacted.json",
}
# What a default call writes (no redaction).
DOCUMENT_NAMES = (*READABLE_NAMES, "summary.json", "document-reference.json", "mdm-t02.hl7")


@dataclass(frozen=True)
class RenderedDocuments:
    files: dict[str, bytes]  # document name -> UTF-8 content
    stats: dict[str, Any]  # words, duration_s, speakers, channels, mean_confidence,
    # low_confidence_words (a count): ints and floats only, for the job index item


def render_documents(
    transcript_json: bytes | str,
    *,
    job: Mapping[str, Any],
    low_confidence_threshold: float = 0.5,
    redact_phi: bool = False,
    write_unredacted: bool = True,
) -> RenderedDocuments:
    """Render every document and the stats from a transcript file's bytes.

    ``job``: the job's facts (see clinical_context for the keys the FHIR and HL7
    documents read, and summary.JOB_KEYS for those summary.json repeats).
    ``redact_phi``: also write the ``*.redacted.*`` twins of the readable documents
    (turn it on with the job's PHI identification: the entities come from it).
    ``write_unredacted=False`` (only with ``redact_phi``): leave out the unredacted
    readable documents; the FHIR and HL7 documents and summary.json's low-confidence
    words then carry the redacted text too.

    Raises TranscriptError (a ValueError) when the bytes are not a transcript, and
    ValueError for a threshold outside [0, 1] or unredacted documents turned off
    without redaction.
    """
    if not 0.0 <= low_confidence_threshold <= 1.0:
        raise ValueError("low_confidence_threshold must be within [0, 1]")
    if not write_unredacted and not redact_phi:
        raise ValueError("write_unredacted=False needs redact_phi=True (no readable document)")
    with _collector_paused():
        return _render(
            transcript_json,
            job=job,
            low_confidence_threshold=low_confidence_threshold,
            redact_phi=redact_phi,
            write_unredacted=write_unredacted,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while rendering. A four-hour transcript makes some
    10^5 short-lived containers and no reference cycles, so the collector's passes (each
    also walking the transcript's long lists) free nothing and cost about a tenth of the
    render; reference counting still frees everything as it goes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _render(
    transcript_json: bytes | str,
    *,
    job: Mapping[str, Any],
    low_confidence_threshold: float,
    redact_phi: bool,
    write_unredacted: bool,
) -> RenderedDocuments:
    transcript = parse_transcript(transcript_json)
    runs = turns(transcript)
    texts: dict[str, str] = {}
    original = None
    if write_unredacted:
        original = _readable(transcript, runs, low_confidence_threshold)
        texts.update(original.texts)
    summary, stats = build_summary(
        transcript, runs, job=job, low_confidence_threshold=low_confidence_threshold
    )
    phi_report: dict[str, Any] | None = None
    if redact_phi:
        spans, report = find_spans(transcript)
        redacted, source = redact_with_source(transcript, spans)
        redacted_runs = turns(redacted)
        redacted_texts = _readable(
            redacted,
            redacted_runs,
            low_confidence_threshold,
            reuse=None if original is None else (original, source),
        ).texts
        texts.update({REDACTED_NAMES[name]: text for name, text in redacted_texts.items()})
        phi_report = report.as_dict()
        summary["phi_spans"] = phi_report.pop("spans")
        if not write_unredacted:  # low-confidence words inside PHI become their placeholder
            redacted_summary, _ = build_summary(
                redacted,
                redacted_runs,
                job=job,
                low_confidence_threshold=low_confidence_threshold,
            )
            summary["low_confidence_words"] = redacted_summary["low_confidence_words"]
    plain_name = "transcript.txt" if write_unredacted else REDACTED_NAMES["transcript.txt"]
    plain = texts[plain_name].encode("utf-8", "replace")
    ctx = clinical_context(job, fallback_job_name=transcript.job_name)
    resource = build_document_reference(
        ctx, text=plain, redacted=not write_unredacted, emulated_note=transcript.emulated_note
    )
    texts["document-reference.json"] = render_document_reference(resource)
    texts["mdm-t02.hl7"] = build_mdm_t02(ctx, text=texts[plain_name])
    missing = us_core_missing(ctx)
    summary.update(
        {
            "emulated": bool(transcript.emulated_note),
            "emulated_note": transcript.emulated_note or None,
            "phi_redaction": phi_report,
            "unredacted_documents_written": write_unredacted,
            "integration": {
                "note_type": ctx.note_type,
                "patient_id_given": ctx.patient_id is not None,
                "encounter_id_given": ctx.encounter_id is not None,
                "author_given": ctx.author is not None,
                "fhir_us_core_conformant": "subject" not in missing,
                "fhir_us_core_missing": missing,
                "hl7_patient_identified": ctx.patient_id is not None,
            },
            "documents": sorted([*texts, "summary.json"]),
        }
    )
    texts["summary.json"] = render_summary(summary)
    files = {name: text.encode("utf-8", "replace") for name, text in texts.items()}
    files[plain_name] = plain
    return RenderedDocuments(files=files, stats=stats)


class _Readable(NamedTuple):
    """The five readable documents of one transcript, and the pieces they were joined from
    (per shown turn: its dialogue line, its turns.json row, its cues)."""

    texts: dict[str, str]
    units: list[Turn]
    lines: list[str]
    rows: list[str]
    cues: list[list[Cue]]


def _readable(
    transcript: Transcript,
    runs: list[Turn],
    threshold: float,
    *,
    reuse: tuple[_Readable, list[int]] | None = None,
) -> _Readable:
    """The five readable documents of one transcript (the original or its redacted copy).

    ``reuse``: the original's _Readable and redact_with_source's word sources. A turn of the
    redacted copy that redaction left alone (the same words, label and sentence ends) prints
    exactly as the original's: its pieces are taken from there, and only the turns that hold
    a placeholder are rendered again (a four-hour file has PHI in about a third of them).
    """
    t = transcript
    low = list(compress(count(), map(lt, t.confidences, repeat(threshold))))
    units = dialogue_turns(t, runs)
    same = _unchanged(units, *reuse) if reuse is not None else [-1] * len(units)
    todo = [unit for unit, j in zip(units, same, strict=True) if j < 0]
    prefixes = cue_prefixes(t)
    lines = dialogue_lines(t, todo, marked_display(t, low) if todo else t.display)
    rows = turn_rows(t, todo, low)
    cues = [unit_cues(t, unit, prefixes) for unit in todo]
    if reuse is not None:
        lines, rows, cues = _merged(same, reuse[0], lines, rows, cues)
    vtt, srt = render_captions([*chain.from_iterable(cues)], note=t.emulated_note)
    note = t.emulated_note
    texts = {
        "transcript.txt": (render_plain_text(f"[{note}]") + "\n" if note else "")
        + render_plain_text(t.text),
        "dialogue.txt": join_dialogue(t, lines),
        "captions.vtt": vtt,
        "captions.srt": srt,
        "turns.json": join_turns(t, rows, threshold=threshold),
    }
    return _Readable(texts, units, lines, rows, cues)


def _unchanged(units: list[Turn], original: _Readable, source: list[int]) -> list[int]:
    """Per unit of the redacted copy: the index of the original's unit it is unchanged
    from (same first word, length and label, no placeholder inside), else -1."""
    by_first = {unit.first: j for j, unit in enumerate(original.units)}
    placeholders = list(compress(count(), map(lt, source, repeat(0))))  # sources of -1
    out = []
    for unit in units:
        j = by_first.get(source[unit.first], -1)
        if j >= 0:
            was = original.units[j]
            k = bisect_left(placeholders, unit.first)
            if (
                was.label != unit.label
                or was.stop - was.first != unit.stop - unit.first
                or (k < len(placeholders) and placeholders[k] < unit.stop)
            ):
                j = -1
        out.append(j)
    return out


def _merged(
    same: list[int],
    original: _Readable,
    lines: list[str],
    rows: list[str],
    cues: list[list[Cue]],
) -> tuple[list[str], list[str], list[list[Cue]]]:
    """The pieces of every unit: the original's where unchanged, else the new ones in order."""
    new_lines, new_rows, new_cues = iter(lines), iter(rows), iter(cues)
    return (
        [original.lines[j] if j >= 0 else next(new_lines) for j in same],
        [original.rows[j] if j >= 0 else next(new_rows) for j in same],
        [original.cues[j] if j >= 0 else next(new_cues) for j in same],
    )
