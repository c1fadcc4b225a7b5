"""One environment of the pipeline: composes one construct per capability and wires them."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

from stacks import compliance
from stacks.backup import Backup
from stacks.completion import Completion
from stacks.config import EnvironmentConfig
from stacks.ingest import Ingest
from stacks.monitoring import Monitoring
from stacks.network import AVAILABILITY_ZONES, Network
from stacks.storage import Storage


class TranscriptionStack(Stack):
    """Exposes `config`, `storage`, `network` (None without `vpc`), `ingest`, `completion`,
    `monitoring`, `backup` (None without `backup_plan`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.network = (
            Network(self, "Network", flow_log_bucket=self.storage.access_log_bucket)
            if config.vpc
            else None
        )
        placement = self.network.placement if self.network else None
        self.ingest = Ingest(
            self, "Ingest", config=config, storage=self.storage, placement=placement
        )
        self.completion = Completion(
            self, "Completion", config=config, storage=self.storage, placement=placement
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            key=self.storage.key,
            ingest_queue=self.ingest.queue,
            dead_letter_queues={
                "Ingest": self.ingest.dead_letter_queue,
                "PostProcess": self.completion.dead_letter_queue,
                "Reconcile": self.completion.reconcile_dead_letter_queue,
            },
            functions={
                "StartJob": self.ingest.start_function,
                "PostProcess": self.completion.post_process_function,
                "Reconcile": self.completion.reconcile_function,
            },
        )
        self.backup = (
            Backup(self, "Backup", config=config, storage=self.storage)
            if config.backup_plan
            else None
        )
        compliance.acknowledge(self)
        self._add_outputs()

    @property
    def availability_zones(self) -> list[str]:
        """The Region's first two zones, resolved by CloudFormation at deploy time: CDK's
        default for a stack with an account looks them up at synth, which needs credentials."""
        return [Fn.select(i, Fn.get_azs()) for i in range(AVAILABILITY_ZONES)]

    def _add_outputs(self) -> None:
        """Where operators and tools find this environment's resources: `cdk deploy
        --outputs-file` and DescribeStacks both report these, and `python -m jobctl` reads them.
        Created in the stack's own scope so each output's logical ID is exactly its name."""
        storage = self.storage
        outputs = (
            ("JobTableName", storage.job_table.table_name, "DynamoDB job index (contract 1)"),
            ("InputBucketName", storage.input_bucket.bucket_name, "Bucket that takes audio"),
            ("OutputBucketName", storage.output_bucket.bucket_name, "Transcripts and documents"),
            ("IngestQueueUrl", self.ingest.queue.queue_url, "Upload notifications to start"),
            ("KmsKeyArn", storage.key.key_arn, "Key encrypting the stack's data"),
        )
        # A cross-account replica bucket's policy must name the role that replicates into it.
        replication_outputs = tuple(
            (
                f"{bucket_id}ReplicationRoleArn",
                replication.role.role_arn,
                f"Role that replicates the {bucket_id[: -len('Bucket')].lower()} bucket",
            )
            for bucket_id, replication in storage.replications.items()
        )
        for name, value, description in (*outputs, *replication_outputs):
            CfnOutput(self, name, value=value, description=description)
