"""delete (data-retention requests) and download."""

from __future__ import annotations

import stat
from pathlib import Path

from .conftest import DOCUMENTS, FakeTerminal, Pipeline

FOLDER = "transcripts/conversation/clinic/visit 1/"
KEY = "conversation/clinic/visit 1.wav"


def add_history(pipeline: Pipeline, name: str) -> None:
    """Older versions and a delete marker, as rewrites and deletions leave them."""
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    s3.put_object(Bucket=bucket, Key=f"{FOLDER}transcript.txt", Body=b"an older rendering")
    s3.put_object(Bucket=bucket, Key=f"medical/{name}.json", Body=b"{}")
    s3.delete_object(Bucket=bucket, Key=f"{FOLDER}captions.srt")  # a delete marker
    s3.put_object(Bucket=bucket, Key=f"{FOLDER}notes-by-a-person.txt", Body=b"not a document")


def test_delete_removes_every_version_the_item_and_the_transcribe_record(pipeline: Pipeline):
    name = pipeline.completed(KEY)
    other = pipeline.completed("conversation/other.wav")
    add_history(pipeline, name)
    assert len(pipeline.output_versions(FOLDER)) == 8  # 5 + 1 older + 1 marker + the note
    # When the operator deletes the job
    result = pipeline.cli("delete", name, "--yes")
    assert result.code == 0, result.err
    # Then every version and marker of its transcript and documents is gone
    assert pipeline.output_versions(f"medical/{name}.json") == []
    assert pipeline.output_versions(FOLDER) == [(f"{FOLDER}notes-by-a-person.txt", False)]
    assert pipeline.item(name) is None
    assert not pipeline.transcribe_has(name)
    # And the input audio and other jobs are untouched
    head = pipeline.env.s3.head_object(Bucket=pipeline.stack.input_bucket, Key=KEY)
    assert head["ContentLength"] > 0
    assert pipeline.item(other) is not None
    assert pipeline.transcribe_has(other)
    assert len(pipeline.output_versions("transcripts/conversation/other/")) == 5
    # And it said what it deleted
    assert "output objects: 8 versions, 1 delete marker" in result.out
    assert "Transcribe job record: deleted" in result.out
    assert "index item: deleted" in result.out
    assert f"{FOLDER}summary.json" in result.out
    assert "the input audio is kept" in result.out


def test_delete_asks_on_a_terminal(pipeline: Pipeline, monkeypatch):
    name = pipeline.completed(KEY)
    monkeypatch.setattr("sys.stdin", FakeTerminal("n\n"))
    declined = pipeline.cli("delete", name)
    assert declined.code == 1
    assert f"Delete job {name}? [y/N]" in declined.err
    assert "aborted: nothing deleted" in declined.err
    assert pipeline.item(name) is not None
    assert len(pipeline.output_versions(FOLDER)) == 5
    monkeypatch.setattr("sys.stdin", FakeTerminal("yes\n"))
    assert pipeline.cli("delete", name).code == 0
    assert pipeline.item(name) is None
    assert pipeline.output_versions(FOLDER) == []


def test_delete_without_yes_and_without_a_terminal_refuses(pipeline: Pipeline):
    name = pipeline.completed(KEY)
    result = pipeline.cli("delete", name)
    assert result.code == 2
    assert result.err == (
        "jobctl: error: not confirmed: stdin is not a terminal, pass --yes to delete\n"
    )
    assert pipeline.item(name) is not None
    assert pipeline.transcribe_has(name)
    assert len(pipeline.output_versions(FOLDER)) == 5


def test_delete_include_input_removes_only_the_jobs_version(pipeline: Pipeline):
    first = pipeline.failed(KEY)
    second = pipeline.completed(KEY)  # another version of the same key
    first_item, second_item = pipeline.item(first), pipeline.item(second)
    assert first_item is not None
    assert second_item is not None
    result = pipeline.cli("delete", first, "--yes", "--include-input")
    assert result.code == 0, result.err
    assert "input audio: the job's version deleted" in result.out
    versions = pipeline.env.s3.list_object_versions(Bucket=pipeline.stack.input_bucket, Prefix=KEY)[
        "Versions"
    ]
    assert [v["VersionId"] for v in versions] == [second_item["input_version"]]
    # The other version's job shares the document keys: the operator is told
    assert f"completed job(s) {second} came from other versions" in " ".join(result.out.split())


def test_delete_of_a_failed_job_without_documents(pipeline: Pipeline):
    name = pipeline.failed("conversation/visit.wav")
    result = pipeline.cli("delete", name, "--yes")
    assert result.code == 0, result.err
    assert "output objects: 0 versions, 0 delete markers" in result.out
    assert pipeline.item(name) is None
    assert not pipeline.transcribe_has(name)


def test_delete_refuses_an_open_job_unless_forced(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    refused = pipeline.cli("delete", name, "--yes")
    assert refused.code == 1
    assert "is QUEUED" in refused.err
    assert pipeline.item(name) is not None
    forced = pipeline.cli("delete", name, "--yes", "--force")
    assert forced.code == 0, forced.err
    assert pipeline.item(name) is None
    assert not pipeline.transcribe_has(name)


def test_download_writes_the_documents_and_raw_transcript(pipeline: Pipeline, tmp_path: Path):
    name = pipeline.completed(KEY)
    dest = tmp_path / "out" / "nested"
    result = pipeline.cli("download", name, str(dest))
    assert result.code == 0, result.err
    folder = dest / name
    assert sorted(p.name for p in folder.iterdir()) == sorted([*DOCUMENTS, f"{name}.json"])
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    for doc in DOCUMENTS:
        body = s3.get_object(Bucket=bucket, Key=FOLDER + doc)["Body"].read()
        assert (folder / doc).read_bytes() == body
    raw = s3.get_object(Bucket=bucket, Key=f"medical/{name}.json")["Body"].read()
    assert (folder / f"{name}.json").read_bytes() == raw
    assert stat.S_IMODE((folder / "transcript.txt").stat().st_mode) == 0o600
    assert f"wrote 6 files to {folder}" in result.out
    assert result.err == ""


def test_download_warns_when_a_newer_upload_overwrote_the_documents(
    pipeline: Pipeline, tmp_path: Path
):
    first = pipeline.completed(KEY)
    second = pipeline.completed(KEY)
    result = pipeline.cli("download", first, str(tmp_path))
    assert result.code == 0
    assert f"the documents now belong to job {second}" in result.err


def test_download_refuses_a_job_that_is_not_completed(pipeline: Pipeline, tmp_path: Path):
    name = pipeline.failed("conversation/visit.wav")
    result = pipeline.cli("download", name, str(tmp_path / "d"))
    assert result.code == 1
    assert result.err == (
        f"jobctl: error: job {name} is FAILED, not COMPLETED: nothing to download\n"
    )
    assert not (tmp_path / "d").exists()
