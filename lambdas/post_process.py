"""Post-process Lambda: a Transcribe job-state-change event -> documents and a final status."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.completion import Finish, JobFinisher
from pipeline.observability import logger, metrics, tracer

METRIC_FOR = {Finish.COMPLETED: "JobsCompleted", Finish.FAILED: "JobsFailed"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    job_name = str(event.detail.get("TranscriptionJobName", ""))
    if not job_name:
        logger.warning("event without a job name ignored", extra={"event_id": event.get_id})
        return {"outcome": Finish.NOT_OURS.value}
    # A failure here raises: EventBridge retries the invocation, then dead-letters it,
    # and the reconciler finishes the job regardless.
    result = JobFinisher.from_environment().finish(job_name)
    if result.outcome is Finish.NOT_OURS:
        logger.info("event for a job that is not ours ignored", extra={"job_name": job_name})
    else:
        logger.info("job event handled", extra={"job_name": job_name, "outcome": result.outcome})
    if result.outcome in METRIC_FOR:
        metrics.add_metric(name=METRIC_FOR[result.outcome], unit=MetricUnit.Count, value=1)
    return {"job_name": job_name, "outcome": result.outcome.value}
