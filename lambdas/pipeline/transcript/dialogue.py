"""dialogue.txt: who said what, when.

``[hh:mm:ss] Speaker 1: text`` per speaker turn (``Channel 1`` with channel
identification; channel turns interleave in time order, as the top-level items
do). Without either, one ``[hh:mm:ss] text`` line per sentence.
"""

from __future__ import annotations

from .model import Transcript, Turn, label_name, sentences
from .timecodes import clock

UNLABELLED = "Unknown speaker"  # a word no segment could be matched to (never seen in practice)


def render_dialogue(transcript: Transcript, turns: list[Turn]) -> str:
    display, starts = transcript.display, transcript.starts
    if transcript.label_kind:
        names = [label_name(label) for label in transcript.labels]
        lines = [
            f"[{clock(starts[t.first])}] {names[t.label] if t.label >= 0 else UNLABELLED}: "
            f"{' '.join(display[t.first : t.stop])}"
            for t in turns
        ]
    else:
        lines = [
            f"[{clock(starts[s.start])}] {' '.join(display[s.start : s.stop])}"
            for s in sentences(transcript)
        ]
    return "\n".join(lines) + "\n" if lines else ""
