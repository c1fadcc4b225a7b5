"""Parity: one small scenario on the simulator's stand-ins and on the moto emulator ends in
the same job index, with the same AWS calls by the pipeline's own code.

The simulator's figures (calls per file, a backlog that keeps the quota full) are only worth
what its stand-ins are: this runs the same uploads through both worlds and compares.

How the two are aligned (each a difference of timing, not of behaviour):
- Settings: the simulation runs on the settings the emulator's handlers load, so bucket
  names, prefix, share and job options are equal. Job names still differ, because moto's
  version ids differ from the stand-in's: uploads are matched by input key.
- Arrivals: one upload at a time (a second apart in the simulator; upload, then one emulator
  step), so each has its own start invocation and its own `created_at` on both sides. In a
  burst the simulator stamps every item of a batch with the same virtual millisecond and
  both DynamoDB and the stand-in break the tie by job name, which differs between the two.
- The reconciler runs exactly twice on both sides: once while the first three jobs run and
  three wait, and once after everything ended. The simulator otherwise reconciles every five
  minutes for an hour after the last job, the emulator only until it settles; the number of
  runs would differ, not what a run does.
- Completion events are all delivered, each 0.5 s after its job ends (no random delay), and
  the audio lengths keep every two job ends apart: each post-process invocation finishes one
  job and dispatches into one freed slot, in both worlds.
- Both Transcribes "say" the same script, so the transcripts and their stats are equal.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from devkit.emulator import PipelineEmulator
from devkit.media_samples import wav_bytes
from devkit.simulation.faults import Faults
from devkit.simulation.runner import NOT_AUDIO, Simulation
from devkit.simulation.scenario import Scenario, Upload
from devkit.simulation.transcribe import UTTERANCES
from devkit.transcribe_medical import MODEL_NAME
from pipeline import aws_clients
from pipeline import job_index as ji
from pipeline.output_layout import transcript_key_for
from pipeline.settings import load_settings
from stacks.config import parse_environment

pytestmark = pytest.mark.e2e

SHARE = 3  # three jobs run, three wait in the backlog
# Audio lengths in seconds: jobs take 0.3 x length + 30 s, under one emulator tick (60 s).
UPLOADS = (
    Upload(key="conversation/clinic-01/visit 000001.wav", arrives_s=1.0, duration_s=12.0),
    Upload(key="dictation/clinic-02/note 000002.wav", arrives_s=2.0, duration_s=25.0),
    Upload(key="conversation/clinic-03/visit 000003.txt", arrives_s=3.0, duration_s=0, valid=False),
    Upload(key="conversation/clinic-04/visit 000004.wav", arrives_s=4.0, duration_s=40.0),
    Upload(key="dictation/clinic-05/note 000005.wav", arrives_s=5.0, duration_s=18.0),
    Upload(key="elsewhere/visit 000006.txt", arrives_s=6.0, duration_s=0, valid=False),
    Upload(key="conversation/clinic-07/visit 000007.wav", arrives_s=7.0, duration_s=33.0),
    Upload(key="conversation/clinic-08/visit 000008.wav", arrives_s=8.0, duration_s=50.0),
)
MID_RUN_S = 20.0  # every upload admitted, no job ended yet (the first ends at 34.6 s)
AFTER_ALL_S = 1800.0  # long after the last job ended (about 92 s)
ENVIRONMENT = {
    "region": "us-east-1",
    "show_speaker_labels": True,
    "max_speaker_labels": 2,
    "concurrent_job_quota": SHARE,
    "concurrent_job_share": SHARE,
    # Each shapes the transcript and the documents: both worlds must honour them alike.
    "identify_phi": True,
    "max_alternatives": 2,
}
# Differ by construction: times, and what derives from moto's version ids and ETags.
NOT_COMPARED = {
    "job_name",
    "transcript_key",
    "input_version",
    "input_etag",
    "created_at",
    "updated_at",
    "completed_at",
}

Call = tuple[str, str]


@dataclass(frozen=True)
class Outcome:
    items: dict[str, dict[str, Any]]  # by input key
    calls: Counter[Call]
    documents: dict[str, dict[str, bytes]]  # input key -> readable document -> its bytes


def is_readable(document: str) -> bool:
    """The documents made of the transcript alone (the others quote job names, versions and
    times, which differ by construction)."""
    return document.endswith((".txt", ".vtt", ".srt"))


def comparable(item: Mapping[str, Any]) -> dict[str, Any]:
    """An index item without what differs by construction; maps of documents by name."""
    plain: dict[str, Any] = ji.from_dynamo(dict(item))
    kept = {k: v for k, v in plain.items() if k not in NOT_COMPARED}
    for documents in ("outputs", "output_versions"):
        if documents in kept:
            kept[documents] = sorted(kept[documents])
    return kept


def body_of(upload: Upload) -> bytes:
    # The stand-in's upload: a 16 kHz 16-bit mono WAV of that length (or the invalid bytes).
    return wav_bytes(duration_s=upload.duration_s) if upload.valid else NOT_AUDIO


def count_calls_of(client: Any, calls: Counter[Call]) -> None:
    """Count every API call this client makes, by service and operation. First in line, so
    a call the emulator's own hook refuses (throttling) is counted as the stand-in counts it."""

    def count(event_name: str, **_: Any) -> None:
        _before_call, service, operation = event_name.split(".", 2)
        calls[(service, operation)] += 1

    client.meta.events.register_first("before-call", count)


