"""The whole pipeline on moto: real handlers, events delivered the way AWS delivers them.

- S3 -> SQS: the input bucket's notification configuration (as the stack sets it) puts a
  message on the ingest queue for each upload; moto's message is given the `versionId`
  and `sequencer` real S3 sends for a versioned bucket.
- SQS -> start handler: batches of up to the configured size, with receive counts;
  messages the handler reports as failed become visible again on the next tick; the
  queue's redrive policy moves a message to the DLQ after the configured receives.
- Transcribe Medical: `TranscribeMedicalEmulator` runs, completes or fails jobs, writes
  their transcripts, throttles starts and enforces the concurrent-job quota.
- Transcribe -> EventBridge -> post-process handler: one event per ended job, which the
  emulator can drop, duplicate or reorder.
- Scheduler -> reconciler: every `reconcile_every` ticks, on a virtual clock that moves
  `tick_minutes` a tick, so PENDING jobs age as they would.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3

from devkit.emulated_resources import EmulatedStack, create_resources
from devkit.lambda_events import sqs_event, transcribe_state_change
from devkit.transcribe_medical import Script, TranscribeMedicalEmulator
from stacks.config import EnvironmentConfig

OPEN = ("PENDING", "QUEUED", "IN_PROGRESS")


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
    ended: list[str] = field(default_factory=list)
    events_delivered: int = 0
    events_dropped: int = 0
    reconciled: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
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
        self.ticks = 0
        self.offset = timedelta(0)
        self._rng = random.Random(self.events.seed)
        self._running_since: dict[str, int] = {}
        self.s3 = boto3.client("s3", region_name=config.region)
        self.sqs = boto3.client("sqs", region_name=config.region)
        self.table = boto3.resource("dynamodb", region_name=config.region).Table(
            self.stack.job_table
        )
        aws_clients = self.handlers["aws_clients"]
        self.transcribe = TranscribeMedicalEmulator(
            s3=self.s3,
            region=config.region,
            script=script,
            concurrent_job_quota=config.concurrent_job_quota,
        )
        self.transcribe.attach(aws_clients.client("transcribe"))

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
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {}
        while True:
            page = self.table.scan(**scan)
            items.extend(page["Items"])
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
        return self.queue_depth() == 0 and all(i["status"] not in OPEN for i in self.items())

    # --- time passing -----------------------------------------------------------------------

    def tick(self) -> TickReport:
        report = TickReport()
        self._pump_ingest(report)
        self._advance_transcribe(report)
        self._deliver_events(report)
        self.ticks += 1
        self.offset += timedelta(minutes=self.tick_minutes)
        if self.ticks % self.reconcile_every == 0:
            report.reconciled = self.reconcile()
        return report

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
        reconciler.now = lambda: datetime.now(UTC) + self.offset
        reconciler.limiter = reconciliation.RateLimiter(1e9)
        report = reconciler.run(time_left_ms=lambda: 300_000)
        return dict(report.outcomes)

    def _pump_ingest(self, report: TickReport) -> None:
        """Deliver every visible message once, in batches; failed ones come back next tick."""
        failed_handles: list[str] = []
        start_job = self.handlers["start_job"]
        queue_arn = self._queue_arn()
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.stack.ingest_queue_url,
                MaxNumberOfMessages=self.config.start_batch_size,
                AttributeNames=["All"],
                VisibilityTimeout=360,
            ).get("Messages", [])
            if not messages:
                break
            records = [self._lambda_record(m, queue_arn) for m in messages]
            response = start_job.handler(sqs_event(records), FakeContext("start-job"))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:
                    failed_handles.append(message["ReceiptHandle"])
                else:
                    self.sqs.delete_message(
                        QueueUrl=self.stack.ingest_queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                    )
            report.delivered += len(messages)
            report.start_failures += len(failed)
        for handle in failed_handles:  # SQS retries after the visibility timeout
            self.sqs.change_message_visibility(
                QueueUrl=self.stack.ingest_queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )

    def _queue_arn(self) -> str:
        return str(
            self.sqs.get_queue_attributes(
                QueueUrl=self.stack.ingest_queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        )

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

    def _advance_transcribe(self, report: TickReport) -> None:
        for name in self.transcribe.job_names("QUEUED"):
            self.transcribe.run(name)
            self._running_since[name] = self.ticks
        for name in self.transcribe.job_names("IN_PROGRESS"):
            if self.ticks - self._running_since.setdefault(name, self.ticks) < self.run_ticks:
                continue
            reason = self.fail(self._input_key(name))
            if reason:
                self.transcribe.fail(name, reason)
            else:
                self.transcribe.complete(name)
            report.ended.append(name)

    def _input_key(self, job_name: str) -> str:
        uri = self.transcribe.media_uri(job_name)
        return uri.split("/", 3)[3] if uri.count("/") >= 3 else uri

    def _deliver_events(self, report: TickReport) -> None:
        events = []
        for name in report.ended:
            if self._rng.random() < self.events.drop:
                report.events_dropped += 1
                continue
            event = transcribe_state_change(
                job_name=name, status=self.transcribe.status(name), region=self.config.region
            )
            events.extend([event, event] if self.events.duplicate else [event])
        if self.events.reorder:
            self._rng.shuffle(events)
        for event in events:
            self.handlers["post_process"].handler(event, FakeContext("post-process"))
            report.events_delivered += 1

    def deliver_late_events(self, names: Sequence[str], status: str) -> None:
        """Events that arrive long after the job ended (EventBridge retries)."""
        for name in names:
            event = transcribe_state_change(job_name=name, status=status, region=self.config.region)
            self.handlers["post_process"].handler(event, FakeContext("post-process"))
