"""Alarms (dead letters, function errors, failed jobs) to an encrypted SNS topic; a dashboard."""

from __future__ import annotations

from aws_cdk import Duration, Stack
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


def job_metric(name: str) -> cloudwatch.Metric:
    """A custom metric the handlers emit through Powertools Metrics."""
    return cloudwatch.Metric(
        namespace=constants.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": constants.SERVICE_NAME},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
    )


class Monitoring(Construct):
    """Exposes `topic`, `alarms` (name -> Alarm), `dashboard`."""

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

        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{stack.stack_name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
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
            "JobsFailed",
            job_metric("JobsFailed"),
            "Transcribe Medical jobs failed (see failure_reason in the job index)",
            action,
        )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=stack.stack_name, default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest queue",
                left=[
                    ingest_queue.metric_approximate_number_of_messages_visible(period=PERIOD),
                    ingest_queue.metric_approximate_number_of_messages_not_visible(period=PERIOD),
                ],
                right=[ingest_queue.metric_approximate_age_of_oldest_message(period=PERIOD)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label=name, statistic=cloudwatch.Stats.MAXIMUM
                    )
                    for name, q in dead_letter_queues.items()
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
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs",
                left=[job_metric(name) for name in constants.JOB_METRICS],
                width=24,
            )
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        action: cloudwatch.IAlarmAction,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            metric=metric,
            alarm_description=description,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms[name] = alarm
