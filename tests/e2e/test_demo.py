"""`make demo` end to end: the samples, the user's own files, and the exit code."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.moto_api import state_manager

from devkit import demo, local_stack
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
    assert "words are invented" in out
    assert (out_dir / "uploads/a/transcript.txt").exists()
    assert (out_dir / "uploads/b/dialogue.txt").exists()


def test_demo_exits_non_zero_when_a_job_is_left_open(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    out_dir = str(tmp_path / "out")
    assert demo.main([str(tmp_path / "a.wav"), "--out", out_dir, "--max-ticks", "1"]) == 1
    assert "left open" in capsys.readouterr().err


def test_demo_refuses_a_missing_file(tmp_path: Path):
    with pytest.raises(SystemExit, match="no such file"):
        demo.main([str(tmp_path / "missing.wav")])


def test_demo_serve_is_an_alias_of_make_local(monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(local_stack, "main", lambda argv: seen.append(argv) or 0)
    assert demo.main(["a.wav", "--serve", "--type", "dictation"]) == 0
    assert seen == [["a.wav", "--type", "dictation"]]


def summary_duration(out: Path, stem: str) -> float:
    return float(json.loads((out / stem / "summary.json").read_text())["duration_s"])


def table_rows(out_text: str) -> dict[str, list[str]]:
    table = out_text[out_text.index("input ") :].split("\n\n", maxsplit=1)[0].splitlines()[2:]
    return {row.split()[0]: row.split() for row in table if row and not row.startswith("The ")}


def test_the_table_says_the_words_are_invented_and_agrees_with_summary_json(tmp_path: Path, capsys):
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("input ") : out.index("Why:")]
    assert "words are invented" in table
    rows = table_rows(out)
    for key in ("dictation/follow-up-note.wav", "conversation/sore-throat-visit.flac"):
        shown = float(rows[key][2])  # "24.2 s" -> 24.2
        stem = key.rsplit(".", 1)[0]
        assert shown == pytest.approx(summary_duration(tmp_path, stem), abs=0.05)
        summary = json.loads((tmp_path / stem / "summary.json").read_text())
        assert summary["emulated"] is True


def test_paths_with_spaces_directories_and_same_names_stay_apart(tmp_path: Path, capsys):
    spaced = tmp_path / "my recordings" / "visit one.wav"
    clinic_a = tmp_path / "clinic a" / "day" / "visit.wav"
    clinic_b = tmp_path / "clinic b" / "day" / "visit.wav"
    for path in (spaced, clinic_a, clinic_b):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "clinic b" / "notes.txt").write_text("not audio: a directory skips it")
    out_dir = tmp_path / "out"
    # As the shell hands over an unquoted path with a space: split into words
    words = [*str(spaced).split(" "), str(tmp_path / "clinic a"), str(tmp_path / "clinic b")]
    assert demo.main([*words, "--out", str(out_dir)]) == 0
    uploaded = re.findall(r"uploaded s3://[^/]+/(.+?)  \(", capsys.readouterr().out)
    assert sorted(uploaded) == [
        "uploads/clinic a/day/visit.wav",
        "uploads/clinic b/day/visit.wav",
        "uploads/visit one.wav",  # as short as it can be and still unique
    ]
    assert (out_dir / "uploads/visit one/transcript.txt").exists()
    assert (out_dir / "uploads/clinic a/day/visit/transcript.txt").exists()
    assert (out_dir / "uploads/clinic b/day/visit/transcript.txt").exists()
    assert not list(out_dir.rglob("notes*"))


def test_the_type_is_chosen_per_run(tmp_path: Path, capsys):
    (tmp_path / "note.wav").write_bytes(wav_bytes(duration_s=1.0))
    out_dir = tmp_path / "out"
    argv = [str(tmp_path / "note.wav"), "--type", "dictation", "--out", str(out_dir)]
    assert demo.main(argv) == 0
    assert "uploaded s3://medscribe-dev-input/dictation/note.wav" in capsys.readouterr().out
    summary = json.loads((out_dir / "dictation/note/summary.json").read_text())
    assert summary["speakers"]["count"] == 1  # a dictation: one speaker
    assert "Speaker 2" not in (out_dir / "dictation/note/dialogue.txt").read_text()


def test_each_run_gets_a_fresh_output_folder(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "b.wav").write_bytes(wav_bytes(duration_s=1.0))
    out_dir = tmp_path / "out"
    assert demo.main([str(tmp_path / "a.wav"), "--out", str(out_dir)]) == 0
    assert demo.main([str(tmp_path / "b.wav"), "--out", str(out_dir)]) == 0
    assert (out_dir / "uploads/b").is_dir()
    assert not (out_dir / "uploads/a").exists()  # the earlier run's folder is gone


def test_an_output_folder_the_demo_did_not_make_is_left_alone(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="was not made by the demo"):
        demo.main(["--out", str(tmp_path)])
    assert (tmp_path / "keep.txt").read_text() == "mine"
