"""Handler tests run against moto with the stack's resources built from an environment config."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.moto_api import state_manager

from devkit.emulated_resources import EmulatedStack, create_resources
from devkit.lambda_events import s3_notification, sqs_event, sqs_record
from devkit.transcribe_medical import MODEL_NAME
from pipeline import aws_clients
from pipeline.settings import current_settings
from stacks.config import parse_environment

BASE_SETTINGS: dict[str, Any] = {
    "region": "us-east-1",
    "default_type": "CONVERSATION",
    "show_speaker_labels": True,
    "max_speaker_labels": 3,
}


class Env:
    """One emulated environment: resources, clients and helpers to upload and deliver."""

    def __init__(self, stack: EmulatedStack) -> None:
        self.stack = stack
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.transcribe = aws_clients.client("transcribe")
        self.table = boto3.resource("dynamodb", region_name="us-east-1").Table(stack.job_table)
        self.start_requests: list[dict[str, Any]] = []
        self.transcribe.meta.events.register(
            "provide-client-params.transcribe.StartMedicalTranscriptionJob", self._capture
        )

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self.start_requests.append(json.loads(json.dumps(params)))

    @property
    def queue_arn(self) -> str:
        return f"arn:aws:sqs:us-east-1:123456789012:{self.stack.ingest_queue_url.rsplit('/', 1)[1]}"

    def put(self, key: str, body: bytes, *, bucket: str | None = None) -> dict[str, Any]:
        """Upload and return the S3 notification AWS would send for it."""
        bucket = bucket or self.stack.input_bucket
        response = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return s3_notification(
            bucket=bucket,
            key=key,
            size=len(body),
            version_id=response.get("VersionId"),
            etag=response["ETag"].strip('"'),
        )

    def event(self, *bodies: Any, receive_count: int = 1) -> dict[str, Any]:
        return sqs_event(
            sqs_record(body, queue_arn=self.queue_arn, receive_count=receive_count)
            for body in bodies
        )

    def items(self) -> list[dict[str, Any]]:
        """Job items only: the capacity ledger's counters share the table under `#` keys."""
        return [i for i in self.table.scan()["Items"] if not i["job_name"].startswith("#")]

    def item(self, job_name: str) -> dict[str, Any]:
        return self.table.get_item(Key={"job_name": job_name})["Item"]

    def only_item(self) -> dict[str, Any]:
        items = self.items()
        assert len(items) == 1, items
        return items[0]

    def fail_transcribe(self, code: str, *, status: int = 400, times: int = 1) -> None:
        """Make the next `times` StartMedicalTranscriptionJob calls fail with `code`."""
        fail_calls(
            self.transcribe, "StartMedicalTranscriptionJob", code, status=status, times=times
        )


def fail_calls(
    client: Any,
    operation: str,
    code: str,
    *,
    status: int = 400,
    message: str | None = None,
    times: float = 1,
) -> Callable[[], None]:
    """Make the next `times` calls of `operation` on this boto3 client fail as AWS would
    (botocore's own retries count as calls); returns a function that ends the failures."""
    remaining = {"n": times}

    def raise_error(**_: Any) -> None:
        if remaining["n"] > 0:
            remaining["n"] -= 1
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": message or f"injected {code}"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                operation,
            )

    service = client.meta.service_model.service_name
    client.meta.events.register(f"before-call.{service}.{operation}", raise_error)
    return lambda: remaining.update(n=0)


S3_MAX_KEY_BYTES = 1024
S3_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")


def reject_long_keys(params: dict[str, Any], **_: Any) -> None:
    """S3 refuses keys over 1,024 bytes of UTF-8 with KeyTooLongError; moto does not."""
    if len(str(params.get("Key", "")).encode("utf-8")) > S3_MAX_KEY_BYTES:
        raise ClientError(
            {
                "Error": {"Code": "KeyTooLongError", "Message": "Your key is too long"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "PutObject",
        )


def enforce_s3_key_limit() -> None:
    """On boto3's default session, so every client made from it after this call (the
    handlers', the tests' and the emulator's) refuses over-long keys as S3 does."""
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    for operation in S3_WRITES:
        boto3.DEFAULT_SESSION.events.register(
            f"before-parameter-build.s3.{operation}", reject_long_keys
        )


@pytest.fixture
def make_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Env]]:
    """Build an environment with settings overrides, e.g. make_env(channel_identification=True)."""
    with mock_aws():

        def build(**overrides: Any) -> Env:
            config = parse_environment("test", {**BASE_SETTINGS, **overrides})
            stack = create_resources(config)
            for name, value in stack.lambda_environment().items():
                monkeypatch.setenv(name, value)
            # These tests reconcile right after an event: poll every open job.
            monkeypatch.setenv("RECONCILE_POLL_AFTER_SECONDS", "0")
            current_settings.cache_clear()
            aws_clients.reset()
            enforce_s3_key_limit()
            return Env(stack)

        yield build
    state_manager.unset_transition(MODEL_NAME)  # an emulator may have frozen moto's jobs
    current_settings.cache_clear()
    aws_clients.reset()
    boto3.DEFAULT_SESSION = None  # drop the key-limit hook with the session


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


@pytest.fixture(autouse=True)
def back_offs_end_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dispatch run here stops at a back-off instead of sleeping it out in real time;
    test_dispatch checks the waiting itself with a virtual clock."""
    from pipeline import dispatch

    monkeypatch.setattr(dispatch, "WAIT_OUT_BACKOFF_S", 0.0)
