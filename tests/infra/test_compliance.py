"""Compliance gate: the three cdk-nag packs pass on the whole app, the acknowledgements are
exactly the reviewed list, each has a reason, and each answers a finding that really exists
(none is stale or too broad)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, PolicyValidationPluginReport
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from app import build_app
from stacks import compliance
from tests.infra.conftest import cdk_json_context, replicated_context
from tests.infra.helpers import TEST_ACCOUNT, Env

BOTH = ("HIPAA.Security", "NIST.800.53.R5")
FUNCTIONS = ("Ingest/StartJob", "Completion/PostProcess", "Completion/Reconcile")
NOTIFICATIONS = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def iam4(policy: str) -> str:
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]"


def expected_acknowledgements(env: Env) -> set[tuple[str, str]]:
    """The reviewed list: (construct path under the stack, finding). Tokens in wildcard
    findings are written <Arn> (the bucket's logical ID varies by nothing we choose)."""
    config = env.config
    job_arn = (
        f"arn:aws:transcribe:{config.region}:{env.stack.account}:"
        f"medical-transcription-job/{config.job_name_prefix}*"
    )
    acks = {
        (f"{NOTIFICATIONS}/Role/Resource", iam4("AWSLambdaBasicExecutionRole")),
        *(
            ("Storage/InputBucket/Notifications/HandlerPolicy", f"{p}-IAMNoInlinePolicy")
            for p in BOTH
        ),
        *(("Storage/AccessLogBucket", f"{p}-S3DefaultEncryptionKMS") for p in BOTH),
        *(("Storage/AccessLogBucket", f"{p}-S3BucketReplicationEnabled") for p in BOTH),
        *(("Ingest/StartJob/Function", f"{p}-LambdaDLQ") for p in BOTH),
    }
    if not config.replication:
        for bucket in ("Storage/InputBucket", "Storage/OutputBucket"):
            acks |= {(bucket, f"{p}-S3BucketReplicationEnabled") for p in BOTH}
    else:
        # Each bucket's replication role: its own bucket's versions, its one destination.
        for bucket, destination in (
            ("InputBucket", config.replication_input_bucket_arn),
            ("OutputBucket", config.replication_output_bucket_arn),
        ):
            policy = f"Storage/{bucket}Replication/Policy/Resource"
            acks |= {
                (policy, f"AwsSolutions-IAM5[Resource::{w}]")
                for w in ("<Arn>/*", f"{destination}/*")
            }
    if config.backup_plan:
        acks |= {
            ("Backup/Role/Resource", iam4(f"AWSBackupServiceRolePolicyFor{name}"))
            for name in ("Backup", "Restores", "S3Backup", "S3Restore")
        }
    else:
        acks |= {("Storage/JobTable", f"{p}-DynamoDBInBackupPlan") for p in BOTH}
    if config.vpc:
        acks |= {("Network/Vpc", f"{p}-VPCDefaultSecurityGroupClosed") for p in BOTH}
    reserved = {
        "Ingest/StartJob": config.start_reserved_concurrency,
        "Completion/PostProcess": config.post_process_reserved_concurrency,
        "Completion/Reconcile": None,
    }
    for fn in FUNCTIONS:
        acks.add((f"{fn}/Function", "AwsSolutions-L1"))
        if not config.vpc:
            acks |= {(f"{fn}/Function", f"{p}-LambdaInsideVPC") for p in BOTH}
        if reserved[fn] is None:
            acks |= {(f"{fn}/Function", f"{p}-LambdaConcurrency") for p in BOTH}
        wildcards = ["*", "<Arn>/*", "<Arn>/medical/*", job_arn]
        if fn != "Ingest/StartJob":
            wildcards.append("<Arn>/transcripts/*")
        acks |= {(f"{fn}/Policy/Resource", f"AwsSolutions-IAM5[Resource::{w}]") for w in wildcards}
    return acks


def test_acknowledgements_are_exactly_the_reviewed_list(every_env: Env) -> None:
    # A new acknowledgement (or one left behind after a fix) fails here.
    stack_path = every_env.stack.node.path
    actual = {
        (path.removeprefix(f"{stack_path}/"), re.sub(r"<[A-Za-z0-9]+\.Arn>", "<Arn>", rule))
        for path, rules in compliance.acknowledgements(every_env.stack).items()
        for rule in rules
    }
    assert actual == expected_acknowledgements(every_env)


def test_replication_replaces_the_replication_acknowledgement(replicated: Env) -> None:
    # With replication on, the data buckets meet S3BucketReplicationEnabled instead of
    # acknowledging it, and each new wildcard is acknowledged on its own role's policy with
    # the reason for that wildcard.
    acknowledged = compliance.acknowledgements(replicated.stack)
    stack_path = replicated.stack.node.path
    for bucket in ("InputBucket", "OutputBucket"):
        assert f"{stack_path}/Storage/{bucket}" not in acknowledged
        rules = acknowledged[f"{stack_path}/Storage/{bucket}Replication/Policy/Resource"]
        assert set(rules.values()) == {
            compliance.REPLICATION_SOURCE_VERSIONS,
            compliance.REPLICATION_DESTINATION_OBJECTS,
        }


PACKS = (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks)


def findings(report: PolicyValidationPluginReport) -> set[tuple[str, str]]:
    """(rule, construct path of the CloudFormation resource) for every violation."""
    return {
        (violation.rule_name, resource.construct_path or "")
        for violation in report.violations
        for resource in violation.violating_resources
    }


def test_app_synthesizes_with_the_three_nag_packs(app: App) -> None:
    # A violation fails synth, so a synthesized assembly means none is left unacknowledged.
    assembly = app.synth(force=True)
    assert {s.stack_name for s in assembly.stacks} == {
        "MedicalTranscription-dev",
        "MedicalTranscription-prod",
    }
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    assert report["pluginReports"] == []


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.__name__)
def test_no_unacknowledged_finding(app: App, pack: type) -> None:
    report = pack().validate_scope(app)
    assert report.success, sorted(findings(report))
    assert findings(report) == set()


