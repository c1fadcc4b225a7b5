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
from tests.infra.conftest import REPO_ROOT, cdk_json_context

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


def test_prefixes_that_begin_one_another_are_rejected() -> None:
    context = {
        "dev": {**BASE, "job_name_prefix": "medscribe"},
        "prod": {**BASE, "job_name_prefix": "medscribe-prod"},
    }
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    message = str(raised.value)
    assert key_path("job_name_prefix") in message
    assert "allowed: prefixes that do not begin one another" in message


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
    assert result.returncode != 0
    assert f"ConfigError: {BAD_MESSAGE}" in result.stderr
