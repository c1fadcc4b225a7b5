"""Argument parsing, dispatch, and turning every expected failure into one line and an exit code
(0 done, 1 not found / refused / AWS error, 2 usage)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from jobctl import jobs, render
from jobctl.resources import (
    DEFAULT_STACK,
    INGEST_QUEUE_URL,
    INPUT_BUCKET,
    JOB_TABLE,
    OUTPUT_BUCKET,
    AwsSession,
    JobctlError,
    StackResources,
    UsageError,
)

PROG = "python -m jobctl"
DESCRIPTION = """\
Operate the medical transcription pipeline: look up, list, explain, retry, delete and
download jobs of one deployed environment (or of the local emulator, with --endpoint-url).

A job is named by its job name or by its input object's key (then the newest job made from
that key is used, and the others are listed).

Resources are found from, in order: --table / --input-bucket / --output-bucket /
--ingest-queue-url; else --outputs-file (what `cdk deploy --outputs-file F` writes); else
the CloudFormation outputs of --stack (default %(default_stack)s)."""

DELETE_HELP = """\
Delete a job for a data-retention request: its Transcribe job record, every version and
delete marker of its raw transcript (medical/<job>.json) and of the documents its item's
outputs name in the job's own folder (never another job's), then its index item. The input
audio is kept unless --include-input: then only the job's own version of the input object
is deleted, not other versions of that key."""

RETRY_HELP = """\
Run the same uploaded version through the pipeline again, e.g. after a pipeline fix or a
transient Transcribe failure (a fixed file is a new upload, which becomes a new job by
itself). FAILED or REJECTED: deletes the ended Transcribe job record and the index item,
then sends the ingest queue the upload's notification again. PENDING, QUEUED, IN_PROGRESS:
refused unless --force (the job is already recorded, in the backlog or with Transcribe: the
re-sent notification is a duplicate and changes nothing). COMPLETED: refused."""


SHOW_PHI_HELP = (
    "also show the upload's patient id, encounter id and author (PHI: hidden by default)"
)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"jobctl: error: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _since(text: str) -> str:
    try:
        return jobs.parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_location_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The same options on the main parser and on every command, so they may come before or
    after the command; on commands they default to SUPPRESS so they never overwrite a value
    given before the command."""
    default: Any = argparse.SUPPRESS if suppress else None
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--profile", default=default, help="named profile from your AWS config")
    aws.add_argument(
        "--region",
        default=default,
        help="AWS Region (else AWS_REGION, AWS_DEFAULT_REGION or the profile's)",
    )
    aws.add_argument(
        "--endpoint-url",
        default=default,
        metavar="URL",
        help="send every AWS call here, e.g. the local stack's URL that `make local` prints",
    )
    where = parser.add_argument_group("where the stack's resources are")
    where.add_argument(
        "--stack", default=default, help=f"CloudFormation stack name (default {DEFAULT_STACK})"
    )
    where.add_argument(
        "--outputs-file",
        type=Path,
        default=default,
        metavar="FILE",
        help="JSON written by `cdk deploy --outputs-file FILE` (or by the demo)",
    )
    where.add_argument("--table", default=default, help="job index table name")
    where.add_argument("--input-bucket", default=default, metavar="BUCKET")
    where.add_argument("--output-bucket", default=default, metavar="BUCKET")
    where.add_argument("--ingest-queue-url", default=default, metavar="URL")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION % {"default_stack": DEFAULT_STACK},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_location_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, handler: Callable[..., int], **kw: Any) -> Any:
        sub = commands.add_parser(name, help=summary, description=kw.pop("description", summary))
        sub.set_defaults(handler=handler)
        _add_location_options(sub, suppress=True)
        return sub

    ref_help = "job name, or input object key (the newest job for that key)"

    status = command("status", "show one job", cmd_status)
    status.add_argument("job", metavar="JOB-OR-KEY", help=ref_help)
    status.add_argument("--json", action="store_true", help="print the index item as JSON")
    status.add_argument("--show-phi", action="store_true", help=SHOW_PHI_HELP)

    listing = command("list", "list jobs, newest first", cmd_list)
    listing.add_argument(
        "--status",
        action="append",
        type=str.upper,
        choices=jobs.STATUSES,
        metavar="STATUS",
        help=f"only this status (repeatable): {', '.join(jobs.STATUSES)}",
    )
    listing.add_argument(
        "--since",
        type=_since,
        metavar="TIME",
        help="created at or after: ISO-8601 (2025-06-01, 2025-06-01T12:00Z) or ago (30m, 2h, 3d)",
    )
    listing.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="at most N jobs (default 50)"
    )
    listing.add_argument("--json", action="store_true", help="print the items as JSON")
    listing.add_argument("--show-phi", action="store_true", help=SHOW_PHI_HELP)

    why = command("why", "say why a job failed, or where it is and what to do", cmd_why)
    why.add_argument("job", metavar="JOB-OR-KEY", help=ref_help)

    retry = command("retry", "transcribe the same upload again", cmd_retry, description=RETRY_HELP)
    retry.add_argument("job", metavar="JOB-OR-KEY", help=ref_help)
    retry.add_argument(
        "--force", action="store_true", help="also for a PENDING, QUEUED or IN_PROGRESS job"
    )

    delete = command(
        "delete", "delete a job, its transcript and documents", cmd_delete, description=DELETE_HELP
    )
    delete.add_argument("job", metavar="JOB-OR-KEY", help=ref_help)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument(
        "--include-input",
        action="store_true",
        help="also delete the job's own version of the input audio (only that version)",
    )
    delete.add_argument(
        "--force",
        action="store_true",
        help="also for a job that has not ended (Transcribe may still write its transcript)",
    )

    download = command(
        "download", "save a completed job's documents and raw transcript", cmd_download
    )
    download.add_argument("job", metavar="JOB-OR-KEY", help=ref_help)
    download.add_argument("dir", type=Path, metavar="DIR", help="files go to DIR/<job name>/")
    return parser