def test_replicated_app_synthesizes_with_the_three_nag_packs(replicated: Env) -> None:
    # The replicated environment's own app: a violation would fail its synth.
    app = replicated.stack.node.root
    assert isinstance(app, App)
    assembly = app.synth(force=True)
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    for pack in PACKS:
        assert findings(pack().validate_scope(app)) == set()


def test_every_acknowledgement_has_a_reason(app: App) -> None:
    acknowledged = compliance.acknowledgements(app)
    assert acknowledged
    for path, rules in acknowledged.items():
        for rule, reason in rules.items():
            assert reason.strip(), (path, rule)
            # A reason is an argument, not a label.
            assert len(reason.split()) >= 12, (path, rule, reason)


@pytest.mark.parametrize("app_name", ["cdk.json", "replicated"])
def test_acknowledgements_match_real_findings(
    app_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the same app built without acknowledgements, when both packs check it, then every
    # finding is acknowledged at its resource or an ancestor, and every acknowledgement answers
    # at least one finding (nothing acknowledged that does not occur).
    if app_name == "cdk.json":
        context = cdk_json_context()
        stacks = [env.stack for env in request.getfixturevalue("envs").values()]
    else:
        context = replicated_context()
        stacks = [request.getfixturevalue("replicated").stack]
    acknowledged = {
        (rule, path)
        for stack in stacks
        for path, rules in compliance.acknowledgements(stack).items()
        for rule in rules
    }

    monkeypatch.setattr(compliance, "acknowledge", lambda _stack: None)
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", TEST_ACCOUNT)
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    bare = build_app(App(context=context, outdir=str(tmp_path)))
    raw = set().union(*(findings(pack().validate_scope(bare)) for pack in PACKS))

    def covers(ack: tuple[str, str], finding: tuple[str, str]) -> bool:
        (ack_rule, ack_path), (rule, path) = ack, finding
        return ack_rule == rule and (path == ack_path or path.startswith(f"{ack_path}/"))

    unacknowledged = {f for f in raw if not any(covers(a, f) for a in acknowledged)}
    unused = {a for a in acknowledged if not any(covers(a, f) for f in raw)}
    assert unacknowledged == set()
    assert unused == set()
