"""The reconciler, on a schedule: completion and capacity must not depend on events.

AWS documents the job-state-change event for standard jobs only, and delivery is best
effort, so every open job is polled here and finished through the same code as the event
path (which gives its slot back). A run also

- returns to the backlog a job that was claimed but whose start never reached Transcribe
  (the invocation died between the claim and the call);
- fails a job that has waited for capacity for MAX_PENDING_AGE;
- heals the in-flight counter from the index (see pipeline.capacity);
- ends with a dispatch run, so the backlog moves even when nothing else happens.

Transcribe's Get quota (30/s) and the Lambda's time bound each run; what is left is picked
up by the next run. AWS errors leave a run as ReconcileError, which names the code only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import job_index as ji
from pipeline.aws_errors import error_code
from pipeline.capacity import CapacityLedger
from pipeline.completion import Finish, JobFinisher, PermanentFinishError, TransientFinishError
from pipeline.dispatch import Dispatcher, DispatchError, DispatchReport
from pipeline.observability import logger

# Below Transcribe's 30 Get/s default quota, leaving room for the event path.
GETS_PER_SECOND = 20.0
# A job still waiting for Transcribe capacity after this long is failed for a person to
# look at rather than retried forever. Age, not attempts: in a large burst every waiting
# job is retried on every run, and waiting is not failing.
MAX_PENDING_AGE = timedelta(days=7)
# An open job updated this recently is left to its completion event (it saves Gets).
POLL_AFTER = timedelta(minutes=2)
# A QUEUED job Transcribe does not know is returned to the backlog only after this long: a
# dispatch run may be between its claim and its start call right now.
CLAIM_GRACE = timedelta(minutes=2)


class ReconcileError(RuntimeError):
    """An AWS call of the run failed outside any one job. Code only: AWS messages can quote
    object keys."""

    def __init__(self, code: str) -> None:
        super().__init__(f"reconcile run failed ({code})")
        self.code = code


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
    healed: int = 0  # the correction applied to the in-flight counter
    backlog: int | None = None  # PENDING jobs when the run counted them
    dispatch: DispatchReport | None = None

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Reconciler:
    def __init__(
        self,
        *,
        index: ji.JobIndex,
        finisher: JobFinisher,
        dispatcher: Dispatcher,
        ledger: CapacityLedger,
        limiter: RateLimiter | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_after: timedelta = POLL_AFTER,
    ) -> None:
        self.poll_after = poll_after
        self.index = index
        self.finisher = finisher
        self.dispatcher = dispatcher
        self.ledger = ledger
        self.limiter = limiter or RateLimiter(GETS_PER_SECOND)
        self.now = now

    def run(self, *, time_left_ms: Callable[[], int], reserve_ms: int = 20_000) -> ReconcileReport:
        report = ReconcileReport()
        try:
            self._run(report, time_left_ms, reserve_ms)
        except (ClientError, BotoCoreError) as error:
            raise ReconcileError(error_code(error)) from None
        return report

    def _run(
        self, report: ReconcileReport, time_left_ms: Callable[[], int], reserve_ms: int
    ) -> None:
        poll_before = _iso(self.now() - self.poll_after)
        for item in self._open_jobs():
            if time_left_ms() < reserve_ms:
                report.stopped_early = True
                break
            if self.poll_after and str(item.get("updated_at", "")) > poll_before:
                continue  # just started or just polled: its event is the likelier news
            self.limiter.wait()
            report.checked += 1
            self._isolated(report, item)
        if not report.stopped_early:
            self._expire_waiting(report)
            report.healed = self._heal()
            report.backlog = self.index.count_by_status(ji.PENDING)
        if time_left_ms() >= reserve_ms:
            try:
                report.dispatch = self.dispatcher.dispatch(
                    time_left_s=lambda: (time_left_ms() - reserve_ms) / 1000.0, reserve_s=1.0
                )
            except DispatchError as error:
                report.errors += 1
                logger.warning("dispatch run failed", extra={"error_code": error.code})

    def _open_jobs(self) -> Iterator[dict[str, Any]]:
        yield from self.index.by_status(ji.IN_PROGRESS)
        yield from self.index.by_status(ji.QUEUED)

    def _isolated(self, report: ReconcileReport, item: dict[str, Any]) -> None:
        """One job; whatever goes wrong stays with it."""
        try:
            report.count(self._reconcile(item))
        except TransientFinishError:
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

    def _reconcile(self, item: dict[str, Any]) -> str:
        job_name = item["job_name"]
        outcome = self.finisher.finish(job_name, known=item).outcome
        returnable = (
            outcome is Finish.NOT_OURS
            and item["status"] == ji.QUEUED
            and str(item.get("updated_at", "")) < _iso(self.now() - CLAIM_GRACE)
        )
        # Claimed, but the start never reached Transcribe: back to the backlog.
        attempt = int(item.get("attempts") or 0)
        if returnable and self.ledger.unclaim(job_name, attempt=attempt, now=self.finisher.clock()):
            return "RETURNED"
        return outcome.value

    def _expire_waiting(self, report: ReconcileReport) -> None:
        """Fail what has waited for capacity for MAX_PENDING_AGE, for a person to look at.
        Age, not attempts: in a large burst waiting is normal, and waiting is not failing."""
        too_old = _iso(self.now() - MAX_PENDING_AGE)
        for item in self.index.by_status(ji.PENDING, created_before=too_old):
            now = self.finisher.clock()
            moved = self.index.transition(
                item["job_name"],
                to=ji.FAILED,
                now=now,
                fields={
                    "failure_reason": (
                        f"Transcribe Medical had no capacity for this job for "
                        f"{MAX_PENDING_AGE.days} days ({item.get('attempts', 0)} start attempts, "
                        "busy or over the account's quota each time). Check the account's "
                        "Transcribe quotas and this environment's concurrent_job_share, then "
                        "retry the job."
                    ),
                    "completed_at": now,
                },
            )
            if moved:
                report.count(Finish.FAILED.value)

    def _heal(self) -> int:
        """Correct the in-flight counter by the difference from the index, once the same
        difference is seen on two runs in a row; returns the correction applied."""
        before = self.ledger.state()
        counted = self.index.count_by_status(ji.QUEUED) + self.index.count_by_status(ji.IN_PROGRESS)
        after = self.ledger.state()
        if before.in_flight != after.in_flight:
            return 0  # jobs moved while counting: this reading proves nothing
        drift = after.in_flight - counted
        if drift != 0 and drift == after.drift_seen:
            self.ledger.adjust(-drift, drift_seen=0)
            logger.warning("in-flight counter healed", extra={"correction": -drift})
            return -drift
        if drift != after.drift_seen:
            self.ledger.adjust(0, drift_seen=drift)
        return 0
