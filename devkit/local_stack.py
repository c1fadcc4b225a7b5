"""`make local`: the emulator as a server on 127.0.0.1 with the pipeline running live.

    python -m devkit.local_stack [PATH ...] [--type ...] [--env dev] [--port 4577]
                                [--patient-id ID] [--encounter-id ID] [--author NAME]
                                [--note-type LOINC] [--speed 30] [--empty] [--out local-stack]

moto's server answers AWS calls on 127.0.0.1 (the AWS CLI, jobctl, your code), and
background threads play AWS around the real handlers, on a virtual clock that runs
`--speed` times faster than the wall clock:

- the ingest queue is polled as Lambda's event source polls it (batches, receive counts,
  the visibility timeout, redrive to the DLQ), invoking the start-job handler;
- the emulated Transcribe Medical runs each job for a time that grows with its audio;
- each ended job's event goes to the post-process handler (retried with backoff);
- the reconcile handler runs on the environment's schedule.

The environment is the demo's (`demo.demo_config`: PHI identification on), and the
uploads are too (samples or your files, with the same metadata options and sidecars).
So anything a person does against the endpoint is processed: an `aws s3 cp` upload,
`jobctl retry`, `jobctl delete`. The terminal shows the commands to try (once), then one
line per job change; moto's access log and the handlers' logs go to files in `--out`.
Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from devkit import demo

DEFAULT_PORT = 4577
DEFAULT_SPEED = 30.0
STEP_SECONDS = 0.2  # how often the pipeline thread looks for due work
WATCH_SECONDS = 0.3  # how often the job table is read for status lines
# The first Transcribe job of an upload whose key contains this fails (a transient
# Transcribe failure), so that `jobctl retry` can be tried on it.
FAIL_ONCE_MARK = "fail-once"
TRANSIENT_FAILURE = "Internal failure. Please try your request again"
# Invented integrator metadata on the printed example upload (x-amz-meta-*, contract 6).
EXAMPLE_METADATA = "patient-id=DEMO-PAT-0002,encounter-id=DEMO-ENC-0002"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _access_log_to(path: Path) -> Iterator[None]:
    """moto's server logs each request through werkzeug's logger: into a file, not the
    terminal (werkzeug adds its own terminal handler only when the logger has none)."""
    werkzeug = logging.getLogger("werkzeug")
    handler = logging.FileHandler(path, encoding="utf-8")
    saved = (werkzeug.level, werkzeug.propagate)
    werkzeug.addHandler(handler)
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    try:
        yield
    finally:
        werkzeug.removeHandler(handler)
        werkzeug.setLevel(saved[0])
        werkzeug.propagate = saved[1]
        handler.close()


class FailOnce:
    """Fails the first Transcribe job of each key that holds FAIL_ONCE_MARK; a retry of
    the same upload then completes."""

    def __init__(self) -> None:
        self.failed: set[str] = set()

    def __call__(self, input_key: str) -> str | None:
        if FAIL_ONCE_MARK not in input_key or input_key in self.failed:
            return None
        self.failed.add(input_key)
        return TRANSIENT_FAILURE


@dataclass(frozen=True)
class Session:
    """What a person needs to reach the local stack from another terminal."""

    endpoint: str
    region: str
    input_bucket: str
    output_bucket: str
    outputs_file: Path
    sample: Path
    root: Path
    downloads: Path

    def setup(self) -> str:
        return (
            f"cd {shlex.quote(str(self.root))} && export AWS_ACCESS_KEY_ID=local "
            f"AWS_SECRET_ACCESS_KEY=local AWS_REGION={self.region} "
            f"AWS_DEFAULT_REGION={self.region}"
        )

    def aws(self, command: str) -> str:
        return f"aws --endpoint-url {self.endpoint} {command}"

    def jobctl(self, command: str) -> str:
        outputs = shlex.quote(str(self.outputs_file))
        return (
            f".venv/bin/python -m jobctl --endpoint-url {self.endpoint} "
            f"--outputs-file {outputs} {command}"
        )

    def commands(self) -> list[tuple[str, str]]:
        """(what it does, the command), in an order that works as a script."""
        sample = shlex.quote(str(self.sample))
        visit = "conversation/new-visit.wav"
        flaky = f"conversation/{FAIL_ONCE_MARK}-visit.wav"
        metadata = f"--metadata {EXAMPLE_METADATA}"
        return [
            (
                "upload a recording, with (invented) patient and encounter ids as S3 metadata",
                self.aws(f"s3 cp {metadata} {sample} s3://{self.input_bucket}/{visit}"),
            ),
            (
                f"upload one whose first job fails ('{FAIL_ONCE_MARK}' in the name)",
                self.aws(f"s3 cp {sample} s3://{self.input_bucket}/{flaky}"),
            ),
            ("list the jobs", self.jobctl("list")),
            ("one job", self.jobctl(f"status {visit}")),
            (
                "with its metadata (PHI: shown only on request)",
                self.jobctl(f"status {visit} --show-phi"),
            ),
            ("why it failed", self.jobctl(f"why {flaky}")),
            ("transcribe it again", self.jobctl(f"retry {flaky}")),
            (
                "the documents",
                self.aws(f"s3 ls --recursive s3://{self.output_bucket}/transcripts/{visit}/"),
            ),
            ("fetch them", self.jobctl(f"download {visit} {shlex.quote(str(self.downloads))}")),
            ("delete a job and its documents", self.jobctl(f"delete {visit} --yes")),
        ]


def instructions(session: Session, logs: dict[str, Path]) -> str:
    lines = [
        f"The pipeline is running on {session.endpoint} (region {session.region}); "
        "Ctrl-C stops it.",
        "In another terminal, first:",
        f"  {session.setup()}",
        "then, for example:",
    ]
    for what, command in session.commands():
        lines += [f"  # {what}", f"  {command}"]
    lines.append("Logs: " + "; ".join(f"{name} in {path}" for name, path in logs.items()))
    lines.append("Job changes:")
    return "\n".join(lines)


class StatusWatcher:
    """One line per job change, read from the job table."""

    def __init__(self, table: Any, write: Callable[[str], None]) -> None:
        self.table = table
        self.write = write
        self.seen: dict[str, tuple[str, str]] = {}

    def _jobs(self) -> dict[str, dict[str, Any]]:
        jobs: dict[str, dict[str, Any]] = {}
        scan: dict[str, Any] = {}
        while True:
            page = self.table.scan(**scan)
            for item in page["Items"]:
                if not str(item["job_name"]).startswith("#"):  # not the capacity counters
                    jobs[str(item["job_name"])] = item
            if "LastEvaluatedKey" not in page:
                return jobs
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def poll(self) -> None:
        jobs = self._jobs()
        clock = datetime.now(UTC).strftime("%H:%M:%S")
        for name, item in sorted(jobs.items(), key=lambda kv: str(kv[1].get("created_at"))):
            status, key = str(item.get("status")), str(item.get("input_key"))
            if self.seen.get(name) == (status, key):
                continue
            self.seen[name] = (status, key)
            reason = item.get("failure_reason")
            tail = f": {textwrap.shorten(str(reason), 90)}" if reason else ""
            self.write(f"  {clock}  {status:<11}  {key}  ({name}){tail}")
        for name in sorted(set(self.seen) - set(jobs)):
            _, key = self.seen.pop(name)
            self.write(f"  {clock}  {'DELETED':<11}  {key}  ({name})")


def _loop(stop: threading.Event, every: float, work: Callable[[], None], log: IO[str]) -> None:
    """Run `work` every `every` seconds until stopped; an error is logged, not fatal (as a
    failed invocation does not stop AWS)."""
    while not stop.is_set():
        try:
            work()
        except Exception as error:  # the next round goes on, as the next invocation would
            print(f"{datetime.now(UTC).isoformat()} {type(error).__name__}: {error}", file=log)
            log.flush()
        stop.wait(every)


def build_parser() -> argparse.ArgumentParser:
    parser = demo.build_parser(
        prog="make local", description=__doc__.split("\n\n")[0], out="local-stack"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"virtual time runs this many times faster than the clock (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--empty", action="store_true", help="start without uploading the demo's samples"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.speed <= 0:
        raise SystemExit("local: --speed must be positive")
    config = demo.demo_config(args.env)
    if args.port and not _port_free(args.port):
        raise SystemExit(
            f"local: port {args.port} on 127.0.0.1 is in use (another `make local`?): "
            "stop it, or pick another with `make local PORT=...` (PORT=0: any free port)"
        )
    demo._fake_aws_environment(config.region)
    uploads = [] if args.empty else demo.uploads_for(args)
    out = demo.fresh_output(Path(args.out))
    logs = {"moto's access log": out / "moto-access.log", "handler logs": out / "handlers.log"}
    with _access_log_to(logs["moto's access log"]), logs["handler logs"].open("a") as handler_log:
        return _serve(
            args, config=config, uploads=uploads, out=out, handler_log=handler_log, logs=logs
        )


def _serve(
    args: argparse.Namespace,
    *,
    config: Any,
    uploads: list[Any],
    out: Path,
    handler_log: IO[str],
    logs: dict[str, Path],
) -> int:
    import boto3  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    from devkit.emulator import PipelineEmulator, VirtualClock  # noqa: PLC0415
    from devkit.media_samples import wav_bytes  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    emulator = PipelineEmulator(
        config,
        script=demo.script_for(uploads),
        fail=FailOnce(),
        clock=VirtualClock(speed=args.speed),
        reconcile_interval=timedelta(minutes=config.reconcile_interval_minutes),
    )
    from pipeline.observability import logger  # noqa: PLC0415 - loaded by the emulator

    stream = logger.registered_handler
    if isinstance(stream, logging.StreamHandler):
        stream.setStream(handler_log)  # the handlers' JSON logs into the file
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        outputs = out / "stack-outputs.json"
        outputs.write_text(json.dumps({config.stack_name: emulator.stack.stack_outputs()}))
        sample = out / "sample-visit.wav"
        sample.write_bytes(wav_bytes(duration_s=20.0))
        session = Session(
            endpoint=endpoint,
            region=config.region,
            input_bucket=emulator.stack.input_bucket,
            output_bucket=emulator.stack.output_bucket,
            outputs_file=outputs,
            sample=sample,
            root=demo.ROOT,
            downloads=out / "downloads",
        )
        print(demo.NOT_SPEECH, end="\n\n")
        print(demo.PHI_NOTE)
        for upload in uploads:
            demo.put_upload(emulator, upload)
        if uploads:
            print(f"Uploaded {len(uploads)} file(s) to s3://{emulator.stack.input_bucket}/.")
        print(instructions(session, logs), flush=True)
        table = boto3.resource("dynamodb", region_name=config.region).Table(
            emulator.stack.job_table
        )
        watcher = StatusWatcher(table, lambda line: print(line, flush=True))
        for name, every, work in (
            ("pipeline", STEP_SECONDS, emulator.step),
            ("status", WATCH_SECONDS, watcher.poll),
        ):
            thread = threading.Thread(
                target=_loop, args=(stop, every, work, handler_log), name=name, daemon=True
            )
            thread.start()
            threads.append(thread)
        _wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        emulator.close()
        server.stop()
    print("\nstopped", flush=True)
    return 0


def _wait_for_interrupt() -> None:
    """Until Ctrl-C (SIGINT) or SIGTERM."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
