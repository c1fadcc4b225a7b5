"""cfn-lint on the synthesized templates: no errors, and no warning but CDK's explicit DependsOn."""

from __future__ import annotations

import json
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file

from tests.infra.helpers import Env

# W3005: CDK adds DependsOn on a function's role although Role: GetAtt already implies it.
ACCEPTED_WARNINGS = {"W3005"}


def test_templates_pass_cfn_lint(every_env: Env, tmp_path: Path) -> None:
    template = tmp_path / f"{every_env.stack.stack_name}.template.json"
    template.write_text(json.dumps(every_env.template.to_json()))
    matches = lint_file(template, ManualArgs(regions=[every_env.config.region]))
    problems = [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in matches
        if m.rule.id not in ACCEPTED_WARNINGS
    ]
    assert problems == []
    assert all(m.rule.severity != "error" for m in matches)
