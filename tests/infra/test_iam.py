"""Each role's exact permissions. A role is found through its function (or its schedule), and
its grants are compared as (effect, action, resource, condition) facts, so the test does not
depend on how CDK merges statements."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from stacks import constants
from stacks.backup import BACKUP_POLICY_NAMES
from stacks.function import PipelineFunction
from tests.infra.helpers import (
    KEY_ACTIONS,
    LOG_ACTIONS,
    SQS_CONSUME_ACTIONS,
    TABLE_ITEM_ACTIONS,
    VPC_ACCESS_ACTIONS,
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


def key_grant(env: Env) -> set[Grant]:
    """The stack's key, only through the services that encrypt our data (kms:ViaService)."""
    region = env.config.region
    return allow(
        KEY_ACTIONS,
        env.resolve(env.stack.storage.key.key_arn),
        {
            "StringEquals": {
                "kms:ViaService": [
                    f"{service}.{region}.amazonaws.com"
                    for service in ("s3", "dynamodb", "transcribe", "sqs")
                ]
            }
        },
    )


def output_objects(env: Env, prefix: str) -> object:
    return env.resolve(env.stack.storage.output_bucket.arn_for_objects(f"{prefix}*"))


def read_input_grants(env: Env) -> set[Grant]:
    bucket = env.stack.storage.input_bucket
    return allow(
        ["s3:GetObject", "s3:GetObjectVersion"], env.resolve(bucket.arn_for_objects("*"))
    ) | allow(["s3:ListBucket"], env.resolve(bucket.bucket_arn))


def dispatch_grants(env: Env) -> set[Grant]:
    """What every function needs because the dispatcher runs in each: find waiting jobs, claim
    capacity in the table, start them (Transcribe reads the media and writes medical/ as us)."""
    table = env.stack.storage.job_table
    return (
        start_job_grant(env)
        | allow(["transcribe:GetMedicalTranscriptionJob"], job_arn(env))
        | read_input_grants(env)
        | allow(["s3:PutObject"], output_objects(env, "medical/"))
        | key_grant(env)
        | allow(TABLE_ITEM_ACTIONS, env.resolve(table.table_arn))
        | allow(
            ["dynamodb:Query"],
            env.resolve(f"{table.table_arn}/index/{constants.TABLE_INDEX_BY_STATUS}"),
        )
    )


def own_grants(env: Env, fn: PipelineFunction) -> set[Grant]:
    """Its own log group, tracing, and (with vpc) attaching to the subnets."""
    grants = allow(LOG_ACTIONS, env.resolve(fn.log_group.log_group_arn)) | allow(XRAY_ACTIONS, "*")
    if env.config.vpc:
        grants |= allow(VPC_ACCESS_ACTIONS, "*")
    return grants


def finish_grants(env: Env, dead_letter_queue: object) -> set[Grant]:
    return (
        allow(["s3:GetObject"], output_objects(env, "medical/"))
        | allow(["s3:PutObject"], output_objects(env, "transcripts/"))
        # Its function-level DLQ (asynchronous invocations that kept failing).
        | allow(["sqs:SendMessage"], env.resolve(dead_letter_queue.queue_arn))  # type: ignore[attr-defined]
    )


def test_start_job_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    ingest, storage = env.stack.ingest, env.stack.storage
    role_id = env.role_of(constants.START_JOB_HANDLER)
    assert role_id == env.logical_id(ingest.start.role)
    expected = (
        dispatch_grants(env)
        | own_grants(env, ingest.start)
        # Only the start path creates job items.
        | allow(["dynamodb:PutItem"], env.resolve(storage.job_table.table_arn))
        # What the SQS event source mapping calls with this role (messages decrypt through SQS).
        | allow(SQS_CONSUME_ACTIONS, env.resolve(ingest.queue.queue_arn))
    )
    assert env.role_grants(role_id) == expected


def test_post_process_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    completion = env.stack.completion
    role_id = env.role_of(constants.POST_PROCESS_HANDLER)
    assert role_id == env.logical_id(completion.post_process.role)
    expected = (
        dispatch_grants(env)
        | own_grants(env, completion.post_process)
        | finish_grants(env, completion.dead_letter_queue)
        # What the completion queue's event source mapping calls with this role.
        | allow(SQS_CONSUME_ACTIONS, env.resolve(completion.queue.queue_arn))
    )
    assert env.role_grants(role_id) == expected


def test_reconcile_role_has_exactly_its_permissions(any_env: Env) -> None:
    env = any_env
    completion = env.stack.completion
    role_id = env.role_of(constants.RECONCILE_HANDLER)
    assert role_id == env.logical_id(completion.reconcile.role)
    expected = (
        dispatch_grants(env)
        | own_grants(env, completion.reconcile)
        | finish_grants(env, completion.reconcile_dead_letter_queue)
    )
    assert env.role_grants(role_id) == expected


