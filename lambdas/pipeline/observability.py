"""One Logger, Tracer and Metrics for the process, configured so PHI stays out of them.

Object keys may carry patient names (contract 5). X-Ray's botocore instrumentation would
put them in traces three ways: S3's whitelisted request parameters (`Key`), full request
URLs (its httplib instrumentation), and the message of every AWS error it records (an S3
AccessDenied names the object's ARN; a Transcribe BadRequest can quote the media URI).
So only botocore is patched, S3 leaves the parameter whitelist, and AWS errors are
recorded by status and error code, never by message.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()


def _record_aws_error_without_message(
    exception: Exception, stack: Any, subsegment: Any, aws_meta: dict[str, Any]
) -> None:
    response = getattr(exception, "response", None)
    if not isinstance(response, dict):
        return
    metadata = response.get("ResponseMetadata") or {}
    aws_meta["request_id"] = metadata.get("RequestId")
    aws_meta["error_code"] = (response.get("Error") or {}).get("Code")
    status = metadata.get("HTTPStatusCode")
    if status:
        subsegment.apply_status_code(status)  # sets the error/fault/throttle flags


def keep_phi_out_of_traces() -> bool:
    """Configure the X-Ray SDK's botocore recording; False when tracing is off (nothing is
    recorded, and the X-Ray SDK is not even imported)."""
    if tracer.disabled:
        return False
    from aws_xray_sdk.ext import boto_utils  # noqa: PLC0415 - loaded by the patch above

    boto_utils.whitelist["services"].pop("s3", None)
    boto_utils._aws_error_handler = _record_aws_error_without_message
    return True


keep_phi_out_of_traces()
