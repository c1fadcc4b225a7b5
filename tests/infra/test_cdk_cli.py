"""`cdk synth` through the pinned CLI, offline and without AWS credentials (slow: one test)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT


@pytest.mark.synth
def test_cdk_synth_with_the_pinned_cli(tmp_path: Path) -> None:
    bin_dir = REPO_ROOT / "node_modules" / ".bin"
    cli = bin_dir / "cdk"
    if not cli.exists():
        pytest.skip("the pinned CDK CLI is not installed (npm ci)")
    # No credentials, no profile, no instance metadata: synth must not need an account.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    outdir = tmp_path / "cdk.out"
    result = subprocess.run(
        [str(cli), "synth", "--quiet", "--no-notices", "-o", str(outdir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        name: artifact
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert set(stacks) == {"MedicalTranscription-dev", "MedicalTranscription-prod"}
    assert stacks["MedicalTranscription-prod"]["properties"]["terminationProtection"] is True
    assert stacks["MedicalTranscription-prod"]["environment"] == "aws://111111111111/us-east-1"
    # Without credentials, dev (no account in cdk.json) is environment-agnostic on the account.
    assert stacks["MedicalTranscription-dev"]["environment"] == "aws://unknown-account/us-east-1"
    for name in stacks:
        assert (outdir / f"{name}.template.json").exists()
