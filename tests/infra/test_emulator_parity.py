"""The emulator builds the stack's stateful resources from the same config: drift between
the two fails here, not in AWS."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.emulated_resources import create_resources, job_table_definition

from .helpers import Env


def _only(env: Env, resource_type: str, **match: Any) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in env.resources.values()
        if r["Type"] == resource_type and all(r["Properties"].get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, (resource_type, match, len(found))
    return found[0]


def _sorted(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: json.dumps(i.get(key), sort_keys=True))


def test_job_table_matches_the_stack(env: Env):
    deployed = _only(env, "AWS::DynamoDB::Table")
    emulated = job_table_definition("name")
    assert deployed["KeySchema"] == emulated["KeySchema"]
    assert _sorted(deployed["AttributeDefinitions"], "AttributeName") == _sorted(
        emulated["AttributeDefinitions"], "AttributeName"
    )
    assert deployed["BillingMode"] == emulated["BillingMode"]
    deployed_indexes = {
        g["IndexName"]: (g["KeySchema"], g["Projection"])
        for g in deployed["GlobalSecondaryIndexes"]
    }
    emulated_indexes = {
        g["IndexName"]: (g["KeySchema"], g["Projection"])
        for g in emulated["GlobalSecondaryIndexes"]
    }
    assert deployed_indexes == emulated_indexes


def test_ingest_redrive_and_notification_match_the_stack(env: Env):
    redrives = [
        r["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        for r in env.resources.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    ]
    assert env.config.ingest_max_receive_count in redrives
    notifications = [
        r["Properties"]["NotificationConfiguration"]
        for r in env.resources.values()
        if r["Type"] == "Custom::S3BucketNotifications"
    ]
    (config,) = notifications
    (queue_config,) = config["QueueConfigurations"]
    with mock_aws():
        stack = create_resources(env.config)
        emulated = boto3.client(
            "s3", region_name=env.config.region
        ).get_bucket_notification_configuration(Bucket=stack.input_bucket)
        sqs = boto3.client("sqs", region_name=env.config.region)
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.ingest_queue_url, AttributeNames=["RedrivePolicy"]
        )["Attributes"]
    assert [q["Events"] for q in emulated["QueueConfigurations"]] == [queue_config["Events"]]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == (
        env.config.ingest_max_receive_count
    )


@pytest.mark.parametrize("handler", ["start_job.handler", "post_process.handler"])
def test_handler_environment_matches_the_stack(env: Env, handler: str):
    """The variables the emulator gives the handlers are the ones the stack sets, with the
    same job settings."""
    _, function = env.function(handler)
    deployed = function["Properties"]["Environment"]["Variables"]
    with mock_aws():
        emulated = create_resources(env.config).lambda_environment()
    assert set(emulated) <= set(deployed)
    for name, value in emulated.items():
        if isinstance(deployed[name], str):  # resource names are tokens in the template
            assert deployed[name] == value, name
