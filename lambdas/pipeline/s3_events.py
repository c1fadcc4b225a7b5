"""S3 event notifications carried in SQS message bodies, decoded into plain uploads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class MalformedMessage(ValueError):
    """The message is not an S3 event notification; retrying cannot fix it."""


@dataclass(frozen=True, kw_only=True)
class Upload:
    bucket: str
    key: str  # decoded: may hold patient identifiers, never log it
    version_id: str | None
    size: int
    etag: str | None = None

    @property
    def revision(self) -> str | None:
        """What tells two uploads of one key apart: the version, else (unversioned bucket)
        the content's ETag, so identical re-uploads dedupe and changed content does not."""
        if self.version_id:
            return self.version_id
        return f"etag:{self.etag}" if self.etag else None


def uploads_in(record: SQSRecord) -> list[Upload]:
    """The ObjectCreated uploads a message announces; [] for S3's test event."""
    try:
        body = json.loads(record.body)
    except (TypeError, ValueError):
        raise MalformedMessage("message body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedMessage("message body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(body.get("Records"), list):
        raise MalformedMessage("message body has no S3 'Records' list")
    uploads = []
    try:
        for event_record in S3Event(body).records:
            if not event_record.event_name.startswith("ObjectCreated:"):
                continue
            s3_object = event_record.s3.get_object
            version = s3_object.version_id
            uploads.append(
                Upload(
                    bucket=event_record.s3.bucket.name,
                    # S3 URL-encodes keys in notifications ("a b.wav" -> "a+b.wav");
                    # Powertools' data class returns them encoded.
                    key=unquote_plus(s3_object.key),
                    version_id=None if version in (None, "", "null") else version,
                    size=int(s3_object.size),
                    etag=s3_object.get("eTag") or None,
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MalformedMessage("message body is not a well-formed S3 event notification") from None
    return uploads
