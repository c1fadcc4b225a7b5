"""Job lookups and operations, as plain functions over injected boto3 clients.

Nothing here prints or parses arguments: the CLI does that, and tests call these directly.
The status names, index names and output layout are duplicated from the Lambda code
(`lambdas/pipeline/`) because jobctl runs without it; DESIGN.md's contracts 1 and 3 are
what keep the two in step.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from jobctl.resources import JobctlError, UsageError

# --- contract 1: the job index -------------------------------------------------------------

PENDING = "PENDING"
QUEUED = "QUEUED"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
REJECTED = "REJECTED"
STATUSES = (PENDING, QUEUED, IN_PROGRESS, COMPLETED, FAILED, REJECTED)
OPEN_STATUSES = (PENDING, QUEUED, IN_PROGRESS)
BY_INPUT_INDEX = "by-input"
BY_STATUS_INDEX = "by-status"
JOB_NAME_PATTERN = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")

# --- contract 3: outputs ---------------------------------------------------------------------

TRANSCRIPT_PREFIX = "medical/"
DOCUMENTS_PREFIX = "transcripts/"

# The capacity ledger shares the table with the jobs: its items' keys start with "#"
# (`#capacity`, `#starts#<second>`), which no job name can. They are counters, never jobs.
LEDGER_KEY_PREFIX = "#"

# --- contract 6: the integrator metadata on an item ----------------------------------------

# Who the note is about, which visit, who wrote it: PHI, shown only on request. The note
# type (a LOINC document code, the job type's default when not given) says only what kind
# of document it is, and is shown like the job type.
PHI_FIELDS = ("patient_id", "encounter_id", "author")

# AWS answers NotFoundException for an unknown Transcribe job; moto answers BadRequestException.
UNKNOWN_JOB_CODES = frozenset({"NotFoundException", "BadRequestException"})
MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys

Item = dict[str, Any]


class NotFound(JobctlError):
    """No such job (or object)."""


class Refused(JobctlError):
    """The job's state does not allow the operation."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


# --- reading the index ------------------------------------------------------------------------

_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals as int or float, sets as sorted lists: printable and JSON-able."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_wire(raw: Mapping[str, Any]) -> Item:
    """A low-level DynamoDB item ({"status": {"S": ...}}) as plain Python values."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in raw.items()}


def _get_raw(ddb: Any, table: str, job_name: str) -> dict[str, Any] | None:
    response = ddb.get_item(TableName=table, Key={"job_name": {"S": job_name}}, ConsistentRead=True)
    item = response.get("Item")
    return dict(item) if item else None


def is_job(item: Mapping[str, Any]) -> bool:
    """A job's item, not one of the capacity ledger's counters."""
    return not str(item.get("job_name", "")).startswith(LEDGER_KEY_PREFIX)


def without_phi(item: Mapping[str, Any]) -> Item:
    """The item without the integrator metadata's values (contract 6: they are PHI)."""
    return {k: v for k, v in item.items() if k not in PHI_FIELDS}


def get_job(ddb: Any, table: str, job_name: str) -> Item | None:
    if job_name.startswith(LEDGER_KEY_PREFIX):
        return None
    raw = _get_raw(ddb, table, job_name)
    return from_wire(raw) if raw else None


def _query(ddb: Any, request: dict[str, Any], *, limit: int | None = None) -> Iterator[Item]:
    """Every item a query returns (all pages), stopping after `limit` if given."""
    request = dict(request)
    count = 0
    while True:
        page = ddb.query(**request)
        for raw in page.get("Items", []):
            item = from_wire(raw)
            if not is_job(item):  # a counter in an index: never shown, never counted
                continue
            yield item
            count += 1
            if limit is not None and count >= limit:
                return
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def jobs_for_input(ddb: Any, table: str, input_key: str) -> list[Item]:
    """Every job made from one input key (one per uploaded version), newest first."""
    return list(
        _query(
            ddb,
            {
                "TableName": table,
                "IndexName": BY_INPUT_INDEX,
                "KeyConditionExpression": "input_key = :k",
                "ExpressionAttributeValues": {":k": {"S": input_key}},
                "ScanIndexForward": False,
            },
        )
    )


