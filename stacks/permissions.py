"""IAM statements the functions share, each as narrow as the action allows.

One place for them so the start-job and reconcile roles (which both start jobs) cannot drift.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import constants


def medical_job_arn(scope: Construct, job_name_prefix: str) -> str:
    """ARN pattern of this stack's Transcribe Medical jobs: its job-name prefix, any suffix."""
    return Stack.of(scope).format_arn(
        service="transcribe",
        resource="medical-transcription-job",
        resource_name=f"{job_name_prefix}*",
    )


def start_medical_job(*, output_bucket: s3.IBucket, key: kms.IKey) -> iam.PolicyStatement:
    """StartMedicalTranscriptionJob has no resource type: narrow it by where its output goes."""
    return iam.PolicyStatement(
        sid="StartMedicalJobIntoOurBucketWithOurKey",
        actions=["transcribe:StartMedicalTranscriptionJob"],
        resources=["*"],
        conditions={
            "StringEquals": {
                "transcribe:OutputBucketName": output_bucket.bucket_name,
                "transcribe:OutputEncryptionKMSKeyId": key.key_arn,
            },
            "StringLike": {"transcribe:OutputKey": f"{constants.TRANSCRIPT_PREFIX}*"},
        },
    )


def get_medical_job(scope: Construct, job_name_prefix: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="GetOurMedicalJobs",
        actions=["transcribe:GetMedicalTranscriptionJob"],
        resources=[medical_job_arn(scope, job_name_prefix)],
    )


def read_input(input_bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="ReadInputObjects",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[input_bucket.arn_for_objects("*")],
        ),
        # ListBucket turns a missing object into 404 instead of 403.
        iam.PolicyStatement(
            sid="ListInputBucket",
            actions=["s3:ListBucket"],
            resources=[input_bucket.bucket_arn],
        ),
    ]


def read_objects(bucket: s3.IBucket, prefix: str, sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]
    )


def write_objects(bucket: s3.IBucket, prefixes: list[str], sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        actions=["s3:PutObject"],
        resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes],
    )


def use_key(key: kms.IKey) -> iam.PolicyStatement:
    """Read and write objects, items and Transcribe output encrypted with the stack's key."""
    return iam.PolicyStatement(
        sid="UseStackKey",
        actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
        resources=[key.key_arn],
    )


def job_index_items(table: dynamodb.ITable, *, create: bool = False) -> iam.PolicyStatement:
    """Read and update job items; only the start path creates them (PutItem)."""
    actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    if create:
        actions.insert(1, "dynamodb:PutItem")
    return iam.PolicyStatement(sid="JobIndexItems", actions=actions, resources=[table.table_arn])


def query_index(table: dynamodb.ITable, index_name: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="QueryJobIndexByStatus",
        actions=["dynamodb:Query"],
        resources=[f"{table.table_arn}/index/{index_name}"],
    )


def write_own_logs(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="WriteOwnLogGroup",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )
