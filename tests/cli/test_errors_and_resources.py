"""Finding the stack's resources, and every expected failure as one line and an exit code."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from jobctl import resources
from jobctl.cli import main
from tests.infra.conftest import REPO_ROOT

from .conftest import Pipeline

UNKNOWN = "medscribe-test-" + "f" * 40


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    assert err.startswith("jobctl: error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err.removeprefix("jobctl: error: ").strip()


# --- where the resources come from -----------------------------------------------------------


def test_flags_win_over_the_outputs_file(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    assert pipeline.cli("status", name).code == 0
    result = pipeline.cli("status", name, "--table", "no-such-table")
    assert result.code == 1
    assert one_line_error(result.err) == (
        "DynamoDB table no-such-table not found in us-east-1: check --table, --stack, "
        "--outputs-file and --region"
    )


def test_flags_alone_need_no_stack(pipeline: Pipeline, aws_calls):
    name = pipeline.queued("conversation/visit.wav")
    result = pipeline.cli("status", name, "--table", pipeline.stack.job_table, where=False)
    assert result.code == 0, result.err
    assert not any(call.startswith("cloudformation.") for call in aws_calls)


def test_outputs_file_without_the_needed_key(pipeline: Pipeline, tmp_path: Path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"MedicalTranscription-test": {"KmsKeyArn": "arn:x"}}))
    code = main(["--outputs-file", str(path), "status", UNKNOWN])
    err = pipeline.capsys.readouterr().err
    assert code == 1
    assert one_line_error(err) == (
        f"outputs file {path} (stack MedicalTranscription-test) has no output JobTableName; "
        "pass --table or redeploy the stack"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "is not readable JSON"),
        ('["a"]', "is not in `cdk deploy --outputs-file` format"),
        ('{"A": {}, "B": {}}', "holds stacks A, B: choose one with --stack"),
    ],
)
def test_bad_outputs_files(tmp_path: Path, capsys, content, message):
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "--outputs-file", str(path), "status", UNKNOWN)
    assert code == 1
    assert out == ""
    assert message in one_line_error(err)


def test_outputs_file_stack_chosen_by_name(pipeline: Pipeline, tmp_path: Path):
    name = pipeline.queued("conversation/visit.wav")
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"Other": {"JobTableName": "nope"}, "Mine": pipeline.outputs()}))
    result = pipeline.cli(
        "--region", "us-east-1", "--outputs-file", str(path), "--stack", "Mine", "status", name,
        where=False,
    )  # fmt: skip
    assert result.code == 0, result.err
    missing = pipeline.cli("--outputs-file", str(path), "--stack", "Gone", "status", name)
    assert "has no stack Gone (it has: Mine, Other)" in one_line_error(missing.err)


def test_stack_outputs_from_cloudformation(pipeline: Pipeline):
    name = pipeline.completed("conversation/visit.wav")
    # A stack whose outputs name the emulated resources (moto needs one resource to hold them).
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "mark"}}},
        "Outputs": {k: {"Value": v} for k, v in pipeline.outputs().items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="MedicalTranscription-dev", TemplateBody=json.dumps(template)
    )
    result = pipeline.cli("--region", "us-east-1", "status", name, where=False)
    assert result.code == 0, result.err
    assert "COMPLETED" in result.out


def test_stack_not_found_via_cloudformation(capsys):
    with mock_aws():
        code, out, err = run(capsys, "--region", "eu-west-1", "--stack", "Nope", "list")
    assert code == 1
    assert out == ""
    assert one_line_error(err) == (
        "stack Nope not found in eu-west-1: check --stack and --region, or pass --outputs-file "
        "or the resource flags (--table, ...)"
    )


def test_default_stack_name(capsys):
    with mock_aws():
        _, _, err = run(capsys, "--region", "us-east-1", "status", UNKNOWN)
    assert "stack MedicalTranscription-dev not found in us-east-1" in err


# --- errors ---------------------------------------------------------------------------------


def test_unknown_job_or_key(pipeline: Pipeline, tmp_path: Path):
    pipeline.queued("conversation/visit.wav")
    for ref in (UNKNOWN, "conversation/other.wav"):
        for command in ("status", "why", "retry", "delete", "download"):
            extra = [str(tmp_path / "d")] if command == "download" else []
            result = pipeline.cli(command, ref, *extra)
            assert result.code == 1, (command, result)
            assert one_line_error(result.err) == (
                f"no job named {ref!r} and no job for an input key {ref!r}"
            )


def test_no_credentials(capsys, monkeypatch, tmp_path: Path):
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, out, err = run(capsys, "--region", "us-east-1", "--table", "jobs", "status", UNKNOWN)
    assert code == 1
    assert out == ""
    assert one_line_error(err).startswith(
        "no AWS credentials found: configure a profile (--profile) or set AWS_ACCESS_KEY_ID"
    )


def test_unknown_profile(capsys, monkeypatch, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    code, _, err = run(capsys, "--profile", "nobody", "--table", "t", "status", UNKNOWN)
    assert code == 1
    assert one_line_error(err) == "AWS profile 'nobody' not found in your AWS config"


def test_endpoint_unreachable(capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(resources, "RETRY_CONFIG", Config(retries={"max_attempts": 1}))
    url = f"http://127.0.0.1:{port}"
    code, _, err = run(
        capsys, "--endpoint-url", url, "--region", "us-east-1", "--table", "t", "status", UNKNOWN
    )
    assert code == 1
    assert one_line_error(err) == (
        f"cannot reach {url}: check --endpoint-url (is the emulator running?) or your network"
    )


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["status"], ["list", "extra"], ["download", "job-only"]],
)
def test_usage_errors(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert one_line_error(err).endswith("--help`)")


def test_help_as_a_module(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "jobctl", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m jobctl")
    for command in ("status", "list", "why", "retry", "delete", "download"):
        assert command in result.stdout
    for option in ("--profile", "--region", "--endpoint-url", "--stack", "--outputs-file"):
        assert option in result.stdout


def test_jobctl_needs_neither_the_lambda_code_nor_the_devkit():
    probe = (
        "import sys, jobctl.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pipeline', 'devkit', 'stacks', 'moto', 'aws_cdk'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
