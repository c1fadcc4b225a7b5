"""Events shaped the way AWS delivers them to our handlers.

moto's own S3 notifications omit `versionId` and `sequencer`, which real S3 sends for a
versioned bucket; the emulator builds notifications here instead, so the handlers see
what they see in AWS.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def s3_notification(
    *,
    bucket: str,
    key: str,
    size: int,
    version_id: str | None = None,
    etag: str | None = None,
    region: str = "us-east-1",
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 event notification body for one object (the key URL-encoded as S3 does)."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe=""),
        "size": size,
        "eTag": etag or hashlib.md5(f"{key}:{size}".encode(), usedforsecurity=False).hexdigest(),
        "sequencer": f"{time.time_ns():X}",
    }
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ingest",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def s3_test_event(bucket: str) -> dict[str, Any]:
    """The message S3 sends when a notification configuration is created."""
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": datetime.now(UTC).isoformat(),
        "Bucket": bucket,
        "RequestId": uuid.uuid4().hex[:16].upper(),
        "HostId": "emulated",
    }


def sqs_record(
    body: str | Mapping[str, Any],
    *,
    queue_arn: str,
    receive_count: int = 1,
    message_id: str | None = None,
    receipt_handle: str | None = None,
) -> dict[str, Any]:
    """One record of the SQS event Lambda's event source mapping delivers."""
    text = body if isinstance(body, str) else json.dumps(body)
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def transcribe_state_change(
    *,
    job_name: str,
    status: str,
    region: str = "us-east-1",
    account: str = "123456789012",
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event Transcribe emits when a job ends."""
    detail: dict[str, Any] = {"TranscriptionJobName": job_name, "TranscriptionJobStatus": status}
    if failure_reason:
        detail["FailureReason"] = failure_reason
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Transcribe Job State Change",
        "source": "aws.transcribe",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }
