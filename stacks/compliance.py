"""cdk-nag acknowledgements, all in one place.

Each is made on the narrowest construct that raises the finding (the bucket, the function, the
role's managed policy), names the exact finding (wildcard
findings carry the resource or action they are about) and says why it stands. A finding that is
not listed here fails synth: new wildcards, buckets or functions must be fixed or argued here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from stacks import constants, permissions
from stacks.backup import BACKUP_POLICY_NAMES

if TYPE_CHECKING:
    from stacks.transcription_stack import TranscriptionStack

# The construct ID CDK gives the Custom::S3BucketNotifications handler (one per stack).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"

XRAY = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions "
    "(AWS requires Resource '*'); the functions trace actively (Tracing.ACTIVE)."
)
START_JOB = (
    "transcribe:StartMedicalTranscriptionJob has no resource type, so Resource '*' is the only "
    "form; the statement is narrowed by conditions instead: transcribe:OutputBucketName = this "
    "stack's output bucket, transcribe:OutputEncryptionKMSKeyId = this stack's key ARN, "
    "transcribe:OutputKey like 'medical/*'."
)
INPUT_OBJECTS = (
    "Uploads have arbitrary keys (dictation/, conversation/, any path), and every function runs "
    "the dispatcher, which reads the upload and lets Transcribe read it with the caller's "
    "permissions: '<input bucket ARN>/*' of this stack's input bucket only, read-only (GetObject, "
    "GetObjectVersion)."
)
TRANSCRIBE_OUTPUT = (
    "Transcribe writes medical/<job_name>.json with the starting role's permissions (every "
    "function may start jobs through the dispatcher), and the completion path reads it back; job "
    "names are generated, so the grant is the medical/ prefix of this stack's output bucket."
)
DOCUMENTS = (
    "Derived documents are written under transcripts/<input key>/<version>/ (contract 3); input "
    "keys are arbitrary, so the grant is the transcripts/ prefix of this stack's output bucket."
)
VPC_ACCESS = (
    "With vpc on, Lambda attaches the function to its subnets through network interfaces it "
    "creates with the execution role; these EC2 actions (AWSLambdaVPCAccessExecutionRole's) "
    "support no narrower resource than '*'."
)
NO_VPC = (
    "No VPC in this environment (setting vpc: false): the function talks only to AWS service APIs "
    "(S3, DynamoDB, Transcribe, SQS, X-Ray) and to no private resource. Every call is authorized "
    "by the function's own least-privilege role and carried over TLS (buckets and queues deny "
    "non-TLS requests); data at rest is on the stack's KMS key. Set vpc: true to run it in "
    "isolated subnets with VPC endpoints."
)
NO_RESERVED_CONCURRENCY = (
    "Reserved concurrency is off by default on purpose: a new account may have a Lambda limit of "
    "10, and any reservation then fails the deploy. The start function is paced by its SQS event "
    "source's maximum concurrency and the dispatcher (this stack's share of the Transcribe quota "
    "and start rate); start_reserved_concurrency / post_process_reserved_concurrency reserve "
    "some where the account allows it."
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
    "No cross-Region replication in this environment: Transcribe Medical reads media from a "
    "bucket in its own Region, and versioning, noncurrent-version retention and "
    "RemovalPolicy.RETAIN protect against deletion and overwrite. Replicating PHI to a second "
    "Region needs a destination bucket, key and BAA scope there: the replication_* settings "
    "turn it on once they exist."
)
REPLICATION_SOURCE_VERSIONS = (
    "S3 replication must read every version of every object of this bucket (uploads and "
    "documents have arbitrary keys): '<bucket ARN>/*' of this one bucket, with the read-only "
    "replication actions GetObjectVersionForReplication, GetObjectVersionAcl and "
    "GetObjectVersionTagging; the role belongs to this bucket's replication alone and only "
    "s3.amazonaws.com may assume it."
)
REPLICATION_DESTINATION_OBJECTS = (
    "Replicas keep their source keys, which are arbitrary, so S3 replication writes anywhere "
    "in the one destination bucket set for this bucket in cdk.json: ReplicateObject and "
    "ReplicateTags only (no ReplicateDelete, no ownership override), and the replicas are "
    "encrypted with the configured destination key."
)
LOG_BUCKET_REPLICATION = (
    "The access-log bucket holds S3 server access logs (and VPC flow logs), which quote object "
    "keys: copying them to a second Region would spread PHI for no recovery benefit (the data "
    "they describe is in the versioned, retained buckets); they expire after "
    "access_log_expiration_days."
)
LOG_BUCKET_SSE_S3 = (
    "S3 server access logging delivers only to a target bucket with SSE-S3 (AES256) default "
    "encryption; SSE-KMS there makes log delivery fail. The logs quote object keys (PHI): the "
    "bucket blocks public access, denies non-TLS requests, is versioned and retained, and its "
    "objects expire after access_log_expiration_days."
)
TABLE_BACKUP = (
    "No AWS Backup plan in this environment (backup_plan: false): point-in-time recovery is on "
    "(restore to any second of the last 35 days; asserted in tests) and the table holds job "
    "metadata, not audio or transcripts. Set backup_plan: true for daily recovery points in a "
    "vault on the stack's key."
)
DEFAULT_SECURITY_GROUP = (
    "Nothing uses the VPC's default security group: functions and endpoints each have their own. "
    "Closing it needs CDK's custom-resource Lambda (another function and role in the stack) "
    "because CloudFormation cannot edit the default group's rules."
)
BACKUP_MANAGED_POLICIES = (
    "AWS Backup's own service-role policies (backup, restore, and the S3 pair S3 backups require), "
    "attached to the backup selection's role that only backup.amazonaws.com can assume; AWS "
    "maintains them as the services' backup APIs change."
)
NOTIFICATIONS_MANAGED_POLICY = (
    "CDK's Custom::S3BucketNotifications handler (from Bucket.add_event_notification) always "
    "attaches AWSLambdaBasicExecutionRole to its own role so it can write its logs; it runs only "
    "during deployments, and its one other permission is s3:PutBucketNotification on the input "
    "bucket."
)
NOTIFICATIONS_INLINE_POLICY = (
    "CDK's bucket-notification handler policy: s3:PutBucketNotification on the input bucket "
    "only, attached to the handler's own role, created and deleted with it."
)
BOTH_PACKS = ("HIPAA.Security", "NIST.800.53.R5")
ACCESS_LOG_BUCKET_LOGGING = (
    "This is the target of the other buckets' server access logs; logging its own access into "
    "itself would write a log line for every log delivery, without end. Reads of it are "
    "recorded by CloudTrail like any other API call."
)
NOTIFICATIONS_HANDLER = (
    "CDK's Custom::S3BucketNotifications handler runs only while CloudFormation deploys the stack "
    "(it sets the input bucket's notification configuration); it touches no PHI and no private "
    "resource, is invoked synchronously by CloudFormation (no DLQ would ever receive anything) "
    "and runs once per deployment."
)


def acknowledge(stack: TranscriptionStack) -> None:
    """Acknowledge every cdk-nag finding this stack keeps, with its reason."""
    config = stack.config
    storage, ingest, completion = stack.storage, stack.ingest, stack.completion
    prefix = config.job_name_prefix
    job_arn = permissions.medical_job_arn(stack, prefix)
    job_prefix_reason = (
        "Transcribe Medical job ARNs end in the job name; the wildcard is only the suffix after "
        f"this stack's job-name prefix '{prefix}' (config rejects environment prefixes that are "
        "equal or begin one another), so only this stack's jobs match."
    )
    star_reason = " ".join([XRAY, START_JOB, *([VPC_ACCESS] if config.vpc else [])])
    input_objects = storage.input_bucket.arn_for_objects("*")
    medical = storage.output_bucket.arn_for_objects(f"{constants.TRANSCRIPT_PREFIX}*")
    documents = storage.output_bucket.arn_for_objects(f"{constants.DOCUMENTS_PREFIX}*")

    # Storage.
    _ack_both(storage.access_log_bucket, "S3DefaultEncryptionKMS", LOG_BUCKET_SSE_S3)
    _ack_both(storage.access_log_bucket, "S3BucketReplicationEnabled", LOG_BUCKET_REPLICATION)
    if not config.replication:
        for bucket in (storage.input_bucket, storage.output_bucket):
            _ack_both(bucket, "S3BucketReplicationEnabled", NO_REPLICATION)
    for replication in storage.replications.values():
        assert replication.source is not None
        assert replication.policy is not None
        replication_policy = _cfn(replication.policy)
        _ack(
            replication_policy,
            _wildcard_resource(stack, replication.source.arn_for_objects("*")),
            REPLICATION_SOURCE_VERSIONS,
        )
        _ack(
            replication_policy,
            _wildcard_resource(stack, f"{replication.destination.bucket_arn}/*"),
            REPLICATION_DESTINATION_OBJECTS,
        )
    if not config.backup_plan:
        _ack_both(storage.job_table, "DynamoDBInBackupPlan", TABLE_BACKUP)
    if stack.network is not None:
        _ack_both(stack.network.vpc, "VPCDefaultSecurityGroupClosed", DEFAULT_SECURITY_GROUP)
    if stack.backup is not None:
        for name in BACKUP_POLICY_NAMES:
            _ack(_cfn(stack.backup.role), _managed_policy_finding(name), BACKUP_MANAGED_POLICIES)

    # The three functions run the dispatcher: the same wildcards in each one's managed policy.
    reservations = {
        ingest.start: config.start_reserved_concurrency,
        completion.post_process: config.post_process_reserved_concurrency,
        completion.reconcile: None,
    }
    for fn, reserved in reservations.items():
        _ack(fn.function, "AwsSolutions-L1", RUNTIME)
        if not config.vpc:
            _ack_both(fn.function, "LambdaInsideVPC", NO_VPC)
        if reserved is None:
            _ack_both(fn.function, "LambdaConcurrency", NO_RESERVED_CONCURRENCY)
        policy = _cfn(fn.policy)
        _ack(policy, _wildcard_resource(stack, "*"), star_reason)
        _ack(policy, _wildcard_resource(stack, job_arn), job_prefix_reason)
        _ack(policy, _wildcard_resource(stack, input_objects), INPUT_OBJECTS)
        _ack(policy, _wildcard_resource(stack, medical), TRANSCRIBE_OUTPUT)
    _ack_both(ingest.start_function, "LambdaDLQ", START_DLQ)
    for fn in (completion.post_process, completion.reconcile):
        _ack(_cfn(fn.policy), _wildcard_resource(stack, documents), DOCUMENTS)

    # checkov: the same decisions, recorded in each resource's Metadata (checkov's convention).
    _skip(storage.access_log_bucket, "CKV_AWS_18", ACCESS_LOG_BUCKET_LOGGING)
    for fn, reserved in reservations.items():
        if not config.vpc:
            _skip(fn.function, "CKV_AWS_117", NO_VPC)
        else:
            _skip(fn.policy, "CKV_AWS_111", VPC_ACCESS)
        if reserved is None:
            _skip(fn.function, "CKV_AWS_115", NO_RESERVED_CONCURRENCY)
    _skip(ingest.start_function, "CKV_AWS_116", START_DLQ)

    # CDK's bucket-notification custom resource.
    handler = stack.node.find_child(NOTIFICATIONS_HANDLER_ID)
    for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"):
        _skip(handler, check, NOTIFICATIONS_HANDLER)
    _ack(
        _cfn(handler.node.find_child("Role")),
        _managed_policy_finding("service-role/AWSLambdaBasicExecutionRole"),
        NOTIFICATIONS_MANAGED_POLICY,
    )
    _ack_both(
        _notifications(storage.input_bucket).node.find_child("HandlerPolicy"),
        "IAMNoInlinePolicy",
        NOTIFICATIONS_INLINE_POLICY,
    )


NAG_PACK_PREFIXES = ("AwsSolutions-", "HIPAA.Security-", "NIST.800.53.R5-")


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Every cdk-nag acknowledgement under `scope`: construct path -> {finding: reason}. (CDK
    makes a few of its own for its internal template validation; those are not ours.)"""
    found: dict[str, dict[str, str]] = {}
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                rules = {
                    re.sub(r"^annotation::", "", k, flags=re.I): v for k, v in entry.data.items()
                }
                ours = {k: v for k, v in rules.items() if k.startswith(NAG_PACK_PREFIXES)}
                if ours:
                    found.setdefault(construct.node.path, {}).update(ours)
    return found


