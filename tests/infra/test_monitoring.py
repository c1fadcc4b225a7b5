"""Monitoring: alarms on dead letters, function errors and throttles, failed jobs, the backlog's
age and reconcile errors -> the stack's encrypted SNS topic or an existing one; the dashboard;
tags and termination protection of the stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from stacks import constants
from tests.infra.helpers import Env


def topic_ref(env: Env) -> Any:
    """How alarms name their topic: the stack's own, or the configured existing ARN."""
    if env.config.alarm_topic_arn:
        return env.config.alarm_topic_arn
    return {"Ref": env.logical_id(env.stack.monitoring.topic)}


def topic_id(env: Env) -> str:
    return env.logical_id(env.stack.monitoring.topic)


def alarms(env: Env) -> list[dict[str, Any]]:
    return [a["Properties"] for a in env.template.find_resources("AWS::CloudWatch::Alarm").values()]


def alarm_on(
    env: Env, namespace: str, metric: str, dimensions: list[Any], threshold: float = 0
) -> dict[str, Any]:
    found = [
        a
        for a in alarms(env)
        if a["Namespace"] == namespace
        and a["MetricName"] == metric
        and a.get("Dimensions") == dimensions
    ]
    assert len(found) == 1, (namespace, metric, dimensions)
    alarm = found[0]
    # Any occurrence (or the threshold) alarms, and goes to the topic.
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic_ref(env)]
    return alarm


def test_twelve_alarms_all_with_the_topic_as_action(any_env: Env) -> None:
    # 3 dead-letter queues, 3 functions x (errors, throttles), failed jobs, backlog age,
    # reconcile errors.
    any_env.template.resource_count_is("AWS::CloudWatch::Alarm", 12)
    for alarm in alarms(any_env):
        assert alarm["AlarmActions"] == [topic_ref(any_env)]
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
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_alarms_on_errors_and_throttles(
    any_env: Env, handler: str, metric: str
) -> None:
    function_id, _ = any_env.function(handler)
    alarm = alarm_on(
        any_env, "AWS/Lambda", metric, [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    )
    assert alarm["Statistic"] == "Sum"


SERVICE = [{"Name": "service", "Value": constants.SERVICE_NAME}]


@pytest.mark.parametrize("metric", ["JobsFailed", constants.RECONCILE_ERRORS_METRIC])
def test_failed_jobs_and_reconcile_errors_alarm(any_env: Env, metric: str) -> None:
    alarm = alarm_on(any_env, constants.METRICS_NAMESPACE, metric, SERVICE)
    assert alarm["Statistic"] == "Sum"


def test_backlog_age_alarms_after_the_configured_wait(envs: dict[str, Env], variant: Env) -> None:
    for env in (*envs.values(), variant):
        alarm = alarm_on(
            env,
            constants.METRICS_NAMESPACE,
            constants.BACKLOG_AGE_METRIC,
            SERVICE,
            threshold=env.config.backlog_age_alarm_minutes * 60,
        )
        assert alarm["Statistic"] == "Maximum"
    assert variant.config.backlog_age_alarm_minutes == 60
    assert envs["dev"].config.backlog_age_alarm_minutes == 240


def test_topic_is_encrypted_and_tls_only(env: Env) -> None:
    topic = env.props(env.stack.monitoring.topic)
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [env.logical_id(env.stack.storage.key), "Arn"]}
    (policy,) = env.template.find_resources(
        "AWS::SNS::TopicPolicy", {"Properties": {"Topics": [{"Ref": topic_id(env)}]}}
    ).values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alarm_recipients(envs: dict[str, Env], variant: Env) -> None:
    # dev: no recipient, so a synth warning says so; prod: an email subscription (required);
    # the variant: an existing topic (no topic of its own) with an email subscription to it.
    dev, prod = envs["dev"], envs["prod"]
    dev.template.resource_count_is("AWS::SNS::Subscription", 0)
    warnings = Annotations.from_stack(dev.stack).find_warning("*", Match.string_like_regexp(""))
    assert any("Alarms notify nobody" in str(w.entry.data) for w in warnings)
    assert not Annotations.from_stack(prod.stack).find_warning(
        "*", Match.string_like_regexp("Alarms notify nobody")
    )
    prod.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": prod.config.alarm_email, "TopicArn": topic_ref(prod)},
    )
    variant.template.resource_count_is("AWS::SNS::Topic", 0)
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "oncall@example.com",
            "TopicArn": "arn:aws:sns:eu-west-1:210987654321:existing-oncall",
        },
    )


def test_dashboard_shows_queues_functions_and_job_metrics(any_env: Env) -> None:
    (dashboard,) = any_env.template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == any_env.stack.stack_name
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "Throttles",
        "Duration",
        # What the handlers emit (Powertools): uploads, starts, completions, failures,
        # rejections, audio minutes, backlog size and age, quota in use, post-processing time.
        "JobsUploaded",
        "JobsStarted",
        "JobsCompleted",
        "JobsFailed",
        "JobsRejected",
        "StartThrottled",
        "AudioMinutes",
        "BacklogSize",
        "OldestPendingAgeSeconds",
        "JobsInFlight",
        "PostProcessDurationMs",
    ):
        assert f'\\"{metric}\\"' in body, metric
    # The quota graph marks this environment's share.
    assert f'\\"value\\":{any_env.config.concurrent_job_share}' in body
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
