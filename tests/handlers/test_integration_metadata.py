"""Contract 6 through the handlers on moto: upload metadata in, integrator documents out."""

from __future__ import annotations

import json
from typing import Any

import pytest

import post_process
import start_job
from devkit.lambda_events import s3_notification, transcribe_state_change
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator

from .conftest import Env

WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=30.0)
METADATA = {
    "patient-id": "pat-4711",
    "encounter-id": "enc-0815",
    "author": "Dr. Ada Quill",
    "note-type": "11488-4",
}


def upload(env: Env, key: str, metadata: dict[str, str], lambda_context: Any) -> dict[str, Any]:
    response = env.s3.put_object(
        Bucket=env.stack.input_bucket, Key=key, Body=WAV, Metadata=metadata
    )
    note = s3_notification(
        bucket=env.stack.input_bucket,
        key=key,
        size=len(WAV),
        version_id=response.get("VersionId"),
        etag=response["ETag"].strip('"'),
    )
    assert start_job.handler(env.event(note), lambda_context) == {"batchItemFailures": []}
    return next(i for i in env.items() if i["input_key"] == key)


def read_json(env: Env, key: str) -> Any:
    body = env.s3.get_object(Bucket=env.stack.output_bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_metadata_is_validated_stored_and_carried_into_fhir_and_hl7(
    env: Env, lambda_context, captured_logs
):
    # Given an upload that names its patient, encounter, author and note type
    item = upload(env, "conversation/consult.wav", METADATA, lambda_context)
    # Then the index item holds them (PHI: encrypted table), and the job is started
    assert item["status"] == "QUEUED"
    assert item["patient_id"] == "pat-4711"
    assert item["encounter_id"] == "enc-0815"
    assert item["author"] == "Dr. Ada Quill"
    assert item["note_type"] == "11488-4"
    # When the job completes
    TranscribeMedicalEmulator(s3=env.s3).complete(item["job_name"])
    event = transcribe_state_change(job_name=item["job_name"], status="COMPLETED")
    assert post_process.handler(event, lambda_context)["outcome"] == "COMPLETED"
    done = env.item(item["job_name"])
    # Then the FHIR DocumentReference points at the patient and the encounter
    reference = read_json(env, done["outputs"]["document-reference.json"])
    assert reference["resourceType"] == "DocumentReference"
    assert reference["subject"]["reference"] == "Patient/pat-4711"
    assert reference["context"]["encounter"][0]["reference"] == "Encounter/enc-0815"
    assert reference["type"]["coding"][0]["code"] == "11488-4"
    # And the HL7 message carries the patient id in PID-3
    hl7 = env.s3.get_object(Bucket=env.stack.output_bucket, Key=done["outputs"]["mdm-t02.hl7"])
    segments = hl7["Body"].read().decode().split("\r")
    pid = next(s for s in segments if s.startswith("PID|"))
    assert "pat-4711" in pid.split("|")[3]
    # And none of the metadata reached the logs
    logs = captured_logs.getvalue()
    assert "pat-4711" not in logs
    assert "Ada Quill" not in logs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("patient-id", "x" * 65),
        ("patient-id", "has space"),
        ("note-type", "11488-5"),  # wrong LOINC check digit
        ("author", "Dr. Quill\tEsq."),  # a control character
    ],
)
def test_bad_metadata_rejects_the_upload_naming_the_field_and_keeping_none_of_it(
    env: Env, lambda_context, field, value
):
    item = upload(env, "dictation/note.wav", {**METADATA, field: value}, lambda_context)
    assert item["status"] == "REJECTED"
    assert f"x-amz-meta-{field}" in item["failure_reason"]
    assert value not in item["failure_reason"]
    for stored in ("patient_id", "encounter_id", "author", "note_type"):
        assert stored not in item
    assert env.start_requests == []


def test_without_metadata_the_note_type_follows_the_job_type(env: Env, lambda_context):
    dictation = upload(env, "dictation/note.wav", {}, lambda_context)
    conversation = upload(env, "conversation/visit.wav", {}, lambda_context)
    assert dictation["note_type"] == "11506-3"  # Progress note
    assert conversation["note_type"] == "34109-9"  # Note
    assert "patient_id" not in dictation
