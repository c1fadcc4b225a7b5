"""DynamoDB's job table in memory: the job index and the capacity ledger share one store.

Same public methods and condition semantics as `pipeline.job_index.JobIndex` and
`pipeline.capacity.DynamoCapacityLedger`, so the real classes run on it unchanged. The
`by-status` GSI is a sorted list per status ((created_at, job_name), oldest first), so a
backlog query costs O(log N + page), not a walk of the table. Reads are strongly
consistent (DynamoDB's GSIs lag a little: the real code tolerates that, the simulation
does not exercise it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from sortedcontainers import SortedList

from devkit.simulation.calls import CallCounter
from devkit.simulation.faults import client_error
from pipeline import job_index as ji
from pipeline.capacity import CAPACITY_KEY, CapacityState, Claim, rate_key

DYNAMODB = "dynamodb"
ITEMS_PER_QUERY_PAGE = 1000  # a 1 MB page of ~1 KB job items


def _without_none(value: Any) -> Any:
    """What `ji.to_dynamo` keeps: None values are dropped (they cannot be stored)."""
    kind = type(value)  # exact types first: ABC isinstance checks dominate a profile
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        return {
            k: v if type(v) in _SCALARS else _without_none(v)
            for k, v in value.items()
            if v is not None
        }
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else _without_none(v) for v in value]
    return value


_SCALARS = frozenset({str, int, float, bool})


def _copy(item: Mapping[str, Any]) -> dict[str, Any]:
    """A reader's own copy, as a fresh GetItem answer would be (stored values hold no None
    already; one level of copying keeps a reader's changes out of the store)."""
    return {k: v.copy() if type(v) in (dict, list) else v for k, v in item.items()}


class ItemStore:
    """Items by job name, with the by-status and by-input views kept up to date."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._by_status: dict[str, SortedList] = {}
        self._by_input: dict[str, list[str]] = {}
        self.created = 0  # job items ever created

    def status_view(self, status: str) -> SortedList:
        view = self._by_status.get(status)
        if view is None:
            view = self._by_status[status] = SortedList()
        return view

    def count(self, status: str) -> int:
        return len(self._by_status.get(status, ()))

    def insert(self, item: dict[str, Any]) -> None:
        name = item["job_name"]
        self.items[name] = item
        if "status" in item and "created_at" in item:
            self.created += 1
            self.status_view(item["status"]).add((item["created_at"], name))
        if "input_key" in item:
            self._by_input.setdefault(item["input_key"], []).append(name)

    def update(self, name: str, changes: Mapping[str, Any]) -> None:
        item = self.items[name]
        old = item.get("status")
        item.update(changes)
        new = item.get("status")
        if old != new and new is not None and "created_at" in item:
            if old is not None:
                self.status_view(old).remove((item["created_at"], name))
            self.status_view(new).add((item["created_at"], name))

    def by_input(self, input_key: str) -> list[dict[str, Any]]:
        """Jobs of one input key, oldest first (the by-input GSI)."""
        jobs = [self.items[name] for name in self._by_input.get(input_key, [])]
        return sorted(jobs, key=lambda job: job["created_at"])


class MemoryTable:
    """The few raw table calls the real code makes besides JobIndex's methods."""

    def __init__(self, store: ItemStore, calls: CallCounter) -> None:
        self._store = store
        self._calls = calls
        self.name = "simulated-jobs"

    def update_item(self, **request: Any) -> dict[str, Any]:
        """JobFinisher's finish-attempt counter (ADD finish_attempts, condition: open)."""
        expression = str(request.get("UpdateExpression", ""))
        if not expression.startswith("ADD finish_attempts"):
            raise NotImplementedError(
                "the simulated table supports only the finish-attempt counter; route other "
                "writes through JobIndex or the capacity ledger"
            )
        self._calls.count(DYNAMODB, "UpdateItem")
        name = request["Key"]["job_name"]
        item = self._store.items.get(name)
        if item is None or item.get("status") not in ji.OPEN_STATUSES:
            raise client_error("ConditionalCheckFailedException", "UpdateItem")
        values = request["ExpressionAttributeValues"]
        attempts = int(item.get("finish_attempts", 0)) + 1
        self._store.update(
            name,
            {
                "finish_attempts": attempts,
                "updated_at": values[":now"],
                "last_finish_error": values[":code"],
            },
        )
        return {"Attributes": {"finish_attempts": attempts}}


