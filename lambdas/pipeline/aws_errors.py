"""Which AWS errors a retry can fix, and what a person should do about the others.

Decided by error code and HTTP status only: AWS error messages can quote object keys or
ARNs (PHI), so no text of theirs is ever kept, logged or shown.
"""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

# Error codes that mean "not now": retried, never recorded as failures.
TRANSIENT_CODES = frozenset(
    {
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailureException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "RequestTimeout",
        "ProvisionedThroughputExceededException",
        # S3 passes KMS's own throttling through under a "KMS." prefix.
        "KMS.ThrottlingException",
        "KMSThrottlingException",
        # Credentials that expired mid-invocation are renewed on the next one.
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)

# A retry cannot fix these; the sentence says what a person can do (never AWS's text).
ACCESS_DENIED = (
    "The pipeline was refused access while writing or reading this job's files (AWS said "
    "{code}). Check the output bucket's policy and the KMS key's policy allow the "
    "post-process and reconcile functions, then retry the job."
)
KMS_UNUSABLE = (
    "The stack's KMS key could not be used (AWS said {code}: the key is disabled, pending "
    "deletion or missing). Re-enable the key (or cancel its deletion), then retry the job."
)
KEY_TOO_LONG = (
    "A document's object key would be longer than S3's 1,024-byte limit (AWS said {code}). "
    "Upload the recording again under a shorter name."
)
NO_SUCH_BUCKET = (
    "The output bucket does not exist (AWS said {code}). Redeploy the stack, or check "
    "the OUTPUT_BUCKET setting, then retry the job."
)
INVALID_REQUEST = (
    "AWS refused a request made while finishing this job as invalid ({code}). Retry the "
    "job; if it fails again, contact the pipeline's operators with the job name."
)
UNEXPECTED = (
    "Finishing this job failed with an error a retry did not fix ({code}). Retry the job; "
    "if it fails again, contact the pipeline's operators with the job name."
)

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "AllAccessDisabled", "KMS.AccessDenied"}
)
KMS_UNUSABLE_CODES = frozenset(
    {
        "KMS.DisabledException",
        "KMS.KMSInvalidStateException",
        "KMS.NotFoundException",
        "KMS.InvalidKeyUsageException",
        "DisabledException",
        "KMSInvalidStateException",
        "KMSDisabledException",
        "KMSNotFoundException",
        "KMSAccessDeniedException",
        "KMS.KMSAccessDeniedException",
    }
)
INVALID_REQUEST_CODES = frozenset(
    {"InvalidArgument", "InvalidRequest", "BadRequestException", "ValidationException"}
)


def error_code(error: Exception) -> str:
    """AWS's error code, or the exception's class name for errors raised before a reply."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def is_transient(error: Exception) -> bool:
    """Busy, throttled, unreachable or a 5xx: a later retry may well succeed."""
    if isinstance(error, BotoConnectionError | HTTPClientError):  # connections, timeouts
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in TRANSIENT_CODES or int(status or 0) >= 500
    return False


def is_aws_error(error: BaseException) -> bool:
    return isinstance(error, ClientError | BotoCoreError)


SAFE_CODE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def permanent_reason(code: str) -> str:
    """For an error a retry cannot fix: a sentence a person can act on, naming the code."""
    if not SAFE_CODE.match(code):
        code = "an unrecognised error code"
    if code in ACCESS_DENIED_CODES:
        template = ACCESS_DENIED
    elif code in KMS_UNUSABLE_CODES or code.startswith("KMS."):
        template = KMS_UNUSABLE
    elif code == "KeyTooLongError":
        template = KEY_TOO_LONG
    elif code == "NoSuchBucket":
        template = NO_SUCH_BUCKET
    elif code in INVALID_REQUEST_CODES:
        template = INVALID_REQUEST
    else:
        template = UNEXPECTED
    return template.format(code=code)
