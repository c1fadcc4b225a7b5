"""What `make local` prints must work verbatim: jobctl takes its Region from AWS_REGION (or
AWS_DEFAULT_REGION), lists input keys, and shows every timestamp in the index's one format."""

from __future__ import annotations

import pytest

from jobctl import jobs, render
from jobctl.cli import build_parser
from jobctl.resources import AwsSession
from tests.cli.conftest import Pipeline


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_comes_from_either_variable(monkeypatch, variable):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv(variable, "eu-central-1")
    assert AwsSession().region == "eu-central-1"


def test_region_flag_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert AwsSession(region="ap-southeast-2").region == "ap-southeast-2"


def test_jobctl_finds_its_jobs_with_only_aws_region_set(pipeline: Pipeline, monkeypatch):
    name = pipeline.completed("conversation/visit.wav")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    result = pipeline.cli("--outputs-file", str(pipeline.outputs_file), "status", name, where=False)
    assert result.code == 0, result.err
    assert "COMPLETED" in result.out


def test_list_shows_the_input_key(pipeline: Pipeline):
    pipeline.completed("conversation/visit-2026-11-02.wav")
    pipeline.rejected("dictation/phone-8k.wav")
    result = pipeline.cli("list")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert "INPUT" in header.split()
    assert any("conversation/visit-2026-11-02.wav" in row for row in rows)
    assert any("dictation/phone-8k.wav" in row for row in rows)


def test_a_long_input_key_keeps_its_end():
    key = "clinic/" + "x" * 80 + "/visit.wav"
    assert render.tail(key, 30).endswith("/visit.wav")
    assert len(render.tail(key, 30)) == 30


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-29T16:20:01.123456+00:00", "2026-11-29T16:20:01.123Z"),  # CompletionTime
        ("2026-11-29T16:20:01Z", "2026-11-29T16:20:01.000Z"),
        ("2026-11-29T16:20:01.123Z", "2026-11-29T16:20:01.123Z"),  # already the index's
        ("not a time", "not a time"),
    ],
)
def test_timestamps_are_shown_in_one_precision(value, shown):
    assert jobs.normalise_time(value) == shown


def test_status_shows_completed_at_like_the_other_timestamps(pipeline: Pipeline):
    name = pipeline.completed("conversation/visit.wav")
    pipeline.env.table.update_item(
        Key={"job_name": name},
        UpdateExpression="SET completed_at = :t",
        ExpressionAttributeValues={":t": "2026-11-29T16:20:01.123456+00:00"},
    )
    result = pipeline.cli("status", name)
    assert "2026-11-29T16:20:01.123Z" in result.out
    as_json = pipeline.cli("status", name, "--json")
    assert '"completed_at": "2026-11-29T16:20:01.123Z"' in as_json.out


def test_help_names_no_fixed_emulator_port():
    assert "5000" not in build_parser().format_help()
