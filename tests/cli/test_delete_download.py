"""delete (data-retention requests) and download."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from devkit.media_samples import mp3_bytes

from .conftest import DOCUMENTS, FakeTerminal, Pipeline

KEY = "conversation/clinic/visit 1.wav"


def folder_of(pipeline: Pipeline, name: str) -> str:
    """The job's own documents folder, from its index item."""
    item = pipeline.item(name)
    assert item is not None
    (folder,) = {key.rsplit("/", 1)[0] + "/" for key in item["outputs"].values()}
    return folder


def add_history(pipeline: Pipeline, name: str) -> None:
    """Older versions and a delete marker, as rewrites and deletions leave them."""
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    FOLDER = folder_of(pipeline, name)
    s3.put_object(Bucket=bucket, Key=f"{FOLDER}transcript.txt", Body=b"an older rendering")
    s3.put_object(Bucket=bucket, Key=f"medical/{name}.json", Body=b"{}")
    s3.delete_object(Bucket=bucket, Key=f"{FOLDER}captions.srt")  # a delete marker
    s3.put_object(Bucket=bucket, Key=f"{FOLDER}notes-by-a-person.txt", Body=b"not a document")


def test_delete_removes_every_version_the_item_and_the_transcribe_record(pipeline: Pipeline):
    name = pipeline.completed(KEY)
    other = pipeline.completed("conversation/other.wav")
    folder, other_folder = folder_of(pipeline, name), folder_of(pipeline, other)
    add_history(pipeline, name)
    documents = len(pipeline.item(name)["outputs"])  # type: ignore[index]
    assert len(pipeline.output_versions(folder)) == documents + 3  # older, marker, the note
    # When the operator deletes the job
    result = pipeline.cli("delete", name, "--yes")
    assert result.code == 0, result.err
    # Then every version and marker of its transcript and documents is gone
    assert pipeline.output_versions(f"medical/{name}.json") == []
    assert pipeline.output_versions(folder) == [(f"{folder}notes-by-a-person.txt", False)]
    assert pipeline.item(name) is None
    assert not pipeline.transcribe_has(name)
    # And the input audio and other jobs are untouched
    head = pipeline.env.s3.head_object(Bucket=pipeline.stack.input_bucket, Key=KEY)
    assert head["ContentLength"] > 0
    assert pipeline.item(other) is not None
    assert pipeline.transcribe_has(other)
    assert len(pipeline.output_versions(other_folder)) == documents
    # And it said what it deleted
    assert f"output objects: {documents + 3} versions, 1 delete marker" in result.out
    assert "Transcribe job record: deleted" in result.out
    assert "index item: deleted" in result.out
    assert f"{folder}summary.json" in result.out
    assert "the input audio is kept" in result.out


def test_delete_asks_on_a_terminal(pipeline: Pipeline, monkeypatch):
    name = pipeline.completed(KEY)
    monkeypatch.setattr("sys.stdin", FakeTerminal("n\n"))
    declined = pipeline.cli("delete", name)
    assert declined.code == 1
    assert f"Delete job {name}? [y/N]" in declined.err
    assert "aborted: nothing deleted" in declined.err
    assert pipeline.item(name) is not None
    folder = folder_of(pipeline, name)
    assert len(pipeline.output_versions(folder)) >= len(DOCUMENTS)
    monkeypatch.setattr("sys.stdin", FakeTerminal("yes\n"))
    assert pipeline.cli("delete", name).code == 0
    assert pipeline.item(name) is None
    assert pipeline.output_versions(folder) == []


def test_delete_without_yes_and_without_a_terminal_refuses(pipeline: Pipeline):
    name = pipeline.completed(KEY)
    result = pipeline.cli("delete", name)
    assert result.code == 2
    assert result.err == (
        "jobctl: error: not confirmed: stdin is not a terminal, pass --yes to delete\n"
    )
    assert pipeline.item(name) is not None
    assert pipeline.transcribe_has(name)
    assert len(pipeline.output_versions(folder_of(pipeline, name))) >= len(DOCUMENTS)


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
    # The other version's job keeps every document, and still downloads
    for key in second_item["outputs"].values():
        assert pipeline.output_versions(key) == [(key, False)]


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
    outputs = pipeline.item(name)["outputs"]  # type: ignore[index]
    assert set(DOCUMENTS) <= set(outputs)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*outputs, f"{name}.json"])
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    for doc, key in outputs.items():
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert (folder / doc).read_bytes() == body
    raw = s3.get_object(Bucket=bucket, Key=f"medical/{name}.json")["Body"].read()
    assert (folder / f"{name}.json").read_bytes() == raw
    assert stat.S_IMODE((folder / "transcript.txt").stat().st_mode) == 0o600
    assert f"wrote {len(outputs) + 1} files to {folder}" in result.out
    assert result.err == ""


def downloaded_summary_job(pipeline: Pipeline, name: str, dest: Path) -> str:
    result = pipeline.cli("download", name, str(dest))
    assert result.code == 0, result.err
    assert result.err == ""
    return str(json.loads((dest / name / "summary.json").read_bytes())["job"]["job_name"])


def test_two_versions_each_download_their_own_documents(pipeline: Pipeline, tmp_path: Path):
    first = pipeline.completed(KEY)
    second = pipeline.completed(KEY)
    assert downloaded_summary_job(pipeline, first, tmp_path) == first
    assert downloaded_summary_job(pipeline, second, tmp_path) == second


def test_deleting_visit_wav_leaves_visit_mp3_whole(pipeline: Pipeline, tmp_path: Path):
    wav = pipeline.completed("conversation/visit.wav")
    wav_folder = folder_of(pipeline, wav)
    mp3 = pipeline.start("conversation/visit.mp3", mp3_bytes())
    pipeline.emulator.complete(mp3)
    pipeline.finish(mp3, "COMPLETED")
    mp3_item: dict[str, Any] = pipeline.item(mp3)  # type: ignore[assignment]
    before = {key: pipeline.output_versions(key) for key in mp3_item["outputs"].values()}
    assert pipeline.cli("delete", wav, "--yes").code == 0
    assert pipeline.output_versions(wav_folder) == []
    assert pipeline.output_versions("transcripts/conversation/visit.wav/") == []
    # Every document of the mp3 job remains, version for version, and it still downloads
    assert {key: pipeline.output_versions(key) for key in mp3_item["outputs"].values()} == before
    assert downloaded_summary_job(pipeline, mp3, tmp_path) == mp3


def test_download_refuses_a_job_that_is_not_completed(pipeline: Pipeline, tmp_path: Path):
    name = pipeline.failed("conversation/visit.wav")
    result = pipeline.cli("download", name, str(tmp_path / "d"))
    assert result.code == 1
    assert result.err == (
        f"jobctl: error: job {name} is FAILED, not COMPLETED: nothing to download\n"
    )
    assert not (tmp_path / "d").exists()
