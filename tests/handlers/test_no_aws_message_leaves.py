"""No AWS message leaves any handler (issue 10, part 3; contract 5).

AWS error messages can quote object keys ("Access Denied for .../conversation/Jane Doe.wav"),
and object keys may name patients. For every AWS operation a normal run of each handler
makes, an error quoting the key is injected (once on the first call, once on every call;
refused, busy and unreachable), and the key must then appear in no log line, no X-Ray
document and no exception the handler raises or hands to Powertools' batch processor.

The operations are not chosen by hand: `test_the_leak_tests_cover_every_call_a_handler_makes`
records what a normal run calls on moto and fails when a handler starts calling something
the lists below do not name, so a new call cannot escape these tests.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aws_xray_sdk
import botocore.client
import botocore.endpoint
import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import patcher as xray_patcher
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.ext import boto_utils
from botocore.exceptions import ClientError, EndpointConnectionError

import post_process
import reconcile
import start_job
from devkit.lambda_events import transcribe_state_change
from devkit.media_samples import wav_bytes
from devkit.transcribe_medical import TranscribeMedicalEmulator
from pipeline import job_index as ji
from pipeline import observability
from pipeline.job_index import JobIndex
from pipeline.reconciliation import MAX_PENDING_AGE

from .conftest import Env

KEY = "conversation/Jane Doe.wav"
# The key as AWS may quote it: as is, URL-encoded (request URLs) or form-encoded (events).
LEAK = re.compile(r"Jane(?:\s|%20|\+)Doe", re.IGNORECASE)
WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=30.0)
OTHER_KEY = "conversation/Jane Doe, second visit.wav"

# What each handler's normal run calls, as (service, operation).
START_JOB_CALLS = (
    ("s3", "GetObject"),  # the header of the upload
    ("dynamodb", "PutItem"),  # PENDING
    ("sqs", "DeleteMessageBatch"),  # the recorded message, before the dispatch run
    ("dynamodb", "GetItem"),  # the capacity counter
    ("dynamodb", "Query"),  # the backlog
    ("s3", "HeadObject"),  # superseded by a newer upload?
    ("dynamodb", "TransactWriteItems"),  # the claim
    ("transcribe", "StartMedicalTranscriptionJob"),
)
POST_PROCESS_CALLS = (
    ("dynamodb", "GetItem"),  # the job, then the capacity counter
    ("transcribe", "GetMedicalTranscriptionJob"),
    ("s3", "GetObject"),  # the transcript
    ("s3", "PutObject"),  # the documents
    ("dynamodb", "TransactWriteItems"),  # COMPLETED and the slot back; the next claim
    ("dynamodb", "Query"),  # the backlog
    ("s3", "HeadObject"),
    ("transcribe", "StartMedicalTranscriptionJob"),  # the job that waited for the slot
)
RECONCILE_CALLS = (
    ("dynamodb", "Query"),  # open jobs, jobs waiting too long, the heal's counts, the backlog
    ("dynamodb", "GetItem"),
    ("transcribe", "GetMedicalTranscriptionJob"),
    ("s3", "GetObject"),
    ("s3", "PutObject"),
    ("dynamodb", "TransactWriteItems"),
    ("dynamodb", "UpdateItem"),  # IN_PROGRESS, and the job that waited too long: FAILED
    ("s3", "HeadObject"),
    ("transcribe", "StartMedicalTranscriptionJob"),
)


# --- the faults ----------------------------------------------------------------------------


def refused(operation: str) -> Exception:
    return ClientError(
        {
            "Error": {
                "Code": "AccessDenied",
                "Message": f"Access Denied for arn:aws:s3:::medscribe-input/{KEY}",
            },
            "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "req-1"},
        },
        operation,
    )


def busy(operation: str) -> Exception:
    return ClientError(
        {
            "Error": {
                "Code": "ServiceUnavailable",
                "Message": f"Please reduce your request rate for s3://medscribe-input/{KEY}",
            },
            "ResponseMetadata": {"HTTPStatusCode": 503, "RequestId": "req-2"},
        },
        operation,
    )


def unreachable(_operation: str) -> Exception:
    # botocore quotes the request's URL, which for S3 holds the key
    return EndpointConnectionError(
        endpoint_url=f"https://medscribe-input.s3.amazonaws.com/{quote(KEY)} ({KEY})"
    )


FAULTS: dict[str, Callable[[str], Exception]] = {
    "refused": refused,
    "busy": busy,
    "unreachable": unreachable,
}
MODES = ("first", "every")


@dataclass
class AwsCalls:
    """Sits inside botocore's API call (under X-Ray's instrumentation, so X-Ray records what
    is injected here): records the calls made while armed and fails the chosen one."""

    armed: bool = False
    seen: list[tuple[str, str]] = field(default_factory=list)
    target: tuple[str, str] | None = None
    fault: Callable[[str], Exception] | None = None
    every: bool = False
    injected: int = 0

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def _make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if self.armed:
                call = (client.meta.service_model.service_name, operation)
                self.seen.append(call)
                if (
                    call == self.target
                    and self.fault is not None
                    and (self.every or not self.injected)
                ):
                    self.injected += 1
                    raise self.fault(operation)
            return original(client, operation, params)

        return _make_api_call


class CapturingEmitter:
    """Keeps every trace document the X-Ray SDK would send to the daemon."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(entity.serialize())

    def set_daemon_address(self, address: Any) -> None:
        pass