# --- commands -----------------------------------------------------------------------------


@dataclass
class Context:
    aws: AwsSession
    resources: StackResources

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    @property
    def ddb(self) -> Any:
        return self.client("dynamodb")

    @property
    def region(self) -> str:
        return self.aws.region or "us-east-1"

    def find(self, ref: str) -> jobs.Lookup:
        lookup = jobs.find_job(self.ddb, self.resources.table, ref)
        if lookup.by_input_key:
            _note_input_key_match(lookup)
        return lookup


def _out(text: str) -> None:
    print(text, file=sys.stdout)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _note_input_key_match(lookup: jobs.Lookup) -> None:
    item = lookup.item
    if not lookup.others:
        _err(f"note: input key matched job {item['job_name']}")
        return
    others = ", ".join(
        f"{o['job_name']} ({o.get('status')}, created {o.get('created_at')})" for o in lookup.others
    )
    _err(
        f"note: input key matched {len(lookup.others) + 1} jobs (one per uploaded version); "
        f"using the newest, {item['job_name']} (created {item.get('created_at')}); others: {others}"
    )


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    item = jobs.with_normalised_times(ctx.find(args.job).item)
    if args.json:
        _out(render.as_json(item if args.show_phi else jobs.without_phi(item)))
    else:
        _out(render.status_block(item, show_phi=args.show_phi))
    return 0


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    statuses = list(dict.fromkeys(args.status)) if args.status else jobs.STATUSES
    listing = jobs.list_jobs(
        ctx.ddb, ctx.resources.table, statuses=statuses, since=args.since, limit=args.limit
    )
    if args.json:
        shown = listing.items if args.show_phi else [jobs.without_phi(i) for i in listing.items]
        _out(render.as_json([jobs.with_normalised_times(i) for i in shown]))
    elif listing.items:
        _out(render.jobs_table(listing.items))
    else:
        _out("no jobs found")
    if listing.truncated:
        _err(f"note: showing the newest {args.limit}; more match (raise --limit or use --since)")
    return 0


def cmd_why(args: argparse.Namespace, ctx: Context) -> int:
    item = ctx.find(args.job).item
    _out(render.diagnosis_text(item, jobs.diagnose(item, ctx.client("transcribe"))))
    return 0


def cmd_retry(args: argparse.Namespace, ctx: Context) -> int:
    item = ctx.find(args.job).item
    queue_url = ctx.resources.ingest_queue_url
    result = jobs.retry_job(
        ddb=ctx.ddb,
        s3=ctx.client("s3"),
        sqs=ctx.client("sqs"),
        transcribe=ctx.client("transcribe"),
        table=ctx.resources.table,
        queue_url=queue_url,
        input_bucket=ctx.resources.input_bucket,
        item=item,
        force=args.force,
        region=ctx.region,
    )
    _out(render.retry_text(result, queue_url))
    return 0


def _confirm(question: str) -> bool:
    """Ask on a terminal; anything but yes is no. Refuse (usage error) when nobody can answer."""
    if not sys.stdin.isatty():
        raise UsageError("not confirmed: stdin is not a terminal, pass --yes to delete")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    item = ctx.find(args.job).item
    name, status = item["job_name"], item["status"]
    if status in jobs.OPEN_STATUSES and not args.force:
        raise jobs.Refused(
            f"job {name} is {status}: if deleted now, Transcribe may still write its transcript "
            "and the ingest queue may recreate the job. Wait until it has ended (`jobctl why`), "
            "or pass --force and run delete again once it has ended"
        )
    table = ctx.resources.table
    plan = jobs.plan_delete(
        ddb=ctx.ddb,
        s3=ctx.client("s3"),
        table=table,
        output_bucket=ctx.resources.output_bucket,
        item=item,
        include_input=args.include_input,
    )
    _out(render.delete_plan_text(plan))
    if not args.yes and not _confirm(f"Delete job {name}?"):
        _err("aborted: nothing deleted")
        return 1
    report = jobs.execute_delete(
        ddb=ctx.ddb,
        s3=ctx.client("s3"),
        transcribe=ctx.client("transcribe"),
        table=table,
        plan=plan,
    )
    _out(render.delete_report_text(report))
    return 0