@dataclass(frozen=True)
class Lookup:
    item: Item
    by_input_key: bool = False
    # Other jobs for the same input key (other versions), newest first.
    others: list[Item] = field(default_factory=list)


def find_job(ddb: Any, table: str, ref: str) -> Lookup:
    """A job by its name, else by input key (the newest of that key's jobs)."""
    if not ref:
        raise UsageError("name a job (its job name or its input key)")
    if JOB_NAME_PATTERN.match(ref):
        item = get_job(ddb, table, ref)
        if item is not None:
            return Lookup(item)
    # by-input holds only the projected copy, read eventually: re-read the newest by name.
    matches = jobs_for_input(ddb, table, ref)
    if not matches:
        raise NotFound(f"no job named {ref!r} and no job for an input key {ref!r}")
    newest = get_job(ddb, table, matches[0]["job_name"]) or matches[0]
    return Lookup(newest, by_input_key=True, others=matches[1:])


# --- listing ----------------------------------------------------------------------------------

RELATIVE_TIME = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def index_time(moment: datetime) -> str:
    """The index's own timestamp format (ISO-8601 UTC, milliseconds, Z): the by-status and
    by-input sort keys compare as text, so a bound must be written exactly like them."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


TIMESTAMP_FIELDS = ("created_at", "updated_at", "completed_at")


def normalise_time(value: Any) -> Any:
    """Any ISO-8601 time (a datetime, or text such as Transcribe's CompletionTime with
    microseconds and +00:00) in the index's one format; other values as they are."""
    if isinstance(value, datetime):
        return index_time(value)
    if isinstance(value, str) and len(value) >= 19 and value[10] == "T":
        try:
            return index_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return value


def list_duration(item: Mapping[str, Any]) -> Any:
    """The one duration the demo's table and summary.json show: the transcript's
    (`stats.duration_s`), else, before the job completes, the media header's."""
    stats = item.get("stats") or {}
    return stats.get("duration_s", item.get("duration_s"))


def with_normalised_times(item: Mapping[str, Any]) -> Item:
    """The item with its timestamps in one precision (the finisher may record
    Transcribe's CompletionTime as it came)."""
    return {k: normalise_time(v) if k in TIMESTAMP_FIELDS else v for k, v in item.items()}


def parse_since(text: str, *, now: datetime | None = None) -> str:
    """`2h`, `90m`, `3d`, `1w` before now, or an ISO-8601 date or time (UTC unless it says)."""
    relative = RELATIVE_TIME.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return index_time(
            (now or datetime.now(UTC)) - timedelta(seconds=amount * UNIT_SECONDS[unit])
        )
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a relative time (30m, 2h, 3d, 1w) nor ISO-8601 "
            "(2025-06-01 or 2025-06-01T12:00:00Z)"
        ) from None
    return index_time(moment)


@dataclass(frozen=True)
class Listing:
    items: list[Item]
    truncated: bool  # more jobs matched than the limit allowed


def list_jobs(
    ddb: Any,
    table: str,
    *,
    statuses: Iterable[str] = STATUSES,
    since: str | None = None,
    limit: int = 50,
) -> Listing:
    """Newest first, from the by-status index: one query per status, never a table scan."""
    found: list[Item] = []
    for status in statuses:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if since is not None:
            request["KeyConditionExpression"] += " AND created_at >= :since"
            request["ExpressionAttributeValues"][":since"] = {"S": since}
        # One more than asked tells whether the limit cut anything off.
        found.extend(_query(ddb, request, limit=limit + 1))
    found.sort(key=lambda i: (str(i.get("created_at", "")), str(i["job_name"])), reverse=True)
    return Listing(items=found[:limit], truncated=len(found) > limit)


# --- why --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    headline: str
    details: list[str]
    next_steps: list[str]


def _transcribe_job(transcribe: Any, job_name: str) -> dict[str, Any] | None:
    try:
        response = transcribe.get_medical_transcription_job(MedicalTranscriptionJobName=job_name)
    except ClientError as error:
        if error_code(error) in UNKNOWN_JOB_CODES:
            return None
        raise
    return dict(response["MedicalTranscriptionJob"])


def _when(value: Any) -> str:
    return str(normalise_time(value)) if value else "?"


