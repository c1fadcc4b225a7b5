"""cdk-nag acknowledgements, all in one place.

Each is made on the narrowest construct that raises the finding (the bucket, the function, the
role's own CloudFormation resource or its default policy), names the exact finding (wildcard
findings carry the resource or action they are about) and says why it stands. A finding that is
not listed here fails synth: new wildcards, buckets or functions must be fixed or argued here.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from stacks import constants, permissions

if TYPE_CHECKING:
    from stacks.transcription_stack import TranscriptionStack

# The construct ID CDK gives the Custom::S3BucketNotifications handler (one per stack).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"

XRAY = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions "
    "(AWS requires Resource '*'); CDK adds exactly these two for Tracing.ACTIVE."
)
START_JOB = (
    "transcribe:StartMedicalTranscriptionJob has no resource type, so Resource '*' is the only "
    "form; the statement is narrowed by conditions instead: transcribe:OutputBucketName = this "
    "stack's output bucket, transcribe:OutputEncryptionKMSKeyId = this stack's key ARN, "
    "transcribe:OutputKey like 'medical/*'."
)
KMS_DATA_KEYS = (
    "kms:GenerateDataKey* is GenerateDataKey and GenerateDataKeyWithoutPlaintext, which S3 (bucket "
    "keys), DynamoDB, SQS and Transcribe use for envelope encryption; the resource is this stack's "
    "one key ARN."
)
INPUT_OBJECTS = (
    "Uploads have arbitrary keys (dictation/, conversation/, any path), so reading them needs "
    "'<input bucket ARN>/*'; only this stack's input bucket, read-only (GetObject, "
    "GetObjectVersion)."
)
TRANSCRIBE_OUTPUT = (
    "Transcribe writes medical/<job_name>.json with the starting role's permissions, and it is "
    "read back from there; job names are generated, so the grant is the medical/ prefix of "
    "this stack's output bucket, nothing else in it."
)
DOCUMENTS = (
    "Derived documents are written under transcripts/<input key without extension>/ (contract 3); "
    "input keys are arbitrary, so the grant is the transcripts/ prefix of this stack's output "
    "bucket."
)
NO_VPC = (
    "No VPC, on purpose: the function talks only to AWS service APIs (S3, DynamoDB, Transcribe, "
    "KMS, SQS, X-Ray, CloudWatch) and to no private resource (no database, host or endpoint "
    "inside a VPC). Every call is authorized by this function's own least-privilege role and "
    "carried over TLS (the buckets and queues deny non-TLS requests); data at rest is encrypted "
    "with the stack's KMS key. A VPC would add NAT or interface endpoints and ENIs to manage "
    "without putting any resource behind a network boundary."
)
INLINE_POLICY = (
    "The role's statements are written for this one principal and share its lifecycle (the 1:1 "
    "case AWS recommends inline policies for); a customer-managed policy could be attached to "
    "other principals. No AWS managed policy is attached; tests assert the exact statements."
)
RUNTIME = (
    f"Every function uses {constants.LAMBDA_RUNTIME.name} (stacks/constants.py), matching the "
    f"Powertools layer published for it ({constants.POWERTOOLS_LAYER_PARAMETER}) and the runtime "
    "the handlers are tested for; a newer runtime is a deliberate change of runtime, layer "
    "parameter and tests together, not a drift."
)
START_DLQ = (
    "Only the SQS event source mapping invokes this function, synchronously; a function DLQ "
    "catches failed asynchronous invocations and would never receive anything. Messages that "
    "fail ingest_max_receive_count times go to the ingest queue's redrive dead-letter queue, "
    "which is encrypted and alarmed."
)
NO_REPLICATION = (
    "Single Region by design: Transcribe Medical reads media from a bucket in its own Region. "
    "Versioning, noncurrent-version retention and RemovalPolicy.RETAIN protect against deletion "
    "and overwrite; replicating PHI to a second Region (its key, bucket and BAA scope) is a "
    "deployment decision outside this stack."
)
LOG_BUCKET_SSE_S3 = (
    "S3 server access logging delivers only to a target bucket with SSE-S3 (AES256) default "
    "encryption; SSE-KMS there makes log delivery fail. This bucket holds access logs only (no "
    "audio, no transcripts), blocks public access, denies non-TLS requests and is versioned."
)
TABLE_BACKUP = (
    "Point-in-time recovery is on (continuous backups, restore to any second of the last 35 "
    "days; asserted in tests). The index holds job metadata, not audio or transcripts, which "
    "live in versioned, retained buckets. Longer-term AWS Backup plans (vault, schedule, "
    "retention) are an account-level decision left to the deployment."
)
SCHEDULER_INVOKE = (
    "CDK's scheduler LambdaInvoke target grants lambda:InvokeFunction on the reconcile function "
    "and '<its ARN>:*' (its versions and aliases): one function, nothing else."
)
NOTIFICATIONS_MANAGED_POLICY = (
    "CDK's Custom::S3BucketNotifications handler (from Bucket.add_event_notification) always "
    "attaches AWSLambdaBasicExecutionRole to its own role so it can write its logs; it runs only "
    "during deployments, and its one other permission is s3:PutBucketNotification on the input "
    "bucket."
)
NOTIFICATIONS_INLINE_POLICY = (
    "CDK's bucket-notification handler policy: s3:PutBucketNotification on the input bucket "
    "only, attached to the handler's own role."
)


def acknowledge(stack: TranscriptionStack) -> None:
    """Acknowledge every cdk-nag finding this stack keeps, with its reason."""
    storage, ingest, completion = stack.storage, stack.ingest, stack.completion
    prefix = stack.config.job_name_prefix
    job_arn = permissions.medical_job_arn(stack, prefix)
    job_prefix_reason = (
        "Transcribe Medical job ARNs end in the job name; the wildcard is only the suffix after "
        f"this stack's job-name prefix '{prefix}' (config rejects environment prefixes that "
        "begin one another), so only this stack's jobs match."
    )
    input_objects = storage.input_bucket.arn_for_objects("*")
    medical = storage.output_bucket.arn_for_objects(f"{constants.TRANSCRIPT_PREFIX}*")
    documents = storage.output_bucket.arn_for_objects(f"{constants.DOCUMENTS_PREFIX}*")

    # Storage.
    _ack(storage.access_log_bucket, "HIPAA.Security-S3DefaultEncryptionKMS", LOG_BUCKET_SSE_S3)
    for bucket in (storage.access_log_bucket, storage.input_bucket, storage.output_bucket):
        _ack(bucket, "HIPAA.Security-S3BucketReplicationEnabled", NO_REPLICATION)
    _ack(storage.job_table, "HIPAA.Security-DynamoDBInBackupPlan", TABLE_BACKUP)

    # The three functions: what all share, then each role's own wildcards.
    functions = (ingest.start, completion.post_process, completion.reconcile)
    for fn in functions:
        _ack(fn.function, "AwsSolutions-L1", RUNTIME)
        _ack(fn.function, "HIPAA.Security-LambdaInsideVPC", NO_VPC)
        _ack(fn.role, "HIPAA.Security-IAMNoInlinePolicy", INLINE_POLICY)
        _ack(_default_policy(fn.role), _wildcard_resource(stack, "*"), XRAY)
        _ack(_cfn(fn.role), "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", KMS_DATA_KEYS)
        _ack(_cfn(fn.role), _wildcard_resource(stack, job_arn), job_prefix_reason)
    _ack(ingest.start_function, "HIPAA.Security-LambdaDLQ", START_DLQ)
    for fn in (ingest.start, completion.reconcile):
        _ack(_cfn(fn.role), _wildcard_resource(stack, "*"), START_JOB)
        _ack(_cfn(fn.role), _wildcard_resource(stack, input_objects), INPUT_OBJECTS)
    for fn in functions:
        _ack(_cfn(fn.role), _wildcard_resource(stack, medical), TRANSCRIBE_OUTPUT)
    for fn in (completion.post_process, completion.reconcile):
        _ack(_cfn(fn.role), _wildcard_resource(stack, documents), DOCUMENTS)

    # The scheduler's role.
    _ack(completion.scheduler_role, "HIPAA.Security-IAMNoInlinePolicy", INLINE_POLICY)
    _ack(
        _default_policy(completion.scheduler_role),
        _wildcard_resource(stack, f"{completion.reconcile_function.function_arn}:*"),
        SCHEDULER_INVOKE,
    )

    # CDK's bucket-notification custom resource.
    handler = stack.node.find_child(NOTIFICATIONS_HANDLER_ID)
    _ack(
        _cfn(handler.node.find_child("Role")),
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        NOTIFICATIONS_MANAGED_POLICY,
    )
    _ack(
        _notifications(storage.input_bucket).node.find_child("HandlerPolicy"),
        "HIPAA.Security-IAMNoInlinePolicy",
        NOTIFICATIONS_INLINE_POLICY,
    )


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Every acknowledgement under `scope`: construct path -> {finding: reason}."""
    found: dict[str, dict[str, str]] = {}
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                rules = {
                    re.sub(r"^annotation::", "", k, flags=re.I): v for k, v in entry.data.items()
                }
                found.setdefault(construct.node.path, {}).update(rules)
    return found


def _ack(construct: IConstruct, finding: str, reason: str) -> None:
    if not reason.strip():
        raise ValueError(f"acknowledging {finding} on {construct.node.path} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def _cfn(construct: IConstruct) -> IConstruct:
    child = construct.node.default_child
    assert child is not None, construct.node.path
    return child


def _default_policy(role: iam.IRole) -> IConstruct:
    return role.node.find_child("DefaultPolicy")


def _notifications(bucket: s3.IBucket) -> IConstruct:
    return bucket.node.find_child("Notifications")


def _wildcard_resource(stack: Stack, resource: str) -> str:
    """The AwsSolutions-IAM5 finding cdk-nag reports for a resource ARN with a wildcard."""
    return f"AwsSolutions-IAM5[Resource::{_flatten(stack.resolve(resource))}]"


def _flatten(node: Any) -> str:
    """cdk-nag's flattenCfnReference: a resolved CloudFormation value as the string it reports."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