def cmd_download(args: argparse.Namespace, ctx: Context) -> int:
    item = ctx.find(args.job).item
    if item.get("status") != jobs.COMPLETED:  # before locating the bucket: a clearer error
        raise jobs.Refused(
            f"job {item['job_name']} is {item.get('status')}, not COMPLETED: nothing to download"
        )
    result = jobs.download_job(
        s3=ctx.client("s3"), output_bucket=ctx.resources.output_bucket, item=item, dest=args.dir
    )
    _out(render.download_text(result))
    for warning in result.warnings:
        _err(f"warning: {warning}")
    return 0


# --- errors -------------------------------------------------------------------------------

TABLE_OPERATIONS = frozenset({"GetItem", "Query", "DeleteItem", "PutItem"})
QUEUE_MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
BAD_CREDENTIALS = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"}
)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _resource(ctx: Context, getter: Callable[[StackResources], str]) -> str:
    try:
        return getter(ctx.resources)
    except JobctlError:
        return "?"


def describe_client_error(error: ClientError, ctx: Context) -> str:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "Unknown")), _one_line(details.get("Message", ""))
    operation = error.operation_name
    region = ctx.aws.requested_region or _safe_region(ctx)
    if code == "ResourceNotFoundException" and operation in TABLE_OPERATIONS:
        table = _resource(ctx, lambda r: r.table)
        return (
            f"DynamoDB table {table} not found in {region}: check --table, --stack, "
            "--outputs-file and --region"
        )
    if code == "NoSuchBucket":
        bucket = details.get("BucketName") or "?"
        return f"S3 bucket {bucket} does not exist in this account: check the stack's outputs"
    if code in QUEUE_MISSING:
        return (
            f"ingest queue {_resource(ctx, lambda r: r.ingest_queue_url)} does not exist: "
            "check --ingest-queue-url or the stack's outputs"
        )
    if code in EXPIRED:
        return "your AWS credentials have expired: refresh them (e.g. `aws sso login`)"
    if code in BAD_CREDENTIALS:
        return f"AWS did not accept your credentials ({code}): check --profile or AWS_* variables"
    return f"AWS error in {operation}: {code}: {message or 'no detail given'}"


def _safe_region(ctx: Context) -> str:
    try:
        return ctx.aws.region or "?"
    except BotoCoreError:
        return "?"


def _fail(message: str, code: int) -> int:
    _err(f"jobctl: error: {_one_line(message)}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already reported in one line
        return exit_.code if isinstance(exit_.code, int) else 2
    aws = AwsSession(profile=args.profile, region=args.region, endpoint_url=args.endpoint_url)
    resources = StackResources(
        flags={
            JOB_TABLE: args.table,
            INPUT_BUCKET: args.input_bucket,
            OUTPUT_BUCKET: args.output_bucket,
            INGEST_QUEUE_URL: args.ingest_queue_url,
        },
        outputs_file=args.outputs_file,
        stack=args.stack,
        cloudformation=lambda: aws.client("cloudformation"),
    )
    ctx = Context(aws=aws, resources=resources)
    try:
        return int(args.handler(args, ctx))
    except JobctlError as error:
        return _fail(str(error), error.exit_code)
    except (NoCredentialsError, PartialCredentialsError):
        return _fail(
            "no AWS credentials found: configure a profile (--profile) or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for the emulator any values will do)",
            1,
        )
    except ProfileNotFound as error:
        return _fail(f"AWS profile {error.kwargs.get('profile')!r} not found in your AWS config", 1)
    except NoRegionError:
        return _fail(
            "no AWS Region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION, or a "
            "region in your profile)",
            1,
        )
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as error:
        where = str(error.kwargs.get("endpoint_url") or args.endpoint_url or "AWS").rstrip("/")
        return _fail(
            f"cannot reach {where}: check --endpoint-url (is the emulator running?) "
            "or your network",
            1,
        )
    except ClientError as error:
        return _fail(describe_client_error(error, ctx), 1)
    except BotoCoreError as error:
        return _fail(f"AWS error: {error}", 1)
    except OSError as error:  # writing downloads
        return _fail(f"{error.strerror or error}: {error.filename or ''}", 1)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
