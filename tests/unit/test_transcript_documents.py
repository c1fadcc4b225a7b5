"""The five documents rendered from a transcript, on real outputs and generated ones."""

from __future__ import annotations

import gc
import json
import logging
import re
import tracemalloc
from itertools import pairwise
from typing import Any

import pytest

from devkit import transcript_samples
from pipeline.transcript import DOCUMENT_NAMES, TranscriptError, render_documents
from tests.unit.test_transcript_parsing import (
    ALTERNATIVES_04,
    CHANNELS_02,
    EDGARROMAN,
    SPEAKERS_03,
    SPEAKERS_ALTERNATIVES_10,
    reference_bytes,
)

CUE_TIMING = re.compile(
    r"^(\d\d):(\d\d):(\d\d)([.,])(\d\d\d) --> (\d\d):(\d\d):(\d\d)([.,])(\d\d\d)$"
)
SPEAKER_PREFIX = re.compile(r"^(Speaker|Channel) \d+: ")


def make_transcript(**options: Any) -> dict[str, Any]:
    """Shaped as real Transcribe writes it: without the emulator's marker."""
    return transcript_samples.make_transcript(**{"emulated": False, **options})


def make_long_conversation(**options: Any) -> dict[str, Any]:
    return transcript_samples.make_long_conversation(**{"emulated": False, **options})


JOB = {"job_name": "job-1", "type": "CONVERSATION", "specialty": "PRIMARYCARE"}


def render(doc: dict[str, Any] | bytes, **kwargs: Any):
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return render_documents(data, job=kwargs.pop("job", JOB), **kwargs)


def text(rendered, name: str) -> str:
    return rendered.files[name].decode("utf-8")


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def vtt_cues(document: str) -> list[tuple[float, float, list[str]]]:
    header, *blocks = document.rstrip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        match = CUE_TIMING.match(timing)
        assert match, timing
        groups = match.groups()
        assert groups[3] == groups[8] == "."
        cues.append((seconds(*groups[0:3], groups[4]), seconds(*groups[5:8], groups[9]), lines))
    return cues


def srt_cues(document: str) -> list[tuple[int, str, list[str]]]:
    cues = []
    for block in document.rstrip("\n").split("\n\n") if document else []:
        number, timing, *lines = block.split("\n")
        match = CUE_TIMING.match(timing)
        assert match, timing
        assert match.group(4) == match.group(9) == ","
        cues.append((int(number), timing, lines))
    return cues


TURN_TIMES = re.compile(r"^\[(\d\d:\d\d:\d\d) - (\d\d:\d\d:\d\d)\]")


def dialogue_lines(rendered, name: str = "dialogue.txt") -> list[str]:
    """dialogue.txt's lines with the end time dropped (``[start] ...``), after checking
    that every line has both times and ends no earlier than it starts."""
    lines = []
    for line in text(rendered, name).splitlines():
        match = TURN_TIMES.match(line)
        assert match, line
        assert match.group(1) <= match.group(2)
        lines.append(f"[{match.group(1)}]{line[match.end() :]}")
    return lines


def summary(rendered) -> dict[str, Any]:
    return json.loads(rendered.files["summary.json"])


# --- Real outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [EDGARROMAN, CHANNELS_02, SPEAKERS_03, ALTERNATIVES_04, SPEAKERS_ALTERNATIVES_10]
)
def test_transcript_txt_is_the_files_text_wrapped(name):
    data = reference_bytes(name)
    rendered = render(data)
    document = text(rendered, "transcript.txt")

    expected = json.loads(data)["results"]["transcripts"][0]["transcript"]
    assert document.endswith("\n")
    lines = document.rstrip("\n").split("\n")
    assert " ".join(lines) == expected
    assert all(0 < len(line) <= 100 for line in lines)
    assert set(rendered.files) == set(DOCUMENT_NAMES)


