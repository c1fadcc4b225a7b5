"""Uploads become jobs: input bucket -> SQS ingest queue (+ DLQ) -> start-job Lambda.

A message is done once its upload is recorded in the job index (PENDING is the backlog); the
event source's maximum concurrency caps how many start invocations run at once, without
reserving any of the account's Lambda concurrency.
"""

from __future__ import annotations

import jsii
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_s3 as s3_refs
from constructs import Construct

from stacks import constants, permissions
from stacks.config import EnvironmentConfig
from stacks.function import PipelineFunction, Placement, function_environment
from stacks.storage import Storage, encrypted_queue


@jsii.implements(s3.IBucketNotificationDestination)
class EncryptedQueueDestination:
    """An SQS notification destination for a queue on the bucket's own KMS key.

    CDK's `SqsDestination` also grants S3 the key with the bucket's ARN as condition, which puts
    the bucket in the key policy of the key the bucket is encrypted with: a circular dependency.
    Here the queue policy names the bucket and the key policy (Storage) names the account.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(
        self, _scope: Construct, bucket: s3_refs.IBucketRef
    ) -> s3.BucketNotificationDestinationConfig:
        added = self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="InputBucketSendsObjectCreated",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": bucket.bucket_ref.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Stack.of(self.queue).account},
                },
            )
        )
        dependencies = [added.policy_dependable] if added.policy_dependable else []
        return s3.BucketNotificationDestinationConfig(
            arn=self.queue.queue_arn,
            type=s3.BucketNotificationDestinationType.QUEUE,
            dependencies=dependencies,
        )


class Ingest(Construct):
    """Exposes `queue`, `dead_letter_queue`, `start` (PipelineFunction), `start_function`,
    `event_source`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        key = storage.key

        self.dead_letter_queue = encrypted_queue(self, "DeadLetterQueue", key=key)
        self.queue = encrypted_queue(
            self,
            "Queue",
            key=key,
            visibility_timeout=constants.INGEST_VISIBILITY_TIMEOUT,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=config.ingest_max_receive_count, queue=self.dead_letter_queue
            ),
        )
        storage.input_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, EncryptedQueueDestination(self.queue)
        )

        self.start = PipelineFunction(
            self,
            "StartJob",
            config=config,
            handler=constants.START_JOB_HANDLER,
            description="Validates uploads and starts Transcribe Medical jobs",
            key=key,
            statements=[
                *permissions.dispatch(
                    self,
                    job_name_prefix=config.job_name_prefix,
                    input_bucket=storage.input_bucket,
                    output_bucket=storage.output_bucket,
                    table=storage.job_table,
                    key=key,
                ),
                # Only the start path creates job items.
                permissions.job_index_items(storage.job_table, create=True),
                permissions.consume_queue(self.queue),
            ],
            environment=function_environment(config=config, storage=storage),
            reserved_concurrency=config.start_reserved_concurrency,
            timeout=constants.START_JOB_TIMEOUT,
            memory_size=constants.START_JOB_MEMORY_MB,
            placement=placement,
        )
        self.start_function = self.start.function

        self.event_source = event_sources.SqsEventSource(
            self.queue,
            batch_size=config.start_batch_size,
            report_batch_item_failures=True,
            max_batching_window=constants.INGEST_MAX_BATCHING_WINDOW,
            max_concurrency=config.start_max_concurrency,
        )
        self.start_function.add_event_source(self.event_source)
