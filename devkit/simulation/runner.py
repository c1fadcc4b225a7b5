"""Wires the real pipeline classes to the stand-ins and runs a scenario in virtual time.

The handlers' glue is repeated here without Powertools (its logging would cost more than
the simulation): the start function records each message with the real `JobStarter`,
deletes the recorded messages with DeleteMessageBatch, then runs the real `Dispatcher`;
post-process runs the real `JobFinisher` and, when a job ended, one dispatch; the
scheduler runs the real `Reconciler` every few minutes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from devkit.lambda_events import s3_notification, s3_test_event, transcribe_state_change
from devkit.simulation.calls import CallCounter
from devkit.simulation.clock import EventLoop, VirtualClock
from devkit.simulation.eventbridge import EventBus
from devkit.simulation.faults import SimulatedCrash
from devkit.simulation.metrics import BusyMeter, RunResult, Series
from devkit.simulation.s3 import MemoryS3
from devkit.simulation.scenario import Scenario, Upload
from devkit.simulation.sqs import EventSource, MemoryQueue, MemorySqs
from devkit.simulation.store import ItemStore, MemoryJobIndex, MemoryLedger
from devkit.simulation.transcribe import MemoryTranscribe, SimulatedJob
from pipeline import job_index as ji
from pipeline import reconciliation
from pipeline.completion import (
    Finish,
    JobFinisher,
    PermanentFinishError,
    TransientFinishError,
)
from pipeline.dispatch import Dispatcher, DispatchError
from pipeline.ingest_queue import delete_finished, queue_url_from_arn
from pipeline.job_names import job_name_for
from pipeline.reconciliation import GETS_PER_SECOND, RateLimiter, Reconciler
from pipeline.s3_events import uploads_in
from pipeline.settings import Settings
from pipeline.start import JobStarter, Outcome

INPUT_BUCKET = "sim-input"
OUTPUT_BUCKET = "sim-output"
START_TIMEOUT_S = 60.0  # stacks/constants.py START_JOB_TIMEOUT
POST_PROCESS_TIMEOUT_S = 300.0
RECONCILE_TIMEOUT_S = 300.0
DRAIN_S = 3600.0  # after the last file ends: late retries and events still run
SAMPLE_EVERY_S = 30.0
NOT_AUDIO = b"not audio\n"  # the body of an invalid upload


def simulation_settings(scenario: Scenario, **overrides: Any) -> Settings:
    settings = Settings(
        job_table="sim-jobs",
        input_bucket=INPUT_BUCKET,
        output_bucket=OUTPUT_BUCKET,
        kms_key_id="arn:aws:kms:us-east-1:123456789012:key/simulated",
        job_name_prefix="sim",
        ingest_max_receives=scenario.max_receives,
        concurrent_job_share=scenario.stack_share,
        start_rate_per_second=scenario.start_rate,
    )
    return replace(settings, **overrides)


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        *,
        settings_overrides: Mapping[str, Any] | None = None,
        keep_bodies: bool = False,
        reconcile_at: Sequence[float] | None = None,
    ) -> None:
        """`reconcile_at`: run the reconciler at exactly these virtual times instead of every
        `scenario.reconcile_minutes` (a parity test schedules it as the emulator runs it)."""
        self.scenario = scenario
        self.reconcile_at = tuple(reconcile_at) if reconcile_at is not None else None
        self.faults = scenario.faults
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.clock = VirtualClock()
        self.loop = EventLoop(self.clock)
        self.calls = CallCounter()
        self.settings = simulation_settings(scenario, **dict(settings_overrides or {}))
        self.store = ItemStore()
        self.index = MemoryJobIndex(self.store, self.calls)
        self.ledger = MemoryLedger(
            self.index,
            share=self.settings.concurrent_job_share,
            rate_per_second=self.settings.start_rate_per_second,
            calls=self.calls,
        )
        self.s3 = MemoryS3(self.calls, keep_bodies=keep_bodies)
        self.transcribe = MemoryTranscribe(
            clock=self.clock,
            loop=self.loop,
            s3=self.s3,
            calls=self.calls,
            rng=self.rng,
            faults=self.faults,
            quota=scenario.quota,
            start_rate=scenario.start_rate,
            get_rate=scenario.get_rate,
        )
        self.ingest_dlq = MemoryQueue("sim-ingest-dlq", self.clock)
        self.ingest = MemoryQueue(
            "sim-ingest",
            self.clock,
            visibility_timeout_s=scenario.visibility_timeout_s,
            max_receive_count=scenario.max_receives,
            dead_letter_queue=self.ingest_dlq,
        )
        self.sqs = MemorySqs(self.calls, [self.ingest])
        step: dict[str, Any] = {
            "settings": self.settings,
            "s3": self.s3,
            "transcribe": self.transcribe,
            "index": self.index,
            "ledger": self.ledger,
            "clock": self.clock.clock,
            "epoch": self.clock.epoch,
            "sleep": self.clock.sleep,
        }
        self.starter = JobStarter(**step)
        self.dispatcher = Dispatcher(**step)
        self.finisher = JobFinisher(max_attempts=5, **step)
        # EventBridge -> the completion queue -> post-process (as the stack wires it): a
        # crashed invocation's events come back after the visibility timeout, up to
        # max_receives times, instead of Lambda's two async retries.
        self.completion_dlq = MemoryQueue("sim-completion-dlq", self.clock)
        self.completion = MemoryQueue(
            "sim-completion",
            self.clock,
            visibility_timeout_s=scenario.visibility_timeout_s,
            max_receive_count=scenario.max_receives,
            dead_letter_queue=self.completion_dlq,
        )
        self.bus = EventBus(
            loop=self.loop, rng=self.rng, faults=self.faults, target=self.completion
        )
        self.completion_source = EventSource(
            queue=self.completion,
            loop=self.loop,
            handler=self._post_process,
            batch_size=scenario.batch_size,
            max_concurrency=scenario.max_concurrency,
        )
        self.transcribe.on_job_end = self._job_ended
        self.source = EventSource(
            queue=self.ingest,
            loop=self.loop,
            handler=self._start_job,
            batch_size=scenario.batch_size,
            max_concurrency=scenario.max_concurrency,
        )
        # S3 sends a test event when the stack sets the bucket's notification: the start
        # function meets it before any upload (moto sends it too).
        self.ingest.send(_json(s3_test_event(self.settings.input_bucket)))
        self.uploads: list[Upload] = []
        self.job_names: list[str] = []
        self.arrived = 0
        self.handler_errors: dict[str, int] = {}
        self.meter = BusyMeter(scenario.quota)
        self.series = Series()
        self._next_sample = 0.0
        self._finished_at: float | None = None
        self.reconcile_runs = 0

    # --- the clinic uploads ------------------------------------------------------------------

    def _arrive(self, upload: Upload) -> None:
        bucket = self.settings.input_bucket
        if upload.valid:
            obj = self.s3.upload_recording(bucket, upload.key, duration_s=upload.duration_s)
        else:
            obj = self.s3.upload_bytes(bucket, upload.key, NOT_AUDIO)
        self.arrived += 1
        self.job_names.append(
            job_name_for(
                self.settings.job_name_prefix,
                bucket=bucket,
                key=upload.key,
                version_id=obj.version_id,
            )
        )
        body = s3_notification(
            bucket=bucket,
            key=upload.key,
            size=obj.size,
            version_id=obj.version_id,
            etag=obj.etag,
        )
        text = _json(body)
        self.ingest.send(text)
        if self.rng.random() < self.faults.message_duplicate:
            self.ingest.send(text)  # S3 delivers at least once

    # --- the handlers' glue ------------------------------------------------------------------

    def _error(self, error: BaseException) -> None:
        name = type(error).__name__
        self.handler_errors[name] = self.handler_errors.get(name, 0) + 1

    def _start_job(self, records: list[dict[str, Any]]) -> set[str]:
        """start_job.handler: record each message, delete the recorded, then dispatch."""
        failed: set[str] = set()
        admitted = 0
        for raw in records:
            record = SQSRecord(raw)
            receives = int(record.attributes.approximate_receive_count or 1)
            last_delivery = receives >= self.settings.ingest_max_receives
            try:
                for upload in uploads_in(record):
                    result = self.starter.handle(upload, last_delivery=last_delivery)
                    admitted += result.outcome is Outcome.PENDING
            except Exception as error:  # what Powertools' BatchProcessor does: fail the item
                self._error(error)
                failed.add(record.message_id)
        done = [
            (r["messageId"], r["receiptHandle"]) for r in records if r["messageId"] not in failed
        ]
        if done:
            delete_finished(self.sqs, queue_url_from_arn(records[0]["eventSourceARN"]), done)
        if admitted:
            self._dispatch(START_TIMEOUT_S)
        return failed

    def _dispatch(self, budget_s: float, *, slots_freed: int = 0) -> None:
        """One dispatch run inside an invocation (pipeline.dispatch_run without metrics)."""
        deadline = self.clock.now + budget_s
        self.transcribe.arm_crash_after_start(self.rng.random() < self.faults.start_crash)
        try:
            self.dispatcher.dispatch(
                time_left_s=lambda: deadline - self.clock.now, slots_freed=slots_freed
            )
        except DispatchError as error:
            self._error(error)
        finally:
            self.transcribe.arm_crash_after_start(False)

    def _job_ended(self, job: SimulatedJob) -> None:
        self.bus.put(transcribe_state_change(job_name=job.name, status=job.status))

    def _post_process(self, records: list[dict[str, Any]]) -> set[str]:
        """post_process.handler on a batch of the completion queue: finish each job (a busy
        AWS fails only its own message), then one dispatch if any job ended (a slot freed)."""
        if self.rng.random() < self.faults.post_process_crash:
            self.s3.arm_crash_after_puts(self.rng.randint(1, 7))
        failed: set[str] = set()
        ended = 0
        try:
            for record in records:
                job_name = str(json.loads(record["body"])["detail"]["TranscriptionJobName"])
                try:
                    result = self.finisher.finish(job_name)
                except PermanentFinishError as error:
                    self._error(error)
                    continue
                except TransientFinishError:
                    failed.add(record["messageId"])
                    continue
                ended += result.outcome in (Finish.COMPLETED, Finish.FAILED)
            if ended:
                self._dispatch(POST_PROCESS_TIMEOUT_S, slots_freed=ended)
        finally:
            self.s3.arm_crash_after_puts(None)
        return failed

    def _scheduled_reconcile(self) -> None:
        """The scheduler's run, every `reconcile_minutes` until the drain is over."""
        self.reconcile()
        if self._finished_at is None or self.clock.now < self._finished_at + DRAIN_S:
            self.loop.after(self.scenario.reconcile_minutes * 60.0, self._scheduled_reconcile)

    def reconcile(self) -> None:
        """One reconcile.handler run, now."""
        deadline = self.clock.now + RECONCILE_TIMEOUT_S
        self.reconcile_runs += 1
        reconciler = Reconciler(
            index=self.index,
            finisher=self.finisher,
            dispatcher=self.dispatcher,
            ledger=self.ledger,
            limiter=RateLimiter(GETS_PER_SECOND, clock=self.clock.epoch, sleep=self.clock.sleep),
            now=self.clock.moment,
            poll_after=timedelta(seconds=self.settings.reconcile_poll_after_s),
        )
        self.transcribe.arm_crash_after_start(self.rng.random() < self.faults.start_crash)
        try:
            reconciler.run(time_left_ms=lambda: int((deadline - self.clock.now) * 1000))
        except SimulatedCrash:
            pass  # the next scheduled run goes on
        except Exception as error:
            self._error(error)
        finally:
            self.transcribe.arm_crash_after_start(False)

    # --- running and measuring -----------------------------------------------------------------

    def _terminal(self) -> int:
        return sum(self.store.count(s) for s in ji.TERMINAL_STATUSES)

    def _waiting(self) -> int:
        """Uploads not yet in Transcribe nor ended: unrecorded messages plus the backlog."""
        return (
            self.arrived
            - self.store.created
            + self.store.count(ji.PENDING)
            + (self.store.count(ji.QUEUED) - self._queued_in_transcribe())
        )

    def _queued_in_transcribe(self) -> int:
        return self.store.count(ji.QUEUED)  # claims are started at the same instant

    def _observe(self) -> None:
        now = self.clock.now
        running = self.transcribe.running
        waiting = self._waiting()
        self.meter.advance(now)
        self.meter.set_state(running, waiting)
        if now >= self._next_sample:
            self.series.t.append(now)
            self.series.in_flight.append(running)
            self.series.backlog.append(waiting)
            self.series.completed.append(self.store.count(ji.COMPLETED))
            self._next_sample = now + SAMPLE_EVERY_S

    def run(self, *, max_virtual_s: float | None = None) -> RunResult:
        wall = time.perf_counter()
        scenario = self.scenario
        self.uploads = scenario.uploads()
        for upload in self.uploads:
            self.loop.at(upload.arrives_s, partial(self._arrive, upload))
        if self.reconcile_at is None:
            self.loop.at(scenario.reconcile_minutes * 60.0, self._scheduled_reconcile)
        else:
            for at in self.reconcile_at:
                self.loop.at(at, self.reconcile)
        bound = self.lower_bound_s()
        cap = max_virtual_s if max_virtual_s is not None else 10 * bound + 86_400.0
        files = len(self.uploads)
        while self.loop.next_time() is not None:
            next_t = self.loop.next_time()
            assert next_t is not None
            if next_t > cap:
                break
            if self._finished_at is not None and next_t > self._finished_at + DRAIN_S:
                break
            self.meter.advance(max(next_t, self.clock.now))
            self.loop.step()
            self._observe()
            if self._finished_at is None and self.arrived == files and self._terminal() >= files:
                self._finished_at = self.clock.now
        return self._result(time.perf_counter() - wall, bound)

    def lower_bound_s(self) -> float:
        """max(N x mean job time / quota, N / start rate) + the longest job; with arrivals
        spread out, at least the last arrival's own end."""
        valid = [u for u in self.uploads if u.valid] or self.uploads
        n = len(valid)
        mean_job = sum(u.job_s for u in valid) / n
        longest = max(u.job_s for u in valid)
        capacity = max(n * mean_job / self.scenario.quota, n / self.scenario.start_rate) + longest
        first = min(u.arrives_s for u in self.uploads)
        return max(capacity, max(u.arrives_s + u.job_s for u in valid) - first)

    def _result(self, wall_s: float, bound: float) -> RunResult:
        items = self.store.items
        lost = sum(
            1
            for name in self.job_names
            if name not in items or items[name].get("status") not in ji.TERMINAL_STATUSES
        )
        lost += len(self.uploads) - len(self.job_names)  # never arrived (cut short)
        first = min(u.arrives_s for u in self.uploads)
        end = self._finished_at if self._finished_at is not None else self.clock.now
        per_service = {s: self.calls.total(s) for s in self.calls.services()}
        return RunResult(
            name=self.scenario.name,
            files=len(self.uploads),
            completed=self.store.count(ji.COMPLETED),
            lost=lost,
            duplicate_jobs=sum(n - 1 for n in self.transcribe.accepted_by_media.values() if n > 1),
            dlq_messages=len(self.ingest_dlq) + len(self.completion_dlq),
            peak_in_flight=self.transcribe.peak_running,
            quota=self.scenario.quota,
            peak_starts_per_second=max(self.transcribe.accepted_per_second.values(), default=0),
            start_rate=self.scenario.start_rate,
            makespan_s=end - first,
            lower_bound_s=bound,
            quota_busy_while_backlog=self.meter.fraction,
            start_calls=self.calls.of("transcribe", "StartMedicalTranscriptionJob"),
            aws_calls=per_service,
            document_writes=self.calls.of("s3", "PutObject"),
            wall_s=wall_s,
            burst=self.scenario.arrival == "burst",
            faulty=self.scenario.faults != type(self.scenario.faults)(),
            extra={
                "failed": float(self.store.count(ji.FAILED)),
                "rejected": float(self.store.count(ji.REJECTED)),
                "reconcile_runs": float(self.reconcile_runs),
                "events_dropped": float(self.bus.dropped),
            },
            series=self.series,
            errors=dict(self.handler_errors),
        )


def _json(body: Mapping[str, Any]) -> str:
    return json.dumps(body)


def simulate(scenario: Scenario, **kwargs: Any) -> RunResult:
    return Simulation(scenario, **kwargs).run()


__all__ = ["Simulation", "reconciliation", "simulate"]
