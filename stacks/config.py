"""Per-environment settings: parsed once from `cdk.json` context into a typed, validated object.

Every error names the exact context key and the values it allows, because the person who
reads it is editing `cdk.json` and should not have to read this file to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

CONTEXT_KEY = "environments"

SPECIALTIES = ("PRIMARYCARE",)  # batch Transcribe Medical accepts only PRIMARYCARE
JOB_TYPES = ("CONVERSATION", "DICTATION")
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
JOB_NAME_PREFIX_PATTERN = re.compile(r"^[0-9a-zA-Z._-]{1,100}$")
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
VOCABULARY_PATTERN = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SNS_TOPIC_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$"
)
# Replication destinations: a bucket by ARN (no Region in it) and the key that encrypts the
# replicas, by key ARN (its Region is the destination's: S3 requires the replica key there).
S3_BUCKET_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KMS_KEY_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(-[a-z]+)+-\d):\d{12}:key/"
    r"(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
REPLICATION_KEYS = (
    "replication_input_bucket_arn",
    "replication_output_bucket_arn",
    "replication_kms_key_arn",
)
# Access logs quote object keys (PHI): kept long enough to investigate an incident found late,
# not for ever. Teams with a six-year audit-retention policy set 2192.
DEFAULT_ACCESS_LOG_EXPIRATION_DAYS = 365


class ConfigError(ValueError):
    """A setting in cdk.json is missing or outside what it allows."""


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """One deployable environment (one stack)."""

    name: str
    region: str
    account: str | None = None
    termination_protection: bool = False
    job_name_prefix: str = ""
    # Transcribe Medical job settings (contract 2).
    specialty: str = "PRIMARYCARE"
    default_type: str = "CONVERSATION"
    show_speaker_labels: bool = True
    max_speaker_labels: int = 2
    channel_identification: bool = False
    max_alternatives: int | None = None
    vocabulary_name: str | None = None
    identify_phi: bool = False
    write_unredacted_documents: bool = True  # with identify_phi: also the unredacted ones
    # Storage.
    log_retention_days: int = 90
    input_expiration_days: int | None = None
    output_expiration_days: int | None = None
    noncurrent_version_expiration_days: int = 30
    access_log_expiration_days: int = DEFAULT_ACCESS_LOG_EXPIRATION_DAYS
    # Optional hardening: functions in a VPC, AWS Backup.
    vpc: bool = False
    backup_plan: bool = False
    backup_retention_days: int = 35
    # Optional cross-Region replication of the input and output buckets (all three or none).
    replication_input_bucket_arn: str | None = None
    replication_output_bucket_arn: str | None = None
    replication_kms_key_arn: str | None = None
    # Ingest and dispatch: how fast uploads become jobs. Reserved concurrency is off by default:
    # a new account may have a Lambda limit of 10, and any reservation then fails the deploy.
    start_reserved_concurrency: int | None = None
    start_max_concurrency: int = 5
    start_batch_size: int = 5
    ingest_max_receive_count: int = 10
    concurrent_job_quota: int = 250
    concurrent_job_share: int = 250
    start_rate_per_second: int = 25
    start_rate_quota: int = 25
    # Completion path.
    low_confidence_threshold: float = 0.5
    reconcile_interval_minutes: int = 5
    post_process_reserved_concurrency: int | None = None
    # Monitoring.
    alarm_email: str | None = None
    alarm_topic_arn: str | None = None
    backlog_age_alarm_minutes: int = 240

    @property
    def replication(self) -> bool:
        """Both data buckets replicate to their destinations (parse_environment ensures the
        three settings come together)."""
        return self.replication_kms_key_arn is not None

    @property
    def replication_region(self) -> str | None:
        """The destination Region: the replica key's (S3 requires the key in the bucket's)."""
        if self.replication_kms_key_arn is None:
            return None
        match = KMS_KEY_ARN_PATTERN.match(self.replication_kms_key_arn)
        assert match is not None, "parse_environment validated the key ARN"
        return match["region"]

    @property
    def stack_name(self) -> str:
        return f"MedicalTranscription-{self.name}"

    def lambda_environment(self) -> dict[str, str]:
        """The job settings every handler reads (contract 2), as Lambda environment strings."""
        return {
            "JOB_NAME_PREFIX": self.job_name_prefix,
            "SPECIALTY": self.specialty,
            "DEFAULT_TYPE": self.default_type,
            "SHOW_SPEAKER_LABELS": _flag(self.show_speaker_labels),
            "MAX_SPEAKER_LABELS": str(self.max_speaker_labels),
            "CHANNEL_IDENTIFICATION": _flag(self.channel_identification),
            "MAX_ALTERNATIVES": str(self.max_alternatives or ""),
            "VOCABULARY_NAME": self.vocabulary_name or "",
            "IDENTIFY_PHI": _flag(self.identify_phi),
            "WRITE_UNREDACTED": _flag(self.write_unredacted_documents),
            "INGEST_MAX_RECEIVES": str(self.ingest_max_receive_count),
            "LOW_CONFIDENCE_THRESHOLD": str(self.low_confidence_threshold),
            "CONCURRENT_JOB_SHARE": str(self.concurrent_job_share),
            "START_RATE_PER_SECOND": str(self.start_rate_per_second),
        }


def _flag(value: bool) -> str:
    return "true" if value else "false"


_FIELD_NAMES = {f.name for f in fields(EnvironmentConfig)}


class _Reader:
    """Typed reads from one environment's raw mapping, with errors that name the key."""

    def __init__(self, env_name: str, raw: Mapping[str, Any]) -> None:
        self.env_name = env_name
        self.raw = raw

    def path(self, key: str) -> str:
        return f'cdk.json context "{CONTEXT_KEY}.{self.env_name}.{key}"'

    def fail(self, key: str, allowed: str) -> ConfigError:
        value = self.raw.get(key, "<missing>")
        return ConfigError(f"{self.path(key)} is {value!r}; allowed: {allowed}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}")
        return value

    def required_integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.integer(key, default, low, high)
        if value is None:
            raise self.fail(key, f"an integer from {low} to {high}")
        return value

    def choice(self, key: str, default: Any, allowed: tuple[Any, ...]) -> Any:
        value = self.raw.get(key, default)
        if value not in allowed or isinstance(value, bool):
            raise self.fail(key, " | ".join(str(a) for a in allowed))
        return value

    def pattern(
        self, key: str, default: str | None, regex: re.Pattern[str], allowed: str
    ) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not regex.match(value):
            raise self.fail(key, allowed)
        return value

    def fraction(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(key, "a number from 0 to 1")
        return float(value)


def parse_environment(name: str, raw: Mapping[str, Any]) -> EnvironmentConfig:
    """Validate one environment's settings; raise ConfigError naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f'cdk.json context "{CONTEXT_KEY}.{name}" must be an object of settings')
    unknown = sorted(k for k in raw if k not in _FIELD_NAMES or k == "name")
    if unknown:
        raise ConfigError(
            f'cdk.json context "{CONTEXT_KEY}.{name}" has unknown setting(s) {", ".join(unknown)}; '
            f"allowed: {', '.join(sorted(_FIELD_NAMES - {'name'}))}"
        )
    r = _Reader(name, raw)
    region = r.pattern("region", None, REGION_PATTERN, "an AWS Region code such as us-east-1")
    if region is None:
        raise r.fail("region", "an AWS Region code such as us-east-1 (required)")
    termination_protection = r.boolean("termination_protection", False)
    account = r.pattern("account", None, ACCOUNT_PATTERN, "a 12-digit AWS account ID")
    if termination_protection and account is None:
        raise r.fail(
            "account",
            "a 12-digit AWS account ID (required when termination_protection is true, "
            "so a protected environment never deploys into whichever account the shell has)",
        )
    show_speakers = r.boolean("show_speaker_labels", True)
    channels = r.boolean("channel_identification", False)
    if show_speakers and channels:
        raise ConfigError(
            f"{r.path('show_speaker_labels')} and {r.path('channel_identification')} are both "
            "true; allowed: at most one of them (Transcribe Medical labels speakers or channels, "
            "not both)"
        )
    identify_phi = r.boolean("identify_phi", False)
    write_unredacted = r.boolean("write_unredacted_documents", True)
    if not write_unredacted and not identify_phi:
        raise ConfigError(
            f"{r.path('write_unredacted_documents')} is false but {r.path('identify_phi')} is "
            "not true; allowed: false only with identify_phi true (without PHI identification "
            "the unredacted documents are the only readable ones)"
        )
    _check_replication(r, region)
    prefix = r.pattern(
        "job_name_prefix",
        f"medscribe-{name}",
        JOB_NAME_PREFIX_PATTERN,
        "1 to 100 characters of letters, digits, '.', '_' or '-'",
    )
    assert prefix is not None
    quota = r.required_integer("concurrent_job_quota", 250, 1, 10000)
    rate_quota = r.required_integer("start_rate_quota", 25, 1, 1000)
    alarm_email = r.pattern("alarm_email", None, EMAIL_PATTERN, "an email address")
    alarm_topic_arn = r.pattern(
        "alarm_topic_arn", None, SNS_TOPIC_ARN_PATTERN, "an SNS topic ARN (arn:aws:sns:...)"
    )
    if termination_protection and alarm_email is None and alarm_topic_arn is None:
        raise ConfigError(
            f"{r.path('alarm_email')} and {r.path('alarm_topic_arn')} are both unset; allowed: "
            "an email address or an existing SNS topic ARN (required when termination_protection "
            "is true, so that alarms reach a person)"
        )
    return EnvironmentConfig(
        name=name,
        region=region,
        account=account,
        termination_protection=termination_protection,
        job_name_prefix=prefix,
        specialty=r.choice("specialty", "PRIMARYCARE", SPECIALTIES),
        default_type=r.choice("default_type", "CONVERSATION", JOB_TYPES),
        show_speaker_labels=show_speakers,
        max_speaker_labels=r.required_integer("max_speaker_labels", 2, 2, 10),
        channel_identification=channels,
        max_alternatives=r.integer("max_alternatives", None, 2, 10),
        vocabulary_name=r.pattern(
            "vocabulary_name", None, VOCABULARY_PATTERN, "a Transcribe Medical vocabulary name"
        ),
        identify_phi=identify_phi,
        write_unredacted_documents=write_unredacted,
        log_retention_days=r.choice("log_retention_days", 90, LOG_RETENTION_DAYS),
        input_expiration_days=r.integer("input_expiration_days", None, 1, 36500),
        output_expiration_days=r.integer("output_expiration_days", None, 1, 36500),
        noncurrent_version_expiration_days=r.required_integer(
            "noncurrent_version_expiration_days", 30, 1, 36500
        ),
        access_log_expiration_days=r.required_integer(
            "access_log_expiration_days", DEFAULT_ACCESS_LOG_EXPIRATION_DAYS, 1, 36500
        ),
        vpc=r.boolean("vpc", False),
        backup_plan=r.boolean("backup_plan", False),
        backup_retention_days=r.required_integer("backup_retention_days", 35, 1, 36500),
        replication_input_bucket_arn=raw.get("replication_input_bucket_arn"),
        replication_output_bucket_arn=raw.get("replication_output_bucket_arn"),
        replication_kms_key_arn=raw.get("replication_kms_key_arn"),
        start_reserved_concurrency=r.integer("start_reserved_concurrency", None, 1, 1000),
        start_max_concurrency=r.required_integer("start_max_concurrency", 5, 2, 1000),
        start_batch_size=r.required_integer("start_batch_size", 5, 1, 10),
        ingest_max_receive_count=r.required_integer("ingest_max_receive_count", 10, 3, 1000),
        concurrent_job_quota=quota,
        concurrent_job_share=r.required_integer("concurrent_job_share", quota, 1, quota),
        start_rate_per_second=r.required_integer(
            "start_rate_per_second", rate_quota, 1, rate_quota
        ),
        start_rate_quota=rate_quota,
        low_confidence_threshold=r.fraction("low_confidence_threshold", 0.5),
        reconcile_interval_minutes=r.required_integer("reconcile_interval_minutes", 5, 1, 1440),
        post_process_reserved_concurrency=r.integer(
            "post_process_reserved_concurrency", None, 1, 1000
        ),
        alarm_email=alarm_email,
        alarm_topic_arn=alarm_topic_arn,
        backlog_age_alarm_minutes=r.required_integer("backlog_age_alarm_minutes", 240, 5, 10080),
    )


def _check_replication(r: _Reader, region: str) -> None:
    """All three replication settings or none; real ARNs; two distinct destinations; the
    replica key (and so the destination buckets) in another Region than the stack's, since a
    copy in the same Region does not survive that Region's loss."""
    bucket_allowed = "an S3 bucket ARN (arn:aws:s3:::<bucket name>)"
    given = [key for key in REPLICATION_KEYS if r.raw.get(key) is not None]
    if not given:
        return
    missing = [key for key in REPLICATION_KEYS if key not in given]
    if missing:
        raise ConfigError(
            f"{', '.join(r.path(k) for k in missing)} unset while {r.path(given[0])} is set; "
            f"allowed: all of {', '.join(REPLICATION_KEYS)} or none of them (replication "
            "needs a destination for each data bucket and the key that encrypts the replicas)"
        )
    for key in REPLICATION_KEYS[:2]:
        r.pattern(key, None, S3_BUCKET_ARN_PATTERN, bucket_allowed)
    key_allowed = (
        "a KMS key ARN with its Region and account (arn:aws:kms:<region>:<account>:key/<key id>),"
        " not an alias: the replicas are encrypted with it"
    )
    key_arn = r.pattern("replication_kms_key_arn", None, KMS_KEY_ARN_PATTERN, key_allowed)
    match = KMS_KEY_ARN_PATTERN.match(key_arn or "")
    assert match is not None
    if match["region"] == region:
        raise r.fail(
            "replication_kms_key_arn",
            f"a key in another Region than the stack's ({region}): the replica key must be in "
            "the destination buckets' Region, and a copy in the same Region does not survive "
            "that Region's loss",
        )
    if r.raw[REPLICATION_KEYS[0]] == r.raw[REPLICATION_KEYS[1]]:
        raise r.fail(
            REPLICATION_KEYS[1],
            f"a bucket other than {r.path(REPLICATION_KEYS[0])} (uploads and outputs would mix "
            "under the same keys)",
        )


def load_environments(context: Any) -> list[EnvironmentConfig]:
    """All environments from the `environments` context value, validated."""
    if not isinstance(context, Mapping) or not context:
        raise ConfigError(
            f'cdk.json context "{CONTEXT_KEY}" must be an object with one entry per environment, '
            'e.g. {"dev": {"region": "us-east-1"}}'
        )
    envs = []
    for name, raw in context.items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,30}$", name):
            raise ConfigError(
                f'cdk.json context "{CONTEXT_KEY}.{name}": the environment name is {name!r}; '
                "allowed: a letter then up to 30 letters, digits or '-'"
            )
        envs.append(parse_environment(name, raw))
    _check_prefixes(envs)
    _check_replication_destinations(envs)
    _check_shared_quotas(envs)
    return envs


