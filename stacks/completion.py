"""Finishing jobs: Transcribe state-change events -> post-process Lambda, and a scheduled
reconcile Lambda that polls open jobs (EventBridge delivery is best effort, and AWS documents
the event for standard jobs only: completion must not depend on it).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from stacks import constants, permissions
from stacks.config import EnvironmentConfig
from stacks.function import PipelineFunction, Placement, function_environment
from stacks.storage import Storage, encrypted_queue


class Completion(Construct):
    """Exposes `rule`, `dead_letter_queue` (post-process path), `post_process`,
    `post_process_function`, `schedule`, `scheduler_role`, `reconcile_dead_letter_queue`,
    `reconcile`, `reconcile_function`."""

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
        output = storage.output_bucket
        environment = function_environment(config=config, storage=storage)
        # The dispatcher runs in both completion functions: a job that ends frees a slot.
        dispatch = permissions.dispatch(
            self,
            job_name_prefix=config.job_name_prefix,
            input_bucket=storage.input_bucket,
            output_bucket=output,
            table=storage.job_table,
            key=key,
        )
        finish = [
            permissions.read_objects(output, constants.TRANSCRIPT_PREFIX, "ReadTranscripts"),
            permissions.write_objects(output, [constants.DOCUMENTS_PREFIX], "WriteDocuments"),
            permissions.job_index_items(storage.job_table),
        ]

        # Post-process: events EventBridge could not deliver and async invokes that kept failing.
        self.dead_letter_queue = encrypted_queue(
            self, "PostProcessDeadLetterQueue", key=storage.key
        )
        self.post_process = PipelineFunction(
            self,
            "PostProcess",
            config=config,
            handler=constants.POST_PROCESS_HANDLER,
            description="Turns finished Transcribe Medical jobs into documents and index state",
            key=key,
            statements=[*dispatch, *finish],
            environment=environment,
            reserved_concurrency=config.post_process_reserved_concurrency,
            timeout=constants.POST_PROCESS_TIMEOUT,
            memory_size=constants.POST_PROCESS_MEMORY_MB,
            dead_letter_queue=self.dead_letter_queue,
            placement=placement,
        )
        self.post_process_function = self.post_process.function

        self.rule = events.Rule(
            self,
            "JobStateChange",
            description=f"Transcribe Medical jobs named {config.job_name_prefix}* that finished",
            event_pattern=events.EventPattern(
                source=[constants.TRANSCRIBE_EVENT_SOURCE],
                detail_type=[constants.TRANSCRIBE_EVENT_DETAIL_TYPE],
                detail={
                    "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
                    "TranscriptionJobName": [{"prefix": config.job_name_prefix}],
                },
            ),
        )
        self.rule.add_target(
            events_targets.LambdaFunction(
                self.post_process_function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=constants.COMPLETION_RETRY_ATTEMPTS,
                max_event_age=constants.COMPLETION_MAX_EVENT_AGE,
            )
        )

        # Reconcile: finishes open jobs and restarts PENDING ones whose queue message was lost.
        self.reconcile_dead_letter_queue = encrypted_queue(
            self, "ReconcileDeadLetterQueue", key=storage.key
        )
        self.reconcile = PipelineFunction(
            self,
            "Reconcile",
            config=config,
            handler=constants.RECONCILE_HANDLER,
            description="Polls open Transcribe Medical jobs and finishes or restarts them",
            key=key,
            statements=[*dispatch, *finish],
            environment=environment,
            # No reservation (it would fail the deploy on an account with a Lambda limit of 10):
            # the schedule invokes it every few minutes and a run ends well within that.
            reserved_concurrency=None,
            timeout=constants.RECONCILE_TIMEOUT,
            memory_size=constants.RECONCILE_MEMORY_MB,
            dead_letter_queue=self.reconcile_dead_letter_queue,
            placement=placement,
        )
        self.reconcile_function = self.reconcile.function

        # The role EventBridge Scheduler invokes the reconciler with, trusted only for this
        # stack's schedule group (confused deputy: aws:SourceAccount and aws:SourceArn). Its
        # statements are all written here: CDK's target would also grant '<function>:*'.
        stack = Stack.of(self)
        self.schedule_group = scheduler.ScheduleGroup(self, "ScheduleGroup")
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": self.schedule_group.schedule_group_arn,
                    }
                },
            ),
            description=f"Runs the reconciler on schedule ({config.stack_name})",
        )
        self.scheduler_policy = iam.ManagedPolicy(
            self,
            "SchedulerPolicy",
            description=f"What the reconcile schedule may do ({config.stack_name})",
            statements=[
                permissions.invoke_function(self.reconcile_function),
                permissions.send_to_queue(
                    self.reconcile_dead_letter_queue, "ScheduleDeadLetterQueue"
                ),
                iam.PolicyStatement(
                    sid="WriteEncryptedDeadLetterQueue",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"sqs.{stack.region}.amazonaws.com"}
                    },
                ),
            ],
            roles=[self.scheduler_role],
        )
        self.schedule = scheduler.Schedule(
            self,
            "ReconcileSchedule",
            description=f"Runs the reconciler every {config.reconcile_interval_minutes} minutes",
            schedule_group=self.schedule_group,
            schedule=scheduler.ScheduleExpression.rate(
                Duration.minutes(config.reconcile_interval_minutes)
            ),
            target=scheduler_targets.LambdaInvoke(
                self.reconcile_function,
                dead_letter_queue=self.reconcile_dead_letter_queue,
                retry_attempts=constants.RECONCILE_RETRY_ATTEMPTS,
                max_event_age=constants.RECONCILE_MAX_EVENT_AGE,
                role=self.scheduler_role.without_policy_updates(),
            ),
        )
        self.schedule.node.add_dependency(self.scheduler_policy)
