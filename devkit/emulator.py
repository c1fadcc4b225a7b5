"""The whole pipeline on moto: real handlers, events delivered the way AWS delivers them.

- S3 -> SQS: the input bucket's notification configuration (as the stack sets it) puts a
  message on the ingest queue for each upload; moto's message is given the `versionId`
  and `sequencer` real S3 sends for a versioned bucket.
- SQS -> start handler: batches of up to the configured size, with receive counts; a
  message the handler reports as failed (or every message of a batch whose invocation
  raised) becomes visible again after the queue's visibility timeout, on the virtual
  clock; moto's redrive moves a message to the DLQ after the configured receives.
- Transcribe Medical: `TranscribeMedicalEmulator` runs each job for a processing time
  that grows with its audio, completes or fails it, writes its transcript, and answers
  starts with a rate limit, ConflictException and the concurrent-job quota.
- Transcribe -> EventBridge -> post-process handler: one event per ended job, which the
  emulator can drop, duplicate or reorder; an invocation that raises is retried with
  backoff as EventBridge retries, then kept in `completion_dlq`.
- Scheduler -> reconciler: every reconcile interval of virtual time.

Time is virtual (`VirtualClock`): `tick()` moves it `tick_minutes` at once (tests and the
demo), or it runs `speed` times faster than the wall clock (`make local`, which calls
`step()` in a loop). Visibility timeouts, job durations, retries, the reconciler's
schedule and its idea of "now" all read this one clock.
"""

from __future__ import annotations

import importlib
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3

from devkit.emulated_resources import EmulatedStack, create_resources
from devkit.lambda_events import sqs_event, transcribe_state_change
from devkit.transcribe_medical import (
    ProcessingTime,
    Script,
    TranscribeMedicalEmulator,
    typical_processing_time,
)
from stacks.config import EnvironmentConfig

OPEN = ("PENDING", "QUEUED", "IN_PROGRESS")
# EventBridge's retry policy on the post-process target (stacks/constants.py's
# COMPLETION_RETRY_ATTEMPTS; a test keeps the two equal). Backoff doubles from a minute.
COMPLETION_RETRY_ATTEMPTS = 8
FIRST_RETRY_DELAY = timedelta(minutes=1)
# Received messages stay invisible in moto for this long (SQS's maximum); the emulator
# makes them visible again itself, after the queue's own timeout on the virtual clock.
HELD_BY_EMULATOR_S = 12 * 3600


def _versioned_moto_s3_events() -> None:
    """moto's S3 notifications omit versionId and sequencer; AWS sends both."""
    from moto.s3 import notifications  # noqa: PLC0415 - patch moto only when emulating

    original = notifications._get_s3_event
    if getattr(original, "_versioned", False):
        return

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        s3_object = event["Records"][0]["s3"]["object"]
        if key.version_id and key.version_id != "null":
            s3_object["versionId"] = key.version_id
        s3_object["sequencer"] = f"{datetime.now(UTC).timestamp():.6f}".replace(".", "")
        return event

    with_version._versioned = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version


class VirtualClock:
    """The emulated world's time: wall time when made, plus what `advance` added, plus
    `speed` x the wall time elapsed since (speed 0: time moves only by `advance`)."""

    def __init__(self, speed: float = 0.0) -> None:
        self.speed = speed
        self._base = datetime.now(UTC)
        self._wall0 = time.monotonic()
        self._advanced = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        running = timedelta(seconds=self.speed * (time.monotonic() - self._wall0))
        with self._lock:
            return self._base + self._advanced + running

    def seconds(self) -> float:
        return self.now().timestamp()

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._advanced += delta

    @property
    def offset(self) -> timedelta:
        """How far virtual time runs ahead of the wall clock."""
        return self.now() - datetime.now(UTC)


@dataclass
class EventPlan:
    """How completion events misbehave (EventBridge delivery is best effort)."""

    drop: float = 0.0  # fraction of events never delivered
    duplicate: bool = False  # every delivered event arrives twice
    reorder: bool = False  # events of a tick arrive shuffled
    seed: int = 0


@dataclass
class FakeContext:
    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = "emulated"
    remaining_ms: int = 300_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class TickReport:
    delivered: int = 0
    start_failures: int = 0
    start_crashes: int = 0  # invocations that raised: the whole batch is retried
    ended: list[str] = field(default_factory=list)
    events_delivered: int = 0
    events_dropped: int = 0
    event_failures: int = 0  # post-process invocations that raised (EventBridge retries)
    reconciled: dict[str, int] = field(default_factory=dict)


@dataclass
class _Delivery:
    """A completion event on its way to the post-process function."""

    event: dict[str, Any]
    due: datetime
    attempt: int = 0


