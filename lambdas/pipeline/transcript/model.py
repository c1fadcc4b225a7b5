"""Read Transcribe (Medical) transcript JSON into compact, typed columns.

A well-formed file is decoded by msgspec (fast_read.py); any other goes to the
tolerant reader here: one ``json.loads``, whose ``object_hook`` moves each item's
fields into parallel lists (one entry per spoken word) as soon as the item is
parsed, and drops the item (see _Columns). Both fill the same columns, so a
four-hour transcript costs its text and a few lists, not a 50 MB tree of dicts.
The schema's traps (see ``shared/FACTS.md``) are handled here:

- numbers are strings ("0.49", "5.020", "1.0000"); entities use numbers;
- punctuation items have no times and may lack a confidence: they are attached
  to the word before them;
- ``speaker_labels.segments[].items`` carry times only: each word takes the
  speaker of the segment whose [start, end] holds its start time (else the
  nearest segment); a ``speaker_label`` on the item itself wins;
- ``channel_labels.channels[].items`` are full items while the top-level items
  carry no channel: a word takes the channel of the channel item with the same
  start time (and content), else of the nearest one; a ``channel_label`` on the
  item itself wins.

Privacy: nothing here logs, and no error message quotes transcript text.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import compress, islice, pairwise, repeat
from operator import itemgetter, le, lt, ne
from typing import Any, NamedTuple, cast

from .emulation import EMULATED_MARKER_KEY, EMULATED_NOTE
from .fast_read import NotWellFormed, read_well_formed

SENTENCE_END = frozenset(".?!")
_NO_ALTERNATIVE: dict[str, Any] = {}
_NAN = float("nan")
_first = itemgetter(0)


class TranscriptError(ValueError):
    """The transcript cannot be read. Messages name the problem, never transcript text."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript as parallel lists indexed by word (pronunciation item) number."""

    job_name: str
    text: str  # results.transcripts[0].transcript: the whole text
    words: list[str]  # each word as spoken (pronunciation content)
    display: list[str]  # each word with the punctuation that follows it attached
    starts: list[float]  # seconds
    ends: list[float]
    confidences: list[float]  # NaN where an item gave none
    sentence_ends: list[int]  # ascending indexes of words that end a sentence (. ? !)
    label_kind: str  # "speaker", "channel" or "" (no diarization)
    labels: tuple[str, ...]  # raw labels ("spk_0", "ch_1"...), indexed by word_labels
    word_labels: list[int]  # per word: index into labels, or -1 without labels
    declared_labels: int | None  # speaker_labels.speakers or channel_labels.number_of_channels
    phi_categories: dict[str, int]  # PHI entity count per category (never the content)
    alternative_segments: int  # len(results.segments)
    alternatives: int  # alternatives over all results.segments
    # A sentence when the file was written by the local emulator (the EMULATED_MARKER_KEY
    # member real Transcribe never writes), else "".
    emulated_note: str = ""
    entities: tuple[PhiEntity, ...] = ()  # results.entities, in file order

    @property
    def duration_s(self) -> float:
        """End of the last word (0.0 for silence)."""
        return max(self.ends, default=0.0)


class PhiEntity(NamedTuple):
    """A PHI label from results.entities. ``content`` is PHI: it is used to find the
    words to redact and is never written to any document, log or error."""

    category: str
    start: float  # seconds; NaN when the entity gave none
    end: float
    content: str


class Turn(NamedTuple):
    """Words [first, stop) said by one speaker (or channel) without interruption."""

    label: int  # index into Transcript.labels, -1 without labels
    first: int
    stop: int


def label_name(label: str) -> str:
    """A label as people read it: spk_0 -> Speaker 1, ch_1 -> Channel 2, others unchanged."""
    kind, _, number = label.rpartition("_")
    if number.isdigit():
        if kind == "spk":
            return f"Speaker {int(number) + 1}"
        if kind == "ch":
            return f"Channel {int(number) + 1}"
    return label


def turns(transcript: Transcript) -> list[Turn]:
    """Runs of consecutive words with the same label, in transcript (time) order."""
    labels = transcript.word_labels
    total = len(labels)
    if not total:
        return []
    changes = compress(range(1, total), map(ne, islice(labels, 1, None), labels))
    bounds = [0, *changes, total]
    return [Turn(labels[a], a, b) for a, b in pairwise(bounds)]


