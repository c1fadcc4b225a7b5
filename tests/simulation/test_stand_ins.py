"""The stand-ins behave as the services do where the pipeline depends on it."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from devkit.simulation.calls import CallCounter
from devkit.simulation.clock import EventLoop, VirtualClock
from devkit.simulation.faults import Faults, SimulatedCrash
from devkit.simulation.s3 import MemoryS3
from devkit.simulation.sqs import MemoryQueue
from devkit.simulation.store import ItemStore, MemoryJobIndex, MemoryLedger
from devkit.simulation.transcribe import MemoryTranscribe
from pipeline import job_index as ji
from pipeline.capacity import Claim

EPOCH = 1_700_000_000.0


def code_of(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# --- SQS ------------------------------------------------------------------------------------


def test_a_received_message_hides_for_the_visibility_timeout():
    clock = VirtualClock()
    queue = MemoryQueue("q", clock, visibility_timeout_s=30.0)
    queue.send("hello")

    first = queue.receive(10)
    clock.now = 29.0
    hidden = queue.receive(10)
    clock.now = 30.0
    again = queue.receive(10)

    assert [m.body for m in first] == ["hello"]
    assert hidden == []
    assert [m.receive_count for m in again] == [2]


def test_a_stale_receipt_handle_deletes_nothing():
    clock = VirtualClock()
    queue = MemoryQueue("q", clock, visibility_timeout_s=1.0)
    queue.send("hello")
    old = queue.receive(1)[0].receipt_handle
    clock.now = 1.0
    queue.receive(1)

    assert queue.delete(old) is False
    assert len(queue) == 1


def test_a_message_received_too_often_moves_to_the_dead_letter_queue():
    clock = VirtualClock()
    dlq = MemoryQueue("dlq", clock)
    queue = MemoryQueue(
        "q", clock, visibility_timeout_s=1.0, max_receive_count=3, dead_letter_queue=dlq
    )
    queue.send("poison")
    receives = 0
    for second in range(10):
        clock.now = float(second)
        receives += len(queue.receive(10))

    assert receives == 3
    assert len(queue) == 0
    assert len(dlq) == 1


# --- the job index and the ledger ------------------------------------------------------------


def make_index() -> tuple[MemoryJobIndex, MemoryLedger, CallCounter]:
    calls = CallCounter()
    index = MemoryJobIndex(ItemStore(), calls)
    ledger = MemoryLedger(index, share=2, rate_per_second=3, calls=calls)
    return index, ledger, calls


def pending(index: MemoryJobIndex, name: str, created_at: str) -> None:
    assert index.create({"job_name": name, "status": ji.PENDING, "created_at": created_at})


def test_by_status_is_oldest_first_paged_and_bounded_by_created_before():
    index, _, calls = make_index()
    for i in (3, 1, 4, 2, 5):
        pending(index, f"job-{i}", f"2025-01-01T00:00:0{i}.000Z")

    names = [item["job_name"] for item in index.by_status(ji.PENDING, limit=2)]
    older = list(index.by_status(ji.PENDING, created_before="2025-01-01T00:00:03.000Z"))

    assert names == ["job-1", "job-2", "job-3", "job-4", "job-5"]
    assert calls.of("dynamodb", "Query") == 3 + 1  # three pages of two, then one query
    assert [item["job_name"] for item in older] == ["job-1", "job-2"]


def test_create_is_conditional_and_transition_only_moves_forward():
    index, _, _ = make_index()
    pending(index, "job", "2025-01-01T00:00:00.000Z")

    assert index.create({"job_name": "job", "status": ji.PENDING, "created_at": "x"}) is False
    assert index.transition("job", to=ji.COMPLETED, now="t1") is True
    assert index.transition("job", to=ji.QUEUED, now="t2") is False
    assert index.get("job")["status"] == ji.COMPLETED


def test_a_claim_checks_the_job_then_the_share_then_the_rate():
    index, ledger, _ = make_index()
    for i in range(4):
        pending(index, f"job-{i}", f"2025-01-01T00:00:0{i}.000Z")

    def claim(name: str, epoch: float = EPOCH) -> Claim:
        return ledger.claim(name, attempt=1, epoch_s=epoch, now="t", fields={})

    assert claim("job-0") is Claim.CLAIMED
    assert claim("job-0") is Claim.JOB_CHANGED  # no longer PENDING
    assert claim("job-1") is Claim.CLAIMED
    assert claim("job-2") is Claim.NO_CAPACITY  # the share (2) is in use
    assert ledger.state().in_flight == 2
    assert ledger.unclaim("job-1", attempt=1, now="t") is True  # a slot back, not a start
    assert claim("job-2") is Claim.CLAIMED  # the third start this second
    assert ledger.unclaim("job-2", attempt=1, now="t") is True
    assert claim("job-3") is Claim.RATE_LIMITED  # the share has room, the second has not
    assert claim("job-3", EPOCH + 1) is Claim.CLAIMED
    assert index.get("job-1")["status"] == ji.PENDING


def test_an_unclaim_undoes_only_its_own_attempt():
    index, ledger, _ = make_index()
    pending(index, "job", "2025-01-01T00:00:00.000Z")
    ledger.claim("job", attempt=1, epoch_s=EPOCH, now="t", fields={})

    assert ledger.unclaim("job", attempt=2, now="t") is False
    assert ledger.state().in_flight == 1


def test_release_gives_the_slot_back_once_and_never_below_zero():
    index, ledger, _ = make_index()
    pending(index, "a", "2025-01-01T00:00:00.000Z")
    pending(index, "b", "2025-01-01T00:00:01.000Z")
    ledger.claim("a", attempt=1, epoch_s=EPOCH, now="t", fields={})
    ledger.claim("b", attempt=1, epoch_s=EPOCH, now="t", fields={})
    ledger.adjust(-2, drift_seen=2)  # a heal counted both slots out

    assert ledger.release("a", to=ji.COMPLETED, now="t", fields={}) is True
    assert ledger.state().in_flight == 0  # the >= 1 rule: the job moved, the count did not
    assert ledger.release("a", to=ji.COMPLETED, now="t", fields={}) is False


def test_release_of_a_job_holding_no_slot_falls_back_to_a_transition():
    index, ledger, _ = make_index()
    pending(index, "job", "2025-01-01T00:00:00.000Z")

    assert ledger.release("job", to=ji.FAILED, now="t", fields={"failure_reason": "r"}) is True
    assert index.get("job")["status"] == ji.FAILED
    assert ledger.state().in_flight == 0


# --- S3 and Transcribe ------------------------------------------------------------------------


def test_s3_answers_with_the_real_error_codes():
    s3 = MemoryS3(CallCounter())
    obj = s3.upload_recording("in", "a.wav", duration_s=60.0)

    header = s3.get_object(Bucket="in", Key="a.wav", Range="bytes=0-65535")["Body"].read()
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="in", Key="b.wav")
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket="in", Key="b.wav")
    with pytest.raises(ClientError) as version:
        s3.get_object(Bucket="in", Key="a.wav", VersionId="nope")

    assert header.startswith(b"RIFF")
    assert s3.head_object(Bucket="in", Key="a.wav")["VersionId"] == obj.version_id
    assert (code_of(missing), code_of(head), code_of(version)) == (
        "NoSuchKey",
        "404",
        "NoSuchVersion",
    )


def test_s3_can_crash_an_invocation_after_some_documents():
    s3 = MemoryS3(CallCounter())
    s3.arm_crash_after_puts(2)
    s3.put_object(Bucket="out", Key="1", Body=b"x")

    with pytest.raises(SimulatedCrash):
        s3.put_object(Bucket="out", Key="2", Body=b"x")
    assert s3.current("out", "2") is not None  # written, then the sandbox died


def make_transcribe(quota: int = 1, rate: float = 25.0) -> tuple[MemoryTranscribe, EventLoop]:
    clock = VirtualClock()
    loop = EventLoop(clock)
    calls = CallCounter()
    s3 = MemoryS3(calls)
    s3.upload_recording("in", "a.wav", duration_s=100.0)
    transcribe = MemoryTranscribe(
        clock=clock,
        loop=loop,
        s3=s3,
        calls=calls,
        rng=random.Random(1),
        faults=Faults(),
        quota=quota,
        start_rate=rate,
    )
    return transcribe, loop


def request(name: str) -> dict[str, object]:
    return {
        "MedicalTranscriptionJobName": name,
        "Media": {"MediaFileUri": "s3://in/a.wav"},
        "OutputBucketName": "out",
        "OutputKey": f"medical/{name}.json",
    }


def test_transcribe_answers_conflict_before_the_quota_and_limit_at_it():
    transcribe, _ = make_transcribe(quota=1)
    transcribe.start_medical_transcription_job(**request("one"))

    with pytest.raises(ClientError) as conflict:
        transcribe.start_medical_transcription_job(**request("one"))
    with pytest.raises(ClientError) as full:
        transcribe.start_medical_transcription_job(**request("two"))

    assert code_of(conflict) == "ConflictException"
    assert code_of(full) == "LimitExceededException"


def test_a_job_takes_its_processing_time_and_leaves_a_transcript():
    transcribe, loop = make_transcribe()
    transcribe.start_medical_transcription_job(**request("one"))
    while loop.step():
        pass

    job = transcribe.get_medical_transcription_job(MedicalTranscriptionJobName="one")
    assert job["MedicalTranscriptionJob"]["TranscriptionJobStatus"] == "COMPLETED"
    assert loop.clock.now == pytest.approx(0.3 * 100.0 + 30.0)
    assert transcribe.running == 0


def test_transcribe_refuses_starts_over_its_rate():
    transcribe, _ = make_transcribe(quota=100, rate=2.0)
    transcribe.start_medical_transcription_job(**request("one"))
    transcribe.start_medical_transcription_job(**request("two"))

    with pytest.raises(ClientError) as refused:
        transcribe.start_medical_transcription_job(**request("three"))
    assert code_of(refused) == "LimitExceededException"
