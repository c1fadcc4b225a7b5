"""Real encoders' files (tests/fixtures/media) yield the facts ffprobe reads in them.

The files and manifest.json come from ``python -m devkit.make_media_fixtures`` (ffmpeg,
lame, flac, opusenc, oggenc); these tests need none of those tools. The manifest's facts
were read by ffprobe and ffmpeg, never by the validator under test.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.media import HEADER_BYTES, MediaInfo, MediaRejected, _inspect_content, inspect_media

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "media"
MANIFEST: list[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())
FACTS = ("sample_rate_hz", "channels", "duration_s")


def inspect_fixture(entry: dict[str, Any]) -> MediaInfo:
    """What the start-job Lambda does with the upload: its first bytes and its real size."""
    header = (FIXTURES / entry["file"]).read_bytes()[:HEADER_BYTES]
    return inspect_media(extension=entry["extension"], header=header, size=entry["size"])


def test_the_fixtures_are_small_and_each_is_in_the_manifest():
    files = {path.name for path in FIXTURES.iterdir()} - {"manifest.json"}
    assert files == {entry["file"] for entry in MANIFEST}
    assert sum(path.stat().st_size for path in FIXTURES.iterdir()) < 2 * 1024**2
    for entry in MANIFEST:
        stored = (FIXTURES / entry["file"]).stat().st_size
        assert stored == min(entry["size"], HEADER_BYTES)
        assert (entry["truncated_to"] is not None) == (entry["size"] > HEADER_BYTES)


def test_the_manifest_covers_every_defect_and_baseline_the_issue_names():
    covered = {(entry["extension"], entry["expect"]["verdict"]) for entry in MANIFEST}
    for ext in (".wav", ".flac", ".mp3", ".ogg", ".opus", ".webm", ".m4a", ".mp4", ".amr"):
        assert (ext, "accept") in covered
    reasons = " | ".join(entry["expect"].get("reason", "") for entry in MANIFEST)
    for said in ("8000 Hz is below", "96000 Hz is above", "6 audio channels", "no audio track",
                 "at least 0.5 s"):  # fmt: skip
        assert said in reasons


ACCEPTED = [entry for entry in MANIFEST if entry["expect"]["verdict"] == "accept"]
REJECTED = [entry for entry in MANIFEST if entry["expect"]["verdict"] == "reject"]


@pytest.mark.parametrize("entry", ACCEPTED, ids=[entry["file"] for entry in ACCEPTED])
def test_accepted_fixture_yields_ffprobes_facts(entry):
    info = inspect_fixture(entry)
    expect, audio = entry["expect"], entry["ffprobe"]["audio"]
    assert info.media_format == expect["media_format"]
    for fact in FACTS:
        found = getattr(info, fact)
        if fact in expect["unknown"]:
            assert found is None, f"{fact} is past the bytes read, yet it was {found}"
        elif fact == "duration_s":
            assert found == pytest.approx(audio[fact], abs=expect["duration_tolerance_s"])
        else:
            assert found == audio[fact]


@pytest.mark.parametrize("entry", REJECTED, ids=[entry["file"] for entry in REJECTED])
def test_rejected_fixture_is_rejected_for_what_ffprobe_reads(entry):
    with pytest.raises(MediaRejected) as caught:
        inspect_fixture(entry)
    assert entry["expect"]["reason"] in caught.value.reason
    assert entry["file"].rsplit(".", 1)[0] not in caught.value.reason  # no key text


def test_mutated_real_files_never_crash():
    # Real encoders' headers, damaged: anything but MediaRejected propagates and fails
    rng = random.Random(2024)
    samples = [(FIXTURES / e["file"]).read_bytes()[:4096] for e in MANIFEST]
    for _ in range(1500):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.choice([0, 0xFF, 0x80, 0x7F, rng.getrandbits(8)])
            else:
                del data[at : at + rng.randrange(1, 64)]
        cut = bytes(data[: rng.randrange(1, len(data) + 1)])
        ext = rng.choice([".wav", ".mp3", ".m4a", ".mp4", ".ogg", ".opus", ".webm"])
        size = rng.choice([len(cut), 10**7])
        with contextlib.suppress(MediaRejected):
            _inspect_content(ext, cut, size)  # no safety net
        with contextlib.suppress(MediaRejected):
            assert isinstance(inspect_media(extension=ext, header=cut, size=size), MediaInfo)
