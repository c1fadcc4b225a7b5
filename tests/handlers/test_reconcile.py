"""The reconciler on moto: with no events at all, every job still ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import reconcile
import start_job
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator
from pipeline import job_index as ji
from pipeline.capacity import Claim, DynamoCapacityLedger
from pipeline.completion import JobFinisher
from pipeline.dispatch import LIMIT_BACKOFF_S, Dispatcher
from pipeline.job_index import JobIndex
from pipeline.reconciliation import MAX_PENDING_AGE, RateLimiter, Reconciler
from pipeline.settings import current_settings

from .conftest import Env

WAV = wav_bytes(duration_s=1.0)


def upload_and_start(
    env: Env, count: int, lambda_context: Any, prefix: str = "conversation/"
) -> list[str]:
    notes = [env.put(f"{prefix}{i}.wav", WAV) for i in range(count)]
    for i in range(0, count, 10):
        start_job.handler(env.event(*notes[i : i + 10]), lambda_context)
    return [str(i["job_name"]) for i in env.items()]


def test_without_events_every_job_ends_in_one_reconcile_run(env: Env, lambda_context):
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    names = upload_and_start(env, 12, lambda_context)
    for name in names[:8]:
        transcribe.complete(name)
    for name in names[8:11]:
        transcribe.fail(name, "Unsupported media format")
    transcribe.run(names[11])  # still running
    report = reconcile.handler({}, lambda_context)
    statuses = sorted(env.item(n)["status"] for n in names)
    assert statuses == ["COMPLETED"] * 8 + ["FAILED"] * 3 + ["IN_PROGRESS"]
    assert report["checked"] == 12
    assert report["outcomes"] == {"COMPLETED": 8, "FAILED": 3, "IN_FLIGHT": 1}
    # The next run, once Transcribe finishes the last one, closes it too
    transcribe.complete(names[11])
    reconcile.handler({}, lambda_context)
    assert env.item(names[11])["status"] == "COMPLETED"


def reconciler_for(env: Env, **kwargs: Any) -> Reconciler:
    settings = current_settings()
    index = JobIndex(env.table)
    parts = {"settings": settings, "s3": env.s3, "transcribe": env.transcribe, "index": index}
    finisher = JobFinisher(**parts)
    return Reconciler(
        index=index,
        finisher=finisher,
        dispatcher=Dispatcher(**parts),
        ledger=finisher.ledger,
        poll_after=timedelta(0),
        **kwargs,
    )


def test_a_waiting_job_is_started_by_the_scheduled_dispatch(env: Env, lambda_context):
    # Given a job waiting in the backlog after Transcribe said LimitExceeded
    env.fail_transcribe("LimitExceededException")
    note = env.put("conversation/visit.wav", WAV)
    start_job.handler(env.event(note, receive_count=10), lambda_context)  # last delivery
    assert env.only_item()["status"] == "PENDING"
    # When the reconciler runs after the back-off
    reconciler = reconciler_for(env)
    reconciler.dispatcher.epoch = lambda: time.time() + LIMIT_BACKOFF_S + 1
    report = reconciler.run(time_left_ms=lambda: 300_000)
    # Then its dispatch run starts the job
    assert report.dispatch is not None
    assert report.dispatch.started == 1
    assert env.only_item()["status"] == "QUEUED"
    assert env.only_item()["attempts"] == 2


def test_a_claimed_job_whose_start_never_reached_transcribe_returns_to_the_backlog(
    env: Env, lambda_context
):
    # Given a job claimed by a dispatch run that died before its start call
    env.fail_transcribe("LimitExceededException")
    note = env.put("conversation/visit.wav", WAV)
    start_job.handler(env.event(note), lambda_context)
    (item,) = env.items()
    ledger = DynamoCapacityLedger(env.table, share=250, rate_per_second=25)
    claimed = ledger.claim(
        item["job_name"],
        attempt=2,
        epoch_s=time.time() + LIMIT_BACKOFF_S + 1,
        now="2000-01-01T00:00:00.000Z",  # long past the claim's grace
        fields={},
    )
    assert claimed is Claim.CLAIMED
    # When the reconciler finds Transcribe has no such job, past the claim's grace
    reconciler = reconciler_for(env)
    reconciler.dispatcher.epoch = lambda: time.time() - 3600  # still backing off: no restart
    report = reconciler.run(time_left_ms=lambda: 300_000)
    # Then the job waits in the backlog again and its slot is free
    assert report.outcomes == {"RETURNED": 1}
    assert env.only_item()["status"] == "PENDING"
    assert ledger.state().in_flight == 0


def test_a_drifted_in_flight_count_is_healed_on_the_second_sighting(env: Env, lambda_context):
    TranscribeMedicalEmulator(s3=env.s3)
    upload_and_start(env, 2, lambda_context)
    ledger = DynamoCapacityLedger(env.table, share=250, rate_per_second=25)
    assert ledger.state().in_flight == 2
    ledger.adjust(3, drift_seen=0)  # e.g. an operator deleted open jobs' items by hand
    reconciler = reconciler_for(env)
    reconciler.dispatcher.epoch = lambda: time.time() - 3600
    assert reconciler.run(time_left_ms=lambda: 300_000).healed == 0  # seen once
    assert ledger.state().in_flight == 5
    assert reconciler.run(time_left_ms=lambda: 300_000).healed == -3  # seen twice
    assert ledger.state().in_flight == 2


def test_a_waiting_job_is_not_started_while_the_dispatch_backs_off(env: Env, lambda_context):
    env.fail_transcribe("LimitExceededException")
    start_job.handler(env.event(env.put("conversation/visit.wav", WAV)), lambda_context)
    report = reconcile.handler({}, lambda_context)
    assert report["checked"] == 0  # nothing open to poll
    assert env.only_item()["status"] == "PENDING"
    assert len(env.start_requests) == 1  # the back-off holds: no second start yet


def pending_item(env: Env, *, created: datetime, attempts: int) -> str:
    name = "medscribe-test-" + "a" * 40
    JobIndex(env.table).create(
        {
            "job_name": name,
            "status": ji.PENDING,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "attempts": attempts,
            "input_key": "x.wav",
            "input_bucket": env.stack.input_bucket,
            "input_size": 10,
            "type": "DICTATION",
        }
    )
    return name


def test_a_job_that_waited_too_long_for_capacity_is_failed_for_a_person(env: Env, lambda_context):
    name = pending_item(
        env, created=datetime.now(UTC) - MAX_PENDING_AGE - timedelta(hours=1), attempts=3
    )
    reconcile.handler({}, lambda_context)
    item = env.item(name)
    assert item["status"] == "FAILED"
    assert "7 days" in item["failure_reason"]
    assert "quotas" in item["failure_reason"]


def test_waiting_many_attempts_in_a_burst_is_not_failing(env: Env, lambda_context):
    # Retried on every run while the account is at its quota: many attempts, still young
    env.s3.put_object(Bucket=env.stack.input_bucket, Key="x.wav", Body=WAV)
    name = pending_item(env, created=datetime.now(UTC) - timedelta(hours=5), attempts=60)
    reconcile.handler({}, lambda_context)
    assert env.item(name)["status"] == "QUEUED"


def test_one_unreadable_transcript_fails_its_job_and_the_others_complete(env: Env, lambda_context):
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    names = upload_and_start(env, 3, lambda_context)
    for name in names:
        transcribe.complete(name)
    env.s3.put_object(Bucket=env.stack.output_bucket, Key=f"medical/{names[0]}.json", Body=b"{")
    report = reconcile.handler({}, lambda_context)
    assert env.item(names[0])["status"] == "FAILED"
    assert "could not be read" in env.item(names[0])["failure_reason"]
    assert [env.item(n)["status"] for n in names[1:]] == ["COMPLETED", "COMPLETED"]
    assert report["errors"] == 0


def test_an_unexpected_error_on_one_job_does_not_stop_the_run(
    env: Env, lambda_context, captured_logs, monkeypatch
):
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    names = upload_and_start(env, 3, lambda_context, prefix="conversation/Jane Doe ")
    for name in names:
        transcribe.complete(name)
    original = JobFinisher.finish

    def finish(self: JobFinisher, job_name: str, **kwargs: Any) -> Any:
        if job_name == names[1]:
            raise RuntimeError("conversation/Jane Doe 1.wav exploded")
        return original(self, job_name, **kwargs)

    monkeypatch.setattr(JobFinisher, "finish", finish)
    report = reconcile.handler({}, lambda_context)
    assert report["errors"] == 1
    assert sorted(env.item(n)["status"] for n in names) == ["COMPLETED", "COMPLETED", "QUEUED"]
    logs = captured_logs.getvalue()
    assert names[1] in logs
    assert "RuntimeError" in logs
    assert "Jane" not in logs


def test_the_run_stops_early_when_lambda_time_runs_low(env: Env, lambda_context):
    TranscribeMedicalEmulator(s3=env.s3)
    names = upload_and_start(env, 5, lambda_context)
    budget = iter([300_000, 300_000, 1_000] + [1_000] * 10)
    reconciler = reconciler_for(env)
    report = reconciler.run(time_left_ms=lambda: next(budget))
    assert report.stopped_early
    assert report.checked == 2
    assert len(names) == 5


def test_transient_errors_are_counted_and_left_for_the_next_run(env: Env, lambda_context):
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    (name,) = upload_and_start(env, 1, lambda_context)
    transcribe.complete(name)
    env.s3.delete_object(Bucket=env.stack.output_bucket, Key=f"medical/{name}.json")
    report = reconcile.handler({}, lambda_context)
    assert report["transient_errors"] == 1
    assert env.item(name)["status"] == "QUEUED"


def test_rate_limiter_spaces_calls():
    clock = {"now": 0.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    limiter = RateLimiter(20, clock=lambda: clock["now"], sleep=sleep)
    for _ in range(41):
        limiter.wait()
    assert clock["now"] >= 2.0 - 1e-9  # 41 calls at 20/s take at least 2 s
    assert all(s <= 0.05 + 1e-9 for s in slept)
