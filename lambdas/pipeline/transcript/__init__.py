"""Turn a Transcribe Medical transcript JSON into readable and integrator documents.

Pure Python, no AWS and no logging: transcript text and PHI must never reach logs,
and error messages never quote them. One entry point, :func:`render_documents`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import lt
from typing import Any

from .captions import build_cues, render_captions
from .clinical_context import clinical_context
from .dialogue import dialogue_turns, marked_display, render_dialogue, render_turns
from .emulation import EMULATED_MARKER_KEY, EMULATED_NOTE
from .fhir_document import build_document_reference, render_document_reference, us_core_missing
from .hl7_mdm import build_mdm_t02
from .model import Transcript, TranscriptError, parse_transcript, turns
from .plain_text import render_plain_text
from .redaction import find_spans, redact
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
    transcript = parse_transcript(transcript_json)
    runs = turns(transcript)
    texts: dict[str, str] = {}
    if write_unredacted:
        texts.update(_readable(transcript, runs, low_confidence_threshold))
    summary, stats = build_summary(
        transcript, runs, job=job, low_confidence_threshold=low_confidence_threshold
    )
    phi_report: dict[str, Any] | None = None
    if redact_phi:
        spans, report = find_spans(transcript)
        redacted = redact(transcript, spans)
        redacted_texts = _readable(redacted, turns(redacted), low_confidence_threshold)
        texts.update({REDACTED_NAMES[name]: text for name, text in redacted_texts.items()})
        phi_report = report.as_dict()
        summary["phi_spans"] = phi_report.pop("spans")
        if not write_unredacted:  # low-confidence words inside PHI become their placeholder
            redacted_summary, _ = build_summary(
                redacted,
                turns(redacted),
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


def _readable(transcript: Transcript, runs: list[Any], threshold: float) -> dict[str, str]:
    """The five readable documents of one transcript (the original or its redacted copy)."""
    low = list(compress(count(), map(lt, transcript.confidences, repeat(threshold))))
    shown = dialogue_turns(transcript, runs)
    vtt, srt = render_captions(build_cues(transcript, runs), note=transcript.emulated_note)
    note = transcript.emulated_note
    return {
        "transcript.txt": (render_plain_text(f"[{note}]") + "\n" if note else "")
        + render_plain_text(transcript.text),
        "dialogue.txt": render_dialogue(transcript, shown, marked_display(transcript, low)),
        "captions.vtt": vtt,
        "captions.srt": srt,
        "turns.json": render_turns(transcript, shown, low, threshold=threshold),
    }