def test_plain_file_dialogue_is_one_line_per_sentence():
    rendered = render(reference_bytes(EDGARROMAN))

    assert "".join(f"{line}\n" for line in dialogue_lines(rendered)) == (
        "[00:00:01] And yet I can relate to them on a soul to soul level, around the fierce and "
        "fragile feelings that accompany becoming apparent.\n"
    )
    first = vtt_cues(text(rendered, "captions.vtt"))[0]
    assert first[:2] == (1.15, 4.26)
    assert first[2] == ["And yet I can relate to them", "on a soul to soul level,"]
    assert text(rendered, "captions.srt").startswith("1\n00:00:01,150 --> 00:00:04,260\n")
    assert rendered.stats == {
        "words": 23,
        "duration_s": 11.44,
        "speakers": 0,
        "channels": 0,
        "mean_confidence": 0.9855,
        "low_confidence_words": 0,
    }


def test_speaker_file_dialogue_turns():
    rendered = render(reference_bytes(SPEAKERS_03))
    lines = dialogue_lines(rendered)

    assert [line[: line.index(":", 11)] for line in lines] == [
        "[00:00:00] Speaker 1",
        "[00:00:15] Speaker 2",
        "[00:00:34] Speaker 1",
        "[00:00:58] Speaker 3",
    ]
    assert lines[0].startswith("[00:00:00] Speaker 1: She was gone out into the village on some")
    assert lines[1].startswith("[00:00:15] Speaker 2: It will be well for you if you join, not")
    assert lines[3].endswith("from their component molecules.")
    assert " ," not in text(rendered, "dialogue.txt")
    assert " ." not in text(rendered, "dialogue.txt")

    cues = vtt_cues(text(rendered, "captions.vtt"))
    assert cues[0][:2] == (0.49, 3.27)
    assert cues[0][2][0].startswith("Speaker 1: She was")
    prefixed = [c[2][0].split(":")[0] for c in cues if SPEAKER_PREFIX.match(c[2][0])]
    assert prefixed == ["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 3"]  # once per turn

    data = summary(rendered)
    assert data["speakers"]["count"] == 3
    assert data["speakers"]["declared"] == 3
    by_label = data["speakers"]["by_label"]
    assert {k: v["words"] for k, v in by_label.items()} == {"spk_0": 102, "spk_1": 50, "spk_2": 24}
    assert by_label["spk_2"] == {"name": "Speaker 3", "words": 24, "talk_time_s": 9.01}
    assert rendered.stats["speakers"] == 3
    assert rendered.stats["words"] == 176


def test_channel_file_dialogue_interleaves_channels_by_time():
    rendered = render(reference_bytes(CHANNELS_02))
    lines = dialogue_lines(rendered)

    assert len(lines) == 2
    assert lines[0].startswith("[00:00:00] Channel 2: She was gone out into the village")
    assert lines[0].endswith("the attention of a passer by,")
    assert lines[1] == (
        "[00:00:15] Channel 1: it will be well for you if you join, not with those who, "
        "instead of kites, fly falcons"
    )
    data = summary(rendered)
    assert data["channels"]["count"] == 2
    assert data["speakers"]["count"] == 0
    assert {k: v["words"] for k, v in data["channels"]["by_label"].items()} == {
        "ch_0": 18,
        "ch_1": 49,
    }
    assert rendered.stats["channels"] == 2


def test_alternatives_are_counted_in_the_summary():
    data04 = summary(render(reference_bytes(ALTERNATIVES_04)))
    data10 = summary(render(reference_bytes(SPEAKERS_ALTERNATIVES_10)))

    assert (data04["alternatives_segments"], data04["alternatives_total"]) == (1, 9)
    assert (data10["alternatives_segments"], data10["alternatives_total"]) == (2, 18)
    assert data04["words"] == 27
    assert data10["speakers"]["count"] == 2  # who speaks in this window
    assert data10["speakers"]["declared"] == 3


def test_low_confidence_words_on_a_real_file():
    rendered = render(reference_bytes(SPEAKERS_03), low_confidence_threshold=0.6)

    assert summary(rendered)["low_confidence_words"] == [
        {"word": "till", "start_time": 10.21, "end_time": 10.42, "confidence": 0.59},
        {"word": "shepherd", "start_time": 23.01, "end_time": 23.55, "confidence": 0.536},
    ]
    assert rendered.stats["low_confidence_words"] == 2