def sentences(transcript: Transcript) -> list[range]:
    """Word ranges of the sentences; a final unfinished one counts too."""
    total = len(transcript.words)
    bounds = [0, *(e + 1 for e in transcript.sentence_ends)]
    if bounds[-1] < total:
        bounds.append(total)
    return [range(a, b) for a, b in pairwise(bounds)]


def parse_transcript(data: bytes | str) -> Transcript:
    """Parse transcript JSON; TranscriptError when it is not a transcript.

    Errors are raised outside the handlers, so they chain nothing: the decoder's
    exception holds the whole document (``.doc``), and ``float()``'s quotes the
    value it could not read.
    """
    problem = ""
    columns = _Columns()
    try:
        doc = read_well_formed(data, columns)
    except NotWellFormed:  # the tolerant reader takes it, and words its errors
        columns = _Columns()
        doc = None
    try:
        if doc is None:
            doc = json.loads(data, object_hook=columns.object_hook)
        transcript = _transcript(doc, columns)
    except json.JSONDecodeError as exc:
        problem = f"transcript is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
    except UnicodeDecodeError as exc:
        problem = f"transcript is not UTF-8 text (byte offset {exc.start})"
    except RecursionError:
        problem = "transcript JSON is nested too deeply"
    except TranscriptError as exc:
        problem = str(exc)
    except ValueError:  # float() on a value that is not a number
        problem = "a time or confidence in the transcript is not a number"
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        problem = f"transcript JSON is malformed ({type(exc).__name__})"
    if problem:
        raise TranscriptError(problem)
    return transcript


class _Columns:
    """Item fields gathered while json.loads runs, one list per field.

    json.loads calls ``object_hook`` for every JSON object it completes, innermost
    first, and keeps what the hook returns in the object's place. Each item's
    fields go into the columns at once and the item is replaced by a marker (its
    word index, or ``-1 - k`` for the k-th punctuation mark); objects nothing needs
    become None. So the whole tree (~50 MB of dicts for four hours, 5x the file)
    never exists at once, and reading stays a single json.loads. Shapes are told
    apart by their keys; _transcript then reads the markers only from where the
    schema puts items (results.items, the channels' items).
    """

    def __init__(self) -> None:
        self.words: list[Any] = []
        self.starts: list[float | None] = []  # None where the item gave no time
        self.ends: list[float | None] = []
        self.confidences: list[float] = []  # NaN where the item gave none
        # (word index, speaker_label, channel_label) of the items that have more than
        # the four members of older outputs (newer ones label each item themselves)
        self.own_labels: list[tuple[int, Any, Any]] = []
        self.marks: list[tuple[int, Any]] = []  # (index of the word before, the mark)
        # Set by fast_read, whose structs guarantee int markers, str words and float times.
        self.checked = False
        self.object_hook = self._object_hook()

    def _object_hook(self) -> Callable[[dict[str, Any]], Any]:
        # A closure over the bound appends, tests ordered by how often they decide:
        # it runs for every object (~150,000 for four hours).
        add_word, add_confidence = self.words.append, self.confidences.append
        add_start, add_end = self.starts.append, self.ends.append
        add_labels, add_mark = self.own_labels.append, self.marks.append
        words, marks = self.words, self.marks

        def object_hook(obj: dict[str, Any]) -> Any:
            if "type" in obj:
                alternatives = obj.get("alternatives")
                if alternatives is None:
                    return None  # a flat item of an alternative transcript: not needed
                # An item of results.items or of a channel.
                best = alternatives[0] if alternatives else _NO_ALTERNATIVE
                if obj["type"] == "punctuation":
                    add_mark((len(words) - 1, best.get("content")))
                    return -len(marks)
                start: float | None
                end: float | None
                try:
                    start = float(obj["start_time"])
                    end = float(obj["end_time"])
                    confidence = float(best["confidence"])
                except (KeyError, TypeError):  # a time or confidence missing (or null)
                    start, end, confidence = _tolerant_numbers(obj, best)
                add_word(best.get("content"))
                add_start(start)
                add_end(end)
                add_confidence(confidence)
                if len(obj) != 4:  # more than start, end, alternatives, type: labels?
                    index = len(words) - 1
                    add_labels((index, obj.get("speaker_label"), obj.get("channel_label")))
                return len(words) - 1
            if "speaker_label" in obj:
                if "items" in obj:  # a speaker segment
                    return (obj.get("start_time"), obj.get("end_time"), obj["speaker_label"])
                return None  # one of its items: times only
            if "alternatives" in obj:  # results.segments[]: how many alternatives
                alternatives = obj["alternatives"]
                return len(alternatives) if isinstance(alternatives, list) else 0
            return obj

        return object_hook


