"""`make demo`: the whole pipeline on the embedded AWS emulator, on sample or given audio.

    python -m devkit.demo [PATH ...] [--type dictation|conversation] [--env dev]
                          [--patient-id ID] [--encounter-id ID] [--author NAME]
                          [--note-type LOINC] [--out demo-output] [--serve]

Uploads go through the real handlers: S3 notification -> ingest queue -> start-job ->
(emulated) Transcribe Medical -> job-state event -> post-process -> documents; the
reconciler runs on its schedule. Ends with a table of every job and the documents copied
to a fresh local folder. Exits 1 if any job is left open. --serve is `make local`: the
same uploads, then the pipeline stays up live on 127.0.0.1 until Ctrl-C.

The emulated environment is the cdk.json environment's, with PHI identification on (see
`demo_config`), so the documents include the redacted ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import posixpath
import shutil
import sys
import textwrap
from collections.abc import Mapping
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
PHI_NOTE = (
    "PHI identification is on for the emulated stack (the demo's own setting), so each "
    "transcript also comes redacted."
)
INVENTED = (
    "The words are invented (emulated Transcribe Medical): every document and summary.json "
    "says so too."
)
# Written into the output folder so that a later run may empty it, and nothing else.
OUTPUT_MARKER = ".made-by-make-demo"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


def _fake_aws_environment(region: str = "us-east-1") -> None:
    """The emulator needs credentials-shaped values and must never reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            **FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
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


def demo_config(env: str) -> Any:
    """The environment from cdk.json, with PHI identification on for the emulated stack only.

    The demo exists to show what the pipeline makes, redacted documents included, and its
    transcripts are invented: nothing real is exposed by labelling them. Whether a deployed
    dev stack pays for PHI identification stays cdk.json's decision."""
    return dataclasses.replace(_load_config(env), identify_phi=True)


def user_uploads(
    words: list[str], job_type: str | None = None, metadata: Mapping[str, str] | None = None
) -> list[Any]:
    """The user's paths (files or directories) as uploads with unique keys and metadata."""
    from devkit.demo_inputs import DemoInputError, local_uploads  # noqa: PLC0415
    from devkit.samples import Sample  # noqa: PLC0415

    try:
        files = local_uploads(words, job_type, metadata)
    except DemoInputError as error:
        raise SystemExit(f"demo: {error}") from None
    return [
        Sample(key=f.key, body=f.path.read_bytes(), what=str(f.path), metadata=f.metadata)
        for f in files
    ]


def sample_uploads(metadata: Mapping[str, str] | None = None) -> list[Any]:
    """The built-in samples; the command line's metadata goes to those without their own."""
    from devkit.demo_inputs import DemoInputError, checked_metadata  # noqa: PLC0415
    from devkit.samples import demo_samples  # noqa: PLC0415

    try:
        common = checked_metadata(metadata or {}, "the command line")
    except DemoInputError as error:
        raise SystemExit(f"demo: {error}") from None
    return [
        s if s.metadata or not common else dataclasses.replace(s, metadata=common)
        for s in demo_samples()
    ]


def uploads_for(args: argparse.Namespace) -> list[Any]:
    metadata = cli_metadata(args)
    if args.files:
        return user_uploads(args.files, args.type, metadata)
    return sample_uploads(metadata)


def cli_metadata(args: argparse.Namespace) -> dict[str, str]:
    """The S3 user metadata the command line gives (x-amz-meta-<key>), by key."""
    return {key: value for key, dest in METADATA_OPTIONS if (value := getattr(args, dest))}


def put_upload(emulator: Any, upload: Any) -> None:
    """Upload into the emulated input bucket with the upload's S3 user metadata (the
    emulator's own `upload` takes none); S3 notifies the ingest queue."""
    emulator.s3.put_object(
        Bucket=emulator.stack.input_bucket,
        Key=upload.key,
        Body=upload.body,
        Metadata=dict(upload.metadata),
    )


