"""Optional AWS Backup plan (`backup_plan: true`): daily recovery points of the job table and the
input and output buckets, kept `backup_retention_days`, in a vault on the stack's key.

Off by default: the table has point-in-time recovery and the buckets are versioned and
retained; a backup plan adds copies a deletion of the resource itself cannot reach.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_backup as backup
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.storage import Storage

# AWS Backup's own policies for its service role (S3 backups need the S3 pair besides the
# default pair). AWS maintains them as the services' backup APIs change.
BACKUP_POLICY_NAMES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "service-role/AWSBackupServiceRolePolicyForS3Backup",
    "service-role/AWSBackupServiceRolePolicyForS3Restore",
)


class Backup(Construct):
    """Exposes `vault`, `plan`, `selection`, `role`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=storage.key,
            removal_policy=RemovalPolicy.RETAIN,
            block_recovery_point_deletion=True,
        )
        self.plan = backup.BackupPlan(
            self,
            "Plan",
            backup_vault=self.vault,
            backup_plan_rules=[
                backup.BackupPlanRule(
                    rule_name="daily",
                    delete_after=Duration.days(config.backup_retention_days),
                )
            ],
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description=f"AWS Backup of the table and buckets ({config.stack_name})",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in BACKUP_POLICY_NAMES
            ],
        )
        self.selection = self.plan.add_selection(
            "TableAndBuckets",
            role=self.role,
            resources=[
                backup.BackupResource.from_dynamo_db_table(storage.job_table),
                backup.BackupResource.from_arn(storage.input_bucket.bucket_arn),
                backup.BackupResource.from_arn(storage.output_bucket.bucket_arn),
            ],
        )