def test_only_the_start_role_creates_job_items(any_env: Env) -> None:
    creators = {
        role_id
        for role_id in any_env.template.find_resources("AWS::IAM::Role")
        if any(g[1] == "dynamodb:PutItem" for g in any_env.role_grants(role_id))
    }
    assert creators == {any_env.role_of(constants.START_JOB_HANDLER)}


def test_no_wildcard_kms_action_and_no_unused_encrypt(any_env: Env) -> None:
    # GenerateDataKey* would also grant the key-pair actions; nothing of ours calls Encrypt.
    for statement in all_policy_statements(any_env.template):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            if action.startswith("kms:"):
                assert "*" not in action, statement
                assert action != "kms:Encrypt", statement


def test_each_role_has_one_managed_policy_of_its_own(any_env: Env) -> None:
    # One customer-managed policy per role (HIPAA/NIST: no inline policies), attached to that
    # role only; the functions see their roles as immutable, so CDK added nothing beside it.
    stack = any_env.stack
    owners = [
        (stack.ingest.start.role, stack.ingest.start.policy),
        (stack.completion.post_process.role, stack.completion.post_process.policy),
        (stack.completion.reconcile.role, stack.completion.reconcile.policy),
        (stack.completion.scheduler_role, stack.completion.scheduler_policy),
    ]
    for role, policy in owners:
        role_id = any_env.logical_id(role)
        assert "Policies" not in any_env.resources[role_id]["Properties"], role_id
        assert any_env.props(policy)["Roles"] == [{"Ref": role_id}]
        attached = [
            p
            for p in any_env.template.find_resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
        assert attached == [], role_id


def test_scheduler_role_invokes_only_the_reconciler_function(any_env: Env) -> None:
    env = any_env
    completion = env.stack.completion
    role_id = env.logical_id(completion.scheduler_role)
    key_arn = env.resolve(env.stack.storage.key.key_arn)
    expected = (
        # The function ARN only: it has no versions or aliases, so no '<arn>:*'.
        allow(["lambda:InvokeFunction"], env.resolve(completion.reconcile_function.function_arn))
        | allow(["sqs:SendMessage"], env.resolve(completion.reconcile_dead_letter_queue.queue_arn))
        | allow(
            ["kms:Decrypt", "kms:GenerateDataKey"],
            key_arn,
            {"StringEquals": {"kms:ViaService": f"sqs.{env.config.region}.amazonaws.com"}},
        )
    )
    assert env.role_grants(role_id) == expected
    # Confused deputy: only Scheduler, for this account and this stack's schedule group.
    trust = env.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": env.stack.account,
                    "aws:SourceArn": {
                        "Fn::GetAtt": [env.logical_id(completion.schedule_group), "Arn"]
                    },
                }
            },
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    env.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {"GroupName": env.props(completion.schedule_group)["Name"]},
    )


def test_lambda_invoke_permissions_name_the_function_only(any_env: Env) -> None:
    # Resource-based permissions (EventBridge rule -> post-process) are on the function itself.
    for permission in any_env.template.find_resources("AWS::Lambda::Permission").values():
        name = permission["Properties"]["FunctionName"]
        assert ":*" not in json.dumps(name), permission


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


def test_only_xray_vpc_access_and_conditioned_start_job_use_resource_star(any_env: Env) -> None:
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
        if set(actions) <= set(XRAY_ACTIONS) or (
            any_env.config.vpc and set(actions) <= set(VPC_ACCESS_ACTIONS)
        ):
            assert "Condition" not in statement
            continue
        assert actions == ["transcribe:StartMedicalTranscriptionJob"], statement
        assert statement["Condition"] == start_conditions


def test_aws_managed_policies_only_on_cdks_handler_and_aws_backup(any_env: Env) -> None:
    # Our roles carry customer-managed policies only. CDK's Custom::S3BucketNotifications handler
    # always attaches AWSLambdaBasicExecutionRole to its own role, and the backup selection's
    # role uses AWS Backup's service-role policies (both acknowledged in compliance).
    (handler,) = any_env.template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Description": Match.string_like_regexp(r"Custom::S3BucketNotifications")}},
    ).values()
    handler_role = handler["Properties"]["Role"]["Fn::GetAtt"][0]
    backup = any_env.stack.backup
    backup_role = any_env.logical_id(backup.role) if backup else None
    for role_id, role in any_env.template.find_resources("AWS::IAM::Role").items():
        managed = role["Properties"].get("ManagedPolicyArns")
        if role_id == handler_role:
            assert managed == [BASIC_EXECUTION_ROLE]
        elif role_id == backup_role:
            assert len(managed) == len(BACKUP_POLICY_NAMES)
        else:
            assert managed is None, role_id
