"""Stack outputs: the names `cdk deploy --outputs-file`, DescribeStacks and jobctl agree on."""

from __future__ import annotations

from aws_cdk.assertions import Match

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
