"""Reading Transcribe (Medical) transcript JSON: real outputs and the schema's traps.

The real outputs live outside the repository (``<repo>/../shared/reference-transcripts``,
or REFERENCE_TRANSCRIPTS_DIR): they are third-party files, read in place, never copied.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from devkit.transcript_samples import make_long_conversation, make_transcript
from pipeline.transcript import TranscriptError, parse_transcript
from pipeline.transcript.model import Transcript, label_name, sentences, turns

EDGARROMAN = "edgarroman-aws-transcribe-workflow-asrOutput.json"
CHANNELS_02 = "kibaffo33-02-channel-identification.excerpt.json"
SPEAKERS_03 = "kibaffo33-03-speaker-identification.excerpt.json"
ALTERNATIVES_04 = "kibaffo33-04-alternative-results.excerpt.json"
SPEAKERS_ALTERNATIVES_10 = "kibaffo33-10-speaker-identification-alternative-results.excerpt.json"


def reference_dir() -> Path:
    override = os.environ.get("REFERENCE_TRANSCRIPTS_DIR")
    return (
        Path(override)
        if override
        else Path(__file__).resolve().parents[3] / "shared" / "reference-transcripts"
    )


def reference_bytes(name: str) -> bytes:
    """A real transcript file; skip (locally) or fail (in CI) when the folder is absent."""
    folder = reference_dir()
    if not folder.is_dir():
        reason = (
            f"reference transcripts not found at {folder}: set REFERENCE_TRANSCRIPTS_DIR "
            "to the folder of real Transcribe outputs (shared/reference-transcripts)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return (folder / name).read_bytes()


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def word(content: str, start: str, end: str, confidence: str = "0.99", **extra: Any) -> dict:
    return {
        "start_time": start,
        "end_time": end,
        "alternatives": [{"confidence": confidence, "content": content}],
        "type": "pronunciation",
        **extra,
    }


def mark(content: str, confidence: str | None = None, **extra: Any) -> dict:
    """A punctuation item: no times; a confidence only when given (AWS examples omit it)."""
    alternative = (
        {"content": content}
        if confidence is None
        else {"confidence": confidence, "content": content}
    )
    return {"alternatives": [alternative], "type": "punctuation", **extra}


def transcript_of(items: list[dict], **results: Any) -> Transcript:
    text = " ".join(i["alternatives"][0]["content"] for i in items)
    doc = {
        "jobName": "job",
        "accountId": "123456789012",
        "results": {"transcripts": [{"transcript": text}], "items": items, **results},
        "status": "COMPLETED",
    }
    return parse_transcript(as_bytes(doc))


def speakers_of(t: Transcript) -> list[str]:
    return [t.labels[i] if i >= 0 else "" for i in t.word_labels]


# --- Real outputs ---------------------------------------------------------------------------


def test_plain_file_has_words_punctuation_and_no_labels():
    t = parse_transcript(reference_bytes(EDGARROMAN))

    assert len(t.words) == 23
    assert t.words[:3] == ["And", "yet", "I"]
    assert (t.starts[0], t.ends[0]) == (1.15, 1.38)
    assert t.duration_s == 11.44
    assert "level," in t.display  # punctuation attached to the word before it
    assert "," not in t.words
    assert t.display[-1] == "apparent."
    assert t.sentence_ends == [22]
    assert t.label_kind == ""
    assert set(t.word_labels) == {-1}
    assert t.text.startswith("And yet I can relate to them on a soul to soul level, around")
    assert t.alternative_segments == 0


def test_channel_file_recovers_each_words_channel_by_start_time():
    t = parse_transcript(reference_bytes(CHANNELS_02))

    assert len(t.words) == 67
    assert t.label_kind == "channel"
    assert t.labels == ("ch_0", "ch_1")
    assert t.declared_labels == 2
    channels = speakers_of(t)
    assert channels.count("ch_1") == 49
    assert channels.count("ch_0") == 18
    # Interleaved by time: ch_1 speaks first (0.49 s), ch_0 answers from 15.09 s.
    runs = turns(t)
    assert [(t.labels[r.label], t.starts[r.first]) for r in runs] == [
        ("ch_1", 0.49),
        ("ch_0", 15.09),
    ]
    assert t.display[runs[0].stop - 1] == "by,"
    assert t.words[runs[1].first] == "it"


def test_speaker_file_matches_words_to_segments_by_time():
    t = parse_transcript(reference_bytes(SPEAKERS_03))

    assert len(t.words) == 176
    assert t.label_kind == "speaker"
    assert t.labels == ("spk_0", "spk_1", "spk_2")
    assert t.declared_labels == 3
    speakers = speakers_of(t)
    assert (speakers.count("spk_0"), speakers.count("spk_1"), speakers.count("spk_2")) == (
        102,
        50,
        24,
    )
    runs = turns(t)
    assert [(t.labels[r.label], t.starts[r.first]) for r in runs] == [
        ("spk_0", 0.49),
        ("spk_1", 15.09),
        ("spk_0", 34.4),
        ("spk_2", 58.04),
    ]
    assert t.duration_s == 67.05
    low = [t.words[i] for i, c in enumerate(t.confidences) if c < 0.6]
    assert low == ["till", "shepherd"]


def test_alternatives_are_counted_not_mistaken_for_items():
    t04 = parse_transcript(reference_bytes(ALTERNATIVES_04))
    assert (len(t04.words), t04.alternative_segments, t04.alternatives) == (27, 1, 9)
    assert t04.starts[0] == 0.49  # from the item, not the segment's 0.44

    t10 = parse_transcript(reference_bytes(SPEAKERS_ALTERNATIVES_10))
    assert (len(t10.words), t10.alternative_segments, t10.alternatives) == (40, 2, 18)
    speakers = speakers_of(t10)
    assert (speakers.count("spk_0"), speakers.count("spk_1")) == (22, 18)
    assert t10.declared_labels == 3  # the whole recording's count, kept as declared
    assert speakers[t10.words.index("It")] == "spk_1"


@pytest.mark.parametrize(
    ("name", "words", "mean"),
    [
        (EDGARROMAN, 23, 0.9855),
        (CHANNELS_02, 67, 0.9753),
        (SPEAKERS_03, 176, 0.9798),
        (ALTERNATIVES_04, 27, 0.9823),
        (SPEAKERS_ALTERNATIVES_10, 40, 0.9707),
    ],
)
def test_real_files_rebuild_their_own_transcript_text(name, words, mean):
    t = parse_transcript(reference_bytes(name))

    assert len(t.words) == words
    assert " ".join(t.display) == t.text
    assert round(math.fsum(t.confidences) / len(t.confidences), 4) == mean


# --- The schema's traps ----------------------------------------------------------------------


def test_silence_parses_to_empty_columns():
    doc = {
        "jobName": "quiet",
        "accountId": "1",
        "results": {"transcripts": [{"transcript": ""}], "items": []},
        "status": "COMPLETED",
    }
    t = parse_transcript(as_bytes(doc))

    assert (t.text, t.words, t.starts, t.word_labels, t.sentence_ends) == ("", [], [], [], [])
    assert t.duration_s == 0.0
    assert turns(t) == []
    assert sentences(t) == []


def test_silence_with_speaker_labels_and_no_segments():
    t = transcript_of([], speaker_labels={"speakers": 0, "segments": []})

    assert t.words == []
    assert t.label_kind == "speaker"


def test_punctuation_without_confidence_attaches_to_the_word_before():
    t = transcript_of(
        [word("Hello", "0.1", "0.5"), mark(","), word("there", "0.6", "0.9"), mark("?")]
    )

    assert t.words == ["Hello", "there"]
    assert t.display == ["Hello,", "there?"]
    assert t.sentence_ends == [1]
    assert len(t.confidences) == 2  # punctuation has no say in confidence


def test_older_number_formats():
    t = transcript_of(
        [word("Okay", "5.020", "5.400", "1.0000"), word("then", "5.400", "5.860", "0.4900")]
    )

    assert t.starts == [5.02, 5.4]
    assert t.ends == [5.4, 5.86]
    assert t.confidences == [1.0, 0.49]


def test_pronunciation_without_confidence_is_left_out_not_zero():
    item = word("hmm", "0.1", "0.2")
    del item["alternatives"][0]["confidence"]
    t = transcript_of([item, word("yes", "0.3", "0.5", "0.8")])

    assert math.isnan(t.confidences[0])
    assert t.confidences[1] == 0.8


def test_word_without_times_takes_the_previous_end():
    untimed = {"alternatives": [{"confidence": "0.9", "content": "uh"}], "type": "pronunciation"}
    t = transcript_of([word("so", "1.0", "1.2"), untimed, word("well", "1.5", "1.9")])

    assert t.starts == [1.0, 1.2, 1.5]
    assert t.ends == [1.2, 1.2, 1.9]


def test_item_speaker_label_wins_over_segment_times():
    items = [
        word("Hi", "0.100", "0.300", speaker_label="spk_1", id=0),
        word("there", "0.300", "0.600", id=1),
        mark(".", confidence="0.0", speaker_label="spk_1", id=2),
    ]
    segment = {"start_time": "0.0", "end_time": "1.0", "speaker_label": "spk_0", "items": []}
    t = transcript_of(items, speaker_labels={"speakers": 2, "segments": [segment]})

    assert speakers_of(t) == ["spk_1", "spk_0"]  # own label first, else the segment's
    assert t.display == ["Hi", "there."]


def test_words_between_segments_go_to_the_nearest_segment():
    items = [
        word("a", "0.0", "0.5"),
        word("b", "1.1", "1.2"),  # gap: 0.1 s after spk_0 ends, 0.8 s before spk_1
        word("c", "1.9", "2.5"),  # gap: nearer spk_1
        word("d", "2.0", "2.4"),
        word("e", "9.0", "9.5"),  # after every segment
    ]
    segments = [
        {"start_time": "0.0", "end_time": "1.0", "speaker_label": "spk_0", "items": []},
        {"start_time": "2.0", "end_time": "3.0", "speaker_label": "spk_1", "items": []},
    ]
    t = transcript_of(items, speaker_labels={"speakers": 2, "segments": segments})

    assert speakers_of(t) == ["spk_0", "spk_0", "spk_1", "spk_1", "spk_1"]


def test_segments_out_of_order_are_sorted():
    items = [word("a", "0.0", "0.5"), word("b", "2.0", "2.5")]
    segments = [
        {"start_time": "2.0", "end_time": "3.0", "speaker_label": "spk_1", "items": []},
        {"start_time": "0.0", "end_time": "1.0", "speaker_label": "spk_0", "items": []},
        {"start_time": "4.0", "speaker_label": "spk_0", "items": []},  # no end: ignored
    ]
    t = transcript_of(items, speaker_labels={"speakers": 2, "segments": segments})

    assert speakers_of(t) == ["spk_0", "spk_1"]


def test_channel_labels_on_items_are_used_directly():
    items = [
        word("Hello", "0.0", "0.4", channel_label="ch_0"),
        word("Hi", "0.5", "0.8", channel_label="ch_1"),
    ]
    t = transcript_of(items)

    assert t.label_kind == "channel"
    assert speakers_of(t) == ["ch_0", "ch_1"]


def test_phi_entities_are_counted_by_category():
    entities = [
        {"content": "X", "category": "PHI-Personal", "startTime": 0.9, "endTime": 1.2},
        {"content": "Y", "category": "PHI-Personal", "startTime": 2.0, "endTime": 2.2},
        {"content": "Z", "category": "PHI-Geographic", "startTime": 3.0, "endTime": 3.5},
    ]
    t = transcript_of([word("X", "0.9", "1.2")], entities=entities)

    assert t.phi_categories == {"PHI-Geographic": 1, "PHI-Personal": 2}


def test_label_names_are_one_based():
    assert label_name("spk_0") == "Speaker 1"
    assert label_name("spk_11") == "Speaker 12"
    assert label_name("ch_1") == "Channel 2"
    assert label_name("doctor") == "doctor"


def test_missing_transcript_text_is_rebuilt_from_items():
    doc = {"results": {"items": [word("Yes", "0.1", "0.2"), mark(".")]}}
    t = parse_transcript(json.dumps(doc))

    assert t.text == "Yes."


# --- Bad input -----------------------------------------------------------------------------


SENTINEL = "Zebulonicus"


@pytest.mark.parametrize(
    "data",
    [
        b'{"results": {"items": [',
        f'{{"results": {{"transcripts": [{{"transcript": "{SENTINEL}"}}]'.encode(),
        b"\xff\xfe not utf-8",
        b"",
    ],
    ids=["truncated", "truncated-with-text", "not-utf8", "empty"],
)
def test_malformed_json_raises_transcript_error_without_text(data):
    with pytest.raises(TranscriptError) as caught:
        parse_transcript(data)

    assert SENTINEL not in str(caught.value)
    # Nothing chained: the decoder's exception holds the whole document.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "not an object"),
        ({"jobName": "x"}, "no 'results'"),
        ({"results": [SENTINEL]}, "no 'results'"),
        ({"results": {"items": {"a": SENTINEL}}}, "results.items is not a list"),
        ({"results": {"items": [SENTINEL]}}, "not an item"),
        ({"results": {"items": [1]}}, "not an item"),
        ({"results": {"items": [word("a", "0.1", "0.2"), 0]}}, "not an item"),
        ({"results": {"items": [word(SENTINEL, SENTINEL, "1.0")]}}, "not a number"),
        ({"results": {"items": [word(SENTINEL, "0.1", "1.0", SENTINEL)]}}, "not a number"),
    ],
    ids=[
        "array",
        "no-results",
        "results-list",
        "items-object",
        "item-string",
        "item-number",
        "item-number-repeating-a-word",
        "time",
        "conf",
    ],
)
def test_documents_that_are_not_transcripts(doc, message):
    with pytest.raises(TranscriptError, match=message) as caught:
        parse_transcript(as_bytes(doc))

    assert SENTINEL not in str(caught.value)
    assert caught.value.__context__ is None  # float()'s message would quote the value


def reversed_keys(value: Any) -> Any:
    """The same JSON value with every object's members in reverse order."""
    if isinstance(value, dict):
        return {k: reversed_keys(v) for k, v in reversed(value.items())}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("options", [{}, {"channel_identification": True}], ids=["spk", "ch"])
