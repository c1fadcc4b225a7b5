"""What a run measured, and the `name: value` lines the benchmark prints."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Series:
    """Samples for the chart: virtual seconds, jobs in Transcribe, waiting work, completed."""

    t: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)


class BusyMeter:
    """Mean fraction of the quota in use, weighted by time, over the time work waits."""

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self.busy_area = 0.0
        self.waiting_time = 0.0
        self._t = 0.0
        self._running = 0
        self._waiting = 0

    def advance(self, t: float) -> None:
        dt = t - self._t
        if dt > 0 and self._waiting > 0:
            self.busy_area += dt * min(1.0, self._running / self.quota)
            self.waiting_time += dt
        self._t = max(self._t, t)

    def set_state(self, running: int, waiting: int) -> None:
        self._running, self._waiting = running, waiting

    @property
    def fraction(self) -> float:
        return self.busy_area / self.waiting_time if self.waiting_time else 1.0


@dataclass
class RunResult:
    name: str
    files: int
    completed: int
    lost: int
    duplicate_jobs: int
    dlq_messages: int
    peak_in_flight: int
    quota: int
    peak_starts_per_second: int
    start_rate: int
    makespan_s: float
    lower_bound_s: float
    quota_busy_while_backlog: float
    start_calls: int
    aws_calls: dict[str, int]
    document_writes: int = 0  # S3 PutObject calls: one per document a job leaves
    wall_s: float = 0.0
    burst: bool = True
    faulty: bool = False
    extra: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # exceptions the glue caught, by type
    series: Series = field(default_factory=Series)

    @property
    def makespan_ratio(self) -> float:
        return self.makespan_s / self.lower_bound_s if self.lower_bound_s else float("inf")

    @property
    def start_calls_per_file(self) -> float:
        return self.start_calls / self.files

    @property
    def aws_calls_per_file(self) -> float:
        return sum(self.aws_calls.values()) / self.files

    def lines(self) -> list[str]:
        """`run.name: value` lines, goals beside the figures they judge."""

        def goal(met: bool, text: str) -> str:
            return f"  (goal {text}: {'met' if met else 'NOT met'})"

        p = self.name
        out = [
            f"{p}.files: {self.files}",
            f"{p}.completed: {self.completed}",
            f"{p}.lost: {self.lost}{goal(self.lost == 0, '0')}",
            f"{p}.duplicate_jobs: {self.duplicate_jobs}{goal(self.duplicate_jobs == 0, '0')}",
            f"{p}.dlq_messages: {self.dlq_messages}{goal(self.dlq_messages == 0, '0')}",
            f"{p}.peak_in_flight: {self.peak_in_flight}"
            + goal(self.peak_in_flight <= self.quota, "<= quota"),
            f"{p}.quota: {self.quota}",
            f"{p}.peak_starts_per_second: {self.peak_starts_per_second}"
            + goal(self.peak_starts_per_second <= self.start_rate, "<= start_rate"),
            f"{p}.start_rate: {self.start_rate}",
        ]
        ratio = f"{p}.makespan_ratio: {self.makespan_ratio:.3f}"
        busy = f"{p}.quota_busy_while_backlog: {self.quota_busy_while_backlog:.3f}"
        if self.burst and not self.faulty:  # the issue sets these for the clean bursts
            ratio += goal(self.makespan_ratio <= 1.1, "<= 1.1")
            busy += goal(self.quota_busy_while_backlog >= 0.9, ">= 0.9")
        out += [ratio, busy]
        limit = 1.3 if self.faulty else 1.05
        out.append(
            f"{p}.start_calls_per_file: {self.start_calls_per_file:.3f}"
            + goal(self.start_calls_per_file <= limit, f"<= {limit}")
        )
        calls = f"{p}.aws_calls_per_file: {self.aws_calls_per_file:.2f}"
        if not self.faulty:
            calls += goal(self.aws_calls_per_file <= 15, "<= 15")
        out.append(calls)
        # What the count is made of: the documents alone are a fixed number per job.
        out.append(f"{p}.documents_per_file: {self.document_writes / self.files:.2f}")
        out.append(
            f"{p}.aws_calls_per_file_besides_documents: "
            f"{(sum(self.aws_calls.values()) - self.document_writes) / self.files:.2f}"
        )
        for service in sorted(self.aws_calls):
            out.append(
                f"{p}.aws_calls_per_file.{service}: {self.aws_calls[service] / self.files:.2f}"
            )
        out.append(f"{p}.wall_s: {self.wall_s:.1f}")
        return out
