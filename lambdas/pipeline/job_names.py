"""Deterministic Transcribe job names that carry no text of the object key."""

from __future__ import annotations

import hashlib
import re

JOB_NAME_PATTERN = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
DIGEST_CHARS = 40  # 160 bits of SHA-256: collisions are not a practical concern


def job_name_for(prefix: str, *, bucket: str, key: str, version_id: str | None) -> str:
    """Same upload (bucket, key, version) -> same name; a new version -> a new name.

    The key is hashed, never embedded: keys may hold patient names and job names
    show in the console, in events and in logs.
    """
    material = "\0".join((bucket, key, version_id or "")).encode("utf-8")
    name = f"{prefix}-{hashlib.sha256(material).hexdigest()[:DIGEST_CHARS]}"
    if not JOB_NAME_PATTERN.match(name):
        raise ValueError("job name prefix must be 1-100 letters, digits, '.', '_' or '-'")
    return name


def is_ours(prefix: str, job_name: str) -> bool:
    """Whether a job name was made by job_name_for with this prefix."""
    head, _, digest = job_name.rpartition("-")
    return (
        head == prefix
        and len(digest) == DIGEST_CHARS
        and all(c in "0123456789abcdef" for c in digest)
    )
