"""Post-process Lambda: a Transcribe job-state-change event -> documents and a final status."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.completion import Finish, JobFinisher, PermanentFinishError, TransientFinishError
from pipeline.dispatch import Dispatcher
from pipeline.dispatch_run import run_dispatch
from pipeline.observability import code_only_errors, logger, metrics, tracer
from pipeline.settings import SettingsError

METRIC_FOR = {Finish.COMPLETED: "JobsCompleted", Finish.FAILED: "JobsFailed"}
RETRY_LATER = "RETRY_LATER"  # a permanent error below the bound: the reconciler tries again


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
@code_only_errors(TransientFinishError, SettingsError)
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    job_name = str(event.detail.get("TranscriptionJobName", ""))
    if not job_name:
        logger.warning("event without a job name ignored", extra={"event_id": event.get_id})
        return {"outcome": Finish.NOT_OURS.value}
    try:
        result = JobFinisher.from_environment().finish(job_name)
    except TransientFinishError as error:
        # Raised: EventBridge retries the invocation (then dead-letters it), and the
        # reconciler finishes the job regardless.
        logger.warning(
            "finishing the job met a busy AWS; retried",
            extra={"job_name": job_name, "error_code": error.code},
        )
        raise
    except PermanentFinishError as error:
        # Counted on the item; the reconciler tries again until the bound, then the job is
        # FAILED. Raising would only burn the remaining attempts in EventBridge's retries.
        logger.error(
            "finishing the job failed; the reconciler tries again",
            extra={"job_name": job_name, "error_code": error.code, "attempts": error.attempts},
        )
        return {"job_name": job_name, "outcome": RETRY_LATER, "error_code": error.code}
    if result.outcome is Finish.NOT_OURS:
        logger.info("event for a job that is not ours ignored", extra={"job_name": job_name})
    else:
        logger.info("job event handled", extra={"job_name": job_name, "outcome": result.outcome})
    if result.outcome in METRIC_FOR:
        metrics.add_metric(name=METRIC_FOR[result.outcome], unit=MetricUnit.Count, value=1)
        # A slot was given back: the oldest waiting job can start now, not at the next
        # scheduled run.
        run_dispatch(Dispatcher.from_environment(), context)
    return {"job_name": job_name, "outcome": result.outcome.value}
