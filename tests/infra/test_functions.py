"""The three pipeline functions: one runtime and architecture, their handlers, logging, tracing,
concurrency, log groups and environment variables (contract 2), per environment."""

from __future__ import annotations

from typing import Any

import pytest

from stacks import constants
from stacks.function import DEPENDENCIES_LAYER_ID, PipelineFunction
from tests.infra.helpers import Env

HANDLERS = (
    constants.START_JOB_HANDLER,
    constants.POST_PROCESS_HANDLER,
    constants.RECONCILE_HANDLER,
)

# Contract 2, plus what Powertools reads.
CONTRACT_VARIABLES = {
    "JOB_TABLE",
    "INPUT_BUCKET",
    "OUTPUT_BUCKET",
    "KMS_KEY_ID",
    "JOB_NAME_PREFIX",
    "SPECIALTY",
    "DEFAULT_TYPE",
    "SHOW_SPEAKER_LABELS",
    "MAX_SPEAKER_LABELS",
    "CHANNEL_IDENTIFICATION",
    "MAX_ALTERNATIVES",
    "VOCABULARY_NAME",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "LOW_CONFIDENCE_THRESHOLD",
    # What the dispatcher reads (issue 8).
    "CONCURRENT_JOB_SHARE",
    "START_RATE_PER_SECOND",
}


def pipeline_function(env: Env, handler: str) -> PipelineFunction:
    return {
        constants.START_JOB_HANDLER: env.stack.ingest.start,
        constants.POST_PROCESS_HANDLER: env.stack.completion.post_process,
        constants.RECONCILE_HANDLER: env.stack.completion.reconcile,
    }[handler]


def expected_settings(env: Env, handler: str) -> dict[str, Any]:
    return {
        constants.START_JOB_HANDLER: {
            "ReservedConcurrentExecutions": env.config.start_reserved_concurrency,
            "Timeout": 60,
            "MemorySize": constants.START_JOB_MEMORY_MB,
        },
        constants.POST_PROCESS_HANDLER: {
            "ReservedConcurrentExecutions": env.config.post_process_reserved_concurrency,
            "Timeout": 300,
            "MemorySize": 1024,
        },
        constants.RECONCILE_HANDLER: {
            "ReservedConcurrentExecutions": None,
            "Timeout": 300,
            "MemorySize": 1024,
        },
    }[handler]


