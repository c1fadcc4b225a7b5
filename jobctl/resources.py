"""Finding one environment's resources, and the AWS clients to reach them.

Each resource comes from, in order: its explicit flag; else the outputs file
(`cdk deploy --outputs-file F`); else the stack's CloudFormation Outputs. The stack is read
at most once, and only when a command needs a resource no flag named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# The stack's CfnOutput names (stacks/transcription_stack.py): a contract with the stack.
JOB_TABLE = "JobTableName"
INPUT_BUCKET = "InputBucketName"
OUTPUT_BUCKET = "OutputBucketName"
INGEST_QUEUE_URL = "IngestQueueUrl"
KMS_KEY_ARN = "KmsKeyArn"
OUTPUT_NAMES = (JOB_TABLE, INPUT_BUCKET, OUTPUT_BUCKET, INGEST_QUEUE_URL, KMS_KEY_ARN)
FLAG_FOR = {
    JOB_TABLE: "--table",
    INPUT_BUCKET: "--input-bucket",
    OUTPUT_BUCKET: "--output-bucket",
    INGEST_QUEUE_URL: "--ingest-queue-url",
    KMS_KEY_ARN: None,
}
DEFAULT_STACK = "MedicalTranscription-dev"

# Few, quick retries: an operator waiting on an unreachable endpoint wants the error soon.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
)


def env_region() -> str | None:
    """AWS_REGION (what the AWS SDKs and Lambda set), else AWS_DEFAULT_REGION. boto3 reads
    only the second: without this, `AWS_REGION=... jobctl` would not find a Region. None
    lets boto3 fall back to the profile's Region."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class JobctlError(Exception):
    """An error the CLI reports as one line; `exit_code` 1 unless a subclass says otherwise."""

    exit_code = 1


class UsageError(JobctlError):
    exit_code = 2


class AwsSession:
    """boto3 clients for one profile, Region and (for the emulator) endpoint, made on first use
    so that a command which needs no AWS call never needs credentials."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.profile = profile
        self.requested_region = region
        self.endpoint_url = endpoint_url
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(
                profile_name=self.profile, region_name=self.requested_region or env_region()
            )
        return self._session

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=RETRY_CONFIG,
            )
        return self._clients[service]


class StackResources:
    """Resource names by output name (see OUTPUT_NAMES), resolved lazily."""

    def __init__(
        self,
        *,
        flags: Mapping[str, str | None],
        outputs_file: Path | None = None,
        stack: str | None = None,
        cloudformation: Callable[[], Any] | None = None,
    ) -> None:
        self.flags = {k: v for k, v in flags.items() if v}
        self.outputs_file = outputs_file
        self.requested_stack = stack
        self.cloudformation = cloudformation
        self._outputs: dict[str, str] | None = None
        self._source = ""

    @property
    def stack_name(self) -> str:
        return self.requested_stack or DEFAULT_STACK

    def get(self, name: str) -> str:
        if name in self.flags:
            return str(self.flags[name])
        outputs = self._load()
        if name not in outputs:
            flag = FLAG_FOR.get(name)
            hint = f"; pass {flag} or redeploy the stack" if flag else "; redeploy the stack"
            raise JobctlError(f"{self._source} has no output {name}{hint}")
        return outputs[name]

    @property
    def table(self) -> str:
        return self.get(JOB_TABLE)

    @property
    def input_bucket(self) -> str:
        return self.get(INPUT_BUCKET)

    @property
    def output_bucket(self) -> str:
        return self.get(OUTPUT_BUCKET)

    @property
    def ingest_queue_url(self) -> str:
        return self.get(INGEST_QUEUE_URL)

    def _load(self) -> dict[str, str]:
        if self._outputs is None:
            if self.outputs_file is not None:
                self._outputs = self._from_file(self.outputs_file)
            else:
                self._outputs = self._from_stack()
        return self._outputs

    def _from_file(self, path: Path) -> dict[str, str]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobctlError(f"outputs file {path} not found") from None
        except (OSError, ValueError) as error:
            raise JobctlError(f"outputs file {path} is not readable JSON ({error})") from None
        if not isinstance(document, dict) or not all(
            isinstance(v, dict) for v in document.values()
        ):
            raise JobctlError(
                f"outputs file {path} is not in `cdk deploy --outputs-file` format "
                '({"<StackName>": {"<OutputName>": "<value>", ...}})'
            )
        stacks = sorted(document)
        if self.requested_stack:
            name = self.requested_stack
            if name not in document:
                raise JobctlError(
                    f"outputs file {path} has no stack {name} (it has: {', '.join(stacks) or '-'})"
                )
        elif DEFAULT_STACK in document or len(stacks) != 1:
            # Several stacks and none chosen: only the default is an unambiguous pick.
            name = DEFAULT_STACK
            if name not in document:
                raise JobctlError(
                    f"outputs file {path} holds stacks {', '.join(stacks) or '(none)'}: "
                    "choose one with --stack"
                )
        else:
            (name,) = stacks
        self._source = f"outputs file {path} (stack {name})"
        return {str(k): str(v) for k, v in document[name].items()}

    def _from_stack(self) -> dict[str, str]:
        if self.cloudformation is None:
            raise JobctlError("no stack to read: pass --outputs-file or the resource flags")
        name = self.stack_name
        self._source = f"stack {name}"
        cloudformation = self.cloudformation()
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            message = str(error.response.get("Error", {}).get("Message", ""))
            if "does not exist" in message:
                region = cloudformation.meta.region_name
                raise JobctlError(
                    f"stack {name} not found in {region}: check --stack and --region, or pass "
                    "--outputs-file or the resource flags (--table, ...)"
                ) from None
            raise
        outputs = stacks[0].get("Outputs", []) if stacks else []
        return {o["OutputKey"]: o["OutputValue"] for o in outputs if "OutputValue" in o}
