"""One Logger, Tracer and Metrics for the process, configured so PHI stays out of them.

X-Ray's botocore instrumentation records the S3 object `Key` of GetObject/PutObject calls
in trace metadata, and its httplib instrumentation records full request URLs (which hold
the key). Object keys may carry patient names (contract 5), so S3 parameters are dropped
from the whitelist and only botocore is patched.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer


def _drop_s3_parameters_from_traces() -> None:
    try:
        from aws_xray_sdk.ext import boto_utils  # noqa: PLC0415 - optional extra
    except ImportError:  # tracing extras absent: nothing records parameters
        return
    boto_utils.whitelist["services"].pop("s3", None)


_drop_s3_parameters_from_traces()

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
