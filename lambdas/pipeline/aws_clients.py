"""boto3 clients shared by the handlers, created on first use and reused across invocations."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# "standard" retries LimitExceededException and throttling (the default "legacy" mode
# does not); a small cap keeps a busy Transcribe from eating the Lambda's time, and the
# queue retries the message later.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=30,
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=RETRY_CONFIG).Table(name)


def reset() -> None:
    """Forget cached clients (tests switch between emulated accounts)."""
    client.cache_clear()
    table.cache_clear()
