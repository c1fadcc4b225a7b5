"""Virtual time and the event loop: nothing here ever waits on the wall clock."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# Virtual time 0 is this instant (any fixed date works: only differences matter).
EPOCH_ORIGIN = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


class VirtualClock:
    """Seconds since EPOCH_ORIGIN; `sleep` moves time on instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self._origin_s = EPOCH_ORIGIN.timestamp()

    def epoch(self) -> float:
        return self._origin_s + self.now

    def moment(self) -> datetime:
        return EPOCH_ORIGIN + timedelta(seconds=self.now)

    def clock(self) -> str:
        """ISO-8601 UTC with milliseconds, as pipeline.job_index.utc_now writes it."""
        text = self.moment().isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")

    def sleep(self, seconds: float) -> None:
        # Handlers run one at a time, so a sleeping handler holds the whole simulation:
        # what else happens meanwhile is handled when it returns (a few seconds late).
        self.now += max(0.0, seconds)

    def advance_to(self, t: float) -> None:
        self.now = max(self.now, t)


class EventLoop:
    """Callbacks at virtual times, in time order (ties in scheduling order)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.processed = 0

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), action))

    def after(self, delay_s: float, action: Callable[[], None]) -> None:
        self.at(self.clock.now + delay_s, action)

    def __len__(self) -> int:
        return len(self._queue)

    def next_time(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def step(self) -> bool:
        """Run the next callback; False when nothing is scheduled."""
        if not self._queue:
            return False
        t, _, action = heapq.heappop(self._queue)
        self.clock.advance_to(t)
        self.processed += 1
        action()
        return True
