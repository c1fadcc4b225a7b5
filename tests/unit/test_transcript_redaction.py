"""PHI-redacted documents: no entity's content survives, and nothing is dropped silently."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from devkit import transcript_samples
from pipeline.transcript import READABLE_NAMES, REDACTED_NAMES, render_documents
from pipeline.transcript.redaction import placeholder

JOB = {"job_name": "medscribe-dev-phi", "type": "CONVERSATION", "patient_id": "p-1"}
UTTERANCES = [
    (0, "Good morning. Is Maria Lopez, your daughter, here today?"),
    (1, "Yes, Maria drove me from Oak Street. I turned 67 in March."),
    (0, "Thank you, Maria. Say hello to Maria Lopez for me."),
]


def transcript(entities: list[dict[str, Any]] | None = None, **options: Any) -> dict[str, Any]:
    doc = transcript_samples.make_transcript(
        job_name="medscribe-dev-phi", utterances=UTTERANCES, emulated=False, **options
    )
    if entities is not None:
        doc["results"]["entities"] = entities
    return doc


def word_times(doc: dict[str, Any], *words: str) -> list[tuple[float, float]]:
    """(start, end) of each occurrence of the word sequence in the items."""
    items = [i for i in doc["results"]["items"] if i["type"] == "pronunciation"]
    contents = [i["alternatives"][0]["content"] for i in items]
    n = len(words)
    return [
        (float(items[k]["start_time"]), float(items[k + n - 1]["end_time"]))
        for k in range(len(items) - n + 1)
        if tuple(contents[k : k + n]) == words
    ]


def entity(doc: dict[str, Any], content: str, category: str, occurrence: int = 0) -> dict[str, Any]:
    start, end = word_times(doc, *content.split())[occurrence]
    return {
        "content": content,
        "category": category,
        "startTime": start,
        "endTime": end,
        "confidence": 0.97,
    }


def labelled() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Maria Lopez (two words) labelled once of twice, Maria labelled once of three times,
    Oak Street, 67, and an entity that matches no word at all."""
    doc = transcript()
    entities = [
        entity(doc, "Maria Lopez", "NAME"),
        entity(doc, "Maria", "NAME", occurrence=1),
        entity(doc, "Oak Street", "ADDRESS"),
        entity(doc, "67", "AGE"),
        {"content": "Zebulon", "category": "NAME", "startTime": 99.0, "endTime": 99.4},
    ]
    doc["results"]["entities"] = entities
    return doc, entities


def render(doc: dict[str, Any], **kwargs: Any) -> Any:
    return render_documents(json.dumps(doc).encode(), job=JOB, redact_phi=True, **kwargs)


