"""Reconcile Lambda, on a schedule: finish every open job without relying on events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws_clients
from pipeline.completion import JobFinisher
from pipeline.job_index import JobIndex
from pipeline.observability import logger, metrics, tracer
from pipeline.reconciliation import Reconciler
from pipeline.settings import current_settings
from pipeline.start import JobStarter

METRIC_FOR = {"COMPLETED": "JobsCompleted", "FAILED": "JobsFailed", "RESTARTED": "JobsStarted"}


def reconciler() -> Reconciler:
    settings = current_settings()
    clients = {"s3": aws_clients.client("s3"), "transcribe": aws_clients.client("transcribe")}
    index = JobIndex(aws_clients.table(settings.job_table))
    return Reconciler(
        index=index,
        finisher=JobFinisher(settings=settings, index=index, **clients),
        starter=JobStarter(settings=settings, index=index, **clients),
        pending_restart_after=timedelta(minutes=settings.pending_restart_minutes),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
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
        "stopped_early": report.stopped_early,
    }
    logger.info("reconcile run finished", extra=summary)
    return summary
