"""Completion: the Transcribe state-change rule -> post-process, and the reconcile schedule."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks import constants
from tests.infra.helpers import Env


def arn(env: Env, construct: object) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [env.logical_id(construct), "Arn"]}  # type: ignore[arg-type]


def test_rule_matches_only_this_stacks_finished_jobs(any_env: Env) -> None:
    any_env.template.resource_count_is("AWS::Events::Rule", 1)
    (rule,) = any_env.template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.transcribe"],
        "detail-type": ["Transcribe Job State Change"],
        "detail": {
            "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
            "TranscriptionJobName": [{"prefix": any_env.config.job_name_prefix}],
        },
    }
    assert rule["Properties"]["State"] == "ENABLED"


def test_rule_prefix_differs_per_environment(envs: dict[str, Env]) -> None:
    def prefix(env: Env) -> str:
        (rule,) = env.template.find_resources("AWS::Events::Rule").values()
        return rule["Properties"]["EventPattern"]["detail"]["TranscriptionJobName"][0]["prefix"]

    assert (prefix(envs["dev"]), prefix(envs["prod"])) == ("medscribe-dev", "medscribe-prod")


def _send_only_from_the_rule(any_env: Env, queue: object) -> None:
    completion = any_env.stack.completion
    any_env.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": any_env.logical_id(queue)}],  # type: ignore[arg-type]
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Condition": {
                                    "ArnEquals": {"aws:SourceArn": arn(any_env, completion.rule)}
                                },
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Resource": arn(any_env, queue),
                            }
                        )
                    ]
                )
            },
        },
    )


def test_rule_targets_the_completion_queue_with_retries_and_dlq(any_env: Env) -> None:
    completion = any_env.stack.completion
    (rule,) = any_env.template.find_resources("AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == arn(any_env, completion.queue)
    assert target["DeadLetterConfig"] == {"Arn": arn(any_env, completion.dead_letter_queue)}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": 8,
        "MaximumEventAgeInSeconds": 6 * 3600,
    }
    # EventBridge may write to the queue and its DLQ only for this rule.
    _send_only_from_the_rule(any_env, completion.queue)
    _send_only_from_the_rule(any_env, completion.dead_letter_queue)
    # No other principal may send, and no unconditioned grant of the key to EventBridge.
    for policy in any_env.template.find_resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow" and "events" in str(statement["Principal"]):
                assert "aws:SourceArn" in str(statement["Condition"])
    (key,) = any_env.template.find_resources("AWS::KMS::Key").values()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if "events.amazonaws.com" in str(statement.get("Principal")):
            assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
            assert "aws:SourceAccount" in str(statement["Condition"])


def test_post_process_consumes_the_completion_queue_in_batches(any_env: Env) -> None:
    completion = any_env.stack.completion
    function_id, _ = any_env.function(constants.POST_PROCESS_HANDLER)
    any_env.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn(any_env, completion.queue),
            "FunctionName": {"Ref": function_id},
            "BatchSize": constants.COMPLETION_BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": constants.COMPLETION_MAX_CONCURRENCY},
        },
    )
    any_env.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": arn(any_env, completion.dead_letter_queue),
                "maxReceiveCount": constants.COMPLETION_MAX_RECEIVES,
            },
            "VisibilityTimeout": int(constants.COMPLETION_VISIBILITY_TIMEOUT.to_seconds()),
        },
    )


def test_post_process_and_reconcile_have_function_dlqs(any_env: Env) -> None:
    completion = any_env.stack.completion
    for handler, queue in (
        (constants.POST_PROCESS_HANDLER, completion.dead_letter_queue),
        (constants.RECONCILE_HANDLER, completion.reconcile_dead_letter_queue),
    ):
        _, function = any_env.function(handler)
        assert function["Properties"]["DeadLetterConfig"] == {"TargetArn": arn(any_env, queue)}
        props = any_env.props(queue)
        assert props["KmsMasterKeyId"] == arn(any_env, any_env.stack.storage.key)
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_reconcile_runs_on_a_schedule_with_retries_and_dlq(any_env: Env) -> None:
    completion = any_env.stack.completion
    function_id, _ = any_env.function(constants.RECONCILE_HANDLER)
    any_env.template.resource_count_is("AWS::Scheduler::Schedule", 1)
    (schedule,) = any_env.template.find_resources("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    minutes = any_env.config.reconcile_interval_minutes
    assert props["ScheduleExpression"] == f"rate({minutes} minutes)"
    assert props["State"] == "ENABLED"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"] == {
        "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
        "RoleArn": arn(any_env, completion.scheduler_role),
        "DeadLetterConfig": {"Arn": arn(any_env, completion.reconcile_dead_letter_queue)},
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
    }


def test_schedule_interval_follows_config(envs: dict[str, Env], variant: Env) -> None:
    def expression(env: Env) -> str:
        (schedule,) = env.template.find_resources("AWS::Scheduler::Schedule").values()
        return schedule["Properties"]["ScheduleExpression"]

    assert expression(envs["dev"]) == "rate(5 minutes)"
    assert expression(variant) == "rate(15 minutes)"
