"""From an ended Transcribe Medical job to readable documents and a final index status.

Used by both the event path (post_process) and the reconciler, so a job finishes the same
way whichever notices first. Every step is idempotent: documents are rendered
deterministically from Transcribe's own record (never from our clock), and the index only
moves forward, so racing or repeated calls write the same bytes and never regress a job.

No job stays open for ever: an error a retry cannot fix (a permanent S3, KMS or Transcribe
refusal, a transcript gone long after completion) counts a finish attempt on the item,
whichever path met it; at the bound the job ends FAILED with a reason a person can act on.
Transient errors (busy, throttled, 5xx) are raised for a retry and never counted.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import job_index as ji
from pipeline.aws_errors import error_code, is_transient, permanent_reason
from pipeline.job_names import is_ours
from pipeline.output_layout import TRANSCRIPT_PREFIX, document_keys, transcript_key_for
from pipeline.settings import SettingsError
from pipeline.step import PipelineStep
from pipeline.transcript import TranscriptError, render_documents

# AWS answers NotFoundException for an unknown job; moto answers BadRequestException.
UNKNOWN_JOB_CODES = frozenset({"NotFoundException", "BadRequestException"})
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

# Finish attempts that met a permanent error, across the event path and the reconciler,
# before the job is FAILED. With the reconciler every 5 minutes, the default leaves about
# 20 minutes to fix a policy or re-enable a key before the job is given up.
MAX_FINISH_ATTEMPTS_VARIABLE = "MAX_FINISH_ATTEMPTS"
DEFAULT_MAX_FINISH_ATTEMPTS = 5
# Transcribe writes the transcript before it reports COMPLETED; missing for longer than
# this after completion, it was deleted (or never written) and will not appear.
TRANSCRIPT_GRACE = timedelta(minutes=15)

KNOWN_FAILURES: tuple[tuple[str, str], ...] = (
    (
        "does not match the detected media format",
        "The file's content does not match its format. Re-export it as 16-bit PCM WAV or "
        "FLAC and upload it again.",
    ),
    (
        "unsupported media format",
        "Transcribe Medical cannot read this file's format. Convert it to 16-bit PCM WAV or "
        "FLAC and upload it again.",
    ),
    (
        "invalid sample rate",
        "The recording's sample rate is outside the 16,000-48,000 Hz that Transcribe Medical "
        "accepts. Resample it to 16 kHz or higher and upload it again.",
    ),
    (
        "file size too large",
        "The file is too large for Transcribe Medical (2 GB or 4 hours at most). Split it "
        "into shorter parts and upload them.",
    ),
    (
        "number of channels too large",
        "The recording has more channels than Transcribe Medical accepts. Downmix it to mono "
        "or stereo and upload it again.",
    ),
    (
        "too short",
        "The recording is too short for Transcribe Medical (at least 0.5 s). Upload a longer "
        "recording.",
    ),
)


class FinishError(RuntimeError):
    """Finishing failed. The text names the job and the error code only, never the object
    key, because AWS error messages can quote it."""

    def __init__(self, job_name: str, code: str, doing: str, *, detail: str = "") -> None:
        super().__init__(f"job {job_name}: {doing} failed ({code}){detail}")
        self.job_name = job_name
        self.code = code


class TransientFinishError(FinishError):
    """AWS is busy or unreachable; the caller retries (EventBridge, or the next reconcile).
    Never counted as a finish attempt."""


class PermanentFinishError(FinishError):
    """A retry did not fix it; counted on the item, the job ends FAILED at the bound."""

    def __init__(
        self, job_name: str, code: str, doing: str, *, reason: str, attempts: int | None = None
    ) -> None:
        detail = f"; finish attempt {attempts}" if attempts else ""
        super().__init__(job_name, code, doing, detail=detail)
        self.reason = reason
        self.attempts = attempts


UNREADABLE_TRANSCRIPT = (
    "Transcribe Medical's transcript for this job could not be read (it is not valid "
    "transcript JSON). Retry the job; if it fails again, contact the pipeline's operators."
)
MISSING_TRANSCRIPT = (
    "Transcribe Medical reported this job complete, but its transcript is not in the output "
    "bucket (it was deleted, or never written). Retry the job."
)


class Finish(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    IN_FLIGHT = "IN_FLIGHT"  # Transcribe is still working on it
    ALREADY_DONE = "ALREADY_DONE"  # the index already holds a final status
    NOT_OURS = "NOT_OURS"  # another stack's job, or unknown to us


@dataclass(frozen=True)
class FinishResult:
    outcome: Finish
    job_name: str
    audio_s: float | None = None  # the transcript's duration, for a job this call completed


def explain_failure(reason: str | None) -> str:
    """Transcribe's FailureReason, as a sentence a person can act on."""
    text = (reason or "").strip()
    lowered = text.lower()
    for needle, advice in KNOWN_FAILURES:
        if needle in lowered:
            return f"{advice} (Transcribe said: {text})"
    if not text:
        return (
            "Transcribe Medical failed the job without a reason. Retry it; if it fails "
            "again, check that the recording plays."
        )
    return (
        f"Transcribe Medical could not transcribe the file: {text}. Check that the recording "
        "plays and meets the media requirements, then retry."
    )


