"""Contract 3's layout as pure functions: one folder per upload, by job name past S3's limit."""

from __future__ import annotations

import pytest

from pipeline.output_layout import (
    MAX_KEY_BYTES,
    document_keys,
    documents_folder,
    input_revision,
    transcript_key_for,
)

JOB = "medscribe-dev-" + "a" * 40
NAMES = ("transcript.txt", "summary.json")


def folder(key: str, revision: str = "v1", names: tuple[str, ...] = NAMES) -> str:
    return documents_folder(input_key=key, revision=revision, job_name=JOB, document_names=names)


def test_the_folder_keeps_the_extension_and_the_revision():
    assert folder("conversation/a b.wav") == "transcripts/conversation/a b.wav/v1/"
    assert folder("conversation/a b.mp3") == "transcripts/conversation/a b.mp3/v1/"
    assert folder("conversation/a b.wav", "v2") == "transcripts/conversation/a b.wav/v2/"
    assert folder("noext") == "transcripts/noext/v1/"


def test_the_raw_transcript_key():
    assert transcript_key_for(JOB) == f"medical/{JOB}.json"


@pytest.mark.parametrize(
    ("item", "revision"),
    [
        ({"input_version": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "input_etag": "e"}, None),
        ({"input_version": None, "input_etag": '"0cc175b9"'}, "etag-0cc175b9"),
        ({"input_version": "null", "input_etag": "0cc175b9"}, "etag-0cc175b9"),
        ({}, JOB),
    ],
)
def test_the_revision_is_the_version_else_the_etag_else_the_job_name(item, revision):
    expected = revision or item["input_version"]
    assert input_revision({"job_name": JOB, **item}) == expected


def test_a_key_exactly_at_the_limit_stays_and_one_byte_more_goes_by_job():
    names = ("captions.vtt", "document-reference.json")
    fixed = len("transcripts/") + len("/v1/") + len("document-reference.json")
    key = "患" * ((MAX_KEY_BYTES - fixed) // 3) + "é" * ((MAX_KEY_BYTES - fixed) % 3 // 2)
    key += "x" * (MAX_KEY_BYTES - fixed - len(key.encode()))
    at_limit = folder(key, names=names)
    assert len((at_limit + "document-reference.json").encode()) == MAX_KEY_BYTES
    assert at_limit == f"transcripts/{key}/v1/"
    assert folder(key + "x", names=names) == f"transcripts/_by-job/{JOB}/"
    # a shorter set of names would have fitted: the longest document decides for the job
    assert folder(key + "x", names=("captions.vtt",)) == f"transcripts/{key}x/v1/"


@pytest.mark.parametrize("revision", ["a/b", ".", "..", ""])
def test_a_revision_that_is_not_one_segment_goes_by_job(revision):
    assert folder("k.wav", revision) == f"transcripts/_by-job/{JOB}/"


@pytest.mark.parametrize("name", ["a/b.txt", "", ".."])
def test_a_document_name_must_be_one_segment(name):
    with pytest.raises(ValueError, match="one path segment"):
        folder("k.wav", names=(name,))


def test_document_keys_cover_every_document_in_one_folder():
    names = [f"doc{i}.txt" for i in range(12)]  # however many documents there are
    keys = document_keys({"job_name": JOB, "input_key": "d/x.flac", "input_version": "v9"}, names)
    assert keys == {name: f"transcripts/d/x.flac/v9/{name}" for name in names}
