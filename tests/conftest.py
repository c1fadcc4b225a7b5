"""Shared test setup: no real AWS, no network, and the handlers' environment."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# Never reach a real account: fake credentials, no profile, one region.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "medical-transcription",
        "POWERTOOLS_METRICS_NAMESPACE": "MedicalTranscription",
        "LOG_LEVEL": "DEBUG",
    }
)


@dataclass
class FakeLambdaContext:
    function_name: str = "start-job"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:start-job"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the handlers' Powertools logger writes, whatever stdout was at import."""
    from pipeline.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    level = logger.log_level
    logger.setLevel("INFO")  # what the stack deploys with
    try:
        yield buffer
    finally:
        handler.setStream(previous)
        logger.setLevel(level)
