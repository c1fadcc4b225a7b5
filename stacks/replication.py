"""Optional cross-Region replication of one data bucket (the `replication_*` settings).

Each data bucket gets a role of its own, so the input bucket's role can neither read the outputs
nor write into the outputs' destination. The role's one managed policy holds exactly what S3
replication of SSE-KMS objects needs (the S3 user guide's "Replicating encrypted objects"):
read this bucket's versions for replication, decrypt them with the stack's key only through S3
in this Region and for this bucket, replicate objects and tags into the one destination, and
encrypt there with the one destination key only through S3 in that Region and for that bucket.
CDK's own replication role is not used: it has a fixed name (two buckets or two stacks in one
account collide), an inline policy, `kms:GenerateDataKey*`/`kms:ReEncrypt*` wildcards and
actions this setup never needs (delete replication, cross-account ownership override).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig

# The source side: the configuration, the listing, and each version with its ACL and tags.
# (ACLs are disabled on our buckets, but S3 replication still reads the version's ACL.)
SOURCE_BUCKET_ACTIONS = ("s3:GetReplicationConfiguration", "s3:ListBucket")
SOURCE_OBJECT_ACTIONS = (
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionTagging",
)
# The destination side. No s3:ReplicateDelete: delete markers are not replicated (see
# `rule`), and S3 never replicates the deletion of a version.
DESTINATION_OBJECT_ACTIONS = ("s3:ReplicateObject", "s3:ReplicateTags")
# Encrypt the replica; Decrypt because the replica keeps the source's S3 Bucket Key setting and
# S3 verifies a bucket key with Decrypt before using it.
DESTINATION_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt")
RULE_ID = "replicate-every-object"


def s3_encryption_context(bucket_arn: str) -> list[str]:
    """`kms:EncryptionContext:aws:s3:arn` values of one bucket's objects: the bucket ARN when an
    S3 Bucket Key is on (ours always; the destination's is the team's choice), the object ARN
    otherwise."""
    return [bucket_arn, f"{bucket_arn}/*"]


class BucketReplication(Construct):
    """Replication of one source bucket to its destination, encrypted with the destination key.

    Create it before the bucket (the bucket names `role` in its replication configuration and
    takes `rule`), then call `grant(bucket, key)`. Exposes `role`, `destination`,
    `destination_key`, and `source` and `policy` after `grant`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        destination_bucket_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        assert config.replication_kms_key_arn is not None, "only with replication on"
        assert config.replication_region is not None
        self._config = config
        self.destination = s3.Bucket.from_bucket_arn(self, "Destination", destination_bucket_arn)
        self.destination_key = kms.Key.from_key_arn(
            self, "DestinationKey", config.replication_kms_key_arn
        )
        # Only S3 assumes it. No aws:SourceArn/SourceAccount condition: S3 replication does not
        # document sending them, and a condition it does not meet would stop replication
        # silently. Only a principal of this account may pass the role to a bucket.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description=f"S3 replication of one bucket to {destination_bucket_arn} "
            f"({config.stack_name})",
        )
        self.source: s3.IBucket | None = None
        self.policy: iam.ManagedPolicy | None = None

    def rule(self) -> s3.ReplicationRule:
        """Every object (all of ours are SSE-KMS), replicas on the destination key. Delete markers
        stay in the source: the replica is the copy that survives a mistaken or malicious delete
        here, and deletions for good (`jobctl delete`, lifecycle expiry) remove versions, which
        S3 never replicates anyway."""
        return s3.ReplicationRule(
            id=RULE_ID,
            destination=self.destination,
            kms_key=self.destination_key,
            sse_kms_encrypted_objects=True,
            delete_marker_replication=False,
            priority=0,
        )

    def grant(self, bucket: s3.IBucket, key: kms.IKey) -> iam.ManagedPolicy:
        """The role's one managed policy (HIPAA/NIST: no inline policies), made after the bucket
        because it names the bucket (the bucket names the role: no cycle)."""
        self.source = bucket
        region = Stack.of(self).region
        destination_arn = self.destination.bucket_arn
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"What S3 replication of one bucket may do ({self._config.stack_name})",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadReplicationConfiguration",
                    actions=list(SOURCE_BUCKET_ACTIONS),
                    resources=[bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadSourceVersions",
                    actions=list(SOURCE_OBJECT_ACTIONS),
                    resources=[bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="ReplicateIntoDestination",
                    actions=list(DESTINATION_OBJECT_ACTIONS),
                    resources=[f"{destination_arn}/*"],
                ),
                iam.PolicyStatement(
                    sid="DecryptSourceThroughS3",
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": s3_encryption_context(
                                bucket.bucket_arn
                            )
                        },
                    },
                ),
                iam.PolicyStatement(
                    sid="EncryptReplicasThroughS3",
                    actions=list(DESTINATION_KEY_ACTIONS),
                    resources=[self.destination_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"s3.{self._config.replication_region}.amazonaws.com"
                        },
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": s3_encryption_context(
                                destination_arn
                            )
                        },
                    },
                ),
            ],
        )
        return self.policy
