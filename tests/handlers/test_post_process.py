"""The completion path on moto: job ends -> documents in the output bucket -> final status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

import post_process
import start_job
from devkit.lambda_events import sqs_event, sqs_record, transcribe_state_change
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator
from pipeline.completion import explain_failure, transcript_key_from_uri

from .conftest import Env, fail_calls

# Long enough for the emulator's script: it never speaks past the audio's end.
WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=30.0)
STEREO = wav_bytes(sample_rate=16000, channels=2, duration_s=30.0)
DOCUMENTS = ("transcript.txt", "dialogue.txt", "captions.vtt", "captions.srt", "summary.json")
SENTINEL = "Zanzibarquux"
SCRIPT = (
    (0, f"Hello {SENTINEL}, what brings you in today?"),
    (1, "My knee hurts when I climb stairs."),
    (0, "How long has that been going on?"),
    (1, "About three weeks."),
)


def start(env: Env, key: str, lambda_context: Any, body: bytes = WAV) -> str:
    """Upload and run the start handler; return the job's name."""
    note = env.put(key, body)
    assert start_job.handler(env.event(note), lambda_context) == {"batchItemFailures": []}
    return str(next(i["job_name"] for i in env.items() if i["input_key"] == key))


def emulator(env: Env) -> TranscribeMedicalEmulator:
    return TranscribeMedicalEmulator(s3=env.s3)


def read(env: Env, key: str) -> bytes:
    return bytes(env.s3.get_object(Bucket=env.stack.output_bucket, Key=key)["Body"].read())


def deliver(name: str, status: str, lambda_context: Any, **kw: Any) -> dict[str, Any]:
    event = transcribe_state_change(job_name=name, status=status, **kw)
    return dict(post_process.handler(event, lambda_context))


