"""SQS and Lambda's SQS event source, in memory.

A queue keeps visibility timeouts, receive counts and redrive (a message received more
than `max_receive_count` times moves to the dead-letter queue instead), and deletes by
receipt handle. The event source polls in batches, runs at most `max_concurrency`
invocations at once, and deletes what the handler did not report as failed (partial
batch failures); a crashed invocation deletes nothing, so its messages come back after the
visibility timeout.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devkit.lambda_events import sqs_record
from devkit.simulation.calls import CallCounter
from devkit.simulation.clock import EventLoop, VirtualClock
from devkit.simulation.faults import SimulatedCrash, client_error
from pipeline.ingest_queue import queue_url_from_arn

SQS = "sqs"
ACCOUNT = "123456789012"


@dataclass
class Message:
    message_id: str
    body: str
    receive_count: int = 0
    receipt_handle: str = ""


@dataclass
class MemoryQueue:
    name: str
    clock: VirtualClock
    visibility_timeout_s: float = 360.0
    max_receive_count: int | None = None
    dead_letter_queue: MemoryQueue | None = None
    messages: dict[str, Message] = field(default_factory=dict)
    _visible: list[tuple[float, int, str, str]] = field(default_factory=list)
    _seq: Any = field(default_factory=itertools.count)
    on_visible: Callable[[float], None] = lambda t: None

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{self.name}"

    @property
    def url(self) -> str:
        return queue_url_from_arn(self.arn)

    def send(self, body: str) -> None:
        message = Message(message_id=f"m-{next(self._seq):09d}", body=body)
        self.messages[message.message_id] = message
        self._push(message, self.clock.now)

    def _push(self, message: Message, visible_at: float) -> None:
        # The handle current at push time: a stale heap entry (deleted, or received again)
        # is skipped when it surfaces.
        heapq.heappush(
            self._visible,
            (visible_at, next(self._seq), message.message_id, message.receipt_handle),
        )
        self.on_visible(visible_at)

    def next_visible_at(self) -> float | None:
        while self._visible:
            _, _, message_id, handle = self._visible[0]
            message = self.messages.get(message_id)
            if message is not None and message.receipt_handle == handle:
                return self._visible[0][0]
            heapq.heappop(self._visible)
        return None

    def receive(self, max_messages: int) -> list[Message]:
        received: list[Message] = []
        now = self.clock.now
        while len(received) < max_messages:
            visible_at = self.next_visible_at()
            if visible_at is None or visible_at > now:
                break
            _, _, message_id, _ = heapq.heappop(self._visible)
            message = self.messages[message_id]
            if self.max_receive_count is not None and (
                message.receive_count >= self.max_receive_count
            ):
                del self.messages[message_id]  # redrive: one receive too many
                if self.dead_letter_queue is not None:
                    self.dead_letter_queue.send(message.body)
                continue
            message.receive_count += 1
            message.receipt_handle = f"{message_id}#{message.receive_count}"
            self._push(message, now + self.visibility_timeout_s)
            received.append(message)
        return received

    def delete(self, receipt_handle: str) -> bool:
        message_id = receipt_handle.partition("#")[0]
        message = self.messages.get(message_id)
        if message is None or message.receipt_handle != receipt_handle:
            return False
        del self.messages[message_id]
        return True

    def __len__(self) -> int:
        return len(self.messages)


class MemorySqs:
    """The SQS client the start handler's glue calls (DeleteMessageBatch)."""

    def __init__(self, calls: CallCounter, queues: Sequence[MemoryQueue]) -> None:
        self._calls = calls
        self._by_url = {queue.url: queue for queue in queues}

    def delete_message_batch(
        self, *, QueueUrl: str, Entries: list[dict[str, str]]
    ) -> dict[str, Any]:
        self._calls.count(SQS, "DeleteMessageBatch")
        if len(Entries) > 10:
            raise client_error(
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "DeleteMessageBatch"
            )
        queue = self._by_url[QueueUrl]
        successful: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        for entry in Entries:
            # SQS accepts a stale handle of a message already gone; what matters is that the
            # message is not delivered again.
            queue.delete(entry["ReceiptHandle"])
            successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": failed}


BatchHandler = Callable[[list[dict[str, Any]]], set[str]]


class EventSource:
    """Lambda's SQS event source mapping, with maximum concurrency and batches."""

    def __init__(
        self,
        *,
        queue: MemoryQueue,
        loop: EventLoop,
        handler: BatchHandler,
        batch_size: int,
        max_concurrency: int,
        invocation_s: float = 0.2,
    ) -> None:
        self.queue = queue
        self.loop = loop
        self.handler = handler
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.invocation_s = invocation_s
        self.running = 0
        self.invocations = 0
        self.crashes = 0
        self._poll_at: float | None = None
        queue.on_visible = self._wake

    def _wake(self, t: float) -> None:
        if self._poll_at is None or t < self._poll_at:
            self._poll_at = t
            self.loop.at(t, self._poll)

    def _poll(self) -> None:
        now = self.loop.clock.now
        if self._poll_at is not None and self._poll_at > now:
            return  # a later wake-up replaced this one
        self._poll_at = None
        while self.running < self.max_concurrency:
            batch = self.queue.receive(self.batch_size)
            if not batch:
                break
            self._invoke(batch)
        upcoming = self.queue.next_visible_at()
        if upcoming is not None and self.running < self.max_concurrency:
            self._wake(max(upcoming, now))

    def _invoke(self, batch: list[Message]) -> None:
        started = self.loop.clock.now
        self.running += 1
        self.invocations += 1
        records = [
            sqs_record(
                m.body,
                queue_arn=self.queue.arn,
                receive_count=m.receive_count,
                message_id=m.message_id,
                receipt_handle=m.receipt_handle,
            )
            for m in batch
        ]
        try:
            failed = self.handler(records)
        except SimulatedCrash:
            self.crashes += 1
        else:
            for message in batch:
                if message.message_id not in failed:
                    self.queue.delete(message.receipt_handle)  # Lambda's own delete
        ends = max(self.loop.clock.now, started) + self.invocation_s
        self.loop.at(ends, self._finished)

    def _finished(self) -> None:
        self.running -= 1
        self._wake(self.loop.clock.now)