def script_for(uploads: list[Any]) -> Any:
    """The emulated Transcribe's words for each job: the sample's script, else generic."""
    scripts = {u.key: u.script for u in uploads if u.script}

    def script(_job_name: str, job: dict[str, Any]) -> Any:
        key = job["media"]["MediaFileUri"].split("/", 3)[3]  # s3://bucket/<key>
        return scripts.get(key) or _generic(job)

    return script


def fresh_output(out: Path) -> Path:
    """An empty output folder for this run; only a folder an earlier run made is emptied."""
    out = out.resolve()
    if out.exists():
        if not (out / OUTPUT_MARKER).exists() and any(out.iterdir()):
            raise SystemExit(
                f"demo: {out} exists and was not made by the demo: choose another --out "
                "(or empty it yourself)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / OUTPUT_MARKER).write_text("make demo empties this folder on its next run\n")
    return out


def duration_of(item: dict[str, Any]) -> Any:
    """One duration everywhere: the transcript's, which summary.json reports; the media
    header's only for a job without a transcript."""
    stats = item.get("stats") or {}
    return stats.get("duration_s", item.get("duration_s"))


def _row(item: dict[str, Any]) -> list[str]:
    stats = item.get("stats") or {}
    duration = duration_of(item)
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
            (folder / posixpath.basename(name)).write_bytes(body.read())
        folders.append(folder)
    return folders


# (S3 metadata key, argparse dest) for --patient-id, --encounter-id, --author, --note-type.
METADATA_OPTIONS = (
    ("patient-id", "patient_id"),
    ("encounter-id", "encounter_id"),
    ("author", "author"),
    ("note-type", "note_type"),
)


def build_parser(
    prog: str = "make demo", description: str = "", out: str = "demo-output"
) -> argparse.ArgumentParser:
    """The options `make demo` and `make local` share."""
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__.split("\n\n")[0])
    parser.add_argument(
        "files", nargs="*", metavar="PATH", help="your audio files or folders (default: samples)"
    )
    parser.add_argument(
        "--type",
        choices=("dictation", "conversation"),
        help="job type for your files (they go under dictation/ or conversation/); "
        "default: the environment's default_type",
    )
    parser.add_argument("--env", default="dev", help="environment from cdk.json (default dev)")
    parser.add_argument(
        "--out", default=out, help=f"folder for what the run writes (default {out})"
    )
    meta = parser.add_argument_group(
        "integrator metadata (S3 user metadata x-amz-meta-*, invented values please)",
        "For every upload of the run; a sidecar <audio file>.meta.json with the keys "
        "patient-id, encounter-id, author, note-type replaces them for its file.",
    )
    meta.add_argument("--patient-id", metavar="ID", help="PATIENT= in make")
    meta.add_argument("--encounter-id", metavar="ID", help="ENCOUNTER= in make")
    meta.add_argument("--author", metavar="NAME", help="the clinician; AUTHOR= in make")
    meta.add_argument(
        "--note-type", metavar="LOINC", help="a LOINC document code, e.g. 11506-3; NOTE_TYPE="
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.add_argument("--max-ticks", type=int, default=30)
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    parser.add_argument(
        "--serve", action="store_true", help="the same as `make local`: keep the pipeline up live"
    )
    args, rest = parser.parse_known_args(argv)
    if args.serve:  # `make demo ARGS=--serve` stays as an alias of `make local`
        from devkit import local_stack  # noqa: PLC0415

        return local_stack.main([a for a in (argv or sys.argv[1:]) if a != "--serve"])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    config = demo_config(args.env)
    _fake_aws_environment(config.region)
    from moto import mock_aws  # noqa: PLC0415 - imported once the environment is safe

    from devkit.emulator import PipelineEmulator  # noqa: PLC0415

    uploads = uploads_for(args)
    out = fresh_output(Path(args.out))
    print(NOT_SPEECH, end="\n\n")
    with mock_aws():
        emulator = PipelineEmulator(config, script=script_for(uploads))
        from pipeline.observability import logger  # noqa: PLC0415 - loaded by the emulator

        previous_level = logger.log_level
        if not args.verbose:  # the handlers' JSON logs would bury the story
            logger.setLevel("WARNING")
        try:
            settled, items = _run(emulator, uploads, out, args.max_ticks)
        finally:
            logger.setLevel(previous_level)
            emulator.close()
    open_jobs = [i for i in items if i["status"] in ("PENDING", "QUEUED", "IN_PROGRESS")]
    if open_jobs or not settled:
        print(f"\n{len(open_jobs)} job(s) left open", file=sys.stderr)
        return 1
    return 0


def _run(emulator: Any, uploads: list[Any], out: Path, max_ticks: int) -> tuple[bool, list[Any]]:
    """Upload, let time pass until every job has ended, then report and copy documents."""
    config = emulator.config
    print(f"Environment {config.name!r} from cdk.json, emulated stack {config.stack_name}")
    print(PHI_NOTE)
    for upload in uploads:
        put_upload(emulator, upload)
        tail = ", with metadata" if upload.metadata else ""
        print(f"  uploaded s3://{emulator.stack.input_bucket}/{upload.key}  ({upload.what}{tail})")
    print()

    def progress(report: Any) -> None:
        counts: dict[str, int] = {}
        for item in emulator.items():
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"  minute {emulator.ticks:>2}: {summary}")

    settled = emulator.run_until_settled(max_ticks=max_ticks, on_tick=progress)
    items = sorted(emulator.items(), key=lambda i: str(i["input_key"]))
    print()
    print(_table([_row(i) for i in items], ["input", "status", "duration", "words", "reason"]))
    if any(i["status"] == "COMPLETED" for i in items):
        print(INVENTED)
    rejected = [i for i in items if i.get("failure_reason")]
    if rejected:
        print("\nWhy:")
        for item in rejected:
            print(f"  {item['input_key']}: {item['failure_reason']}")
    folders = _copy_documents(emulator, items, out)
    if folders:
        print(f"\nDocuments (copied out of the emulated output bucket) in {out}:")
        for folder in folders:
            names = ", ".join(sorted(p.name for p in folder.iterdir()))
            print(f"  {folder.relative_to(out)}/: {names}")
        highlights = highlighted_documents(folders)
        if highlights:
            print("\nHave a look at:")
            for what, path in highlights:
                print(f"  {what}: {_shown_path(path)}")
    return settled, items


