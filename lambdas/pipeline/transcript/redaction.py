"""PHI redaction: Transcribe Medical labels PHI (results.entities), it never removes it.

Each entity is matched to the words it covers, and every covered run of words becomes
one pseudo-word ``[PHI: CATEGORY]`` in a redacted copy of the transcript, which the
ordinary renderers then turn into the ``*.redacted.*`` documents. Matching:

1. by time and content: among the words overlapping the entity's [startTime, endTime]
   (a little widened), the run whose words equal the entity's content (case, and
   punctuation at the ends of tokens, ignored);
2. by content everywhere: every other run of words equal to an entity's content is
   redacted too, so a name labelled once is hidden wherever it recurs (the price: a
   common word labelled as PHI, such as a number, is hidden everywhere as well);
3. by time only: an entity whose content appears nowhere but whose time overlaps words
   has those words redacted (the safe side of a mismatch);
4. unmatched: no word by time or content. It is reported in summary.json (category
   and times), never dropped silently.

Written by hand: no library maps PHI labels onto Transcribe's items. Nothing here logs;
the report carries categories, counts and times, never content.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, count, islice
from operator import le
from typing import Any

from .model import PhiEntity, Transcript

TIME_SLACK_S = 0.25  # entity times and item times are rounded differently
_CATEGORY_JUNK = re.compile(r"[^A-Z0-9_]+")
_EDGE_PUNCTUATION = ".,?!;:\"'()[]{}<>"


@dataclass(frozen=True)
class Span:
    first: int  # words [first, stop)
    stop: int
    category: str


@dataclass
class PhiReport:
    """What redaction found, for summary.json: categories, counts and times only."""

    entities: int = 0
    matched_by_time_and_content: int = 0
    matched_by_content_elsewhere: int = 0
    matched_by_time_only: int = 0
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    redacted_words: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "entities": self.entities,
            "matched_by_time_and_content": self.matched_by_time_and_content,
            "matched_by_content_elsewhere": self.matched_by_content_elsewhere,
            "matched_by_time_only": self.matched_by_time_only,
            "unmatched": self.unmatched,
            "redacted_spans": len(self.spans),
            "redacted_words": self.redacted_words,
            "spans": self.spans,
        }


def placeholder(category: str) -> str:
    """``[PHI: NAME]`` from "NAME", "PHI-Personal" -> ``[PHI: PERSONAL]``; only [A-Z0-9_]."""
    name = _CATEGORY_JUNK.sub("_", category.upper()).strip("_")
    name = name.removeprefix("PHI_") if name != "PHI_" else ""
    return f"[PHI: {name}]" if name and name != "PHI" else "[PHI]"


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t in (w.strip(_EDGE_PUNCTUATION).lower() for w in text.split()) if t)


def find_spans(transcript: Transcript) -> tuple[list[Span], PhiReport]:
    """Word spans to redact (sorted, not overlapping) and the report."""
    t = transcript
    report = PhiReport(entities=len(t.entities))
    if not t.entities:
        return [], report
    lowered = list(map(str.lower, t.words))  # items hold no punctuation: no strip needed
    by_first: dict[str, list[int]] = {}
    entity_tokens = [_tokens(e.content) for e in t.entities]
    contents = set(entity_tokens) - {()}
    firsts = {c[0] for c in contents}
    # The words that begin some entity's content, found by C loops (compress over a map):
    # a Python loop over every word costs more than the rest of the matching.
    for i in compress(count(), map(firsts.__contains__, lowered)):
        by_first.setdefault(lowered[i], []).append(i)
    starts = t.starts
    ordered = all(map(le, starts, islice(starts, 1, None)))
    raw: list[Span] = []
    category_of: dict[tuple[str, ...], str] = {}
    for entity, tokens in zip(t.entities, entity_tokens, strict=True):
        category_of.setdefault(tokens, entity.category)
        window = _window(t, entity, ordered)
        found = _find_in(lowered, tokens, window) if tokens else None
        if found is not None:
            report.matched_by_time_and_content += 1
            raw.append(Span(found, found + len(tokens), entity.category))
            continue
        elsewhere = tokens and _occurrences(lowered, tokens, by_first)
        if elsewhere:
            report.matched_by_content_elsewhere += 1
        elif window and window.start < window.stop:
            report.matched_by_time_only += 1
            raw.append(Span(window.start, window.stop, entity.category))
        else:
            report.unmatched.append(
                {
                    "category": entity.category,
                    "start_time": _rounded(entity.start),
                    "end_time": _rounded(entity.end),
                }
            )
    for tokens in contents:  # step 2: every occurrence of every labelled content
        for first in _occurrences(lowered, tokens, by_first):
            raw.append(Span(first, first + len(tokens), category_of[tokens]))
    spans = _merged(raw)
    report.spans = [
        {
            "category": s.category,
            "start_time": round(t.starts[s.first], 3),
            "end_time": round(t.ends[s.stop - 1], 3),
        }
        for s in spans
    ]
    report.redacted_words = sum(s.stop - s.first for s in spans)
    return spans, report


def redact(transcript: Transcript, spans: list[Span]) -> Transcript:
    """A copy of the transcript with each span collapsed into one ``[PHI: ...]`` word.

    The pseudo-word keeps the span's times, its first word's label, its lowest
    confidence, and the punctuation that followed its last word.
    """
    return redact_with_source(transcript, spans)[0]


def redact_with_source(transcript: Transcript, spans: list[Span]) -> tuple[Transcript, list[int]]:
    """redact()'s copy, and for each of its words the original word it is (-1: a placeholder),
    so that a renderer can reuse what it made of the turns redaction left alone."""
    t = transcript
    if not spans:
        return t, list(range(len(t.words)))
    source: list[int] = []
    words: list[str] = []
    display: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    confidences: list[float] = []
    word_labels: list[int] = []
    new_index: list[int] = []  # per old word: its index in the copy
    at = 0
    for span in [*spans, Span(len(t.words), len(t.words), "")]:
        base = len(words)
        new_index.extend(range(base, base + span.first - at))
        source.extend(range(at, span.first))
        words += t.words[at : span.first]
        display += t.display[at : span.first]
        starts += t.starts[at : span.first]
        ends += t.ends[at : span.first]
        confidences += t.confidences[at : span.first]
        word_labels += t.word_labels[at : span.first]
        if span.first == span.stop:
            break
        last = span.stop - 1
        tag = placeholder(span.category)
        shown, word = t.display[last], t.words[last]
        tail = shown[shown.find(word) + len(word) :] if word and word in shown else ""
        words.append(tag)
        display.append(tag + tail)
        starts.append(t.starts[span.first])
        ends.append(t.ends[last])
        known = [c for c in t.confidences[span.first : span.stop] if not math.isnan(c)]
        confidences.append(min(known) if known else math.nan)
        word_labels.append(t.word_labels[span.first])
        new_index.extend([len(words) - 1] * (span.stop - span.first))
        source.append(-1)
        at = span.stop
    sentence_ends = sorted({new_index[e] for e in t.sentence_ends if _ends(display, new_index[e])})
    copy = Transcript(
        job_name=t.job_name,
        text=" ".join(display),
        words=words,
        display=display,
        starts=starts,
        ends=ends,
        confidences=confidences,
        sentence_ends=sentence_ends,
        label_kind=t.label_kind,
        labels=t.labels,
        word_labels=word_labels,
        declared_labels=t.declared_labels,
        phi_categories=t.phi_categories,
        alternative_segments=t.alternative_segments,
        alternatives=t.alternatives,
        emulated_note=t.emulated_note,
        entities=(),  # the copy holds no PHI content
    )
    return copy, source


def _ends(display: list[str], index: int) -> bool:
    return display[index][-1:] in ".?!"


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _window(t: Transcript, entity: PhiEntity, ordered: bool) -> range | None:
    """Words overlapping the entity's time (widened by TIME_SLACK_S), None without times."""
    if math.isnan(entity.start) or math.isnan(entity.end):
        return None
    low, high = entity.start - TIME_SLACK_S, entity.end + TIME_SLACK_S
    if ordered:  # as real files are: bisect, then take in a word that began before `low`
        first, stop = bisect_left(t.starts, low), bisect_right(t.starts, high)
        if first > 0 and t.ends[first - 1] > low:
            first -= 1
        return range(first, stop)
    inside = [
        i for i, (s, e) in enumerate(zip(t.starts, t.ends, strict=True)) if s < high and e > low
    ]
    return range(inside[0], inside[-1] + 1) if inside else range(0)


def _find_in(lowered: list[str], tokens: tuple[str, ...], window: range | None) -> int | None:
    if window is None:
        return None
    n = len(tokens)
    for first in range(window.start, window.stop - n + 1):
        if tuple(lowered[first : first + n]) == tokens:
            return first
    return None


def _occurrences(
    lowered: list[str], tokens: tuple[str, ...], by_first: dict[str, list[int]]
) -> list[int]:
    n = len(tokens)
    return [i for i in by_first.get(tokens[0], ()) if tuple(lowered[i : i + n]) == tokens]


def _merged(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.first, -s.stop)):
        if out and span.first < out[-1].stop:
            if span.stop > out[-1].stop:
                out[-1] = Span(out[-1].first, span.stop, out[-1].category)
            continue
        out.append(span)
    return out