def words_of(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def assert_free_of(body: str, entities: list[dict[str, Any]], *, substrings: bool = True) -> None:
    """No entity's words in ``body``; with ``substrings`` not even as part of a word
    (off for documents holding digests, where "67" may occur by chance)."""
    lowered = body.lower()
    spoken = " ".join(words_of(body))
    for e in entities:
        content = e["content"].lower()
        if substrings:
            assert content not in lowered
        assert f" {' '.join(words_of(content))} " not in f" {spoken} "


def test_redacted_documents_hold_no_entity_content() -> None:
    doc, entities = labelled()
    rendered = render(doc)

    for name in REDACTED_NAMES.values():
        assert_free_of(rendered.files[name].decode(), entities)
    redacted = rendered.files["transcript.redacted.txt"].decode()
    assert redacted.count("[PHI: NAME]") == 4  # every Maria, each "Maria Lopez" as one
    assert "[PHI: NAME]," in redacted  # the comma after a name survives
    assert "[PHI: ADDRESS]." in redacted
    assert "[PHI: AGE]" in redacted
    # The unredacted documents still hold the text (the reviewer's copy).
    assert "Maria Lopez" in rendered.files["transcript.txt"].decode()


def test_summary_reports_counts_times_and_the_unmatched_entity_without_text() -> None:
    doc, entities = labelled()
    rendered = render(doc)
    summary_text = rendered.files["summary.json"].decode()
    report = json.loads(summary_text)["phi_redaction"]
    report["spans"] = json.loads(summary_text)["phi_spans"]

    assert report["entities"] == 5
    assert report["matched_by_time_and_content"] == 4
    assert report["unmatched"] == [{"category": "NAME", "start_time": 99.0, "end_time": 99.4}]
    assert report["redacted_spans"] == len(report["spans"]) == 6
    assert all(s["start_time"] <= s["end_time"] for s in report["spans"])
    assert_free_of(summary_text, entities)


def test_an_entity_whose_time_misses_its_words_is_still_redacted_by_content() -> None:
    doc = transcript()
    doc["results"]["entities"] = [
        {"content": "Oak Street", "category": "ADDRESS", "startTime": 0.0, "endTime": 0.2}
    ]
    report = json.loads(render(doc).files["summary.json"])["phi_redaction"]

    assert report["matched_by_content_elsewhere"] == 1
    assert report["unmatched"] == []
    assert "Oak" not in render(doc).files["dialogue.redacted.txt"].decode()


def test_an_entity_whose_content_is_nowhere_has_its_time_span_redacted() -> None:
    doc = transcript()
    start, end = word_times(doc, "Oak", "Street")[0]
    doc["results"]["entities"] = [
        {"content": "Elm Road", "category": "ADDRESS", "startTime": start, "endTime": end}
    ]
    rendered = render(doc)
    report = json.loads(rendered.files["summary.json"])["phi_redaction"]

    assert report["matched_by_time_only"] == 1
    assert "Oak Street" not in rendered.files["transcript.redacted.txt"].decode()


def test_without_unredacted_documents_nothing_written_holds_phi() -> None:
    doc, entities = labelled()
    rendered = render(doc, write_unredacted=False, low_confidence_threshold=1.0)

    assert not set(READABLE_NAMES) & set(rendered.files)
    assert set(REDACTED_NAMES.values()) < set(rendered.files)
    for name, body in rendered.files.items():
        assert_free_of(body.decode(), entities, substrings=name.endswith(".txt"))
    fhir = json.loads(rendered.files["document-reference.json"])
    carried = base64.b64decode(fhir["content"][0]["attachment"]["data"])
    assert carried == rendered.files["transcript.redacted.txt"]
    assert "[PHI: NAME]" in rendered.files["mdm-t02.hl7"].decode()
    low = json.loads(rendered.files["summary.json"])["low_confidence_words"]
    assert "[PHI: NAME]" in [w["word"] for w in low]


def test_redaction_on_the_emulators_own_entities() -> None:
    doc = transcript(identify_phi=True)
    entities = doc["results"]["entities"]
    rendered = render(doc)

    assert {e["content"] for e in entities} >= {"Maria Lopez", "Oak Street", "67"}
    for name in REDACTED_NAMES.values():
        assert_free_of(rendered.files[name].decode(), entities)


def test_turns_and_captions_keep_their_shape_when_redacted() -> None:
    doc, _ = labelled()
    rendered = render(doc)
    turns = json.loads(rendered.files["turns.redacted.json"])["turns"]
    full = json.loads(rendered.files["turns.json"])["turns"]

    assert [(t["start"], t["end"], t["label"]) for t in turns] == [
        (t["start"], t["end"], t["label"]) for t in full
    ]
    vtt = rendered.files["captions.redacted.vtt"].decode()
    assert vtt.startswith("WEBVTT\n")
    assert "[PHI: NAME]" in vtt


def test_without_redaction_no_redacted_documents_and_no_report() -> None:
    doc, _ = labelled()
    rendered = render_documents(json.dumps(doc).encode(), job=JOB)

    assert not set(REDACTED_NAMES.values()) & set(rendered.files)
    assert json.loads(rendered.files["summary.json"])["phi_redaction"] is None


def test_unredacted_off_without_redaction_is_refused() -> None:
    with pytest.raises(ValueError, match="redact_phi"):
        render_documents(json.dumps(transcript()).encode(), job=JOB, write_unredacted=False)


@pytest.mark.parametrize(
    ("category", "shown"),
    [
        ("NAME", "[PHI: NAME]"),
        ("PHI-Personal", "[PHI: PERSONAL]"),
        ("PHI", "[PHI]"),
        ("date of birth]<x>", "[PHI: DATE_OF_BIRTH_X]"),
    ],
)
def test_placeholders_name_the_category_safely(category: str, shown: str) -> None:
    assert placeholder(category) == shown