# --- Generated transcripts -----------------------------------------------------------------


def small_conversation(**options: Any) -> dict[str, Any]:
    options.setdefault("emulated", False)
    return make_transcript(
        job_name="small",
        utterances=[
            (0, "Good morning. How is the cough?"),
            (1, "Better, thanks."),
            (0, "Good, keep taking the syrup."),
        ],
        **options,
    )


def test_silence_gives_valid_empty_documents():
    doc = {
        "jobName": "quiet",
        "accountId": "123456789012",
        "results": {"transcripts": [{"transcript": ""}], "items": []},
        "status": "COMPLETED",
    }
    rendered = render(doc)

    assert rendered.files["transcript.txt"] == b""
    assert rendered.files["dialogue.txt"] == b""
    assert rendered.files["captions.vtt"] == b"WEBVTT\n"
    assert rendered.files["captions.srt"] == b""
    data = summary(rendered)
    assert (data["words"], data["duration_s"], data["mean_confidence"]) == (0, 0.0, 0.0)
    assert data["low_confidence_words"] == []
    assert rendered.stats == {
        "words": 0,
        "duration_s": 0.0,
        "speakers": 0,
        "channels": 0,
        "mean_confidence": 0.0,
        "low_confidence_words": 0,
    }


def test_small_conversation_documents():
    rendered = render(small_conversation())

    assert text(rendered, "transcript.txt") == (
        "Good morning. How is the cough? Better, thanks. Good, keep taking the syrup.\n"
    )
    assert "".join(f"{line}\n" for line in dialogue_lines(rendered)) == (
        "[00:00:00] Speaker 1: Good morning. How is the cough?\n"
        "[00:00:05] Speaker 2: Better, thanks.\n"
        "[00:00:06] Speaker 1: Good, keep taking the syrup.\n"
    )
    assert text(rendered, "captions.vtt").startswith(
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.259\nSpeaker 1: Good morning.\n\n"
    )
    cues = vtt_cues(text(rendered, "captions.vtt"))
    assert [c[2] for c in cues] == [
        ["Speaker 1: Good morning."],
        ["How is the cough?"],
        ["Speaker 2: Better, thanks."],
        ["Speaker 1: Good, keep taking the syrup."],
    ]
    srt = srt_cues(text(rendered, "captions.srt"))
    assert [n for n, _, _ in srt] == [1, 2, 3, 4]
    assert [lines for _, _, lines in srt] == [c[2] for c in cues]


def test_channel_conversation_uses_channel_names():
    rendered = render(small_conversation(channel_identification=True))

    lines = dialogue_lines(rendered)
    assert [line.split(": ")[0][11:] for line in lines] == ["Channel 1", "Channel 2", "Channel 1"]
    assert rendered.stats["channels"] == 2
    assert rendered.stats["speakers"] == 0


@pytest.mark.parametrize("channels", [False, True], ids=["speakers", "channels"])
def test_newer_item_labels_render_like_older_outputs(channels):
    older = render(small_conversation(channel_identification=channels))
    newer = render(small_conversation(channel_identification=channels, item_labels=True))

    assert newer.files == older.files
    assert newer.stats["speakers" if not channels else "channels"] == 2


def test_without_speaker_labels_dialogue_is_per_sentence():
    rendered = render(small_conversation(show_speaker_labels=False))

    lines = dialogue_lines(rendered)
    assert [line[11:] for line in lines] == [
        "Good morning.",
        "How is the cough?",
        "Better, thanks.",
        "Good, keep taking the syrup.",
    ]
    assert not any(SPEAKER_PREFIX.match(c[2][0]) for c in vtt_cues(text(rendered, "captions.vtt")))


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.9, 1.0])
def test_low_confidence_threshold_is_respected(threshold):
    doc = make_long_conversation(hours=0.05, seed=3)
    items = [i for i in doc["results"]["items"] if i["type"] == "pronunciation"]
    expected = [
        i["alternatives"][0]["content"]
        for i in items
        if float(i["alternatives"][0]["confidence"]) < threshold
    ]
    rendered = render(doc, low_confidence_threshold=threshold)
    data = summary(rendered)

    assert [w["word"] for w in data["low_confidence_words"]] == expected
    assert all(w["confidence"] < threshold for w in data["low_confidence_words"])
    assert rendered.stats["low_confidence_words"] == len(expected)
    assert data["low_confidence_threshold"] == threshold
    if threshold == 0.5:
        assert expected  # the generator does produce a few low ones


