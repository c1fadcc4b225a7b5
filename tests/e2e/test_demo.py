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
from devkit.samples import DICTATION_METADATA
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


# --- issue 11: redaction, FHIR and HL7 in the demo; metadata from the command line ---------


def pointed_at(out_text: str) -> dict[str, Path]:
    """The final "Have a look at:" lines: what -> path."""
    block = out_text[out_text.index("Have a look at:") :].splitlines()[1:]
    return {
        what.strip(): Path(path.strip())
        for what, path in (line.rsplit(": ", 1) for line in block if line.startswith("  "))
    }


def entity_texts(folder: Path) -> list[str]:
    raw = json.loads((folder / "transcribe-raw.json").read_text())
    return [entity["content"] for entity in raw["results"].get("entities", [])]


def pid_patient(hl7: str) -> str:
    (pid,) = [segment for segment in hl7.splitlines() if segment.startswith("PID|")]
    return pid.split("|")[3].split("^")[0]


def test_demo_shows_a_redacted_transcript_and_fhir_and_hl7_with_the_patient(tmp_path: Path, capsys):
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PHI identification is on" in out
    shown = pointed_at(out)
    assert len(shown) == 3  # one line each
    redacted = next(p for what, p in shown.items() if "redacted" in what)
    fhir = next(p for what, p in shown.items() if "FHIR" in what)
    hl7 = next(p for what, p in shown.items() if "HL7" in what)
    assert redacted.name == "transcript.redacted.txt"
    # The redacted transcript labels every PHI span and quotes none of them
    text = redacted.read_text()
    entities = entity_texts(redacted.parent)
    assert entities  # the emulator labelled the script's name and date
    assert "[PHI:" in text
    assert not [entity for entity in entities if entity in text]
    assert not [word for e in entities for word in e.split() if word.isalpha() and word in text]
    # The sample with metadata: its FHIR subject and encounter, its HL7 patient id
    reference = json.loads(fhir.read_text())
    assert reference["resourceType"] == "DocumentReference"
    assert reference["subject"] == {"reference": f"Patient/{DICTATION_METADATA['patient-id']}"}
    assert reference["context"]["encounter"] == [
        {"reference": f"Encounter/{DICTATION_METADATA['encounter-id']}"}
    ]
    assert pid_patient(hl7.read_text()) == DICTATION_METADATA["patient-id"]


def test_metadata_from_the_command_line_and_a_sidecar_that_replaces_it(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "b.wav").write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "a.wav.meta.json").write_text(json.dumps({"patient-id": "SIDE-1"}))
    out_dir = tmp_path / "out"
    argv = [str(tmp_path), "--patient-id", "CLI-1", "--author", "Dr Cli O'Neil"]
    assert demo.main([*argv, "--encounter-id", "ENC-9", "--out", str(out_dir)]) == 0
    assert "a.wav.meta.json" not in capsys.readouterr().out  # a sidecar is not an upload
    with_sidecar = json.loads((out_dir / "uploads/a/document-reference.json").read_text())
    from_cli = json.loads((out_dir / "uploads/b/document-reference.json").read_text())
    assert with_sidecar["subject"] == {"reference": "Patient/SIDE-1"}
    # The sidecar replaces the command line whole: no other patient's encounter or author
    assert "author" not in with_sidecar
    assert "encounter" not in with_sidecar.get("context", {})
    assert from_cli["subject"] == {"reference": "Patient/CLI-1"}
    assert from_cli["author"] == [{"display": "Dr Cli O'Neil"}]
    assert from_cli["context"]["encounter"] == [{"reference": "Encounter/ENC-9"}]
    assert pid_patient((out_dir / "uploads/b/mdm-t02.hl7").read_text()) == "CLI-1"


def test_a_bad_metadata_value_is_rejected_by_the_pipeline_naming_the_field(tmp_path: Path, capsys):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    out_dir = tmp_path / "out"
    assert (
        demo.main([str(tmp_path / "a.wav"), "--note-type", "11506-4", "--out", str(out_dir)]) == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"uploads/a\.wav\s+REJECTED", out)
    assert "uploads/a.wav: S3 metadata x-amz-meta-note-type is not a LOINC code" in out


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ('{"patient_id": "PAT-7Q"}', "unknown key 'patient_id'; allowed: patient-id, encounter-id"),
        ('["PAT-7Q"]', "must be a JSON object"),
        ('{"patient-id": 42}', "patient-id must be text"),
        ('{"author": "Dr Jos\\u00e9"}', "author holds a non-ASCII character"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_sidecar_the_demo_cannot_use_is_refused_before_anything_runs(
    tmp_path: Path, sidecar: str, message: str
):
    (tmp_path / "a.wav").write_bytes(wav_bytes(duration_s=1.0))
    (tmp_path / "a.wav.meta.json").write_text(sidecar)
    with pytest.raises(SystemExit, match=re.escape(message)) as refused:
        demo.main([str(tmp_path / "a.wav"), "--out", str(tmp_path / "out")])
    assert "a.wav.meta.json" in str(refused.value)
    assert "PAT-7Q" not in str(refused.value)  # values are PHI: never quoted
    assert not (tmp_path / "out").exists()