def highlighted_documents(folders: list[Path]) -> list[tuple[str, Path]]:
    """A redacted transcript, and FHIR and HL7 documents that carry the upload's patient
    (from its metadata), for one line each in the final output: from one job where one
    has all three, else from whichever job has each."""
    wanted: list[tuple[str, str, Any]] = [
        ("PHI redacted transcript", "transcript.redacted.txt", lambda _text: True),
        ("FHIR R4 DocumentReference, subject from the metadata", "document-reference.json",
         _has_subject),
        ("HL7 v2.5.1 MDM^T02, patient id in PID", "mdm-t02.hl7", _has_patient_id),
    ]  # fmt: skip

    def carries(folder: Path, name: str, test: Any) -> bool:
        path = folder / name
        return path.is_file() and bool(test(path.read_text(encoding="utf-8")))

    def score(folder: Path) -> int:
        return sum(carries(folder, name, test) for _what, name, test in wanted)

    ranked = sorted(folders, key=score, reverse=True)  # stable: ties keep the table's order
    found = []
    for what, name, test in wanted:
        folder = next((f for f in ranked if carries(f, name, test)), None)
        if folder is not None:
            found.append((what, folder / name))
    return found


def _has_subject(text: str) -> bool:
    return bool(json.loads(text).get("subject"))


def _has_patient_id(text: str) -> bool:
    pid = next((s for s in text.replace("\n", "\r").split("\r") if s.startswith("PID|")), "")
    fields = pid.split("|")
    return len(fields) > 3 and bool(fields[3].strip("^"))


def _shown_path(path: Path) -> str:
    """Relative to the working directory when it is below it (shorter to paste)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _generic(job: dict[str, Any]) -> Any:
    from devkit.transcribe_medical import GENERIC_CONVERSATION, GENERIC_DICTATION  # noqa: PLC0415

    return GENERIC_DICTATION if job["type"] == "DICTATION" else GENERIC_CONVERSATION


if __name__ == "__main__":
    sys.exit(main())
