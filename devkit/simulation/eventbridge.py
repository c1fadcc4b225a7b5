"""EventBridge's delivery of Transcribe's job-state events, and Lambda's async invoke.

Delivery is best effort: events may be dropped, duplicated, delayed and so reordered.
An asynchronous invocation that fails is retried twice (after about 1 and 2 minutes,
as Lambda does) and then goes to the function's dead-letter queue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from devkit.simulation.clock import EventLoop
from devkit.simulation.faults import Faults, SimulatedCrash

RETRY_DELAYS_S = (60.0, 120.0)


class AsyncFunction:
    """A Lambda function invoked asynchronously, with retries and a dead-letter queue."""

    def __init__(self, *, loop: EventLoop, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.loop = loop
        self.handler = handler
        self.dead_letters: list[dict[str, Any]] = []
        self.invocations = 0
        self.failures = 0

    def invoke(self, event: dict[str, Any], attempt: int = 0) -> None:
        self.invocations += 1
        try:
            self.handler(event)
        except (Exception, SimulatedCrash):
            self.failures += 1
            if attempt < len(RETRY_DELAYS_S):
                self.loop.after(RETRY_DELAYS_S[attempt], lambda: self.invoke(event, attempt + 1))
            else:
                self.dead_letters.append(event)


class EventBus:
    def __init__(
        self, *, loop: EventLoop, rng: random.Random, faults: Faults, target: AsyncFunction
    ) -> None:
        self.loop = loop
        self.rng = rng
        self.faults = faults
        self.target = target
        self.emitted = 0
        self.dropped = 0
        self.delivered = 0

    def put(self, event: dict[str, Any]) -> None:
        self.emitted += 1
        if self.rng.random() < self.faults.event_drop:
            self.dropped += 1
            return
        copies = 2 if self.rng.random() < self.faults.event_duplicate else 1
        for _ in range(copies):
            delay = 0.5 + self.rng.uniform(0.0, self.faults.event_max_delay_s)
            self.loop.after(delay, lambda: self._deliver(event))

    def _deliver(self, event: dict[str, Any]) -> None:
        self.delivered += 1
        self.target.invoke(event)
