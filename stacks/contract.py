"""Names the deployed stack and the emulator share, free of CDK imports so the emulator and
the demo start without jsii."""

from __future__ import annotations

from stacks.config import EnvironmentConfig

SERVICE_NAME = "medical-transcription"
METRICS_NAMESPACE = "MedicalTranscription"

TABLE_INDEX_BY_INPUT = "by-input"
TABLE_INDEX_BY_STATUS = "by-status"

# Where Transcribe writes raw transcripts, and the post-processor its documents (contract 3).
TRANSCRIPT_PREFIX = "medical/"
DOCUMENTS_PREFIX = "transcripts/"


def handler_environment(
    config: EnvironmentConfig,
    *,
    job_table: str,
    input_bucket: str,
    output_bucket: str,
    key_arn: str,
) -> dict[str, str]:
    """Contract 2: what every handler may read, in AWS (values may be CDK tokens) and in the
    emulator alike."""
    return {
        "JOB_TABLE": job_table,
        "INPUT_BUCKET": input_bucket,
        "OUTPUT_BUCKET": output_bucket,
        "KMS_KEY_ID": key_arn,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "LOG_LEVEL": "INFO",
        **config.lambda_environment(),
    }