def _check_prefixes(envs: list[EnvironmentConfig]) -> None:
    """Job names are unique per account and Region, and each stack's event rule and IAM grants
    match its prefix: one prefix equal to or beginning another would let a stack see, start
    or finish another environment's jobs."""
    for env in envs:
        for other in envs:
            if other is not env and other.job_name_prefix.startswith(env.job_name_prefix):
                relation = "equals" if other.job_name_prefix == env.job_name_prefix else "begins"
                raise ConfigError(
                    f'cdk.json context "{CONTEXT_KEY}.{env.name}.job_name_prefix" is '
                    f"{env.job_name_prefix!r}, which {relation} environment {other.name}'s "
                    f"{other.job_name_prefix!r}; allowed: prefixes that are distinct and do not "
                    "begin one another (rules and grants match by prefix)"
                )


def _check_replication_destinations(envs: list[EnvironmentConfig]) -> None:
    """Each destination bucket receives one bucket's replicas: two environments replicating into
    one bucket would mix their PHI under the same keys (a test upload over a patient's)."""
    seen: dict[str, str] = {}
    for env in envs:
        for key in REPLICATION_KEYS[:2]:
            arn = getattr(env, key)
            if arn is None:
                continue
            where = f'"{CONTEXT_KEY}.{env.name}.{key}"'
            if arn in seen:
                raise ConfigError(
                    f"cdk.json context {where} is {arn!r}, which {seen[arn]} also names; "
                    "allowed: a destination bucket of its own for each bucket of each environment"
                )
            seen[arn] = where


