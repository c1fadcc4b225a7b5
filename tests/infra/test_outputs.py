"""Stack outputs: the names `cdk deploy --outputs-file`, DescribeStacks and jobctl agree on."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Match

from jobctl import resources
from tests.infra.helpers import Env

OUTPUT_NAMES = (
    "JobTableName",
    "InputBucketName",
    "OutputBucketName",
    "IngestQueueUrl",
    "KmsKeyArn",
)


def test_outputs_name_the_table_buckets_queue_and_key(env: Env) -> None:
    storage, ingest = env.stack.storage, env.stack.ingest
    expected = {
        "JobTableName": {"Ref": env.logical_id(storage.job_table)},
        "InputBucketName": {"Ref": env.logical_id(storage.input_bucket)},
        "OutputBucketName": {"Ref": env.logical_id(storage.output_bucket)},
        "IngestQueueUrl": {"Ref": env.logical_id(ingest.queue)},
        "KmsKeyArn": {"Fn::GetAtt": [env.logical_id(storage.key), "Arn"]},
    }
    for name, value in expected.items():
        env.template.has_output(name, {"Value": value, "Description": Match.any_value()})


def test_outputs_are_not_exported(env: Env) -> None:
    # An export would pin this stack's resources in place once another stack imports it.
    outputs = env.template.find_outputs("*")
    assert set(OUTPUT_NAMES) <= set(outputs)
    for name in OUTPUT_NAMES:
        assert "Export" not in outputs[name], name


def test_jobctl_reads_the_outputs_file_cdk_deploy_writes(env: Env, tmp_path: Path) -> None:
    # Given the file `cdk deploy --outputs-file` writes ({stack: {output name: value}}) for this
    # stack's outputs, when jobctl reads it, then every resource it needs resolves from it.
    outputs = env.template.find_outputs("*")
    assert set(resources.OUTPUT_NAMES) <= set(outputs)
    document = {env.stack.stack_name: {name: f"value-of-{name}" for name in outputs}}
    path = tmp_path / f"cdk-outputs-{env.config.name}.json"
    path.write_text(json.dumps(document))
    stack = resources.StackResources(flags={}, outputs_file=path)
    assert (stack.table, stack.input_bucket, stack.output_bucket, stack.ingest_queue_url) == (
        "value-of-JobTableName",
        "value-of-InputBucketName",
        "value-of-OutputBucketName",
        "value-of-IngestQueueUrl",
    )
    assert stack.get(resources.KMS_KEY_ARN) == "value-of-KmsKeyArn"


def test_replicated_environment_outputs_each_replication_role(replicated: Env) -> None:
    # A cross-account destination's bucket policy must name these roles.
    replications = replicated.stack.storage.replications
    assert set(replications) == {"InputBucket", "OutputBucket"}
    for bucket_id, replication in replications.items():
        replicated.template.has_output(
            f"{bucket_id}ReplicationRoleArn",
            {"Value": {"Fn::GetAtt": [replicated.logical_id(replication.role), "Arn"]}},
        )


def test_no_replication_role_output_without_replication(env: Env) -> None:
    assert not any("Replication" in name for name in env.template.find_outputs("*"))
