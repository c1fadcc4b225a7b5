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
from typing import Any

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


def render_dialogue(transcript: Transcript, turns: list[Turn], display: list[str]) -> str:
    """``display``: the words as marked_display gives them."""
    return join_dialogue(transcript, dialogue_lines(transcript, turns, display))


def dialogue_lines(transcript: Transcript, turns: list[Turn], display: list[str]) -> list[str]:
    """dialogue.txt's line for each of ``turns`` (see render_dialogue)."""
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


def render_turns(
    transcript: Transcript, turns: list[Turn], low: Collection[int], *, threshold: float
) -> str:
    """turns.json: a header object, then one turn per line."""
    rows = turn_rows(transcript, turns, low)
    return join_turns(transcript, rows, threshold=threshold)


def turn_rows(transcript: Transcript, turns: list[Turn], low: Collection[int]) -> list[str]:
    """turns.json's line (an encoded object) for each of ``turns``.

    The turns are encoded by one json.dumps call (the C encoder; a call per turn costs
    more than the rest of the document), then split into rows at each turn's first key:
    ``{"start"`` cannot occur inside an encoded string, whose quotes are escaped, and the
    low-confidence words nested in a turn begin with another key.
    """
    t = transcript
    names = [label_name(label) for label in t.labels]
    low_sorted = sorted(low)
    rows = []
    k = 0  # walks low_sorted alongside the turns (both in word order)
    for turn in turns:
        while k < len(low_sorted) and low_sorted[k] < turn.first:
            k += 1
        in_turn = []
        while k < len(low_sorted) and low_sorted[k] < turn.stop:
            i = low_sorted[k]
            in_turn.append(
                {
                    "word": t.words[i],
                    "start": round(t.starts[i], 3),
                    "end": round(t.ends[i], 3),
                    "confidence": round(t.confidences[i], 4),
                }
            )
            k += 1
        label = t.labels[turn.label] if turn.label >= 0 else None
        row: dict[str, Any] = {
            "start": round(t.starts[turn.first], 3),
            "end": round(t.ends[turn.stop - 1], 3),
            "label": label,
            "name": names[turn.label] if label else None,
            "text": " ".join(t.display[turn.first : turn.stop]),
            "words": turn.stop - turn.first,
            "mean_confidence": mean_confidence(t.confidences[turn.first : turn.stop]),
            "low_confidence_words": in_turn,
        }
        rows.append(row)
    if not rows:
        return []
    pieces = json.dumps(rows, ensure_ascii=False)[1:-1].split(_BETWEEN_ROWS)
    last = len(pieces) - 1
    return [
        f"{'' if i == 0 else _ROW_START}{piece}{'' if i == last else '}'}"
        for i, piece in enumerate(pieces)
    ]


_ROW_START = '{"start": '
_BETWEEN_ROWS = "}, " + _ROW_START


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
