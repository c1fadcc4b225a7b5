"""summary.json (for people) and stats (for the job index item).

PHI entities are summarised as a count per category only: the summary sits in
the encrypted output bucket, but a count is all a reviewer needs to know that
PHI was found, and it keeps the document safe to display in a job listing.
Low-confidence words do carry their text and times: a clinician needs them to
review the transcript.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from itertools import compress, count, repeat
from operator import lt
from typing import Any

from .model import Transcript, Turn, label_name

SUMMARY_VERSION = 1
JOB_KEYS = (
    "job_name",
    "type",
    "specialty",
    "media_format",
    "sample_rate_hz",
    "created_at",
    "completed_at",
    "settings",
    "input_key",
)


def mean_confidence(confidences: list[float]) -> float:
    """Mean over the words that have a confidence, 4 places; 0.0 without any."""
    total = math.fsum(confidences)
    count = len(confidences)
    if math.isnan(total):  # some items had no confidence
        known = [c for c in confidences if not math.isnan(c)]
        total, count = math.fsum(known), len(known)
    return round(total / count, 4) if count else 0.0


def build_summary(
    transcript: Transcript,
    turns: list[Turn],
    *,
    job: Mapping[str, Any],
    low_confidence_threshold: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary document, stats). Stats hold ints, floats and nothing else."""
    t = transcript
    low = list(compress(count(), map(lt, t.confidences, repeat(low_confidence_threshold))))
    by_label = _by_label(t, turns)
    speakers = _labelled(t, by_label) if t.label_kind == "speaker" else _labelled(None, {})
    channels = _labelled(t, by_label) if t.label_kind == "channel" else _labelled(None, {})
    mean = mean_confidence(t.confidences)
    duration = round(t.duration_s, 3)

    job_meta = {key: job[key] for key in JOB_KEYS if key in job}
    if "job_name" not in job_meta and t.job_name:
        job_meta["job_name"] = t.job_name
    summary = {
        "summary_version": SUMMARY_VERSION,
        "job": job_meta,
        "words": len(t.words),
        "duration_s": duration,
        "mean_confidence": mean,
        "low_confidence_threshold": low_confidence_threshold,
        "low_confidence_words": [
            {
                "word": t.words[i],
                "start_time": round(t.starts[i], 3),
                "end_time": round(t.ends[i], 3),
                "confidence": round(t.confidences[i], 4),
            }
            for i in low
        ],
        "speakers": speakers,
        "channels": channels,
        "phi_entities": t.phi_categories,
        "alternatives_segments": t.alternative_segments,
        "alternatives_total": t.alternatives,
    }
    stats = {
        "words": len(t.words),
        "duration_s": duration,
        "speakers": speakers["count"],
        "channels": channels["count"],
        "mean_confidence": mean,
        "low_confidence_words": len(low),
    }
    return summary, stats


ROW_LISTS = ("low_confidence_words", "phi_spans")  # long top-level lists: a row a line


def render_summary(summary: Mapping[str, Any]) -> str:
    """Pretty, key-sorted JSON; job settings of other types (Decimal, datetime) as text.

    The long lists (ROW_LISTS: hundreds of rows in a long recording) are written one
    row per line: as readable, and json's C encoder does them (indented output is
    otherwise encoded in pure Python, several times slower).
    """
    text = json.dumps(
        {**summary, **{key: [] for key in ROW_LISTS if key in summary}},
        indent=2,
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    for key in ROW_LISTS:
        rows = summary.get(key)
        if rows:
            body = json.dumps(rows, sort_keys=True, ensure_ascii=False)[1:-1]
            # `}, {"` never occurs inside an encoded string (its quotes are escaped).
            body = "    " + body.replace('}, {"', '},\n    {"')
            # Two-space indent: the top-level key, never one nested in the job settings.
            empty = f'\n  "{key}": []'
            text = text.replace(empty, f'\n  "{key}": [\n{body}\n  ]', 1)
    return text + "\n"


def _by_label(t: Transcript, turns: list[Turn]) -> dict[str, dict[str, Any]]:
    words = Counter(t.word_labels)
    talk = dict.fromkeys(range(len(t.labels)), 0.0)
    for turn in turns:
        if turn.label >= 0:
            talk[turn.label] += t.ends[turn.stop - 1] - t.starts[turn.first]
    return {
        label: {
            "name": label_name(label),
            "words": words.get(i, 0),
            "talk_time_s": round(talk[i], 3),
        }
        for i, label in enumerate(t.labels)
    }


def _labelled(t: Transcript | None, by_label: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """count: labels that said at least one word; declared: what the file claims."""
    return {
        "count": sum(1 for v in by_label.values() if v["words"]),
        "declared": t.declared_labels if t is not None else None,
        "by_label": by_label,
    }
