"""Integrator metadata on uploads: validated whole, errors name the field and never the value."""

from __future__ import annotations

import pytest

from pipeline.upload_metadata import (
    GENERIC_NOTE,
    PROGRESS_NOTE,
    MetadataError,
    is_loinc_code,
    read_upload_metadata,
)

SECRET = "Jane-Doe-1962"


def test_all_fields_valid_become_index_fields() -> None:
    meta = read_upload_metadata(
        {
            "patient-id": "pat-123",
            "encounter-id": "enc.9",
            "author": "Dr. Ana Lee",
            "note-type": "11488-4",
            "other": "ignored",
        },
        job_type="CONVERSATION",
    )
    assert meta.index_fields() == {
        "patient_id": "pat-123",
        "encounter_id": "enc.9",
        "author": "Dr. Ana Lee",
        "note_type": "11488-4",
    }
    assert meta.note_type_given


@pytest.mark.parametrize(
    ("job_type", "code"), [("DICTATION", PROGRESS_NOTE), ("CONVERSATION", GENERIC_NOTE)]
)
def test_note_type_defaults_by_job_type(job_type: str, code: str) -> None:
    meta = read_upload_metadata(None, job_type=job_type)
    assert meta.index_fields() == {"note_type": code}
    assert not meta.note_type_given


def test_prefixed_and_upper_case_keys_are_read() -> None:
    meta = read_upload_metadata({"X-Amz-Meta-Patient-Id": "p1"}, job_type="DICTATION")
    assert meta.patient_id == "p1"


@pytest.mark.parametrize("code", ["11506-3", "34109-9", "11488-4", "18842-5", "34117-2"])
def test_real_loinc_codes_pass_the_check_digit(code: str) -> None:
    assert is_loinc_code(code)


@pytest.mark.parametrize("code", ["11506-4", "11506", "ABC-1", "12345678-9", " 11506-3"])
def test_wrong_loinc_codes_fail(code: str) -> None:
    assert not is_loinc_code(code)


@pytest.mark.parametrize(
    ("metadata", "field", "words"),
    [
        ({"patient-id": SECRET + "x" * 60}, "patient-id", "characters long"),
        ({"patient-id": "Jane Doe"}, "patient-id", "letter, digit"),
        ({"encounter-id": ""}, "encounter-id", "empty"),
        ({"author": "Dr. Who\nDROP"}, "author", "control character"),
        ({"author": "Dr. Who\u200b"}, "author", "control character"),
        ({"author": "x" * 201}, "author", "201 characters"),
        ({"author": " Dr. Who"}, "author", "spaces"),
        ({"note-type": "11506-4"}, "note-type", "LOINC"),
        ({"patient-id": "a", "x-amz-meta-patient-id": "b"}, "patient-id", "twice"),
    ],
)
def test_bad_values_name_the_field_and_never_quote_the_value(
    metadata: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(MetadataError) as caught:
        read_upload_metadata(metadata, job_type="DICTATION")
    message = str(caught.value)
    assert caught.value.field == field
    assert f"x-amz-meta-{field}" in message
    assert words in message
    assert "allowed" in message or "twice" in message
    for value in metadata.values():
        if len(value) > 3:
            assert value.strip() not in message


def test_one_bad_field_refuses_the_whole_metadata() -> None:
    with pytest.raises(MetadataError):
        read_upload_metadata({"patient-id": "ok-1", "author": "bad\x00"}, job_type="DICTATION")
