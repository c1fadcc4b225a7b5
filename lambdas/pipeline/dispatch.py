"""The one decider: start the oldest waiting jobs, as many as this stack's share of
Transcribe Medical's quotas allows.

Transcribe Medical cannot queue medical jobs, so the backlog is ours: PENDING items in the
job index, oldest first by `created_at`. A dispatch run

1. reads the in-flight counter (one consistent read) and stops if the share is in use or a
   recent LimitExceededException asked it to back off;
2. reads the oldest PENDING items, as many as there are free slots;
3. for each: validates it if it was admitted unvalidated, rejects it if a newer upload
   replaced its object, claims a slot (one transaction: the job PENDING -> QUEUED,
   in-flight + 1, this second's start count + 1; see pipeline.capacity), then calls
   StartMedicalTranscriptionJob.

It runs wherever capacity may have changed: after uploads are admitted (start-job), after a
job ends (post-process and the reconciler) and on the reconciler's schedule. Runs may
overlap; the claim's conditions keep them from starting a job twice or passing the share or
the start rate. A start Transcribe refuses for capacity puts the job back in the backlog
(QUEUED -> PENDING, the slot given back) and backs every run off for a while: the account's
quota is shared with other workloads, and a refusal is not a failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import job_index as ji
from pipeline.aws_errors import error_code, is_transient
from pipeline.capacity import Claim
from pipeline.output_layout import transcript_key_for
from pipeline.start import JobStarter, TransientStartError, start_request, upload_of
from pipeline.step import PipelineStep

# After a LimitExceededException no run starts anything for a while: 1 s, doubling with each
# refusal in a row, at most LIMIT_BACKOFF_S. Transcribe answers LimitExceeded both for its
# start rate (gone in a second) and for concurrent jobs another workload holds (gone as its
# jobs end); the doubling serves both without telling them apart.
FIRST_BACKOFF_S = 1.0
LIMIT_BACKOFF_S = 30.0
# A run that waits out a back-off this short goes on; a longer one ends the run.
WAIT_OUT_BACKOFF_S = 2.0
# Transient errors (throttling, 5xx) in a row before a run gives up until the next trigger.
MAX_TRANSIENT_IN_A_ROW = 3
# At most this many backlog items are read at once (one Query page).
PAGE_SIZE = 50

SUPERSEDED = (
    "a newer upload with the same name replaced this file before it was transcribed; the "
    "newer upload is transcribed as its own job"
)
DELETED = "the file was deleted before it could be transcribed; upload it again"
REFUSED = (
    "Transcribe Medical refused to start the job ({code}). Check that the recording meets its "
    "media requirements (16-48 kHz, at least 0.5 s and under 4 hours, under 2 GB, mono or "
    "stereo) and this environment's settings, then retry the job; transcribe_failure_reason "
    "holds Transcribe's own words."
)
NAME_TAKEN = (
    "a Transcribe job with this name already exists for a different file; contact the "
    "pipeline's operators"
)


class DispatchError(RuntimeError):
    """AWS failed a dispatch call. The text names the error code only (AWS messages can
    quote object keys); the backlog is untouched and the next run goes on."""

    def __init__(self, code: str) -> None:
        super().__init__(f"dispatching the backlog failed ({code})")
        self.code = code


class Dispatched(StrEnum):
    STARTED = "STARTED"  # Transcribe has the job; it holds a slot
    REJECTED = "REJECTED"  # validated late as untranscribable, or superseded
    FAILED = "FAILED"  # Transcribe refused the job for good
    SKIPPED = "SKIPPED"  # another run claimed or changed it first
    NO_CAPACITY = "NO_CAPACITY"  # the share is in use (or backing off)
    BACKED_OFF = "BACKED_OFF"  # Transcribe said LimitExceeded: the job is back in the backlog
    THROTTLED = "THROTTLED"  # Transcribe busy: the job is back in the backlog
    OUT_OF_TIME = "OUT_OF_TIME"  # the invocation's time is nearly spent


STOPPING = frozenset({Dispatched.NO_CAPACITY, Dispatched.OUT_OF_TIME})


def backoff_s(streak: int) -> float:
    """How long to back off after the `streak`-th LimitExceeded in a row."""
    return float(min(LIMIT_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, streak - 1)))


@dataclass
class DispatchReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    stopped: str = ""  # why the run ended: no_work, NO_CAPACITY, BACKED_OFF, ...
    in_flight: int = 0  # the counter when last read
    oldest_waiting: str | None = None  # created_at of the oldest PENDING item seen

    @property
    def started(self) -> int:
        return self.outcomes.get(Dispatched.STARTED, 0)

    def count(self, outcome: Dispatched) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


class Dispatcher(PipelineStep):
    """The decider. `time_left_s` bounds a run (a Lambda's remaining time)."""

    _streak = 0  # LimitExceeded answers in a row, as the counter said at the run's start

    def dispatch(
        self,
        *,
        time_left_s: Callable[[], float] = lambda: 60.0,
        reserve_s: float = 5.0,
        slots_freed: int = 0,
    ) -> DispatchReport:
        """One run. `slots_freed`: the caller has just given back this many slots (a job
        ended), so the first pass skips reading the counter; the claims' conditions still
        hold the share and any back-off."""
        report = DispatchReport()
        try:
            self._run(report, time_left_s, reserve_s, slots_freed)
        except (ClientError, BotoCoreError) as error:
            raise DispatchError(error_code(error)) from None
        return report

    def _run(
        self,
        report: DispatchReport,
        time_left_s: Callable[[], float],
        reserve_s: float,
        slots_freed: int,
    ) -> None:
        transient_in_a_row = 0
        freed = slots_freed
        while True:
            if slots_freed > 0:
                free, slots_freed = slots_freed, 0
            elif freed and report.started >= freed:
                # The freed slots are taken: reading the counter for more is the next
                # trigger's work (or the schedule's), not worth a read per ended job.
                report.stopped = Dispatched.NO_CAPACITY.value
                return
            else:
                # (A freed slot that is still free after a throttled start falls through to
                # here: the counter says what is free, so the slot is not left idle.)
                state = self.ledger.state()
                self._streak = state.limit_streak
                report.in_flight = state.in_flight
                wait = state.backoff_until - self.epoch()
                if wait > 0:
                    if wait > WAIT_OUT_BACKOFF_S or time_left_s() - wait < reserve_s:
                        report.stopped = Dispatched.BACKED_OFF.value
                        return
                    self.sleep(wait)
                    continue
                free = self.settings.concurrent_job_share - state.in_flight
            if free <= 0:
                report.stopped = Dispatched.NO_CAPACITY.value
                return
            want = min(free, PAGE_SIZE)
            batch = list(islice(self.index.by_status(ji.PENDING, limit=want), want))
            if batch and report.oldest_waiting is None:
                report.oldest_waiting = str(batch[0]["created_at"])
            if not batch:
                report.stopped = "no_work"
                return
            progressed = False
            backed_off = False
            for item in batch:
                outcome = self._dispatch_one(item, time_left_s, reserve_s)
                report.count(outcome)
                if outcome in STOPPING:
                    report.stopped = outcome.value
                    return
                if outcome is Dispatched.BACKED_OFF:
                    backed_off = True
                    break  # re-read the counter: wait the back-off out, or stop
                throttled = outcome is Dispatched.THROTTLED
                transient_in_a_row = transient_in_a_row + 1 if throttled else 0
                if transient_in_a_row >= MAX_TRANSIENT_IN_A_ROW:
                    report.stopped = Dispatched.THROTTLED.value
                    return
                # A throttled start tried its job (and gave the slot back): the next pass
                # tries again, within MAX_TRANSIENT_IN_A_ROW.
                progressed = progressed or outcome is not Dispatched.SKIPPED
            if not backed_off and (not progressed or len(batch) < want):
                # Everything read was taken by another run (the index lags), or the backlog
                # is empty now: the next trigger goes on.
                report.stopped = "no_work"
                return

    def _dispatch_one(
        self, item: Mapping[str, Any], time_left_s: Callable[[], float], reserve_s: float
    ) -> Dispatched:
        job_name = str(item["job_name"])
        if time_left_s() < reserve_s:
            return Dispatched.OUT_OF_TIME
        if item.get("needs_validation"):
            try:
                validated = self._validate_late(item)
            except TransientStartError:
                return Dispatched.THROTTLED  # S3 still busy: the next run tries again
            if validated is None:
                return Dispatched.SKIPPED
            item = validated
            if item["status"] == ji.REJECTED:
                return Dispatched.REJECTED
        reason = self._superseded_reason(item)
        if reason:
            now = self.clock()
            moved = self.index.transition(
                job_name,
                to=ji.REJECTED,
                now=now,
                fields={"failure_reason": reason, "completed_at": now},
            )
            return Dispatched.REJECTED if moved else Dispatched.SKIPPED
        attempt = int(item.get("attempts") or 0) + 1
        while True:
            claim = self.ledger.claim(
                job_name,
                attempt=attempt,
                epoch_s=self.epoch(),
                now=self.clock(),
                fields={"transcript_key": transcript_key_for(job_name)},
            )
            if claim is not Claim.RATE_LIMITED:
                break
            # This second's starts are spent: wait for the next second, within the time left.
            wait = math.floor(self.epoch()) + 1 - self.epoch()
            if time_left_s() - wait < reserve_s:
                return Dispatched.OUT_OF_TIME
            self.sleep(wait)
        if claim is Claim.NO_CAPACITY:
            return Dispatched.NO_CAPACITY
        if claim is Claim.JOB_CHANGED:
            return Dispatched.SKIPPED
        return self._start(item, attempt)

    def _start(self, item: Mapping[str, Any], attempt: int) -> Dispatched:
        job_name = str(item["job_name"])
        request = start_request(
            self.settings,
            job_name=job_name,
            bucket=item["input_bucket"],
            key=item["input_key"],
            item=item,
        )
        try:
            self.transcribe.start_medical_transcription_job(**request)
        except (ClientError, BotoCoreError) as error:
            code = error_code(error)
            if code == "ConflictException":
                # Started by an earlier attempt that did not live to see the answer?
                if self._is_our_job(job_name, request):
                    return Dispatched.STARTED
                return self._failed(job_name, NAME_TAKEN)
            if code == "LimitExceededException":
                self.ledger.unclaim(job_name, attempt=attempt, now=self.clock())
                self._streak += 1
                self.ledger.back_off(self.epoch() + backoff_s(self._streak), streak=self._streak)
                return Dispatched.BACKED_OFF
            if is_transient(error):
                self.ledger.unclaim(job_name, attempt=attempt, now=self.clock())
                return Dispatched.THROTTLED
            # The sentence names the code only (AWS's text can quote the media's key); the
            # text itself is kept beside it in the encrypted index, for an operator.
            return self._failed(
                job_name,
                REFUSED.format(code=code),
                transcribe_failure_reason=_message(error),
            )
        if self._streak:
            # A start went through: the next LimitExceeded begins a new episode at 1 s.
            self._streak = 0
            self.ledger.back_off(0.0, streak=0)
        return Dispatched.STARTED

    def _failed(self, job_name: str, reason: str, **more: str) -> Dispatched:
        now = self.clock()
        fields = {"failure_reason": reason, "completed_at": now, **more}
        self.ledger.release(job_name, to=ji.FAILED, now=now, fields=fields)
        return Dispatched.FAILED

    def _is_our_job(self, job_name: str, request: Mapping[str, Any]) -> bool:
        try:
            job = self.transcribe.get_medical_transcription_job(
                MedicalTranscriptionJobName=job_name
            )["MedicalTranscriptionJob"]
        except (ClientError, BotoCoreError) as error:
            if is_transient(error):
                raise
            return False
        return bool(job.get("Media", {}).get("MediaFileUri") == request["Media"]["MediaFileUri"])

    def _validate_late(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """Validate an upload that was admitted while S3 was too busy to read it."""
        job_name = str(item["job_name"])
        starter = JobStarter(
            settings=self.settings,
            s3=self.s3,
            transcribe=self.transcribe,
            index=self.index,
            ledger=self.ledger,
            clock=self.clock,
        )
        fields = starter.validation(job_name, upload_of(item))
        fields["needs_validation"] = False
        status = fields.pop("status")
        if not self.index.transition(job_name, to=status, now=self.clock(), fields=fields):
            return None
        return {**item, **fields, "status": status}

    def _superseded_reason(self, item: Mapping[str, Any]) -> str | None:
        """Transcribe reads the key's current version, not the one we validated: if a newer
        upload replaced it, this job must not transcribe the newer audio under the older
        upload's name (the newer upload is its own job)."""
        version = item.get("input_version")
        if not version:
            return None
        try:
            head = self.s3.head_object(Bucket=item["input_bucket"], Key=item["input_key"])
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return DELETED
            raise
        if head.get("VersionId") not in (None, version):
            return SUPERSEDED
        return None


def _message(error: Exception) -> str:
    """Transcribe's own explanation, kept in the (encrypted) index only, never logged nor
    put in failure_reason."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", "")).strip() or "no detail given"
    return "no detail given"
