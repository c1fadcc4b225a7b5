"""Items written under the old shared layout (`transcripts/<key without extension>/`, no
recorded versions) still delete without touching another job's documents."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import DOCUMENTS, Pipeline

OLD_FOLDER = "transcripts/conversation/visit/"


def old_layout_job(pipeline: Pipeline, key: str) -> str:
    """A completed job whose documents are rewritten into the old shared folder, its item
    pointing there without output_versions, as the previous finisher left them."""
    name = pipeline.completed(key)
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    item = pipeline.item(name)
    assert item is not None
    outputs = {}
    for doc in DOCUMENTS:
        body = s3.get_object(Bucket=bucket, Key=item["outputs"][doc])["Body"].read()
        s3.put_object(Bucket=bucket, Key=OLD_FOLDER + doc, Body=body)
        outputs[doc] = OLD_FOLDER + doc
    for key_written in item["outputs"].values():  # the new-layout copies: not in this story
        s3.delete_objects(
            Bucket=bucket,
            Delete={
                "Objects": [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in s3.list_object_versions(Bucket=bucket, Prefix=key_written)["Versions"]
                ]
            },
        )
    pipeline.env.table.update_item(
        Key={"job_name": name},
        UpdateExpression="SET outputs = :o REMOVE output_versions",
        ExpressionAttributeValues={":o": outputs},
    )
    return name


def summary_owners(pipeline: Pipeline) -> list[str]:
    s3, bucket = pipeline.env.s3, pipeline.stack.output_bucket
    listing = s3.list_object_versions(Bucket=bucket, Prefix=OLD_FOLDER + "summary.json")
    return [
        json.loads(
            s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        )["job"]["job_name"]
        for v in listing["Versions"]
    ]


def test_deleting_the_older_job_keeps_the_newer_jobs_current_documents(
    pipeline: Pipeline, tmp_path: Path
):
    wav = old_layout_job(pipeline, "conversation/visit.wav")
    mp3 = old_layout_job(pipeline, "conversation/visit.flac")  # same stem, old layout
    result = pipeline.cli("delete", wav, "--yes")
    assert result.code == 0, result.err
    # wav's summary.json version is gone (it names its job); mp3's is untouched
    assert summary_owners(pipeline) == [mp3]
    # The current documents are mp3's: all still there, and it still downloads
    for doc in DOCUMENTS:
        assert any(
            key == OLD_FOLDER + doc and not marker for key, marker in pipeline.output_versions()
        )
    assert pipeline.cli("download", mp3, str(tmp_path)).err == ""
    summary = json.loads((tmp_path / mp3 / "summary.json").read_bytes())
    assert summary["job"]["job_name"] == mp3
    # wav's older versions of the other documents cannot be attributed: kept and reported
    assert "kept: 4 older versions" in result.out


def test_deleting_the_newer_job_removes_its_current_documents(pipeline: Pipeline):
    wav = old_layout_job(pipeline, "conversation/visit.wav")
    mp3 = old_layout_job(pipeline, "conversation/visit.flac")
    result = pipeline.cli("delete", mp3, "--yes")
    assert result.code == 0, result.err
    assert summary_owners(pipeline) == [wav]
    # mp3's current version of each document went; wav's (older) versions stayed
    for doc in DOCUMENTS:
        versions = [k for k, _ in pipeline.output_versions(OLD_FOLDER + doc)]
        assert versions == [OLD_FOLDER + doc]
    assert pipeline.item(mp3) is None
    assert pipeline.item(wav) is not None
    assert "kept: 4 older versions" in result.out
