"""`make demo`: the whole pipeline on the embedded AWS emulator, on sample or given audio.

    python -m devkit.demo [FILE ...] [--env dev] [--out demo-output] [--serve]

Uploads go through the real handlers: S3 notification -> ingest queue -> start-job ->
(emulated) Transcribe Medical -> job-state event -> post-process -> documents; the
reconciler runs on its schedule. Ends with a table of every job and the documents copied
to a local folder. Exits 1 if any job is left open. With --serve, the emulator then stays
up on 127.0.0.1 so that `python -m jobctl --endpoint-url ...` can explore it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

NOT_SPEECH = (
    "NOTE: the emulator does not recognise speech. Each transcript replays the sample's "
    "script (or, for your own files, a generic consultation) with plausible timings; "
    "everything else (validation, jobs, events, documents, the job table) is the real "
    "pipeline code."
)


def _fake_aws_environment() -> None:
    """The emulator needs credentials-shaped values and must never reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "MedicalTranscription",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "LOG_LEVEL": "WARNING",
        }
    )


def _load_config(env: str) -> Any:
    from stacks.config import load_environments  # noqa: PLC0415 - after sys.path setup

    context = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"]
    for config in load_environments(context):
        if config.name == env:
            return config
    raise SystemExit(f"no environment {env!r} in cdk.json; have: {', '.join(context)}")


def _user_uploads(paths: list[str]) -> list[Any]:
    from devkit.samples import Sample  # noqa: PLC0415

    uploads = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise SystemExit(f"demo: {raw}: no such file")
        uploads.append(Sample(key=f"uploads/{path.name}", body=path.read_bytes(), what=str(path)))
    return uploads


def _row(item: dict[str, Any]) -> list[str]:
    stats = item.get("stats") or {}
    duration = item.get("duration_s") or stats.get("duration_s")
    return [
        str(item["input_key"]),
        str(item["status"]),
        f"{float(duration):.1f} s" if duration is not None else "-",
        str(stats.get("words", "-")),
        str(item.get("failure_reason", "")),
    ]


def _table(rows: list[list[str]], headers: list[str], reason_width: int = 60) -> str:
    cut = [[*r[:-1], textwrap.shorten(r[-1], reason_width, placeholder="...")] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cut)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cut]
    return "\n".join(line.rstrip() for line in lines)


def _copy_documents(emulator: Any, items: list[dict[str, Any]], out: Path) -> list[Path]:
    folders = []
    for item in items:
        if item["status"] != "COMPLETED":
            continue
        stem = posixpath.splitext(item["input_key"])[0]
        folder = out / stem
        folder.mkdir(parents=True, exist_ok=True)
        sources = {**item["outputs"], "transcribe-raw.json": item["transcript_key"]}
        for name, key in sources.items():
            body = emulator.s3.get_object(Bucket=emulator.stack.output_bucket, Key=key)["Body"]
            (folder / name).write_bytes(body.read())
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="your own audio files (default: the samples)")
    parser.add_argument("--env", default="dev", help="environment from cdk.json (default dev)")
    parser.add_argument("--out", default="demo-output", help="folder for the documents")
    parser.add_argument("--max-ticks", type=int, default=30)
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="run the emulator as a server on 127.0.0.1 and keep it up for jobctl until Ctrl-C",
    )
    args = parser.parse_args(argv)

    _fake_aws_environment()
    from moto import mock_aws  # noqa: PLC0415 - imported once the environment is safe

    from devkit.emulator import PipelineEmulator  # noqa: PLC0415
    from devkit.samples import demo_samples  # noqa: PLC0415

    config = _load_config(args.env)
    uploads = _user_uploads(args.files) if args.files else demo_samples()
    scripts = {u.key: u.script for u in uploads if u.script}

    def script_for(_job_name: str, job: dict[str, Any]) -> Any:
        key = job["media"]["MediaFileUri"].split("/", 3)[3]  # s3://bucket/<key>
        return scripts.get(key) or _generic(job)

    print(NOT_SPEECH, end="\n\n")
    server = _start_server() if args.serve else None
    with mock_aws() if server is None else contextlib.nullcontext():
        emulator = PipelineEmulator(config, script=script_for)
        from pipeline.observability import logger  # noqa: PLC0415 - loaded by the emulator

        previous_level = logger.log_level
        if not args.verbose:  # the handlers' JSON logs would bury the story
            logger.setLevel("WARNING")
        try:
            settled, items = _run(emulator, uploads, args)
            outputs = Path(args.out).resolve() / "stack-outputs.json"
            outputs.parent.mkdir(parents=True, exist_ok=True)
            outputs.write_text(json.dumps({config.stack_name: emulator.stack.stack_outputs()}))
            if server is not None:
                keys = [str(i["input_key"]) for i in items]
                examples = ["list", f"status {keys[0]}", f"why {keys[-1]}"]
                _serve(server, outputs, config.region, examples)
        finally:
            logger.setLevel(previous_level)
            emulator.close()
            if server is not None:
                server.stop()
    open_jobs = [i for i in items if i["status"] in ("PENDING", "QUEUED", "IN_PROGRESS")]
    if open_jobs or not settled:
        print(f"\n{len(open_jobs)} job(s) left open", file=sys.stderr)
        return 1
    return 0


