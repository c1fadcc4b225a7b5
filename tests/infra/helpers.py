"""Template lookups for the infrastructure tests: resources are found by what they are (a
function by its handler, a role by its function, a bucket by its construct), never by a
hard-coded logical ID."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from stacks.config import EnvironmentConfig
from stacks.transcription_stack import TranscriptionStack

TEST_ACCOUNT = "123456789012"

XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# PutItem: start path only. ConditionCheckItem: inside the dispatcher's transactions.
TABLE_ITEM_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
SQS_CONSUME_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)

Grant = tuple[str, str, str, str]  # effect, action, resource (JSON), condition (JSON)


@dataclass(frozen=True)
class Env:
    """One synthesized environment: its config, stack (constructs) and template."""

    config: EnvironmentConfig
    stack: TranscriptionStack
    template: Template

    @property
    def resources(self) -> dict[str, Any]:
        return self.template.to_json()["Resources"]

    def resolve(self, value: Any) -> Any:
        return self.stack.resolve(value)

    def logical_id(self, construct: IConstruct) -> str:
        """The logical ID CDK allocated for a construct's CloudFormation resource."""
        resource = construct.node.default_child or construct
        return Stack.of(construct).get_logical_id(resource)  # type: ignore[arg-type]

    def props(self, construct: IConstruct) -> dict[str, Any]:
        return self.resources[self.logical_id(construct)]["Properties"]

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        """(logical ID, resource) of the one function with this handler."""
        found = self.template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"Handler": handler}}
        )
        assert len(found) == 1, f"expected one function with handler {handler}, got {list(found)}"
        ((logical_id, resource),) = found.items()
        return logical_id, dict(resource)

    def role_of(self, handler: str) -> str:
        _, function = self.function(handler)
        return function["Properties"]["Role"]["Fn::GetAtt"][0]

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement granted to a role: inline policies, AWS::IAM::Policy and
        AWS::IAM::ManagedPolicy resources attached to it."""
        role = self.resources[role_id]
        statements = [
            s
            for p in role["Properties"].get("Policies", [])
            for s in p["PolicyDocument"]["Statement"]
        ]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy in self.template.find_resources(kind).values():
                if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                    statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements

    def role_grants(self, role_id: str) -> set[Grant]:
        return grants(self.role_statements(role_id))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def grants(statements: list[dict[str, Any]]) -> set[Grant]:
    """Statements as (effect, action, resource, condition) facts, however CDK merged them."""
    return {
        (s["Effect"], action, _json(resource), _json(s.get("Condition")))
        for s in statements
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }


def allow(actions: tuple[str, ...] | list[str], resource: Any, condition: Any = None) -> set[Grant]:
    return {("Allow", a, _json(resource), _json(condition)) for a in actions}


def all_policy_statements(template: Template) -> list[dict[str, Any]]:
    """Every identity-policy statement in the template (roles' inline policies and IAM policies)."""
    statements = []
    for role in template.find_resources("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements.extend(policy["PolicyDocument"]["Statement"])
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in template.find_resources(kind).values():
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements
