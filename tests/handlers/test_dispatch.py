"""The capacity ledger and the dispatcher on moto: the share, the start rate, the backlog's
order, and slots taken and given back exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from devkit.lambda_events import sqs_event, sqs_record
from devkit.media_samples import wav_bytes
from pipeline import dispatch
from pipeline import job_index as ji
from pipeline.capacity import Claim, DynamoCapacityLedger
from pipeline.dispatch import (
    FIRST_BACKOFF_S,
    NAME_TAKEN,
    SUPERSEDED,
    Dispatched,
    Dispatcher,
    backoff_s,
)
from pipeline.s3_events import uploads_in
from pipeline.start import JobStarter

from .conftest import Env, fail_calls

WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=1.0)


def admit(env: Env, *keys: str) -> list[str]:
    """Record uploads PENDING (as the start handler does) and return their job names."""
    starter = JobStarter.from_environment()
    names = []
    for key in keys:
        note = env.put(key, WAV)

        record = SQSRecord(sqs_event([sqs_record(note, queue_arn=env.queue_arn)])["Records"][0])
        (upload,) = uploads_in(record)
        result = starter.handle(upload)
        assert result.job_name is not None
        names.append(result.job_name)
        time.sleep(0.002)  # distinct created_at, so the backlog's order is known
    return names


def ledger(env: Env, *, share: int = 250, rate: int = 25) -> DynamoCapacityLedger:
    return DynamoCapacityLedger(env.table, share=share, rate_per_second=rate)


def status(env: Env, name: str) -> str:
    return str(env.item(name)["status"])


# --- the ledger -------------------------------------------------------------------------


def test_a_claim_takes_a_slot_and_a_start_and_queues_the_job(env: Env):
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    assert book.claim(name, attempt=1, epoch_s=1000.2, now="t1", fields={}) is Claim.CLAIMED
    assert status(env, name) == "QUEUED"
    assert env.item(name)["attempts"] == 1
    assert book.state().in_flight == 1
    # A second claim of the same attempt finds the job changed: no second slot
    assert book.claim(name, attempt=1, epoch_s=1000.3, now="t2", fields={}) is Claim.JOB_CHANGED
    assert book.state().in_flight == 1


def test_claims_stop_at_the_share(env: Env):
    names = admit(env, "conversation/a.wav", "conversation/b.wav", "conversation/c.wav")
    book = ledger(env, share=2)
    outcomes = [book.claim(n, attempt=1, epoch_s=1000.0, now="t", fields={}) for n in names]
    assert outcomes == [Claim.CLAIMED, Claim.CLAIMED, Claim.NO_CAPACITY]
    assert status(env, names[2]) == "PENDING"  # untouched: the transaction is all or nothing
    assert book.state().in_flight == 2


def test_claims_stop_at_the_start_rate_within_one_second(env: Env):
    names = admit(env, "conversation/a.wav", "conversation/b.wav", "conversation/c.wav")
    book = ledger(env, rate=2)
    first = [book.claim(n, attempt=1, epoch_s=2000.1, now="t", fields={}) for n in names]
    assert first == [Claim.CLAIMED, Claim.CLAIMED, Claim.RATE_LIMITED]
    assert status(env, names[2]) == "PENDING"
    # The next second has its own window
    assert book.claim(names[2], attempt=1, epoch_s=2001.0, now="t", fields={}) is Claim.CLAIMED


def test_an_unclaim_gives_the_slot_back_once_and_only_for_its_own_attempt(env: Env):
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    book.claim(name, attempt=1, epoch_s=1.0, now="t", fields={})
    assert book.unclaim(name, attempt=2, now="t") is False  # not this claim
    assert book.unclaim(name, attempt=1, now="t") is True
    assert book.unclaim(name, attempt=1, now="t") is False  # already back in the backlog
    assert status(env, name) == "PENDING"
    assert book.state().in_flight == 0


def test_release_ends_the_job_and_frees_its_slot_exactly_once(env: Env):
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    book.claim(name, attempt=1, epoch_s=1.0, now="t", fields={})
    fields = {"completed_at": "t3"}
    assert book.release(name, to=ji.COMPLETED, now="t3", fields=fields) is True
    assert book.release(name, to=ji.COMPLETED, now="t4", fields=fields) is False  # repeated
    assert book.release(name, to=ji.FAILED, now="t5", fields=fields) is False  # late
    assert status(env, name) == "COMPLETED"
    assert book.state().in_flight == 0


def test_release_leaves_out_fields_that_are_none(env: Env):
    # Transcribe may give no FailureReason: the field is left out, not a broken expression
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    book.claim(name, attempt=1, epoch_s=1.0, now="t", fields={"transcript_key": None})
    fields = {"transcribe_failure_reason": None, "failure_reason": "why"}
    assert book.release(name, to=ji.FAILED, now="t2", fields=fields) is True
    item = env.item(name)
    assert item["status"] == "FAILED"
    assert item["failure_reason"] == "why"
    assert "transcribe_failure_reason" not in item
    assert book.state().in_flight == 0


def test_release_of_a_job_that_holds_no_slot_still_ends_it(env: Env):
    # A PENDING job whose start did reach Transcribe (the answer was lost) may end
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    assert book.release(name, to=ji.COMPLETED, now="t", fields={}) is True
    assert status(env, name) == "COMPLETED"
    assert book.state().in_flight == 0


def test_a_counter_healed_to_zero_never_goes_negative(env: Env):
    (name,) = admit(env, "conversation/a.wav")
    book = ledger(env)
    book.claim(name, attempt=1, epoch_s=1.0, now="t", fields={})
    book.adjust(-1, drift_seen=0)  # a heal counted this slot out already
    assert book.release(name, to=ji.FAILED, now="t", fields={}) is True
    assert status(env, name) == "FAILED"
    assert book.state().in_flight == 0


# --- the dispatcher ---------------------------------------------------------------------


def test_the_oldest_waiting_jobs_start_first(make_env: Any):
    env = make_env(concurrent_job_share=2)
    names = admit(env, "conversation/1.wav", "conversation/2.wav", "conversation/3.wav")
    report = Dispatcher.from_environment().dispatch()
    assert report.started == 2
    assert report.stopped == Dispatched.NO_CAPACITY.value
    assert [status(env, n) for n in names] == ["QUEUED", "QUEUED", "PENDING"]
    assert [r["MedicalTranscriptionJobName"] for r in env.start_requests] == names[:2]


def test_a_job_that_ends_lets_the_next_one_start(make_env: Any):
    env = make_env(concurrent_job_share=1)
    first, second = admit(env, "conversation/1.wav", "conversation/2.wav")
    dispatcher = Dispatcher.from_environment()
    assert dispatcher.dispatch().started == 1
    assert dispatcher.dispatch().started == 0  # full
    dispatcher.ledger.release(first, to=ji.COMPLETED, now="t", fields={})
    assert dispatcher.dispatch().started == 1
    assert status(env, second) == "QUEUED"


def test_an_upload_replaced_while_waiting_is_rejected_not_started(env: Env):
    (name,) = admit(env, "conversation/visit.wav")
    env.s3.put_object(Bucket=env.stack.input_bucket, Key="conversation/visit.wav", Body=WAV)
    report = Dispatcher.from_environment().dispatch()
    assert report.outcomes == {"REJECTED": 1}
    item = env.item(name)
    assert item["status"] == "REJECTED"
    assert item["failure_reason"] == SUPERSEDED
    assert env.start_requests == []


def test_a_start_that_already_reached_transcribe_counts_as_started(env: Env):
    (name,) = admit(env, "conversation/visit.wav")
    item = env.item(name)
    # An earlier attempt's start reached Transcribe; its answer was lost
    env.transcribe.start_medical_transcription_job(
        MedicalTranscriptionJobName=name,
        LanguageCode="en-US",
        Media={"MediaFileUri": f"s3://{item['input_bucket']}/{item['input_key']}"},
        OutputBucketName=env.stack.output_bucket,
        Specialty="PRIMARYCARE",
        Type="CONVERSATION",
    )
    report = Dispatcher.from_environment().dispatch()
    assert report.started == 1
    assert status(env, name) == "QUEUED"


def test_a_name_taken_by_another_files_job_fails_and_frees_the_slot(env: Env):
    (name,) = admit(env, "conversation/visit.wav")
    env.transcribe.start_medical_transcription_job(
        MedicalTranscriptionJobName=name,
        LanguageCode="en-US",
        Media={"MediaFileUri": "s3://another-bucket/another.wav"},
        OutputBucketName=env.stack.output_bucket,
        Specialty="PRIMARYCARE",
        Type="CONVERSATION",
    )
    dispatcher = Dispatcher.from_environment()
    assert dispatcher.dispatch().outcomes == {"FAILED": 1}
    assert env.item(name)["failure_reason"] == NAME_TAKEN
    assert dispatcher.ledger.state().in_flight == 0


@pytest.mark.parametrize("code", ["BadRequestException"])
def test_a_permanent_refusal_fails_the_job_with_transcribes_reason(env: Env, code: str):
    (name,) = admit(env, "conversation/Jane Doe visit.wav")
    fail_calls(
        env.transcribe,
        "StartMedicalTranscriptionJob",
        code,
        message="Media s3://bucket/conversation/Jane Doe visit.wav is not valid",
    )
    dispatcher = Dispatcher.from_environment()
    assert dispatcher.dispatch().outcomes == {"FAILED": 1}
    item = env.item(name)
    assert item["status"] == "FAILED"
    # The sentence a person reads names the code and what to check, never AWS's text...
    assert code in item["failure_reason"]
    assert "Jane" not in item["failure_reason"]
    # ...which the encrypted index keeps beside it for an operator
    assert "not valid" in item["transcribe_failure_reason"]
    assert dispatcher.ledger.state().in_flight == 0


def test_the_rate_limit_waits_for_the_next_second_instead_of_failing(make_env: Any):
    env = make_env(start_rate_per_second=1, start_rate_quota=1)
    names = admit(env, "conversation/1.wav", "conversation/2.wav")
    dispatcher = Dispatcher.from_environment()
    slept: list[float] = []
    dispatcher.sleep = slept.append
    seconds = iter([100.5, 100.6, 100.7, 101.0, 101.1, 101.2, 101.3])
    dispatcher.epoch = lambda: next(seconds)
    report = dispatcher.dispatch()
    assert report.started == 2
    assert slept
    assert all(0 < s <= 1 for s in slept)
    assert [status(env, n) for n in names] == ["QUEUED", "QUEUED"]


def test_an_aws_error_leaves_the_backlog_alone_and_names_only_the_code(env: Env):
    from pipeline.dispatch import DispatchError

    from .conftest import fail_calls

    (name,) = admit(env, "conversation/Jane Doe.wav")
    dispatcher = Dispatcher.from_environment()
    fail_calls(
        dispatcher.index.table.meta.client,
        "Query",
        "AccessDeniedException",
        message="denied: conversation/Jane Doe.wav",
    )
    with pytest.raises(DispatchError) as raised:
        dispatcher.dispatch()
    assert "Jane" not in str(raised.value)
    assert "AccessDeniedException" in str(raised.value)
    assert status(env, name) == "PENDING"


def test_a_short_back_off_is_waited_out_and_the_run_goes_on(env: Env, monkeypatch: Any):
    monkeypatch.setattr(dispatch, "WAIT_OUT_BACKOFF_S", 2.0)
    names = admit(env, "conversation/1.wav", "conversation/2.wav")
    env.fail_transcribe("LimitExceededException", times=1)
    dispatcher = Dispatcher.from_environment()
    now = {"t": 5000.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now["t"] += seconds

    dispatcher.epoch = lambda: now["t"]
    dispatcher.sleep = sleep
    report = dispatcher.dispatch()
    # One refusal: a 1 s back-off, waited out, then both start and the streak is over
    assert slept == [pytest.approx(FIRST_BACKOFF_S)]
    assert report.started == 2
    assert [status(env, n) for n in names] == ["QUEUED", "QUEUED"]
    assert dispatcher.ledger.state().limit_streak == 0


def test_refusals_in_a_row_double_the_back_off_up_to_its_cap():
    assert [backoff_s(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]