@pytest.fixture(scope="module")
def on_moto() -> tuple[Outcome, dict[str, Any]]:
    saved = dict(os.environ)
    try:
        with mock_aws():
            config = parse_environment("parity", ENVIRONMENT)
            emulator = PipelineEmulator(
                config,
                script=lambda _name, _job: UTTERANCES,
                reconcile_every=10**6,  # only the two runs below
            )
            # Poll every open job, however recently updated, on both sides.
            os.environ["RECONCILE_POLL_AFTER_SECONDS"] = "0"
            settings = load_settings()
            calls: Counter[Call] = Counter()
            # The handlers' own clients (cached for the life of a sandbox), not the
            # emulator's or moto's.
            for service in ("s3", "sqs", "transcribe"):
                count_calls_of(aws_clients.client(service), calls)
            count_calls_of(aws_clients.table(settings.job_table).meta.client, calls)
            try:
                emulator.step()  # the s3:TestEvent that setting the notification sent
                for upload in UPLOADS:
                    emulator.upload(upload.key, body_of(upload))
                    emulator.step()
                emulator.reconcile()  # three jobs running, three waiting
                assert emulator.run_until_settled(max_ticks=10)
                emulator.reconcile()
                items = {str(i["input_key"]): i for i in emulator.items()}
                documents = {
                    key: {
                        name: emulator.s3.get_object(
                            Bucket=emulator.stack.output_bucket, Key=document
                        )["Body"].read()
                        for name, document in item.get("outputs", {}).items()
                        if is_readable(name)
                    }
                    for key, item in items.items()
                }
            finally:
                emulator.close()
    finally:
        state_manager.unset_transition(MODEL_NAME)
        os.environ.clear()
        os.environ.update(saved)
    return Outcome(items=items, calls=calls, documents=documents), asdict(settings)


@pytest.fixture(scope="module")
def on_stand_ins(on_moto: tuple[Outcome, dict[str, Any]]) -> Simulation:
    _, settings = on_moto
    scenario = Scenario(
        name="parity",
        files=len(UPLOADS),
        given_uploads=UPLOADS,
        quota=SHARE,
        share=SHARE,
        faults=Faults(event_max_delay_s=0.0),
    )
    simulation = Simulation(
        scenario,
        settings_overrides=settings,
        reconcile_at=(MID_RUN_S, AFTER_ALL_S),
        keep_bodies=True,
    )
    simulation.run()
    return simulation


@pytest.fixture(scope="module")
def simulated(on_stand_ins: Simulation) -> Outcome:
    items = {
        str(item["input_key"]): item
        for name, item in on_stand_ins.store.items.items()
        if not name.startswith("#")  # the capacity counter and the start-rate windows
    }
    output_bucket = on_stand_ins.settings.output_bucket
    documents: dict[str, dict[str, bytes]] = {}
    for key, item in items.items():
        documents[key] = {}
        for name, document in item.get("outputs", {}).items():
            stored = on_stand_ins.s3.current(output_bucket, document)
            if is_readable(name) and stored is not None and stored.body is not None:
                documents[key][name] = stored.body
    return Outcome(items=items, calls=Counter(on_stand_ins.calls.counts), documents=documents)


@pytest.fixture(scope="module")
def emulated(on_moto: tuple[Outcome, dict[str, Any]]) -> Outcome:
    return on_moto[0]


def test_the_scenario_made_a_backlog_and_ended_every_upload(simulated, emulated, on_stand_ins):
    for outcome in (simulated, emulated):
        statuses = Counter(item["status"] for item in outcome.items.values())
        assert statuses == {ji.COMPLETED: 6, ji.REJECTED: 2}
        assert outcome.calls[("transcribe", "StartMedicalTranscriptionJob")] == 6
    # Three of the six waited for a slot: the quota was full while they waited.
    assert on_stand_ins.transcribe.peak_running == SHARE
    assert on_stand_ins.reconcile_runs == 2


def test_both_worlds_end_in_the_same_index(simulated, emulated):
    assert set(simulated.items) == {u.key for u in UPLOADS}
    assert set(emulated.items) == set(simulated.items)
    for key in simulated.items:
        assert comparable(simulated.items[key]) == comparable(emulated.items[key]), key


def test_both_worlds_write_the_same_readable_documents(simulated, emulated):
    assert simulated.documents == emulated.documents
    for documents in simulated.documents.values():
        if documents:
            assert len(documents) == 8  # four documents, each also redacted
            # PHI identification labelled the name in both worlds' transcripts.
            assert b"Maria" in documents["transcript.txt"]
            assert b"Maria" not in documents["transcript.redacted.txt"]


def test_each_world_keeps_its_transcript_where_the_job_name_says(simulated, emulated):
    for outcome in (simulated, emulated):
        for item in outcome.items.values():
            if item["status"] == ji.COMPLETED:
                assert item["transcript_key"] == transcript_key_for(str(item["job_name"]))
                prefix = f"transcripts/{item['input_key']}/{item['input_version']}/"
                assert all(str(key).startswith(prefix) for key in item["outputs"].values())


def test_both_worlds_make_the_same_aws_calls(simulated, emulated):
    # Every call is counted, so equal totals mean equal calls per file for each operation.
    differences = {
        f"{service}.{operation}": {"stand-ins": simulated.calls[call], "moto": emulated.calls[call]}
        for call in sorted(set(simulated.calls) | set(emulated.calls))
        if simulated.calls[call] != emulated.calls[call]
        for service, operation in [call]
    }
    assert differences == {}
    assert sum(simulated.calls.values()) > 10 * len(UPLOADS)  # the hooks did count
