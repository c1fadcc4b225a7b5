"""End to end through the emulator: upload -> queue -> start -> Transcribe -> events or
reconciler -> documents -> final index items."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from devkit.emulator import EventPlan, PipelineEmulator
from devkit.media_samples import flac_bytes, png_bytes, text_bytes, wav_bytes
from devkit.transcribe_medical import MODEL_NAME
from stacks.config import parse_environment

pytestmark = pytest.mark.e2e

DOCUMENTS = {"transcript.txt", "dialogue.txt", "captions.vtt", "captions.srt", "summary.json"}
BASE = {"region": "us-east-1", "show_speaker_labels": True, "max_speaker_labels": 2}


@pytest.fixture
def emulate() -> Iterator[Callable[..., PipelineEmulator]]:
    saved = dict(os.environ)
    emulators: list[PipelineEmulator] = []
    with mock_aws():

        def build(settings: dict[str, Any] | None = None, **kwargs: Any) -> PipelineEmulator:
            config = parse_environment("e2e", {**BASE, **(settings or {})})
            emulator = PipelineEmulator(config, **kwargs)
            emulators.append(emulator)
            return emulator

        yield build
        for emulator in emulators:
            emulator.close()
    state_manager.unset_transition(MODEL_NAME)
    os.environ.clear()
    os.environ.update(saved)


def by_key(emulator: PipelineEmulator) -> dict[str, dict[str, Any]]:
    return {i["input_key"]: i for i in emulator.items()}


def document(emulator: PipelineEmulator, item: dict[str, Any], name: str) -> str:
    body = emulator.s3.get_object(Bucket=emulator.stack.output_bucket, Key=item["outputs"][name])
    return str(body["Body"].read().decode())


def assert_completed_with_documents(emulator: PipelineEmulator, item: dict[str, Any]) -> None:
    assert item["status"] == "COMPLETED", item.get("failure_reason")
    assert set(item["outputs"]) >= DOCUMENTS
    assert item["transcript_key"] == f"medical/{item['job_name']}.json"
    assert int(item["stats"]["words"]) > 0
    for name in DOCUMENTS:
        assert document(emulator, item, name)
    summary = json.loads(document(emulator, item, "summary.json"))
    assert summary


def test_dictation_and_conversation_end_completed_with_documents(emulate):
    emulator = emulate()
    # Long enough for the script: the emulator's words never run past the audio
    emulator.upload("dictation/note.wav", wav_bytes(duration_s=20.0))
    emulator.upload("conversation/visit.flac", flac_bytes(duration_s=20.0))
    assert emulator.run_until_settled(max_ticks=10)
    items = by_key(emulator)
    assert items["dictation/note.wav"]["type"] == "DICTATION"
    assert items["conversation/visit.flac"]["type"] == "CONVERSATION"
    for item in items.values():
        assert_completed_with_documents(emulator, item)
    dialogue = document(emulator, items["conversation/visit.flac"], "dialogue.txt")
    assert "Speaker 1:" in dialogue
    assert "Speaker 2:" in dialogue
    assert items["conversation/visit.flac"]["media_format"] == "flac"


def test_channel_identification_end_to_end(emulate):
    emulator = emulate({"show_speaker_labels": False, "channel_identification": True})
    emulator.upload("conversation/call.wav", wav_bytes(channels=2, duration_s=20.0))
    assert emulator.run_until_settled(max_ticks=10)
    (item,) = emulator.items()
    assert_completed_with_documents(emulator, item)
    assert item["settings"] == {"ChannelIdentification": True}
    assert int(item["stats"]["channels"]) == 2
    assert "Channel 2:" in document(emulator, item, "dialogue.txt")


BAD = {
    "conversation/8khz.wav": (wav_bytes(sample_rate=8000), "8000 Hz"),
    "conversation/8bit.wav": (wav_bytes(bits=8), "16-bit"),
    "conversation/3ch.wav": (wav_bytes(channels=3), "channels"),
    "conversation/short.wav": (wav_bytes(duration_s=0.2), "0.5 s"),
    "conversation/truncated.wav": (wav_bytes()[:40], "truncated"),
    "conversation/picture.wav": (png_bytes(), "PNG"),
    "conversation/empty.wav": (b"", "empty"),
    "conversation/notes.wav": (text_bytes(), "text"),
    "conversation/scan.pdf": (b"%PDF-1.7\n", ".pdf"),
    "conversation/8khz.flac": (flac_bytes(sample_rate=8000), "8000 Hz"),
}


def test_every_bad_input_class_is_rejected_and_nothing_is_lost(emulate):
    emulator = emulate()
    for key, (body, _) in BAD.items():
        emulator.upload(key, body)
    emulator.upload("conversation/good.wav", wav_bytes())
    assert emulator.run_until_settled(max_ticks=10)
    items = by_key(emulator)
    assert set(items) == {*BAD, "conversation/good.wav"}  # every upload is in the index
    for key, (_, phrase) in BAD.items():
        assert items[key]["status"] == "REJECTED", key
        assert phrase.lower() in items[key]["failure_reason"].lower(), key
    assert items["conversation/good.wav"]["status"] == "COMPLETED"
    assert len(emulator.transcribe.job_names()) == 1  # no Transcribe call for bad input
    assert emulator.queue_depth(emulator.stack.ingest_dlq_url) == 0


def test_duplicate_s3_deliveries_make_one_job(emulate):
    emulator = emulate()
    emulator.upload("conversation/visit.wav", wav_bytes())
    # S3 delivers at least once: the same notification again
    (message,) = emulator.sqs.receive_message(QueueUrl=emulator.stack.ingest_queue_url)["Messages"]
    for _ in range(2):
        emulator.sqs.send_message(
            QueueUrl=emulator.stack.ingest_queue_url, MessageBody=message["Body"]
        )
    emulator.sqs.change_message_visibility(
        QueueUrl=emulator.stack.ingest_queue_url,
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=0,
    )
    assert emulator.run_until_settled(max_ticks=10)
    assert len(emulator.items()) == 1
    assert len(emulator.transcribe.job_names()) == 1
    assert emulator.items()[0]["status"] == "COMPLETED"


def test_a_new_version_of_a_key_is_a_second_job(emulate):
    emulator = emulate()
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
    assert emulator.run_until_settled(max_ticks=10)
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=2.0))
    assert emulator.run_until_settled(max_ticks=10)
    items = emulator.items()
    assert len(items) == 2
    assert len({i["input_version"] for i in items}) == 2
    assert {i["status"] for i in items} == {"COMPLETED"}
    assert sorted(float(i["duration_s"]) for i in items) == [1.0, 2.0]


def test_an_upload_replaced_while_waiting_is_rejected_and_the_newer_one_transcribed(emulate):
    emulator = emulate()
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=1.0))
    emulator.upload("conversation/visit.wav", wav_bytes(duration_s=2.0))
    assert emulator.run_until_settled(max_ticks=10)
    by_duration = {float(i["duration_s"]): i for i in emulator.items()}
    assert by_duration[2.0]["status"] == "COMPLETED"
    assert by_duration[1.0]["status"] == "REJECTED"
    assert "replaced this file" in by_duration[1.0]["failure_reason"]
    assert len(emulator.transcribe.job_names()) == 1


def test_with_every_event_dropped_the_reconciler_finishes_all_jobs(emulate):
    emulator = emulate(events=EventPlan(drop=1.0), reconcile_every=5)
    for i in range(6):
        emulator.upload(f"conversation/{i}.wav", wav_bytes())
    settled = emulator.run_until_settled(max_ticks=6)  # one reconcile period
    assert settled
    assert {i["status"] for i in emulator.items()} == {"COMPLETED"}
    assert emulator.ticks <= 5


def test_duplicated_and_reordered_events_finish_each_job_once(emulate):
    emulator = emulate(events=EventPlan(duplicate=True, reorder=True, seed=3))
    for i in range(5):
        emulator.upload(f"conversation/{i}.wav", wav_bytes())
    emulator.upload("conversation/bad-rate.wav", wav_bytes())
    emulator.fail = lambda key: "Invalid sample rate for audio file." if "bad-rate" in key else None
    assert emulator.run_until_settled(max_ticks=10)
    statuses = {i["input_key"]: i["status"] for i in emulator.items()}
    assert statuses.pop("conversation/bad-rate.wav") == "FAILED"
    assert set(statuses.values()) == {"COMPLETED"}
    versions = emulator.s3.list_object_versions(
        Bucket=emulator.stack.output_bucket, Prefix="transcripts/"
    )["Versions"]
    written = sum(len(i["outputs"]) for i in emulator.items() if i["status"] == "COMPLETED")
    assert len(versions) == written  # each document written once
    # Late events after the fact move nothing backwards
    before = {i["job_name"]: i for i in emulator.items()}
    emulator.deliver_late_events(list(before), "FAILED")
    assert {i["job_name"]: i for i in emulator.items()} == before


def test_a_job_failed_by_transcribe_ends_failed_with_an_actionable_reason(emulate):
    emulator = emulate(fail=lambda key: "Unsupported media format")
    emulator.upload("dictation/note.wav", wav_bytes())
    assert emulator.run_until_settled(max_ticks=10)
    (item,) = emulator.items()
    assert item["status"] == "FAILED"
    assert "Convert it to 16-bit PCM WAV or FLAC" in item["failure_reason"]
    assert "outputs" not in item


def test_a_burst_of_200_uploads_under_throttling_and_quota_all_complete_once(emulate):
    emulator = emulate({"concurrent_job_quota": 20, "start_batch_size": 10})
    emulator.transcribe.throttle_next_starts = 3  # and then the quota pushes back
    body = wav_bytes(duration_s=0.6)
    for i in range(200):
        emulator.upload(f"conversation/burst/{i:03d}.wav", body)
    assert emulator.run_until_settled(max_ticks=100)
    items = emulator.items()
    assert len(items) == 200
    assert {i["status"] for i in items} == {"COMPLETED"}
    assert len(emulator.transcribe.job_names()) == 200  # exactly one Transcribe job each
    assert emulator.transcribe.throttled_starts >= 3
    assert emulator.queue_depth(emulator.stack.ingest_dlq_url) == 0  # none dead-lettered


def test_a_poison_message_reaches_the_dead_letter_queue_after_the_configured_receives(emulate):
    emulator = emulate({"ingest_max_receive_count": 3})
    emulator.sqs.send_message(QueueUrl=emulator.stack.ingest_queue_url, MessageBody="not json")
    emulator.upload("conversation/visit.wav", wav_bytes())
    # Receives at minutes 0, 6 and 12 (the queue's 6-minute visibility timeout), then redrive
    for _ in range(20):
        emulator.tick()
    assert emulator.queue_depth() == 0
    assert emulator.queue_depth(emulator.stack.ingest_dlq_url) == 1
    assert [i["status"] for i in emulator.items()] == ["COMPLETED"]