def diagnose(item: Mapping[str, Any], transcribe: Any) -> Diagnosis:
    """Why a job is where it is, and what a person can do about it."""
    name, status = item["job_name"], item["status"]
    reason = str(item.get("failure_reason") or "").strip()
    if status == REJECTED:
        return Diagnosis(
            headline="REJECTED: the pipeline did not send this file to Transcribe.",
            details=[f"Reason: {reason or '(none recorded)'}"],
            next_steps=[
                "Fix the file as the reason says and upload it again: a new upload (a new "
                "version of the same key) becomes a new job by itself.",
                f"`jobctl retry {name}` re-checks this same version: useful only after the "
                "pipeline itself changed.",
            ],
        )
    if status == FAILED:
        details = [f"Reason: {reason or '(none recorded)'}"]
        raw = str(item.get("transcribe_failure_reason") or "").strip()
        if raw and raw not in reason:
            details.append(f"Transcribe said: {raw}")
        return Diagnosis(
            headline="FAILED: the job ended without a transcript.",
            details=details,
            next_steps=[
                "If the file is at fault, upload a fixed file: the new version becomes a new job.",
                "If the failure was transient (or the pipeline has been fixed), run this same "
                f"version again: `jobctl retry {name}`.",
            ],
        )
    if status == PENDING:
        return _diagnose_pending(item)
    if status in (QUEUED, IN_PROGRESS):
        headline = (
            "QUEUED: Transcribe has accepted the job and not begun it yet."
            if status == QUEUED
            else "IN_PROGRESS: Transcribe is transcribing it."
        )
        details = [f"Last change recorded at {_when(item.get('updated_at'))}."]
        steps = ["Nothing: the post-process function or the reconciler records the result."]
        try:
            job = _transcribe_job(transcribe, name)
        except ClientError as error:
            details.append(f"Could not ask Transcribe ({error_code(error)}).")
            return Diagnosis(headline, details, steps)
        if job is None:
            details.append("Transcribe has no record of this job: it will never finish by itself.")
            steps = [
                f"Delete the job (`jobctl delete {name}`) and upload the file again.",
            ]
        else:
            live = str(job.get("TranscriptionJobStatus", "?"))
            details.append(f"Transcribe reports {live}.")
            if live in ("COMPLETED", "FAILED"):
                details.append(
                    f"It ended at {_when(job.get('CompletionTime'))}; the index has not caught up."
                )
                steps = [
                    "The reconciler records it within its interval (5 minutes by default); if "
                    "it stays this way, check the post-process and reconcile dead-letter queues "
                    "and the functions' errors.",
                ]
            elif job.get("StartTime"):
                details.append(f"Transcribe started it at {_when(job.get('StartTime'))}.")
        return Diagnosis(headline, details, steps)
    stats = item.get("stats") or {}
    return Diagnosis(
        headline=f"COMPLETED at {_when(item.get('completed_at'))}.",
        details=[f"{stats.get('words', '?')} words; {len(item.get('outputs') or {})} documents."],
        next_steps=[f"`jobctl download {name} DIR` fetches the documents and raw transcript."],
    )


BACKLOG = (
    "It waits in the backlog: the dispatcher starts the oldest waiting jobs whenever a job "
    "ends, a new upload arrives or the reconciler runs (every few minutes), as far as this "
    "stack's share of the concurrent-job quota and its start rate allow."
)


def _diagnose_pending(item: Mapping[str, Any]) -> Diagnosis:
    attempts = int(item.get("attempts") or 0)
    details = [BACKLOG]
    if item.get("needs_validation"):
        details.insert(
            0,
            "S3 was busy on every delivery, so the upload was recorded unchecked: the "
            "dispatcher checks the file before it starts the job.",
        )
    wait_steps = [
        "Nothing, unless it waits for hours (the backlog-age alarm says when): then check the "
        "account's Transcribe Medical quotas, other workloads using them, and the functions' "
        "errors.",
        "`jobctl retry` cannot hurry it: a re-sent notification finds the job already "
        "recorded and changes nothing.",
    ]
    if attempts:
        return Diagnosis(
            headline="PENDING: waiting for Transcribe capacity.",
            details=[
                f"{attempts} start attempt(s) so far, the last at "
                f"{_when(item.get('updated_at'))}: Transcribe was busy (request rate or the "
                "concurrent-job quota), so the job went back to the backlog.",
                *details,
            ],
            next_steps=wait_steps,
        )
    return Diagnosis(
        headline="PENDING: accepted, not started yet.",
        details=[f"Recorded at {_when(item.get('created_at'))}; no start attempt yet.", *details],
        next_steps=wait_steps,
    )


