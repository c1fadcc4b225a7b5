"""The DynamoDB job index (contract 1): one item per job, status only moves forward.

Every write is conditional, so duplicate and out-of-order deliveries, and the reconciler
racing the event path, can never move a job backwards or create a second item. The index
is itself the idempotency record (the job name is a digest of the upload), which is why the
Powertools idempotency utility, with its own table, is not used here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

PENDING = "PENDING"
QUEUED = "QUEUED"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
REJECTED = "REJECTED"

OPEN_STATUSES = (PENDING, QUEUED, IN_PROGRESS)
TERMINAL_STATUSES = (COMPLETED, FAILED, REJECTED)

# Which statuses each status may be reached from. COMPLETED and FAILED may follow PENDING:
# the start call can succeed and the Lambda die before it records QUEUED.
PREDECESSORS: Mapping[str, tuple[str, ...]] = {
    PENDING: (PENDING,),  # a PENDING job gains the media facts validated after admission
    REJECTED: (PENDING,),  # validated late, or superseded before it started
    QUEUED: (PENDING,),
    IN_PROGRESS: (PENDING, QUEUED),
    COMPLETED: (PENDING, QUEUED, IN_PROGRESS),
    FAILED: (PENDING, QUEUED, IN_PROGRESS),
}

BY_STATUS_INDEX = "by-status"


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds: sorts as text, which the GSI sort keys rely on."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_dynamo(value: Any) -> Any:
    """DynamoDB's resource API wants Decimal, not float; drop None (it cannot be indexed)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimal back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def set_fields(
    fields: Mapping[str, Any], names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """`#fN = :fN` clauses that set `fields`, adding their names and values to an update's
    `names` and `values`. None values are left out (DynamoDB stores no nulls here), so a
    clause never refers to a value that is not there."""
    clauses = []
    for i, (name, value) in enumerate(to_dynamo(dict(fields)).items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = value
        clauses.append(f"#f{i} = :f{i}")
    return clauses


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobIndex:
    """Reads and conditional writes on the job table. `table` is a boto3 Table resource."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def table(self) -> Any:
        """The boto3 Table resource (the capacity ledger keeps its counters in it too)."""
        return self._table

    def get(self, job_name: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"job_name": job_name}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def create(self, item: Mapping[str, Any]) -> bool:
        """Put a new item; False if one with that job name exists already (left untouched)."""
        try:
            self._table.put_item(
                Item=to_dynamo(item), ConditionExpression="attribute_not_exists(job_name)"
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def count_finish_attempt(self, job_name: str, *, code: str, now: str) -> int | None:
        """ADD finish_attempts 1 on an open job (one atomic update, so the event path and the
        reconciler never lose a count); the new count, or None if the job is not open."""
        try:
            response = self._table.update_item(
                Key={"job_name": job_name},
                UpdateExpression=(
                    "ADD finish_attempts :one SET updated_at = :now, last_finish_error = :code"
                ),
                ConditionExpression="#s IN (:p, :q, :i)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":one": 1,
                    ":now": now,
                    ":code": code,
                    ":p": PENDING,
                    ":q": QUEUED,
                    ":i": IN_PROGRESS,
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return int(response["Attributes"]["finish_attempts"])

    def transition(
        self,
        job_name: str,
        *,
        to: str,
        now: str,
        fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move a job forward to `to`, setting `fields`; False (a no-op) if that would not
        be forward from where the job is now, or the job is unknown."""
        allowed = PREDECESSORS[to]
        values: dict[str, Any] = {":to": to, ":now": now}
        names = {"#s": "status"}
        sets = ["#s = :to", "updated_at = :now", *set_fields(fields or {}, names, values)]
        placeholders = []
        for i, status in enumerate(allowed):
            values[f":from{i}"] = status
            placeholders.append(f":from{i}")
        try:
            self._table.update_item(
                Key={"job_name": job_name},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=(
                    f"attribute_exists(job_name) AND #s IN ({', '.join(placeholders)})"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def by_status(
        self, status: str, *, created_before: str | None = None, limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Jobs in one status, oldest first, page by page (the reconciler stops early)."""
        query: dict[str, Any] = {
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": status},
            "Limit": limit,
        }
        if created_before is not None:
            query["KeyConditionExpression"] += " AND created_at < :before"
            query["ExpressionAttributeValues"][":before"] = created_before
        while True:
            page = self._table.query(**query)
            for item in page.get("Items", []):
                yield from_dynamo(item)
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count_by_status(self, status: str) -> int:
        """How many jobs are in one status (the `by-status` index, read page by page)."""
        query: dict[str, Any] = {
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": status},
            "Select": "COUNT",
        }
        total = 0
        while True:
            page = self._table.query(**query)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
