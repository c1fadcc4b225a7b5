"""From an ended Transcribe Medical job to readable documents and a final index status.

Used by both the event path (post_process) and the reconciler, so a job finishes the same
way whichever notices first. Every step is idempotent: documents are rendered
deterministically from Transcribe's own record (never from our clock), and the index only
moves forward, so racing or repeated calls write the same bytes and never regress a job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import job_index as ji
from pipeline.job_names import is_ours
from pipeline.start import TRANSCRIPT_PREFIX, error_code, is_transient, transcript_key_for
from pipeline.step import PipelineStep
from pipeline.transcript import TranscriptError, render_documents

DOCUMENTS_PREFIX = "transcripts/"
# AWS answers NotFoundException for an unknown job; moto answers BadRequestException.
UNKNOWN_JOB_CODES = frozenset({"NotFoundException", "BadRequestException"})

# Transcribe's FailureReason texts we know, and what a person should do about each.
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
    """AWS refused for good. The text names the job and the error code only, never the
    object key, because AWS error messages can quote it."""


class TransientFinishError(FinishError):
    """AWS is busy or unreachable; the caller retries (EventBridge, or the next reconcile)."""


UNREADABLE_TRANSCRIPT = (
    "Transcribe Medical's transcript for this job could not be read (it is not valid "
    "transcript JSON). Retry the job; if it fails again, contact the pipeline's operators."
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


def documents_folder(input_key: str) -> str:
    """`transcripts/<input key without extension>/` (contract 3)."""
    stem, _ = posixpath.splitext(input_key)
    return f"{DOCUMENTS_PREFIX}{stem}/"


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


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else None


class JobFinisher(PipelineStep):
    """Completion-path logic."""

    def finish(self, job_name: str) -> FinishResult:
        """Bring the index up to date with Transcribe for one job."""
        try:
            return self._finish(job_name)
        except (ClientError, BotoCoreError) as error:
            kind = TransientFinishError if is_transient(error) else FinishError
            raise kind(f"job {job_name}: an AWS call failed ({error_code(error)})") from None

    def _finish(self, job_name: str) -> FinishResult:
        if not is_ours(self.settings.job_name_prefix, job_name):
            return FinishResult(Finish.NOT_OURS, job_name)
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
        if status == "IN_PROGRESS":
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
            raise TransientFinishError(
                f"job {job_name}: asking Transcribe failed ({error_code(error)})"
            ) from None
        return dict(response["MedicalTranscriptionJob"])

    def _failed(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> FinishResult:
        job_name = item["job_name"]
        raw = job.get("FailureReason")
        completed = _iso(job.get("CompletionTime")) or self.clock()
        moved = self.index.transition(
            job_name,
            to=ji.FAILED,
            now=self.clock(),
            fields={
                "failure_reason": explain_failure(raw),
                "transcribe_failure_reason": raw,
                "completed_at": completed,
            },
        )
        return FinishResult(Finish.FAILED if moved else Finish.ALREADY_DONE, job_name)

    def _completed(self, item: Mapping[str, Any], job: Mapping[str, Any]) -> FinishResult:
        job_name = item["job_name"]
        transcript_key = self._transcript_key(item, job)
        transcript = self._read(job_name, transcript_key)
        metadata = self._metadata(item, job)
        try:
            rendered = render_documents(
                transcript,
                job=metadata,
                low_confidence_threshold=self.settings.low_confidence_threshold,
            )
        except TranscriptError:
            now = self.clock()
            moved = self.index.transition(
                job_name,
                to=ji.FAILED,
                now=now,
                fields={"failure_reason": UNREADABLE_TRANSCRIPT, "completed_at": now},
            )
            return FinishResult(Finish.FAILED if moved else Finish.ALREADY_DONE, job_name)
        folder = documents_folder(item["input_key"])
        outputs = {}
        for name, body in rendered.files.items():
            key = f"{folder}{name}"
            self._write(key, body, name)
            outputs[name] = key
        moved = self.index.transition(
            job_name,
            to=ji.COMPLETED,
            now=self.clock(),
            fields={
                "transcript_key": transcript_key,
                "outputs": outputs,
                "stats": rendered.stats,
                "completed_at": metadata["completed_at"],
            },
        )
        return FinishResult(Finish.COMPLETED if moved else Finish.ALREADY_DONE, job_name)

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
        }

    def _read(self, job_name: str, key: str) -> bytes:
        try:
            return bytes(
                self.s3.get_object(Bucket=self.settings.output_bucket, Key=key)["Body"].read()
            )
        except (ClientError, BotoCoreError) as error:
            # Missing right after completion is S3 catching up: transient as well.
            raise TransientFinishError(
                f"job {job_name}: reading the transcript failed ({error_code(error)})"
            ) from None

    def _write(self, key: str, body: bytes, name: str) -> None:
        content_types = {
            ".txt": "text/plain; charset=utf-8",
            ".vtt": "text/vtt; charset=utf-8",
            ".srt": "application/x-subrip; charset=utf-8",
            ".json": "application/json",
        }
        self.s3.put_object(
            Bucket=self.settings.output_bucket,
            Key=key,
            Body=body,
            ContentType=content_types.get(posixpath.splitext(name)[1], "text/plain"),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self.settings.kms_key_id,
        )