# --- retry ------------------------------------------------------------------------------------


def s3_notification(
    *,
    bucket: str,
    key: str,
    size: int,
    version_id: str | None,
    etag: str | None,
    region: str,
) -> dict[str, Any]:
    """An S3 ObjectCreated notification body for one object, shaped as S3 sends it to the
    ingest queue (key URL-encoded with quote_plus), so the start function cannot tell a retry
    from the original upload: same bucket, key and version means the same job name."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe=""),
        "size": size,
        "sequencer": f"{time.time_ns():X}",
    }
    if etag:
        obj["eTag"] = etag
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": index_time(datetime.now(UTC)),
                "eventName": "ObjectCreated:Put",
                # Marks the message as a jobctl retry for whoever reads the queue.
                "userIdentity": {"principalId": "jobctl"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "jobctl-retry",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "jobctl"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


@dataclass
class RetryResult:
    job_name: str
    previous_status: str
    transcribe_record_deleted: bool = False
    item_deleted: bool = False
    message_id: str = ""
    notes: list[str] = field(default_factory=list)


def _head_input(s3: Any, item: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"Bucket": item["input_bucket"], "Key": item["input_key"]}
    if item.get("input_version"):
        request["VersionId"] = item["input_version"]
    try:
        return dict(s3.head_object(**request))
    except ClientError as error:
        if error_code(error) in MISSING_OBJECT_CODES:
            raise Refused(
                "the uploaded file (that version) no longer exists, so it cannot be "
                "transcribed again: upload the file again"
            ) from None
        raise


def delete_transcribe_job(transcribe: Any, job_name: str) -> bool:
    """Delete Transcribe's record of a job; False if it had none."""
    try:
        transcribe.delete_medical_transcription_job(MedicalTranscriptionJobName=job_name)
    except ClientError as error:
        if error_code(error) in UNKNOWN_JOB_CODES:
            return False
        raise
    return True


def retry_job(
    *,
    ddb: Any,
    s3: Any,
    sqs: Any,
    transcribe: Any,
    table: str,
    queue_url: str,
    input_bucket: str,
    item: Mapping[str, Any],
    force: bool = False,
    region: str = "us-east-1",
) -> RetryResult:
    """Run the same uploaded version through the pipeline again (see the CLI's help)."""
    name, status = str(item["job_name"]), str(item["status"])
    if status == COMPLETED:
        raise Refused(
            f"job {name} is already completed; delete it first if you want it transcribed again"
        )
    if status == PENDING and not force:
        raise Refused(
            f"job {name} is PENDING: it waits in the backlog and the dispatcher starts it as "
            f"capacity frees (`jobctl why {name}`); a re-sent notification would change nothing. "
            "Pass --force to re-send it anyway"
        )
    if status in (QUEUED, IN_PROGRESS) and not force:
        raise Refused(
            f"job {name} is {status}: Transcribe has it. Wait for it to end (`jobctl why {name}`), "
            "or pass --force to re-send its upload notification anyway"
        )
    if item.get("input_bucket") != input_bucket:
        raise Refused(
            f"job {name} came from bucket {item.get('input_bucket')}, not this stack's input "
            f"bucket {input_bucket}: the start function would ignore it"
        )
    # Before anything is deleted: the file must still be there to be transcribed again.
    head = _head_input(s3, item)
    result = RetryResult(job_name=name, previous_status=status)
    raw_item: dict[str, Any] | None = None
    if status in (FAILED, REJECTED):
        # The old Transcribe record would make the new start a name conflict.
        result.transcribe_record_deleted = delete_transcribe_job(transcribe, name)
        raw_item = _get_raw(ddb, table, name)
        _delete_item(ddb, table, name, expected_status=status)
        result.item_deleted = True
    else:
        result.notes.append(
            f"the job is already recorded ({status}): the start function records this "
            "notification as a duplicate, and it changes nothing"
        )
    body = s3_notification(
        bucket=item["input_bucket"],
        key=item["input_key"],
        size=int(head.get("ContentLength", item.get("input_size") or 0)),
        version_id=item.get("input_version") or None,
        etag=str(head.get("ETag", "")).strip('"') or None,
        region=region,
    )
    try:
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    except Exception:
        # Without the message nothing would recreate the job: put the item back.
        if raw_item is not None:
            ddb.put_item(
                TableName=table, Item=raw_item, ConditionExpression="attribute_not_exists(job_name)"
            )
        raise
    result.message_id = str(sent.get("MessageId", ""))
    return result


