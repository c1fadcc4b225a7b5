"""Integrator documents (contract 6): turns.json, FHIR DocumentReference, HL7 MDM^T02,
low-confidence marks, and the emulator's mark, on real transcripts and generated ones."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from devkit import transcript_samples
from pipeline.transcript import DOCUMENT_NAMES, EMULATED_MARKER_KEY, render_documents
from pipeline.transcript.clinical_context import clinical_context
from pipeline.transcript.dialogue import LOW_CONFIDENCE_MARK
from pipeline.transcript.hl7_mdm import build_mdm_t02, escape, unescape
from pipeline.upload_metadata import GENERIC_NOTE, PROGRESS_NOTE

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference-transcripts"
REFERENCE_FILES = sorted(p.name for p in REFERENCE.glob("*.json"))
TURN_LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d) - (\d\d):(\d\d):(\d\d)\] (.*)$")
METADATA = {
    "patient_id": "pat-0042",
    "encounter_id": "enc-7.1",
    "author": "Dr. Ana Lee",
    "note_type": "11488-4",
}
BASE_JOB = {
    "job_name": "medscribe-dev-0123abcd",
    "type": "CONVERSATION",
    "created_at": "2026-11-02T10:10:00Z",
    "completed_at": "2026-11-02T10:15:30.250000+00:00",
    "transcript_key": "medical/medscribe-dev-0123abcd.json",
    "output_bucket": "output-bucket",
}


def conversation(**options: Any) -> dict[str, Any]:
    return transcript_samples.make_transcript(
        **{
            "job_name": "medscribe-dev-0123abcd",
            "utterances": [
                (0, "Good morning. How is the cough?"),
                (1, "Better, thanks. It keeps me up at night."),
                (0, "Keep taking the syrup, twice a day."),
            ],
            "emulated": False,
            **options,
        }
    )


def render(doc: dict[str, Any] | bytes, **kwargs: Any) -> Any:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return render_documents(data, job=kwargs.pop("job", BASE_JOB), **kwargs)


def reference(name: str) -> bytes:
    return (REFERENCE / name).read_bytes()


def seconds(h: str, m: str, s: str) -> int:
    return int(h) * 3600 + int(m) * 60 + int(s)


# --- turns.json and dialogue.txt ----------------------------------------------------------------


def test_all_sixteen_reference_transcripts_are_read() -> None:
    assert len(REFERENCE_FILES) == 16


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_turns_match_dialogue_lines(name: str) -> None:
    rendered = render(reference(name))
    turns = json.loads(rendered.files["turns.json"])["turns"]
    lines = rendered.files["dialogue.txt"].decode().splitlines()

    assert len(turns) == len(lines)
    assert sum(t["words"] for t in turns) == rendered.stats["words"]
    for turn, line in zip(turns, lines, strict=True):
        match = TURN_LINE.match(line)
        assert match, line
        assert seconds(*match.groups()[0:3]) == int(turn["start"])
        assert seconds(*match.groups()[3:6]) == int(turn["end"])
        assert (
            turn["start"] <= turn["end"] or turn["words"] == 1
        )  # one file has a word ending early
        assert 0.0 <= turn["mean_confidence"] <= 1.0
        spoken = match.group(7).replace(LOW_CONFIDENCE_MARK, "")
        assert spoken.endswith(turn["text"])
        if turn["name"]:
            assert spoken == f"{turn['name']}: {turn['text']}"
        for word in turn["low_confidence_words"]:
            assert turn["start"] <= word["start"]
            assert word["confidence"] < 0.5


def test_low_confidence_words_are_marked_in_dialogue_and_listed_in_turns() -> None:
    rendered = render(reference("sanupyadav-aws-hi.from-php.json"))
    dialogue = rendered.files["dialogue.txt"].decode()
    turns = json.loads(rendered.files["turns.json"])["turns"]
    low = sum(len(t["low_confidence_words"]) for t in turns)

    assert low == rendered.stats["low_confidence_words"] > 100
    assert dialogue.count(LOW_CONFIDENCE_MARK) == low


def test_mark_goes_between_the_word_and_its_punctuation() -> None:
    rendered = render(conversation(), low_confidence_threshold=1.0)
    dialogue = rendered.files["dialogue.txt"].decode()

    assert "cough(?)?" in dialogue
    assert "syrup(?)," in dialogue
    assert dialogue.count(LOW_CONFIDENCE_MARK) == rendered.stats["low_confidence_words"] > 10


# --- FHIR DocumentReference ---------------------------------------------------------------------


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_document_reference_is_valid_r4_without_metadata(name: str) -> None:
    rendered = render(reference(name))
    resource = json.loads(rendered.files["document-reference.json"])

    DocumentReference.model_validate(resource)  # raises on an invalid resource
    assert "subject" not in resource
    assert "meta" not in resource
    assert (
        base64.b64decode(resource["content"][0]["attachment"]["data"])
        == (rendered.files["transcript.txt"])
    )
    integration = json.loads(rendered.files["summary.json"])["integration"]
    assert integration["fhir_us_core_conformant"] is False
    assert integration["fhir_us_core_missing"][0] == "subject"


def test_document_reference_with_metadata_meets_us_core_must_support() -> None:
    rendered = render(conversation(), job={**BASE_JOB, **METADATA})
    resource = json.loads(rendered.files["document-reference.json"])
    model = DocumentReference.model_validate(resource)

    assert resource["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"
    ]
    assert model.status == "current"
    assert model.type.coding[0].system == "http://loinc.org"
    assert model.type.coding[0].code == "11488-4"
    category = model.category[0].coding[0]
    assert (category.system, category.code) == (
        "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
        "clinical-note",
    )
    assert model.subject.reference == "Patient/pat-0042"
    assert model.context.encounter[0].reference == "Encounter/enc-7.1"
    assert model.author[0].display == "Dr. Ana Lee"
    assert resource["date"] == "2026-11-02T10:15:30.250Z"
    text_part, raw_part = model.content
    assert text_part.attachment.contentType.startswith("text/plain")
    assert text_part.attachment.data
    assert text_part.format.code
    assert raw_part.attachment.url == "s3://output-bucket/medical/medscribe-dev-0123abcd.json"
    assert resource["identifier"][0]["value"] == "medscribe-dev-0123abcd"
    summary = json.loads(rendered.files["summary.json"])
    assert summary["integration"]["fhir_us_core_conformant"] is True
    assert "pat-0042" not in rendered.files["summary.json"].decode()  # flags only


def test_document_reference_id_is_stable_per_job_and_differs_between_jobs() -> None:
    first = json.loads(render(conversation()).files["document-reference.json"])
    again = json.loads(render(conversation(seed=5)).files["document-reference.json"])
    other = json.loads(
        render(conversation(), job={**BASE_JOB, "job_name": "medscribe-dev-ffff"}).files[
            "document-reference.json"
        ]
    )
    assert first["id"] == again["id"] != other["id"]


@pytest.mark.parametrize(
    ("job_type", "code"), [("DICTATION", PROGRESS_NOTE), ("CONVERSATION", GENERIC_NOTE)]
)
def test_note_type_defaults_follow_the_job_type(job_type: str, code: str) -> None:
    rendered = render(conversation(), job={**BASE_JOB, "type": job_type})
    resource = json.loads(rendered.files["document-reference.json"])
    assert resource["type"]["coding"][0]["code"] == code
    assert f"|TX|{code}^" in rendered.files["mdm-t02.hl7"].decode()


# --- HL7 v2.5.1 MDM^T02 -------------------------------------------------------------------------


def parsed_hl7(message: bytes | str) -> Any:
    text = message.decode() if isinstance(message, bytes) else message
    return parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)


def obx_text(message: Any) -> str:
    """The text the OBX segments carry (OBX-5 of each, unescaped, one line each)."""
    values = [
        group.obx.obx_5.to_er7() if group.obx.obx_5 else ""
        for group in message.children
        if group.name == "MDM_T02_OBXNTE_SUPPGRP"
    ]
    return "\n".join(unescape(v) for v in values)


def raw_obx_text(message: str) -> str:
    """The same from the raw segments: OBX-5 is the sixth |-field of each OBX."""
    segments = [s.split("|") for s in message.split("\r") if s.startswith("OBX|")]
    return "\n".join(unescape(fields[5]) for fields in segments)


def test_mdm_with_metadata_parses_and_validates() -> None:
    rendered = render(conversation(), job={**BASE_JOB, **METADATA, "author": "Lee^Ana & Co|x"})
    message = parsed_hl7(rendered.files["mdm-t02.hl7"])

    assert message.validate() is True
    assert message.msh.msh_9.to_er7() == "MDM^T02^MDM_T02"
    assert message.msh.msh_12.to_er7() == "2.5.1"
    assert message.pid.pid_3.to_er7() == "pat-0042^^^^MR"
    assert message.pv1.pv1_19.to_er7() == "enc-7.1"
    assert message.txa.txa_12.to_er7() == "medscribe-dev-0123abcd"
    assert message.txa.txa_17.to_er7() == "DO"
    assert unescape(message.txa.txa_9.xcn_2.to_er7()) == "Lee^Ana & Co|x"
    assert obx_text(message) == rendered.files["transcript.txt"].decode().rstrip("\n")


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_mdm_carries_each_reference_transcript(name: str) -> None:
    rendered = render(reference(name), job={**BASE_JOB, **METADATA})
    message = parsed_hl7(rendered.files["mdm-t02.hl7"])

    assert message.validate() is True
    assert obx_text(message) == rendered.files["transcript.txt"].decode().rstrip("\n")


def test_hl7_escaping_round_trips_delimiters_and_line_breaks() -> None:
    text = "a|b^c~d\\e&f\nsecond line \\F\\ literal\r\nthird\x07bell\n\nafter a blank line"
    ctx = clinical_context({**BASE_JOB, **METADATA}, fallback_job_name="x")
    raw = build_mdm_t02(ctx, text=text)
    message = parsed_hl7(raw)

    assert message.validate() is True
    assert raw_obx_text(raw) == text
    assert len([s for s in raw.split("\r") if s.startswith("OBX|")]) == text.count("\n") + 1
    assert unescape(escape(text)) == text
    assert "\n" not in escape(text)
    assert "|" not in escape(text)


def test_mdm_without_patient_is_parsed_but_flagged() -> None:
    rendered = render(conversation())
    message = parsed_hl7(rendered.files["mdm-t02.hl7"])  # parses; PID-3 is empty
    assert message.pid.pid_3.to_er7() == ""
    assert (
        json.loads(rendered.files["summary.json"])["integration"]["hl7_patient_identified"] is False
    )


# --- Emulated transcripts -----------------------------------------------------------------------


def test_every_document_of_an_emulated_transcript_says_its_words_are_invented() -> None:
    doc = conversation(emulated=True, identify_phi=True)
    assert EMULATED_MARKER_KEY in doc
    rendered = render(doc, redact_phi=True)

    summary = json.loads(rendered.files["summary.json"])
    assert summary["emulated"] is True
    for name, body in rendered.files.items():
        if name == "document-reference.json":
            assert "invented" in json.loads(body)["description"]
        elif name == "mdm-t02.hl7":
            assert "invented" in obx_text(parsed_hl7(body))
        else:
            assert b"invented" in body, name


def test_real_transcripts_are_not_marked_emulated() -> None:
    rendered = render(reference("kibaffo33-03-speaker-identification.excerpt.json"))
    assert json.loads(rendered.files["summary.json"])["emulated"] is False
    assert all(b"invented" not in body for body in rendered.files.values())
    assert set(rendered.files) == set(DOCUMENT_NAMES)


@pytest.mark.parametrize("duration_s", [0.6, 2.0, 5.0, 30.0])
def test_emulated_words_never_run_past_the_audio(duration_s: float) -> None:
    doc = conversation(duration_s=duration_s, identify_phi=True)
    ends = [float(i["end_time"]) for i in doc["results"]["items"] if "end_time" in i]

    assert all(end <= duration_s for end in ends)
    assert all(e["endTime"] <= duration_s for e in doc["results"].get("entities", []))
    if duration_s >= 30.0:  # room for the whole script
        assert len(ends) == 21


def test_duration_must_be_positive() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        conversation(duration_s=0)