class MemoryJobIndex(ji.JobIndex):
    """`JobIndex` on the in-memory store (a subclass, so it is what the real code expects)."""

    def __init__(self, store: ItemStore, calls: CallCounter) -> None:
        super().__init__(MemoryTable(store, calls))
        self.store = store
        self._calls = calls

    def get(self, job_name: str) -> dict[str, Any] | None:
        self._calls.count(DYNAMODB, "GetItem")
        item = self.store.items.get(job_name)
        return _copy(item) if item is not None else None

    def create(self, item: Mapping[str, Any]) -> bool:
        self._calls.count(DYNAMODB, "PutItem")
        if item["job_name"] in self.store.items:
            return False
        self.store.insert(_without_none(dict(item)))
        return True

    def transition(
        self, job_name: str, *, to: str, now: str, fields: Mapping[str, Any] | None = None
    ) -> bool:
        self._calls.count(DYNAMODB, "UpdateItem")
        return self.apply_transition(job_name, to=to, now=now, fields=fields)

    def apply_transition(
        self, job_name: str, *, to: str, now: str, fields: Mapping[str, Any] | None = None
    ) -> bool:
        """The transition's condition and update, without counting a call."""
        item = self.store.items.get(job_name)
        if item is None or item.get("status") not in ji.PREDECESSORS[to]:
            return False
        self.store.update(
            job_name, {**_without_none(dict(fields or {})), "status": to, "updated_at": now}
        )
        return True

    def count_by_status(self, status: str) -> int:
        """A COUNT query: one call per page DynamoDB reads (1 MB, about 1,000 items here)."""
        total = self.store.count(status)
        for _ in range(max(1, math.ceil(total / ITEMS_PER_QUERY_PAGE))):
            self._calls.count(DYNAMODB, "Query")
        return total

    def by_status(
        self, status: str, *, created_before: str | None = None, limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Oldest first, one Query call per page of `limit`, continuing after the last key
        read (as ExclusiveStartKey does), so items that change meanwhile are seen as a real
        paged query would see them."""
        view = self.store.status_view(status)
        after: tuple[str, str] | None = None
        while True:
            self._calls.count(DYNAMODB, "Query")
            keys = view.irange(
                minimum=after,
                maximum=(created_before, "") if created_before is not None else None,
                inclusive=(False, False),
            )
            page = []
            for key in keys:
                page.append(key)
                if len(page) >= limit:
                    break
            for _, name in page:
                yield _copy(self.store.items[name])
            if len(page) < limit:
                return
            after = page[-1]


class MemoryLedger:
    """`pipeline.capacity.CapacityLedger` with DynamoCapacityLedger's exact conditions."""

    def __init__(
        self, index: MemoryJobIndex, *, share: int, rate_per_second: int, calls: CallCounter
    ) -> None:
        self._index = index
        self._store = index.store
        self._calls = calls
        self.share = share
        self.rate_per_second = rate_per_second

    def _counter(self) -> dict[str, Any]:
        return self._store.items.setdefault(CAPACITY_KEY, {"job_name": CAPACITY_KEY})

    def state(self) -> CapacityState:
        self._calls.count(DYNAMODB, "GetItem")
        item = self._store.items.get(CAPACITY_KEY, {})
        return CapacityState.from_item(item)

    def claim(
        self, job_name: str, *, attempt: int, epoch_s: float, now: str, fields: Mapping[str, Any]
    ) -> Claim:
        self._calls.count(DYNAMODB, "TransactWriteItems")
        job = self._store.items.get(job_name)
        counter = self._store.items.get(CAPACITY_KEY, {})
        window_key = rate_key(math.floor(epoch_s))
        window = self._store.items.get(window_key, {})
        # The transaction's three conditions, reported in its order (job, share, rate).
        job_ok = (
            job is not None
            and job.get("status") == ji.PENDING
            and ("attempts" not in job or job["attempts"] == attempt - 1)
        )
        share_ok = ("in_flight" not in counter or counter["in_flight"] < self.share) and (
            "backoff_until" not in counter or counter["backoff_until"] <= epoch_s
        )
        rate_ok = "starts" not in window or window["starts"] < self.rate_per_second
        if not job_ok:
            return Claim.JOB_CHANGED
        if not share_ok:
            return Claim.NO_CAPACITY
        if not rate_ok:
            return Claim.RATE_LIMITED
        self._store.update(
            job_name,
            {
                **_without_none(dict(fields)),
                "status": ji.QUEUED,
                "updated_at": now,
                "attempts": attempt,
            },
        )
        counter = self._counter()
        counter["in_flight"] = counter.get("in_flight", 0) + 1
        window = self._store.items.setdefault(window_key, {"job_name": window_key})
        window["starts"] = window.get("starts", 0) + 1
        return Claim.CLAIMED

    def unclaim(self, job_name: str, *, attempt: int, now: str) -> bool:
        job = self._store.items.get(job_name)
        ok = job is not None and job.get("status") == ji.QUEUED and job.get("attempts") == attempt
        changes = {"status": ji.PENDING, "updated_at": now}
        return self._with_slot_back(job_name, ok, changes)

    def release(self, job_name: str, *, to: str, now: str, fields: Mapping[str, Any]) -> bool:
        job = self._store.items.get(job_name)
        ok = job is not None and job.get("status") in (ji.QUEUED, ji.IN_PROGRESS)
        changes = {**_without_none(dict(fields)), "status": to, "updated_at": now}
        if self._with_slot_back(job_name, ok, changes):
            return True
        # Not holding a slot: the same fallback as DynamoDB's, a plain forward transition.
        return self._index.transition(job_name, to=to, now=now, fields=fields)

    def _with_slot_back(self, job_name: str, job_ok: bool, changes: Mapping[str, Any]) -> bool:
        self._calls.count(DYNAMODB, "TransactWriteItems")
        if not job_ok:
            return False
        counter = self._counter()
        if counter.get("in_flight", 0) >= 1:
            self._store.update(job_name, changes)
            counter["in_flight"] -= 1
            return True
        # The decrement's condition failed (a heal counted the slot out): the job's update
        # alone, as a second call, exactly as DynamoCapacityLedger does.
        self._calls.count(DYNAMODB, "UpdateItem")
        self._store.update(job_name, changes)
        return True

    def adjust(self, delta: int, *, drift_seen: int) -> None:
        self._calls.count(DYNAMODB, "UpdateItem")
        counter = self._counter()
        counter["in_flight"] = counter.get("in_flight", 0) + delta
        counter["drift_seen"] = drift_seen

    def back_off(self, until_epoch_s: float, *, streak: int) -> None:
        self._calls.count(DYNAMODB, "UpdateItem")
        self._counter()["backoff_until"] = until_epoch_s
        self._counter()["limit_streak"] = streak