def _delete_item(ddb: Any, table: str, job_name: str, *, expected_status: str | None) -> None:
    request: dict[str, Any] = {"TableName": table, "Key": {"job_name": {"S": job_name}}}
    if expected_status is not None:
        # Someone else may be acting on the job at the same time: only delete what we saw.
        request.update(
            ConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": expected_status}},
        )
    try:
        ddb.delete_item(**request)
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            raise Refused(
                f"job {job_name} changed while this command ran; look at it again "
                f"(`jobctl status {job_name}`)"
            ) from None
        raise


# --- delete -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    delete_marker: bool = False
    latest: bool = field(default=False, compare=False)
    modified: datetime | None = field(default=None, compare=False)


@dataclass
class DeletePlan:
    item: Item
    output_bucket: str
    versions: list[ObjectVersion]  # in the output bucket
    input_version: ObjectVersion | None = None  # in the input bucket, with --include-input
    sharing_jobs: list[Item] = field(default_factory=list)
    # Older versions of documents written under the old shared layout that cannot be
    # attributed to this job: kept, and the operator told.
    kept_versions: list[ObjectVersion] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return sorted({v.key for v in self.versions})


@dataclass
class DeleteReport:
    job_name: str
    transcribe_record_deleted: bool = False
    versions_deleted: int = 0
    delete_markers_deleted: int = 0
    keys: list[str] = field(default_factory=list)
    input_deleted: bool = False
    input_missing: bool = False
    item_deleted: bool = False


def input_revision(item: Mapping[str, Any]) -> str:
    """The upload's folder name: version id, else `etag-<ETag>`, else the job name
    (as lambdas/pipeline/output_layout.py names it)."""
    version = str(item.get("input_version") or "")
    if version and version != "null":
        return version
    etag = str(item.get("input_etag") or "").strip('"')
    return f"etag-{etag}" if etag else str(item["job_name"])


def own_folders(item: Mapping[str, Any]) -> tuple[str, str]:
    """The two folders that can hold this job's documents and no other job's (contract 3)."""
    return (
        f"{DOCUMENTS_PREFIX}{item['input_key']}/{input_revision(item)}/",
        f"{DOCUMENTS_PREFIX}_by-job/{item['job_name']}/",
    )


def is_own_key(item: Mapping[str, Any], key: str) -> bool:
    return any(
        key.startswith(folder) and "/" not in key[len(folder) :] for folder in own_folders(item)
    )


def transcript_key(item: Mapping[str, Any]) -> str:
    return str(item.get("transcript_key") or f"{TRANSCRIPT_PREFIX}{item['job_name']}.json")


def _versions_of(s3: Any, bucket: str, key: str) -> list[ObjectVersion]:
    """Every version and delete marker of exactly `key`, newest first."""
    found = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        entries = [(v, False) for v in page.get("Versions", [])]
        entries += [(m, True) for m in page.get("DeleteMarkers", [])]
        for entry, marker in entries:
            if entry["Key"] != key:  # a prefix listing also returns longer keys
                continue
            found.append(
                ObjectVersion(
                    entry["Key"],
                    entry.get("VersionId"),
                    delete_marker=marker,
                    latest=bool(entry.get("IsLatest")),
                    modified=entry.get("LastModified"),
                )
            )
    return sorted(found, key=lambda v: v.modified or datetime.min.replace(tzinfo=UTC), reverse=True)


