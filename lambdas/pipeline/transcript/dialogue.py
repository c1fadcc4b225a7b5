"""dialogue.txt and turns.json: who said what, from when to when.

One line (and one turns.json entry) per speaker turn, ``[hh:mm:ss - hh:mm:ss] Speaker 1:
text`` (``Channel 1`` with channel identification; channel turns interleave in time
order, as the top-level items do). Without either, one line per sentence. A word
below the low-confidence threshold is followed by ``(?)`` in dialogue.txt (before any
punctuation attached to it) so a reader sees which words to check against the audio;
turns.json lists those words with their times and confidences instead.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from json.encoder import encode_basestring as _string  # json.dumps' own, for str

from .model import Transcript, Turn, label_name, sentences
from .summary import mean_confidence
from .timecodes import clock

UNLABELLED = "Unknown speaker"  # a word no segment could be matched to (never seen in practice)
LOW_CONFIDENCE_MARK = "(?)"
TURNS_VERSION = 1


def dialogue_turns(transcript: Transcript, runs: list[Turn]) -> list[Turn]:
    """The turns both documents show: labelled runs, else each sentence (label -1)."""
    if transcript.label_kind:
        return runs
    return [Turn(-1, s.start, s.stop) for s in sentences(transcript)]


def marked_display(transcript: Transcript, low: Iterable[int]) -> list[str]:
    """Each word as displayed, with LOW_CONFIDENCE_MARK after the low-confidence ones."""
    display = transcript.display
    marked: list[str] | None = None
    for i in low:
        if marked is None:
            marked = list(display)
        shown, word = display[i], transcript.words[i]
        at = shown.find(word) + len(word) if word else len(shown)
        marked[i] = f"{shown[:at]}{LOW_CONFIDENCE_MARK}{shown[at:]}"
    return display if marked is None else marked


def dialogue_lines(transcript: Transcript, turns: list[Turn], display: list[str]) -> list[str]:
    """dialogue.txt's line for each of ``turns``; ``display``: the words as marked_display
    gives them."""
    starts, ends = transcript.starts, transcript.ends
    names = [f" {label_name(label)}:" for label in transcript.labels]
    unlabelled = f" {UNLABELLED}:" if transcript.label_kind else ""
    return [
        f"[{clock(starts[t.first])} - {clock(ends[t.stop - 1])}]"
        f"{names[t.label] if t.label >= 0 else unlabelled} {' '.join(display[t.first : t.stop])}"
        for t in turns
    ]


def join_dialogue(transcript: Transcript, lines: list[str]) -> str:
    """dialogue.txt from the lines of all its turns."""
    if transcript.emulated_note and lines:
        lines = [f"[{transcript.emulated_note}]", *lines]
    return "\n".join(lines) + "\n" if lines else ""


def turn_rows(transcript: Transcript, turns: list[Turn], low: Collection[int]) -> list[str]:
    """turns.json's line (one encoded object) for each of ``turns``.

    Written with f-strings around json's own string encoder, byte for byte what json.dumps
    writes for the same dict (keys in this order, ", " and ": " separators, floats by
    repr): building a dict per turn and encoding them took three times as long.
    """
    t = transcript
    names = [_string(label_name(label)) for label in t.labels]
    labels = [_string(label) for label in t.labels]
    low_sorted = sorted(low)
    rows = []
    k = 0  # walks low_sorted alongside the turns (both in word order)
    for turn in turns:
        first, stop = turn.first, turn.stop
        while k < len(low_sorted) and low_sorted[k] < first:
            k += 1
        in_turn = []
        while k < len(low_sorted) and low_sorted[k] < stop:
            i = low_sorted[k]
            in_turn.append(
                f'{{"word": {_string(t.words[i])}, "start": {_number(round(t.starts[i], 3))}, '
                f'"end": {_number(round(t.ends[i], 3))}, '
                f'"confidence": {_number(round(t.confidences[i], 4))}}}'
            )
            k += 1
        named = turn.label >= 0 and bool(t.labels[turn.label])
        rows.append(
            f'{{"start": {_number(round(t.starts[first], 3))}, '
            f'"end": {_number(round(t.ends[stop - 1], 3))}, '
            f'"label": {labels[turn.label] if turn.label >= 0 else "null"}, '
            f'"name": {names[turn.label] if named else "null"}, '
            f'"text": {_string(" ".join(t.display[first:stop]))}, '
            f'"words": {stop - first}, '
            f'"mean_confidence": {_number(mean_confidence(t.confidences[first:stop]))}, '
            f'"low_confidence_words": [{", ".join(in_turn)}]}}'
        )
    return rows


def _number(value: float) -> str:
    """A float as json.dumps writes it: repr when finite, else NaN/Infinity/-Infinity."""
    return repr(value) if value - value == 0 else json.dumps(value)


def join_turns(transcript: Transcript, rows: list[str], *, threshold: float) -> str:
    """turns.json from the rows of all its turns."""
    t = transcript
    header = {
        "turns_version": TURNS_VERSION,
        "job_name": t.job_name,
        "label_kind": t.label_kind or None,
        "low_confidence_threshold": threshold,
        "emulated": bool(t.emulated_note),
        "emulated_note": t.emulated_note or None,
    }
    head = json.dumps(header, ensure_ascii=False, sort_keys=True)[:-1]
    if not rows:
        return f'{head}, "turns": []}}\n'
    body = ",\n".join(rows)
    return f'{head}, "turns": [\n{body}\n]}}\n'