def test_layout_and_member_order_do_not_matter(options):
    doc = make_transcript(
        job_name="layout",
        utterances=[(0, "Hello, Mr Jones."), (1, "Hi there."), (0, "Sit down, please.")],
        max_alternatives=2,
        identify_phi=True,
        **options,
    )
    compact = parse_transcript(as_bytes(doc))
    layouts = [
        json.dumps(doc, indent=4).encode(),
        json.dumps(doc, indent="\t").replace("\n", "\r\n").encode(),
        as_bytes(reversed_keys(doc)),  # e.g. a channel's items before its channel_label
        (" \n" + json.dumps(doc) + "\n").encode("utf-16"),
        ("\ufeff" + json.dumps(doc)).encode("utf-8"),
    ]
    for data in layouts:
        assert parse_transcript(data) == compact
    assert compact.label_kind == ("channel" if options else "speaker")
    assert (compact.alternative_segments, compact.alternatives) == (3, 6)


def test_escaped_characters_are_decoded():
    t = transcript_of([word("caf\u00e9", "0.1", "0.4"), word('"quoted"', "0.5", "0.9")])

    assert t.words == ["café", '"quoted"']


def test_truncated_anywhere_is_a_transcript_error():
    doc = make_transcript(
        job_name="cut", utterances=[(0, f"{SENTINEL} said yes, twice."), (1, "Fine.")]
    )
    data = json.dumps(doc, indent=1)
    for cut in range(0, len(data) - 1, 5):
        with pytest.raises(TranscriptError) as caught:
            parse_transcript(data[:cut])
        assert SENTINEL not in str(caught.value)
        assert caught.value.__context__ is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"results": {"items": []}} x', "Extra data"),
        (b'{"results": {"items": [] "x": 1}}', "delimiter"),
        (b'{"results": {"items": [{} {}]}}', "delimiter"),
        (b'{"results": {items: []}}', "property name"),
        (b'{"results": {"items" []}}', "':' delimiter"),
        (b'{"results": {"items": [,]}}', "Expecting value"),
        (b"[1, 2]", "not an object"),
        (b"nonsense", "not valid JSON"),
        (b'{"results": null}', "no 'results'"),
        (b'{"results": {"speaker_labels": {"segments": 5}}}', "segments is not a list"),
    ],
)
def test_json_errors_name_the_problem(data, message):
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(data)


