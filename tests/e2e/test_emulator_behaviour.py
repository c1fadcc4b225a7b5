"""The emulator answers and times things as AWS does: Transcribe's start rate, ConflictException
before the quota, job durations, SQS's visibility timeout, EventBridge's retries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.moto_api import state_manager

from devkit import emulator as emulator_module
from devkit.emulator import COMPLETION_RETRY_ATTEMPTS, PipelineEmulator
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import MODEL_NAME, TranscribeMedicalEmulator
from stacks import constants
from stacks.config import parse_environment

pytestmark = pytest.mark.e2e
BUCKET = "media"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1"
    )
    with mock_aws():
        yield
    state_manager.unset_transition(MODEL_NAME)
    os.environ.clear()
    os.environ.update(saved)


def transcribe_with(aws_emulator: TranscribeMedicalEmulator) -> Any:
    client = boto3.client("transcribe", region_name="us-east-1")
    aws_emulator.attach(client)
    return client


def start(client: Any, name: str, key: str = "visit.wav") -> None:
    client.start_medical_transcription_job(
        MedicalTranscriptionJobName=name,
        LanguageCode="en-US",
        Media={"MediaFileUri": f"s3://{BUCKET}/{key}"},
        OutputBucketName=BUCKET,
        Specialty="PRIMARYCARE",
        Type="CONVERSATION",
    )


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def s3_with_audio(seconds: float) -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="visit.wav", Body=wav_bytes(duration_s=seconds))
    return s3


def test_a_taken_name_is_a_conflict_even_at_a_full_quota(aws):
    fake = TranscribeMedicalEmulator(s3=s3_with_audio(1.0), concurrent_job_quota=1)
    client = transcribe_with(fake)
    start(client, "job-a")
    assert error_code(lambda: start(client, "job-a")) == "ConflictException"
    assert error_code(lambda: start(client, "job-b")) == "LimitExceededException"
    assert fake.conflicts == 1


def test_starts_beyond_the_rate_are_refused_until_time_passes(aws):
    clock = ManualClock()
    fake = TranscribeMedicalEmulator(s3=s3_with_audio(1.0), start_rate=2, clock=clock)
    client = transcribe_with(fake)
    start(client, "job-1")
    start(client, "job-2")
    assert error_code(lambda: start(client, "job-3")) == "LimitExceededException"
    clock.now += 0.5  # half a second buys one start
    start(client, "job-3")
    assert fake.throttled_starts == 1


def test_a_job_runs_for_a_time_that_grows_with_its_audio(aws):
    clock = ManualClock()
    fake = TranscribeMedicalEmulator(s3=s3_with_audio(60.0), clock=clock)
    start(transcribe_with(fake), "job-1")
    assert fake.advance() == []  # QUEUED -> IN_PROGRESS
    assert fake.status("job-1") == "IN_PROGRESS"
    clock.now += 0.3 * 60 + 30 - 1  # 0.3 x 60 s + 30 s, less a second
    assert fake.advance() == []
    clock.now += 1
    assert fake.advance() == [("job-1", "COMPLETED")]


def emulate(**kwargs: Any) -> PipelineEmulator:
    config = parse_environment("gaps", {"region": "us-east-1", **kwargs.pop("settings", {})})
    return PipelineEmulator(config, **kwargs)


def test_a_failed_message_comes_back_after_the_visibility_timeout_not_the_next_tick(
    aws, monkeypatch
):
    emulator = emulate()
    start_job = emulator.handlers["start_job"]
    real_handler = start_job.handler
    calls: list[int] = []

    def failing_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(emulator.ticks)
        if len(calls) == 1:
            raise RuntimeError("the function crashed")  # the whole batch fails
        return dict(real_handler(event, context))

    monkeypatch.setattr(start_job, "handler", failing_once)
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
    assert emulator.visibility_timeout == timedelta(minutes=6)  # the queue's own setting
    for _ in range(8):
        emulator.tick()
    assert calls == [0, 6]  # delivered again once 6 virtual minutes had passed
    assert emulator.run_until_settled(max_ticks=10)
    assert [i["status"] for i in emulator.items()] == ["COMPLETED"]


def test_a_post_process_crash_is_retried_as_eventbridge_retries(aws, monkeypatch):
    emulator = emulate()
    post_process = emulator.handlers["post_process"]
    real_handler = post_process.handler
    crashes: list[str] = []

    def crashing_twice(event: dict[str, Any], context: Any) -> Any:
        if len(crashes) < 2:
            crashes.append(event["detail"]["TranscriptionJobName"])
            raise RuntimeError("the function crashed")
        return real_handler(event, context)

    monkeypatch.setattr(post_process, "handler", crashing_twice)
    emulator.reconcile_interval = timedelta(days=1)  # only the event path may finish it
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
    assert emulator.run_until_settled(max_ticks=10)
    assert len(crashes) == 2
    assert [i["status"] for i in emulator.items()] == ["COMPLETED"]
    assert emulator.completion_dlq == []


def test_an_event_that_always_fails_ends_in_the_completion_dlq(aws, monkeypatch):
    emulator = emulate()

    def always_crashing(_event: dict[str, Any], _context: Any) -> Any:
        raise RuntimeError("the function crashed")

    monkeypatch.setattr(emulator.handlers["post_process"], "handler", always_crashing)
    emulator.reconcile_interval = timedelta(days=30)
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
    for _ in range(2**COMPLETION_RETRY_ATTEMPTS + 10):  # backoff doubles from a minute
        emulator.tick()
        if emulator.completion_dlq:
            break
    assert len(emulator.completion_dlq) == 1
    assert emulator.completion_dlq[0]["detail"]["TranscriptionJobStatus"] == "COMPLETED"


def test_the_retry_policy_matches_the_stack():
    assert constants.COMPLETION_RETRY_ATTEMPTS == emulator_module.COMPLETION_RETRY_ATTEMPTS
