"""Deleting the ingest queue's finished messages as soon as their uploads are recorded.

Lambda deletes a batch's successful messages only when the whole invocation returns. The
start handler goes on to dispatch the backlog after recording the batch, and should that
part crash or time out on a message's last receive, SQS would move every message of the
batch to the dead-letter queue although each upload is safe in the index. Deleting the
recorded messages first (one DeleteMessageBatch call per ten) keeps the dead-letter queue
for what needs a person: malformed messages and uploads that could not be recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SQS_BATCH_LIMIT = 10


def queue_url_from_arn(arn: str) -> str:
    """`arn:aws:sqs:REGION:ACCOUNT:NAME` -> the queue's URL (no GetQueueUrl call)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def delete_finished(sqs: Any, queue_url: str, receipts: Sequence[tuple[str, str]]) -> int:
    """Delete (message id, receipt handle) pairs; returns how many SQS confirmed. Failures
    are harmless: Lambda deletes them anyway when the invocation succeeds, and a repeated
    delivery of a recorded upload is a no-op."""
    deleted = 0
    for start in range(0, len(receipts), SQS_BATCH_LIMIT):
        chunk = receipts[start : start + SQS_BATCH_LIMIT]
        try:
            response = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": receipt} for i, (_, receipt) in enumerate(chunk)
                ],
            )
        except (ClientError, BotoCoreError):
            continue
        deleted += len(response.get("Successful", []))
    return deleted