def test_null_lists_read_as_empty():
    doc = {"results": {"items": None, "segments": None, "speaker_labels": "n/a"}}
    t = parse_transcript(as_bytes(doc))

    assert (t.words, t.alternative_segments, t.label_kind) == ([], 0, "")


# --- The sample generator (devkit) speaks the same schema ----------------------------------


def test_generated_transcript_has_the_real_shape():
    doc = make_transcript(
        job_name="sample",
        utterances=[(0, "How is the cough, Mr Jones?"), (1, "Better, thanks. Much better!")],
    )
    results = doc["results"]
    first, comma = results["items"][0], results["items"][4]

    assert doc["status"] == "COMPLETED"
    assert set(first) == {"start_time", "end_time", "alternatives", "type"}
    assert first["start_time"] == "0.500"  # string, 3 decimals
    assert isinstance(first["alternatives"][0]["confidence"], str)
    assert comma == {"alternatives": [{"confidence": "0.0", "content": ","}], "type": "punctuation"}
    assert results["transcripts"][0]["transcript"] == (
        "How is the cough, Mr Jones? Better, thanks. Much better!"
    )
    segment_item = results["speaker_labels"]["segments"][0]["items"][0]
    assert set(segment_item) == {"start_time", "speaker_label", "end_time"}
    t = parse_transcript(as_bytes(doc))
    assert " ".join(t.display) == t.text
    assert [t.labels[r.label] for r in turns(t)] == ["spk_0", "spk_1"]


