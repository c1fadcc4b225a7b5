"""Compliance gate: both cdk-nag packs pass on the whole app, every acknowledgement has a reason,
and every acknowledgement answers a finding that really exists (none is stale or too broad)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, PolicyValidationPluginReport
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks

from app import build_app
from stacks import compliance
from tests.infra.conftest import cdk_json_context
from tests.infra.helpers import TEST_ACCOUNT, Env

PACKS = (AwsSolutionsChecks, HIPAASecurityChecks)


def findings(report: PolicyValidationPluginReport) -> set[tuple[str, str]]:
    """(rule, construct path of the CloudFormation resource) for every violation."""
    return {
        (violation.rule_name, resource.construct_path or "")
        for violation in report.violations
        for resource in violation.violating_resources
    }


def test_app_synthesizes_with_both_nag_packs(app: App) -> None:
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


def test_every_acknowledgement_has_a_reason(app: App) -> None:
    acknowledged = compliance.acknowledgements(app)
    assert acknowledged
    for path, rules in acknowledged.items():
        for rule, reason in rules.items():
            assert reason.strip(), (path, rule)
            # A reason is an argument, not a label.
            assert len(reason.split()) >= 12, (path, rule, reason)


def test_acknowledgements_match_real_findings(
    envs: dict[str, Env], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same app built without acknowledgements, when both packs check it, then every
    # finding is acknowledged at its resource or an ancestor, and every acknowledgement answers
    # at least one finding (nothing acknowledged that does not occur).
    acknowledged = {
        (rule, path)
        for env in envs.values()
        for path, rules in compliance.acknowledgements(env.stack).items()
        for rule in rules
    }

    monkeypatch.setattr(compliance, "acknowledge", lambda _stack: None)
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", TEST_ACCOUNT)
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    bare = build_app(App(context=cdk_json_context(), outdir=str(tmp_path)))
    raw = set().union(*(findings(pack().validate_scope(bare)) for pack in PACKS))

    def covers(ack: tuple[str, str], finding: tuple[str, str]) -> bool:
        (ack_rule, ack_path), (rule, path) = ack, finding
        return ack_rule == rule and (path == ack_path or path.startswith(f"{ack_path}/"))

    unacknowledged = {f for f in raw if not any(covers(a, f) for a in acknowledged)}
    unused = {a for a in acknowledged if not any(covers(a, f) for f in raw)}
    assert unacknowledged == set()
    assert unused == set()
