"""status, list and why: reading the job index through its key and its two indexes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from jobctl.jobs import index_time, parse_since

from .conftest import Pipeline


def flat(text: str) -> str:
    """Output with line wrapping undone."""
    return " ".join(text.split())


def ago(**delta: float) -> str:
    return index_time(datetime.now(UTC) - timedelta(**delta))


# --- status ---------------------------------------------------------------------------------


def test_status_by_job_name_shows_the_item(pipeline: Pipeline):
    name = pipeline.completed("conversation/clinic/visit 1.wav")
    result = pipeline.cli("status", name)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["job", name]
    assert lines[1].split() == ["status", "COMPLETED"]
    assert f"s3://{pipeline.stack.input_bucket}/conversation/clinic/visit 1.wav" in result.out
    assert "CONVERSATION (PRIMARYCARE)" in result.out
    for label in ("created", "updated", "completed", "media", "stats", "transcript", "outputs"):
        assert any(line.startswith(label) for line in lines), label
    assert "wav, 16,000 Hz, 1 channel, 16-bit, 10.0s" in result.out
    assert "2 speakers" in result.out
    flat_out = " ".join(result.out.split())  # long keys wrap
    for doc in ("transcript.txt", "captions.srt", "summary.json"):
        # One folder per job: the input key, then its version (contract 3)
        assert re.search(rf"transcripts/conversation/clinic/visit ?1\.wav/[^/ ]+/{doc}", flat_out)
    assert f"medical/{name}.json" in result.out
    assert "reason" not in result.out
    assert result.err == ""


def test_status_json_is_the_item(pipeline: Pipeline):
    name = pipeline.completed("conversation/visit.wav")
    result = pipeline.cli("status", name, "--json")
    assert result.code == 0
    item = json.loads(result.out)
    stored = pipeline.item(name)
    assert stored is not None
    assert item["job_name"] == name
    assert item["status"] == "COMPLETED"
    assert item["outputs"] == stored["outputs"]
    assert item["stats"]["words"] == int(stored["stats"]["words"]) > 0
    assert isinstance(item["stats"]["mean_confidence"], float)


def test_status_by_input_key_picks_the_newest_version_and_says_so(pipeline: Pipeline):
    first = pipeline.failed("conversation/visit.wav")
    second = pipeline.completed("conversation/visit.wav")  # a new version: a new job
    pipeline.backdate(first, ago(hours=1))
    result = pipeline.cli("status", "conversation/visit.wav")
    assert result.code == 0
    assert result.out.splitlines()[0].split() == ["job", second]
    assert "input key matched 2 jobs" in result.err
    assert f"using the newest, {second}" in result.err
    assert f"{first} (FAILED" in result.err


def test_status_by_input_key_with_one_job(pipeline: Pipeline):
    name = pipeline.rejected("dictation/8khz.wav")
    result = pipeline.cli("status", "dictation/8khz.wav")
    assert result.code == 0
    assert name in result.out
    assert "REJECTED" in result.out
    assert "8000 Hz" in result.out  # the reason
    assert result.err == f"note: input key matched job {name}\n"


def test_status_of_an_unknown_job(pipeline: Pipeline):
    result = pipeline.cli("status", "medscribe-test-" + "0" * 40)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("jobctl: error: no job named")
    assert len(result.err.splitlines()) == 1


def test_location_options_may_follow_the_command(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    result = pipeline.cli(
        "status", name, "--region", "us-east-1", "--outputs-file", str(pipeline.outputs_file),
        where=False,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "QUEUED" in result.out


# --- list -----------------------------------------------------------------------------------


def make_mixed(pipeline: Pipeline) -> dict[str, str]:
    names = {
        "completed": pipeline.completed("conversation/a.wav"),
        "failed": pipeline.failed("conversation/b.wav"),
        "rejected": pipeline.rejected("conversation/c.wav"),
        "queued": pipeline.queued("conversation/e.wav"),
        # Last: any later upload's dispatch would start it (the backlog is served oldest first)
        "pending": pipeline.pending("conversation/d.wav"),
    }
    # Distinct, known creation times: completed newest ... queued oldest.
    for hours, which in enumerate(["completed", "failed", "rejected", "pending", "queued"]):
        pipeline.backdate(names[which], ago(hours=hours + 1))
    return names


def table_rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


def test_list_shows_every_status_newest_first_without_scanning(pipeline: Pipeline, aws_calls):
    names = make_mixed(pipeline)
    result = pipeline.cli("list")
    assert result.code == 0, result.err
    header = result.out.splitlines()[0].split()
    assert header == [
        "JOB", "NAME", "INPUT", "STATUS", "TYPE", "CREATED", "DURATION", "WORDS", "REASON"
    ]  # fmt: skip
    rows = table_rows(result.out)
    assert [r[0] for r in rows] == [
        names[k] for k in ("completed", "failed", "rejected", "pending", "queued")
    ]
    assert [r[2] for r in rows] == ["COMPLETED", "FAILED", "REJECTED", "PENDING", "QUEUED"]
    completed = rows[0]
    assert completed[1] == "conversation/a.wav"
    # One duration, as in the demo's table and summary.json: the transcript's once there is
    # one (its words end before the 10 s of audio do), else the media header's.
    stats = pipeline.item(names["completed"])["stats"]  # type: ignore[index]
    assert float(stats["duration_s"]) < 10.0
    assert completed[5] == f"{float(stats['duration_s']):.1f}s"
    assert rows[4][5] == "10.0s"  # QUEUED: no transcript yet
    assert int(completed[6]) > 0
    assert rows[1][7].startswith("The")  # the failure reason, truncated
    assert result.out.splitlines()[2].endswith("...")
    assert "dynamodb.Scan" not in aws_calls
    assert aws_calls.count("dynamodb.Query") == 6  # one per status


def test_list_by_status_uses_the_by_status_index(pipeline: Pipeline, aws_calls):
    names = make_mixed(pipeline)
    result = pipeline.cli("list", "--status", "failed", "--status", "REJECTED")
    assert result.code == 0
    assert [r[0] for r in table_rows(result.out)] == [names["failed"], names["rejected"]]
    assert aws_calls.count("dynamodb.Query") == 2


def test_list_since_relative_and_iso(pipeline: Pipeline):
    names = make_mixed(pipeline)
    pipeline.backdate(names["queued"], ago(days=3))
    recent = pipeline.cli("list", "--since", "150m")
    assert [r[0] for r in table_rows(recent.out)] == [names["completed"], names["failed"]]
    last_two_days = pipeline.cli("list", "--since", "2d")
    assert names["queued"] not in last_two_days.out
    assert len(table_rows(last_two_days.out)) == 4
    cutoff = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    everything = pipeline.cli("list", "--since", cutoff, "--status", "QUEUED")
    assert [r[0] for r in table_rows(everything.out)] == [names["queued"]]


def test_list_limit_keeps_the_newest_and_says_more_match(pipeline: Pipeline):
    names = make_mixed(pipeline)
    result = pipeline.cli("list", "--limit", "2")
    assert [r[0] for r in table_rows(result.out)] == [names["completed"], names["failed"]]
    assert "showing the newest 2; more match" in result.err
    exact = pipeline.cli("list", "--limit", "5")
    assert exact.err == ""


def test_list_json_and_empty(pipeline: Pipeline):
    assert pipeline.cli("list").out == "no jobs found\n"
    name = pipeline.queued("conversation/a.wav")
    items = json.loads(pipeline.cli("list", "--json").out)
    assert [i["job_name"] for i in items] == [name]


@pytest.mark.parametrize(
    "args",
    [["--since", "yesterday"], ["--limit", "0"], ["--status", "DONE"], ["--limit", "x"]],
)
def test_list_usage_errors_exit_2_in_one_line(pipeline: Pipeline, args):
    result = pipeline.cli("list", *args)
    assert result.code == 2
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("jobctl: error: argument")


def test_parse_since():
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now=now) == "2025-06-01T10:00:00.000Z"
    assert parse_since("3d", now=now) == "2025-05-29T12:00:00.000Z"
    assert parse_since("90M", now=now) == "2025-06-01T10:30:00.000Z"
    assert parse_since("2025-05-01") == "2025-05-01T00:00:00.000Z"
    assert parse_since("2025-05-01T08:30:00Z") == "2025-05-01T08:30:00.000Z"
    assert parse_since("2025-05-01T10:30:00+02:00") == "2025-05-01T08:30:00.000Z"
    with pytest.raises(ValueError, match="relative time"):
        parse_since("last week")


# --- why ------------------------------------------------------------------------------------


def test_why_rejected_gives_the_reason_and_the_fix(pipeline: Pipeline):
    name = pipeline.rejected("conversation/8khz.wav")
    result = pipeline.cli("why", name)
    assert result.code == 0
    assert "REJECTED: the pipeline did not send this file to Transcribe." in flat(result.out)
    assert "8000 Hz" in flat(result.out)
    assert "upload it again" in flat(result.out)
    assert f"jobctl retry {name}" in flat(result.out)


def test_why_failed_gives_transcribes_reason_and_retry(pipeline: Pipeline):
    name = pipeline.failed("conversation/visit.wav", "Invalid sample rate for audio file.")
    result = pipeline.cli("why", name)
    assert "FAILED" in flat(result.out)
    assert "Resample it to 16 kHz" in flat(result.out)
    assert "Invalid sample rate for audio file." in flat(result.out)
    assert f"jobctl retry {name}" in flat(result.out)


def test_why_pending_after_throttling_is_waiting_for_capacity(pipeline: Pipeline):
    name = pipeline.pending("conversation/visit.wav")
    result = pipeline.cli("why", name)
    assert "PENDING: waiting for Transcribe capacity." in flat(result.out)
    assert re.search(r"\d+ start attempt\(s\)", flat(result.out))


def test_why_pending_never_attempted(pipeline: Pipeline):
    name = pipeline.pending("conversation/visit.wav")
    pipeline.env.table.update_item(
        Key={"job_name": name},
        UpdateExpression="SET attempts = :z",
        ExpressionAttributeValues={":z": 0},
    )
    assert "accepted, not started yet" in flat(pipeline.cli("why", name).out)


def test_why_open_job_asks_transcribe(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    result = pipeline.cli("why", name)
    assert "QUEUED: Transcribe has accepted the job" in flat(result.out)
    assert "Transcribe reports QUEUED." in flat(result.out)
    # Transcribe finished but no event arrived: the index lags behind
    pipeline.emulator.complete(name, utterances=())
    lagging = pipeline.cli("why", name)
    assert "Transcribe reports COMPLETED." in flat(lagging.out)
    assert "the index has not caught up" in flat(lagging.out)
    # Transcribe lost it
    pipeline.env.transcribe.delete_medical_transcription_job(MedicalTranscriptionJobName=name)
    assert "Transcribe has no record of this job" in flat(pipeline.cli("why", name).out)


def test_why_completed(pipeline: Pipeline):
    name = pipeline.completed("conversation/visit.wav")
    result = pipeline.cli("why", name)
    assert result.out.splitlines()[1].startswith("COMPLETED at ")
    assert f"jobctl download {name} DIR" in flat(result.out)
