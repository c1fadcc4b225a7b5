"""The start-job handler on moto: an upload becomes exactly one Transcribe Medical job."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

import start_job
from devkit.lambda_events import s3_notification, s3_test_event
from devkit.media_samples import flac_bytes, mp3_bytes, wav_bytes
from pipeline.dispatch import LIMIT_BACKOFF_S, Dispatcher
from pipeline.job_names import job_name_for
from pipeline.settings import SettingsError, load_settings

from .conftest import Env, fail_calls

WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=1.0)
STEREO_WAV = wav_bytes(sample_rate=44100, channels=2, duration_s=1.0)


def run(env: Env, event: dict[str, Any], lambda_context: Any) -> list[str]:
    """Invoke the handler; return the message IDs it reported as failed."""
    response = start_job.handler(event, lambda_context)
    return [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]


def message_ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


# --- the happy path -------------------------------------------------------------------


def test_upload_under_conversation_starts_one_queued_job(env: Env, lambda_context):
    # Given a 16 kHz mono WAV under conversation/
    note = env.put("conversation/visit.wav", WAV)
    # When the handler receives its notification
    failures = run(env, env.event(note), lambda_context)
    # Then one job is queued and recorded with what validation learned
    assert failures == []
    item = env.only_item()
    assert item["status"] == "QUEUED"
    assert item["type"] == "CONVERSATION"
    assert item["specialty"] == "PRIMARYCARE"
    assert item["input_bucket"] == env.stack.input_bucket
    assert item["input_key"] == "conversation/visit.wav"
    assert item["input_version"] == note["Records"][0]["s3"]["object"]["versionId"]
    assert item["input_size"] == len(WAV)
    assert item["media_format"] == "wav"
    assert item["sample_rate_hz"] == 16000
    assert item["channels"] == 1
    assert float(item["duration_s"]) == pytest.approx(1.0)
    assert item["attempts"] == 1
    assert item["transcript_key"] == f"medical/{item['job_name']}.json"
    assert item["created_at"].endswith("Z")
    assert item["updated_at"] >= item["created_at"]
    job = env.transcribe.get_medical_transcription_job(MedicalTranscriptionJobName=item["job_name"])
    media_uri = job["MedicalTranscriptionJob"]["Media"]["MediaFileUri"]
    assert media_uri == f"s3://{env.stack.input_bucket}/conversation/visit.wav"


def test_start_request_carries_output_bucket_key_kms_format_and_settings(env: Env, lambda_context):
    run(env, env.event(env.put("conversation/visit.wav", WAV)), lambda_context)
    (request,) = env.start_requests
    job_name = env.only_item()["job_name"]
    assert request == {
        "MedicalTranscriptionJobName": job_name,
        "LanguageCode": "en-US",
        "Media": {"MediaFileUri": f"s3://{env.stack.input_bucket}/conversation/visit.wav"},
        "MediaFormat": "wav",
        "OutputBucketName": env.stack.output_bucket,
        "OutputKey": f"medical/{job_name}.json",
        "OutputEncryptionKMSKeyId": env.stack.key_arn,
        "Specialty": "PRIMARYCARE",
        "Type": "CONVERSATION",
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 3},
    }
    assert "MediaSampleRateHertz" not in request  # a wrong value fails the job: let it detect


@pytest.mark.parametrize(
    ("key", "expected_type"),
    [
        ("dictation/note.wav", "DICTATION"),
        ("conversation/visit.wav", "CONVERSATION"),
        ("Dictation/upper-case-folder.wav", "DICTATION"),
        ("clinic-a/visit.wav", "DICTATION"),  # elsewhere: DEFAULT_TYPE
        ("top-level.wav", "DICTATION"),
        ("clinic/dictation/nested.wav", "DICTATION"),
    ],
)
def test_job_type_follows_the_key_prefix(make_env, lambda_context, key, expected_type):
    env = make_env(default_type="DICTATION")
    run(env, env.event(env.put(key, WAV)), lambda_context)
    assert env.only_item()["type"] == expected_type
    assert env.start_requests[0]["Type"] == expected_type


def test_conversation_prefix_overrides_a_dictation_default(make_env, lambda_context):
    env = make_env(default_type="DICTATION")
    run(env, env.event(env.put("conversation/visit.wav", WAV)), lambda_context)
    assert env.start_requests[0]["Type"] == "CONVERSATION"


@pytest.mark.parametrize(
    "key",
    [
        "conversation/patient visit.wav",
        "conversation/a+b.wav",
        "conversation/Zoë Łukasz 診察.wav",
        "conversation/clinic/2026/11/visit.wav",
        "conversation/100% done & (final).wav",
    ],
)
def test_encoded_keys_are_decoded_exactly(env: Env, lambda_context, key):
    note = env.put(key, WAV)
    encoded = note["Records"][0]["s3"]["object"]["key"]
    assert encoded != key  # the notification really is URL-encoded
    assert run(env, env.event(note), lambda_context) == []
    item = env.only_item()
    assert item["input_key"] == key
    assert item["status"] == "QUEUED"
    assert env.start_requests[0]["Media"]["MediaFileUri"] == f"s3://{env.stack.input_bucket}/{key}"


def test_flac_and_mp3_uploads_get_their_media_format(env: Env, lambda_context):
    notes = [
        env.put("conversation/a.flac", flac_bytes(sample_rate=16000, duration_s=1.0)),
        env.put("conversation/b.mp3", mp3_bytes()),
    ]
    assert run(env, env.event(*notes), lambda_context) == []
    formats = sorted(r["MediaFormat"] for r in env.start_requests)
    assert formats == ["flac", "mp3"]


def test_content_decides_the_format_when_the_extension_is_another_audio_type(
    env: Env, lambda_context
):
    # FLAC bytes named .wav are transcribable: MediaFormat follows the content
    run(env, env.event(env.put("conversation/mislabelled.wav", flac_bytes())), lambda_context)
    assert env.only_item()["status"] == "QUEUED"
    assert env.start_requests[0]["MediaFormat"] == "flac"


# --- exactly once ---------------------------------------------------------------------


def test_the_same_notification_twice_in_one_batch_makes_one_job(env: Env, lambda_context):
    note = env.put("conversation/visit.wav", WAV)
    assert run(env, env.event(note, note), lambda_context) == []
    assert len(env.items()) == 1
    assert len(env.start_requests) == 1
    jobs = env.transcribe.list_medical_transcription_jobs()["MedicalTranscriptionJobSummaries"]
    assert len(jobs) == 1


def test_a_redelivery_after_the_job_started_changes_nothing(env: Env, lambda_context):
    note = env.put("conversation/visit.wav", WAV)
    run(env, env.event(note), lambda_context)
    before = env.only_item()
    assert run(env, env.event(note, receive_count=2), lambda_context) == []
    assert env.only_item() == before
    assert len(env.start_requests) == 1


def test_a_new_version_of_the_same_key_is_a_new_job(env: Env, lambda_context):
    first = env.put("conversation/visit.wav", WAV)
    run(env, env.event(first), lambda_context)
    second = env.put("conversation/visit.wav", STEREO_WAV)
    run(env, env.event(second), lambda_context)
    items = env.items()
    assert len(items) == 2
    assert len({i["job_name"] for i in items}) == 2
    assert {i["input_version"] for i in items} == {
        first["Records"][0]["s3"]["object"]["versionId"],
        second["Records"][0]["s3"]["object"]["versionId"],
    }
    assert all(i["status"] == "QUEUED" for i in items)


def test_an_upload_replaced_before_it_started_is_not_transcribed_under_its_name(
    env: Env, lambda_context
):
    # Transcribe reads a key's current version: the older upload must not start a job that
    # would transcribe the newer audio. Delivered out of order, the newer one first.
    first = env.put("conversation/visit.wav", WAV)
    second = env.put("conversation/visit.wav", STEREO_WAV)
    run(env, env.event(second), lambda_context)
    run(env, env.event(first), lambda_context)
    by_version = {i["input_version"]: i for i in env.items()}
    older = by_version[first["Records"][0]["s3"]["object"]["versionId"]]
    newer = by_version[second["Records"][0]["s3"]["object"]["versionId"]]
    assert newer["status"] == "QUEUED"
    assert newer["channels"] == 2
    assert older["status"] == "REJECTED"
    assert "newer upload with the same name replaced this file" in older["failure_reason"]
    assert len(env.start_requests) == 1


def test_a_job_started_by_a_lost_attempt_counts_as_started(env: Env, lambda_context):
    # Given an earlier attempt started the job but died before recording QUEUED
    note = env.put("conversation/visit.wav", WAV)
    version = note["Records"][0]["s3"]["object"]["versionId"]
    job_name = job_name_for(
        "medscribe-test",
        bucket=env.stack.input_bucket,
        key="conversation/visit.wav",
        version_id=version,
    )
    env.transcribe.start_medical_transcription_job(
        MedicalTranscriptionJobName=job_name,
        LanguageCode="en-US",
        Media={"MediaFileUri": f"s3://{env.stack.input_bucket}/conversation/visit.wav"},
        OutputBucketName=env.stack.output_bucket,
        Specialty="PRIMARYCARE",
        Type="CONVERSATION",
    )
    # When the message is delivered again, Transcribe answers ConflictException
    assert run(env, env.event(note), lambda_context) == []
    # Then the job is QUEUED, not failed
    assert env.item(job_name)["status"] == "QUEUED"


def test_a_name_clash_with_another_files_job_fails_the_job(env: Env, lambda_context):
    note = env.put("conversation/visit.wav", WAV)
    version = note["Records"][0]["s3"]["object"]["versionId"]
    job_name = job_name_for(
        "medscribe-test",
        bucket=env.stack.input_bucket,
        key="conversation/visit.wav",
        version_id=version,
    )
    env.transcribe.start_medical_transcription_job(
        MedicalTranscriptionJobName=job_name,
        LanguageCode="en-US",
        Media={"MediaFileUri": f"s3://{env.stack.input_bucket}/other.wav"},
        OutputBucketName=env.stack.output_bucket,
        Specialty="PRIMARYCARE",
        Type="CONVERSATION",
    )
    assert run(env, env.event(note), lambda_context) == []
    item = env.item(job_name)
    assert item["status"] == "FAILED"
    assert "already exists for a different file" in item["failure_reason"]


# --- job names --------------------------------------------------------------------------


def test_job_names_are_valid_deterministic_and_carry_no_key_text(env: Env, lambda_context):
    key = "conversation/Jane-Doe_DOB-1970-01-01.wav"
    run(env, env.event(env.put(key, WAV)), lambda_context)
    name = env.only_item()["job_name"]
    assert re.fullmatch(r"[0-9a-zA-Z._-]{1,200}", name)
    assert name.startswith("medscribe-test-")
    for fragment in ("Jane", "Doe", "1970", "conversation", "wav"):
        assert fragment.lower() not in name.lower()


def test_job_name_depends_on_bucket_key_and_version():
    base = {"bucket": "b", "key": "k.wav", "version_id": "v1"}
    name = job_name_for("p", **base)
    assert name == job_name_for("p", **base)
    assert name != job_name_for("p", **{**base, "version_id": "v2"})
    assert name != job_name_for("p", **{**base, "key": "k2.wav"})
    assert name != job_name_for("p", **{**base, "bucket": "c"})
    assert len(job_name_for("x" * 100, **base)) <= 200
    with pytest.raises(ValueError, match="prefix"):
        job_name_for("bad prefix", **base)


# --- bad input: REJECTED with a reason, no Transcribe call, message done -----------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)

BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("8khz.wav", wav_bytes(sample_rate=8000), "8000 Hz"),
    ("11khz.wav", wav_bytes(sample_rate=11025), "11025 Hz"),
    ("96khz.wav", wav_bytes(sample_rate=96000, duration_s=0.6), "96000 Hz"),
    ("8bit.wav", wav_bytes(bits=8), "16-bit"),
    ("24bit.wav", wav_bytes(bits=24), "16-bit"),
    ("float.wav", wav_bytes(bits=32, format_tag=3), "16-bit"),
    ("three-channels.wav", wav_bytes(channels=3), "channel"),
    ("short.wav", wav_bytes(duration_s=0.2), "0.5"),
    ("truncated.wav", wav_bytes()[:30], "WAV"),
    ("image.wav", PNG, "PNG"),
    ("empty.wav", b"", "empty"),
    ("notes.mp3", b"Patient presents with a cough.\n" * 10, "text"),
    ("notes.txt", b"Patient presents with a cough.\n", ".txt"),
    ("scan.xyz", wav_bytes(), ".xyz"),
    ("no-extension", wav_bytes(), "extension"),
    ("8khz.flac", flac_bytes(sample_rate=8000), "8000 Hz"),
    ("short.flac", flac_bytes(duration_s=0.3), "0.5"),
    ("random.ogg", bytes(range(256)) * 4, "ogg"),
]


@pytest.mark.parametrize(("name", "body", "phrase"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_rejected_with_an_actionable_reason(
    env: Env, lambda_context, name, body, phrase
):
    failures = run(env, env.event(env.put(f"conversation/Zed Quill {name}", body)), lambda_context)
    assert failures == []  # done: retrying cannot fix the file
    item = env.only_item()
    assert item["status"] == "REJECTED"
    assert phrase.lower() in item["failure_reason"].lower()
    assert "Zed" not in item["failure_reason"]  # no key text in the reason
    assert item["completed_at"]
    assert env.start_requests == []


def test_a_file_over_2_gb_is_rejected_without_reading_gigabytes(env: Env, lambda_context):
    # The notification's size is what S3 says; the object itself is small in the emulator
    note = env.put("conversation/huge.wav", WAV)
    note["Records"][0]["s3"]["object"]["size"] = 2 * 1024**3 + 1
    run(env, env.event(note), lambda_context)
    item = env.only_item()
    assert item["status"] == "REJECTED"
    assert "2 GB" in item["failure_reason"]


def test_a_file_deleted_before_processing_is_rejected_with_a_reason(env: Env, lambda_context):
    note = env.put("conversation/visit.wav", WAV)
    env.s3.delete_object(
        Bucket=env.stack.input_bucket,
        Key="conversation/visit.wav",
        VersionId=note["Records"][0]["s3"]["object"]["versionId"],
    )
    assert run(env, env.event(note), lambda_context) == []
    item = env.only_item()
    assert item["status"] == "REJECTED"
    assert "deleted" in item["failure_reason"]


def test_a_rejected_upload_delivered_again_stays_rejected(env: Env, lambda_context):
    note = env.put("conversation/8khz.wav", wav_bytes(sample_rate=8000))
    run(env, env.event(note), lambda_context)
    before = env.only_item()
    assert run(env, env.event(note, receive_count=2), lambda_context) == []
    assert env.only_item() == before


# --- transient errors: PENDING, message retried -----------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("LimitExceededException", 400),
        ("ThrottlingException", 400),
        ("InternalFailureException", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_busy_transcribe_puts_the_job_back_in_the_backlog_and_the_message_is_done(
    env: Env, lambda_context, code, status
):
    # Given Transcribe refuses the next start for capacity or load
    env.fail_transcribe(code, status=status)
    event = env.event(env.put("conversation/visit.wav", WAV))
    # Then the message is done: waiting costs no receives and never reaches the DLQ
    assert run(env, event, lambda_context) == []
    item = env.only_item()
    assert item["status"] == "PENDING"
    assert item["attempts"] == 1
    assert "failure_reason" not in item
    assert Dispatcher.from_environment().ledger.state().in_flight == 0  # the slot came back
    # When the dispatcher runs again (after any back-off) and Transcribe has room
    later = Dispatcher.from_environment()
    later.epoch = lambda: time.time() + LIMIT_BACKOFF_S + 1
    assert later.dispatch().started == 1
    item = env.only_item()
    assert item["status"] == "QUEUED"
    assert item["attempts"] == 2
    assert later.ledger.state().in_flight == 1


def test_limit_exceeded_backs_every_dispatch_off_without_failing_anything(env: Env, lambda_context):
    # Given another workload has taken the account's capacity
    env.fail_transcribe("LimitExceededException", times=1)
    event = env.event(env.put("conversation/a.wav", WAV), env.put("conversation/b.wav", WAV))
    assert run(env, event, lambda_context) == []
    # Then both wait in the backlog and nothing is retried before the back-off ends
    assert sorted(i["status"] for i in env.items()) == ["PENDING", "PENDING"]
    assert len(env.start_requests) == 1
    assert Dispatcher.from_environment().dispatch().started == 0
    assert len(env.start_requests) == 1
    # When the back-off has passed, the oldest waiting jobs start
    later = Dispatcher.from_environment()
    later.epoch = lambda: time.time() + LIMIT_BACKOFF_S + 1
    assert later.dispatch().started == 2
    assert sorted(i["status"] for i in env.items()) == ["QUEUED", "QUEUED"]


def test_on_its_last_delivery_a_waiting_upload_stays_pending_instead_of_dead_lettering(
    env: Env, lambda_context
):
    env.fail_transcribe("LimitExceededException")
    event = env.event(env.put("conversation/visit.wav", WAV), receive_count=10)
    assert run(env, event, lambda_context) == []  # not to the DLQ merely for waiting
    assert env.only_item()["status"] == "PENDING"  # the dispatcher starts it later


def test_starts_stop_at_the_environments_share(make_env, lambda_context):
    # Given an environment whose share of the account's quota is 2 jobs
    env = make_env(concurrent_job_share=2, concurrent_job_quota=250)
    notes = [env.put(f"conversation/{n}.wav", WAV) for n in "abcd"]
    assert run(env, env.event(*notes), lambda_context) == []
    # Then the two oldest uploads are started and the others wait, in order
    items = sorted(env.items(), key=lambda i: i["created_at"])
    assert [i["status"] for i in items] == ["QUEUED", "QUEUED", "PENDING", "PENDING"]
    assert len(env.start_requests) == 2
    assert Dispatcher.from_environment().ledger.state().in_flight == 2


def test_a_permanent_transcribe_refusal_fails_the_job_with_its_reason(env: Env, lambda_context):
    env.fail_transcribe("BadRequestException")
    assert run(env, env.event(env.put("conversation/visit.wav", WAV)), lambda_context) == []
    item = env.only_item()
    assert item["status"] == "FAILED"
    assert "BadRequestException" in item["failure_reason"]


# --- malformed messages fail alone ------------------------------------------------------


@pytest.mark.parametrize(
    "poison",
    [
        "not json at all",
        json.dumps(["a", "list"]),
        json.dumps({"no": "records"}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}),
        json.dumps(
            {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "k.wav", "size": "big"}},
                    }
                ]
            }
        ),
    ],
)
def test_a_malformed_message_fails_alone(env: Env, lambda_context, poison):
    good = env.put("conversation/visit.wav", WAV)
    event = env.event(poison, good)
    assert run(env, event, lambda_context) == message_ids(event)[:1]
    assert env.only_item()["status"] == "QUEUED"


def test_the_s3_test_event_is_ignored(env: Env, lambda_context):
    assert run(env, env.event(s3_test_event(env.stack.input_bucket)), lambda_context) == []
    assert env.items() == []
    assert env.start_requests == []


def test_folder_markers_and_other_buckets_are_ignored(env: Env, lambda_context):
    folder = env.put("conversation/", b"")
    other = s3_notification(bucket="someone-elses-bucket", key="x.wav", size=10, version_id="v")
    assert run(env, env.event(folder, other), lambda_context) == []
    assert env.items() == []


def test_removal_events_are_not_uploads(env: Env, lambda_context):
    note = s3_notification(
        bucket=env.stack.input_bucket, key="a.wav", size=0, event_name="ObjectRemoved:Delete"
    )
    assert run(env, env.event(note), lambda_context) == []
    assert env.items() == []


# --- settings from the environment ------------------------------------------------------


def test_channel_identification_for_stereo_and_not_for_mono(make_env, lambda_context):
    env = make_env(show_speaker_labels=False, channel_identification=True)
    run(env, env.event(env.put("conversation/stereo.wav", STEREO_WAV)), lambda_context)
    run(env, env.event(env.put("conversation/mono.wav", WAV)), lambda_context)
    by_uri = {r["Media"]["MediaFileUri"].rsplit("/", 1)[1]: r for r in env.start_requests}
    assert by_uri["stereo.wav"]["Settings"] == {"ChannelIdentification": True}
    assert "Settings" not in by_uri["mono.wav"]  # a mono file would fail the job


def test_alternatives_vocabulary_and_phi_identification(make_env, lambda_context):
    env = make_env(
        show_speaker_labels=False,
        max_alternatives=4,
        vocabulary_name="cardiology-terms",
        identify_phi=True,
    )
    run(env, env.event(env.put("dictation/note.wav", WAV)), lambda_context)
    (request,) = env.start_requests
    assert request["Settings"] == {
        "ShowAlternatives": True,
        "MaxAlternatives": 4,
        "VocabularyName": "cardiology-terms",
    }
    assert request["ContentIdentificationType"] == "PHI"
    assert env.only_item()["settings"] == request["Settings"]


def test_missing_environment_variable_is_named():
    with pytest.raises(SettingsError, match="JOB_TABLE"):
        load_settings(
            {"INPUT_BUCKET": "i", "OUTPUT_BUCKET": "o", "KMS_KEY_ID": "k", "JOB_NAME_PREFIX": "p"}
        )
    with pytest.raises(SettingsError, match="SHOW_SPEAKER_LABELS"):
        load_settings(
            {
                "JOB_TABLE": "t",
                "INPUT_BUCKET": "i",
                "OUTPUT_BUCKET": "o",
                "KMS_KEY_ID": "k",
                "JOB_NAME_PREFIX": "p",
                "SHOW_SPEAKER_LABELS": "yes",
            }
        )


# --- privacy: no key text in logs or traces ---------------------------------------------


def test_logs_name_jobs_and_never_keys(env: Env, lambda_context, captured_logs):
    secret = "Jane Doe 1970-01-01"
    notes = [
        env.put(f"conversation/{secret}.wav", WAV),
        env.put(f"conversation/{secret} 8k.wav", wav_bytes(sample_rate=8000)),
        env.put(f"conversation/{secret}.png.wav", PNG),
    ]
    env.fail_transcribe("LimitExceededException", times=1)
    run(env, env.event(*notes, "poison"), lambda_context)
    logs = captured_logs.getvalue()
    assert logs, "the handler logs something"
    for item in env.items():
        assert item["job_name"] in logs
    for fragment in ("Jane", "Doe", "1970-01-01", "Jane+Doe", "Jane%20Doe"):
        assert fragment not in logs


def test_traces_record_neither_s3_keys_nor_aws_error_messages(monkeypatch):
    from aws_xray_sdk.ext import boto_utils

    from pipeline import observability

    # Given tracing as it runs in Lambda (the tests run with it disabled)
    monkeypatch.setattr(observability.tracer, "disabled", False)
    monkeypatch.setitem(boto_utils.whitelist, "services", dict(boto_utils.whitelist["services"]))
    monkeypatch.setattr(boto_utils, "_aws_error_handler", boto_utils._aws_error_handler)
    assert "Key" in json.dumps(boto_utils.whitelist["services"]["s3"])  # what X-Ray would record
    # When the observability module configures it
    assert observability.keep_phi_out_of_traces()
    assert "s3" not in boto_utils.whitelist["services"]
    assert observability.tracer._config["patch_modules"] == ["botocore"]

    # Then a failing S3 call whose message names the object is recorded without the message
    class Subsegment:
        name = "s3"

        def __init__(self) -> None:
            self.recorded: list[Any] = []

        def __getattr__(self, method: str) -> Any:
            return lambda *args, **kwargs: self.recorded.append((method, args, kwargs))

    class Instance:
        class meta:
            region_name = "us-east-1"

    secret = "arn:aws:s3:::in/conversation/Jane Doe.wav"
    error = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": f"not authorized on {secret}"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "r1"},
        },
        "GetObject",
    )
    subsegment = Subsegment()
    boto_utils.aws_meta_processor(
        None,
        Instance(),
        ["GetObject"],
        {"Key": "conversation/Jane Doe.wav", "Bucket": "in"},
        None,
        error,
        subsegment,
        [],
    )
    recorded = repr(subsegment.recorded)
    assert "AccessDenied" in recorded
    assert "Jane" not in recorded
    assert not [c for c in subsegment.recorded if c[0] == "add_exception"]


def test_s3_busy_on_the_last_delivery_records_the_upload_for_later_validation(
    env: Env, lambda_context
):
    import reconcile
    from pipeline import aws_clients

    # Given S3 stays busy through a message's last delivery
    s3_recovers = fail_calls(
        aws_clients.client("s3"), "GetObject", "SlowDown", status=503, times=float("inf")
    )
    good = env.put("conversation/visit.wav", WAV)
    bad = env.put("conversation/8k.wav", wav_bytes(sample_rate=8000))
    assert run(env, env.event(good, bad, receive_count=10), lambda_context) == []
    # Then the uploads are recorded PENDING, not lost to the dead-letter queue
    items = env.items()
    assert [i["status"] for i in items] == ["PENDING", "PENDING"]
    assert all(i["needs_validation"] for i in items)
    assert env.start_requests == []
    # When S3 recovers, the scheduled dispatch validates them, then starts the good one
    s3_recovers()
    reconcile.reconciler().run(time_left_ms=lambda: 300_000)
    by_key = {i["input_key"]: i for i in env.items()}
    assert by_key["conversation/visit.wav"]["status"] == "QUEUED"
    assert by_key["conversation/visit.wav"]["media_format"] == "wav"
    assert by_key["conversation/8k.wav"]["status"] == "REJECTED"
    assert "8000 Hz" in by_key["conversation/8k.wav"]["failure_reason"]
    assert len(env.start_requests) == 1


def test_a_permanent_aws_error_fails_the_message_without_quoting_the_key(
    env: Env, lambda_context, captured_logs
):
    from pipeline import aws_clients

    fail_calls(
        aws_clients.table(env.stack.job_table).meta.client,
        "PutItem",
        "AccessDeniedException",
        message="not authorized: table key conversation/Jane Doe.wav",
    )
    event = env.event(env.put("conversation/Jane Doe.wav", WAV))
    assert run(env, event, lambda_context) == message_ids(event)
    logs = captured_logs.getvalue()
    assert "AccessDeniedException" in logs
    assert "medscribe-test-" in logs
    assert "Jane" not in logs