def sharing_groups(envs: list[EnvironmentConfig]) -> list[list[EnvironmentConfig]]:
    """Environments that may run in one account and Region: same Region, and the same account
    or no account (an unset account is whichever account the deploying shell has)."""
    groups = []
    for region in sorted({e.region for e in envs}):
        in_region = [e for e in envs if e.region == region]
        accounts: list[str | None] = [
            *sorted({e.account for e in in_region if e.account is not None})
        ] or [None]
        for account in accounts:
            group = [e for e in in_region if e.account in (account, None)]
            if len(group) > 1:
                groups.append(group)
    return groups


def _check_shared_quotas(envs: list[EnvironmentConfig]) -> None:
    """Transcribe Medical's quotas are per account and Region: the environments that may share
    them must split them, or together they start more than the account allows."""
    for group in sharing_groups(envs):
        names = ", ".join(e.name for e in group)
        account = next((e.account for e in group if e.account), "unset")
        where = f"{group[0].region}, account {account}"
        for share_key, quota_key in (
            ("concurrent_job_share", "concurrent_job_quota"),
            ("start_rate_per_second", "start_rate_quota"),
        ):
            total = sum(getattr(e, share_key) for e in group)
            quota = min(getattr(e, quota_key) for e in group)
            if total > quota:
                keys = " + ".join(f'"{CONTEXT_KEY}.{e.name}.{share_key}"' for e in group)
                raise ConfigError(
                    f"cdk.json context {keys} sum to {total}; allowed: at most {quota_key} "
                    f"({quota}), because environments {names} may share one account and Region "
                    f"({where})"
                )
