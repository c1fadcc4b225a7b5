"""retry: the same upload version goes through the real start handler again."""

from __future__ import annotations

from urllib.parse import unquote_plus

from .conftest import Pipeline


def retried_bodies(pipeline: Pipeline) -> list[dict]:
    """Messages jobctl sent (S3's own notifications and test events left out)."""
    return [
        body
        for body in pipeline.drain_queue()
        if body.get("Records", [{}])[0].get("s3", {}).get("configurationId") == "jobctl-retry"
    ]


def test_retry_of_a_failed_job_starts_it_again_under_the_same_name(pipeline: Pipeline):
    key = "conversation/clinic/visit 1.wav"
    name = pipeline.failed(key)
    before = pipeline.item(name)
    assert before is not None
    assert pipeline.transcribe_has(name)
    pipeline.drain_queue()  # S3's own notifications of the upload
    # When the operator retries it
    result = pipeline.cli("retry", name)
    assert result.code == 0, result.err
    assert "Transcribe job record deleted" in result.out
    assert "index item deleted" in result.out
    # Then the Transcribe record and the item are gone
    assert not pipeline.transcribe_has(name)
    assert pipeline.item(name) is None
    # And the queue holds one notification for the same object version
    (body,) = retried_bodies(pipeline)
    (record,) = body["Records"]
    assert record["eventName"].startswith("ObjectCreated:")
    obj = record["s3"]["object"]
    assert record["s3"]["bucket"]["name"] == pipeline.stack.input_bucket
    assert obj["key"] == "conversation%2Fclinic%2Fvisit+1.wav"
    assert unquote_plus(obj["key"]) == key
    assert obj["versionId"] == before["input_version"]
    assert obj["size"] == before["input_size"]
    head = pipeline.env.s3.head_object(Bucket=pipeline.stack.input_bucket, Key=key)
    assert obj["eTag"] == head["ETag"].strip('"')
    # Which the start handler turns into a new QUEUED job with the same name
    assert pipeline.deliver(body) == {"batchItemFailures": []}
    after = pipeline.item(name)
    assert after is not None
    assert after["status"] == "QUEUED"
    assert after["attempts"] == 1
    assert "failure_reason" not in after
    assert pipeline.emulator.status(name) == "QUEUED"


def test_retry_of_a_rejected_job_validates_the_same_version_again(pipeline: Pipeline):
    name = pipeline.rejected("conversation/8khz.wav")
    pipeline.drain_queue()
    result = pipeline.cli("retry", name)
    assert result.code == 0, result.err
    assert "no Transcribe job record to delete" in result.out
    assert pipeline.item(name) is None
    (body,) = retried_bodies(pipeline)
    pipeline.deliver(body)
    item = pipeline.item(name)
    assert item is not None
    assert item["status"] == "REJECTED"  # the file is still 8 kHz


def test_retry_of_a_pending_job_is_refused_since_the_backlog_starts_it(pipeline: Pipeline):
    # Given a job Transcribe refused for capacity: it waits in the backlog
    name = pipeline.pending("conversation/visit.wav")
    pipeline.drain_queue()
    before = pipeline.item(name)
    assert before is not None
    # When the operator retries it, jobctl says why that would not help and sends nothing
    refused = pipeline.cli("retry", "conversation/visit.wav")  # by input key
    assert refused.code == 1
    assert f"job {name} is PENDING: it waits in the backlog" in refused.err
    assert "--force" in refused.err
    assert pipeline.drain_queue() == []
    # --force re-sends the notification, which the start handler records as a duplicate
    forced = pipeline.cli("retry", name, "--force")
    assert forced.code == 0, forced.err
    assert "deleted" not in forced.out
    assert "changes nothing" in " ".join(forced.out.split())
    (body,) = retried_bodies(pipeline)
    pipeline.deliver(body)
    assert pipeline.item(name) == before
    # Then the next dispatch (here, after another upload) starts the oldest waiting job
    pipeline.queued("conversation/later.wav")
    after = pipeline.item(name)
    assert after is not None
    assert after["status"] == "QUEUED"
    assert after["attempts"] == before["attempts"] + 1


def test_retry_refuses_a_completed_job(pipeline: Pipeline):
    name = pipeline.completed("conversation/visit.wav")
    pipeline.drain_queue()
    result = pipeline.cli("retry", name)
    assert result.code == 1
    assert result.err == (
        f"jobctl: error: job {name} is already completed; "
        "delete it first if you want it transcribed again\n"
    )
    item = pipeline.item(name)
    assert item is not None
    assert item["status"] == "COMPLETED"
    assert pipeline.transcribe_has(name)
    assert pipeline.drain_queue() == []


def test_retry_refuses_a_queued_job_unless_forced(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    pipeline.drain_queue()
    refused = pipeline.cli("retry", name)
    assert refused.code == 1
    assert "is QUEUED" in refused.err
    assert "--force" in refused.err
    assert pipeline.drain_queue() == []
    # --force: as for PENDING, nothing deleted, the notification re-sent
    forced = pipeline.cli("retry", name, "--force")
    assert forced.code == 0, forced.err
    assert "changes nothing" in " ".join(forced.out.split())
    assert pipeline.transcribe_has(name)
    (body,) = retried_bodies(pipeline)
    pipeline.deliver(body)
    item = pipeline.item(name)
    assert item is not None
    assert item["status"] == "QUEUED"
    assert item["attempts"] == 1  # the start handler saw a duplicate


def test_retry_refuses_when_the_uploaded_version_is_gone_and_deletes_nothing(
    pipeline: Pipeline,
):
    name = pipeline.failed("conversation/visit.wav")
    item = pipeline.item(name)
    assert item is not None
    pipeline.env.s3.delete_object(
        Bucket=pipeline.stack.input_bucket, Key=item["input_key"], VersionId=item["input_version"]
    )
    pipeline.drain_queue()
    result = pipeline.cli("retry", name)
    assert result.code == 1
    assert "no longer exists" in result.err
    assert pipeline.item(name) == item
    assert pipeline.transcribe_has(name)
    assert pipeline.drain_queue() == []


def test_retry_puts_the_item_back_when_the_notification_cannot_be_sent(pipeline: Pipeline):
    name = pipeline.rejected("conversation/8khz.wav")
    item = pipeline.item(name)
    missing_queue = pipeline.stack.ingest_queue_url + "-missing"
    result = pipeline.cli("retry", name, "--ingest-queue-url", missing_queue)
    assert result.code == 1
    assert result.err == (
        f"jobctl: error: ingest queue {missing_queue} does not exist: "
        "check --ingest-queue-url or the stack's outputs\n"
    )
    assert pipeline.item(name) == item
