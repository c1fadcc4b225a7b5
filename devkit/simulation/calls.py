"""Every AWS call the pipeline's code makes, by service and operation."""

from __future__ import annotations

from collections import Counter


class CallCounter:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, service: str, operation: str) -> None:
        self.counts[(service, operation)] += 1

    def total(self, service: str | None = None) -> int:
        return sum(n for (s, _), n in self.counts.items() if service is None or s == service)

    def of(self, service: str, operation: str) -> int:
        return self.counts[(service, operation)]

    def services(self) -> list[str]:
        return sorted({s for s, _ in self.counts})
