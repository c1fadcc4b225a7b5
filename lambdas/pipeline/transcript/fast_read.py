"""The fast read of a well-formed transcript: msgspec decodes straight into typed structs.

msgspec (a compiled JSON decoder) reads only the members declared below, skips the rest
without building them, and turns Transcribe's string numbers into floats as it goes: the
decode takes about a third of a plain ``json.loads`` of a four-hour file, where the stdlib
reader in model.py (json.loads with an object hook) takes about as long as ``json.loads``.

It is strict on purpose. Anything the structs do not describe exactly (a missing or null
time on a word, a number that is a bool, an item without alternatives, invalid JSON...)
raises ``NotWellFormed``, and model.parse_transcript then reads the file with the tolerant
reader, whose rules and error messages stay the only ones. Both readers feed the same
columns to model._transcript, so a file both accept gives the same Transcript (a test runs
every transcript the suite uses through both).

Nothing here logs; msgspec's error texts are dropped, never raised on.
"""

from __future__ import annotations

import math
from itertools import compress
from operator import not_
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import Raw, Struct, field

from .emulation import EMULATED_MARKER_KEY

if TYPE_CHECKING:
    from .model import _Columns

_NAN = float("nan")
_HOOKED = frozenset({"type", "speaker_label", "alternatives"})  # keys model's hook acts on


class NotWellFormed(Exception):
    """The fast read declines the file: the tolerant reader takes it."""


# gc=False: these structs hold only strings, floats and lists of each other (no cycles), so
# the garbage collector need not track the ~100,000 of them a four-hour file makes.
class _Alternative(Struct, gc=False):
    content: str
    confidence: float = _NAN  # punctuation may carry none; a null falls back


class _Item(Struct, gc=False):
    type: str
    alternatives: tuple[_Alternative]  # exactly one in results.items (others: see segments)
    start_time: float = _NAN  # punctuation has no times; a word without them falls back
    end_time: float = _NAN
    speaker_label: str | None = None
    channel_label: str | None = None


class _SpeakerSegment(Struct, gc=False):
    speaker_label: str
    start_time: float | None = None
    end_time: float | None = None
    items: Raw = Raw(b"")  # present or not; its entries (times only) are never needed


class _SpeakerLabels(Struct, gc=False):
    segments: list[_SpeakerSegment] | None = None
    speakers: Any = None


class _Channel(Struct, gc=False):
    channel_label: Any = None
    items: list[_Item] | None = None


class _ChannelLabels(Struct, gc=False):
    channels: list[_Channel] | None = None
    number_of_channels: Any = None


class _AlternativeSegment(Struct, gc=False):
    alternatives: list[Raw]


class _Results(Struct, gc=False):
    items: list[_Item] | None = None
    transcripts: list[Any] | None = None
    speaker_labels: _SpeakerLabels | None = None
    channel_labels: _ChannelLabels | None = None
    segments: list[_AlternativeSegment] | None = None
    entities: list[Any] | None = None


class _Document(Struct, gc=False):
    results: _Results
    jobName: Any = None  # the file's own (camelCase) name
    emulated: Any = field(default=None, name=EMULATED_MARKER_KEY)


# strict=False: Transcribe writes numbers as strings ("0.49"), which this reads as floats.
_DECODER = msgspec.json.Decoder(_Document, strict=False)


def read_well_formed(data: bytes | str, columns: _Columns) -> dict[str, Any]:
    """Fill ``columns`` and return the document as model._Columns' object hook leaves it:
    items replaced by their markers, speaker segments by (start, end, label) tuples,
    results.segments by their alternative counts. NotWellFormed when the file is not one
    this read describes exactly."""
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise NotWellFormed from None
    results = doc.results
    if not _plain(results.transcripts) or not _plain(results.entities):
        raise NotWellFormed
    out: dict[str, Any] = {
        "items": None if results.items is None else _add_items(results.items, columns),
        "transcripts": results.transcripts,
        "entities": results.entities,
    }
    if results.speaker_labels is not None:
        out["speaker_labels"] = _speaker_labels(results.speaker_labels)
    if results.channel_labels is not None:
        out["channel_labels"] = _channel_labels(results.channel_labels, columns)
    if results.segments is not None:
        out["segments"] = [len(s.alternatives) for s in results.segments]
    columns.checked = True
    return {"results": out, "jobName": doc.jobName, EMULATED_MARKER_KEY: doc.emulated}


def _add_items(items: list[_Item], columns: _Columns) -> list[int]:
    """Append the items' fields to the columns; their markers (see model._Columns).

    A comprehension per column (each a tight loop) rather than one loop over the items:
    several times faster for the ~50,000 items of four hours.
    """
    base_words, base_marks = len(columns.words), len(columns.marks)
    is_word = [item.type != "punctuation" for item in items]
    spoken = list(compress(items, is_word))
    starts = [item.start_time for item in spoken]
    ends = [item.end_time for item in spoken]
    if _has_nan(starts) or _has_nan(ends):
        raise NotWellFormed  # a word without a time (or "NaN"): the tolerant reader fills it
    at = list(compress(range(len(items)), map(not_, is_word)))  # the punctuation's places
    try:
        words = [item.alternatives[0].content for item in spoken]
        confidences = [item.alternatives[0].confidence for item in spoken]
        marks = [items[i].alternatives[0].content for i in at]
    except IndexError:
        raise NotWellFormed from None  # no alternative: the tolerant reader decides
    speakers = [item.speaker_label for item in spoken]
    channels = [item.channel_label for item in spoken]
    if speakers.count(None) + channels.count(None) < 2 * len(spoken):  # newer outputs
        columns.own_labels += [
            (base_words + i, speaker, channel)
            for i, (speaker, channel) in enumerate(zip(speakers, channels, strict=True))
            if speaker is not None or channel is not None
        ]
    columns.words += words
    columns.starts += starts
    columns.ends += ends
    columns.confidences += confidences
    # The k-th mark, at place i, follows word i - k - 1 (k marks and the word precede it).
    columns.marks += zip([base_words + i - k - 1 for k, i in enumerate(at)], marks, strict=True)
    word_numbers = iter(range(base_words, base_words + len(spoken)))
    mark_numbers = iter(range(-1 - base_marks, -1 - base_marks - len(at), -1))
    return [next(word_numbers) if word else next(mark_numbers) for word in is_word]


def _plain(objects: list[Any] | None) -> bool:
    """No object the tolerant reader's hook would take for an item or a segment."""
    return not any(isinstance(o, dict) and not _HOOKED.isdisjoint(o) for o in objects or ())


def _has_nan(values: list[float]) -> bool:
    return math.isnan(sum(values))  # a NaN makes the sum NaN (so do inf and -inf together)


def _speaker_labels(labels: _SpeakerLabels) -> dict[str, Any]:
    segments = labels.segments
    if segments is not None and not all(s.items for s in segments):
        raise NotWellFormed  # a segment without items is not one to the tolerant reader
    return {
        "segments": None
        if segments is None
        else [(s.start_time, s.end_time, s.speaker_label) for s in segments],
        "speakers": labels.speakers,
    }


def _channel_labels(labels: _ChannelLabels, columns: _Columns) -> dict[str, Any]:
    channels = labels.channels
    return {
        "channels": None
        if channels is None
        else [
            {
                "channel_label": c.channel_label,
                "items": None if c.items is None else _add_items(c.items, columns),
            }
            for c in channels
        ],
        "number_of_channels": labels.number_of_channels,
    }
