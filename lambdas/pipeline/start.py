"""From one uploaded object to one Transcribe Medical job, exactly once.

validate (ranged read of the header) -> index item PENDING or REJECTED
-> StartMedicalTranscriptionJob -> QUEUED.
Busy Transcribe (throttling, the concurrent-job quota, 5xx) leaves the item PENDING and
raises TransientStartError so SQS delivers the message again later.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pipeline import job_index as ji
from pipeline.job_names import job_name_for
from pipeline.media import HEADER_BYTES, MediaInfo, MediaRejected, inspect_media
from pipeline.s3_events import Upload
from pipeline.settings import Settings
from pipeline.step import PipelineStep

TRANSCRIPT_PREFIX = "medical/"
TYPE_PREFIXES = {"dictation": "DICTATION", "conversation": "CONVERSATION"}

# Error codes that mean "not now": retried through the queue, never recorded as failures.
TRANSIENT_CODES = frozenset(
    {
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailureException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "RequestTimeout",
        "ProvisionedThroughputExceededException",
    }
)


class StartError(RuntimeError):
    """AWS refused. The text names the job and the error code only, never the object key,
    because AWS error messages can quote it."""

    def __init__(self, job_name: str, code: str, doing: str) -> None:
        super().__init__(f"job {job_name}: {doing} failed ({code})")
        self.job_name = job_name
        self.code = code


class TransientStartError(StartError):
    """AWS is busy or unreachable; the message must be retried later."""


@contextmanager
def _aws_errors_as_start_errors(job_name: str, doing: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        if is_transient(error):
            raise TransientStartError(job_name, error_code(error), doing) from None
        raise StartError(job_name, error_code(error), doing) from None


class Outcome(StrEnum):
    QUEUED = "QUEUED"  # a Transcribe job exists for this upload
    REJECTED = "REJECTED"  # the upload cannot be transcribed; the index says why
    FAILED = "FAILED"  # Transcribe refused the job for good
    DUPLICATE = "DUPLICATE"  # an earlier delivery already dealt with this upload
    BACKLOGGED = (
        "BACKLOGGED"  # still busy on the last delivery: PENDING, the reconciler restarts it
    )
    IGNORED = "IGNORED"  # not an upload we transcribe (other bucket, folder marker)


@dataclass(frozen=True)
class StartResult:
    outcome: Outcome
    job_name: str | None


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def is_transient(error: Exception) -> bool:
    if isinstance(error, BotoConnectionError | HTTPClientError):  # connections, timeouts
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in TRANSIENT_CODES or int(status or 0) >= 500
    return False


def job_type_for(key: str, default_type: str) -> str:
    """`dictation/...` -> DICTATION, `conversation/...` -> CONVERSATION, else the default."""
    first = key.split("/", 1)[0].lower() if "/" in key else ""
    return TYPE_PREFIXES.get(first, default_type)


def extension_of(key: str) -> str:
    return posixpath.splitext(posixpath.basename(key))[1].lower()


def transcribe_settings(settings: Settings, *, channels: int | None) -> dict[str, Any]:
    """The `Settings` block of StartMedicalTranscriptionJob for this environment and file."""
    job: dict[str, Any] = {}
    if settings.show_speaker_labels:
        job["ShowSpeakerLabels"] = True
        job["MaxSpeakerLabels"] = settings.max_speaker_labels
    # Channel identification needs two channels; a mono file would fail the job.
    elif settings.channel_identification and channels != 1:
        job["ChannelIdentification"] = True
    if settings.max_alternatives:
        job["ShowAlternatives"] = True
        job["MaxAlternatives"] = settings.max_alternatives
    if settings.vocabulary_name:
        job["VocabularyName"] = settings.vocabulary_name
    return job


def transcript_key_for(job_name: str) -> str:
    return f"{TRANSCRIPT_PREFIX}{job_name}.json"


def start_request(
    settings: Settings, *, job_name: str, bucket: str, key: str, item: Mapping[str, Any]
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "MedicalTranscriptionJobName": job_name,
        "LanguageCode": "en-US",  # the only language Transcribe Medical supports
        "Media": {"MediaFileUri": f"s3://{bucket}/{key}"},
        "OutputBucketName": settings.output_bucket,
        "OutputKey": transcript_key_for(job_name),
        "OutputEncryptionKMSKeyId": settings.kms_key_id,
        "Specialty": item.get("specialty", settings.specialty),
        "Type": item["type"],
    }
    if item.get("media_format"):
        request["MediaFormat"] = item["media_format"]
    if item.get("settings"):
        request["Settings"] = dict(item["settings"])
    if settings.identify_phi:
        request["ContentIdentificationType"] = "PHI"
    return request


class JobStarter(PipelineStep):
    """Start-path logic."""

    def handle(self, upload: Upload, *, last_delivery: bool = False) -> StartResult:
        """Deal with one upload. Raises TransientStartError when AWS is busy, unless this is
        the message's last delivery: then the job stays PENDING for the reconciler (a
        waiting upload must never end in the dead-letter queue)."""
        if upload.bucket != self.settings.input_bucket or (
            upload.key.endswith("/") and upload.size == 0
        ):
            return StartResult(Outcome.IGNORED, None)
        job_name = job_name_for(
            self.settings.job_name_prefix,
            bucket=upload.bucket,
            key=upload.key,
            version_id=upload.revision,
        )
        with _aws_errors_as_start_errors(job_name, "recording the upload"):
            item, created = self._existing_or_admitted(job_name, upload, last_delivery)
        if item["status"] == ji.REJECTED:
            return StartResult(Outcome.REJECTED if created else Outcome.DUPLICATE, job_name)
        if item["status"] != ji.PENDING:
            return StartResult(Outcome.DUPLICATE, job_name)
        try:
            return self.start(item)
        except TransientStartError:
            if last_delivery:
                return StartResult(Outcome.BACKLOGGED, job_name)
            raise

    def _existing_or_admitted(
        self, job_name: str, upload: Upload, last_delivery: bool
    ) -> tuple[dict[str, Any], bool]:
        """The upload's index item, creating it if this is the first delivery to get here."""
        existing = self.index.get(job_name)
        if existing is not None:
            return existing, False
        item = self._new_item(job_name, upload)
        try:
            item.update(self._validation(job_name, upload))
        except TransientStartError:
            if not last_delivery:
                raise
            # Out of deliveries while S3 is busy: record the upload unvalidated rather than
            # lose it; the reconciler validates it before starting it.
            item.update(status=ji.PENDING, needs_validation=True)
        if self.index.create(item):
            return item, True
        # A concurrent delivery of the same upload got there first: use its item.
        existing = self.index.get(job_name)
        if existing is None:
            raise TransientStartError(job_name, "ItemVanished", "admission")
        return existing, False

    def _new_item(self, job_name: str, upload: Upload) -> dict[str, Any]:
        now = self.clock()
        return {
            "job_name": job_name,
            "input_bucket": upload.bucket,
            "input_key": upload.key,
            "input_version": upload.version_id,
            "input_size": upload.size,
            "specialty": self.settings.specialty,
            "type": job_type_for(upload.key, self.settings.default_type),
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
        }

    def _validation(self, job_name: str, upload: Upload) -> dict[str, Any]:
        """The index fields validation decides: PENDING with media facts and job settings,
        or REJECTED with a reason."""
        try:
            media = inspect_media(
                extension=extension_of(upload.key),
                header=self._read_header(job_name, upload),
                size=upload.size,
            )
        except MediaRejected as rejected:
            return {
                "status": ji.REJECTED,
                "failure_reason": rejected.reason,
                "completed_at": self.clock(),
            }
        return {
            "status": ji.PENDING,
            **_media_fields(media),
            "settings": transcribe_settings(self.settings, channels=media.channels),
        }

    def _read_header(self, job_name: str, upload: Upload) -> bytes:
        if upload.size == 0:
            return b""
        request: dict[str, Any] = {
            "Bucket": upload.bucket,
            "Key": upload.key,
            "Range": f"bytes=0-{HEADER_BYTES - 1}",
        }
        if upload.version_id:
            request["VersionId"] = upload.version_id
        try:
            return bytes(self.s3.get_object(**request)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            code = error_code(error)
            if code in ("NoSuchKey", "NoSuchVersion", "404"):
                raise MediaRejected(
                    "the file was deleted before it could be transcribed; upload it again"
                ) from None
            if code in ("AccessDenied", "403"):
                raise MediaRejected(
                    "the pipeline is not allowed to read this file (for example it was "
                    "encrypted with a different KMS key); upload it again without overriding "
                    "the bucket's default encryption"
                ) from None
            if code == "InvalidRange":  # S3's answer to a ranged read of an empty object
                return b""
            raise TransientStartError(job_name, code, "reading the upload") from None

    def start(self, item: Mapping[str, Any]) -> StartResult:
        """Start the Transcribe job for a PENDING item (also used by the reconciler)."""
        job_name = item["job_name"]
        with _aws_errors_as_start_errors(job_name, "preparing the start"):
            if item.get("needs_validation"):
                item = self._validate_later(item)
                if item["status"] == ji.REJECTED:
                    return StartResult(Outcome.REJECTED, job_name)
            superseded = self._superseded_reason(item)
            if superseded:
                self._reject(job_name, superseded)
                return StartResult(Outcome.REJECTED, job_name)
            if not self.index.note_attempt(job_name, now=self.clock()):
                return StartResult(Outcome.DUPLICATE, job_name)
        request = start_request(
            self.settings,
            job_name=job_name,
            bucket=item["input_bucket"],
            key=item["input_key"],
            item=item,
        )
        try:
            self.transcribe.start_medical_transcription_job(**request)
        except (ClientError, BotoCoreError) as error:
            return self._start_failed(job_name, request, error)
        return self._queued(job_name, request)

    def _upload_of(self, item: Mapping[str, Any]) -> Upload:
        return Upload(
            bucket=item["input_bucket"],
            key=item["input_key"],
            version_id=item.get("input_version"),
            size=int(item["input_size"]),
        )

    def _validate_later(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Validate an upload that was recorded while S3 was too busy to read it."""
        job_name = item["job_name"]
        fields = self._validation(job_name, self._upload_of(item))
        fields["needs_validation"] = False
        status = fields.pop("status")
        self.index.transition(job_name, to=status, now=self.clock(), fields=fields)
        return {**item, **fields, "status": status}

    def _superseded_reason(self, item: Mapping[str, Any]) -> str | None:
        """Transcribe reads the key's current version, not the one we validated: if a newer
        upload replaced it, this job must not transcribe the newer audio under the older
        upload's name (the newer upload is its own job)."""
        version = item.get("input_version")
        if not version:
            return None
        try:
            head = self.s3.head_object(Bucket=item["input_bucket"], Key=item["input_key"])
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return "the file was deleted before it could be transcribed; upload it again"
            raise
        if head.get("VersionId") not in (None, version):
            return (
                "a newer upload with the same name replaced this file before it was "
                "transcribed; the newer upload is transcribed as its own job"
            )
        return None

    def _reject(self, job_name: str, reason: str) -> None:
        now = self.clock()
        self.index.transition(
            job_name,
            to=ji.REJECTED,
            now=now,
            fields={"failure_reason": reason, "completed_at": now},
        )

    def _queued(self, job_name: str, request: Mapping[str, Any]) -> StartResult:
        self.index.transition(
            job_name,
            to=ji.QUEUED,
            now=self.clock(),
            fields={"transcript_key": request["OutputKey"]},
        )
        return StartResult(Outcome.QUEUED, job_name)

    def _start_failed(
        self, job_name: str, request: Mapping[str, Any], error: Exception
    ) -> StartResult:
        code = error_code(error)
        if code == "ConflictException" and self._is_our_job(job_name, request):
            # An earlier attempt started it and did not live to record QUEUED.
            return self._queued(job_name, request)
        if is_transient(error):
            raise TransientStartError(job_name, code, "starting the job") from None
        reason = (
            "a Transcribe job with this name already exists for a different file; "
            "contact the pipeline's operators"
            if code == "ConflictException"
            else f"Transcribe Medical refused the job ({code}): {_message(error)}"
        )
        now = self.clock()
        self.index.transition(
            job_name, to=ji.FAILED, now=now, fields={"failure_reason": reason, "completed_at": now}
        )
        return StartResult(Outcome.FAILED, job_name)

    def _is_our_job(self, job_name: str, request: Mapping[str, Any]) -> bool:
        try:
            job = self.transcribe.get_medical_transcription_job(
                MedicalTranscriptionJobName=job_name
            )["MedicalTranscriptionJob"]
        except (ClientError, BotoCoreError) as error:
            if is_transient(error):
                raise TransientStartError(job_name, error_code(error), "checking the job") from None
            return False
        return bool(job.get("Media", {}).get("MediaFileUri") == request["Media"]["MediaFileUri"])


def _media_fields(media: MediaInfo) -> dict[str, Any]:
    return {
        "media_format": media.media_format,
        "sample_rate_hz": media.sample_rate_hz,
        "channels": media.channels,
        "bits_per_sample": media.bits_per_sample,
        "duration_s": round(media.duration_s, 3) if media.duration_s is not None else None,
    }


def _message(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", "")).strip() or "no detail given"
    return "no detail given"
