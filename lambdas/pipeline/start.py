"""From one uploaded object to one index item, exactly once: the admission half of the
start path.

validate (ranged read of the header) -> index item PENDING (the backlog) or REJECTED.
Once the item is written the upload's message is done: starting the Transcribe job is the
dispatcher's work (pipeline.dispatch), as capacity allows. Only a busy S3 or DynamoDB
(throttling, 5xx) raises TransientStartError, so SQS delivers the message again later.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import job_index as ji
from pipeline.aws_errors import error_code, is_transient
from pipeline.job_names import job_name_for
from pipeline.media import HEADER_BYTES, MediaInfo, MediaRejected, inspect_media
from pipeline.output_layout import transcript_key_for
from pipeline.s3_events import Upload
from pipeline.settings import Settings
from pipeline.step import PipelineStep
from pipeline.upload_metadata import MetadataError, read_upload_metadata

TYPE_PREFIXES = {"dictation": "DICTATION", "conversation": "CONVERSATION"}


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
    PENDING = "PENDING"  # admitted to the backlog: the dispatcher starts it as capacity frees
    REJECTED = "REJECTED"  # the upload cannot be transcribed; the index says why
    DUPLICATE = "DUPLICATE"  # an earlier delivery already dealt with this upload
    IGNORED = "IGNORED"  # not an upload we transcribe (other bucket, folder marker)


@dataclass(frozen=True)
class StartResult:
    outcome: Outcome
    job_name: str | None


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
    """Admission: one upload -> one index item, PENDING or REJECTED."""

    def handle(self, upload: Upload, *, last_delivery: bool = False) -> StartResult:
        """Admit one upload. Raises TransientStartError when S3 or DynamoDB is busy, unless
        this is the message's last delivery: then the upload is recorded PENDING and
        unvalidated, and the dispatcher validates it before starting it (a waiting upload
        must never end in the dead-letter queue)."""
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
        item = self._new_item(job_name, upload)
        try:
            item.update(self.validation(job_name, upload))
        except TransientStartError:
            if not last_delivery:
                raise
            # Out of deliveries while S3 is busy: record the upload unvalidated rather than
            # lose it; the dispatcher validates it before starting it.
            item.update(status=ji.PENDING, needs_validation=True)
        with _aws_errors_as_start_errors(job_name, "recording the upload"):
            # Conditional: a repeated delivery finds the item there and changes nothing.
            if not self.index.create(item):
                return StartResult(Outcome.DUPLICATE, job_name)
        return StartResult(Outcome(item["status"]), job_name)

    def _new_item(self, job_name: str, upload: Upload) -> dict[str, Any]:
        now = self.clock()
        return {
            "job_name": job_name,
            "input_bucket": upload.bucket,
            "input_key": upload.key,
            "input_version": upload.version_id,
            "input_etag": upload.etag,
            "input_size": upload.size,
            "specialty": self.settings.specialty,
            "type": job_type_for(upload.key, self.settings.default_type),
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
        }

    def validation(self, job_name: str, upload: Upload) -> dict[str, Any]:
        """The index fields validation decides: PENDING with media facts and job settings,
        or REJECTED with a reason. Raises TransientStartError when S3 is busy."""
        try:
            header, user_metadata = self._read_header(job_name, upload)
            media = inspect_media(
                extension=extension_of(upload.key), header=header, size=upload.size
            )
            # The integrator's metadata comes with the same read (contract 6): all of it is
            # used, or the upload is refused naming the field (never half-used).
            integration = read_upload_metadata(
                user_metadata, job_type=job_type_for(upload.key, self.settings.default_type)
            )
        except (MediaRejected, MetadataError) as rejected:
            reason = rejected.reason if isinstance(rejected, MediaRejected) else str(rejected)
            return {"status": ji.REJECTED, "failure_reason": reason, "completed_at": self.clock()}
        return {
            "status": ji.PENDING,
            **_media_fields(media),
            **integration.index_fields(),
            "settings": transcribe_settings(self.settings, channels=media.channels),
        }

    def _read_header(self, job_name: str, upload: Upload) -> tuple[bytes, dict[str, str]]:
        """The first HEADER_BYTES of the upload, and its S3 user metadata."""
        if upload.size == 0:
            return b"", {}
        request: dict[str, Any] = {
            "Bucket": upload.bucket,
            "Key": upload.key,
            "Range": f"bytes=0-{HEADER_BYTES - 1}",
        }
        if upload.version_id:
            request["VersionId"] = upload.version_id
        try:
            response = self.s3.get_object(**request)
            return bytes(response["Body"].read()), dict(response.get("Metadata") or {})
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
                return b"", {}
            raise TransientStartError(job_name, code, "reading the upload") from None


def upload_of(item: Mapping[str, Any]) -> Upload:
    """The upload an index item was made from."""
    return Upload(
        bucket=item["input_bucket"],
        key=item["input_key"],
        version_id=item.get("input_version"),
        size=int(item["input_size"]),
        etag=item.get("input_etag"),
    )


def _media_fields(media: MediaInfo) -> dict[str, Any]:
    return {
        "media_format": media.media_format,
        "sample_rate_hz": media.sample_rate_hz,
        "channels": media.channels,
        "bits_per_sample": media.bits_per_sample,
        "duration_s": round(media.duration_s, 3) if media.duration_s is not None else None,
    }