class PipelineEmulator:
    """Build inside `mock_aws()` (or with moto's server in this process and
    AWS_ENDPOINT_URL pointing at it)."""

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        script: Script | None = None,
        events: EventPlan | None = None,
        fail: Callable[[str], str | None] | None = None,
        run_ticks: int = 1,
        reconcile_every: int = 5,
        tick_minutes: float = 1.0,
        clock: VirtualClock | None = None,
        reconcile_interval: timedelta | None = None,
        start_rate: float | None = 25.0,
        processing_time: ProcessingTime = typical_processing_time,
    ) -> None:
        """`run_ticks`: a job runs at least this many ticks (besides its processing time).
        `reconcile_interval` (virtual time) defaults to `reconcile_every` ticks.
        `start_rate`: Transcribe's Start quota a second (None: unlimited)."""
        _versioned_moto_s3_events()
        self.config = config
        self.stack: EmulatedStack = create_resources(config)
        os.environ.update(self.stack.lambda_environment())
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        self.handlers = self._load_handlers()
        self.events = events or EventPlan()
        self.fail = fail or (lambda _key: None)
        self.run_ticks = run_ticks
        self.reconcile_every = reconcile_every
        self.tick_minutes = tick_minutes
        self.clock = clock or VirtualClock()
        self.reconcile_interval = reconcile_interval or timedelta(
            minutes=reconcile_every * tick_minutes
        )
        self.ticks = 0
        self._last_reconcile = self.clock.now()
        self._rng = random.Random(self.events.seed)
        self._running_since: dict[str, int] = {}
        self._held: list[tuple[datetime, str]] = []  # (visible again at, receipt handle)
        self._deliveries: list[_Delivery] = []
        self.completion_dlq: list[dict[str, Any]] = []  # events EventBridge gave up on
        self.s3 = boto3.client("s3", region_name=config.region)
        self.sqs = boto3.client("sqs", region_name=config.region)
        self.table = boto3.resource("dynamodb", region_name=config.region).Table(
            self.stack.job_table
        )
        self.visibility_timeout = timedelta(seconds=self._queue_attribute("VisibilityTimeout"))
        self._queue_arn = str(self._queue_attribute("QueueArn"))
        aws_clients = self.handlers["aws_clients"]
        self.transcribe = TranscribeMedicalEmulator(
            s3=self.s3,
            region=config.region,
            script=script,
            concurrent_job_quota=config.concurrent_job_quota,
            start_rate=start_rate,
            clock=self.clock.seconds,
            processing_time=processing_time,
        )
        self.transcribe.attach(aws_clients.client("transcribe"))

    @property
    def offset(self) -> timedelta:
        return self.clock.offset

    @staticmethod
    def _load_handlers() -> dict[str, ModuleType]:
        settings = importlib.import_module("pipeline.settings")
        aws_clients = importlib.import_module("pipeline.aws_clients")
        settings.current_settings.cache_clear()
        aws_clients.reset()
        return {
            "aws_clients": aws_clients,
            "start_job": importlib.import_module("start_job"),
            "post_process": importlib.import_module("post_process"),
            "reconcile": importlib.import_module("reconcile"),
            "reconciliation": importlib.import_module("pipeline.reconciliation"),
        }

    def close(self) -> None:
        self.transcribe.close()

    # --- what users do ----------------------------------------------------------------------

    def upload(self, key: str, body: bytes) -> str | None:
        """Put an object in the input bucket; S3 notifies the ingest queue. Returns the version."""
        response = self.s3.put_object(Bucket=self.stack.input_bucket, Key=key, Body=body)
        return response.get("VersionId")

    def items(self) -> list[dict[str, Any]]:
        """Every job item (not the capacity counters, whose keys start with "#")."""
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {}
        while True:
            page = self.table.scan(**scan)
            items.extend(i for i in page["Items"] if not str(i["job_name"]).startswith("#"))
            if "LastEvaluatedKey" not in page:
                return items
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.stack.ingest_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def settled(self) -> bool:
        return (
            self.queue_depth() == 0
            and not self._deliveries
            and all(i["status"] not in OPEN for i in self.items())
        )

    # --- time passing -----------------------------------------------------------------------

    def step(self, report: TickReport | None = None) -> TickReport:
        """Everything due at the clock's present moment: messages whose visibility timeout
        ran out, the ingest queue, Transcribe's jobs, events, and the reconciler."""
        report = report or TickReport()
        self._work(report)
        self._reconcile_if_due(report)
        return report

    def tick(self) -> TickReport:
        """One step, then `tick_minutes` of virtual time pass (reconciling when due)."""
        report = TickReport()
        self._work(report)
        self.ticks += 1
        self.clock.advance(timedelta(minutes=self.tick_minutes))
        self._reconcile_if_due(report)
        return report

    def _work(self, report: TickReport) -> None:
        self._release_held()
        self._pump_ingest(report)
        self._advance_transcribe(report)
        self._deliver_events(report)

    def _reconcile_if_due(self, report: TickReport) -> None:
        if self.clock.now() - self._last_reconcile >= self.reconcile_interval:
            self._last_reconcile = self.clock.now()
            report.reconciled = self.reconcile()

    def run_until_settled(
        self, *, max_ticks: int = 100, on_tick: Callable[[TickReport], None] | None = None
    ) -> bool:
        for _ in range(max_ticks):
            report = self.tick()
            if on_tick:
                on_tick(report)
            if self.settled():
                return True
        return self.settled()

    def reconcile(self) -> dict[str, int]:
        """The scheduled reconcile run, on the virtual clock, at full speed."""
        reconciliation = self.handlers["reconciliation"]
        reconciler = self.handlers["reconcile"].reconciler()
        reconciler.now = self.clock.now
        reconciler.limiter = reconciliation.RateLimiter(1e9)
        report = reconciler.run(time_left_ms=lambda: 300_000)
        return dict(report.outcomes)

    # --- SQS -> start-job -------------------------------------------------------------------

    def _queue_attribute(self, name: str) -> Any:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.ingest_queue_url, AttributeNames=[name]
        )["Attributes"]
        value = attributes[name]
        return int(value) if value.isdigit() else value

    def _release_held(self) -> None:
        """Failed messages come back once their visibility timeout has run out."""
        now = self.clock.now()
        due = [handle for at, handle in self._held if at <= now]
        self._held = [(at, handle) for at, handle in self._held if at > now]
        for handle in due:
            self.sqs.change_message_visibility(
                QueueUrl=self.stack.ingest_queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )

    def _pump_ingest(self, report: TickReport) -> None:
        """Deliver every visible message once, in batches, as the event source mapping does."""
        start_job = self.handlers["start_job"]
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.stack.ingest_queue_url,
                MaxNumberOfMessages=self.config.start_batch_size,
                AttributeNames=["All"],
                VisibilityTimeout=HELD_BY_EMULATOR_S,
            ).get("Messages", [])
            if not messages:
                break
            records = [self._lambda_record(m, self._queue_arn) for m in messages]
            try:
                response = start_job.handler(sqs_event(records), FakeContext("start-job"))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:  # an invocation error fails the whole batch
                report.start_crashes += 1
                failed = {m["MessageId"] for m in messages}
            visible_again = self.clock.now() + self.visibility_timeout
            for message in messages:
                if message["MessageId"] in failed:
                    self._held.append((visible_again, message["ReceiptHandle"]))
                else:
                    self.sqs.delete_message(
                        QueueUrl=self.stack.ingest_queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                    )
            report.delivered += len(messages)
            report.start_failures += len(failed)

    @staticmethod
    def _lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", "0"),
                "SenderId": attributes.get("SenderId", "emulated"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", "0"
                ),
            },
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3],
        }

    # --- Transcribe -> EventBridge -> post-process -----------------------------------------

    def _advance_transcribe(self, report: TickReport) -> None:
        for name in self.transcribe.job_names("QUEUED"):
            self._running_since[name] = self.ticks
        # In tick mode a job also runs for at least `run_ticks` ticks; a live clock
        # (`step()` only) has no ticks, and the processing time alone decides.
        held_back = {
            name
            for name in self.transcribe.job_names("IN_PROGRESS", "QUEUED")
            if self.clock.speed == 0
            and self.ticks - self._running_since.setdefault(name, self.ticks) < self.run_ticks
        }
        for name, _status in self.transcribe.advance(
            fail=self.fail, keep_running=held_back.__contains__
        ):
            report.ended.append(name)
            self._running_since.pop(name, None)

    def _input_key(self, job_name: str) -> str:
        return self.transcribe.input_key(job_name)

    def _deliver_events(self, report: TickReport) -> None:
        now = self.clock.now()
        fresh = []
        for name in report.ended:
            if self._rng.random() < self.events.drop:
                report.events_dropped += 1
                continue
            event = transcribe_state_change(
                job_name=name, status=self.transcribe.status(name), region=self.config.region
            )
            fresh.extend([event, event] if self.events.duplicate else [event])
        if self.events.reorder:
            self._rng.shuffle(fresh)
        due = [d for d in self._deliveries if d.due <= now]
        self._deliveries = [d for d in self._deliveries if d.due > now]
        for delivery in [*due, *(_Delivery(event, now) for event in fresh)]:
            try:
                self.handlers["post_process"].handler(delivery.event, FakeContext("post-process"))
            except Exception:  # EventBridge retries any invocation error
                report.event_failures += 1
                self._retry_later(delivery, now)
                continue
            report.events_delivered += 1

    def _retry_later(self, delivery: _Delivery, now: datetime) -> None:
        if delivery.attempt >= COMPLETION_RETRY_ATTEMPTS:
            self.completion_dlq.append(delivery.event)
            return
        delay = FIRST_RETRY_DELAY * (2**delivery.attempt)
        self._deliveries.append(_Delivery(delivery.event, now + delay, delivery.attempt + 1))

    def deliver_late_events(self, names: Sequence[str], status: str) -> None:
        """Events that arrive long after the job ended (EventBridge retries)."""
        for name in names:
            event = transcribe_state_change(job_name=name, status=status, region=self.config.region)
            self.handlers["post_process"].handler(event, FakeContext("post-process"))
