"""Reconcile Lambda, on a schedule: finish every open job without relying on events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.completion import JobFinisher
from pipeline.observability import logger, metrics, tracer
from pipeline.reconciliation import Reconciler
from pipeline.start import JobStarter

METRIC_FOR = {"COMPLETED": "JobsCompleted", "FAILED": "JobsFailed", "RESTARTED": "JobsStarted"}


def reconciler() -> Reconciler:
    finisher = JobFinisher.from_environment()
    return Reconciler(
        index=finisher.index,
        finisher=finisher,
        starter=JobStarter.from_environment(),
        pending_restart_after=timedelta(minutes=finisher.settings.pending_restart_minutes),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconciler().run(time_left_ms=context.get_remaining_time_in_millis)
    for outcome, metric in METRIC_FOR.items():
        if report.outcomes.get(outcome):
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=report.outcomes[outcome])
    summary = {
        "checked": report.checked,
        "outcomes": report.outcomes,
        "transient_errors": report.transient_errors,
        "errors": report.errors,
        "stopped_early": report.stopped_early,
    }
    logger.info("reconcile run finished", extra=summary)
    return summary
