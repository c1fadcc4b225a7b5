"""No AWS message leaves any handler (issue 10, part 3; contract 5).

AWS error messages can quote object keys ("Access Denied for .../conversation/Jane Doe.wav"),
and object keys may name patients. Into every AWS operation a normal run of each handler
makes, an error quoting the key is injected (refused, busy or unreachable; on the first
call or on every call), and the key must then appear in no log line of any logger, no
metric, no X-Ray document, no response and no exception the handler raises or hands to
Powertools' batch processor (nor anything chained to one, suppressed or not).

The operations are recorded, not chosen: `test_the_leak_tests_cover_every_call_a_handler_makes`
fails when a handler's normal run calls something the lists below do not name, so a new
call cannot escape these tests.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
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
from devkit.lambda_events import sqs_event, sqs_record, transcribe_state_change
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
WAV = wav_bytes(sample_rate=16000, channels=1, duration_s=5.0)
Call = tuple[str, str]  # (service, operation)
COMPLETION_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:medscribe-test-completion"
# X-Ray's own recording of AWS errors (message included), before the handlers replace it.
STOCK_AWS_ERROR_HANDLER = boto_utils._aws_error_handler

# What each handler's normal run calls.
START_JOB_CALLS: tuple[Call, ...] = (
    ("s3", "GetObject"),  # the upload's header
    ("dynamodb", "PutItem"),  # PENDING
    ("sqs", "DeleteMessageBatch"),  # the recorded message, before the dispatch run
    ("dynamodb", "GetItem"),  # the capacity counter
    ("dynamodb", "Query"),  # the backlog
    ("s3", "HeadObject"),  # replaced by a newer upload?
    ("dynamodb", "TransactWriteItems"),  # the claim
    ("transcribe", "StartMedicalTranscriptionJob"),
)
POST_PROCESS_CALLS: tuple[Call, ...] = (
    ("dynamodb", "GetItem"),  # the job; the capacity counter
    ("transcribe", "GetMedicalTranscriptionJob"),
    ("s3", "GetObject"),  # the transcript
    ("s3", "PutObject"),  # the documents
    ("dynamodb", "TransactWriteItems"),  # COMPLETED with the slot back; the next claim
    ("dynamodb", "Query"),  # the backlog
    ("s3", "HeadObject"),
    ("transcribe", "StartMedicalTranscriptionJob"),  # the job that waited for the slot
)
RECONCILE_CALLS: tuple[Call, ...] = (
    ("dynamodb", "Query"),  # open jobs, jobs waiting too long, the heal's counts, the backlog
    ("dynamodb", "GetItem"),  # each job; the capacity counter
    ("transcribe", "GetMedicalTranscriptionJob"),
    ("s3", "GetObject"),
    ("s3", "PutObject"),
    ("dynamodb", "TransactWriteItems"),  # COMPLETED with the slot back; the next claim
    ("dynamodb", "UpdateItem"),  # IN_PROGRESS; the job that waited too long, FAILED
    ("s3", "HeadObject"),
    ("transcribe", "StartMedicalTranscriptionJob"),
)


# --- the faults ----------------------------------------------------------------------------


def aws_refusal(code: str, status: int, message: str) -> Callable[[str], Exception]:
    def make(operation: str) -> Exception:
        return ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"},
            },
            operation,
        )

    return make


def unreachable(_operation: str) -> Exception:
    # botocore quotes the request's URL, which for S3 holds the key
    return EndpointConnectionError(
        endpoint_url=f"https://medscribe-input.s3.amazonaws.com/{quote(KEY)} ({KEY})"
    )


# name -> (the error for an operation, the code a code-only error names)
FAULTS: dict[str, tuple[Callable[[str], Exception], str]] = {
    "refused": (
        aws_refusal("AccessDenied", 403, f"Access Denied for arn:aws:s3:::medscribe-input/{KEY}"),
        "AccessDenied",
    ),
    "busy": (
        aws_refusal("ServiceUnavailable", 503, f"Reduce your request rate for s3://in/{KEY}"),
        "ServiceUnavailable",
    ),
    "unreachable": (unreachable, "EndpointConnectionError"),
}


@dataclass
class Fault:
    """Fail an operation: its first call (after `skip` that go through), or every one."""

    make: Callable[[str], Exception]
    every: bool = False
    skip: int = 0
    calls: int = 0
    injected: int = 0

    def strikes(self) -> bool:
        self.calls += 1
        if self.calls <= self.skip or (self.injected and not self.every):
            return False
        self.injected += 1
        return True


@dataclass
class AwsCalls:
    """Sits inside botocore's API call, under X-Ray's instrumentation (so X-Ray records what
    is injected here), whichever client makes it: records the calls made while armed and
    fails the chosen operations."""

    armed: bool = False
    seen: list[Call] = field(default_factory=list)
    faults: dict[Call, Fault] = field(default_factory=dict)

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def _make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if self.armed:
                call = (client.meta.service_model.service_name, operation)
                self.seen.append(call)
                fault = self.faults.get(call)
                if fault is not None and fault.strikes():
                    raise fault.make(operation)
            return original(client, operation, params)

        return _make_api_call


class CapturingEmitter:
    """Keeps every document the X-Ray SDK would send to the daemon."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(entity.serialize())

    def set_daemon_address(self, address: Any) -> None:
        pass


