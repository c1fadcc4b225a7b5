"""Ingest: input bucket -> encrypted queue (+ DLQ) -> start-job function."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from stacks import constants
from tests.infra.helpers import Env


def key_arn(env: Env) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [env.logical_id(env.stack.storage.key), "Arn"]}


def test_ingest_queue_is_encrypted_and_redrives_to_its_dlq(any_env: Env) -> None:
    ingest = any_env.stack.ingest
    props = any_env.props(ingest.queue)
    assert props["KmsMasterKeyId"] == key_arn(any_env)
    assert props["VisibilityTimeout"] == constants.INGEST_VISIBILITY_TIMEOUT.to_seconds()
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {
            "Fn::GetAtt": [any_env.logical_id(ingest.dead_letter_queue), "Arn"]
        },
        "maxReceiveCount": any_env.config.ingest_max_receive_count,
    }
    dlq = any_env.props(ingest.dead_letter_queue)
    assert dlq["KmsMasterKeyId"] == key_arn(any_env)
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_is_on_the_stack_key_and_denies_non_tls(any_env: Env) -> None:
    queues = any_env.template.find_resources("AWS::SQS::Queue")
    assert len(queues) == 5  # ingest, its DLQ, completion, its DLQ, reconcile DLQ
    for queue_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == key_arn(any_env), queue_id
        any_env.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            {
                                "Action": "sqs:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                            }
                        ]
                    )
                },
            },
        )


def test_input_bucket_notifies_the_queue_of_created_objects(any_env: Env) -> None:
    storage, ingest = any_env.stack.storage, any_env.stack.ingest
    queue_id = any_env.logical_id(ingest.queue)
    bucket_id = any_env.logical_id(storage.input_bucket)
    any_env.template.resource_count_is("Custom::S3BucketNotifications", 1)
    (notification,) = any_env.template.find_resources(
        "Custom::S3BucketNotifications", {"Properties": {"BucketName": {"Ref": bucket_id}}}
    ).values()
    assert notification["Properties"]["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {"Events": ["s3:ObjectCreated:*"], "QueueArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        ]
    }
    # S3 may send only from the input bucket of this account, and the notification is set
    # after that permission exists (S3 checks the destination when it is configured).
    (queue_policy_id,) = any_env.template.find_resources(
        "AWS::SQS::QueuePolicy",
        {
            "Properties": {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Action": "sqs:SendMessage",
                                    "Effect": "Allow",
                                    "Principal": {"Service": "s3.amazonaws.com"},
                                    "Condition": {
                                        "ArnLike": {
                                            "aws:SourceArn": {"Fn::GetAtt": [bucket_id, "Arn"]}
                                        },
                                        "StringEquals": {
                                            "aws:SourceAccount": any_env.stack.account
                                        },
                                    },
                                }
                            )
                        ]
                    )
                },
            }
        },
    )
    assert queue_policy_id in notification["DependsOn"]


def test_start_function_consumes_the_queue_with_partial_batch_failures(any_env: Env) -> None:
    ingest = any_env.stack.ingest
    function_id, _ = any_env.function(constants.START_JOB_HANDLER)
    # The ingest queue's and the completion queue's.
    any_env.template.resource_count_is("AWS::Lambda::EventSourceMapping", 2)
    mapping = {
        "EventSourceArn": {"Fn::GetAtt": [any_env.logical_id(ingest.queue), "Arn"]},
        "FunctionName": {"Ref": function_id},
        "BatchSize": any_env.config.start_batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumBatchingWindowInSeconds": 2,
    }
    # Pacing without reserving: the event source caps concurrent start invocations.
    mapping["ScalingConfig"] = {"MaximumConcurrency": any_env.config.start_max_concurrency}
    any_env.template.has_resource_properties("AWS::Lambda::EventSourceMapping", mapping)


def ingest_mapping(env: Env) -> dict[str, Any]:
    queue_arn = {"Fn::GetAtt": [env.logical_id(env.stack.ingest.queue), "Arn"]}
    mappings = env.template.find_resources("AWS::Lambda::EventSourceMapping").values()
    (mapping,) = (m for m in mappings if m["Properties"]["EventSourceArn"] == queue_arn)
    return dict(mapping)


def test_max_concurrency_per_environment(envs: dict[str, Env], variant: Env) -> None:
    def maximum(env: Env) -> int:
        return ingest_mapping(env)["Properties"]["ScalingConfig"]["MaximumConcurrency"]

    assert (maximum(envs["dev"]), maximum(envs["prod"]), maximum(variant)) == (2, 10, 3)


def test_batch_size_per_environment(envs: dict[str, Env]) -> None:
    def batch_size(env: Env) -> int:
        return ingest_mapping(env)["Properties"]["BatchSize"]

    assert (batch_size(envs["dev"]), batch_size(envs["prod"])) == (5, 10)