def _summary_owner(s3: Any, bucket: str, version: ObjectVersion) -> str | None:
    request: dict[str, Any] = {"Bucket": bucket, "Key": version.key}
    if version.version_id:
        request["VersionId"] = version.version_id
    try:
        return _summary_job(s3.get_object(**request)["Body"].read())
    except ClientError as error:
        if error_code(error) in MISSING_OBJECT_CODES:
            return None
        raise


def _old_layout_versions(
    s3: Any, bucket: str, item: Mapping[str, Any], outputs: Mapping[str, str]
) -> tuple[list[ObjectVersion], list[ObjectVersion]]:
    """(delete, keep) for documents written under the old shared layout
    (`transcripts/<key without extension>/`), where other jobs' documents share the keys
    and no versions were recorded.

    summary.json names its job: each version naming this job goes. Other documents do not:
    their current version goes only when the current summary.json is this job's and the
    document is not newer than it (the same run wrote it). Their older versions cannot be
    told apart from another job's, so they are kept and reported (`keep`), never guessed at.
    """
    name = str(item["job_name"])
    delete: list[ObjectVersion] = []
    keep: list[ObjectVersion] = []
    summary_key = outputs.get("summary.json")
    current_summary: ObjectVersion | None = None
    if summary_key:
        for version in _versions_of(s3, bucket, summary_key):
            # (a delete marker stays: removing it would bring back another version)
            if not version.delete_marker and _summary_owner(s3, bucket, version) == name:
                delete.append(version)
                if version.latest:
                    current_summary = version
    for key in sorted(outputs.values()):
        if key == summary_key:
            continue
        for version in _versions_of(s3, bucket, key):
            ours = (
                current_summary is not None
                and version.latest
                and not version.delete_marker
                and (
                    version.modified is None
                    or current_summary.modified is None
                    or version.modified <= current_summary.modified
                )
            )
            if ours:
                delete.append(version)
            elif not version.latest and not version.delete_marker:
                keep.append(version)  # may be this job's, may be another's: reported
    return delete, keep


def plan_delete(
    *,
    ddb: Any,
    s3: Any,
    table: str,
    output_bucket: str,
    item: Mapping[str, Any],
    include_input: bool = False,
) -> DeletePlan:
    """What `delete` would remove: exactly the objects the job's item names, never another
    job's. Listing first lets the operator confirm real counts.

    - The raw transcript `medical/<job_name>.json`: every version (only this job writes it).
    - Documents in the job's own folder (contract 3: by input key and version, or by job
      name): every version of each key in `outputs`. The folder belongs to this upload
      alone, so these are this job's writes (`output_versions` among them) and nothing else.
    - Documents of items written under the old shared layout: see _old_layout_versions.
    """
    del ddb, table  # other jobs are never looked at: their documents are never in the plan
    outputs = {str(k): str(v) for k, v in (item.get("outputs") or {}).items()}
    found: dict[tuple[str, str | None], ObjectVersion] = {}
    own = [transcript_key(item), *(key for key in outputs.values() if is_own_key(item, key))]
    for key in own:
        for version in _versions_of(s3, output_bucket, key):
            found[(version.key, version.version_id)] = version
    old = {doc: key for doc, key in outputs.items() if not is_own_key(item, key)}
    kept: list[ObjectVersion] = []
    if old:
        delete, kept = _old_layout_versions(s3, output_bucket, item, old)
        for version in delete:
            found[(version.key, version.version_id)] = version
    input_version = None
    if include_input:
        input_version = ObjectVersion(str(item["input_key"]), item.get("input_version") or None)
    return DeletePlan(
        item=dict(item),
        output_bucket=output_bucket,
        versions=sorted(found.values(), key=lambda v: (v.key, v.version_id or "")),
        input_version=input_version,
        kept_versions=kept,
    )


