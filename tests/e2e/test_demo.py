"""`make demo` end to end: the samples, the user's own files, and the exit code."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.moto_api import state_manager

from devkit import demo
from devkit.media_samples import flac_bytes, wav_bytes
from devkit.transcribe_medical import MODEL_NAME

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    state_manager.unset_transition(MODEL_NAME)
    os.environ.clear()
    os.environ.update(saved)


def test_demo_runs_the_samples_and_writes_documents(tmp_path: Path, capsys):
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "does not recognise speech" in out
    table = out[out.index("input ") :]
    for key in (
        "dictation/follow-up-note.wav",
        "conversation/sore-throat-visit.flac",
        "conversation/phone-call-8khz.wav",
        "dictation/notes-not-audio.wav",
        "dictation/empty-upload.wav",
    ):
        assert key in table
    assert table.count("COMPLETED") == 2
    assert table.count("REJECTED") == 3
    dialogue = (tmp_path / "conversation/sore-throat-visit/dialogue.txt").read_text()
    assert "Speaker 2: I have had a sore throat for three days" in dialogue
    for name in ("transcript.txt", "captions.vtt", "captions.srt", "summary.json"):
        assert (tmp_path / "dictation/follow-up-note" / name).stat().st_size > 0


def test_demo_takes_the_users_files(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "b.flac").write_bytes(flac_bytes(duration_s=1.0))
    out_dir = tmp_path / "out"
    code = demo.main([str(tmp_path / "a.wav"), str(tmp_path / "b.flac"), "--out", str(out_dir)])
    assert code == 0
    out = capsys.readouterr().out
    assert "uploads/a.wav" in out
    assert "uploads/b.flac" in out
    assert (out_dir / "uploads/a/transcript.txt").exists()
    assert (out_dir / "uploads/b/dialogue.txt").exists()


def test_demo_exits_non_zero_when_a_job_is_left_open(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    assert demo.main([str(tmp_path / "a.wav"), "--out", str(tmp_path), "--max-ticks", "1"]) == 1
    assert "left open" in capsys.readouterr().err


def test_demo_refuses_a_missing_file(tmp_path: Path):
    with pytest.raises(SystemExit, match="no such file"):
        demo.main([str(tmp_path / "missing.wav")])


def test_demo_serve_keeps_the_emulator_up_for_jobctl(tmp_path: Path, capsys, monkeypatch):
    def ctrl_c() -> None:
        raise KeyboardInterrupt  # the user presses Ctrl-C at once

    monkeypatch.setattr(demo, "_wait_for_interrupt", ctrl_c)
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    assert demo.main([str(tmp_path / "a.wav"), "--out", str(tmp_path), "--serve"]) == 0
    out = capsys.readouterr().out
    assert "serving on http://127.0.0.1:" in out
    assert "-m jobctl --endpoint-url http://127.0.0.1:" in out
    outputs = json.loads((tmp_path / "stack-outputs.json").read_text())
    assert set(outputs["MedicalTranscription-dev"]) == {
        "JobTableName",
        "InputBucketName",
        "OutputBucketName",
        "IngestQueueUrl",
        "KmsKeyArn",
    }
