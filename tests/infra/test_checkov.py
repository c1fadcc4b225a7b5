"""checkov on every synthesized template (dev, prod, the variant and the replicated
environment): no failed check, and
every skip is one of the reviewed decisions below, recorded in its resource's Metadata with
its reason (checkov's own `checkov: skip:` convention)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks import compliance
from tests.infra.checkov_runner import run_checkov
from tests.infra.helpers import Env

pytestmark = pytest.mark.synth  # installs checkov on first run

# The exact skips per environment, by the construct that carries them.
NOTIFICATIONS = {
    "CKV_AWS_115": compliance.NOTIFICATIONS_HANDLER,
    "CKV_AWS_116": compliance.NOTIFICATIONS_HANDLER,
    "CKV_AWS_117": compliance.NOTIFICATIONS_HANDLER,
}


def expected_skips(env: Env) -> dict[str, dict[str, str]]:
    stack, config = env.stack, env.config
    functions = {
        stack.ingest.start: config.start_reserved_concurrency,
        stack.completion.post_process: config.post_process_reserved_concurrency,
        stack.completion.reconcile: None,
    }
    expected: dict[str, dict[str, str]] = {
        env.logical_id(stack.storage.access_log_bucket): {
            "CKV_AWS_18": compliance.ACCESS_LOG_BUCKET_LOGGING
        },
    }
    for fn, reserved in functions.items():
        skips = {}
        if not config.vpc:
            skips["CKV_AWS_117"] = compliance.NO_VPC
        else:
            expected[env.logical_id(fn.policy)] = {"CKV_AWS_111": compliance.VPC_ACCESS}
        if reserved is None:
            skips["CKV_AWS_115"] = compliance.NO_RESERVED_CONCURRENCY
        if fn is stack.ingest.start:
            skips["CKV_AWS_116"] = compliance.START_DLQ
        if skips:
            expected[env.logical_id(fn.function)] = skips
    (handler_id,) = env.template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Description": Match.string_like_regexp("Custom::S3BucketNotifications")}},
    )
    expected[handler_id] = NOTIFICATIONS
    return expected


@pytest.fixture(scope="module")
def checkov_reports(
    envs: dict[str, Env],
    variant: Env,
    replicated: Env,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """One checkov run over all four templates (checkov's start-up dominates its run time)."""
    folder = tmp_path_factory.mktemp("checkov")
    paths = {}
    for env in [*envs.values(), variant, replicated]:
        path = folder / f"{env.stack.stack_name}.template.json"
        path.write_text(json.dumps(env.template.to_json()))
        paths[env.config.name] = path
    reports = run_checkov(list(paths.values()))
    by_env: dict[str, dict[str, Any]] = {
        name: {"failed": [], "skipped": [], "passed": 0} for name in paths
    }
    for report in reports:
        for status in ("failed", "skipped"):
            for check in report["results"].get(f"{status}_checks", []):
                name = next(n for n, p in paths.items() if Path(check["file_path"]).name == p.name)
                by_env[name][status].append(check)
        for check in report["results"].get("passed_checks", []):
            name = next(n for n, p in paths.items() if Path(check["file_path"]).name == p.name)
            by_env[name]["passed"] += 1
    return by_env


def test_no_failed_checkov_check(
    every_env: Env, checkov_reports: dict[str, dict[str, Any]]
) -> None:
    report = checkov_reports[every_env.config.name]
    failed = [(c["check_id"], c["resource"]) for c in report["failed"]]
    assert failed == []
    assert report["passed"] > 100  # checkov really ran its CloudFormation checks


def test_skips_are_exactly_the_reviewed_ones(every_env: Env) -> None:
    # Given the synthesized template, then its checkov skips are exactly the reviewed list:
    # a new skip (or a skip left behind after a fix) fails here.
    assert compliance.checkov_skips(every_env.template.to_json()) == expected_skips(every_env)


def test_checkov_honours_each_skip(
    every_env: Env, checkov_reports: dict[str, dict[str, Any]]
) -> None:
    skipped = {
        (c["resource"].split(".", 1)[1], c["check_id"])
        for c in checkov_reports[every_env.config.name]["skipped"]
    }
    declared = {
        (logical_id, check)
        for logical_id, checks in compliance.checkov_skips(every_env.template.to_json()).items()
        for check in checks
    }
    # checkov found and applied every skip the template declares, and no other.
    assert skipped == declared


def test_every_skip_has_a_reason(every_env: Env) -> None:
    for logical_id, checks in compliance.checkov_skips(every_env.template.to_json()).items():
        for check, reason in checks.items():
            assert len(reason.split()) >= 12, (logical_id, check, reason)
