"""What the start and completion paths share: settings and AWS clients, injected so tests
and the emulator can swap them, or built from the Lambda's environment."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self

from pipeline import aws_clients
from pipeline.capacity import CapacityLedger, DynamoCapacityLedger
from pipeline.job_index import JobIndex, utc_now
from pipeline.settings import Settings, current_settings


class PipelineStep:
    def __init__(
        self,
        *,
        settings: Settings,
        s3: Any,
        transcribe: Any,
        index: JobIndex,
        ledger: CapacityLedger | None = None,
        clock: Callable[[], str] = utc_now,
        epoch: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.s3 = s3
        self.transcribe = transcribe
        self.index = index
        # The quota counters live in the job table; tests and the simulator pass their own.
        self.ledger: CapacityLedger = ledger or DynamoCapacityLedger(
            index.table,
            share=settings.concurrent_job_share,
            rate_per_second=settings.start_rate_per_second,
        )
        self.clock = clock  # ISO-8601 text, as the index stores time
        self.epoch = epoch  # seconds, for the start-rate windows
        self.sleep = sleep

    @classmethod
    def from_environment(cls) -> Self:
        """Built from this Lambda's settings and its shared, long-lived clients."""
        settings = current_settings()
        return cls(
            settings=settings,
            s3=aws_clients.client("s3"),
            transcribe=aws_clients.client("transcribe"),
            index=JobIndex(aws_clients.table(settings.job_table)),
        )
