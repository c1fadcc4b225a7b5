"""The job facts the integrator documents (FHIR, HL7) need, read once from the ``job`` mapping.

Keys of ``job`` (all optional; the job index item's attribute names):

- ``job_name``: the Transcribe job name, the documents' stable identifier;
- ``type``: DICTATION or CONVERSATION (for the default note type);
- ``patient_id``, ``encounter_id``, ``author``, ``note_type``: the upload's metadata,
  as ``pipeline.upload_metadata`` validated it;
- ``created_at``, ``completed_at``: ISO-8601 times (the document's dates);
- ``transcript_key`` and ``output_bucket`` (or ``transcript_uri``): where the raw
  transcript JSON is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..upload_metadata import NOTE_TYPE_NAMES, default_note_type


@dataclass(frozen=True)
class ClinicalContext:
    job_name: str
    patient_id: str | None
    encounter_id: str | None
    author: str | None
    note_type: str
    note_type_name: str | None
    created_at: datetime | None
    completed_at: datetime | None
    transcript_uri: str | None

    @property
    def document_time(self) -> datetime | None:
        """When the document came to be: the job's completion, else its creation."""
        return self.completed_at or self.created_at


def clinical_context(job: Mapping[str, Any], *, fallback_job_name: str) -> ClinicalContext:
    note_type = _text(job.get("note_type")) or default_note_type(str(job.get("type") or ""))
    return ClinicalContext(
        job_name=_text(job.get("job_name")) or fallback_job_name,
        patient_id=_text(job.get("patient_id")),
        encounter_id=_text(job.get("encounter_id")),
        author=_text(job.get("author")),
        note_type=note_type,
        note_type_name=NOTE_TYPE_NAMES.get(note_type),
        created_at=_time(job.get("created_at")),
        completed_at=_time(job.get("completed_at")),
        transcript_uri=_transcript_uri(job),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _transcript_uri(job: Mapping[str, Any]) -> str | None:
    uri = _text(job.get("transcript_uri"))
    if uri:
        return uri
    key, bucket = _text(job.get("transcript_key")), _text(job.get("output_bucket"))
    if key and bucket:
        return f"s3://{bucket}/{key}"
    return key
