"""Synthesize the app once per test session (per xdist worker): jsii synth is slow.

The app is built exactly as `cdk synth` builds it: from cdk.json's context (the environments
and the feature flags), with both cdk-nag packs. Environments without an account get
TEST_ACCOUNT through CDK_DEFAULT_ACCOUNT, so every test stack has an explicit account and region.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import CONTEXT_KEY, load_environments
from stacks.transcription_stack import TranscriptionStack
from tests.infra.helpers import TEST_ACCOUNT, Env

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod")

# A third environment that switches on what dev and prod leave off (an existing alarm topic,
# channels, alternatives, vocabulary, reserved concurrency, another Region).
VARIANT_CONTEXT = {
    "qa": {
        "account": "210987654321",
        "region": "eu-west-1",
        "job_name_prefix": "qa-scribe",
        "default_type": "DICTATION",
        "show_speaker_labels": False,
        "channel_identification": True,
        "max_alternatives": 3,
        "vocabulary_name": "cardiology-terms",
        "alarm_email": "oncall@example.com",
        "alarm_topic_arn": "arn:aws:sns:eu-west-1:210987654321:existing-oncall",
        "backlog_age_alarm_minutes": 60,
        "access_log_expiration_days": 90,
        "start_reserved_concurrency": 1,
        "start_max_concurrency": 3,
        "start_batch_size": 1,
        "log_retention_days": 7,
        "reconcile_interval_minutes": 15,
        "post_process_reserved_concurrency": 3,
        "low_confidence_threshold": 0.7,
    }
}

# Destinations in another Region for the replication variant (cdk.json ships none: they must
# exist before a deploy). The key is the one that encrypts the replicas there.
REPLICATION_SETTINGS = {
    "replication_input_bucket_arn": "arn:aws:s3:::medscribe-replica-input-us-west-2",
    "replication_output_bucket_arn": "arn:aws:s3:::medscribe-replica-output-us-west-2",
    "replication_kms_key_arn": (
        "arn:aws:kms:us-west-2:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ),
}
REPLICATED = "replicated"


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def synthesize(context: dict[str, Any], outdir: Path) -> tuple[App, dict[str, Env]]:
    """Build the app from `context` the way app.py does, and a Template for each stack."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CDK_DEFAULT_ACCOUNT", TEST_ACCOUNT)
        mp.delenv("CDK_CONTEXT_JSON", raising=False)
        app = build_app(App(context=context, outdir=str(outdir)))
    configs = {c.name: c for c in load_environments(context[CONTEXT_KEY])}
    envs = {}
    for child in app.node.children:
        if isinstance(child, TranscriptionStack):
            envs[child.config.name] = Env(
                config=configs[child.config.name],
                stack=child,
                template=Template.from_stack(child),
            )
    return app, envs


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, dict[str, Env]]:
    return synthesize(cdk_json_context(), tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def app(synthesized: tuple[App, dict[str, Env]]) -> App:
    return synthesized[0]


@pytest.fixture(scope="session")
def envs(synthesized: tuple[App, dict[str, Env]]) -> dict[str, Env]:
    return synthesized[1]


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, envs: dict[str, Env]) -> Env:
    return envs[request.param]


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Env:
    context = {**cdk_json_context(), CONTEXT_KEY: VARIANT_CONTEXT}
    _, envs = synthesize(context, tmp_path_factory.mktemp("cdk.out.variant"))
    return envs["qa"]


def replicated_context() -> dict[str, Any]:
    """cdk.json's context with one environment: prod's settings plus replication (the hardened
    configuration a team turning replication on would have)."""
    context = cdk_json_context()
    prod = context[CONTEXT_KEY]["prod"]
    return {**context, CONTEXT_KEY: {REPLICATED: {**prod, **REPLICATION_SETTINGS}}}


@pytest.fixture(scope="session")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """An environment with replication on (its own app; synthesized only if a test asks)."""
    _, envs = synthesize(replicated_context(), tmp_path_factory.mktemp("cdk.out.replicated"))
    return envs[REPLICATED]


@pytest.fixture(params=[*ENVIRONMENTS, "qa"])
def any_env(request: pytest.FixtureRequest, envs: dict[str, Env]) -> Env:
    """dev, prod and the variant environment (synthesized only if a test asks for it)."""
    if request.param == "qa":
        return request.getfixturevalue("variant")
    return envs[request.param]


@pytest.fixture(params=[*ENVIRONMENTS, "qa", REPLICATED])
def every_env(request: pytest.FixtureRequest, envs: dict[str, Env]) -> Env:
    """any_env's environments and the replicated one: for the compliance gates (nag, cfn-lint,
    checkov), which must hold for every setting a team can turn on."""
    if request.param in ("qa", REPLICATED):
        return request.getfixturevalue("variant" if request.param == "qa" else REPLICATED)
    return envs[request.param]
