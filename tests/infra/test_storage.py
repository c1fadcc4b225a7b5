"""Storage: the KMS key, the three buckets and the job index, per environment."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks import constants
from tests.infra.helpers import Env


def test_key_rotates_is_retained_and_has_the_stack_alias(env: Env) -> None:
    key_id = env.logical_id(env.stack.storage.key)
    key = env.resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert key["UpdateReplacePolicy"] == "Retain"
    env.template.resource_count_is("AWS::KMS::Key", 1)
    env.template.has_resource_properties(
        "AWS::KMS::Alias",
        {
            "AliasName": f"alias/{env.stack.stack_name}",
            "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )


def _key_statements(env: Env) -> list[dict[str, Any]]:
    return env.props(env.stack.storage.key)["KeyPolicy"]["Statement"]


def test_key_policy_lets_cloudwatch_logs_use_it_for_this_stacks_log_groups_only(env: Env) -> None:
    region, account = env.config.region, env.stack.account
    (statement,) = [
        s
        for s in _key_statements(env)
        if s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    ]
    assert statement["Effect"] == "Allow"
    # Only log groups named /<stack name>/<this stack's GUID>/..., which is how the functions'
    # log groups are named (test_functions), not any log group of the account.
    stack_guid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert statement["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": {
                "Fn::Join": [
                    "",
                    [
                        f"arn:aws:logs:{region}:{account}:log-group:/{env.stack.stack_name}/",
                        stack_guid,
                        "/*",
                    ],
                ]
            }
        }
    }
    # No wildcard actions, and no DescribeKey (it carries no encryption context to match).
    assert sorted(statement["Action"]) == [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    ]


@pytest.mark.parametrize(
    "service",
    ["s3.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"],
    ids=["s3-to-ingest-queue", "eventbridge-to-dlq", "alarms-to-topic"],
)
def test_key_policy_lets_services_encrypt_for_this_account_only(env: Env, service: str) -> None:
    statements = [s for s in _key_statements(env) if s["Principal"] == {"Service": service}]
    assert len(statements) == 1, statements
    (statement,) = statements
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": env.stack.account}}


def test_no_key_policy_statement_names_a_bucket(env: Env) -> None:
    # A bucket encrypted with the key must not appear in the key's policy (circular dependency).
    policy = str(_key_statements(env))
    for bucket in (env.stack.storage.input_bucket, env.stack.storage.output_bucket):
        assert env.logical_id(bucket) not in policy


def _expected_rules(env: Env, expiration_days: int | None) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "Id": "housekeeping",
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "NoncurrentVersionExpiration": {
                "NoncurrentDays": env.config.noncurrent_version_expiration_days
            },
            "ExpiredObjectDeleteMarker": True,
        }
    ]
    if expiration_days is not None:
        rules.append(
            {"Id": "expire-current", "Status": "Enabled", "ExpirationInDays": expiration_days}
        )
    return rules


@pytest.mark.parametrize(
    ("bucket_attr", "log_prefix", "expiration_attr"),
    [
        ("input_bucket", constants.ACCESS_LOG_PREFIX_INPUT, "input_expiration_days"),
        ("output_bucket", constants.ACCESS_LOG_PREFIX_OUTPUT, "output_expiration_days"),
    ],
    ids=["input", "output"],
)
def test_data_buckets(env: Env, bucket_attr: str, log_prefix: str, expiration_attr: str) -> None:
    storage = env.stack.storage
    bucket_id = env.logical_id(getattr(storage, bucket_attr))
    bucket = env.resources[bucket_id]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": {"Fn::GetAtt": [env.logical_id(storage.key), "Arn"]},
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": env.logical_id(storage.access_log_bucket)},
        "LogFilePrefix": log_prefix,
    }
    expiration_days = getattr(env.config, expiration_attr)
    assert props["LifecycleConfiguration"]["Rules"] == _expected_rules(env, expiration_days)


def test_lifecycle_rules_differ_per_environment(envs: dict[str, Env]) -> None:
    # Given cdk.json's dev (expires current versions) and prod (keeps them, and noncurrent
    # versions longer), then each template follows its own environment, and they differ.
    def expiration(env: Env, bucket_attr: str) -> list[int]:
        bucket = getattr(env.stack.storage, bucket_attr)
        rules = env.props(bucket)["LifecycleConfiguration"]["Rules"]
        return [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r]

    dev, prod = envs["dev"], envs["prod"]
    for bucket_attr, setting in (
        ("input_bucket", "input_expiration_days"),
        ("output_bucket", "output_expiration_days"),
    ):
        assert getattr(dev.config, setting) is not None
        assert getattr(prod.config, setting) is None
        assert expiration(dev, bucket_attr) == [getattr(dev.config, setting)]
        assert expiration(prod, bucket_attr) == []
    assert (
        dev.config.noncurrent_version_expiration_days
        != prod.config.noncurrent_version_expiration_days
    )


def test_access_log_bucket_uses_sse_s3_and_accepts_only_s3_logging(env: Env) -> None:
    storage = env.stack.storage
    log_bucket = env.resources[env.logical_id(storage.access_log_bucket)]
    props = log_bucket["Properties"]
    assert log_bucket["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    # Its log lines quote object keys (PHI): current logs expire after the setting.
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-current"] == {
        "Id": "expire-current",
        "ExpirationInDays": env.config.access_log_expiration_days,
        "Status": "Enabled",
    }
    assert rules["housekeeping"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": env.config.noncurrent_version_expiration_days
    }
    env.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": env.logical_id(storage.access_log_bucket)},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:PutObject",
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                            }
                        )
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("bucket_attr", ["input_bucket", "output_bucket", "access_log_bucket"])
def test_every_bucket_denies_requests_without_tls(env: Env, bucket_attr: str) -> None:
    bucket_id = env.logical_id(getattr(env.stack.storage, bucket_attr))
    env.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": [
                                {"Fn::GetAtt": [bucket_id, "Arn"]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]},
                            ],
                        }
                    ]
                )
            },
        },
    )
    env.template.resource_count_is("AWS::S3::Bucket", 3)


def test_job_index_table(env: Env) -> None:
    storage = env.stack.storage
    table = env.resources[env.logical_id(storage.job_table)]
    env.template.resource_count_is("AWS::DynamoDB::Table", 1)
    env.template.resource_count_is("AWS::DynamoDB::GlobalTable", 0)
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "job_name", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [env.logical_id(storage.key), "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert props["DeletionProtectionEnabled"] is env.config.termination_protection
    # The dispatcher's start-rate windows are short-lived items that DynamoDB removes.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("created_at", "input_key", "job_name", "status")
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for name, partition in (("by-input", "input_key"), ("by-status", "status"))
    ]


def test_access_log_expiry_per_environment(envs: dict[str, Env], variant: Env) -> None:
    # A reviewer-acceptable default (a year), prod's six years of audit retention, and the
    # variant's own value.
    assert [e.config.access_log_expiration_days for e in (envs["dev"], envs["prod"], variant)] == [
        365,
        2192,
        90,
    ]


@pytest.mark.parametrize("bucket_attr", ["input_bucket", "output_bucket"])
def test_data_buckets_refuse_any_encryption_but_the_stack_key(env: Env, bucket_attr: str) -> None:
    # Given an upload (or our own write) that asks for SSE-S3, DSSE, SSE-C or another KMS key,
    # then the bucket policy denies it; a write naming no encryption gets the bucket default.
    bucket = getattr(env.stack.storage, bucket_attr)
    key_arn = {"Fn::GetAtt": [env.logical_id(env.stack.storage.key), "Arn"]}
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [env.logical_id(bucket), "Arn"]}, "/*"]]}
    (policy,) = env.template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": env.logical_id(bucket)}}}
    ).values()
    denies = {
        s["Sid"]: s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"
    }
    assert set(denies) == {"DenyOtherEncryption", "DenyOtherKmsKey", "DenyCustomerProvidedKeys"}
    for statement in denies.values():
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Resource"] == objects
    assert denies["DenyOtherEncryption"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        "Null": {"s3:x-amz-server-side-encryption": "false"},
    }
    assert denies["DenyOtherKmsKey"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
    }
    assert denies["DenyCustomerProvidedKeys"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
    }