def execute_delete(
    *, ddb: Any, s3: Any, transcribe: Any, table: str, plan: DeletePlan
) -> DeleteReport:
    """Transcribe's record, then the objects, then the index item last: if anything fails
    part-way the item is still there, so the same command can be run again."""
    item = plan.item
    name = str(item["job_name"])
    report = DeleteReport(job_name=name, keys=plan.keys)
    report.transcribe_record_deleted = delete_transcribe_job(transcribe, name)
    errors: list[str] = []
    for start in range(0, len(plan.versions), DELETE_BATCH):
        batch = plan.versions[start : start + DELETE_BATCH]
        objects = [
            {"Key": v.key, **({"VersionId": v.version_id} if v.version_id else {})} for v in batch
        ]
        response = s3.delete_objects(
            Bucket=plan.output_bucket, Delete={"Objects": objects, "Quiet": True}
        )
        failed = {(e.get("Key"), e.get("VersionId")) for e in response.get("Errors", [])}
        errors.extend(f"{e.get('Key')} ({e.get('Code')})" for e in response.get("Errors", []))
        for version in batch:
            if (version.key, version.version_id) in failed:
                continue
            if version.delete_marker:
                report.delete_markers_deleted += 1
            else:
                report.versions_deleted += 1
    if errors:
        raise JobctlError(
            f"could not delete {len(errors)} object version(s): {', '.join(errors[:5])}; "
            "the job's index item was kept, run the command again"
        )
    if plan.input_version is not None:
        report.input_deleted, report.input_missing = _delete_input(s3, item, plan.input_version)
    _delete_item(ddb, table, name, expected_status=None)
    report.item_deleted = True
    return report


def _delete_input(s3: Any, item: Mapping[str, Any], version: ObjectVersion) -> tuple[bool, bool]:
    """(deleted, was already gone). Only the job's own version: other versions of the key
    are other uploads (and other jobs)."""
    request: dict[str, Any] = {"Bucket": item["input_bucket"], "Key": version.key}
    if version.version_id:
        request["VersionId"] = version.version_id
    try:
        s3.head_object(**request)
    except ClientError as error:
        if error_code(error) in MISSING_OBJECT_CODES:
            return False, True
        raise
    s3.delete_object(**request)
    return True, False


# --- download ---------------------------------------------------------------------------------


@dataclass
class DownloadResult:
    folder: Path
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def download_job(
    *, s3: Any, output_bucket: str, item: Mapping[str, Any], dest: Path
) -> DownloadResult:
    """Every document in the item's outputs, and the raw transcript, into dest/<job_name>/.

    Files and new folders are private to the user: they hold PHI."""
    name, status = str(item["job_name"]), str(item["status"])
    if status != COMPLETED:
        raise Refused(f"job {name} is {status}, not COMPLETED: there is nothing to download")
    folder = dest / name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = DownloadResult(folder=folder)
    versions = item.get("output_versions") or {}
    wanted: list[tuple[str, str, str | None]] = []
    for doc, key in sorted((item.get("outputs") or {}).items()):
        if posixpath.basename(doc) != doc or doc in ("", ".", ".."):
            result.warnings.append(f"skipped an output with an unsafe name: {doc!r}")
            continue
        # The version the job wrote, where recorded (a versioned bucket, the new layout)
        wanted.append((doc, str(key), str(versions[doc]) if doc in versions else None))
    raw_key = transcript_key(item)
    wanted.append((posixpath.basename(raw_key), raw_key, None))
    for filename, key, version_id in wanted:
        request: dict[str, Any] = {"Bucket": output_bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            body = s3.get_object(**request)["Body"].read()
        except ClientError as error:
            if error_code(error) in MISSING_OBJECT_CODES:
                result.warnings.append(f"missing from the output bucket: {key}")
                continue
            raise
        path = folder / filename
        path.touch(mode=0o600, exist_ok=True)
        path.write_bytes(body)
        result.files.append(path)
        if filename == "summary.json":
            owner = _summary_job(body)
            if owner and owner != name:
                # Only under the old shared layout (transcripts/<key without extension>/):
                # another upload of the same name overwrote the documents.
                result.warnings.append(
                    f"the documents now belong to job {owner} (a newer upload of the same "
                    "key); the raw transcript is this job's own"
                )
    return result


def _summary_job(body: bytes) -> str | None:
    try:
        summary = json.loads(body)
    except ValueError:
        return None
    job = summary.get("job") if isinstance(summary, dict) else None
    name = job.get("job_name") if isinstance(job, dict) else None
    return str(name) if name else None
