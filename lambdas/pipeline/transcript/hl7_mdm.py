"""mdm-t02.hl7: an HL7 v2.5.1 MDM^T02 (original document notification with content).

Segments: MSH, EVN, PID (PID-3: the patient id, identifier type MR), PV1 (PV1-19: the
encounter id), TXA (TXA-2 the LOINC note type, TXA-12 the job name as the unique
document number, TXA-17 ``DO``: documented, not yet signed), then one OBX (value type
TX, OBX-3 the LOINC note type, OBX-11 ``P``: preliminary) per line of the text.
Segments end with a carriage return, as HL7 v2 requires. Text is escaped as HL7 v2
says: ``\\E\\ \\F\\ \\S\\ \\T\\ \\R\\`` for the delimiters and ``\\Xhh\\`` for control
characters, so any text survives; :func:`unescape` reverses it.

The patient's name is not known (and not wanted): PID-5 holds an empty name of type
``U`` (unspecified), which fills the required field without asserting a name.
Written by hand: HL7 libraries parse and validate well but build slowly, and this is
a fixed layout of a few segments.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from .clinical_context import ClinicalContext

SENDING_APPLICATION = "MED-TRANSCRIPTION"  # HD.1: 20 characters at most
SENDING_FACILITY = "TRANSCRIBE-MEDICAL"
MAX_EI = 199  # EI.1's length in v2.5.1
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # every control character but \n
_ESCAPE_SEQUENCE = re.compile(r"\\(E|F|S|T|R|X[0-9A-Fa-f]+|\.br)\\")
_UNESCAPES = {"E": "\\", "F": "|", "S": "^", "T": "&", "R": "~", ".br": "\n"}


def escape(text: str) -> str:
    """``text`` safe inside one HL7 field component (line breaks included, as \\X0A\\)."""
    return _escape_keeping_lines(text).replace("\n", "\\X0A\\")


def _escape_keeping_lines(text: str) -> str:
    for char, sequence in _ESCAPES:
        if char in text:
            text = text.replace(char, sequence)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"\\X{ord(m.group()):02X}\\", text)
    return text


def unescape(value: str) -> str:
    """The text an escaped HL7 value stands for."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "X":
            return bytes.fromhex(code[1:]).decode("latin-1")
        return _UNESCAPES[code]

    return _ESCAPE_SEQUENCE.sub(one, value)


def control_id(job_name: str) -> str:
    """MSH-10 (20 characters at most): a digest of the job name, the same on every run."""
    return hashlib.sha256(job_name.encode()).hexdigest()[:20]


def document_number(job_name: str) -> str:
    return job_name if len(job_name) <= MAX_EI else hashlib.sha256(job_name.encode()).hexdigest()


def build_mdm_t02(ctx: ClinicalContext, *, text: str) -> str:
    """The message; ``text``: the document's lines (each becomes one OBX)."""
    moment = ctx.document_time or datetime.now(UTC)  # callers pass completed_at; be safe
    stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    origin = (ctx.created_at or moment).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    author = f"^{escape(ctx.author)}" if ctx.author else ""
    code = escape(ctx.note_type)
    observation = f"{code}^{escape(ctx.note_type_name or '')}^LN"
    segments = [
        f"MSH|^~\\&|{SENDING_APPLICATION}|{SENDING_FACILITY}|||{stamp}||MDM^T02^MDM_T02|"
        f"{control_id(ctx.job_name)}|P|2.5.1",
        f"EVN|T02|{stamp}",
        f"PID|1||{f'{ctx.patient_id}^^^^MR' if ctx.patient_id else ''}||^^^^^^U",
        f"PV1|1|U{'|' * 17}{ctx.encounter_id}" if ctx.encounter_id else "PV1|1|U",
        f"TXA|1|{code}|TX|{stamp}|{author}|{origin}|||{author}|||"
        f"{document_number(ctx.job_name)}|||||DO",
    ]
    lines = _escape_keeping_lines(text.rstrip("\n")).split("\n") if text else []
    segments.extend(f"OBX|{n}|TX|{observation}||{line}||||||P" for n, line in enumerate(lines, 1))
    return "\r".join(segments) + "\r"
