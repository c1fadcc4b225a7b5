"""One dispatch run from inside a Lambda: bounded by its time, reported in logs and metrics.

Every handler runs the dispatcher after it may have changed capacity; none of them may fail
because of it (their own work is done and recorded), so an AWS error here is logged by code
and left to the next trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from pipeline.dispatch import Dispatched, Dispatcher, DispatchError, DispatchReport
from pipeline.observability import logger, metrics


def _age_s(created_at: str, now: datetime) -> float:
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (now - created).total_seconds())


def run_dispatch(
    dispatcher: Dispatcher, context: Any, *, slots_freed: int = 0
) -> DispatchReport | None:
    def time_left_s() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    try:
        report = dispatcher.dispatch(time_left_s=time_left_s, slots_freed=slots_freed)
    except DispatchError as error:
        logger.warning(
            "dispatch run failed; the next trigger goes on", extra={"error_code": error.code}
        )
        metrics.add_metric(name="DispatchErrors", unit=MetricUnit.Count, value=1)
        return None
    record_dispatch(report)
    return report


def record_dispatch(report: DispatchReport) -> None:
    """A dispatch run's figures as metrics, and one log line."""
    metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=report.started)
    metrics.add_metric(name="JobsInFlight", unit=MetricUnit.Count, value=report.in_flight)
    returned = report.outcomes.get(Dispatched.BACKED_OFF, 0) + report.outcomes.get(
        Dispatched.THROTTLED, 0
    )
    if returned:
        metrics.add_metric(name="StartThrottled", unit=MetricUnit.Count, value=returned)
    if report.outcomes.get(Dispatched.FAILED):
        metrics.add_metric(
            name="JobsFailed", unit=MetricUnit.Count, value=report.outcomes[Dispatched.FAILED]
        )
    if report.outcomes.get(Dispatched.REJECTED):
        metrics.add_metric(
            name="JobsRejected", unit=MetricUnit.Count, value=report.outcomes[Dispatched.REJECTED]
        )
    if report.oldest_waiting:
        metrics.add_metric(
            name="OldestPendingAgeSeconds",
            unit=MetricUnit.Seconds,
            value=_age_s(report.oldest_waiting, datetime.now(UTC)),
        )
    logger.info(
        "dispatch run finished",
        extra={
            "outcomes": report.outcomes,
            "stopped": report.stopped,
            "in_flight": report.in_flight,
        },
    )
