"""`make local` end to end over HTTP: the module in a subprocess, driven only by the
commands it prints, run verbatim in a shell as a person would run them in another terminal."""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 90


class LocalStack:
    """The running `python -m devkit.local_stack` and what it has printed so far."""

    def __init__(self, out: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devkit.local_stack", "--port", "0", "--out", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches it alone
        )
        self.lines: list[str] = []
        self._fresh: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._fresh.put(line)

    def wait_for(self, pattern: str) -> str:
        """The first printed line matching `pattern` (already printed or yet to come)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + WAIT_S
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if regex.search(line):
                    return line
            seen = len(self.lines)
            if self.process.poll() is not None and self._fresh.empty():
                break
            try:
                self._fresh.get(timeout=0.5)
            except queue.Empty:
                continue
        raise AssertionError(f"no line matching {pattern!r}; printed:\n" + "\n".join(self.lines))

    def printed_commands(self) -> tuple[str, list[str]]:
        """The setup line and the example commands, exactly as printed."""
        self.wait_for("^Job changes:")
        text = self.lines[: self.lines.index("Job changes:")]
        setup = text[text.index("In another terminal, first:") + 1].strip()
        start = text.index("then, for example:") + 1
        commands = [
            line.strip() for line in text[start:] if line.startswith("  ") and "# " not in line
        ]
        return setup, commands

    def interrupt(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)


def run(setup: str, command: str) -> subprocess.CompletedProcess[str]:
    """One printed command, verbatim, after the printed setup line, in a fresh shell."""
    if command.startswith("aws ") and shutil.which("aws") is None:
        return _aws_without_the_cli(command)
    return subprocess.run(
        ["bash", "-c", f"{setup} && {command}"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _aws_without_the_cli(command: str) -> subprocess.CompletedProcess[str]:
    """Where the AWS CLI is not installed: the same S3 call through boto3."""
    words = shlex.split(command)
    endpoint = words[words.index("--endpoint-url") + 1]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    target = urlparse(words[-1])
    if words[3:5] == ["s3", "cp"]:
        extra: dict[str, Any] = {}
        if "--metadata" in words:  # the CLI's shorthand: key=value,key=value
            pairs = words[words.index("--metadata") + 1].split(",")
            extra["Metadata"] = dict(pair.split("=", 1) for pair in pairs)
        s3.upload_file(words[-2], target.netloc, target.path.lstrip("/"), ExtraArgs=extra)
        return subprocess.CompletedProcess(words, 0, "upload: done", "")
    listed = s3.list_objects_v2(Bucket=target.netloc, Prefix=target.path.lstrip("/"))
    keys = [o["Key"] for o in listed.get("Contents", [])]
    return subprocess.CompletedProcess(words, 0 if keys else 1, "\n".join(keys), "")


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path / "local stack")  # a path with a space, quoted in commands
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait(timeout=30)


def test_make_local_processes_what_a_person_does_over_http(local_stack: LocalStack):
    setup, commands = local_stack.printed_commands()
    upload, upload_flaky, listing, status, status_phi, why, retry, documents, download, delete = (
        commands
    )
    assert "AWS_REGION=us-east-1" in setup
    assert "AWS_DEFAULT_REGION=us-east-1" in setup

    # The samples uploaded at start end as the demo's do, redacted documents included
    local_stack.wait_for(r"COMPLETED\s+conversation/sore-throat-visit\.flac")
    local_stack.wait_for(r"COMPLETED\s+dictation/follow-up-note\.wav")
    local_stack.wait_for(r"REJECTED\s+conversation/phone-call-8khz\.wav")

    # A new upload with the AWS CLI is processed to the end
    assert run(setup, upload).returncode == 0
    local_stack.wait_for(r"COMPLETED\s+conversation/new-visit\.wav")
    listed = run(setup, listing)
    assert listed.returncode == 0, listed.stderr
    assert "conversation/new-visit.wav" in listed.stdout  # list shows the input key
    shown = run(setup, status)
    assert shown.returncode == 0, shown.stderr
    assert "COMPLETED" in shown.stdout
    # The upload's metadata reached the index; jobctl shows it only when asked
    assert "--metadata patient-id=" in upload
    assert "DEMO-PAT-0002" not in shown.stdout
    assert "patient, encounter (PHI, hidden" in " ".join(shown.stdout.split())
    with_phi = run(setup, status_phi)
    assert with_phi.returncode == 0, with_phi.stderr
    assert ["patient", "DEMO-PAT-0002"] in [line.split() for line in with_phi.stdout.splitlines()]

    # A job whose first Transcribe run fails: why, then retry, and it completes again
    assert run(setup, upload_flaky).returncode == 0
    local_stack.wait_for(r"FAILED\s+conversation/fail-once-visit\.wav")
    explained = run(setup, why)
    assert explained.returncode == 0, explained.stderr
    assert "FAILED" in explained.stdout
    retried = run(setup, retry)
    assert retried.returncode == 0, retried.stderr
    assert "index item deleted" in retried.stdout
    # (the status lines may skip DELETED: the item can come back between two table reads)
    local_stack.wait_for(r"COMPLETED\s+conversation/fail-once-visit\.wav")

    # The documents are there and can be fetched
    listed_documents = run(setup, documents)
    assert listed_documents.returncode == 0, listed_documents.stderr
    assert "transcript.txt" in listed_documents.stdout
    assert "transcript.redacted.txt" in listed_documents.stdout  # PHI identification on
    fetched = run(setup, download)
    assert fetched.returncode == 0, fetched.stderr
    assert "transcript.txt" in fetched.stdout

    # A deleted job is gone with its documents
    deleted = run(setup, delete)
    assert deleted.returncode == 0, deleted.stderr
    local_stack.wait_for(r"DELETED\s+conversation/new-visit\.wav")
    after = run(setup, documents)
    assert "transcript.txt" not in after.stdout
    gone = run(setup, status)
    assert gone.returncode == 1
    assert "no job" in gone.stderr

    # Ctrl-C stops it cleanly; moto's access log went to its file, not the terminal
    assert local_stack.interrupt() == 0
    printed = "\n".join(local_stack.lines)
    assert printed.rstrip().endswith("stopped")
    assert "HTTP/1.1" not in printed
    log = re.search(r"moto's access log in (.+?); ", printed)
    assert log is not None
    assert "HTTP/1.1" in Path(log.group(1)).read_text()
