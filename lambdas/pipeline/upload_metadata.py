"""Integrator metadata on an upload (contract 6): validated, or refused whole.

S3 user metadata arrives from ``HeadObject``/``GetObject`` as boto3's ``Metadata``
dict: keys lower-cased, without the ``x-amz-meta-`` prefix. Four keys matter:
``patient-id``, ``encounter-id``, ``author`` and ``note-type``; others are ignored.
Values are PHI: error messages name the field and the rule, never the value.

The start path calls :func:`read_upload_metadata` where it already reads the
object; a :class:`MetadataError` means the upload is ``REJECTED`` with
``str(error)`` as its ``failure_reason``, and none of the fields is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

META_PREFIX = "x-amz-meta-"
PATIENT_ID = "patient-id"
ENCOUNTER_ID = "encounter-id"
AUTHOR = "author"
NOTE_TYPE = "note-type"
FIELDS = (PATIENT_ID, ENCOUNTER_ID, AUTHOR, NOTE_TYPE)

# Ids become FHIR references (Patient/<id>) and HL7 CX values, so they follow the FHIR id
# rule, which also keeps every HL7 delimiter out of them.
ID_PATTERN = re.compile(r"[A-Za-z0-9.\-]{1,64}")
ID_RULE = "1-64 characters, each a letter, digit, '.' or '-'"
AUTHOR_MAX = 200
LOINC_PATTERN = re.compile(r"(\d{1,7})-(\d)")

# Defaults by job type (LOINC document codes): a clinician's dictation is the progress
# note of a visit; a recorded conversation is not itself any particular kind of note,
# so it gets LOINC's generic "Note" rather than a type it would misstate.
PROGRESS_NOTE = "11506-3"
GENERIC_NOTE = "34109-9"
DEFAULT_NOTE_TYPES = {"DICTATION": PROGRESS_NOTE, "CONVERSATION": GENERIC_NOTE}
NOTE_TYPE_NAMES = {
    PROGRESS_NOTE: "Progress note",
    GENERIC_NOTE: "Note",
    "11488-4": "Consult note",
    "18842-5": "Discharge summary",
    "34117-2": "History and physical note",
    "28570-0": "Procedure note",
}


class MetadataError(ValueError):
    """An upload's metadata breaks a rule. The text names the field, never its value."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"S3 metadata {META_PREFIX}{field} {rule}")
        self.field = field


@dataclass(frozen=True)
class UploadMetadata:
    patient_id: str | None
    encounter_id: str | None
    author: str | None
    note_type: str  # a LOINC document code, given or the default for the job type
    note_type_given: bool

    def index_fields(self) -> dict[str, str]:
        """Attributes for the job index item (absent values left out, as DynamoDB prefers)."""
        fields = {
            "patient_id": self.patient_id,
            "encounter_id": self.encounter_id,
            "author": self.author,
            "note_type": self.note_type,
        }
        return {key: value for key, value in fields.items() if value is not None}


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the code's number part ("11506" -> 3)."""
    digits = number[::-1]  # positions counted from the right, the rightmost is 1
    doubled = str(int(digits[0::2][::-1]) * 2)
    others = digits[1::2][::-1]
    total = sum(int(d) for d in others + doubled)
    return (10 - total % 10) % 10


def is_loinc_code(code: str) -> bool:
    match = LOINC_PATTERN.fullmatch(code)
    return match is not None and loinc_check_digit(match.group(1)) == int(match.group(2))


def default_note_type(job_type: str) -> str:
    """The LOINC document code for a job type (unknown types: the generic note)."""
    return DEFAULT_NOTE_TYPES.get(job_type.upper(), GENERIC_NOTE)


def read_upload_metadata(metadata: Mapping[str, str] | None, *, job_type: str) -> UploadMetadata:
    """Validated integrator fields from an object's user metadata.

    ``metadata``: boto3's ``Metadata`` (keys may also carry the ``x-amz-meta-`` prefix
    or upper case, as a sidecar or a CLI may write them). ``job_type``: DICTATION or
    CONVERSATION, for the default note type. Raises MetadataError on the first bad field.
    """
    values = _known_fields(metadata or {})
    patient_id = _identifier(values, PATIENT_ID)
    encounter_id = _identifier(values, ENCOUNTER_ID)
    author = _author(values)
    note_type = values.get(NOTE_TYPE)
    if note_type is not None and not is_loinc_code(note_type):
        raise MetadataError(
            NOTE_TYPE,
            "is not a LOINC code; allowed: digits, '-', and LOINC's check digit "
            f"(for example {PROGRESS_NOTE} for a progress note)",
        )
    return UploadMetadata(
        patient_id=patient_id,
        encounter_id=encounter_id,
        author=author,
        note_type=note_type or default_note_type(job_type),
        note_type_given=note_type is not None,
    )


def _known_fields(metadata: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw_key, value in metadata.items():
        key = str(raw_key).lower()
        key = key.removeprefix(META_PREFIX)
        if key not in FIELDS:
            continue
        if key in values:
            raise MetadataError(key, "is given twice; give it once")
        if not isinstance(value, str):
            raise MetadataError(key, "is not text")
        values[key] = value
    return values


def _identifier(values: Mapping[str, str], field: str) -> str | None:
    value = values.get(field)
    if value is None:
        return None
    if not ID_PATTERN.fullmatch(value):
        raise MetadataError(field, f"is {_describe(value)}; allowed: {ID_RULE}")
    return value


def _author(values: Mapping[str, str]) -> str | None:
    value = values.get(AUTHOR)
    if value is None:
        return None
    allowed = f"1-{AUTHOR_MAX} characters without control characters or surrounding spaces"
    if not value or len(value) > AUTHOR_MAX or value != value.strip():
        raise MetadataError(AUTHOR, f"is {_describe(value)}; allowed: {allowed}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise MetadataError(AUTHOR, f"holds a control character; allowed: {allowed}")
    return value


def _describe(value: str) -> str:
    """What is wrong, in terms that never quote the value."""
    if not value:
        return "empty"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        return "holding a control character"
    if value != value.strip():
        return "surrounded by spaces"
    return f"{len(value)} characters long" if len(value) > 64 else "holding other characters"
