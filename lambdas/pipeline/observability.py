"""One Logger, Tracer and Metrics for the process, configured so PHI stays out of them.

X-Ray's botocore instrumentation records the S3 object `Key` of GetObject/PutObject calls
in trace metadata, and its httplib instrumentation records full request URLs (which hold
the key). Object keys may carry patient names (contract 5), so only botocore is patched and
S3's parameters are dropped from the SDK's whitelist.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()


def drop_s3_parameters_from_traces() -> bool:
    """Remove S3 from the X-Ray parameter whitelist; False when tracing is off (nothing
    records parameters, and the X-Ray SDK is not even imported)."""
    if tracer.disabled:
        return False
    from aws_xray_sdk.ext import boto_utils  # noqa: PLC0415 - loaded by the patch above

    boto_utils.whitelist["services"].pop("s3", None)
    return True


drop_s3_parameters_from_traces()
