"""One pipeline Lambda: its own role, its own encrypted log group, the shared runtime and layers.

Every function in the stack is built here so they cannot differ in runtime, architecture,
logging, tracing, network or in how their permissions are given: one customer-managed policy
per role holding every statement the role has. The function sees its role as immutable, so CDK's
automatic grants (event source, tracing, dead-letter queue, VPC) add nothing behind the
statements' back: a managed policy rather than inline ones because the HIPAA and NIST 800-53
packs ask for it, and it still belongs to one role only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as _lambda
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks import constants, permissions
from stacks.config import EnvironmentConfig
from stacks.contract import handler_environment
from stacks.storage import Storage, log_group_name

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_ID = "PowertoolsLayer"
DEPENDENCIES_LAYER_ID = "DependenciesLayer"

# CloudWatch Logs retention by days (the values config.LOG_RETENTION_DAYS allows).
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def lambda_code() -> _lambda.Code:
    """The one code asset: the `lambdas/` directory as it is (no Docker bundling)."""
    return _lambda.Code.from_asset(
        str(REPO_ROOT / constants.LAMBDA_CODE_DIR), exclude=["**/__pycache__", "*.pyc"]
    )


def powertools_layer(scope: Construct) -> _lambda.ILayerVersion:
    """The public Powertools layer, its ARN read from AWS's SSM parameter at deploy time."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(LAYER_ID)
    if existing is not None:
        return existing  # type: ignore[return-value]
    arn = ssm.StringParameter.value_for_string_parameter(
        stack, constants.POWERTOOLS_LAYER_PARAMETER
    )
    return _lambda.LayerVersion.from_layer_version_arn(stack, LAYER_ID, arn)


class LayerNotBuiltError(RuntimeError):
    """The dependencies layer's directory is missing or was built from other requirements."""


def built_layer_dir() -> Path:
    """The directory `make install` built from requirements-lambda.txt, checked before it
    becomes an asset: a missing or stale build would deploy functions without their imports."""
    layer = REPO_ROOT / constants.DEPENDENCIES_LAYER_DIR
    requirements = REPO_ROOT / constants.DEPENDENCIES_REQUIREMENTS
    stamp = REPO_ROOT / constants.DEPENDENCIES_LAYER_STAMP
    if not (layer / "python").is_dir():
        raise LayerNotBuiltError(
            f"the handlers' dependencies layer is not built: {layer / 'python'} is missing. "
            f"Run `make install` (it installs {requirements.name} there for Lambda)."
        )
    if not stamp.is_file() or stamp.read_text() != requirements.read_text():
        raise LayerNotBuiltError(
            f"the handlers' dependencies layer in {layer} was not built from the current "
            f"{requirements.name}. Run `make install` to rebuild it."
        )
    return layer


def dependencies_layer(scope: Construct) -> _lambda.ILayerVersion:
    """The handlers' own dependencies (requirements-lambda.txt) as one layer per stack, from
    wheels `make install` fetched for the functions' platform (no Docker at synth)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(DEPENDENCIES_LAYER_ID)
    if existing is not None:
        return existing  # type: ignore[return-value]
    return _lambda.LayerVersion(
        stack,
        DEPENDENCIES_LAYER_ID,
        code=_lambda.Code.from_asset(str(built_layer_dir()), exclude=["**/__pycache__", "*.pyc"]),
        compatible_runtimes=[constants.LAMBDA_RUNTIME],
        compatible_architectures=[constants.LAMBDA_ARCHITECTURE],
        description=(
            f"Python dependencies of the pipeline handlers ({constants.DEPENDENCIES_REQUIREMENTS})"
        ),
    )


@dataclass(frozen=True)
class Placement:
    """Where functions run when the environment has `vpc` on."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup


class PipelineFunction(Construct):
    """A Lambda with its own role (`statements` + its own logs, tracing, DLQ and network, all in
    one managed policy), log group and optional DLQ.

    Exposes `log_group`, `role`, `policy`, `function`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        handler: str,
        description: str,
        key: kms.IKey,
        statements: list[iam.PolicyStatement],
        environment: dict[str, str],
        reserved_concurrency: int | None,
        timeout: Duration,
        memory_size: int,
        dead_letter_queue: sqs.IQueue | None = None,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # Named under this stack's log-group prefix: the key policy lets CloudWatch Logs use
            # the key for exactly these names.
            log_group_name=log_group_name(self, construct_id),
            retention=RETENTION[config.log_retention_days],
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} ({config.stack_name})",
        )
        own = [permissions.write_own_logs(self.log_group), permissions.tracing()]
        if dead_letter_queue is not None:
            own.append(permissions.send_to_queue(dead_letter_queue, "FunctionDeadLetterQueue"))
        if placement is not None:
            own.append(permissions.vpc_access())
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Everything the {construct_id} function may do ({config.stack_name})",
            statements=[*statements, *own],
            roles=[self.role],
        )
        self.function = _lambda.Function(
            self,
            "Function",
            description=description,
            runtime=constants.LAMBDA_RUNTIME,
            architecture=constants.LAMBDA_ARCHITECTURE,
            handler=handler,
            code=lambda_code(),
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            logging_format=_lambda.LoggingFormat.JSON,
            tracing=_lambda.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            timeout=timeout,
            memory_size=memory_size,
            layers=[powertools_layer(self), dependencies_layer(self)],
            environment=environment,
            environment_encryption=key,
            dead_letter_queue=dead_letter_queue,
            vpc=placement.vpc if placement else None,
            vpc_subnets=placement.subnets if placement else None,
            security_groups=[placement.security_group] if placement else None,
        )
        # The role's policy must exist before the function is created or updated (Lambda checks
        # the role can reach the DLQ, the subnets and the key at that moment).
        self.function.node.add_dependency(self.policy)


def function_environment(*, config: EnvironmentConfig, storage: Storage) -> dict[str, str]:
    """Contract 2 for this stack's resources."""
    return handler_environment(
        config,
        job_table=storage.job_table.table_name,
        input_bucket=storage.input_bucket.bucket_name,
        output_bucket=storage.output_bucket.bucket_name,
        key_arn=storage.key.key_arn,
    )
