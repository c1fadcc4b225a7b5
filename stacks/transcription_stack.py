"""One environment of the pipeline: composes one construct per capability and wires them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from stacks import compliance
from stacks.completion import Completion
from stacks.config import EnvironmentConfig
from stacks.ingest import Ingest
from stacks.monitoring import Monitoring
from stacks.storage import Storage


class TranscriptionStack(Stack):
    """Exposes `config`, `storage`, `ingest`, `completion`, `monitoring`."""

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
        self.ingest = Ingest(self, "Ingest", config=config, storage=self.storage)
        self.completion = Completion(self, "Completion", config=config, storage=self.storage)
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
        compliance.acknowledge(self)
