"""How AWS errors are classified: busy is retried, unknown jobs are ignored, nothing fails early."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from pipeline import aws_clients
from pipeline.aws_errors import error_code, is_transient, permanent_reason
from pipeline.completion import Finish, JobFinisher, TransientFinishError
from pipeline.settings import Settings

SETTINGS = Settings(
    job_table="t", input_bucket="in", output_bucket="out", kms_key_id="k", job_name_prefix="p"
)
OUR_JOB = "p-" + "a" * 40


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Operation",
    )


class RaisingTranscribe:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_medical_transcription_job(self, **_: Any) -> dict[str, Any]:
        raise self.error


class OneItemIndex:
    def get(self, job_name: str) -> dict[str, Any]:
        return {"job_name": job_name, "status": "QUEUED", "input_key": "a.wav"}


def finisher(error: Exception) -> JobFinisher:
    return JobFinisher(
        settings=SETTINGS,
        s3=None,
        transcribe=RaisingTranscribe(error),
        index=OneItemIndex(),  # type: ignore[arg-type]
        ledger=object(),  # type: ignore[arg-type]  # no capacity is used here
    )


@pytest.mark.parametrize("code", ["NotFoundException", "BadRequestException"])
def test_an_unknown_job_is_not_ours_in_aws_and_in_moto(code):
    # AWS answers NotFoundException for an unknown job; moto answers BadRequestException
    assert finisher(client_error(code)).finish(OUR_JOB).outcome is Finish.NOT_OURS


def test_another_prefix_is_not_ours_without_asking_transcribe():
    result = finisher(AssertionError("must not be called")).finish("other-" + "a" * 40)
    assert result.outcome is Finish.NOT_OURS


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("LimitExceededException"), True),
        (client_error("ThrottlingException"), True),
        (client_error("InternalFailureException", 500), True),
        (client_error("SomethingNew", 503), True),
        (EndpointConnectionError(endpoint_url="https://transcribe"), True),
        (ReadTimeoutError(endpoint_url="https://transcribe"), True),
        (ParamValidationError(report="bad parameter"), False),  # retrying cannot fix it
        (client_error("BadRequestException"), False),
        (client_error("ConflictException"), False),
        (client_error("AccessDeniedException"), False),
    ],
)
def test_transient_errors_are_recognised(error, transient):
    assert is_transient(error) is transient


def test_clients_retry_in_standard_mode_with_a_small_cap():
    # legacy mode does not retry LimitExceededException; standard does
    aws_clients.reset()
    retries = aws_clients.client("transcribe").meta.config.retries
    assert retries["mode"] == "standard"
    assert retries["total_max_attempts"] == 4  # the first call and 3 retries


def test_busy_transcribe_while_finishing_is_left_for_a_retry():
    with pytest.raises(TransientFinishError) as raised:
        finisher(client_error("ThrottlingException")).finish(OUR_JOB)
    assert "ThrottlingException" in str(raised.value)
    assert OUR_JOB in str(raised.value)


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("AccessDenied", "policy"),
        ("AccessDeniedException", "policy"),
        ("KMS.DisabledException", "Re-enable the key"),
        ("KMS.KMSInvalidStateException", "Re-enable the key"),
        ("KMS.SomethingElse", "Re-enable the key"),
        ("KeyTooLongError", "shorter name"),
        ("NoSuchBucket", "OUTPUT_BUCKET"),
        ("InvalidArgument", "contact the pipeline's operators"),
        ("BrandNewError", "contact the pipeline's operators"),
    ],
)
def test_permanent_errors_get_a_reason_a_person_can_act_on(code, advice):
    reason = permanent_reason(code)
    assert advice in reason
    assert code in reason


def test_an_error_code_that_is_not_an_identifier_is_not_repeated():
    reason = permanent_reason("Access denied to s3://out/Jane Doe.wav")
    assert "Jane" not in reason
    assert "unrecognised error code" in reason


@pytest.mark.parametrize("code", ["KMS.ThrottlingException", "SlowDown", "ExpiredToken"])
def test_kms_throttling_and_expired_credentials_are_transient(code):
    assert is_transient(client_error(code))
    assert error_code(client_error(code)) == code