def test_exactly_three_pipeline_functions_share_one_runtime(any_env: Env) -> None:
    functions = any_env.template.find_resources("AWS::Lambda::Function")
    pipeline = {k: f for k, f in functions.items() if f["Properties"].get("Handler") in HANDLERS}
    assert len(pipeline) == 3
    assert {f["Properties"]["Runtime"] for f in pipeline.values()} == {"python3.13"}
    assert {tuple(f["Properties"]["Architectures"]) for f in pipeline.values()} == {("arm64",)}
    # The one other function is CDK's bucket-notification custom resource handler.
    others = [f for k, f in functions.items() if k not in pipeline]
    assert len(others) == 1
    assert "Custom::S3BucketNotifications" in others[0]["Properties"]["Description"]


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_settings(env: Env, handler: str) -> None:
    fn = pipeline_function(env, handler)
    _, resource = env.function(handler)
    props = resource["Properties"]
    assert props["Runtime"] == constants.LAMBDA_RUNTIME.name
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": env.logical_id(fn.log_group)},
    }
    for name, value in expected_settings(env, handler).items():
        assert props.get(name) == value, name
    assert props["Role"] == {"Fn::GetAtt": [env.logical_id(fn.role), "Arn"]}
    # Environment variables rest on the stack's key, not Lambda's AWS-managed one.
    assert props["KmsKeyArn"] == {"Fn::GetAtt": [env.logical_id(env.stack.storage.key), "Arn"]}
    # Functions sit in the isolated subnets exactly when the environment asks for a VPC.
    if env.config.vpc:
        network = env.stack.network
        assert network is not None
        assert props["VpcConfig"]["SecurityGroupIds"] == [
            {"Fn::GetAtt": [env.logical_id(network.security_group), "GroupId"]}
        ]
        assert len(props["VpcConfig"]["SubnetIds"]) == 2
    else:
        assert "VpcConfig" not in props
    # Two layers (CDK sorts them under the recognizeLayerVersion flag; their files do not
    # overlap, so the order is moot): Powertools from AWS's public SSM parameter (resolved at
    # deploy time), and the handlers' own dependencies (test_dependencies_layer.py).
    dependencies = {"Ref": env.logical_id(env.stack.node.find_child(DEPENDENCIES_LAYER_ID))}
    assert dependencies in props["Layers"]
    (powertools,) = [layer for layer in props["Layers"] if layer != dependencies]
    parameter = env.template.to_json()["Parameters"][powertools["Ref"]]
    assert parameter == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": constants.POWERTOOLS_LAYER_PARAMETER,
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_log_group_retention_encryption_and_retention_policy(any_env: Env, handler: str) -> None:
    fn = pipeline_function(any_env, handler)
    log_group = any_env.resources[any_env.logical_id(fn.log_group)]
    assert log_group["Properties"]["RetentionInDays"] == any_env.config.log_retention_days
    assert log_group["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": [any_env.logical_id(any_env.stack.storage.key), "Arn"]
    }
    assert log_group["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("handler", HANDLERS)
def test_environment_variables(any_env: Env, handler: str) -> None:
    storage = any_env.stack.storage
    _, resource = any_env.function(handler)
    variables = resource["Properties"]["Environment"]["Variables"]
    assert set(variables) >= CONTRACT_VARIABLES
    assert variables == {
        "JOB_TABLE": {"Ref": any_env.logical_id(storage.job_table)},
        "INPUT_BUCKET": {"Ref": any_env.logical_id(storage.input_bucket)},
        "OUTPUT_BUCKET": {"Ref": any_env.logical_id(storage.output_bucket)},
        "KMS_KEY_ID": {"Fn::GetAtt": [any_env.logical_id(storage.key), "Arn"]},
        "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
        "LOG_LEVEL": "INFO",
        **any_env.config.lambda_environment(),
    }


def test_job_settings_per_environment(envs: dict[str, Env], variant: Env) -> None:
    # Given three environments configured differently, then each function carries its own.
    def settings(env: Env) -> dict[str, str]:
        _, resource = env.function(constants.START_JOB_HANDLER)
        return resource["Properties"]["Environment"]["Variables"]

    dev, prod, qa = settings(envs["dev"]), settings(envs["prod"]), settings(variant)
    assert (dev["JOB_NAME_PREFIX"], prod["JOB_NAME_PREFIX"], qa["JOB_NAME_PREFIX"]) == (
        "medscribe-dev",
        "medscribe-prod",
        "qa-scribe",
    )
    assert dev["MAX_SPEAKER_LABELS"] == str(envs["dev"].config.max_speaker_labels)
    assert prod["MAX_SPEAKER_LABELS"] == str(envs["prod"].config.max_speaker_labels)
    assert dev["MAX_SPEAKER_LABELS"] != prod["MAX_SPEAKER_LABELS"]
    assert (dev["IDENTIFY_PHI"], prod["IDENTIFY_PHI"]) == ("false", "true")
    assert (dev["SHOW_SPEAKER_LABELS"], qa["SHOW_SPEAKER_LABELS"]) == ("true", "false")
    assert (dev["CHANNEL_IDENTIFICATION"], qa["CHANNEL_IDENTIFICATION"]) == ("false", "true")
    assert (dev["DEFAULT_TYPE"], qa["DEFAULT_TYPE"]) == ("CONVERSATION", "DICTATION")
    assert (dev["MAX_ALTERNATIVES"], qa["MAX_ALTERNATIVES"]) == ("", "3")
    assert (dev["VOCABULARY_NAME"], qa["VOCABULARY_NAME"]) == ("", "cardiology-terms")
    assert (dev["LOW_CONFIDENCE_THRESHOLD"], qa["LOW_CONFIDENCE_THRESHOLD"]) == ("0.5", "0.7")
    assert {dev["SPECIALTY"], prod["SPECIALTY"], qa["SPECIALTY"]} == {"PRIMARYCARE"}


def test_no_reserved_concurrency_unless_configured(envs: dict[str, Env], variant: Env) -> None:
    # A new account may have a Lambda limit of 10: any reservation would fail its deploy, so
    # only an environment that sets one gets one (the variant does; dev and prod do not).
    def reserved(env: Env, handler: str) -> int | None:
        return env.function(handler)[1]["Properties"].get("ReservedConcurrentExecutions")

    for env in envs.values():
        for handler in HANDLERS:
            assert reserved(env, handler) is None, (env.config.name, handler)
    assert reserved(variant, constants.START_JOB_HANDLER) == 1
    assert reserved(variant, constants.POST_PROCESS_HANDLER) == 3
    assert reserved(variant, constants.RECONCILE_HANDLER) is None


def test_log_groups_are_named_under_the_stack_prefix(any_env: Env) -> None:
    # The key policy lets CloudWatch Logs use the key for /<stack>/<stack GUID>/* only.
    for handler in HANDLERS:
        fn = pipeline_function(any_env, handler)
        name = any_env.props(fn.log_group)["LogGroupName"]
        assert name == {
            "Fn::Join": [
                "",
                [
                    f"/{any_env.stack.stack_name}/",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                    f"/{fn.node.id}",
                ],
            ]
        }