def test_generated_transcript_is_deterministic():
    args = {"job_name": "j", "utterances": [(0, "One two three."), (1, "Four five.")], "seed": 7}

    assert make_transcript(**args) == make_transcript(**args)
    assert make_transcript(**args) != make_transcript(**{**args, "seed": 8})


def test_generated_channels_merge_top_level_items_without_labels():
    doc = make_transcript(
        job_name="calls",
        utterances=[(1, "Hello?"), (0, "Hi, it is me.")],
        channel_identification=True,
    )
    results = doc["results"]

    assert "speaker_labels" not in results
    assert results["channel_labels"]["number_of_channels"] == 2
    assert all("channel_label" not in i for i in results["items"])
    t = parse_transcript(as_bytes(doc))
    assert speakers_of(t) == ["ch_1", "ch_0", "ch_0", "ch_0", "ch_0"]


def test_generated_newer_item_fields():
    doc = make_transcript(job_name="new", utterances=[(0, "Hi."), (1, "Hello.")], item_labels=True)
    items = doc["results"]["items"]

    assert [i["id"] for i in items] == [0, 1, 2, 3]
    assert [i["speaker_label"] for i in items] == ["spk_0", "spk_0", "spk_1", "spk_1"]


def test_generated_alternatives_and_phi():
    doc = make_transcript(
        job_name="alt",
        utterances=[(0, "Maria is 42 years old."), (1, "She lives at zip 94110.")],
        max_alternatives=3,
        identify_phi=True,
    )
    results = doc["results"]

    assert len(results["segments"]) == 2
    assert all(len(s["alternatives"]) == 3 for s in results["segments"])
    flat = results["segments"][0]["alternatives"][0]["items"][0]
    assert set(flat) == {"start_time", "confidence", "end_time", "type", "content"}
    entities = results["entities"]
    assert {e["category"] for e in entities} == {"PHI-Personal", "PHI-Geographic"}
    assert all(isinstance(e["startTime"], float) for e in entities)
    t = parse_transcript(as_bytes(doc))
    assert (t.alternative_segments, t.alternatives) == (2, 6)
    assert sum(t.phi_categories.values()) == len(entities)


def test_generated_four_hours_fits_transcribes_limit():
    doc = make_long_conversation(hours=4.0)
    t = parse_transcript(as_bytes(doc))

    assert 44_000 <= len(t.words) <= 46_000
    assert 3.5 * 3600 < t.duration_s < 4 * 3600
    assert t.labels == ("spk_0", "spk_1")
    assert " ".join(t.display) == t.text