class Tracing:
    """Tracing on, as in a deployed function: Powertools' Tracer patches botocore (around the
    fault injection), the handlers' module configures the SDK, every document is kept."""

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
        value = vars(owner)[name] if name in vars(owner) else getattr(owner, name)
        self.restore.append(lambda: setattr(owner, name, value))

    def undo(self) -> None:
        while self.restore:
            self.restore.pop()()


class EverythingLogged(logging.Handler):
    """Every record that reaches the root logger, with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Observed:
    """Everything that leaves an invocation besides its response or exception."""

    calls: AwsCalls
    tracing: Tracing
    handler_log: io.StringIO
    library_log: EverythingLogged
    capsys: pytest.CaptureFixture[str]

    def start(self) -> None:
        """Forget what the scenario's setup produced and turn tracing on."""
        self.tracing.enable()
        self.library_log.lines.clear()
        self.handler_log.seek(0)
        self.handler_log.truncate()
        self.capsys.readouterr()


@pytest.fixture(autouse=True)
def one_model_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds fresh boto3 sessions; one shared loader reads each service model once
    instead of once a test (otherwise most of these tests' time)."""
    loader = botocore.loaders.create_loader()
    monkeypatch.setattr(botocore.session, "create_loader", lambda *_: loader)


@pytest.fixture
def aws_calls() -> Iterator[AwsCalls]:
    calls = AwsCalls()
    original = vars(botocore.client.BaseClient)["_make_api_call"]
    botocore.client.BaseClient._make_api_call = calls.wrap(original)  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


@pytest.fixture
def library_log() -> Iterator[EverythingLogged]:
    """Library loggers (Powertools' tracer and batch processor, botocore, the X-Ray SDK)
    reach CloudWatch through the root logger: at INFO, and Powertools' own at DEBUG (what
    POWERTOOLS_DEBUG turns on)."""
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


@pytest.fixture
def observed(
    aws_calls: AwsCalls,
    captured_logs: io.StringIO,
    library_log: EverythingLogged,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Observed]:
    tracing = Tracing(monkeypatch)
    try:
        yield Observed(aws_calls, tracing, captured_logs, library_log, capsys)
    finally:
        tracing.undo()


# --- a normal run of each handler ----------------------------------------------------------


def start_job_run(make_env: Callable[..., Env], lambda_context: Any) -> Callable[[], Any]:
    """A valid upload arrives: the handler admits it and its dispatch run starts it."""
    env = make_env()
    event = env.event(env.put(KEY, WAV))
    return lambda: start_job.handler(event, lambda_context)


def post_process_run(
    make_env: Callable[..., Env], lambda_context: Any, *, queued: bool = True
) -> Callable[[], Any]:
    """A job completes while another waits for its slot (a share of one). Its event comes
    through the completion queue, as the stack routes it, or (`queued=False`) directly."""
    env = make_env(concurrent_job_share=1)
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    second = "conversation/Jane Doe, second visit.wav"
    start_job.handler(env.event(env.put(KEY, WAV), env.put(second, WAV)), lambda_context)
    (running,) = [str(i["job_name"]) for i in env.items() if i["status"] == ji.QUEUED]
    transcribe.complete(running)
    event = transcribe_state_change(job_name=running, status="COMPLETED")
    if queued:
        event = sqs_event([sqs_record(event, queue_arn=COMPLETION_QUEUE_ARN)])
    return lambda: post_process.handler(event, lambda_context)


def post_process_direct_run(make_env: Callable[..., Env], lambda_context: Any) -> Callable[[], Any]:
    return post_process_run(make_env, lambda_context, queued=False)


def reconcile_run(make_env: Callable[..., Env], lambda_context: Any) -> Callable[[], Any]:
    """Open jobs (one completed in Transcribe, one running), one waiting for a slot (a share
    of two) and one that has waited too long."""
    env = make_env(concurrent_job_share=2)
    transcribe = TranscribeMedicalEmulator(s3=env.s3)
    keys = (KEY, "conversation/Jane Doe, second visit.wav", "conversation/Jane Doe, third.wav")
    start_job.handler(env.event(*(env.put(key, WAV) for key in keys)), lambda_context)
    job_of = {i["input_key"]: str(i["job_name"]) for i in env.items()}
    assert env.item(job_of[keys[2]])["status"] == ji.PENDING
    transcribe.complete(job_of[keys[0]])
    transcribe.run(job_of[keys[1]])
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
    return lambda: reconcile.handler({}, lambda_context)


RUNS: dict[str, tuple[Callable[..., Callable[[], Any]], tuple[Call, ...]]] = {
    "start_job": (start_job_run, START_JOB_CALLS),
    "post_process": (post_process_run, POST_PROCESS_CALLS),
    "post_process_direct": (post_process_direct_run, POST_PROCESS_CALLS),
    "reconcile": (reconcile_run, RECONCILE_CALLS),
}
# Where Powertools' batch processor keeps what a record handler raised.
BATCH_PROCESSORS = {"start_job": start_job.processor, "post_process": post_process.processor}
# The direct event path shares the queued one's code but raises its busy errors itself.
SHARED_CODE = {"post_process_direct": (("refused", True), ("busy", False), ("unreachable", True))}


@dataclass(frozen=True)
class Case:
    handler: str
    call: Call
    fault: str
    every: bool  # every call of the operation fails, or only the first


CASES = [
    Case(handler, call, fault, every)
    for handler, (_, calls) in RUNS.items()
    for call in calls
    for fault, every in SHARED_CODE.get(
        handler, [(fault, every) for fault in FAULTS for every in (False, True)]
    )
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


def assert_no_key(where: str, texts: Iterable[str]) -> None:
    leaked = [text for text in texts if LEAK.search(text)]
    assert not leaked, f"the object key reached {where}: {leaked[0][:600]}"


def invoke(run: Callable[[], Any], calls: AwsCalls) -> tuple[Any, Exception | None]:
    """Invoke a handler as Lambda does (inside a trace segment), faults armed."""
    xray_recorder.begin_segment("lambda", sampling=1)
    calls.armed = True
    try:
        return run(), None
    except Exception as error:
        return None, error
    finally:
        calls.armed = False
        xray_recorder.end_segment()


def recorded_faults(documents: list[str], operation: str) -> list[dict[str, Any]]:
    """The subsegments X-Ray recorded for failed calls of one operation."""
    entities = [json.loads(document) for document in documents]
    return [
        entity
        for entity in entities
        if entity.get("aws", {}).get("operation") == operation
        and (entity.get("error") or entity.get("fault"))
    ]


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", list(RUNS))
def test_the_leak_tests_cover_every_call_a_handler_makes(
    handler, make_env, lambda_context, aws_calls
):
    build, declared = RUNS[handler]
    run = build(make_env, lambda_context)
    aws_calls.armed = True
    run()
    aws_calls.armed = False
    made = set(aws_calls.seen)
    assert made - set(declared) == set(), (
        f"{handler} now makes AWS calls the leak tests do not inject into: add them to its list"
    )
    assert set(declared) - made == set(), f"{handler} no longer makes these calls: drop them"


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: f"{c.handler}-{c.call[1]}-{c.fault}-{'every' if c.every else 'first'}",
)
def test_an_aws_error_quoting_a_key_never_leaves_the_handler(
    case: Case, make_env, lambda_context, observed: Observed
):
    build, _ = RUNS[case.handler]
    run = build(make_env, lambda_context)
    observed.start()
    make_error, code = FAULTS[case.fault]
    # When the first (or every) call of this operation fails with a message quoting a key
    fault = observed.calls.faults[case.call] = Fault(make_error, every=case.every)
    response, raised = invoke(run, observed.calls)
    assert fault.injected >= 1, f"{case.handler} did not call {case.call} in this run"
    # Then X-Ray saw the failed call, by its code
    faults = recorded_faults(observed.tracing.documents, case.call[1])
    assert faults, f"X-Ray recorded no failed {case.call[1]}"
    assert {f["aws"].get("error_code") for f in faults} == {code}
    # And the key is in no log line, metric, trace document, response or raised exception
    assert_nothing_leaked(observed, case.handler, response, raised)
    # And what a handler raises names the code, for the person who reads the error
    if raised is not None:
        assert code in str(raised)


def assert_nothing_leaked(
    observed: Observed, handler: str, response: Any, raised: Exception | None
) -> None:
    assert_no_key("the handler's log", observed.handler_log.getvalue().splitlines())
    assert_no_key("a library's log", observed.library_log.lines)
    assert_no_key("standard output (metrics)", observed.capsys.readouterr().out.splitlines())
    assert_no_key("a trace document", observed.tracing.documents)
    assert_no_key("the response", [json.dumps(response, default=str)])
    assert_no_key("the raised exception", exception_texts(raised))
    if handler in BATCH_PROCESSORS:
        for _, error, _ in BATCH_PROCESSORS[handler].exceptions:
            assert_no_key("the batch processor's exceptions", exception_texts(error))


def quoting(code: str, status: int = 400) -> Callable[[str], Exception]:
    return aws_refusal(code, status, f"{code} for s3://medscribe-input/{KEY}")


# Calls only an error path makes: (handler, the fault that opens the path, the call it then
# makes, how many of that call's calls go through first).
ERROR_PATHS = {
    "finish-attempt-counted": (
        "post_process",
        (("s3", "GetObject"), Fault(quoting("AccessDenied", 403), every=True)),
        (("dynamodb", "UpdateItem"), 0),
    ),
    "start-limited-backs-off": (
        "start_job",
        (("transcribe", "StartMedicalTranscriptionJob"), Fault(quoting("LimitExceededException"))),
        (("dynamodb", "UpdateItem"), 0),
    ),
    "start-limited-unclaims": (
        "start_job",
        (("transcribe", "StartMedicalTranscriptionJob"), Fault(quoting("LimitExceededException"))),
        (("dynamodb", "TransactWriteItems"), 1),  # the claim goes through
    ),
    "start-conflict-asks-whose": (
        "start_job",
        (("transcribe", "StartMedicalTranscriptionJob"), Fault(quoting("ConflictException"))),
        (("transcribe", "GetMedicalTranscriptionJob"), 0),
    ),
    "start-refused-fails-the-job": (
        "start_job",
        (("transcribe", "StartMedicalTranscriptionJob"), Fault(quoting("BadRequestException"))),
        (("dynamodb", "TransactWriteItems"), 1),
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("path", list(ERROR_PATHS))
def test_an_error_path_call_failing_leaks_nothing_either(
    path, fault, make_env, lambda_context, observed: Observed
):
    handler, (opening_call, opening), (then_call, skip) = ERROR_PATHS[path]
    run = RUNS[handler][0](make_env, lambda_context)
    observed.start()
    # Given a fault that sends the handler down an error path
    observed.calls.faults[opening_call] = Fault(opening.make, every=opening.every)
    # When the call only that path makes fails too
    then = observed.calls.faults[then_call] = Fault(FAULTS[fault][0], every=True, skip=skip)
    response, raised = invoke(run, observed.calls)
    assert then.injected >= 1, f"the {path} path did not call {then_call}"
    # Then nothing quotes the key
    assert_nothing_leaked(observed, handler, response, raised)


def test_the_harness_sees_a_message_that_does_leak(make_env, lambda_context, observed: Observed):
    # Given X-Ray's stock AWS error recording, which keeps AWS's message
    run = reconcile_run(make_env, lambda_context)
    observed.start()
    boto_utils._aws_error_handler = STOCK_AWS_ERROR_HANDLER  # Tracing.undo restores it
    observed.calls.faults[("s3", "GetObject")] = Fault(FAULTS["refused"][0], every=True)
    # When a call fails with a message quoting the key
    invoke(run, observed.calls)
    # Then the captured trace holds the key: the capture is where a leak would show
    with pytest.raises(AssertionError, match="reached a trace document"):
        assert_no_key("a trace document", observed.tracing.documents)


def test_a_suppressed_context_still_counts_as_a_leak():
    try:
        try:
            raise FAULTS["refused"][0]("GetObject")
        except ClientError:
            raise RuntimeError("failed (AccessDenied)") from None
    except RuntimeError as error:
        texts = list(exception_texts(error))
    assert len(texts) == 2
    with pytest.raises(AssertionError, match="Jane Doe"):
        assert_no_key("the raised exception", texts)
