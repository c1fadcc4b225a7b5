"""jobctl on moto: real job states made by the project's own handlers and emulator.

The emulated environment comes from tests/handlers/conftest.py (`make_env`, whose teardown
resets moto's transcribe state manager and the handlers' cached settings and clients).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

import post_process
import start_job
from devkit.lambda_events import s3_notification, transcribe_state_change
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator
from jobctl import resources
from jobctl.cli import main
from tests.handlers.conftest import Env, make_env  # noqa: F401 - make_env is a fixture

# Long enough for SCRIPT: the emulator's words stop at the audio's end.
WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=10.0)
LOW_RATE_WAV = wav_bytes(sample_rate=8000, channels=1, duration_s=1.0)  # REJECTED
DOCUMENTS = ("transcript.txt", "dialogue.txt", "captions.vtt", "captions.srt", "summary.json")
SCRIPT = (
    (0, "Good morning, what brings you in today?"),
    (1, "My knee hurts when I climb stairs."),
)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Pipeline:
    """One emulated environment with helpers that put jobs into each state through the real
    start and post-process handlers, and run jobctl against it."""

    def __init__(
        self, env: Env, lambda_context: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        self.env = env
        self.stack = env.stack
        self.lambda_context = lambda_context
        self.capsys = capsys
        self.emulator = TranscribeMedicalEmulator(s3=env.s3)
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.outputs_file = tmp_path / "outputs.json"
        self.outputs_file.write_text(json.dumps({self.stack.config.stack_name: self.outputs()}))

    def outputs(self) -> dict[str, str]:
        """What `cdk deploy --outputs-file` would write for this stack."""
        return {
            "JobTableName": self.stack.job_table,
            "InputBucketName": self.stack.input_bucket,
            "OutputBucketName": self.stack.output_bucket,
            "IngestQueueUrl": self.stack.ingest_queue_url,
            "KmsKeyArn": self.stack.key_arn,
        }

    # --- jobctl --------------------------------------------------------------------------

    def cli(self, *args: str, where: bool = True) -> Result:
        """Run jobctl; `where` adds the Region and this stack's outputs file."""
        self.capsys.readouterr()  # drop whatever the handlers printed
        location = ["--region", "us-east-1", "--outputs-file", str(self.outputs_file)]
        code = main([*(location if where else []), *args])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    # --- making jobs -----------------------------------------------------------------------

    def upload(
        self, key: str, body: bytes = WAV, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Put the object (with S3 user metadata, if given) and return S3's notification."""
        if metadata is None:
            return self.env.put(key, body)
        response = self.env.s3.put_object(
            Bucket=self.stack.input_bucket, Key=key, Body=body, Metadata=metadata
        )
        return s3_notification(
            bucket=self.stack.input_bucket,
            key=key,
            size=len(body),
            version_id=response.get("VersionId"),
            etag=response["ETag"].strip('"'),
        )

    def deliver(self, note: dict[str, Any]) -> dict[str, Any]:
        return dict(start_job.handler(self.env.event(note), self.lambda_context))

    def start(self, key: str, body: bytes = WAV, metadata: dict[str, str] | None = None) -> str:
        """Upload and run the start handler; the job's name."""
        note = self.upload(key, body, metadata)
        self.deliver(note)
        version = note["Records"][0]["s3"]["object"].get("versionId")
        (item,) = [
            i
            for i in self.env.items()
            if i["input_key"] == key and i.get("input_version") == version
        ]
        return str(item["job_name"])

    def finish(self, name: str, status: str) -> None:
        event = transcribe_state_change(job_name=name, status=status)
        post_process.handler(event, self.lambda_context)

    def completed(self, key: str, metadata: dict[str, str] | None = None) -> str:
        name = self.start(key, metadata=metadata)
        self.emulator.complete(name, utterances=SCRIPT)
        self.finish(name, "COMPLETED")
        assert self.env.item(name)["status"] == "COMPLETED"
        return name

    def failed(self, key: str, reason: str = "Invalid sample rate for audio file.") -> str:
        name = self.start(key)
        self.emulator.fail(name, reason)
        self.finish(name, "FAILED")
        assert self.env.item(name)["status"] == "FAILED"
        return name

    def rejected(self, key: str) -> str:
        name = self.start(key, LOW_RATE_WAV)
        assert self.env.item(name)["status"] == "REJECTED"
        return name

    def pending(self, key: str) -> str:
        """A job left in the backlog. It stays PENDING only until the next dispatch: the
        start handler dispatches after any new upload, oldest first, so a later `start`
        in the same test starts this job too. Make it the test's last upload."""
        # Every attempt of the client's retries is refused: the job goes back to the backlog.
        self.env.fail_transcribe("LimitExceededException", times=3)
        name = self.start(key)
        assert self.env.item(name)["status"] == "PENDING"
        # The dispatcher now backs off; later jobs of the same test should start at once.
        self.env.table.update_item(
            Key={"job_name": "#capacity"}, UpdateExpression="REMOVE backoff_until, limit_streak"
        )
        return name

    def queued(self, key: str) -> str:
        name = self.start(key)
        assert self.env.item(name)["status"] == "QUEUED"
        return name

    # --- looking at AWS --------------------------------------------------------------------

    def item(self, name: str) -> dict[str, Any] | None:
        return self.env.table.get_item(Key={"job_name": name}, ConsistentRead=True).get("Item")

    def backdate(self, name: str, created_at: str) -> None:
        self.env.table.update_item(
            Key={"job_name": name},
            UpdateExpression="SET created_at = :c",
            ExpressionAttributeValues={":c": created_at},
        )

    def drain_queue(self) -> list[dict[str, Any]]:
        """Every message in the ingest queue (S3's own notifications included), removed."""
        bodies: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.stack.ingest_queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.stack.ingest_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def transcribe_has(self, name: str) -> bool:
        return name in self.emulator.job_names()

    def output_versions(self, prefix: str = "") -> list[tuple[str, bool]]:
        """(key, is delete marker) of every version in the output bucket under prefix."""
        listing = self.env.s3.list_object_versions(Bucket=self.stack.output_bucket, Prefix=prefix)
        return [(v["Key"], False) for v in listing.get("Versions", [])] + [
            (m["Key"], True) for m in listing.get("DeleteMarkers", [])
        ]


@pytest.fixture
def pipeline(
    make_env: Callable[..., Env],  # noqa: F811 - the fixture imported above
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Pipeline:
    return Pipeline(make_env(), lambda_context, capsys, tmp_path)


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The AWS operations jobctl makes (`Service.Operation`), in order."""
    calls: list[str] = []
    original = resources.AwsSession.client

    def recording_client(self: resources.AwsSession, service: str) -> Any:
        fresh = service not in self._clients
        client = original(self, service)
        if fresh:
            client.meta.events.register(
                "before-call",
                lambda model, **_: calls.append(f"{model.service_model.service_name}.{model.name}"),
            )
        return client

    monkeypatch.setattr(resources.AwsSession, "client", recording_client)
    return calls


class FakeTerminal(io.StringIO):
    """stdin as a terminal that types `answer`."""

    def isatty(self) -> bool:
        return True