def test_completed_job_gets_five_documents_and_completed_status(env: Env, lambda_context):
    transcribe = emulator(env)
    name = start(env, "conversation/clinic/visit 1.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    # When the completion event arrives
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "COMPLETED"
    # Then the index says COMPLETED with where everything is
    item = env.item(name)
    assert item["status"] == "COMPLETED"
    assert item["transcript_key"] == f"medical/{name}.json"
    # in a folder of its own: the input key with its extension, then the upload's version
    folder = f"transcripts/conversation/clinic/visit 1.wav/{item['input_version']}/"
    assert set(DOCUMENTS) <= set(item["outputs"])
    assert item["outputs"] == {doc: folder + doc for doc in item["outputs"]}
    assert item["completed_at"]
    assert int(item["stats"]["words"]) > 10
    assert int(item["stats"]["speakers"]) == 2
    # And the documents are there, encrypted with the stack's key, and readable, and the
    # index names the version each write created
    assert set(item["output_versions"]) == set(item["outputs"])
    for doc, key in item["outputs"].items():
        head = env.s3.head_object(Bucket=env.stack.output_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == env.stack.key_arn
        assert head["VersionId"] == item["output_versions"][doc]
    assert "My knee hurts when I climb stairs." in read(env, folder + "transcript.txt").decode()
    lines = read(env, folder + "dialogue.txt").decode().splitlines()
    # The emulator's words are invented, and the document says so first
    assert lines[0].startswith("[Emulated transcript:")
    dialogue = [line for line in lines if line.startswith("[")][1:]
    assert dialogue[0].startswith("[00:00:00 - ")
    assert "Speaker 1:" in dialogue[0]
    assert "Speaker 2:" in dialogue[1]
    assert read(env, folder + "captions.vtt").startswith(b"WEBVTT")
    summary = json.loads(read(env, folder + "summary.json"))
    assert summary["job"]["job_name"] == name
    assert summary["speakers"]["count"] == 2


def test_failed_job_records_an_actionable_reason(env: Env, lambda_context):
    transcribe = emulator(env)
    name = start(env, "conversation/visit.wav", lambda_context)
    transcribe.fail(name, "Invalid sample rate for audio file.")
    assert deliver(name, "FAILED", lambda_context)["outcome"] == "FAILED"
    item = env.item(name)
    assert item["status"] == "FAILED"
    assert "Resample it to 16 kHz" in item["failure_reason"]
    assert item["transcribe_failure_reason"] == "Invalid sample rate for audio file."
    assert "outputs" not in item


def test_repeated_and_late_events_change_nothing(env: Env, lambda_context):
    transcribe = emulator(env)
    name = start(env, "conversation/visit.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    deliver(name, "COMPLETED", lambda_context)
    item = env.item(name)
    outputs = {k: read(env, k) for k in item["outputs"].values()}
    versions_before = env.s3.list_object_versions(Bucket=env.stack.output_bucket)["Versions"]
    # A repeat, and a stale FAILED event arriving late
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "ALREADY_DONE"
    assert deliver(name, "FAILED", lambda_context)["outcome"] == "ALREADY_DONE"
    assert env.item(name) == item
    assert {k: read(env, k) for k in item["outputs"].values()} == outputs
    versions_after = env.s3.list_object_versions(Bucket=env.stack.output_bucket)["Versions"]
    assert len(versions_after) == len(versions_before)  # nothing rewritten


def test_two_finishers_racing_write_identical_documents(env: Env, lambda_context):
    from pipeline.completion import JobFinisher
    from pipeline.job_index import JobIndex
    from pipeline.settings import current_settings

    transcribe = emulator(env)
    name = start(env, "conversation/visit.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)

    def finisher() -> JobFinisher:
        return JobFinisher(
            settings=current_settings(),
            s3=env.s3,
            transcribe=env.transcribe,
            index=JobIndex(env.table),
        )

    # Both read the job before either records the result (the index check is bypassed
    # by rendering twice through the private path the race would take).
    item = env.item(name)
    job = env.transcribe.get_medical_transcription_job(MedicalTranscriptionJobName=name)[
        "MedicalTranscriptionJob"
    ]
    first = finisher()._completed(item, job)
    second = finisher()._completed(item, job)
    assert first.outcome.value == "COMPLETED"
    assert second.outcome.value == "ALREADY_DONE"
    versions = env.s3.list_object_versions(Bucket=env.stack.output_bucket, Prefix="transcripts/")[
        "Versions"
    ]
    by_key: dict[str, set[str]] = {}
    for version in versions:
        body = env.s3.get_object(
            Bucket=env.stack.output_bucket, Key=version["Key"], VersionId=version["VersionId"]
        )["Body"].read()
        by_key.setdefault(version["Key"], set()).add(body)
    assert set(by_key) == set(env.item(name)["outputs"].values())
    assert all(len(bodies) == 1 for bodies in by_key.values())  # same bytes both times


def test_events_for_other_jobs_are_ignored(env: Env, lambda_context, captured_logs):
    other_prefix = "someone-else-0123456789abcdef0123456789abcdef01234567"
    unknown_ours = "medscribe-test-" + "0" * 40
    assert deliver(other_prefix, "COMPLETED", lambda_context)["outcome"] == "NOT_OURS"
    assert deliver(unknown_ours, "COMPLETED", lambda_context)["outcome"] == "NOT_OURS"
    assert env.items() == []
    assert "not ours" in captured_logs.getvalue()


def test_in_progress_job_event_moves_it_forward_only(env: Env, lambda_context):
    transcribe = emulator(env)
    name = start(env, "conversation/visit.wav", lambda_context)
    transcribe.run(name)
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "IN_FLIGHT"
    assert env.item(name)["status"] == "IN_PROGRESS"


def test_channel_identified_job_gets_channel_dialogue(make_env, lambda_context):
    env = make_env(show_speaker_labels=False, channel_identification=True)
    transcribe = emulator(env)
    name = start(env, "conversation/call.wav", lambda_context, body=STEREO)
    transcribe.complete(name, utterances=SCRIPT)
    deliver(name, "COMPLETED", lambda_context)
    item = env.item(name)
    assert item["status"] == "COMPLETED"
    assert int(item["stats"]["channels"]) == 2
    dialogue = read(env, item["outputs"]["dialogue.txt"]).decode()
    assert "Channel 1:" in dialogue
    assert "Channel 2:" in dialogue


def test_silence_completes_with_empty_documents(env: Env, lambda_context):
    transcribe = emulator(env)
    name = start(env, "dictation/silence.wav", lambda_context)
    transcribe.complete(name, utterances=())
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "COMPLETED"
    item = env.item(name)
    assert item["status"] == "COMPLETED"
    assert int(item["stats"]["words"]) == 0
    assert read(env, item["outputs"]["captions.vtt"]).startswith(b"WEBVTT")


def test_missing_transcript_is_retried_not_failed(env: Env, lambda_context):
    from pipeline.completion import TransientFinishError

    transcribe = emulator(env)
    name = start(env, "conversation/visit.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    env.s3.delete_object(Bucket=env.stack.output_bucket, Key=f"medical/{name}.json")
    with pytest.raises(TransientFinishError) as raised:
        deliver(name, "COMPLETED", lambda_context)
    assert "visit" not in str(raised.value)
    assert env.item(name)["status"] == "QUEUED"


def test_transcript_text_never_reaches_logs(env: Env, lambda_context, captured_logs):
    transcribe = emulator(env)
    name = start(env, "conversation/Jane Doe.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    deliver(name, "COMPLETED", lambda_context)
    logs = captured_logs.getvalue()
    assert name in logs
    for secret in (SENTINEL, "knee", "Jane", "Doe"):
        assert secret not in logs


@pytest.mark.parametrize(
    ("reason", "phrase"),
    [
        ("Unsupported media format", "Convert it"),
        ("The media format provided does not match the detected media format", "Re-export"),
        ("Invalid sample rate for audio file", "Resample"),
        ("Invalid file size: file size too large", "Split it"),
        ("Invalid number of channels: number of channels too large", "Downmix"),
        ("Something new went wrong", "Something new went wrong"),
        (None, "without a reason"),
    ],
)
def test_failure_reasons_are_translated(reason, phrase):
    assert phrase in explain_failure(reason)


def test_transcript_uri_helper():
    uri = "https://s3.us-east-1.amazonaws.com/out/medical/job.json"
    assert transcript_key_from_uri(uri, "out") == "medical/job.json"
    assert transcript_key_from_uri("https://out.s3.amazonaws.com/medical/j.json", "out") == (
        "medical/j.json"
    )
    assert transcript_key_from_uri(uri, "other") is None
    assert transcript_key_from_uri("s3://out/medical/x.json", "out") == "medical/x.json"


def test_a_permanent_aws_error_is_counted_then_fails_the_job_without_quoting_the_key(
    env: Env, lambda_context, captured_logs, monkeypatch
):
    from pipeline import aws_clients

    monkeypatch.setenv("MAX_FINISH_ATTEMPTS", "2")
    transcribe = emulator(env)
    name = start(env, "conversation/Jane Doe.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    fail_calls(
        aws_clients.client("s3"),
        "PutObject",
        "AccessDenied",
        status=403,
        message="not authorized on arn:aws:s3:::out/transcripts/Jane Doe",
        times=float("inf"),
    )
    # The first event meets the refusal: counted, recorded, not raised (no endless retries)
    result = deliver(name, "COMPLETED", lambda_context)
    assert result["outcome"] == "RETRY_LATER"
    assert result["error_code"] == "AccessDenied"
    item = env.item(name)
    assert item["status"] == "QUEUED"
    assert int(item["finish_attempts"]) == 1
    assert item["last_finish_error"] == "AccessDenied"
    # The second attempt reaches the bound: FAILED with a reason a person can act on
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "FAILED"
    item = env.item(name)
    assert item["status"] == "FAILED"
    assert "policy" in item["failure_reason"]
    assert "AccessDenied" in item["failure_reason"]
    assert "2 attempts" in item["failure_reason"]
    assert "Jane" not in item["failure_reason"]
    assert "not authorized" not in item["failure_reason"]
    logs = captured_logs.getvalue()
    assert name in logs
    assert "AccessDenied" in logs
    assert "Jane" not in logs
    assert "not authorized" not in logs


def test_a_transient_error_raises_for_a_retry_and_is_not_counted(env: Env, lambda_context):
    from pipeline import aws_clients
    from pipeline.completion import TransientFinishError

    transcribe = emulator(env)
    name = start(env, "conversation/Jane Doe.wav", lambda_context)
    transcribe.complete(name, utterances=SCRIPT)
    stop = fail_calls(
        aws_clients.client("s3"), "PutObject", "SlowDown", status=503, times=float("inf")
    )
    for _ in range(3):
        with pytest.raises(TransientFinishError) as raised:
            deliver(name, "COMPLETED", lambda_context)
        assert "SlowDown" in str(raised.value)
        assert "Jane" not in str(raised.value)
        assert raised.value.__suppress_context__
    item = env.item(name)
    assert item["status"] == "QUEUED"
    assert "finish_attempts" not in item
    stop()
    assert deliver(name, "COMPLETED", lambda_context)["outcome"] == "COMPLETED"


# --- events through the completion queue (as the stack routes them) ----------------------

COMPLETION_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:completion"


def queued(*events: Any) -> dict[str, Any]:
    return sqs_event(sqs_record(e, queue_arn=COMPLETION_QUEUE_ARN) for e in events)


def test_a_batch_from_the_completion_queue_finishes_each_job(env: Env, lambda_context):
    transcribe = emulator(env)
    names = [start(env, f"conversation/visit-{n}.wav", lambda_context) for n in range(2)]
    for name in names:
        transcribe.complete(name, utterances=SCRIPT)
    batch = queued(*(transcribe_state_change(job_name=n, status="COMPLETED") for n in names))
    assert post_process.handler(batch, lambda_context) == {"batchItemFailures": []}
    assert [env.item(n)["status"] for n in names] == ["COMPLETED", "COMPLETED"]


def test_a_busy_aws_fails_only_its_own_message_for_redelivery(env: Env, lambda_context):
    transcribe = emulator(env)
    busy, fine = (start(env, f"conversation/visit-{n}.wav", lambda_context) for n in range(2))
    for name in (busy, fine):
        transcribe.complete(name, utterances=SCRIPT)

    def throttle_busy(params: dict[str, Any], **_: Any) -> None:
        if params.get("MedicalTranscriptionJobName") == busy:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                "GetMedicalTranscriptionJob",
            )

    env.transcribe.meta.events.register(
        "before-parameter-build.transcribe.GetMedicalTranscriptionJob", throttle_busy
    )
    batch = queued(*(transcribe_state_change(job_name=n, status="COMPLETED") for n in (busy, fine)))
    response = post_process.handler(batch, lambda_context)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        batch["Records"][0]["messageId"]
    ]
    assert env.item(busy)["status"] == "QUEUED"
    assert env.item(fine)["status"] == "COMPLETED"


def test_a_message_that_is_not_an_event_is_failed_for_the_dead_letter_queue(
    env: Env, lambda_context
):
    batch = queued("not json at all", {"no": "detail"})
    response = post_process.handler(batch, lambda_context)
    assert len(response["batchItemFailures"]) == 2
