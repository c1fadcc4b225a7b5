"""Alarms that reach a person, and a dashboard of the pipeline's flow.

Alarms go to an SNS topic: the stack's own (encrypted, with an email subscription from
`alarm_email`) or an existing one (`alarm_topic_arn`). An environment with termination
protection must name one of the two (config refuses it otherwise); any other environment
without either synthesizes with a warning, because its alarms would notify nobody.
"""

from __future__ import annotations

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as _lambda
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import constants
from stacks.config import EnvironmentConfig

PERIOD = Duration.minutes(5)
NO_RECIPIENT_WARNING = (
    "Alarms notify nobody: set alarm_email or alarm_topic_arn for this environment in cdk.json"
)


def job_metric(
    name: str, *, statistic: str = cloudwatch.Stats.SUM, label: str | None = None
) -> cloudwatch.Metric:
    """A custom metric the handlers emit through Powertools Metrics."""
    return cloudwatch.Metric(
        namespace=constants.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": constants.SERVICE_NAME},
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


class Monitoring(Construct):
    """Exposes `topic` (ITopic), `alarms` (name -> Alarm), `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: dict[str, sqs.IQueue],
        functions: dict[str, _lambda.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.topic: sns.ITopic
        if config.alarm_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        else:
            self.topic = sns.Topic(
                self,
                "AlarmTopic",
                display_name=f"{stack.stack_name} alarms",
                master_key=key,
                enforce_ssl=True,
            )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        if not (config.alarm_email or config.alarm_topic_arn):
            Annotations.of(self).add_warning_v2("medscribe:alarm-recipient", NO_RECIPIENT_WARNING)
        action = cloudwatch_actions.SnsAction(self.topic)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}Messages",
                queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
                ),
                f"Messages are waiting in the {name} dead-letter queue",
                action,
            )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                f"The {name} function raised errors",
                action,
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                f"The {name} function was throttled (account or reserved concurrency exhausted)",
                action,
            )
        self._alarm(
            "JobsFailed",
            job_metric("JobsFailed"),
            "Transcribe Medical jobs failed (see failure_reason in the job index)",
            action,
        )
        self._alarm(
            "ReconcileJobErrors",
            job_metric(constants.RECONCILE_ERRORS_METRIC),
            "The reconciler could not check or finish some jobs",
            action,
        )
        self._alarm(
            "BacklogAge",
            job_metric(constants.BACKLOG_AGE_METRIC, statistic=cloudwatch.Stats.MAXIMUM),
            f"The oldest waiting (PENDING) job has waited more than "
            f"{config.backlog_age_alarm_minutes} minutes",
            action,
            threshold=config.backlog_age_alarm_minutes * 60,
        )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=stack.stack_name, default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs: uploads, starts, completions, failures, rejections",
                left=[job_metric(name) for name in constants.JOB_COUNT_METRICS],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Audio minutes transcribed",
                left=[job_metric(constants.AUDIO_MINUTES_METRIC)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Backlog: waiting jobs and the oldest one's age",
                left=[
                    job_metric(constants.BACKLOG_SIZE_METRIC, statistic=cloudwatch.Stats.MAXIMUM)
                ],
                right=[
                    job_metric(constants.BACKLOG_AGE_METRIC, statistic=cloudwatch.Stats.MAXIMUM)
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Concurrent-job quota in use",
                left=[job_metric(constants.IN_FLIGHT_METRIC, statistic=cloudwatch.Stats.MAXIMUM)],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.concurrent_job_share, label="this environment's share"
                    )
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Post-processing duration (ms)",
                left=[
                    job_metric(
                        constants.POST_PROCESS_DURATION_METRIC,
                        statistic=stat,
                        label=stat,
                    )
                    for stat in (cloudwatch.Stats.p(50), cloudwatch.Stats.p(90))
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues and the ingest queue",
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label=name, statistic=cloudwatch.Stats.MAXIMUM
                    )
                    for name, q in dead_letter_queues.items()
                ],
                right=[
                    ingest_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label="Ingest", statistic=cloudwatch.Stats.MAXIMUM
                    )
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors and throttles",
                left=[
                    f.metric_errors(period=PERIOD, label=f"{name} errors")
                    for name, f in functions.items()
                ],
                right=[
                    f.metric_throttles(period=PERIOD, label=f"{name} throttles")
                    for name, f in functions.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p90)",
                left=[
                    f.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.p(90), label=name)
                    for name, f in functions.items()
                ],
                width=12,
            ),
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        action: cloudwatch.IAlarmAction,
        *,
        threshold: float = 0,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            metric=metric,
            alarm_description=description,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms[name] = alarm