def _skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """A checkov skip in the CloudFormation resource's Metadata, with its reason as comment."""
    if not reason.strip():
        raise ValueError(f"skipping {check_id} on {construct.node.path} needs a reason")
    resource = construct.node.default_child or construct
    assert isinstance(resource, CfnResource), construct.node.path
    current = resource.get_metadata("checkov") or {}
    skips = [*current.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**current, "skip": skips})


def checkov_skips(template: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Every checkov skip in a synthesized template: logical ID -> {check: reason}."""
    return {
        logical_id: {s["id"]: s["comment"] for s in resource["Metadata"]["checkov"]["skip"]}
        for logical_id, resource in template.get("Resources", {}).items()
        if "checkov" in resource.get("Metadata", {})
    }


def _ack_both(construct: IConstruct, rule: str, reason: str) -> None:
    """A rule the HIPAA and NIST 800-53 R5 packs share (same check, same resource)."""
    for pack in BOTH_PACKS:
        _ack(construct, f"{pack}-{rule}", reason)


def _managed_policy_finding(name: str) -> str:
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]"


def _ack(construct: IConstruct, finding: str, reason: str) -> None:
    if not reason.strip():
        raise ValueError(f"acknowledging {finding} on {construct.node.path} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def _cfn(construct: IConstruct) -> IConstruct:
    child = construct.node.default_child
    assert child is not None, construct.node.path
    return child


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