def test_threshold_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="low_confidence_threshold"):
        render(small_conversation(), low_confidence_threshold=50)


def test_summary_counts_phi_without_its_content():
    doc = make_transcript(
        job_name="phi",
        utterances=[
            (0, "Is your daughter Maria coming?"),
            (1, "Yes, she is 42 and lives in 94110."),
        ],
        identify_phi=True,
    )
    rendered = render(doc)
    data = summary(rendered)

    assert data["phi_entities"] == {"PHI-Geographic": 1, "PHI-Personal": 2}
    phi_part = json.dumps(data["phi_entities"])
    assert "Maria" not in phi_part
    assert "94110" not in phi_part


def test_summary_job_metadata_is_copied_selectively():
    job = {
        "job_name": "job-9",
        "type": "DICTATION",
        "specialty": "PRIMARYCARE",
        "media_format": "wav",
        "sample_rate_hz": 16000,
        "created_at": "2026-01-01T00:00:00Z",
        "completed_at": "2026-01-01T00:05:00Z",
        "settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
        "input_bucket": "bucket",
        "attempts": 1,
    }
    data = summary(render(small_conversation(), job=job))

    assert data["job"] == {k: v for k, v in job.items() if k not in {"input_bucket", "attempts"}}
    assert "input_key" not in data["job"]
    assert summary(render(small_conversation(), job={"input_key": "a/b.wav"}))["job"] == {
        "input_key": "a/b.wav",
        "job_name": "small",  # from the transcript when the caller gives none
    }


def test_summary_is_pretty_sorted_utf8():
    doc = make_transcript(job_name="utf", utterances=[(0, "Café au lait, señor.")])
    for item in doc["results"]["items"]:
        item["alternatives"][0]["confidence"] = "0.3"
    raw = render(doc).files["summary.json"]

    assert raw.decode("utf-8").startswith('{\n  "alternatives_segments": 0,')
    data = json.loads(raw)
    assert list(data) == sorted(data)
    assert "Café" in raw.decode("utf-8")  # UTF-8, not \\u escapes
    assert [w["word"] for w in data["low_confidence_words"]] == ["Café", "au", "lait", "señor"]
    assert '\n    {"confidence": 0.3, "end_time": ' in raw.decode("utf-8")  # one word a line


def test_stats_hold_only_plain_scalars():
    stats = render(small_conversation()).stats

    assert set(stats) == {
        "words",
        "duration_s",
        "speakers",
        "channels",
        "mean_confidence",
        "low_confidence_words",
    }
    assert all(type(v) in (int, float, str) for v in stats.values())


def test_a_word_longer_than_a_line_is_never_split():
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis-like"  # 50 characters
    doc = make_transcript(job_name="w", utterances=[(0, f"It is {long_word} disease.")])
    cues = vtt_cues(text(render(doc), "captions.vtt"))

    assert [c[2] for c in cues] == [["Speaker 1: It is", long_word], ["disease."]]


def test_a_word_longer_than_a_cue_stands_alone():
    items = [
        {
            "start_time": start,
            "end_time": end,
            "alternatives": [{"confidence": "0.9", "content": content}],
            "type": "pronunciation",
        }
        for content, start, end in [
            ("So", "0.0", "0.4"),
            ("ummm", "0.5", "9.5"),
            ("yes", "9.6", "10"),
        ]
    ]
    doc = {"results": {"transcripts": [{"transcript": "So ummm yes"}], "items": items}}
    cues = vtt_cues(text(render(doc), "captions.vtt"))

    assert cues == [(0.0, 0.4, ["So"]), (0.5, 9.5, ["ummm"]), (9.6, 10.0, ["yes"])]


