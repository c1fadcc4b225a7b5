"""Optional cross-Region replication (`replication_*` settings): each data bucket replicates
every object to its own destination on the destination key, through a role of its own whose
one policy is exactly what replication needs; without the settings, nothing of it exists."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from app import build_app
from stacks.config import ConfigError
from stacks.replication import BucketReplication
from tests.infra.conftest import REPLICATED, REPLICATION_SETTINGS, cdk_json_context
from tests.infra.helpers import Env, allow

DESTINATION_KEY = REPLICATION_SETTINGS["replication_kms_key_arn"]
BUCKETS = {
    "InputBucket": REPLICATION_SETTINGS["replication_input_bucket_arn"],
    "OutputBucket": REPLICATION_SETTINGS["replication_output_bucket_arn"],
}


def bucket_of(env: Env, bucket_id: str) -> Any:
    storage = env.stack.storage
    return {"InputBucket": storage.input_bucket, "OutputBucket": storage.output_bucket}[bucket_id]


def replication_of(env: Env, bucket_id: str) -> BucketReplication:
    return env.stack.storage.replications[bucket_id]


def s3_roles(env: Env) -> dict[str, Any]:
    """Roles S3 may assume."""
    return {
        role_id: role
        for role_id, role in env.template.find_resources("AWS::IAM::Role").items()
        if any(
            s["Principal"].get("Service") == "s3.amazonaws.com"
            for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        )
    }


@pytest.mark.parametrize(("bucket_id", "destination"), sorted(BUCKETS.items()))
def test_each_data_bucket_replicates_every_object_to_its_destination_on_the_replica_key(
    replicated: Env, bucket_id: str, destination: str
) -> None:
    props = replicated.props(bucket_of(replicated, bucket_id))
    role_id = replicated.logical_id(replication_of(replicated, bucket_id).role)
    assert props["ReplicationConfiguration"] == {
        "Role": {"Fn::GetAtt": [role_id, "Arn"]},
        "Rules": [
            {
                "Id": "replicate-every-object",
                "Status": "Enabled",
                "Priority": 0,
                "Filter": {"Prefix": ""},  # every key
                # Every object of ours is SSE-KMS: without this opt-in none would replicate.
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {
                    "Bucket": destination,
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": DESTINATION_KEY},
                },
                "DeleteMarkerReplication": {"Status": "Disabled"},
            }
        ],
    }
    # Replication needs versioning; the source stays on the stack's key.
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == replicated.resolve(
        replicated.stack.storage.key.key_arn
    )


@pytest.mark.parametrize(("bucket_id", "destination"), sorted(BUCKETS.items()))
def test_replication_role_has_exactly_its_permissions(
    replicated: Env, bucket_id: str, destination: str
) -> None:
    # Read this bucket's versions, decrypt them with the stack's key only through S3 here and
    # for this bucket, replicate into the one destination and encrypt there with the one
    # destination key only through S3 in its Region and for that bucket. Nothing else.
    env = replicated
    bucket = env.resolve(bucket_of(env, bucket_id).bucket_arn)
    objects = env.resolve(bucket_of(env, bucket_id).arn_for_objects("*"))
    key = env.resolve(env.stack.storage.key.key_arn)
    role_id = env.logical_id(replication_of(env, bucket_id).role)
    expected = (
        allow(["s3:GetReplicationConfiguration", "s3:ListBucket"], bucket)
        | allow(
            [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            objects,
        )
        | allow(["s3:ReplicateObject", "s3:ReplicateTags"], f"{destination}/*")
        | allow(
            ["kms:Decrypt"],
            key,
            {
                "StringEquals": {"kms:ViaService": f"s3.{env.config.region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, objects]},
            },
        )
        | allow(
            ["kms:Encrypt", "kms:Decrypt"],
            DESTINATION_KEY,
            {
                "StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": [destination, f"{destination}/*"]
                },
            },
        )
    )
    assert env.role_grants(role_id) == expected


def test_each_bucket_has_its_own_role_that_only_s3_assumes(replicated: Env) -> None:
    env = replicated
    role_ids = {env.logical_id(replication_of(env, b).role) for b in BUCKETS}
    assert len(role_ids) == 2
    assert set(s3_roles(env)) == role_ids
    for role_id in role_ids:
        role = env.resources[role_id]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
            }
        ]
        # No fixed name (CDK's own replication role is always "CDKReplicationRole", which two
        # buckets or two stacks in one account would share), no inline or AWS managed policy.
        assert "RoleName" not in role
        assert "Policies" not in role
        assert "ManagedPolicyArns" not in role
        assert [
            p
            for p in env.template.find_resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ] == []
    for bucket_id in BUCKETS:
        replication = replication_of(env, bucket_id)
        assert replication.policy is not None
        assert env.props(replication.policy)["Roles"] == [{"Ref": env.logical_id(replication.role)}]


def test_no_other_role_reaches_the_destinations(replicated: Env) -> None:
    # Only the replication roles name the destination buckets or the replica key: the functions
    # keep exactly the permissions they have without replication.
    env = replicated
    replication_roles = set(s3_roles(env))
    for role_id in env.template.find_resources("AWS::IAM::Role"):
        if role_id in replication_roles:
            continue
        text = str(env.role_statements(role_id))
        for arn in (DESTINATION_KEY, *BUCKETS.values()):
            assert arn not in text, (role_id, arn)


def test_the_access_log_bucket_is_not_replicated(replicated: Env) -> None:
    props = replicated.props(replicated.stack.storage.access_log_bucket)
    assert "ReplicationConfiguration" not in props


def test_nothing_of_replication_without_the_settings(envs: dict[str, Env]) -> None:
    for env in envs.values():
        assert env.config.replication is False
        assert env.stack.storage.replications == {}
        for bucket in env.template.find_resources("AWS::S3::Bucket").values():
            assert "ReplicationConfiguration" not in bucket["Properties"]
        assert s3_roles(env) == {}


def _context_with(settings: dict[str, Any]) -> dict[str, Any]:
    context = cdk_json_context()
    dev = context["environments"]["dev"]
    return {**context, "environments": {REPLICATED: {**dev, **settings}}}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {k: v for k, v in REPLICATION_SETTINGS.items() if k != "replication_kms_key_arn"},
            f'"environments.{REPLICATED}.replication_kms_key_arn" unset while ',
            id="no-replica-key",
        ),
        pytest.param(
            {**REPLICATION_SETTINGS, "replication_input_bucket_arn": "medscribe-replica-input"},
            f'"environments.{REPLICATED}.replication_input_bucket_arn" is \'medscribe-replica-'
            "input'; allowed: an S3 bucket ARN",
            id="bucket-name-not-arn",
        ),
    ],
)
def test_app_refuses_bad_replication_settings(settings: dict[str, Any], message: str) -> None:
    # Given a bad replication setting, when the app is built, then it fails before any stack
    # exists, naming the key.
    with pytest.raises(ConfigError) as raised:
        build_app(App(context=_context_with(settings)))
    assert message in str(raised.value)
