"""Contract 3 on moto: every job's documents in a folder of its own, S3's key limit enforced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

import start_job
from devkit.media_samples import mp3_bytes, wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator

from .conftest import Env
from .test_post_process import SCRIPT, deliver, read

WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=1.0)
MP3 = mp3_bytes()
LIMIT = 1024


def completed(env: Env, key: str, lambda_context: Any, body: bytes = WAV) -> dict[str, Any]:
    """Upload, start, let Transcribe finish and deliver the event: the job's item."""
    note = env.put(key, body)
    version = note["Records"][0]["s3"]["object"].get("versionId")
    start_job.handler(env.event(note), lambda_context)
    (item,) = [
        i for i in env.items() if i["input_key"] == key and i.get("input_version") == version
    ]
    name = str(item["job_name"])
    TranscribeMedicalEmulator(s3=env.s3).complete(name, utterances=SCRIPT)
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "COMPLETED"
    return env.item(name)


def folder_of(item: dict[str, Any]) -> str:
    folders = {key.rsplit("/", 1)[0] + "/" for key in item["outputs"].values()}
    assert len(folders) == 1, folders  # one folder for the whole job
    return folders.pop()


def summary_job(env: Env, item: dict[str, Any]) -> str:
    return str(json.loads(read(env, item["outputs"]["summary.json"]))["job"]["job_name"])


def test_the_s3_key_limit_is_enforced_in_these_tests(env: Env):
    with pytest.raises(ClientError) as raised:
        env.s3.put_object(Bucket=env.stack.output_bucket, Key="k" * (LIMIT + 1), Body=b"x")
    assert raised.value.response["Error"]["Code"] == "KeyTooLongError"
    env.s3.put_object(Bucket=env.stack.output_bucket, Key="é" * (LIMIT // 2), Body=b"x")


def test_two_extensions_side_by_side_never_meet(env: Env, lambda_context):
    wav = completed(env, "conversation/visit.wav", lambda_context)
    mp3 = completed(env, "conversation/visit.mp3", lambda_context, body=MP3)
    assert folder_of(wav) == f"transcripts/conversation/visit.wav/{wav['input_version']}/"
    assert folder_of(mp3) == f"transcripts/conversation/visit.mp3/{mp3['input_version']}/"
    # Each job's documents are its own, and only one version of each was written
    assert summary_job(env, wav) == wav["job_name"]
    assert summary_job(env, mp3) == mp3["job_name"]
    listing = env.s3.list_object_versions(Bucket=env.stack.output_bucket, Prefix="transcripts/")
    keys = [v["Key"] for v in listing["Versions"]]
    assert sorted(keys) == sorted([*wav["outputs"].values(), *mp3["outputs"].values()])


def test_two_versions_of_one_key_never_meet(env: Env, lambda_context):
    first = completed(env, "dictation/note.wav", lambda_context)
    second = completed(env, "dictation/note.wav", lambda_context)
    assert first["input_version"] != second["input_version"]
    assert folder_of(first) != folder_of(second)
    assert summary_job(env, first) == first["job_name"]
    assert summary_job(env, second) == second["job_name"]


def _key_of_bytes(total: int, *, ext: str = ".wav") -> str:
    """`dictation/` + 2- and 3-byte characters + ext, exactly `total` bytes of UTF-8."""
    rest = total - len(b"dictation/") - len(ext)
    two = {0: 0, 1: 2, 2: 1}[rest % 3]
    key = "dictation/" + "é" * two + "患" * ((rest - 2 * two) // 3) + ext
    assert len(key.encode("utf-8")) == total
    return key


def test_multibyte_keys_at_the_limit_stay_by_input_and_one_byte_more_goes_by_job(
    env: Env, lambda_context
):
    probe = completed(env, "dictation/probe.wav", lambda_context)
    names = list(probe["outputs"])
    longest = max(len(name.encode("utf-8")) for name in names)
    version_bytes = len(str(probe["input_version"]))
    # transcripts/<key>/<version>/<longest document name> == 1,024 bytes exactly
    at_limit = _key_of_bytes(LIMIT - len(b"transcripts/") - 1 - version_bytes - 1 - longest)
    fits = completed(env, at_limit, lambda_context)
    assert folder_of(fits) == f"transcripts/{at_limit}/{fits['input_version']}/"
    assert max(len(k.encode("utf-8")) for k in fits["outputs"].values()) == LIMIT
    # One byte more and the whole job goes to its job-name folder
    over = _key_of_bytes(len(at_limit.encode("utf-8")) + 1)
    moved = completed(env, over, lambda_context)
    assert folder_of(moved) == f"transcripts/_by-job/{moved['job_name']}/"
    assert set(moved["outputs"]) == set(names)
    assert summary_job(env, moved) == moved["job_name"]


def test_a_long_key_goes_by_job_and_completes(env: Env, lambda_context):
    key = "conversation/" + "a" * 990 + ".wav"  # legal in S3, too long once nested
    item = completed(env, key, lambda_context)
    assert item["status"] == "COMPLETED"
    assert folder_of(item) == f"transcripts/_by-job/{item['job_name']}/"
    assert "finish_attempts" not in item
    for key_written in item["outputs"].values():
        assert len(key_written.encode("utf-8")) <= LIMIT
        read(env, key_written)


def test_the_raw_transcript_stays_under_medical(env: Env, lambda_context):
    item = completed(env, "conversation/visit.wav", lambda_context)
    assert item["transcript_key"] == f"medical/{item['job_name']}.json"