def _run(emulator: Any, uploads: list[Any], args: argparse.Namespace) -> tuple[bool, list[Any]]:
    """Upload, let time pass until every job has ended, then report and copy documents."""
    config = emulator.config
    print(f"Environment {config.name!r} from cdk.json, emulated stack {config.stack_name}")
    for upload in uploads:
        emulator.upload(upload.key, upload.body)
        print(f"  uploaded s3://{emulator.stack.input_bucket}/{upload.key}  ({upload.what})")
    print()

    def progress(report: Any) -> None:
        counts: dict[str, int] = {}
        for item in emulator.items():
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"  minute {emulator.ticks:>2}: {summary}")

    settled = emulator.run_until_settled(max_ticks=args.max_ticks, on_tick=progress)
    items = sorted(emulator.items(), key=lambda i: str(i["input_key"]))
    print()
    print(_table([_row(i) for i in items], ["input", "status", "duration", "words", "reason"]))
    rejected = [i for i in items if i.get("failure_reason")]
    if rejected:
        print("\nWhy:")
        for item in rejected:
            print(f"  {item['input_key']}: {item['failure_reason']}")
    out = Path(args.out).resolve()
    folders = _copy_documents(emulator, items, out)
    if folders:
        print(f"\nDocuments (copied out of the emulated output bucket) in {out}:")
        for folder in folders:
            names = ", ".join(sorted(p.name for p in folder.iterdir()))
            print(f"  {folder.relative_to(out)}/: {names}")
    return settled, items


def _start_server() -> Any:
    """moto's server on a free loopback port; the handlers and jobctl reach it over HTTP."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    return server


def _serve(server: Any, outputs: Path, region: str, examples: list[str]) -> None:
    host, port = server.get_host_and_port()
    jobctl = (
        f"{sys.executable} -m jobctl --endpoint-url http://{host}:{port} --outputs-file {outputs}"
    )
    print(f"\nThe emulator is serving on http://{host}:{port} until you press Ctrl-C. Try:")
    for command in examples:
        print(f"  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo {jobctl} {command}")
    try:
        _wait_for_interrupt()
    except KeyboardInterrupt:
        print("\nstopped")


def _wait_for_interrupt() -> None:
    threading.Event().wait()


def _generic(job: dict[str, Any]) -> Any:
    from devkit.transcribe_medical import GENERIC_CONVERSATION, GENERIC_DICTATION  # noqa: PLC0415

    return GENERIC_DICTATION if job["type"] == "DICTATION" else GENERIC_CONVERSATION


if __name__ == "__main__":
    sys.exit(main())
