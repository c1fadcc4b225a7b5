"""S3 in memory: versioned buckets, ranged and versioned reads, botocore's error shapes.

Uploads keep only what the pipeline reads of them (a WAV header made by devkit's media
builders, for a recording of the scenario's length), and documents keep only their size
unless `keep_bodies` is set: 100,000 jobs of eight documents would not fit otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from devkit.media_samples import wav_header_bytes
from devkit.simulation.calls import CallCounter
from devkit.simulation.faults import SimulatedCrash, client_error

S3 = "s3"
BYTES_PER_SECOND = 32_000  # 16 kHz, 16-bit mono PCM


@dataclass
class StoredObject:
    version_id: str
    size: int
    etag: str
    body: bytes | None = None  # None: not kept (see the module's note)
    duration_s: float | None = None  # an upload: its header is made on read


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class MemoryS3:
    def __init__(self, calls: CallCounter, *, keep_bodies: bool = False) -> None:
        self._calls = calls
        self._keep_bodies = keep_bodies
        self.buckets: dict[str, dict[str, list[StoredObject]]] = {}
        self._versions = itertools.count(1)
        self._crash_after_puts: int | None = None
        self.puts = 0

    # --- setting the scene (not counted: uploads are the clinic's calls, not ours) ---------

    def upload_recording(self, bucket: str, key: str, *, duration_s: float) -> StoredObject:
        size = 44 + int(duration_s * BYTES_PER_SECOND)
        return self._store(bucket, key, StoredObject("", size, "", duration_s=duration_s))

    def upload_bytes(self, bucket: str, key: str, body: bytes) -> StoredObject:
        return self._store(bucket, key, StoredObject("", len(body), "", body=body))

    def write(self, bucket: str, key: str, body: bytes) -> StoredObject:
        """Another service's write (Transcribe's transcript), kept whole."""
        return self.upload_bytes(bucket, key, body)

    def _store(
        self, bucket: str, key: str, obj: StoredObject, *, bucket_is_input: bool = True
    ) -> StoredObject:
        obj.version_id = f"v{next(self._versions):08d}"
        # Uploads get an MD5-shaped ETag (the job name of an unversioned upload uses it);
        # documents, by the hundred thousand, a cheaper unique one.
        obj.etag = (
            hashlib.md5(f"{key}:{obj.version_id}".encode(), usedforsecurity=False).hexdigest()
            if bucket_is_input
            else obj.version_id
        )
        self.buckets.setdefault(bucket, {}).setdefault(key, []).append(obj)
        return obj

    def current(self, bucket: str, key: str) -> StoredObject | None:
        versions = self.buckets.get(bucket, {}).get(key)
        return versions[-1] if versions else None

    # --- faults ------------------------------------------------------------------------------

    def arm_crash_after_puts(self, puts: int | None) -> None:
        """Die after the next `puts` PutObject calls of this invocation (None: disarm)."""
        self._crash_after_puts = puts

    # --- the API the pipeline calls ----------------------------------------------------------

    def _find(self, operation: str, bucket: str, key: str, version_id: str | None) -> StoredObject:
        versions = self.buckets.get(bucket, {}).get(key)
        if not versions:
            code, status = ("404", 404) if operation == "HeadObject" else ("NoSuchKey", 404)
            raise client_error(code, operation, status=status, message="Not Found")
        if version_id is None:
            return versions[-1]
        for obj in versions:
            if obj.version_id == version_id:
                return obj
        code = "404" if operation == "HeadObject" else "NoSuchVersion"
        raise client_error(code, operation, status=404, message="Not Found")

    def get_object(
        self, *, Bucket: str, Key: str, Range: str | None = None, VersionId: str | None = None
    ) -> dict[str, Any]:
        self._calls.count(S3, "GetObject")
        obj = self._find("GetObject", Bucket, Key, VersionId)
        if obj.duration_s is not None:
            data = wav_header_bytes(data_bytes=obj.size - 44)
        else:
            data = obj.body if obj.body is not None else b""
        if Range:
            first, _, last = Range.removeprefix("bytes=").partition("-")
            if obj.size == 0:
                raise client_error("InvalidRange", "GetObject", status=416)
            data = data[int(first) : int(last) + 1]
        return {"Body": _Body(data), "VersionId": obj.version_id, "ContentLength": len(data)}

    def head_object(self, *, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:
        self._calls.count(S3, "HeadObject")
        obj = self._find("HeadObject", Bucket, Key, VersionId)
        return {"VersionId": obj.version_id, "ContentLength": obj.size, "ETag": f'"{obj.etag}"'}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes | str, **_: Any) -> dict[str, Any]:
        self._calls.count(S3, "PutObject")
        data = Body.encode() if isinstance(Body, str) else bytes(Body)
        obj = StoredObject("", len(data), "", body=data if self._keep_bodies else None)
        self._store(Bucket, Key, obj, bucket_is_input=False)
        self.puts += 1
        if self._crash_after_puts is not None:
            self._crash_after_puts -= 1
            if self._crash_after_puts <= 0:
                self._crash_after_puts = None
                raise SimulatedCrash("post-process died after writing some documents")
        return {"VersionId": obj.version_id, "ETag": f'"{obj.etag}"'}
