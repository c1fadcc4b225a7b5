"""The stack's stateful resources, created in the AWS emulator (moto) from the same
environment config the CDK app deploys, so the handlers meet the table, buckets, key and
queues they meet in AWS. Tests and the demo both build on this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from stacks.config import EnvironmentConfig
from stacks.contract import (
    TABLE_INDEX_BY_INPUT,
    TABLE_INDEX_BY_STATUS,
    handler_environment,
)


@dataclass(frozen=True)
class EmulatedStack:
    config: EnvironmentConfig
    input_bucket: str
    output_bucket: str
    job_table: str
    key_arn: str
    ingest_queue_url: str
    ingest_dlq_url: str

    def stack_outputs(self) -> dict[str, str]:
        """The deployed stack's outputs, for jobctl's --outputs-file (the shape that
        `cdk deploy --outputs-file` writes under the stack's name)."""
        return {
            "JobTableName": self.job_table,
            "InputBucketName": self.input_bucket,
            "OutputBucketName": self.output_bucket,
            "IngestQueueUrl": self.ingest_queue_url,
            "KmsKeyArn": self.key_arn,
        }

    def lambda_environment(self) -> dict[str, str]:
        """What the stack sets on every function, pointing at the emulated resources."""
        return handler_environment(
            self.config,
            job_table=self.job_table,
            input_bucket=self.input_bucket,
            output_bucket=self.output_bucket,
            key_arn=self.key_arn,
        )


def job_table_definition(name: str) -> dict[str, Any]:
    """The job index exactly as contract 1 (and stacks/storage.py) define it."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "job_name", "AttributeType": "S"},
            {"AttributeName": "input_key", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "job_name", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": TABLE_INDEX_BY_INPUT,
                "KeySchema": [
                    {"AttributeName": "input_key", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": TABLE_INDEX_BY_STATUS,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def create_resources(config: EnvironmentConfig, *, session: Any = None) -> EmulatedStack:
    """Create key, buckets, table and queues in the emulator the session points at."""
    session = session or boto3.Session(region_name=config.region)
    prefix = config.job_name_prefix.lower()
    kms = session.client("kms")
    key_arn = kms.create_key(Description=f"{config.stack_name} data key")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key_arn)

    s3 = session.client("s3")
    buckets = {name: f"{prefix}-{name}" for name in ("input", "output")}
    for bucket in buckets.values():
        if config.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": config.region}
            )
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key_arn,
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )

    table = f"{config.stack_name}-jobs"
    session.client("dynamodb").create_table(**job_table_definition(table))

    sqs = session.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-ingest-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-ingest",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.ingest_max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=buckets["input"],
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return EmulatedStack(
        config=config,
        input_bucket=buckets["input"],
        output_bucket=buckets["output"],
        job_table=table,
        key_arn=key_arn,
        ingest_queue_url=queue_url,
        ingest_dlq_url=dlq_url,
    )
