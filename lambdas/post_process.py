"""Post-process Lambda: Transcribe job-state-change events -> documents and a final status.

The stack routes the events EventBridge -> the completion queue -> this function, in SQS
batches (partial batch failures: a busy AWS fails only its own message, which comes back
after the visibility timeout, up to the queue's receive count). A direct EventBridge event
(an older deployment's rule, tests, the emulator) is handled the same way.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.completion import Finish, JobFinisher, PermanentFinishError, TransientFinishError
from pipeline.dispatch import Dispatcher
from pipeline.dispatch_run import run_dispatch
from pipeline.observability import code_only_errors, logger, metrics, tracer
from pipeline.s3_events import MalformedMessage
from pipeline.settings import SettingsError

METRIC_FOR = {Finish.COMPLETED: "JobsCompleted", Finish.FAILED: "JobsFailed"}
RETRY_LATER = "RETRY_LATER"  # a permanent error below the bound: the reconciler tries again

# A busy AWS is normal back-pressure, reported per message, not as a Lambda error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class _Batch:
    ended = 0  # jobs this invocation moved to COMPLETED or FAILED: slots given back


def finish_job(event: EventBridgeEvent) -> dict[str, Any]:
    """One job-state event. Raises TransientFinishError (retried); a permanent error below
    the bound is counted on the item and left to the reconciler (raising would only spend
    the remaining deliveries)."""
    job_name = str(event.detail.get("TranscriptionJobName", ""))
    if not job_name:
        logger.warning("event without a job name ignored", extra={"event_id": event.get_id})
        return {"outcome": Finish.NOT_OURS.value}
    started = time.monotonic()
    try:
        result = JobFinisher.from_environment().finish(job_name)
    except TransientFinishError as error:
        logger.warning(
            "finishing the job met a busy AWS; retried",
            extra={"job_name": job_name, "error_code": error.code},
        )
        raise
    except PermanentFinishError as error:
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
        metrics.add_metric(
            name="PostProcessDurationMs",
            unit=MetricUnit.Milliseconds,
            value=round((time.monotonic() - started) * 1000.0, 1),
        )
        _Batch.ended += 1
    if result.audio_s:
        metrics.add_metric(name="AudioMinutes", unit=MetricUnit.Count, value=result.audio_s / 60.0)
    return {"job_name": job_name, "outcome": result.outcome.value}


@code_only_errors(TransientFinishError, MalformedMessage)
def record_handler(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
    except (TypeError, ValueError):
        raise MalformedMessage("message body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("detail"), dict):
        raise MalformedMessage("message body is not an EventBridge event")
    finish_job(EventBridgeEvent(body))


def _dispatch_for_freed_slots(context: LambdaContext) -> None:
    # Slots were given back: the oldest waiting jobs start now, not at the next scheduled run.
    if _Batch.ended:
        run_dispatch(Dispatcher.from_environment(), context, slots_freed=_Batch.ended)


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
@code_only_errors(TransientFinishError, SettingsError)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _Batch.ended = 0
    if "Records" in event:
        response: dict[str, Any] = dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
        _dispatch_for_freed_slots(context)
        return response
    result = finish_job(EventBridgeEvent(event))
    _dispatch_for_freed_slots(context)
    return result
