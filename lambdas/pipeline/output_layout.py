"""Where each job's files go in the output bucket (contract 3).

Transcribe writes the raw transcript to `medical/<job_name>.json`. The post-processor writes
a job's documents into a folder of that job alone, found from its upload:
`transcripts/<input key>/<input revision>/`. The key keeps its extension (so `visit.wav` and
`visit.mp3` never meet) and the revision tells two uploads of one key apart. When any
document key there would pass S3's 1,024-byte limit, the whole job goes to
`transcripts/_by-job/<job_name>/` instead, so a job's documents always share one folder.

Because the folder belongs to one upload, and so to one job, every object under it is that
job's: deleting a job never touches another job's documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TRANSCRIPT_PREFIX = "medical/"
DOCUMENTS_PREFIX = "transcripts/"
BY_JOB_PREFIX = f"{DOCUMENTS_PREFIX}_by-job/"
MAX_KEY_BYTES = 1024  # S3's limit, in bytes of UTF-8


def transcript_key_for(job_name: str) -> str:
    """Where Transcribe writes the job's raw transcript (we set OutputKey to it)."""
    return f"{TRANSCRIPT_PREFIX}{job_name}.json"


def input_revision(item: Mapping[str, Any]) -> str:
    """What tells this upload apart from other uploads of the same key, as a folder name.

    The S3 version id in a versioned bucket. In an unversioned bucket, the content's ETag
    (what the job name is derived from there), else the job name itself: both are unique
    to the upload, so the folder stays the job's own.
    """
    version = str(item.get("input_version") or "")
    if version and version != "null":
        return version
    etag = str(item.get("input_etag") or "").strip('"')
    if etag:
        return f"etag-{etag}"
    return str(item["job_name"])


def by_job_folder(job_name: str) -> str:
    return f"{BY_JOB_PREFIX}{job_name}/"


def _usable_segment(text: str) -> bool:
    # One path segment: a "/" would let two (key, revision) pairs share a folder.
    return bool(text) and "/" not in text and text not in (".", "..")


def documents_folder(
    *, input_key: str, revision: str, job_name: str, document_names: Iterable[str]
) -> str:
    """The job's documents folder: by input key and revision, or by job name when a
    document key there would pass S3's key-length limit."""
    names = list(document_names)
    for name in names:
        if not _usable_segment(name):
            raise ValueError(f"document name {name!r} must be one path segment")
    folder = f"{DOCUMENTS_PREFIX}{input_key}/{revision}/"
    longest = max((len(name.encode("utf-8")) for name in names), default=0)
    if _usable_segment(revision) and len(folder.encode("utf-8")) + longest <= MAX_KEY_BYTES:
        return folder
    fallback = by_job_folder(job_name)
    if len(fallback.encode("utf-8")) + longest > MAX_KEY_BYTES:
        raise ValueError("a document name is too long for any S3 key")
    return fallback


def document_keys(item: Mapping[str, Any], document_names: Iterable[str]) -> dict[str, str]:
    """Document name -> output bucket key, for every document of this job."""
    names = list(document_names)
    folder = documents_folder(
        input_key=str(item["input_key"]),
        revision=input_revision(item),
        job_name=str(item["job_name"]),
        document_names=names,
    )
    return {name: f"{folder}{name}" for name in names}
