"""Text for people: item blocks, job tables, diagnoses and reports. No AWS calls here."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from jobctl.jobs import (
    DeletePlan,
    DeleteReport,
    Diagnosis,
    DownloadResult,
    Item,
    RetryResult,
    list_duration,
    normalise_time,
)

LABEL_WIDTH = 12
WRAP_WIDTH = 100
REASON_WIDTH = 48


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def short_time(value: Any) -> str:
    """`2025-06-01T12:00:00.123Z` -> `2025-06-01T12:00:00Z`: milliseconds only clutter a table."""
    text = str(value or "")
    if len(text) >= 19 and text[10] == "T":
        return text[:19] + "Z"
    return text or "-"


def duration(seconds: Any) -> str:
    if seconds is None or seconds == "":
        return "-"
    total = float(seconds)
    if total < 60:
        return f"{total:.1f}s"
    whole = round(total)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line, whatever the reason held
    return text if len(text) <= width else text[: width - 3] + "..."


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _line(label: str, value: str) -> list[str]:
    """`label  value`, long values wrapped under the value column."""
    indent = " " * LABEL_WIDTH
    wrapped = textwrap.wrap(
        value,
        width=WRAP_WIDTH,
        initial_indent=f"{label:<{LABEL_WIDTH}}",
        subsequent_indent=indent,
        break_on_hyphens=False,
    )
    return wrapped or [label]


def _media(item: Mapping[str, Any]) -> str | None:
    parts = []
    if item.get("media_format"):
        parts.append(str(item["media_format"]))
    if item.get("sample_rate_hz"):
        parts.append(f"{int(item['sample_rate_hz']):,} Hz")
    if item.get("channels"):
        parts.append(_plural(item["channels"], "channel"))
    if item.get("bits_per_sample"):
        parts.append(f"{item['bits_per_sample']}-bit")
    if item.get("duration_s") is not None:
        parts.append(duration(item["duration_s"]))
    return ", ".join(parts) or None


def _stats(stats: Mapping[str, Any]) -> str | None:
    if not stats:
        return None
    parts = []
    if "words" in stats:
        parts.append(_plural(stats["words"], "word"))
    if "duration_s" in stats:
        parts.append(duration(stats["duration_s"]))
    if stats.get("speakers"):
        parts.append(_plural(stats["speakers"], "speaker"))
    if stats.get("channels"):
        parts.append(_plural(stats["channels"], "channel"))
    if "mean_confidence" in stats:
        parts.append(f"mean confidence {float(stats['mean_confidence']):.2f}")
    if "low_confidence_words" in stats:
        parts.append(f"{stats['low_confidence_words']} low-confidence")
    return ", ".join(parts)


PHI_LABELS = {"patient_id": "patient", "encounter_id": "encounter", "author": "author"}


def _metadata(item: Mapping[str, Any], *, show_phi: bool) -> list[str]:
    """The integrator metadata (contract 6). The PHI values only with show_phi; otherwise
    which of them the item holds, so an operator knows they are there."""
    lines = _line("note type", str(item["note_type"])) if item.get("note_type") else []
    present = [field for field in PHI_LABELS if item.get(field) is not None]
    if not present:
        return lines
    if show_phi:
        return [*lines, *(line for f in present for line in _line(PHI_LABELS[f], str(item[f])))]
    names = ", ".join(PHI_LABELS[field] for field in present)
    return [*lines, *_line("metadata", f"{names} (PHI, hidden: --show-phi shows them)")]


def status_block(item: Mapping[str, Any], *, show_phi: bool = False) -> str:
    lines = [*_line("job", str(item["job_name"])), *_line("status", str(item["status"]))]
    if item.get("input_key") is not None:
        lines += _line("input", f"s3://{item.get('input_bucket', '?')}/{item['input_key']}")
        facts = []
        if item.get("input_version"):
            facts.append(f"version {item['input_version']}")
        if item.get("input_size") is not None:
            facts.append(f"{int(item['input_size']):,} bytes")
        if facts:
            lines += _line("", ", ".join(facts))
    if item.get("type"):
        specialty = f" ({item['specialty']})" if item.get("specialty") else ""
        lines += _line("type", f"{item['type']}{specialty}")
    for label in ("created", "updated", "completed"):
        if item.get(f"{label}_at"):
            lines += _line(label, str(normalise_time(item[f"{label}_at"])))
    if item.get("attempts") is not None:
        lines += _line("attempts", str(item["attempts"]))
    lines += _metadata(item, show_phi=show_phi)
    media = _media(item)
    if media:
        lines += _line("media", media)
    if item.get("settings"):
        settings = ", ".join(f"{k}={v}" for k, v in sorted(item["settings"].items()))
        lines += _line("settings", settings)
    stats = _stats(item.get("stats") or {})
    if stats:
        lines += _line("stats", stats)
    if item.get("transcript_key"):
        lines += _line("transcript", str(item["transcript_key"]))
    outputs = item.get("outputs") or {}
    if outputs:
        width = max(len(name) for name in outputs)
        for i, (name, key) in enumerate(sorted(outputs.items())):
            lines += _line("outputs" if i == 0 else "", f"{name:<{width}}  {key}")
    if item.get("failure_reason"):
        lines += _line("reason", str(item["failure_reason"]))
    return "\n".join(lines)


TABLE_COLUMNS = ("JOB NAME", "INPUT", "STATUS", "TYPE", "CREATED", "DURATION", "WORDS", "REASON")
INPUT_WIDTH = 48


def tail(text: str, width: int) -> str:
    """The end of a long key, where the file name is."""
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def jobs_table(items: Sequence[Item]) -> str:
    rows = [
        (
            str(item["job_name"]),
            tail(str(item.get("input_key") or "-"), INPUT_WIDTH),
            str(item.get("status", "-")),
            str(item.get("type") or "-"),
            short_time(item.get("created_at")),
            duration(list_duration(item)),
            str((item.get("stats") or {}).get("words", "-")),
            truncate(str(item.get("failure_reason") or "-"), REASON_WIDTH),
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [TABLE_COLUMNS, *rows]) for i in range(len(TABLE_COLUMNS))]
    numeric = {5, 6}  # right-aligned: duration and words

    def fmt(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(fmt(row) for row in [TABLE_COLUMNS, *rows])


def diagnosis_text(item: Mapping[str, Any], diagnosis: Diagnosis) -> str:
    lines = [f"job {item['job_name']}", diagnosis.headline]
    for detail in diagnosis.details:
        lines += textwrap.wrap(detail, WRAP_WIDTH, initial_indent="  ", subsequent_indent="  ")
    if diagnosis.next_steps:
        lines.append("What to do:")
        for step in diagnosis.next_steps:
            lines += textwrap.wrap(
                step, WRAP_WIDTH, initial_indent="  - ", subsequent_indent="    "
            )
    return "\n".join(lines)


def retry_text(result: RetryResult, queue_url: str) -> str:
    lines = [f"retry {result.job_name} (was {result.previous_status}):"]
    if result.previous_status in ("FAILED", "REJECTED"):
        lines.append(
            "  Transcribe job record deleted"
            if result.transcribe_record_deleted
            else "  no Transcribe job record to delete"
        )
        lines.append("  index item deleted")
    lines.append(f"  upload notification sent to {queue_url} (message {result.message_id})")
    lines += [f"  note: {note}" for note in result.notes]
    lines.append(f"Follow it with: jobctl status {result.job_name}")
    return "\n".join(lines)


def delete_plan_text(plan: DeletePlan) -> str:
    versions = sum(1 for v in plan.versions if not v.delete_marker)
    markers = len(plan.versions) - versions
    lines = [
        f"delete job {plan.item['job_name']} ({plan.item.get('status')}):",
        "  its Transcribe job record (if any) and its index item",
        f"  from s3://{plan.output_bucket}: {_plural(versions, 'object version')} and "
        f"{_plural(markers, 'delete marker')} of {_plural(len(plan.keys), 'key')}:",
        *(f"    {key}" for key in plan.keys),
    ]
    if plan.input_version is not None:
        version = plan.input_version.version_id or "(unversioned)"
        lines.append(
            f"  the input s3://{plan.item['input_bucket']}/{plan.input_version.key} "
            f"version {version} only"
        )
    else:
        lines.append("  (the input audio is kept; --include-input deletes the job's version of it)")
    if plan.kept_versions:
        lines.append(
            f"  kept: {_plural(len(plan.kept_versions), 'older version')} of the same keys "
            "(written under the old shared layout; other uploads of the same name wrote "
            "there too, and these cannot be told apart from theirs):"
        )
        lines += [f"    {v.key} version {v.version_id}" for v in plan.kept_versions]
    return "\n".join(lines)


def delete_report_text(report: DeleteReport) -> str:
    lines = [
        f"deleted job {report.job_name}:",
        "  Transcribe job record: "
        + ("deleted" if report.transcribe_record_deleted else "none found"),
        f"  output objects: {_plural(report.versions_deleted, 'version')}, "
        f"{_plural(report.delete_markers_deleted, 'delete marker')}",
    ]
    if report.input_deleted:
        lines.append("  input audio: the job's version deleted")
    elif report.input_missing:
        lines.append("  input audio: the job's version was already gone")
    lines.append("  index item: " + ("deleted" if report.item_deleted else "kept"))
    return "\n".join(lines)


def download_text(result: DownloadResult) -> str:
    lines = [f"wrote {_plural(len(result.files), 'file')} to {result.folder}:"]
    lines += [f"  {path.name}" for path in result.files]
    return "\n".join(lines)
