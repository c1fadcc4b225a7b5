"""Handler settings, read from the environment once at cold start (contract 2)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

JOB_TYPES = ("CONVERSATION", "DICTATION")


class SettingsError(RuntimeError):
    """The function was deployed with a missing or malformed environment variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    job_table: str
    input_bucket: str
    output_bucket: str
    kms_key_id: str
    job_name_prefix: str
    specialty: str = "PRIMARYCARE"
    default_type: str = "CONVERSATION"
    show_speaker_labels: bool = False
    max_speaker_labels: int = 2
    channel_identification: bool = False
    max_alternatives: int | None = None
    vocabulary_name: str | None = None
    identify_phi: bool = False
    write_unredacted: bool = True  # with identify_phi: also write the unredacted documents
    ingest_max_receives: int = 10
    low_confidence_threshold: float = 0.5
    # This stack's share of the account's Transcribe Medical quotas (the dispatcher's bounds).
    concurrent_job_share: int = 250
    start_rate_per_second: int = 25
    # The reconciler leaves an open job updated this recently to its completion event.
    reconcile_poll_after_s: int = 120


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is missing or empty")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise SettingsError(f"environment variable {name} is {value!r}; allowed: true | false")
    return value == "true"


def _integer(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(
            f"environment variable {name} is {value!r}; allowed: an integer"
        ) from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _integer(env, name, default)
    if value is None or value < 1:
        raise SettingsError(f"environment variable {name} is {value!r}; allowed: an integer >= 1")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise SettingsError naming the first bad variable."""
    env = os.environ if env is None else env
    default_type = env.get("DEFAULT_TYPE", "CONVERSATION").strip() or "CONVERSATION"
    if default_type not in JOB_TYPES:
        raise SettingsError(
            f"environment variable DEFAULT_TYPE is {default_type!r}; "
            f"allowed: {' | '.join(JOB_TYPES)}"
        )
    threshold = env.get("LOW_CONFIDENCE_THRESHOLD", "").strip() or "0.5"
    try:
        low_confidence = float(threshold)
    except ValueError:
        raise SettingsError(
            f"environment variable LOW_CONFIDENCE_THRESHOLD is {threshold!r}; allowed: 0 to 1"
        ) from None
    return Settings(
        job_table=_required(env, "JOB_TABLE"),
        input_bucket=_required(env, "INPUT_BUCKET"),
        output_bucket=_required(env, "OUTPUT_BUCKET"),
        kms_key_id=_required(env, "KMS_KEY_ID"),
        job_name_prefix=_required(env, "JOB_NAME_PREFIX"),
        specialty=env.get("SPECIALTY", "").strip() or "PRIMARYCARE",
        default_type=default_type,
        show_speaker_labels=_flag(env, "SHOW_SPEAKER_LABELS", False),
        max_speaker_labels=_integer(env, "MAX_SPEAKER_LABELS", 2) or 2,
        channel_identification=_flag(env, "CHANNEL_IDENTIFICATION", False),
        max_alternatives=_integer(env, "MAX_ALTERNATIVES", None),
        vocabulary_name=env.get("VOCABULARY_NAME", "").strip() or None,
        identify_phi=_flag(env, "IDENTIFY_PHI", False),
        write_unredacted=_flag(env, "WRITE_UNREDACTED", True),
        ingest_max_receives=_integer(env, "INGEST_MAX_RECEIVES", 10) or 10,
        low_confidence_threshold=low_confidence,
        concurrent_job_share=_positive(env, "CONCURRENT_JOB_SHARE", 250),
        start_rate_per_second=_positive(env, "START_RATE_PER_SECOND", 25),
        reconcile_poll_after_s=_integer(env, "RECONCILE_POLL_AFTER_SECONDS", 120) or 0,
    )


@cache
def current_settings() -> Settings:
    """This process's settings: read on first use, then kept for the life of the sandbox."""
    return load_settings()
