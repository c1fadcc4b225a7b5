"""Names, sizes and the one runtime every function shares."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as _lambda

# Re-exported: constructs read every name from here.
from stacks.contract import (  # noqa: F401
    DOCUMENTS_PREFIX,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    TABLE_INDEX_BY_INPUT,
    TABLE_INDEX_BY_STATUS,
    TRANSCRIPT_PREFIX,
)

# One runtime and architecture for every function; the Powertools layer must match both.
LAMBDA_RUNTIME = _lambda.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = _lambda.Architecture.ARM_64
POWERTOOLS_VERSION = "3.37.0"
# Public SSM parameter AWS publishes per architecture, Python version and Powertools version;
# resolved at deploy time, so synth needs no credentials.
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/python3.13/{POWERTOOLS_VERSION}"

LAMBDA_CODE_DIR = "lambdas"
# The handlers' own dependencies (what they import beyond boto3 and Powertools): `make install`
# builds the layer directory from the requirements file for LAMBDA_RUNTIME and
# LAMBDA_ARCHITECTURE, and leaves a copy of the file it built from as the stamp.
DEPENDENCIES_REQUIREMENTS = "requirements-lambda.txt"
DEPENDENCIES_LAYER_DIR = "build/lambda-layer"
DEPENDENCIES_LAYER_STAMP = "build/lambda-layer.installed"

START_JOB_HANDLER = "start_job.handler"
POST_PROCESS_HANDLER = "post_process.handler"
RECONCILE_HANDLER = "reconcile.handler"

START_JOB_TIMEOUT = Duration.seconds(60)
START_JOB_MEMORY_MB = 256
# SQS advises a visibility timeout of at least six times the consumer's timeout.
INGEST_VISIBILITY_TIMEOUT = Duration.seconds(6 * 60)
INGEST_MAX_BATCHING_WINDOW = Duration.seconds(2)
DLQ_RETENTION = Duration.days(14)

ACCESS_LOG_PREFIX_INPUT = "input-bucket/"
ACCESS_LOG_PREFIX_OUTPUT = "output-bucket/"


# Completion path (post-process, reconcile).
POST_PROCESS_TIMEOUT = Duration.minutes(5)
# A 4-hour transcript is ~10 MB of JSON; parsing and rendering it wants the headroom.
POST_PROCESS_MEMORY_MB = 1024
RECONCILE_TIMEOUT = Duration.minutes(5)
RECONCILE_MEMORY_MB = 1024
# EventBridge delivery to the post-process function before the event goes to its DLQ.
COMPLETION_RETRY_ATTEMPTS = 8
# The completion queue: a post-process invocation that crashes or meets a busy AWS gets its
# events back after the visibility timeout (six times the function's timeout, as AWS
# advises), up to COMPLETION_MAX_RECEIVES times, before the dead-letter queue.
COMPLETION_VISIBILITY_TIMEOUT = Duration.minutes(30)
COMPLETION_MAX_RECEIVES = 10
COMPLETION_BATCH_SIZE = 10
COMPLETION_MAX_CONCURRENCY = 5
COMPLETION_MAX_EVENT_AGE = Duration.hours(6)
# Scheduler delivery to the reconcile function; the next run comes minutes later anyway.
RECONCILE_RETRY_ATTEMPTS = 3
RECONCILE_MAX_EVENT_AGE = Duration.hours(1)

TRANSCRIBE_EVENT_SOURCE = "aws.transcribe"
TRANSCRIBE_EVENT_DETAIL_TYPE = "Transcribe Job State Change"

# Custom metrics the handlers emit (Powertools Metrics adds the `service` dimension).
JOB_COUNT_METRICS = (
    "JobsUploaded",
    "JobsStarted",
    "JobsCompleted",
    "JobsFailed",
    "JobsRejected",
    "StartThrottled",
)
AUDIO_MINUTES_METRIC = "AudioMinutes"
BACKLOG_SIZE_METRIC = "BacklogSize"
BACKLOG_AGE_METRIC = "OldestPendingAgeSeconds"
IN_FLIGHT_METRIC = "JobsInFlight"
RECONCILE_ERRORS_METRIC = "ReconcileErrors"
POST_PROCESS_DURATION_METRIC = "PostProcessDurationMs"
TAG_PROJECT = "MedicalTranscription"
