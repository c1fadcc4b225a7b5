"""Finishing jobs: Transcribe state-change events -> post-process Lambda, and a scheduled
reconcile Lambda that polls open jobs (EventBridge delivery is best effort, and AWS documents
the event for standard jobs only: completion must not depend on it).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from stacks import constants, permissions
from stacks.config import EnvironmentConfig
from stacks.function import PipelineFunction, Placement, function_environment
from stacks.storage import Storage, encrypted_queue


@jsii.implements(events.IRuleTarget)
class EncryptedQueueTarget:
    """The completion queue as the rule's target, with the grants written here.

    CDK's `SqsQueue` target would grant EventBridge Encrypt, GenerateDataKey* and ReEncrypt*
    on the stack's key without any condition, and let any rule send to the queue. Here the
    queue policy names this rule (aws:SourceArn) and the key policy (Storage) lets EventBridge
    use the key for this account's queues only.
    """

    def __init__(
        self,
        queue: sqs.IQueue,
        *,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> None:
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue
        self.retry_attempts = retry_attempts
        self.max_event_age = max_event_age

    def bind(
        self,
        rule: events_refs.IRuleRef,
        id: str | None = None,
    ) -> events.RuleTargetConfig:
        for queue, sid in (
            (self.queue, "JobStateRuleSendsEvents"),
            (self.dead_letter_queue, "JobStateRuleSendsUndeliverable"),
        ):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
                )
            )
        return events.RuleTargetConfig(
            arn=self.queue.queue_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self.dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=self.retry_attempts,
                maximum_event_age_in_seconds=int(self.max_event_age.to_seconds()),
            ),
        )


class Completion(Construct):
    """Exposes `rule`, `queue` (completion events), `dead_letter_queue` (post-process path),
    `event_source`, `post_process`,
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

        # Post-process: events EventBridge could not deliver, and events whose processing
        # failed on every one of the completion queue's deliveries.
        self.dead_letter_queue = encrypted_queue(
            self, "PostProcessDeadLetterQueue", key=storage.key
        )
        # EventBridge -> this queue -> post-process: a crashed or throttled invocation's
        # events come back (COMPLETION_MAX_RECEIVES times), where a Lambda target would get
        # two async retries; the reconciler finishes any job regardless.
        self.queue = encrypted_queue(
            self,
            "CompletionQueue",
            key=storage.key,
            visibility_timeout=constants.COMPLETION_VISIBILITY_TIMEOUT,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=constants.COMPLETION_MAX_RECEIVES, queue=self.dead_letter_queue
            ),
        )
        self.post_process = PipelineFunction(
            self,
            "PostProcess",
            config=config,
            handler=constants.POST_PROCESS_HANDLER,
            description="Turns finished Transcribe Medical jobs into documents and index state",
            key=key,
            statements=[
                *dispatch,
                *finish,
                permissions.consume_queue(self.queue, "ConsumeCompletionQueue"),
            ],
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
            EncryptedQueueTarget(
                self.queue,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=constants.COMPLETION_RETRY_ATTEMPTS,
                max_event_age=constants.COMPLETION_MAX_EVENT_AGE,
            )
        )
        self.event_source = event_sources.SqsEventSource(
            self.queue,
            batch_size=constants.COMPLETION_BATCH_SIZE,
            report_batch_item_failures=True,
            max_concurrency=constants.COMPLETION_MAX_CONCURRENCY,
        )
        self.post_process_function.add_event_source(self.event_source)

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