def _tolerant_numbers(
    item: dict[str, Any], best: dict[str, Any]
) -> tuple[float | None, float | None, float]:
    """Start, end (None when missing: see _times) and confidence (NaN when missing)."""
    start, end, confidence = (
        item.get("start_time"),
        item.get("end_time"),
        best.get("confidence"),
    )
    return (
        None if start is None else float(start),
        None if end is None else float(end),
        _NAN if confidence is None else float(confidence),
    )


def _transcript(doc: Any, columns: _Columns) -> Transcript:
    if not isinstance(doc, dict):
        raise TranscriptError("transcript JSON is not an object")
    results = doc.get("results")
    if not isinstance(results, dict):
        raise TranscriptError("transcript JSON has no 'results' object")
    markers = _list(results, "items")
    checked = columns.checked
    if not checked and not {*map(type, markers)} <= {int}:
        raise TranscriptError("results.items holds an entry that is not an item")
    words, starts, ends, confidences, own_speakers, own_channels, marks = _top_level(
        columns, markers
    )
    if not checked and not {*map(type, words)} <= {str}:
        words = ["" if w is None else str(w) for w in words]
    filled_starts, filled_ends = (
        (cast("list[float]", starts), cast("list[float]", ends))
        if checked
        else _times(starts, ends)
    )

    display = list(words)
    sentence_ends: list[int] = []
    lead = ""
    for word, mark in marks:
        if not isinstance(mark, str):
            continue
        if word < 0:  # punctuation before any word
            lead += mark
            continue
        display[word] += mark
        if mark in SENTENCE_END and (not sentence_ends or sentence_ends[-1] != word):
            sentence_ends.append(word)
    if lead and display:
        display[0] = lead + display[0]

    kind, labels, word_labels, declared = _labels(
        results,
        columns,
        words=words,
        starts=filled_starts,
        own_speakers=own_speakers,
        own_channels=own_channels,
    )
    transcripts = _list(results, "transcripts")
    text = transcripts[0].get("transcript") if transcripts else None
    if not isinstance(text, str):
        text = " ".join(display)
    entities = _entities(_list(results, "entities"))
    phi = Counter(e.category for e in entities)
    segments = _list(results, "segments")  # each an int: see _Columns
    job_name = doc.get("jobName")
    return Transcript(
        job_name=job_name if isinstance(job_name, str) else "",
        text=text,
        words=words,
        display=display,
        starts=filled_starts,
        ends=filled_ends,
        confidences=confidences,
        sentence_ends=sentence_ends,
        label_kind=kind,
        labels=labels,
        word_labels=word_labels,
        declared_labels=declared,
        phi_categories=dict(sorted(phi.items())),
        alternative_segments=len(segments),
        alternatives=sum(n for n in segments if isinstance(n, int)),
        emulated_note=_emulated_note(doc.get(EMULATED_MARKER_KEY)),
        entities=entities,
    )


def _emulated_note(marker: Any) -> str:
    if not marker:
        return ""
    return marker if isinstance(marker, str) else EMULATED_NOTE


def _entities(raw: list[Any]) -> tuple[PhiEntity, ...]:
    """PHI entities with numeric times (NaN where missing); entries that are not objects skipped."""
    out = []
    for entity in raw:
        if not isinstance(entity, dict) or not entity:
            continue
        out.append(
            PhiEntity(
                category=str(entity.get("category") or "unknown"),
                start=_seconds(entity.get("startTime")),
                end=_seconds(entity.get("endTime")),
                content=str(entity.get("content") or ""),
            )
        )
    return tuple(out)


