"""Each role's exact permissions. A role is found through its function (or its schedule), and
its grants are compared as (effect, action, resource, condition) facts, so the test does not
depend on how CDK merges statements."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from stacks import constants
from tests.infra.helpers import (
    KEY_ACTIONS,
    LOG_ACTIONS,
    SQS_CONSUME_ACTIONS,
    TABLE_ITEM_ACTIONS,
    XRAY_ACTIONS,
    Env,
    Grant,
    all_policy_statements,
    allow,
)

BASIC_EXECUTION_ROLE = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ],
    ]
}


def job_arn(env: Env) -> str:
    return (
        f"arn:aws:transcribe:{env.config.region}:{env.stack.account}:"
        f"medical-transcription-job/{env.config.job_name_prefix}*"
    )


def start_job_grant(env: Env) -> set[Grant]:
    storage = env.stack.storage
    return allow(
        ["transcribe:StartMedicalTranscriptionJob"],
        "*",
        {
            "StringEquals": {
                "transcribe:OutputBucketName": env.resolve(storage.output_bucket.bucket_name),
                "transcribe:OutputEncryptionKMSKeyId": env.resolve(storage.key.key_arn),
            },
            "StringLike": {"transcribe:OutputKey": "medical/*"},
        },
    )


def common_grants(env: Env, fn_log_group: object) -> set[Grant]:
    """What every pipeline function has: the key, the table items, its own logs, X-Ray."""
    storage = env.stack.storage
    return (
        allow(["transcribe:GetMedicalTranscriptionJob"], job_arn(env))
        | allow(KEY_ACTIONS, env.resolve(storage.key.key_arn))
        | allow(TABLE_ITEM_ACTIONS, env.resolve(storage.job_table.table_arn))
        | allow(LOG_ACTIONS, env.resolve(fn_log_group.log_group_arn))  # type: ignore[attr-defined]
        | allow(XRAY_ACTIONS, "*")
    )


def output_objects(env: Env, prefix: str) -> object:
    return env.resolve(env.stack.storage.output_bucket.arn_for_objects(f"{prefix}*"))


def read_input_grants(env: Env) -> set[Grant]:
    bucket = env.stack.storage.input_bucket
    return allow(
        ["s3:GetObject", "s3:GetObjectVersion"], env.resolve(bucket.arn_for_objects("*"))
    ) | allow(["s3:ListBucket"], env.resolve(bucket.bucket_arn))


def test_start_job_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    ingest, storage = env.stack.ingest, env.stack.storage
    role_id = env.role_of(constants.START_JOB_HANDLER)
    assert role_id == env.logical_id(ingest.start.role)
    expected = (
        start_job_grant(env)
        | common_grants(env, ingest.start.log_group)
        | read_input_grants(env)
        | allow(["s3:PutObject"], output_objects(env, "medical/"))
        # Only the start path creates job items.
        | allow(["dynamodb:PutItem"], env.resolve(storage.job_table.table_arn))
        # What the SQS event source grants: consume the ingest queue, decrypt its messages.
        | allow(SQS_CONSUME_ACTIONS, env.resolve(ingest.queue.queue_arn))
        | allow(["kms:Decrypt"], env.resolve(storage.key.key_arn))
    )
    assert env.role_grants(role_id) == expected


def test_post_process_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    completion = env.stack.completion
    role_id = env.role_of(constants.POST_PROCESS_HANDLER)
    assert role_id == env.logical_id(completion.post_process.role)
    expected = (
        common_grants(env, completion.post_process.log_group)
        | allow(["s3:GetObject"], output_objects(env, "medical/"))
        | allow(["s3:PutObject"], output_objects(env, "transcripts/"))
        # Its function-level DLQ (asynchronous invocations that kept failing).
        | allow(["sqs:SendMessage"], env.resolve(completion.dead_letter_queue.queue_arn))
    )
    assert env.role_grants(role_id) == expected


def test_reconcile_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    completion, table = env.stack.completion, env.stack.storage.job_table
    role_id = env.role_of(constants.RECONCILE_HANDLER)
    assert role_id == env.logical_id(completion.reconcile.role)
    expected = (
        start_job_grant(env)
        | common_grants(env, completion.reconcile.log_group)
        | read_input_grants(env)
        | allow(["s3:GetObject"], output_objects(env, "medical/"))
        | allow(["s3:PutObject"], output_objects(env, "medical/"))
        | allow(["s3:PutObject"], output_objects(env, "transcripts/"))
        | allow(
            ["dynamodb:Query"],
            env.resolve(f"{table.table_arn}/index/{constants.TABLE_INDEX_BY_STATUS}"),
        )
        | allow(["sqs:SendMessage"], env.resolve(completion.reconcile_dead_letter_queue.queue_arn))
    )
    assert env.role_grants(role_id) == expected


def test_scheduler_role_invokes_only_the_reconciler(any_env: Env) -> None:
    env = any_env
    completion = env.stack.completion
    role_id = env.logical_id(completion.scheduler_role)
    function_arn = env.resolve(completion.reconcile_function.function_arn)
    expected = (
        allow(["lambda:InvokeFunction"], function_arn)
        | allow(["lambda:InvokeFunction"], {"Fn::Join": ["", [function_arn, ":*"]]})
        | allow(["sqs:SendMessage"], env.resolve(completion.reconcile_dead_letter_queue.queue_arn))
        | allow(["kms:Decrypt", "kms:GenerateDataKey"], env.resolve(env.stack.storage.key.key_arn))
    )
    assert env.role_grants(role_id) == expected
    trust = env.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": env.stack.account}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]


def test_each_function_has_its_own_role_trusted_by_lambda_only(any_env: Env) -> None:
    roles = set()
    for handler in (
        constants.START_JOB_HANDLER,
        constants.POST_PROCESS_HANDLER,
        constants.RECONCILE_HANDLER,
    ):
        role_id = any_env.role_of(handler)
        roles.add(role_id)
        trust = any_env.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]
        assert trust["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
    assert len(roles) == 3


def test_only_xray_and_conditioned_start_job_use_resource_star(any_env: Env) -> None:
    start_conditions = json.loads(next(iter(start_job_grant(any_env)))[3])
    for statement in all_policy_statements(any_env.template):
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if "*" not in resources:
            continue
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert resources == ["*"], statement
        if set(actions) <= set(XRAY_ACTIONS):
            assert "Condition" not in statement
            continue
        assert actions == ["transcribe:StartMedicalTranscriptionJob"], statement
        assert statement["Condition"] == start_conditions


def test_no_role_has_managed_policies_except_cdks_notification_handler(any_env: Env) -> None:
    # Our roles carry explicit statements only. CDK's Custom::S3BucketNotifications handler
    # always attaches AWSLambdaBasicExecutionRole to its own role (acknowledged in compliance).
    (handler,) = any_env.template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Description": Match.string_like_regexp(r"Custom::S3BucketNotifications")}},
    ).values()
    handler_role = handler["Properties"]["Role"]["Fn::GetAtt"][0]
    any_env.template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
    for role_id, role in any_env.template.find_resources("AWS::IAM::Role").items():
        managed = role["Properties"].get("ManagedPolicyArns")
        if role_id == handler_role:
            assert managed == [BASIC_EXECUTION_ROLE]
        else:
            assert managed is None, role_id
