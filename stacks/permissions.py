"""IAM statements, each as narrow as its action allows.

Roles in this stack are immutable to CDK's automatic grants (see stacks/function.py): every
permission a role has is written here, so the whole of a role reads in one place and a test can
assert it exactly. The dispatcher runs inside all three functions, so all three get what
starting a job needs (`dispatch`); each then adds what its own path needs.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as _lambda
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import constants

# The services that use the stack's key on a function's behalf (S3 objects, table items,
# Transcribe's output, queue messages). Our code never calls KMS itself.
KEY_VIA_SERVICES = ("s3", "dynamodb", "transcribe", "sqs")
# What the SQS event source mapping calls with the function's role (the AWS managed
# AWSLambdaSQSQueueExecutionRole's actions); DeleteMessageBatch is authorized as DeleteMessage.
SQS_CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# What Lambda needs of the execution role to attach a function to subnets (the actions of the
# AWS managed AWSLambdaVPCAccessExecutionRole). EC2 has no narrower resource for these.
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


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
    """HeadObject, the ranged GET and Transcribe's read of the media all use the caller's
    permissions."""
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
    """The stack's key, only through the services that encrypt our data with it."""
    region = Stack.of(key).region
    return iam.PolicyStatement(
        sid="UseStackKeyThroughOurServices",
        actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        resources=[key.key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in KEY_VIA_SERVICES]
            }
        },
    )


def job_index_items(table: dynamodb.ITable, *, create: bool = False) -> iam.PolicyStatement:
    """Read and update job items and the capacity ledger (ConditionCheckItem: inside
    TransactWriteItems, which has no IAM action of its own); only the start path creates
    job items (PutItem)."""
    actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
    if create:
        actions.append("dynamodb:PutItem")
    return iam.PolicyStatement(sid="JobIndexItems", actions=actions, resources=[table.table_arn])


def query_index(table: dynamodb.ITable, index_name: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="QueryJobIndexByStatus",
        actions=["dynamodb:Query"],
        resources=[f"{table.table_arn}/index/{index_name}"],
    )


def dispatch(
    scope: Construct,
    *,
    job_name_prefix: str,
    input_bucket: s3.IBucket,
    output_bucket: s3.IBucket,
    table: dynamodb.ITable,
    key: kms.IKey,
) -> list[iam.PolicyStatement]:
    """What the dispatcher needs wherever it runs: find the oldest waiting jobs, claim
    capacity, start them (Transcribe reads the media and writes medical/ as the caller)."""
    return [
        start_medical_job(output_bucket=output_bucket, key=key),
        get_medical_job(scope, job_name_prefix),
        *read_input(input_bucket),
        write_objects(output_bucket, [constants.TRANSCRIPT_PREFIX], "TranscribeWritesOutput"),
        use_key(key),
        query_index(table, constants.TABLE_INDEX_BY_STATUS),
    ]


def consume_queue(queue: sqs.IQueue, sid: str = "ConsumeIngestQueue") -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=list(SQS_CONSUME_ACTIONS), resources=[queue.queue_arn]
    )


def send_to_queue(queue: sqs.IQueue, sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=["sqs:SendMessage"], resources=[queue.queue_arn])


def invoke_function(function: _lambda.IFunction) -> iam.PolicyStatement:
    """The function itself: it has no versions or aliases, so no '<arn>:*'."""
    return iam.PolicyStatement(
        sid="InvokeReconciler",
        actions=["lambda:InvokeFunction"],
        resources=[function.function_arn],
    )


def tracing() -> iam.PolicyStatement:
    return iam.PolicyStatement(sid="XRayTracing", actions=list(XRAY_ACTIONS), resources=["*"])


def vpc_access() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="AttachToPrivateSubnets", actions=list(VPC_ACCESS_ACTIONS), resources=["*"]
    )


def write_own_logs(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="WriteOwnLogGroup",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )
