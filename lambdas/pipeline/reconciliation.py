"""The reconciler: completion must not depend on EventBridge.

AWS documents the job-state-change event for standard jobs only, and delivery is best
effort, so every open job is polled here and finished through the same code as the event
path. PENDING jobs whose queue message was lost (or that waited out every delivery) are
started again. Transcribe's Get quota (30/s) and the Lambda's time bound each run; what is
left is picked up by the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import job_index as ji
from pipeline.completion import Finish, JobFinisher, PermanentFinishError, TransientFinishError
from pipeline.observability import logger
from pipeline.start import JobStarter, Outcome, TransientStartError

# Below Transcribe's 30 Get/s default quota, leaving room for the event path.
GETS_PER_SECOND = 20.0
# A job still waiting for Transcribe capacity after this long is failed for a person to
# look at rather than retried forever. Age, not attempts: in a large burst every waiting
# job is retried on every run, and waiting is not failing.
MAX_PENDING_AGE = timedelta(days=7)


def _iso(moment: datetime) -> str:
    """The index's timestamp format (it sorts as text)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RateLimiter:
    """At most `per_second` calls a second, spaced evenly (sleeps as needed)."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


@dataclass
class ReconcileReport:
    checked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    transient_errors: int = 0
    errors: int = 0  # failed in a way a retry may not fix: logged by job name, not fatal
    # (a finish attempt that met a permanent error counts here until its job is FAILED)
    stopped_early: bool = False

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Reconciler:
    def __init__(
        self,
        *,
        index: ji.JobIndex,
        finisher: JobFinisher,
        starter: JobStarter,
        pending_restart_after: timedelta,
        limiter: RateLimiter | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.index = index
        self.finisher = finisher
        self.starter = starter
        self.pending_restart_after = pending_restart_after
        self.limiter = limiter or RateLimiter(GETS_PER_SECOND)
        self.now = now

    def _open_jobs(self) -> Iterator[dict[str, Any]]:
        """Oldest first within each status; QUEUED/IN_PROGRESS before stale PENDING."""
        yield from self.index.by_status(ji.IN_PROGRESS)
        yield from self.index.by_status(ji.QUEUED)
        stale_before = _iso(self.now() - self.pending_restart_after)
        yield from self.index.by_status(ji.PENDING, created_before=stale_before)

    def run(self, *, time_left_ms: Callable[[], int], reserve_ms: int = 20_000) -> ReconcileReport:
        report = ReconcileReport()
        for item in self._open_jobs():
            if time_left_ms() < reserve_ms:
                report.stopped_early = True
                break
            self.limiter.wait()
            report.checked += 1
            try:
                report.count(self._reconcile(item))
            except (TransientFinishError, TransientStartError):
                report.transient_errors += 1
            except PermanentFinishError as error:
                # Counted on the item: the job is FAILED once the bound is reached.
                report.errors += 1
                logger.error(
                    "finishing a job failed; tried again on the next run",
                    extra={
                        "job_name": item["job_name"],
                        "error_code": error.code,
                        "attempts": error.attempts,
                    },
                )
            except Exception as error:
                report.errors += 1
                # The type only: messages of AWS errors can quote object keys (PHI).
                logger.error(
                    "reconciling a job failed",
                    extra={"job_name": item["job_name"], "error_type": type(error).__name__},
                )
        return report

    def _reconcile(self, item: dict[str, Any]) -> str:
        if item["status"] != ji.PENDING:
            return self.finisher.finish(item["job_name"]).outcome.value
        if str(item["created_at"]) < _iso(self.now() - MAX_PENDING_AGE):
            now = ji.utc_now()
            self.index.transition(
                item["job_name"],
                to=ji.FAILED,
                now=now,
                fields={
                    "failure_reason": (
                        f"Transcribe Medical had no capacity for this job for "
                        f"{MAX_PENDING_AGE.days} days ({item.get('attempts', 0)} start attempts, "
                        "busy or over the account's quota each time). Check the account's "
                        "Transcribe quotas, then retry the job."
                    ),
                    "completed_at": now,
                },
            )
            return Finish.FAILED.value
        # The job may have started on an attempt that did not live to record it: a start
        # that Transcribe answers with ConflictException counts as started.
        result = self.starter.start(item)
        return "RESTARTED" if result.outcome is Outcome.QUEUED else result.outcome.value
