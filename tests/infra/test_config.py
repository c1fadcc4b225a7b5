"""cdk.json settings: every rule of stacks/config.py fails with the key and the allowed values,
and the app (in-process and as `python app.py`) fails synth with that message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk import App

from app import build_app
from stacks.config import ConfigError, load_environments, parse_environment
from tests.infra.conftest import REPLICATION_SETTINGS, REPO_ROOT, cdk_json_context

BASE = {"region": "us-east-1"}


def error_for(settings: dict[str, Any], name: str = "dev") -> str:
    with pytest.raises(ConfigError) as raised:
        parse_environment(name, {**BASE, **settings})
    return str(raised.value)


def key_path(key: str, name: str = "dev") -> str:
    return f'"environments.{name}.{key}"'


# Given one bad setting, when it is parsed, then the error names its key and what it allows.
@pytest.mark.parametrize(
    ("settings", "key", "allowed"),
    [
        pytest.param({"specialty": "CARDIOLOGY"}, "specialty", "PRIMARYCARE", id="specialty"),
        pytest.param(
            {"default_type": "MEETING"}, "default_type", "CONVERSATION | DICTATION", id="job-type"
        ),
        pytest.param(
            {"max_speaker_labels": 1}, "max_speaker_labels", "an integer from 2 to 10", id="spk-1"
        ),
        pytest.param(
            {"max_speaker_labels": 11}, "max_speaker_labels", "an integer from 2 to 10", id="spk-11"
        ),
        pytest.param(
            {"max_alternatives": 1}, "max_alternatives", "an integer from 2 to 10", id="alt-1"
        ),
        pytest.param(
            {"max_alternatives": 11}, "max_alternatives", "an integer from 2 to 10", id="alt-11"
        ),
        pytest.param(
            {"termination_protection": True},
            "account",
            "a 12-digit AWS account ID (required when termination_protection is true",
            id="protection-without-account",
        ),
        pytest.param(
            {"show_speaker_labels": "yes"}, "show_speaker_labels", "true or false", id="non-bool"
        ),
        pytest.param(
            {"channel_identification": 1}, "channel_identification", "true or false", id="int-bool"
        ),
        pytest.param({"account": "1234"}, "account", "a 12-digit AWS account ID", id="account"),
        pytest.param(
            {"log_retention_days": 31}, "log_retention_days", "1 | 3 | 5 | 7 | 14 | 30", id="logs"
        ),
        pytest.param(
            {"job_name_prefix": "bad prefix!"},
            "job_name_prefix",
            "1 to 100 characters of letters, digits",
            id="prefix",
        ),
        pytest.param(
            {"start_batch_size": 11}, "start_batch_size", "an integer from 1 to 10", id="batch"
        ),
        pytest.param(
            {"low_confidence_threshold": 2}, "low_confidence_threshold", "0 to 1", id="fraction"
        ),
        pytest.param({"alarm_email": "ops"}, "alarm_email", "an email address", id="email"),
        pytest.param(
            {"alarm_topic_arn": "oncall"}, "alarm_topic_arn", "an SNS topic ARN", id="topic"
        ),
        pytest.param(
            {"start_max_concurrency": 1},
            "start_max_concurrency",
            "an integer from 2 to 1000",
            id="max-concurrency",
        ),
        pytest.param(
            {"start_reserved_concurrency": 0},
            "start_reserved_concurrency",
            "an integer from 1 to 1000",
            id="reserved",
        ),
        pytest.param(
            {"concurrent_job_quota": 100, "concurrent_job_share": 101},
            "concurrent_job_share",
            "an integer from 1 to 100",
            id="share-over-quota",
        ),
        pytest.param(
            {"start_rate_per_second": 26},
            "start_rate_per_second",
            "an integer from 1 to 25",
            id="rate-over-quota",
        ),
        pytest.param(
            {"access_log_expiration_days": 0},
            "access_log_expiration_days",
            "an integer from 1 to 36500",
            id="access-log-expiry",
        ),
        pytest.param({"vpc": "yes"}, "vpc", "true or false", id="vpc"),
    ],
)
def test_bad_setting_names_key_and_allowed_values(
    settings: dict[str, Any], key: str, allowed: str
) -> None:
    message = error_for(settings)
    assert key_path(key) in message
    assert "allowed: " in message
    assert allowed in message


def test_missing_region_names_region() -> None:
    with pytest.raises(ConfigError, match=re.escape(key_path("region"))) as raised:
        parse_environment("dev", {"default_type": "DICTATION"})
    assert "<missing>" in str(raised.value)
    assert "an AWS Region code such as us-east-1 (required)" in str(raised.value)


def test_unredacted_documents_may_be_left_out_only_with_phi_identification() -> None:
    message = error_for({"write_unredacted_documents": False})
    assert key_path("write_unredacted_documents") in message
    assert key_path("identify_phi") in message
    config = parse_environment(
        "dev", {**BASE, "identify_phi": True, "write_unredacted_documents": False}
    )
    assert config.lambda_environment()["WRITE_UNREDACTED"] == "false"
    assert parse_environment("dev", BASE).lambda_environment()["WRITE_UNREDACTED"] == "true"


def test_speaker_labels_with_channel_identification_names_both_keys() -> None:
    message = error_for({"show_speaker_labels": True, "channel_identification": True})
    assert key_path("show_speaker_labels") in message
    assert key_path("channel_identification") in message
    assert "allowed: at most one of them" in message


def test_unknown_setting_is_named_with_the_allowed_settings() -> None:
    message = error_for({"colour": "blue"})
    assert "unknown setting(s) colour" in message
    allowed = message.split("allowed: ", 1)[1].split(", ")
    assert {"region", "account", "specialty", "default_type", "alarm_email"} <= set(allowed)
    assert "name" not in allowed


SMALL = {"concurrent_job_share": 10, "start_rate_per_second": 1}


@pytest.mark.parametrize(
    ("dev_prefix", "prod_prefix", "relation"),
    [("medscribe", "medscribe-prod", "begins"), ("medscribe", "medscribe", "equals")],
)
def test_prefixes_that_are_equal_or_begin_one_another_are_rejected(
    dev_prefix: str, prod_prefix: str, relation: str
) -> None:
    context = {
        "dev": {**BASE, **SMALL, "job_name_prefix": dev_prefix},
        "prod": {**BASE, **SMALL, "job_name_prefix": prod_prefix},
    }
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    message = str(raised.value)
    assert key_path("job_name_prefix") in message
    assert f"which {relation} environment prod's" in message
    assert "allowed: prefixes that are distinct and do not begin one another" in message


def test_default_shares_of_two_environments_in_one_region_exceed_the_quota() -> None:
    # Given two environments in one Region, one without an account (it may deploy into the
    # other's), each with the default share (the whole quota), then synth refuses them.
    context = {"dev": BASE, "prod": {**BASE, "account": "111111111111"}}
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    assert str(raised.value) == (
        'cdk.json context "environments.dev.concurrent_job_share" + '
        '"environments.prod.concurrent_job_share" sum to 500; allowed: at most '
        "concurrent_job_quota (250), because environments dev, prod may share one account "
        "and Region (us-east-1, account 111111111111)"
    )


def test_start_rates_that_sum_above_the_start_quota_are_rejected() -> None:
    context = {
        "dev": {**BASE, "concurrent_job_share": 50, "start_rate_per_second": 10},
        "qa": {**BASE, "concurrent_job_share": 50, "start_rate_per_second": 20},
    }
    with pytest.raises(ConfigError, match=r'"environments.qa.start_rate_per_second" sum to 30; '):
        load_environments(context)


@pytest.mark.parametrize(
    "other",
    [
        {"region": "us-east-1", "account": "222222222222"},  # another account
        {"region": "eu-west-1"},  # another Region
    ],
    ids=["other-account", "other-region"],
)
def test_environments_that_cannot_share_an_account_and_region_each_use_the_quota(
    other: dict[str, Any],
) -> None:
    context = {"dev": {**BASE, "account": "111111111111"}, "qa": other}
    configs = load_environments(context)
    assert [c.concurrent_job_share for c in configs] == [250, 250]
    assert [c.start_rate_per_second for c in configs] == [25, 25]


def test_protected_environment_needs_an_alarm_recipient() -> None:
    message = error_for({"termination_protection": True, "account": "111111111111"})
    assert key_path("alarm_email") in message
    assert key_path("alarm_topic_arn") in message
    assert "allowed: an email address or an existing SNS topic ARN" in message
    for recipient in (
        {"alarm_email": "oncall@example.com"},
        {"alarm_topic_arn": "arn:aws:sns:us-east-1:111111111111:oncall"},
    ):
        config = parse_environment(
            "prod",
            {**BASE, "termination_protection": True, "account": "111111111111", **recipient},
        )
        assert config.termination_protection


def test_dispatch_settings_reach_the_handler_environment() -> None:
    config = parse_environment(
        "dev", {**BASE, "concurrent_job_share": 40, "start_rate_per_second": 7}
    )
    variables = config.lambda_environment()
    assert (variables["CONCURRENT_JOB_SHARE"], variables["START_RATE_PER_SECOND"]) == ("40", "7")
    defaults = parse_environment("dev", BASE)
    assert (defaults.concurrent_job_share, defaults.start_rate_per_second) == (250, 25)
    assert defaults.start_reserved_concurrency is None
    assert defaults.post_process_reserved_concurrency is None
    assert defaults.start_max_concurrency == 5


@pytest.mark.parametrize("context", [None, {}, [], "dev"], ids=["none", "empty", "list", "str"])
def test_environments_must_be_an_object(context: Any) -> None:
    with pytest.raises(ConfigError, match=r'context "environments" must be an object'):
        load_environments(context)


def test_bad_environment_name_is_named() -> None:
    with pytest.raises(ConfigError, match=r"the environment name is '1dev'; allowed: a letter"):
        load_environments({"1dev": BASE})


def test_defaults_and_cdk_json_are_valid() -> None:
    # Given the repository's cdk.json, when it is loaded, then dev and prod parse with defaults.
    configs = {c.name: c for c in load_environments(cdk_json_context()["environments"])}
    assert set(configs) == {"dev", "prod"}
    assert configs["dev"].job_name_prefix == "medscribe-dev"
    assert configs["prod"].termination_protection is True
    assert configs["prod"].account is not None


BAD_CONTEXT = {"environments": {"dev": {**BASE, "max_speaker_labels": 11}}}
BAD_MESSAGE = (
    'cdk.json context "environments.dev.max_speaker_labels" is 11; allowed: an integer from 2 to 10'
)


def test_app_fails_with_the_config_message() -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(App(context=BAD_CONTEXT))
    assert str(raised.value) == BAD_MESSAGE


def test_app_script_fails_synth_with_the_config_message(tmp_path: Any) -> None:
    # Given a bad setting in the context the CLI passes, when `python app.py` runs, then it
    # exits non-zero and prints the message (the CLI shows the app's stderr).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))} | {
        "CDK_CONTEXT_JSON": json.dumps(BAD_CONTEXT),
        "CDK_OUTDIR": str(tmp_path),
        # As `make` runs it: jsii on the pinned Node 22 (an older Node prints a banner).
        "PATH": f"{REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # One line, the key and the allowed values, no traceback.
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {BAD_MESSAGE}"]


# Replication: three settings that come together (tests/infra/conftest.py's destinations).
REPLICATION = dict(REPLICATION_SETTINGS)
KEY_IN_STACK_REGION = REPLICATION["replication_kms_key_arn"].replace("us-west-2", "us-east-1")


def test_replication_is_off_by_default_and_on_with_its_three_settings() -> None:
    assert parse_environment("dev", BASE).replication is False
    assert parse_environment("dev", BASE).replication_region is None
    config = parse_environment("dev", {**BASE, **REPLICATION})
    assert config.replication is True
    assert config.replication_region == "us-west-2"
    assert config.replication_input_bucket_arn == REPLICATION["replication_input_bucket_arn"]
    # cdk.json ships no destinations: they must exist before a deploy.
    shipped = load_environments(cdk_json_context()["environments"])
    assert [c.replication for c in shipped] == [False, False]


@pytest.mark.parametrize("left_out", sorted(REPLICATION))
def test_replication_needs_all_three_settings(left_out: str) -> None:
    message = error_for({k: v for k, v in REPLICATION.items() if k != left_out})
    assert message.startswith(f"cdk.json context {key_path(left_out)} unset while ")
    assert "allowed: all of replication_input_bucket_arn, replication_output_bucket_arn, " in (
        message
    )


@pytest.mark.parametrize(
    ("bad", "key", "allowed"),
    [
        pytest.param(
            {"replication_input_bucket_arn": "s3://medscribe-replica-input"},
            "replication_input_bucket_arn",
            "an S3 bucket ARN (arn:aws:s3:::<bucket name>)",
            id="input-uri",
        ),
        pytest.param(
            {"replication_output_bucket_arn": "arn:aws:s3:::Bad_Name"},
            "replication_output_bucket_arn",
            "an S3 bucket ARN",
            id="output-bucket-name",
        ),
        pytest.param(
            {"replication_kms_key_arn": "arn:aws:kms:us-west-2:111111111111:alias/replicas"},
            "replication_kms_key_arn",
            "a KMS key ARN with its Region and account",
            id="key-alias",
        ),
        pytest.param(
            {"replication_kms_key_arn": "1234abcd-12ab-34cd-56ef-1234567890ab"},
            "replication_kms_key_arn",
            "a KMS key ARN with its Region and account",
            id="key-id",
        ),
        pytest.param(
            {"replication_kms_key_arn": KEY_IN_STACK_REGION},
            "replication_kms_key_arn",
            "a key in another Region than the stack's (us-east-1)",
            id="same-region",
        ),
        pytest.param(
            {"replication_output_bucket_arn": REPLICATION["replication_input_bucket_arn"]},
            "replication_output_bucket_arn",
            f"a bucket other than cdk.json context {key_path('replication_input_bucket_arn')}",
            id="one-destination-for-both",
        ),
    ],
)
def test_bad_replication_setting_names_key_and_allowed_values(
    bad: dict[str, str], key: str, allowed: str
) -> None:
    message = error_for({**REPLICATION, **bad})
    assert message.startswith(f"cdk.json context {key_path(key)} is ")
    assert f"allowed: {allowed}" in message


def test_multi_region_replica_key_is_accepted() -> None:
    key = "arn:aws:kms:eu-central-1:222222222222:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    config = parse_environment("dev", {**BASE, **REPLICATION, "replication_kms_key_arn": key})
    assert config.replication_region == "eu-central-1"


def test_two_environments_may_not_replicate_into_one_bucket() -> None:
    # Given prod replicating its outputs into the bucket dev replicates its outputs into, then
    # synth refuses: a test upload's replica could land over a patient's under the same key.
    prod = {
        **REPLICATION,
        "replication_input_bucket_arn": "arn:aws:s3:::medscribe-prod-replica-input",
    }
    context = {
        "dev": {**BASE, **SMALL, **REPLICATION},
        "prod": {**BASE, **SMALL, "account": "111111111111", **prod},
    }
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    assert str(raised.value) == (
        'cdk.json context "environments.prod.replication_output_bucket_arn" is '
        f"{REPLICATION['replication_output_bucket_arn']!r}, which "
        '"environments.dev.replication_output_bucket_arn" also names; allowed: a destination '
        "bucket of its own for each bucket of each environment"
    )