def transcript_key_from_uri(uri: str, output_bucket: str) -> str | None:
    """The object key in Transcribe's TranscriptFileUri, if it points into our bucket."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return parsed.path.lstrip("/") if parsed.netloc == output_bucket else None
    path = unquote(parsed.path).lstrip("/")
    if parsed.netloc.startswith(f"{output_bucket}."):  # virtual-hosted style
        return path
    bucket, _, key = path.partition("/")  # path style: /bucket/key
    return key if bucket == output_bucket else None


def max_finish_attempts(env: Mapping[str, str] | None = None) -> int:
    """The finish-attempt bound from MAX_FINISH_ATTEMPTS (default 5, allowed 1-100)."""
    env = os.environ if env is None else env
    text = env.get(MAX_FINISH_ATTEMPTS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_FINISH_ATTEMPTS
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise SettingsError(
            f"environment variable {MAX_FINISH_ATTEMPTS_VARIABLE} is {text!r}; "
            "allowed: an integer from 1 to 100"
        )
    return int(text)


def _iso(value: Any) -> str | None:
    """The index's timestamp format (UTC, milliseconds), whatever precision AWS gave."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value) if value else None


def _parse_time(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def _aws_call(job_name: str, doing: str) -> Iterator[None]:
    """AWS errors as finish errors: transient ones for a retry, others to be counted."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        code = error_code(error)
        if is_transient(error):
            raise TransientFinishError(job_name, code, doing) from None
        raise PermanentFinishError(job_name, code, doing, reason=permanent_reason(code)) from None


class JobFinisher(PipelineStep):
    """Completion-path logic.

    The job's final status is written in exactly two places, `_mark_completed` and
    `_mark_failed`: what must happen whenever a job ends belongs there.
    """

    def __init__(self, *, max_attempts: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_attempts = max_finish_attempts() if max_attempts is None else max_attempts

    def finish(self, job_name: str, *, known: Mapping[str, Any] | None = None) -> FinishResult:
        """Bring the index up to date with Transcribe for one job.

        Raises TransientFinishError (retry later, nothing counted) or PermanentFinishError
        (counted; below the bound, the next event or reconcile run tries again). At the
        bound the job is FAILED and the result says so instead of raising.
        """
        try:
            return self._finish(job_name, known)
        except TransientFinishError:
            raise
        except PermanentFinishError as error:
            return self._count_attempt(job_name, error)
        except Exception as error:
            # Anything else (a defect) must not keep the job open for ever either.
            code = type(error).__name__
            failure = PermanentFinishError(
                job_name, code, "finishing", reason=permanent_reason(code)
            )
            return self._count_attempt(job_name, failure)

    def _finish(self, job_name: str, known: Mapping[str, Any] | None) -> FinishResult:
        if not is_ours(self.settings.job_name_prefix, job_name):
            return FinishResult(Finish.NOT_OURS, job_name)
        # The reconciler passes the item it has just listed: what is read of it (status,
        # upload, metadata) is fixed or only moves forward, and every write is conditional,
        # so a slightly stale copy costs nothing but saves a read.
        item: Mapping[str, Any] | None = known
        if item is None:
            with _aws_call(job_name, "reading the job index"):
                item = self.index.get(job_name)
        if item is None:
            return FinishResult(Finish.NOT_OURS, job_name)
        if item["status"] in ji.TERMINAL_STATUSES:
            return FinishResult(Finish.ALREADY_DONE, job_name)
        job = self._get_job(job_name)
        if job is None:
            return FinishResult(Finish.NOT_OURS, job_name)
        status = job.get("TranscriptionJobStatus")
        if status == "COMPLETED":
            return self._completed(item, job)
        if status == "FAILED":
            return self._failed(item, job)
        if status == "IN_PROGRESS" and item["status"] != ji.IN_PROGRESS:
            with _aws_call(job_name, "recording IN_PROGRESS"):
                self.index.transition(job_name, to=ji.IN_PROGRESS, now=self.clock())
        return FinishResult(Finish.IN_FLIGHT, job_name)

    def _get_job(self, job_name: str) -> dict[str, Any] | None:
        try:
            response = self.transcribe.get_medical_transcription_job(
                MedicalTranscriptionJobName=job_name
            )
        except (ClientError, BotoCoreError) as error:
            if error_code(error) in UNKNOWN_JOB_CODES:
                return None
            with _aws_call(job_name, "asking Transcribe"):
                raise
        return dict(response["MedicalTranscriptionJob"])

    # --- the two terminal transitions ------------------------------------------------------

    def _mark_completed(self, job_name: str, fields: Mapping[str, Any]) -> bool:
        """QUEUED/IN_PROGRESS -> COMPLETED; False if the job had ended already."""
        # The slot the job held in this stack's share is given back in the same transaction.
        with _aws_call(job_name, "recording COMPLETED"):
            return self.ledger.release(job_name, to=ji.COMPLETED, now=self.clock(), fields=fields)

    def _mark_failed(self, job_name: str, reason: str, fields: Mapping[str, Any]) -> bool:
        """Any open status -> FAILED with a reason; False if the job had ended already."""
        with _aws_call(job_name, "recording FAILED"):
            return self.ledger.release(
                job_name,
                to=ji.FAILED,
                now=self.clock(),
                fields={"failure_reason": reason, **fields},
            )

    # --- outcomes --------------------------------------------------------------------------

    def _count_attempt(self, job_name: str, error: PermanentFinishError) -> FinishResult:
        """Count a permanent failure on the item; FAILED at the bound, else raise it."""
        attempts = self._note_attempt(job_name, error.code)
        if attempts is None:  # the job ended meanwhile (or is not in the index)
            return FinishResult(Finish.ALREADY_DONE, job_name)
        if attempts < self.max_attempts:
            raise PermanentFinishError(
                job_name, error.code, "finishing", reason=error.reason, attempts=attempts
            )
        moved = self._mark_failed(
            job_name,
            f"{error.reason} (gave up after {attempts} attempts to finish the job)",
            {"completed_at": self.clock()},
        )
        return FinishResult(Finish.FAILED if moved else Finish.ALREADY_DONE, job_name)

    def _note_attempt(self, job_name: str, code: str) -> int | None:
        """ADD finish_attempts 1 on an open job; its new count, or None if it is not open.

        One atomic update, so the event path and the reconciler never lose a count.
        """
        try:
            return self.index.count_finish_attempt(job_name, code=code, now=self.clock())
        except (ClientError, BotoCoreError):
            with _aws_call(job_name, "counting a finish attempt"):
                raise

    def _failed(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> FinishResult:
        job_name = item["job_name"]
        raw = job.get("FailureReason")
        moved = self._mark_failed(
            job_name,
            explain_failure(raw),
            {
                "transcribe_failure_reason": raw,
                "completed_at": _iso(job.get("CompletionTime")) or self.clock(),
            },
        )
        return FinishResult(Finish.FAILED if moved else Finish.ALREADY_DONE, job_name)

    def _completed(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> FinishResult:
        job_name = item["job_name"]
        transcript_key = self._transcript_key(item, job)
        metadata = self._metadata(item, job)
        transcript = self._read(job_name, transcript_key, completed_at=metadata["completed_at"])
        try:
            rendered = render_documents(
                transcript,
                job=metadata,
                low_confidence_threshold=self.settings.low_confidence_threshold,
                redact_phi=self.settings.identify_phi,
                write_unredacted=self.settings.write_unredacted or not self.settings.identify_phi,
            )
        except TranscriptError:
            # The same bytes would fail the same way every time: no point counting attempts.
            moved = self._mark_failed(
                job_name, UNREADABLE_TRANSCRIPT, {"completed_at": self.clock()}
            )
            return FinishResult(Finish.FAILED if moved else Finish.ALREADY_DONE, job_name)
        outputs = document_keys(item, rendered.files)
        versions: dict[str, str] = {}
        for name, body in rendered.files.items():
            version = self._write(job_name, outputs[name], body, name)
            if version:
                versions[name] = version
        fields: dict[str, Any] = {
            "transcript_key": transcript_key,
            "outputs": outputs,
            "stats": rendered.stats,
            "completed_at": metadata["completed_at"],
        }
        if versions:
            fields["output_versions"] = versions
        moved = self._mark_completed(job_name, fields)
        if not moved:
            return FinishResult(Finish.ALREADY_DONE, job_name)
        audio_s = rendered.stats.get("duration_s")
        return FinishResult(Finish.COMPLETED, job_name, float(audio_s) if audio_s else None)

    def _transcript_key(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> str:
        uri = job.get("Transcript", {}).get("TranscriptFileUri", "")
        from_uri = transcript_key_from_uri(uri, self.settings.output_bucket) if uri else None
        key = from_uri or item.get("transcript_key") or transcript_key_for(item["job_name"])
        if not key.startswith(TRANSCRIPT_PREFIX):
            # Our role may read only medical/*: a URI elsewhere means someone else's output.
            key = transcript_key_for(item["job_name"])
        return str(key)

    def _metadata(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
        """Job facts for summary.json, all from records that do not change between calls."""
        return {
            "job_name": item["job_name"],
            "input_key": item["input_key"],
            "type": job.get("Type", item.get("type")),
            "specialty": job.get("Specialty", item.get("specialty")),
            "media_format": job.get("MediaFormat", item.get("media_format")),
            "sample_rate_hz": job.get("MediaSampleRateHertz", item.get("sample_rate_hz")),
            "settings": job.get("Settings", item.get("settings")),
            "created_at": _iso(job.get("CreationTime")) or item.get("created_at"),
            "completed_at": _iso(job.get("CompletionTime")) or self.clock(),
            # What the integrator documents carry (contract 6): PHI, kept to the documents.
            "patient_id": item.get("patient_id"),
            "encounter_id": item.get("encounter_id"),
            "author": item.get("author"),
            "note_type": item.get("note_type"),
            "transcript_key": self._transcript_key(item, job),
            "output_bucket": self.settings.output_bucket,
        }

    def _read(self, job_name: str, key: str, *, completed_at: str) -> bytes:
        try:
            return bytes(
                self.s3.get_object(Bucket=self.settings.output_bucket, Key=key)["Body"].read()
            )
        except (ClientError, BotoCoreError) as error:
            code = error_code(error)
            if code in MISSING_OBJECT_CODES:
                # Right after completion this is S3 catching up: retry without counting.
                # Long after, it will not appear: count it towards FAILED.
                ended, now = _parse_time(completed_at), _parse_time(self.clock())
                if ended is None or now is None or now - ended < TRANSCRIPT_GRACE:
                    raise TransientFinishError(job_name, code, "reading the transcript") from None
                raise PermanentFinishError(
                    job_name, code, "reading the transcript", reason=MISSING_TRANSCRIPT
                ) from None
            with _aws_call(job_name, "reading the transcript"):
                raise

    def _write(self, job_name: str, key: str, body: bytes, name: str) -> str | None:
        """Write one document; the version id S3 gave it (None in an unversioned bucket)."""
        content_types = {
            ".txt": "text/plain; charset=utf-8",
            ".vtt": "text/vtt; charset=utf-8",
            ".srt": "application/x-subrip; charset=utf-8",
            ".json": "application/json",
            ".hl7": "x-application/hl7-v2+er7",
        }
        with _aws_call(job_name, "writing a document"):
            response = self.s3.put_object(
                Bucket=self.settings.output_bucket,
                Key=key,
                Body=body,
                ContentType=content_types.get(posixpath.splitext(name)[1], "text/plain"),
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.settings.kms_key_id,
            )
        version = response.get("VersionId")
        return str(version) if version and version != "null" else None
