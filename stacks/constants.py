"""Names, sizes and the one runtime every function shares."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as _lambda

# One runtime and architecture for every function; the Powertools layer must match both.
LAMBDA_RUNTIME = _lambda.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = _lambda.Architecture.ARM_64
POWERTOOLS_VERSION = "3.37.0"
# Public SSM parameter AWS publishes per architecture, Python version and Powertools version;
# resolved at deploy time, so synth needs no credentials.
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/arm64/python3.13/{POWERTOOLS_VERSION}"
)

LAMBDA_CODE_DIR = "lambdas"
SERVICE_NAME = "medical-transcription"
METRICS_NAMESPACE = "MedicalTranscription"

START_JOB_HANDLER = "start_job.handler"
POST_PROCESS_HANDLER = "post_process.handler"
RECONCILE_HANDLER = "reconcile.handler"

START_JOB_TIMEOUT = Duration.seconds(60)
START_JOB_MEMORY_MB = 256
# SQS advises a visibility timeout of at least six times the consumer's timeout.
INGEST_VISIBILITY_TIMEOUT = Duration.seconds(6 * 60)
INGEST_MAX_BATCHING_WINDOW = Duration.seconds(2)
DLQ_RETENTION = Duration.days(14)

# Where Transcribe writes raw transcripts in the output bucket (contract 3).
TRANSCRIPT_PREFIX = "medical/"
DOCUMENTS_PREFIX = "transcripts/"
ACCESS_LOG_PREFIX_INPUT = "input-bucket/"
ACCESS_LOG_PREFIX_OUTPUT = "output-bucket/"

TABLE_INDEX_BY_INPUT = "by-input"
TABLE_INDEX_BY_STATUS = "by-status"