class EverythingLogged(logging.Handler):
    """Every record any logger passes to the root logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def one_model_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here builds fresh sessions; sharing one loader reads each service model
    once instead of once a test (most of these tests' time otherwise)."""
    loader = botocore.loaders.create_loader()
    monkeypatch.setattr(botocore.session, "create_loader", lambda *_: loader)


@pytest.fixture
def aws_calls() -> Iterator[AwsCalls]:
    calls = AwsCalls()
    original = botocore.client.BaseClient.__dict__["_make_api_call"]
    botocore.client.BaseClient._make_api_call = calls.wrap(original)  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


class Tracing:
    """Tracing on, as in a deployed function: Powertools' Tracer patches botocore (around
    the fault injection) and the handlers' module configures it; every document is kept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.emitter = CapturingEmitter()
        self.restore: list[Callable[[], None]] = []

    @property
    def documents(self) -> list[str]:
        return self.emitter.documents

    def enable(self) -> None:
        assert not hasattr(botocore.client, "_xray_enabled"), "botocore is already X-Ray patched"
        assert "botocore" not in xray_patcher._PATCHED_MODULES
        self._remember(botocore.client.BaseClient, "_make_api_call")
        self._remember(botocore.endpoint.Endpoint, "prepare_request")
        self._remember(boto_utils, "_aws_error_handler")
        self._remember(xray_recorder, "emitter")
        threshold = xray_recorder.streaming_threshold
        s3_whitelist = boto_utils.whitelist["services"]["s3"]
        self.restore += [
            lambda: setattr(xray_recorder, "streaming_threshold", threshold),
            lambda: boto_utils.whitelist["services"].update(s3=s3_whitelist),
            lambda: aws_xray_sdk.global_sdk_config.set_sdk_enabled(False),
            lambda: delattr(botocore.client, "_xray_enabled"),
            lambda: xray_patcher._PATCHED_MODULES.discard("botocore"),
        ]
        self.monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
        self.monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")  # Powertools traces in Lambda
        self.monkeypatch.setattr(Tracer, "_config", dict(Tracer._default_config))
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)  # before patching: else a no-op
        assert not Tracer(patch_modules=["botocore"]).disabled
        assert hasattr(botocore.client, "_xray_enabled")
        self.monkeypatch.setattr(observability.tracer, "disabled", False)
        assert observability.keep_phi_out_of_traces()
        xray_recorder.emitter = self.emitter

    def _remember(self, owner: Any, name: str) -> None:
        value = owner.__dict__[name] if name in vars(owner) else getattr(owner, name)
        self.restore.append(lambda: setattr(owner, name, value))

    def undo(self) -> None:
        while self.restore:
            self.restore.pop()()


@pytest.fixture
def traces(aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracing]:
    tracing = Tracing(monkeypatch)
    try:
        yield tracing
    finally:
        tracing.undo()


@pytest.fixture
def all_logs() -> Iterator[EverythingLogged]:
    """Library loggers (Powertools' tracer and batch processor, botocore, the X-Ray SDK)
    reach CloudWatch through the root logger; Powertools' own at DEBUG (POWERTOOLS_DEBUG)."""
    handler = EverythingLogged()
    root = logging.getLogger()
    powertools = logging.getLogger("aws_lambda_powertools")
    levels = (root.level, powertools.level)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    powertools.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        powertools.setLevel(levels[1])


# --- the scenarios: a normal run of each handler -------------------------------------------


@dataclass
class Scenario:
    env: Env
    invoke: Callable[[], Any]


def start_job_scenario(make_env: Callable[..., Env], lambda_context: Any) -> Scenario:
    """A valid upload arrives; the handler admits it and its dispatch run starts it."""
    env = make_env()
    event = env.event(env.put(KEY, WAV))
    return Scenario(env, lambda: start_job.handler(event, lambda_context))


def post_process_scenario(make_env: Callable[..., Env], lambda_context: Any) -> Scenario:
    """A job completes while another waits for its slot (a share of one)."""
    env = make_env(concurrent_job_share=1)
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    start_job.handler(env.event(env.put(KEY, WAV), env.put(OTHER_KEY, WAV)), lambda_context)
    (running,) = [i["job_name"] for i in env.items() if i["status"] == ji.QUEUED]
    transcribe.complete(str(running))
    event = transcribe_state_change(job_name=str(running), status="COMPLETED")
    return Scenario(env, lambda: post_process.handler(event, lambda_context))


def reconcile_scenario(make_env: Callable[..., Env], lambda_context: Any) -> Scenario:
    """Open jobs (one completed, one running in Transcribe), one waiting for a slot and one
    that has waited too long."""
    env = make_env(concurrent_job_share=2)
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    keys = (KEY, OTHER_KEY, "conversation/Jane Doe, third visit.wav")
    start_job.handler(env.event(*(env.put(key, WAV) for key in keys)), lambda_context)
    by_key = {i["input_key"]: str(i["job_name"]) for i in env.items()}
    assert env.item(by_key[keys[2]])["status"] == ji.PENDING
    transcribe.complete(by_key[KEY])
    transcribe.run(by_key[OTHER_KEY])
    created = datetime.now(UTC) - MAX_PENDING_AGE - timedelta(hours=1)
    JobIndex(env.table).create(
        {
            "job_name": "medscribe-test-" + "a" * 40,
            "status": ji.PENDING,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "attempts": 3,
            "input_key": "conversation/Jane Doe, long ago.wav",
            "input_bucket": env.stack.input_bucket,
            "input_size": len(WAV),
            "type": "CONVERSATION",
        }
    )
    return Scenario(env, lambda: reconcile.handler({}, lambda_context))


SCENARIOS: dict[str, tuple[Callable[..., Scenario], tuple[tuple[str, str], ...]]] = {
    "start_job": (start_job_scenario, START_JOB_CALLS),
    "post_process": (post_process_scenario, POST_PROCESS_CALLS),
    "reconcile": (reconcile_scenario, RECONCILE_CALLS),
}
CASES = [
    pytest.param(handler, call, fault, mode, id=f"{handler}-{call[1]}-{fault}-{mode}")
    for handler, (_, calls) in SCENARIOS.items()
    for call in calls
    for fault in FAULTS
    for mode in MODES
]


# --- what must stay free of the key ------------------------------------------------------


def exception_texts(error: BaseException | None) -> Iterator[str]:
    """The text of an exception and of everything chained to it, suppressed or not."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield f"{type(current).__name__}: {current!s} {current!r}"
        yield from (str(note) for note in getattr(current, "__notes__", []))
        pending += [current.__cause__, current.__context__]


def assert_no_key(where: str, texts: Iterator[str] | list[str]) -> None:
    leaked = [text for text in texts if LEAK.search(text)]
    assert not leaked, f"the object key reached {where}: {leaked[0][:600]}"


def run_armed(scenario: Scenario, calls: AwsCalls) -> tuple[Any, BaseException | None]:
    """Invoke the handler as Lambda does, inside a traced segment, with the faults armed."""
    xray_recorder.begin_segment("handler", sampling=1)
    calls.armed = True
    try:
        return scenario.invoke(), None
    except Exception as error:
        return None, error
    finally:
        calls.armed = False
        xray_recorder.end_segment()


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", list(SCENARIOS))
def test_the_leak_tests_cover_every_call_a_handler_makes(
    handler, make_env, lambda_context, aws_calls
):
    build, declared = SCENARIOS[handler]
    scenario = build(make_env, lambda_context)
    aws_calls.armed = True
    scenario.invoke()
    aws_calls.armed = False
    made = set(aws_calls.seen)
    assert made - set(declared) == set(), (
        f"{handler} now makes AWS calls the leak tests do not inject into; add them to its list"
    )
    assert set(declared) - made == set(), f"{handler} no longer makes these calls"


@pytest.mark.parametrize(("handler", "call", "fault", "mode"), CASES)
def test_an_aws_error_quoting_a_key_never_leaves_the_handler(
    handler,
    call,
    fault,
    mode,
    make_env,
    lambda_context,
    aws_calls,
    traces,
    captured_logs,
    all_logs,
):
    build, _ = SCENARIOS[handler]
    scenario = build(make_env, lambda_context)
    traces.enable()
    all_logs.lines.clear()
    captured_logs.seek(0)
    captured_logs.truncate()
    # When every (or the first) call of this operation fails with a message quoting a key
    aws_calls.target, aws_calls.fault, aws_calls.every = call, FAULTS[fault], mode == "every"
    response, raised = run_armed(scenario, aws_calls)
    assert aws_calls.injected >= 1, f"{handler} did not call {call} in this run"
    # Then the key is in no log line, trace document, response or raised exception
    assert_no_key("the handler's log", captured_logs.getvalue().splitlines())
    assert_no_key("a library's log", all_logs.lines)
    assert traces.documents, "no trace document was captured"
    assert_no_key("a trace document", traces.documents)
    assert_no_key("the response", [json.dumps(response, default=str)])
    assert_no_key("the raised exception", exception_texts(raised))
    for exc_info in start_job.processor.exceptions if handler == "start_job" else []:
        assert_no_key("the batch processor's exceptions", exception_texts(exc_info[1]))
    if raised is not None:
        # What escapes names the error so an operator can act on it
        code = "EndpointConnectionError" if fault == "unreachable" else FAULTS[fault]("x")
        assert isinstance(raised, Exception)
        expected = code if isinstance(code, str) else code.response["Error"]["Code"]  # type: ignore[attr-defined]
        assert expected in str(raised)


def _unused(_: io.StringIO) -> None:  # keeps io imported for the fixture's type
    pass
