"""One Logger, Tracer and Metrics for the process, configured so PHI stays out of them.

Object keys may carry patient names (contract 5). X-Ray's botocore instrumentation would
put them in traces three ways: S3's whitelisted request parameters (`Key`), full request
URLs (its httplib instrumentation), and the message of every AWS error it records (an S3
AccessDenied names the object's ARN; a Transcribe BadRequest can quote the media URI).
So only botocore is patched, S3 leaves the parameter whitelist, and AWS errors are
recorded by status and error code, never by message.

What a handler raises reaches the Lambda's error log, the X-Ray SDK (which records the
message of an exception leaving the handler's subsegment, whatever `capture_error` says),
Powertools' own exception logging, the batch processor and dead-letter error attributes.
`code_only_errors` is the one exit every handler goes through: errors whose text is
code-only by construction leave without the AWS error chained to them, and any other error
leaves as `HandlerFailed`, naming its type and AWS error code only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

from pipeline.aws_errors import SAFE_CODE, error_code, is_aws_error

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()


P = ParamSpec("P")
R = TypeVar("R")


class HandlerFailed(RuntimeError):
    """Raised in place of an error whose text could quote an object key (an AWS message, a
    defect's KeyError): its type and AWS error code only. The traceback is kept (code
    locations, no values)."""

    def __init__(self, error: Exception) -> None:
        kind = type(error).__name__
        code = error_code(error) if is_aws_error(error) else kind
        if not SAFE_CODE.match(code):
            code = "an unrecognised error code"
        super().__init__(f"the invocation failed: {kind}" + (f" ({code})" if code != kind else ""))
        self.code = code


def code_only_errors(
    *passing: type[Exception],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let only code-only errors out of `function`: the `passing` types (whose texts name
    codes and job names only) as they are, anything else as HandlerFailed; either way with
    nothing chained (`raise ... from None` still keeps the AWS error as `__context__`)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except passing as error:
                escaping: Exception = error
            except Exception as error:
                escaping = HandlerFailed(error).with_traceback(error.__traceback__)
            # Raised outside the except clauses, so Python chains nothing new to it.
            escaping.__cause__ = escaping.__context__ = None
            raise escaping

        return wrapper

    return decorate


def _record_aws_error_without_message(
    exception: Exception, stack: Any, subsegment: Any, aws_meta: dict[str, Any]
) -> None:
    response = getattr(exception, "response", None)
    if not isinstance(response, dict):
        if is_aws_error(exception):  # no reply (unreachable, timed out): a fault, by type
            aws_meta["error_code"] = type(exception).__name__
            subsegment.add_fault_flag()
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
