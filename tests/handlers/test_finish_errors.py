"""No job open for ever: every permanent error the finisher can meet ends the job FAILED
after a bounded number of attempts, counted across the event path and the reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import reconcile
from pipeline import aws_clients
from pipeline.completion import JobFinisher, PermanentFinishError
from pipeline.job_index import JobIndex
from pipeline.settings import current_settings

from .conftest import Env, fail_calls
from .test_post_process import SCRIPT, deliver, emulator, start

PHI_MESSAGE = "Access denied for arn:aws:s3:::out/transcripts/Jane Doe.wav"

# (client, operation, code, status, words the failure_reason must contain)
PERMANENT = [
    ("s3", "PutObject", "AccessDenied", 403, "policy"),
    ("s3", "PutObject", "KMS.DisabledException", 400, "Re-enable the key"),
    ("s3", "PutObject", "KMS.KMSInvalidStateException", 400, "Re-enable the key"),
    ("s3", "PutObject", "KMS.NotFoundException", 400, "Re-enable the key"),
    ("s3", "PutObject", "KeyTooLongError", 400, "shorter name"),
    ("s3", "PutObject", "InvalidArgument", 400, "contact the pipeline's operators"),
    ("s3", "PutObject", "NoSuchBucket", 404, "OUTPUT_BUCKET"),
    ("s3", "GetObject", "AccessDenied", 403, "policy"),
    ("s3", "GetObject", "KMS.DisabledException", 400, "Re-enable the key"),
    ("transcribe", "GetMedicalTranscriptionJob", "AccessDeniedException", 400, "policy"),
    ("transcribe", "GetMedicalTranscriptionJob", "SomethingNewException", 400, "Retry the job"),
]


def completed_in_transcribe(env: Env, lambda_context: Any) -> str:
    name = start(env, "conversation/Jane Doe.wav", lambda_context)
    emulator(env).complete(name, utterances=SCRIPT)
    return name


@pytest.mark.parametrize("case", PERMANENT, ids=lambda case: f"{case[1]}-{case[2]}")
def test_each_permanent_error_ends_the_job_failed_at_the_bound(
    make_env, lambda_context, captured_logs, monkeypatch, case
):
    service, operation, code, status, advice = case
    monkeypatch.setenv("MAX_FINISH_ATTEMPTS", "3")
    env = make_env()
    name = completed_in_transcribe(env, lambda_context)
    fail_calls(
        aws_clients.client(service),
        operation,
        code,
        status=status,
        message=PHI_MESSAGE,
        times=float("inf"),
    )
    # The event path counts the first attempt and does not raise (no endless retries)
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "RETRY_LATER"
    # The reconciler counts the next ones; at the bound the job is FAILED
    first = reconcile.handler({}, lambda_context)
    assert first["errors"] == 1
    assert env.item(name)["status"] == "QUEUED"
    assert int(env.item(name)["finish_attempts"]) == 2
    second = reconcile.handler({}, lambda_context)
    assert second["outcomes"] == {"FAILED": 1}
    item = env.item(name)
    assert item["status"] == "FAILED"
    assert int(item["finish_attempts"]) == 3
    assert item["last_finish_error"] == code
    assert advice in item["failure_reason"]
    assert code in item["failure_reason"]
    assert item["completed_at"]
    # Never AWS's message: it may quote keys
    logs = captured_logs.getvalue()
    for text in (item["failure_reason"], logs):
        assert "Jane" not in text
        assert "arn:aws:s3" not in text
    assert code in logs
    assert name in logs
    # Nothing runs it again
    third = reconcile.handler({}, lambda_context)
    assert third["checked"] == 0


def test_a_transcript_missing_long_after_completion_is_counted(make_env, lambda_context):
    env = make_env()
    name = completed_in_transcribe(env, lambda_context)
    env.s3.delete_object(Bucket=env.stack.output_bucket, Key=f"medical/{name}.json")
    settings = current_settings()
    index = JobIndex(env.table)
    later = datetime.now(UTC) + timedelta(hours=1)

    def finisher(clock_offset: timedelta) -> JobFinisher:
        moment = datetime.now(UTC) + clock_offset
        return JobFinisher(
            settings=settings,
            s3=env.s3,
            transcribe=env.transcribe,
            index=index,
            clock=lambda: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            max_attempts=2,
        )

    with pytest.raises(PermanentFinishError) as raised:
        finisher(later - datetime.now(UTC)).finish(name)
    assert raised.value.code == "NoSuchKey"
    assert raised.value.attempts == 1
    result = finisher(later - datetime.now(UTC)).finish(name)
    assert result.outcome.value == "FAILED"
    item = env.item(name)
    assert "transcript is not in the output bucket" in item["failure_reason"]


def test_an_unexpected_defect_is_bounded_too(make_env, lambda_context, monkeypatch):
    env = make_env()
    name = completed_in_transcribe(env, lambda_context)

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("conversation/Jane Doe.wav")

    monkeypatch.setattr("pipeline.completion.render_documents", broken)
    finisher = JobFinisher(
        settings=current_settings(),
        s3=env.s3,
        transcribe=env.transcribe,
        index=JobIndex(env.table),
        max_attempts=1,
    )
    assert finisher.finish(name).outcome.value == "FAILED"
    item = env.item(name)
    assert "KeyError" in item["failure_reason"]
    assert "Jane" not in item["failure_reason"]


def test_counting_stops_once_the_job_has_ended(make_env, lambda_context):
    env = make_env()
    name = completed_in_transcribe(env, lambda_context)
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "COMPLETED"
    finisher = JobFinisher(
        settings=current_settings(),
        s3=env.s3,
        transcribe=env.transcribe,
        index=JobIndex(env.table),
        max_attempts=1,
    )
    error = PermanentFinishError(name, "AccessDenied", "writing", reason="r")
    assert finisher._count_attempt(name, error).outcome.value == "ALREADY_DONE"
    assert env.item(name)["status"] == "COMPLETED"
    assert "finish_attempts" not in env.item(name)


@pytest.mark.parametrize("value", ["0", "101", "many", "-1"])
def test_a_bad_attempt_bound_names_the_variable(value):
    from pipeline.completion import max_finish_attempts
    from pipeline.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        max_finish_attempts({"MAX_FINISH_ATTEMPTS": value})
    assert "MAX_FINISH_ATTEMPTS" in str(raised.value)
    assert max_finish_attempts({}) == 5
    assert max_finish_attempts({"MAX_FINISH_ATTEMPTS": "7"}) == 7