def _seconds(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return _NAN
    return float(value)  # a ValueError here becomes parse_transcript's "not a number"


def _top_level(columns: _Columns, markers: list[int]) -> tuple[list[Any], ...]:
    """results.items' own words: columns (words, starts, ends, confidences, own speaker
    and channel labels) and marks (index of the word before, mark).

    Usually every item read was a top-level one and the columns are used as they
    are; a channel file also has its items once per channel: keep results.items'.
    """
    c = columns
    speakers, channels = _own_labels(c.own_labels, len(c.words))
    fields = [c.words, c.starts, c.ends, c.confidences, speakers, channels]
    if len(markers) == len(c.words) + len(c.marks):  # every item read is in results.items
        return (*fields, c.marks)
    kept: list[int] = []
    marks: list[tuple[int, Any]] = []
    for marker in markers:
        if marker >= 0:
            kept.append(marker)
        else:
            marks.append((len(kept) - 1, c.marks[-1 - marker][1]))
    # The hook numbers words in file order: a bare number in results.items breaks the order
    # or points past the words read (it is not an item, and must not read as one).
    if kept and (kept[-1] >= len(c.words) or not all(map(lt, kept, islice(kept, 1, None)))):
        raise TranscriptError("results.items holds an entry that is not an item")
    return (*([column[i] for i in kept] if column else [] for column in fields), marks)


def _own_labels(own_labels: list[tuple[int, Any, Any]], count: int) -> tuple[list[Any], list[Any]]:
    """Per word, the speaker and the channel label its item carried (None where it
    carried none); two empty lists when no item carried any (older outputs)."""
    if not any(speaker or channel for _, speaker, channel in own_labels):
        return [], []
    speakers: list[Any] = [None] * count
    channels: list[Any] = [None] * count
    for index, speaker, channel in own_labels:
        speakers[index], channels[index] = speaker, channel
    return speakers, channels


def _list(obj: dict[str, Any], key: str, where: str = "results") -> list[Any]:
    """obj[key] as a list (missing or null: empty)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TranscriptError(f"{where}.{key} is not a list")
    return value


def _labels(
    results: dict[str, Any],
    columns: _Columns,
    *,
    words: list[str],
    starts: list[float],
    own_speakers: list[Any],
    own_channels: list[Any],
) -> tuple[str, tuple[str, ...], list[int], int | None]:
    """(kind, labels, label index per word, declared count) from what the file has."""
    speaker_labels = results.get("speaker_labels")
    if isinstance(speaker_labels, dict) or any(own_speakers):
        speaker_labels = speaker_labels if isinstance(speaker_labels, dict) else {}
        seg_starts, seg_ends, seg_labels = _segments(
            _list(speaker_labels, "segments", "speaker_labels")
        )
        raw = _own_or(own_speakers, lambda: _by_segment(seg_starts, seg_ends, seg_labels, starts))
        return _indexed("speaker", {*seg_labels, *raw}, raw, speaker_labels.get("speakers"))
    channel_labels = results.get("channel_labels")
    if isinstance(channel_labels, dict) or any(own_channels):
        channel_labels = channel_labels if isinstance(channel_labels, dict) else {}
        channels = _list(channel_labels, "channels", "channel_labels")
        names, channel_words = _channel_words(channels, columns)
        raw = _own_or(own_channels, lambda: _by_channel_item(channel_words, words, starts))
        declared = channel_labels.get("number_of_channels")
        return _indexed("channel", {*names, *raw}, raw, declared)
    return "", (), [-1] * len(starts), None


def _segments(segments: list[Any]) -> tuple[list[float], list[float], list[Any]]:
    """Starts, ends and labels of the complete speaker segments, sorted by start."""
    rows = [
        (float(start), float(end), label)
        for start, end, label in (s for s in segments if isinstance(s, tuple))
        if start is not None and end is not None
    ]
    rows.sort(key=_first)  # already in order in real files: a linear check
    starts, ends, labels = zip(*rows, strict=True) if rows else ((), (), ())
    return list(starts), list(ends), list(labels)


def _channel_words(
    channels: list[Any], columns: _Columns
) -> tuple[list[str], list[tuple[float, Any, str]]]:
    """Channel names, and (start, content, channel) of every timed word of every channel."""
    names: list[str] = []
    channel_words: list[tuple[float, Any, str]] = []
    for channel in channels:
        label = channel.get("channel_label") if isinstance(channel, dict) else None
        if not isinstance(label, str):
            continue
        names.append(label)
        for marker in channel.get("items") or ():
            if isinstance(marker, int) and marker >= 0:
                start = columns.starts[marker]
                if start is not None:
                    channel_words.append((start, columns.words[marker], label))
    return names, channel_words


def _times(starts: list[float | None], ends: list[float | None]) -> tuple[list[float], list[float]]:
    """Times with the gaps filled: a word without times takes the previous word's end."""
    if None not in starts and None not in ends:
        return cast("list[float]", starts), cast("list[float]", ends)
    filled_starts: list[float] = []
    filled_ends: list[float] = []
    last = 0.0
    for given_start, given_end in zip(starts, ends, strict=True):
        start = last if given_start is None else given_start
        last = start if given_end is None else given_end
        filled_starts.append(start)
        filled_ends.append(last)
    return filled_starts, filled_ends


def _label_order(label: str) -> tuple[int, str]:
    _, _, number = label.rpartition("_")
    return (int(number) if number.isdigit() else 1 << 30, label)


def _own_or(own: list[Any], fallback: Callable[[], list[Any]]) -> list[Any]:
    """The label each item carries itself (newer outputs), else the fallback's."""
    if not any(own):
        return fallback()
    if None not in own:
        return own
    return [f if o is None else o for o, f in zip(own, fallback(), strict=True)]


def _indexed(
    kind: str, names: set[Any], raw: list[Any], declared: Any
) -> tuple[str, tuple[str, ...], list[int], int | None]:
    labels = tuple(sorted((n for n in names if isinstance(n, str)), key=_label_order))
    index: dict[Any, int] = {label: i for i, label in enumerate(labels)}
    index[None] = -1
    word_labels = list(map(index.__getitem__, raw))
    return kind, labels, word_labels, declared if isinstance(declared, int) else None


def _by_segment(
    seg_starts: list[float], seg_ends: list[float], seg_labels: list[Any], starts: list[float]
) -> list[Any]:
    """Speaker label per word: the segment holding its start time, else the nearest one.

    Each segment claims the words whose start lies in its [start, end], found by
    bisecting the (sorted) word starts: O((segments + words) log words), and no
    per-word Python work unless a word falls between segments.
    """
    word_count = len(starts)
    if not seg_starts:
        return [None] * word_count
    order = None
    if not all(map(le, starts, islice(starts, 1, None))):  # items come in time order; be safe
        order = sorted(range(word_count), key=starts.__getitem__)
        starts = [starts[i] for i in order]
    out: list[Any] = [None] * word_count
    for start, end, label in zip(seg_starts, seg_ends, seg_labels, strict=True):
        first, stop = bisect_left(starts, start), bisect_right(starts, end)
        out[first:stop] = repeat(label, stop - first)
    if None in out:  # words between segments: the nearest segment
        last = len(seg_starts) - 1
        for i in [i for i, label in enumerate(out) if label is None]:
            t = starts[i]
            k = bisect_right(seg_starts, t)  # seg_starts[k - 1] <= t < seg_starts[k]
            if k > last or (k and t - seg_ends[k - 1] <= seg_starts[k] - t):
                k -= 1
            out[i] = seg_labels[k]
    if order is not None:
        unsorted: list[Any] = [None] * word_count
        for position, i in enumerate(order):
            unsorted[i] = out[position]
        out = unsorted
    return out


def _by_channel_item(
    channel_items: list[tuple[float, Any, str]], words: list[str], starts: list[float]
) -> list[Any]:
    """Channel label per top-level word, found by start time (and content) among channel items."""
    if not channel_items:
        return [None] * len(starts)
    exact = {(start, content): label for start, content, label in channel_items}
    timeline = sorted(((start, label) for start, _, label in channel_items), key=_first)
    times = [t for t, _ in timeline]
    out = []
    for word, t in zip(words, starts, strict=True):
        label = exact.get((t, word))
        if label is None:  # no channel item starts then: the nearest one in time
            k = bisect_right(times, t)
            before = timeline[k - 1] if k else timeline[0]
            after = timeline[k] if k < len(timeline) else timeline[-1]
            label = before[1] if t - before[0] <= after[0] - t else after[1]
        out.append(label)
    return out
