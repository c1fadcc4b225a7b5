"""document-reference.json: a FHIR R4 DocumentReference carrying the transcript.

It follows US Core's DocumentReference profile (category ``clinical-note``, a LOINC
``type``, ``subject``, ``date``, ``author``, ``content.attachment``, ``context.encounter``)
when the upload named a patient; without one it is a valid base-R4 resource that does
not claim the profile (US Core requires ``subject``), and summary.json says so.
``docStatus`` is ``preliminary``: a machine transcription no clinician has signed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from .clinical_context import ClinicalContext

US_CORE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
LOINC = "http://loinc.org"
FORMAT_CODES = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
JOB_NAME_SYSTEM = "urn:medical-transcription:job-name"
# Stable ids: the same job always gets the same resource id (a name-based UUID).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:medical-transcription:document-reference")
MACHINE_NOTE = "Machine transcription by Amazon Transcribe Medical, not reviewed by a clinician."


def document_id(job_name: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, job_name))


def us_core_missing(ctx: ClinicalContext) -> list[str]:
    """US Core elements this document lacks for want of metadata (required ones first)."""
    missing = [] if ctx.patient_id else ["subject"]
    missing += [] if ctx.author else ["author"]
    missing += [] if ctx.encounter_id else ["context.encounter"]
    return missing


def build_document_reference(
    ctx: ClinicalContext, *, text: bytes, redacted: bool, emulated_note: str
) -> dict[str, Any]:
    """The resource as a dict; ``text``: the plain-text document's bytes (UTF-8)."""
    fmt = {"system": FORMAT_CODES, "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}
    attachment: dict[str, Any] = {
        "contentType": "text/plain; charset=utf-8",
        "language": "en-US",
        "data": base64.b64encode(text).decode("ascii"),
        "size": len(text),
        "hash": base64.b64encode(hashlib.sha1(text, usedforsecurity=False).digest()).decode(),
        "title": "Transcript (PHI redacted)" if redacted else "Transcript",
    }
    if ctx.document_time:
        attachment["creation"] = _instant(ctx.document_time)
    content = [{"attachment": attachment, "format": fmt}]
    if ctx.transcript_uri:
        raw = {
            "contentType": "application/json",
            "url": ctx.transcript_uri,
            "title": "Amazon Transcribe Medical transcript JSON",
        }
        content.append({"attachment": raw, "format": fmt})
    type_coding: dict[str, Any] = {"system": LOINC, "code": ctx.note_type}
    if ctx.note_type_name:
        type_coding["display"] = ctx.note_type_name
    notes = [emulated_note] if emulated_note else []
    notes.append(MACHINE_NOTE)
    if redacted:
        notes.append("PHI that Transcribe Medical identified is replaced by its category.")
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": document_id(ctx.job_name),
        "masterIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": f"urn:uuid:{document_id(ctx.job_name)}",
        },
        "identifier": [{"system": JOB_NAME_SYSTEM, "value": ctx.job_name}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [type_coding]},
        "category": [
            {
                "coding": [
                    {
                        "system": US_CORE_CATEGORY,
                        "code": "clinical-note",
                        "display": "Clinical Note",
                    }
                ]
            }
        ],
        "description": " ".join(notes),
        "content": content,
    }
    if ctx.patient_id:
        resource["meta"] = {"profile": [US_CORE_PROFILE]}
        resource["subject"] = {"reference": f"Patient/{ctx.patient_id}"}
    if ctx.document_time:
        resource["date"] = _instant(ctx.document_time)
    if ctx.author:
        resource["author"] = [{"display": ctx.author}]
    if ctx.encounter_id:
        resource["context"] = {"encounter": [{"reference": f"Encounter/{ctx.encounter_id}"}]}
    return resource


def render_document_reference(resource: dict[str, Any]) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