def test_vtt_escapes_markup_characters():
    doc = make_transcript(job_name="m", utterances=[(0, "Take less than 5 <mg> & rest.")])
    rendered = render(doc)

    assert "&lt;mg&gt; &amp; rest." in text(rendered, "captions.vtt")
    assert "<mg> & rest." in text(rendered, "captions.srt")


# --- A four-hour conversation --------------------------------------------------------------


@pytest.fixture(scope="module")
def four_hours() -> tuple[bytes, Any]:
    data = json.dumps(make_long_conversation(hours=4.0), separators=(",", ":")).encode()
    return data, render_documents(data, job=JOB)


def test_four_hours_cues_respect_the_limits(four_hours):
    _, rendered = four_hours
    cues = vtt_cues(text(rendered, "captions.vtt"))

    assert len(cues) > 4000
    for start, end, lines in cues:
        assert 1 <= len(lines) <= 2
        words = " ".join(lines).split(" ")
        speaker = SPEAKER_PREFIX.match(lines[0])
        single_word = len(words) - (2 if speaker else 0) == 1
        assert all(len(line) <= 42 for line in lines) or single_word, lines
        assert end - start <= 7.0 or single_word, (start, end, lines)
        assert start <= end
    starts = [c[0] for c in cues]
    assert starts == sorted(starts)
    assert all(a[1] <= b[0] for a, b in pairwise(cues))  # no overlap


def test_four_hours_srt_matches_vtt(four_hours):
    _, rendered = four_hours
    vtt = vtt_cues(text(rendered, "captions.vtt"))
    srt = srt_cues(text(rendered, "captions.srt"))

    assert [n for n, _, _ in srt] == list(range(1, len(vtt) + 1))
    assert [lines for _, _, lines in srt] == [lines for _, _, lines in vtt]


def test_four_hours_dialogue_alternates_speakers(four_hours):
    data, rendered = four_hours
    lines = dialogue_lines(rendered)
    speakers = [line[11 : line.index(":", 11)] for line in lines]

    assert set(speakers) == {"Speaker 1", "Speaker 2"}
    assert all(a != b for a, b in pairwise(speakers))
    stamps = [line[1:9] for line in lines]
    assert stamps == sorted(stamps)
    items = json.loads(data)["results"]["items"]
    pronunciations = sum(1 for i in items if i["type"] == "pronunciation")
    assert rendered.stats["words"] == pronunciations == summary(rendered)["words"]
    assert sum(len(line.split(" ")) - 3 for line in lines) == pronunciations


def test_four_hours_documents_are_whole(four_hours):
    data, rendered = four_hours
    expected = json.loads(data)["results"]["transcripts"][0]["transcript"]

    plain = text(rendered, "transcript.txt").rstrip("\n").split("\n")
    assert " ".join(plain) == expected
    assert rendered.stats["speakers"] == 2
    assert 3.5 * 3600 < rendered.stats["duration_s"] < 4 * 3600
    talk = summary(rendered)["speakers"]["by_label"]
    assert sum(v["talk_time_s"] for v in talk.values()) < rendered.stats["duration_s"]


def test_four_hours_peak_memory_stays_within_three_times_the_file(four_hours):
    data, _ = four_hours
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        render_documents(data, job=JOB)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()

    # A plain json.loads would hold ~5x the file as dicts: items are dropped as parsed.
    assert peak <= 3 * len(data)


# --- Privacy ---------------------------------------------------------------------------------


def test_no_log_record_carries_transcript_text(caplog):
    sentinel = "Quetzalcoatlus"
    doc = make_transcript(
        job_name="private",
        utterances=[(0, f"My name is {sentinel}, and I feel fine."), (1, f"Hello {sentinel}.")],
        identify_phi=True,
    )
    caplog.set_level(logging.DEBUG)

    rendered = render(doc, low_confidence_threshold=1.0)
    with pytest.raises(TranscriptError) as caught:
        render(json.dumps(doc).encode()[:-30])

    assert sentinel.encode() in rendered.files["dialogue.txt"]  # the text is in the documents
    assert sentinel not in str(caught.value)
    assert not [r for r in caplog.records if sentinel in r.getMessage() or sentinel in str(r.args)]
    assert sentinel not in caplog.text
