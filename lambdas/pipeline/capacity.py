"""This stack's share of Transcribe Medical's quotas, counted in the job table.

Two numbers bound how fast work may start: the concurrent-job share (jobs this stack has
in Transcribe at once) and the start rate (StartMedicalTranscriptionJob calls a second).
Both are counted in items of the job table, next to the jobs they count, and every change
to them is part of the same DynamoDB transaction as the job's own status change:

- claiming a job is one transaction: the job PENDING -> QUEUED, in-flight + 1 (only while
  below the share) and this second's start count + 1 (only while below the rate);
- a job ending is one transaction: the job QUEUED/IN_PROGRESS -> COMPLETED/FAILED and
  in-flight - 1;
- a start Transcribe refuses for capacity is one transaction: the job QUEUED -> PENDING
  (back in the backlog, conditioned on it still being this claim) and in-flight - 1.

So a slot is taken and given back exactly once per claim, whoever races whom, and the count
equals the number of QUEUED and IN_PROGRESS items. What could still make it drift (an
operator deleting an open job's item, a hand edit) is healed by the reconciler: it counts
the open items and corrects the counter by the difference, once the same difference has
been seen on two runs in a row (a single reading can be off by a transition that the
eventually consistent index had not shown yet).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pipeline import job_index as ji

CAPACITY_KEY = "#capacity"  # "#" is not valid in a job name: no job can collide with it
RATE_KEY_PREFIX = "#starts#"
RATE_ITEM_TTL_S = 3600  # the table's TTL removes spent rate windows


def rate_key(second: int) -> str:
    return f"{RATE_KEY_PREFIX}{second}"


class Claim(StrEnum):
    CLAIMED = "CLAIMED"  # the job is QUEUED and holds a slot: start it now
    NO_CAPACITY = "NO_CAPACITY"  # the share is in use
    RATE_LIMITED = "RATE_LIMITED"  # this second's starts are spent: try the next second
    JOB_CHANGED = "JOB_CHANGED"  # someone else claimed, rejected or deleted the job


@dataclass(frozen=True)
class CapacityState:
    in_flight: int
    drift_seen: int  # the difference the last heal check saw (0: none)
    backoff_until: float  # epoch seconds; no starts before it (another workload is busy)
    limit_streak: int = 0  # LimitExceeded answers since the last start that went through

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> CapacityState:
        """The counter item as stored (absent: nothing in flight, no back-off)."""
        return cls(
            in_flight=int(item.get("in_flight", 0)),
            drift_seen=int(item.get("drift_seen", 0)),
            backoff_until=float(item.get("backoff_until", 0)),
            limit_streak=int(item.get("limit_streak", 0)),
        )


class CapacityLedger(Protocol):
    """What the dispatcher, the finisher and the reconciler need of the counters. One
    DynamoDB implementation here; the simulator has an in-memory one."""

    def state(self) -> CapacityState: ...

    def claim(
        self, job_name: str, *, attempt: int, epoch_s: float, now: str, fields: Mapping[str, Any]
    ) -> Claim: ...

    def unclaim(self, job_name: str, *, attempt: int, now: str) -> bool: ...

    def release(self, job_name: str, *, to: str, now: str, fields: Mapping[str, Any]) -> bool: ...

    def adjust(self, delta: int, *, drift_seen: int) -> None: ...

    def back_off(self, until_epoch_s: float, *, streak: int) -> None: ...


def _reasons(error: ClientError) -> list[str]:
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]


def _is_cancelled(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


class DynamoCapacityLedger:
    """The counters as items of the job table (`table` is a boto3 Table resource)."""

    def __init__(self, table: Any, *, share: int, rate_per_second: int) -> None:
        self._table = table
        self._client = table.meta.client
        self._name = table.name
        self.share = share
        self.rate_per_second = rate_per_second

    # The Table resource's client serializes plain Python values itself (boto3's
    # transformation hooks), as it does for update_item: typed values would be wrapped twice.
    def _typed(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return dict(ji.to_dynamo(dict(values)))

    def _key(self, name: str) -> dict[str, Any]:
        return {"job_name": name}

    def state(self) -> CapacityState:
        item = self._table.get_item(Key={"job_name": CAPACITY_KEY}, ConsistentRead=True).get(
            "Item", {}
        )
        return CapacityState.from_item(item)

    def claim(
        self, job_name: str, *, attempt: int, epoch_s: float, now: str, fields: Mapping[str, Any]
    ) -> Claim:
        second = math.floor(epoch_s)
        job_values: dict[str, Any] = {
            ":queued": ji.QUEUED,
            ":pending": ji.PENDING,
            ":now": now,
            ":attempt": attempt,
            ":previous": attempt - 1,
        }
        job_names = {"#s": "status"}
        job_sets = [
            "#s = :queued",
            "updated_at = :now",
            "attempts = :attempt",
            *ji.set_fields(fields, job_names, job_values),
        ]
        items = [
            {
                "Update": {
                    "TableName": self._name,
                    "Key": self._key(job_name),
                    "UpdateExpression": "SET " + ", ".join(job_sets),
                    # The attempt number makes the claim this caller's alone: a later
                    # unclaim can only undo its own claim, never a newer one.
                    "ConditionExpression": (
                        "#s = :pending AND (attempts = :previous OR attribute_not_exists(attempts))"
                    ),
                    "ExpressionAttributeNames": job_names,
                    "ExpressionAttributeValues": self._typed(job_values),
                }
            },
            {
                "Update": {
                    "TableName": self._name,
                    "Key": self._key(CAPACITY_KEY),
                    "UpdateExpression": "ADD in_flight :one",
                    # Below the share, and not backing off (another workload took capacity).
                    "ConditionExpression": (
                        "(attribute_not_exists(in_flight) OR in_flight < :share) AND "
                        "(attribute_not_exists(backoff_until) OR backoff_until <= :epoch)"
                    ),
                    "ExpressionAttributeValues": self._typed(
                        {":one": 1, ":share": self.share, ":epoch": epoch_s}
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self._name,
                    "Key": self._key(rate_key(second)),
                    "UpdateExpression": "ADD starts :one SET expires_at = :expires",
                    "ConditionExpression": "attribute_not_exists(starts) OR starts < :rate",
                    "ExpressionAttributeValues": self._typed(
                        {
                            ":one": 1,
                            ":rate": self.rate_per_second,
                            ":expires": second + RATE_ITEM_TTL_S,
                        }
                    ),
                }
            },
        ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if not _is_cancelled(error):
                raise
            reasons = _reasons(error) + ["None"] * 3
            if reasons[0] == "ConditionalCheckFailed":
                return Claim.JOB_CHANGED
            if reasons[1] == "ConditionalCheckFailed":
                return Claim.NO_CAPACITY
            if reasons[2] == "ConditionalCheckFailed":
                return Claim.RATE_LIMITED
            raise  # a conflict with a concurrent transaction: transient, the caller retries
        return Claim.CLAIMED

    def unclaim(self, job_name: str, *, attempt: int, now: str) -> bool:
        update = {
            "TableName": self._name,
            "Key": self._key(job_name),
            "UpdateExpression": "SET #s = :pending, updated_at = :now",
            "ConditionExpression": "#s = :queued AND attempts = :attempt",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": self._typed(
                {":pending": ji.PENDING, ":queued": ji.QUEUED, ":now": now, ":attempt": attempt}
            ),
        }
        return self._with_slot_back(update)

    def release(self, job_name: str, *, to: str, now: str, fields: Mapping[str, Any]) -> bool:
        """Move an open job to a terminal status; give back its slot if it held one.
        False when the job was already past that point (a repeated or late call)."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":to": to, ":now": now, ":q": ji.QUEUED, ":p": ji.IN_PROGRESS}
        sets = ["#s = :to", "updated_at = :now", *ji.set_fields(fields, names, values)]
        update = {
            "TableName": self._name,
            "Key": self._key(job_name),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "#s IN (:q, :p)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._typed(values),
        }
        if self._with_slot_back(update):
            return True
        # Not holding a slot: a PENDING job (unclaimed after a start that did in fact reach
        # Transcribe) may still end; anything else is already final.
        return ji.JobIndex(self._table).transition(job_name, to=to, now=now, fields=fields)

    def _with_slot_back(self, job_update: dict[str, Any]) -> bool:
        """Apply a job's update and give its slot back, atomically. False if the job's
        condition does not hold. A counter already at zero (a heal counted this slot out)
        is left there and the job's update still applies."""
        try:
            self._client.transact_write_items(
                TransactItems=[{"Update": job_update}, self._decrement()]
            )
        except ClientError as error:
            if not _is_cancelled(error):
                raise
            reasons = _reasons(error) + ["None"] * 2
            if reasons[0] == "ConditionalCheckFailed":
                return False
            if reasons[1] != "ConditionalCheckFailed":
                raise  # a conflict with a concurrent transaction: transient
            try:
                self._client.update_item(**job_update)
            except ClientError as retry_error:
                if retry_error.response.get("Error", {}).get("Code") == (
                    "ConditionalCheckFailedException"
                ):
                    return False
                raise
        return True

    def _decrement(self) -> dict[str, Any]:
        # Never below zero: a heal may already have counted this slot out.
        return {
            "Update": {
                "TableName": self._name,
                "Key": self._key(CAPACITY_KEY),
                "UpdateExpression": "SET in_flight = in_flight - :one",
                "ConditionExpression": "in_flight >= :one",
                "ExpressionAttributeValues": self._typed({":one": 1}),
            }
        }

    def adjust(self, delta: int, *, drift_seen: int) -> None:
        """Correct the counter by `delta` (relative, so concurrent claims are kept) and
        remember the difference this check saw."""
        self._table.update_item(
            Key={"job_name": CAPACITY_KEY},
            UpdateExpression="ADD in_flight :delta SET drift_seen = :seen",
            ExpressionAttributeValues=ji.to_dynamo({":delta": delta, ":seen": drift_seen}),
        )

    def back_off(self, until_epoch_s: float, *, streak: int) -> None:
        """No claims before `until_epoch_s`; `streak` LimitExceeded answers in a row (0 ends
        a back-off episode after a start went through)."""
        self._table.update_item(
            Key={"job_name": CAPACITY_KEY},
            UpdateExpression="SET backoff_until = :until, limit_streak = :streak",
            ExpressionAttributeValues=ji.to_dynamo({":until": until_epoch_s, ":streak": streak}),
        )
