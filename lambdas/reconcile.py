"""Reconcile Lambda, on a schedule: finish open jobs without relying on events, heal the
capacity counter, and move the backlog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.completion import JobFinisher
from pipeline.dispatch import Dispatcher
from pipeline.dispatch_run import record_dispatch
from pipeline.observability import code_only_errors, logger, metrics, tracer
from pipeline.reconciliation import ReconcileError, Reconciler
from pipeline.settings import SettingsError

METRIC_FOR = {"COMPLETED": "JobsCompleted", "FAILED": "JobsFailed", "RETURNED": "JobsReturned"}


def reconciler() -> Reconciler:
    finisher = JobFinisher.from_environment()
    return Reconciler(
        index=finisher.index,
        finisher=finisher,
        dispatcher=Dispatcher.from_environment(),
        ledger=finisher.ledger,
        poll_after=timedelta(seconds=finisher.settings.reconcile_poll_after_s),
    )


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
@code_only_errors(ReconcileError, SettingsError)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        report = reconciler().run(time_left_ms=context.get_remaining_time_in_millis)
    except ReconcileError as error:
        # Raised with the code only; the next scheduled run starts over.
        logger.error("reconcile run failed", extra={"error_code": error.code})
        metrics.add_metric(name="ReconcileErrors", unit=MetricUnit.Count, value=1)
        raise
    for outcome, metric in METRIC_FOR.items():
        if report.outcomes.get(outcome):
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=report.outcomes[outcome])
    if report.errors:
        metrics.add_metric(name="ReconcileErrors", unit=MetricUnit.Count, value=report.errors)
    if report.backlog is not None:
        metrics.add_metric(name="BacklogSize", unit=MetricUnit.Count, value=report.backlog)
    if report.dispatch is not None:
        record_dispatch(report.dispatch)
    summary = {
        "checked": report.checked,
        "outcomes": report.outcomes,
        "transient_errors": report.transient_errors,
        "errors": report.errors,
        "healed": report.healed,
        "stopped_early": report.stopped_early,
    }
    logger.info("reconcile run finished", extra=summary)
    return summary
