"""Start-job Lambda: SQS batches of S3 notifications -> the backlog, then a dispatch run.

Each upload is validated and recorded in the job index (PENDING or REJECTED); once it is
recorded its message is done, whatever Transcribe's capacity. Partial batch failures: a busy
S3 or DynamoDB, or a malformed message, fails only its own message. The recorded messages
are deleted before the dispatcher runs, so nothing that happens in that run can send them to
the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws_clients
from pipeline.dispatch import Dispatcher
from pipeline.dispatch_run import run_dispatch
from pipeline.ingest_queue import delete_finished, queue_url_from_arn
from pipeline.observability import code_only_errors, logger, metrics, tracer
from pipeline.s3_events import MalformedMessage, uploads_in
from pipeline.settings import SettingsError, current_settings
from pipeline.start import JobStarter, Outcome, StartError, TransientStartError

# The whole batch failing is reported as item failures, not an exception: a busy S3 is
# normal back-pressure and must not count as a Lambda error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

METRIC_FOR = {
    Outcome.PENDING: "JobsUploaded",
    Outcome.REJECTED: "JobsRejected",
    Outcome.DUPLICATE: "DuplicateDeliveries",
}


class _Batch:
    admitted = 0  # uploads recorded PENDING in this invocation: worth a dispatch run


# What a record handler raises is kept by the batch processor and logged by Powertools.
@code_only_errors(MalformedMessage, StartError)
def record_handler(record: SQSRecord) -> None:
    receives = int(record.attributes.approximate_receive_count or 1)
    last_delivery = receives >= current_settings().ingest_max_receives
    try:
        uploads = uploads_in(record)
    except MalformedMessage as malformed:
        logger.error(
            "malformed message: it will reach the dead-letter queue",
            extra={"message_id": record.message_id, "problem": str(malformed)},
        )
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        raise
    job_starter = JobStarter.from_environment()
    for upload in uploads:
        try:
            result = job_starter.handle(upload, last_delivery=last_delivery)
        except TransientStartError as busy:
            logger.warning(
                "AWS busy: the message will be retried",
                extra={"job_name": busy.job_name, "error_code": busy.code},
            )
            metrics.add_metric(name="AdmissionThrottled", unit=MetricUnit.Count, value=1)
            raise
        except StartError as refused:
            logger.error(
                "AWS refused: the message will be retried, then dead-lettered",
                extra={"job_name": refused.job_name, "error_code": refused.code},
            )
            raise
        logger.info(
            "upload handled", extra={"job_name": result.job_name, "outcome": result.outcome.value}
        )
        if result.outcome is Outcome.PENDING:
            _Batch.admitted += 1
        if result.outcome in METRIC_FOR:
            metrics.add_metric(name=METRIC_FOR[result.outcome], unit=MetricUnit.Count, value=1)


def _delete_recorded(event: dict[str, Any], failed: set[str]) -> None:
    records = event.get("Records") or []
    done = [(r["messageId"], r["receiptHandle"]) for r in records if r["messageId"] not in failed]
    if not done:
        return
    queue_url = queue_url_from_arn(records[0]["eventSourceARN"])
    delete_finished(aws_clients.client("sqs"), queue_url, done)


@logger.inject_lambda_context(clear_state=True, log_event=False)  # the event quotes keys
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
@code_only_errors(SettingsError)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    current_settings()  # fail the first invocation early, naming a missing variable
    _Batch.admitted = 0
    response: dict[str, Any] = dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
    failures: list[dict[str, str]] = list(response.get("batchItemFailures") or [])
    failed = {failure["itemIdentifier"] for failure in failures}
    _delete_recorded(event, failed)
    if _Batch.admitted:
        run_dispatch(Dispatcher.from_environment(), context)
    return response
