"""The emulator as a server on 127.0.0.1: the handlers and the operator CLI over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

from devkit.emulator import PipelineEmulator
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import MODEL_NAME
from stacks.config import parse_environment

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def endpoint() -> Iterator[str]:
    saved = dict(os.environ)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        server.stop()
        state_manager.unset_transition(MODEL_NAME)
        os.environ.clear()
        os.environ.update(saved)


def jobctl(url: str, outputs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jobctl",
            "--endpoint-url",
            url,
            "--region",
            "us-east-1",
            "--outputs-file",
            str(outputs),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_jobctl_reads_the_emulated_pipeline_over_http(endpoint: str, tmp_path: Path):
    config = parse_environment("served", {"region": "us-east-1"})
    emulator = PipelineEmulator(config)
    try:
        emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
        emulator.upload("dictation/phone-8k.wav", wav_bytes(sample_rate=8000))
        assert emulator.run_until_settled(max_ticks=10)
    finally:
        emulator.close()
    outputs = tmp_path / "stack-outputs.json"
    outputs.write_text(json.dumps({config.stack_name: emulator.stack.stack_outputs()}))

    listed = jobctl(endpoint, outputs, "list")
    assert listed.returncode == 0, listed.stderr
    assert "COMPLETED" in listed.stdout
    assert "REJECTED" in listed.stdout

    why = jobctl(endpoint, outputs, "why", "dictation/phone-8k.wav")
    assert why.returncode == 0, why.stderr
    assert "8000 Hz" in why.stdout

    download = jobctl(endpoint, outputs, "download", "conversation/visit.wav", str(tmp_path))
    assert download.returncode == 0, download.stderr
    (job_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    dialogue = (job_dir / "dialogue.txt").read_text()
    assert dialogue.startswith("[Emulated transcript: these words were invented")
    assert "] Speaker 1: Good morning." in dialogue
