"""Where PHI rests: the stack's KMS key, the input/output buckets, their access logs, the job index.

Everything here holds or protects PHI, so everything is retained when the stack is deleted.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import constants
from stacks.config import EnvironmentConfig
from stacks.replication import BucketReplication

ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(7)
# The job table's TTL attribute: short-lived items (the dispatcher's start-rate windows).
TTL_ATTRIBUTE = "expires_at"


def log_group_prefix(scope: Construct) -> str:
    """`/<stack name>/<stack GUID>/`: the stack's own log-group names. The GUID (from the stack
    ID) makes a re-created stack's names new, so retained log groups never collide with it."""
    stack = Stack.of(scope)
    guid = Fn.select(2, Fn.split("/", stack.stack_id))
    return Fn.join("", ["/", stack.stack_name, "/", guid, "/"])


def log_group_name(scope: Construct, name: str) -> str:
    return Fn.join("", [log_group_prefix(scope), name])


class Storage(Construct):
    """Exposes `key`, `input_bucket`, `output_bucket`, `access_log_bucket`, `job_table`, and
    `replications` (bucket construct ID -> BucketReplication; empty without replication)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts audio, transcripts, the job index, queues and logs "
            f"of {stack.stack_name}",
            enable_key_rotation=True,
            alias=f"alias/{stack.stack_name}",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_services(stack)
        self.replications: dict[str, BucketReplication] = {}

        # S3 delivers server access logs only to a bucket with SSE-S3 default encryption. Its log
        # lines quote object keys, which may name patients: PHI, kept no longer than the setting.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="housekeeping",
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER,
                    noncurrent_version_expiration=Duration.days(
                        config.noncurrent_version_expiration_days
                    ),
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="expire-current",
                    expiration=Duration.days(config.access_log_expiration_days),
                ),
            ],
        )
        self.input_bucket = self._data_bucket(
            "InputBucket",
            config=config,
            log_prefix=constants.ACCESS_LOG_PREFIX_INPUT,
            expiration_days=config.input_expiration_days,
            replica_bucket_arn=config.replication_input_bucket_arn,
        )
        self.output_bucket = self._data_bucket(
            "OutputBucket",
            config=config,
            log_prefix=constants.ACCESS_LOG_PREFIX_OUTPUT,
            expiration_days=config.output_expiration_days,
            replica_bucket_arn=config.replication_output_bucket_arn,
        )

        self.job_table = dynamodb.Table(
            self,
            "JobTable",
            partition_key=dynamodb.Attribute(name="job_name", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            deletion_protection=config.termination_protection,
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index_name, partition in (
            (constants.TABLE_INDEX_BY_INPUT, "input_key"),
            (constants.TABLE_INDEX_BY_STATUS, "status"),
        ):
            self.job_table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(
                    name=partition, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )

    def _data_bucket(
        self,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        log_prefix: str,
        expiration_days: int | None,
        replica_bucket_arn: str | None,
    ) -> s3.Bucket:
        rules = [
            s3.LifecycleRule(
                id="housekeeping",
                abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER,
                noncurrent_version_expiration=Duration.days(
                    config.noncurrent_version_expiration_days
                ),
                expired_object_delete_marker=True,
            )
        ]
        if expiration_days is not None:
            rules.append(
                s3.LifecycleRule(id="expire-current", expiration=Duration.days(expiration_days))
            )
        replication = None
        if replica_bucket_arn is not None:
            replication = BucketReplication(
                self,
                f"{construct_id}Replication",
                config=config,
                destination_bucket_arn=replica_bucket_arn,
            )
            self.replications[construct_id] = replication
        bucket = s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.RETAIN,
            # The role is ours, complete in its own policy: CDK must add no grants to it.
            replication_role=replication.role.without_policy_updates() if replication else None,
            replication_rules=[replication.rule()] if replication else None,
        )
        if replication is not None:
            replication.grant(bucket, self.key)
        self._only_our_key(bucket)
        return bucket

    def _only_our_key(self, bucket: s3.Bucket) -> None:
        """Refuse writes that ask for any encryption but the stack's key (SSE-S3, DSSE, SSE-C or
        another KMS key): such an object would rest outside the key that guards the data. A
        write that names no encryption gets the bucket's default, which is this key."""
        for sid, condition in (
            (
                "DenyOtherEncryption",
                {
                    "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption": "false"},
                },
            ),
            (
                "DenyOtherKmsKey",
                {
                    "StringNotEquals": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": self.key.key_arn
                    },
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                },
            ),
            (
                "DenyCustomerProvidedKeys",
                {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
            ),
        ):
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects("*")],
                    conditions=condition,
                )
            )

    def _allow_services(self, stack: Stack) -> None:
        """Key policy: the AWS services that encrypt with the key on this stack's behalf."""
        same_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        # CloudWatch Logs encrypts the functions' log groups: only this stack's log groups (by
        # their name prefix; naming the groups' ARNs here would be circular, they use the key).
        # DescribeKey carries no encryption context, so it could never match this condition.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsOurLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=Fn.join("", [log_group_prefix(self), "*"]),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # EventBridge sends undeliverable job-state events to the encrypted dead-letter queue.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeWritesOurQueues",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=same_account,
            )
        )
        # CloudWatch alarms publish to the encrypted SNS topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToOurTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=same_account,
            )
        )
        # S3 sends the input bucket's object-created events to the encrypted ingest queue. Not
        # conditioned on the bucket's ARN: the bucket is encrypted with this key, so naming it here
        # would be a circular dependency; the queue policy names the bucket instead.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3NotifiesOurIngestQueue",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=same_account,
            )
        )


def encrypted_queue(
    scope: Construct, construct_id: str, *, key: kms.IKey, **props: Any
) -> sqs.Queue:
    """Every queue of the stack: on our key, TLS only, messages kept as long as SQS allows
    (a burst waits in the ingest queue; a dead letter waits for a person)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=constants.DLQ_RETENTION,
        **props,
    )
