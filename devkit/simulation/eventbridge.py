"""EventBridge's delivery of Transcribe's job-state events to the completion queue.

Delivery is best effort: events may be dropped, duplicated, delayed and so reordered.
"""

from __future__ import annotations

import json
import random
from typing import Any

from devkit.simulation.clock import EventLoop
from devkit.simulation.faults import Faults
from devkit.simulation.sqs import MemoryQueue


class EventBus:
    def __init__(
        self, *, loop: EventLoop, rng: random.Random, faults: Faults, target: MemoryQueue
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
        self.target.send(json.dumps(event, default=str))
