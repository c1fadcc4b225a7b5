"""Monitoring: alarms on dead letters, function errors and failed jobs -> encrypted SNS topic;
the dashboard; tags and termination protection of the stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks import constants
from tests.infra.helpers import Env


def topic_id(env: Env) -> str:
    return env.logical_id(env.stack.monitoring.topic)


def alarms(env: Env) -> list[dict[str, Any]]:
    return [a["Properties"] for a in env.template.find_resources("AWS::CloudWatch::Alarm").values()]


def alarm_on(env: Env, namespace: str, metric: str, dimensions: list[Any]) -> dict[str, Any]:
    found = [
        a
        for a in alarms(env)
        if a["Namespace"] == namespace
        and a["MetricName"] == metric
        and a.get("Dimensions") == dimensions
    ]
    assert len(found) == 1, (namespace, metric, dimensions)
    alarm = found[0]
    # Any occurrence alarms, and goes to the topic.
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id(env)}]
    return alarm


def test_seven_alarms_all_with_the_topic_as_action(any_env: Env) -> None:
    any_env.template.resource_count_is("AWS::CloudWatch::Alarm", 7)
    for alarm in alarms(any_env):
        assert alarm["AlarmActions"] == [{"Ref": topic_id(any_env)}]
        assert alarm["AlarmDescription"]


@pytest.mark.parametrize(
    "queue_attr",
    [
        "ingest.dead_letter_queue",
        "completion.dead_letter_queue",
        "completion.reconcile_dead_letter_queue",
    ],
)
def test_each_dead_letter_queue_alarms_on_any_visible_message(
    any_env: Env, queue_attr: str
) -> None:
    owner, attr = queue_attr.split(".")
    queue = getattr(getattr(any_env.stack, owner), attr)
    alarm = alarm_on(
        any_env,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [
            {
                "Name": "QueueName",
                "Value": {"Fn::GetAtt": [any_env.logical_id(queue), "QueueName"]},
            }
        ],
    )
    assert alarm["Statistic"] == "Maximum"


@pytest.mark.parametrize(
    "handler",
    [constants.START_JOB_HANDLER, constants.POST_PROCESS_HANDLER, constants.RECONCILE_HANDLER],
)
def test_each_function_alarms_on_errors(any_env: Env, handler: str) -> None:
    function_id, _ = any_env.function(handler)
    alarm = alarm_on(
        any_env, "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    )
    assert alarm["Statistic"] == "Sum"


def test_failed_jobs_metric_alarms(any_env: Env) -> None:
    alarm = alarm_on(
        any_env,
        constants.METRICS_NAMESPACE,
        "JobsFailed",
        [{"Name": "service", "Value": constants.SERVICE_NAME}],
    )
    assert alarm["Statistic"] == "Sum"


def test_topic_is_encrypted_and_tls_only(any_env: Env) -> None:
    topic = any_env.props(any_env.stack.monitoring.topic)
    assert topic["KmsMasterKeyId"] == {
        "Fn::GetAtt": [any_env.logical_id(any_env.stack.storage.key), "Arn"]
    }
    (policy,) = any_env.template.find_resources(
        "AWS::SNS::TopicPolicy", {"Properties": {"Topics": [{"Ref": topic_id(any_env)}]}}
    ).values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_email_subscription_only_when_configured(envs: dict[str, Env], variant: Env) -> None:
    for env in envs.values():
        assert env.config.alarm_email is None
        env.template.resource_count_is("AWS::SNS::Subscription", 0)
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "oncall@example.com",
            "TopicArn": {"Ref": topic_id(variant)},
        },
    )


def test_dashboard_shows_queues_functions_and_job_metrics(any_env: Env) -> None:
    (dashboard,) = any_env.template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == any_env.stack.stack_name
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Throttles",
        "Duration",
        *constants.JOB_METRICS,
    ):
        assert f'\\"{metric}\\"' in body, metric
    assert {"JobsStarted", "JobsRejected", "JobsCompleted", "JobsFailed", "StartThrottled"} == set(
        constants.JOB_METRICS
    )
    for queue in (
        any_env.stack.ingest.queue,
        any_env.stack.ingest.dead_letter_queue,
        any_env.stack.completion.dead_letter_queue,
        any_env.stack.completion.reconcile_dead_letter_queue,
    ):
        assert any_env.logical_id(queue) in body


def test_stacks_names_accounts_regions_tags_and_termination_protection(
    envs: dict[str, Env],
) -> None:
    dev, prod = envs["dev"], envs["prod"]
    assert (dev.stack.stack_name, prod.stack.stack_name) == (
        "MedicalTranscription-dev",
        "MedicalTranscription-prod",
    )
    # dev has no account in cdk.json: it takes CDK_DEFAULT_ACCOUNT (the tests set one).
    assert dev.stack.account == "123456789012"
    assert prod.stack.account == prod.config.account == "111111111111"
    assert dev.stack.region == prod.stack.region == "us-east-1"
    assert dev.stack.termination_protection is False
    assert prod.stack.termination_protection is True
    for env in (dev, prod):
        assert env.stack.tags.tag_values() == {
            "Project": constants.TAG_PROJECT,
            "Environment": env.config.name,
        }
        tags = env.props(env.stack.storage.input_bucket)["Tags"]
        assert {"Key": "Environment", "Value": env.config.name} in tags
        assert {"Key": "Project", "Value": constants.TAG_PROJECT} in tags
