"""captions.vtt and captions.srt: subtitle cues from the words and their times.

A cue holds at most 2 lines of at most 42 characters and spans at most 7 s
(from its first word's start to its last word's end). Words are never split: a
single word longer than a line, or than 7 s, gets a cue of its own. Cues break
at the end of every sentence and at every speaker (or channel) change; a
sentence too long for one cue is cut at its commas where the pieces fit, else
word by word. The first cue of each turn starts with the speaker's name
("Speaker 1: "); the name counts toward the line's 42 characters.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import NamedTuple

from .model import Transcript, Turn, label_name
from .timecodes import cue_clock

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0
# Shown first, for NOTICE_S, in captions made from an emulated transcript (it may overlap
# the first words' cue: both formats allow overlapping cues).
EMULATED_CUE = "[Emulated: these words are invented]"
NOTICE_S = 3.0
CLAUSE_END = (",", ";", ":")


class Cue(NamedTuple):
    start: float  # seconds: the first word's start
    end: float  # seconds: the last word's end
    text: str  # 1 or 2 lines, joined by "\n"


def cue_prefixes(transcript: Transcript) -> list[str]:
    """The name that opens a turn's first cue, per label index."""
    return [f"{label_name(label)}: " for label in transcript.labels]


def unit_cues(transcript: Transcript, unit: Turn, prefixes: list[str]) -> list[Cue]:
    """The cues of one turn (or, without labels, one sentence): each of its sentences, cut
    further where too long. Cues never cross a turn, so a document's cues are its turns'
    cues in order."""
    t = transcript
    sentence_ends = t.sentence_ends
    first, stop = unit.first, unit.stop
    lasts = sentence_ends[
        bisect_left(sentence_ends, first) : bisect_left(sentence_ends, stop - 1)
    ]  # the last word of each sentence but the unit's last
    lasts.append(stop - 1)
    display, starts, ends = t.display, t.starts, t.ends
    cues: list[Cue] = []
    prefix = prefixes[unit.label] if unit.label >= 0 else ""
    for last in lasts:
        # Most sentences make one cue: _one_cue's test inline (a call costs as much as it).
        start, end = starts[first], ends[last]
        text = None
        if end - start <= MAX_CUE_S:
            text = _fit(
                prefix + " ".join(display[first : last + 1]), len(prefix) + len(display[first])
            )
        if text is not None:
            cues.append(Cue(start, end, text))
        else:
            _sentence_cues(t, first, last + 1, prefix, cues)
        prefix = ""
        first = last + 1
    return cues


def render_captions(cues: list[Cue], *, note: str = "") -> tuple[str, str]:
    """(WebVTT, SubRip) documents of the same cues.

    WebVTT: ``WEBVTT`` header, then blank-line separated cues timed ``hh:mm:ss.mmm``,
    cue text escaped (``&``, ``<``, ``>``). SubRip: cues numbered from 1, timed
    ``hh:mm:ss,mmm``, blank-line separated. Both end with a newline. ``note`` (an
    emulated transcript's): a WebVTT NOTE block, and an EMULATED_CUE first in both.
    """
    if note and cues:
        cues = [Cue(0.0, NOTICE_S, EMULATED_CUE), *cues]
    spans = [f"{cue_clock(c.start)} --> {cue_clock(c.end)}" for c in cues]
    texts = [c.text for c in cues]
    vtt = [f"WEBVTT\n\nNOTE {note}\n" if note else "WEBVTT\n"]
    vtt.extend(f"\n{span}\n{text}\n" for span, text in zip(spans, _vtt_texts(texts), strict=True))
    # Timings with a comma: one replace over all of them (no timing holds a newline).
    srt_spans = "\n".join(spans).replace(".", ",").split("\n") if spans else []
    srt = "\n".join(
        f"{n}\n{span}\n{text}\n"
        for n, (span, text) in enumerate(zip(srt_spans, texts, strict=True), 1)
    )
    return "".join(vtt), srt


def _vtt_texts(texts: list[str]) -> list[str]:
    """Cue texts escaped for WebVTT, where they are markup (``&``, ``<``, ``>``): checked and
    replaced over all texts joined (C loops), split back at the NUL that joins them."""
    joined = "\0".join(texts)
    if "&" not in joined and "<" not in joined and ">" not in joined:
        return texts
    if joined.count("\0") != len(texts) - 1:  # a text holds a NUL itself
        return [_vtt_text(text) for text in texts]
    return _vtt_text(joined).split("\0")


def _vtt_text(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:  # cue text is markup in WebVTT
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _fit(text: str, keep: int) -> str | None:
    """``text`` as 1 or 2 lines within the limits (the cut nearest the middle), else None.

    ``keep``: length of the head (name prefix and first word) the cut must not fall in.
    """
    if len(text) <= MAX_LINE_CHARS:
        return text
    if len(text) > MAX_LINES * MAX_LINE_CHARS + 1:
        return None
    middle = len(text) // 2
    left = text.rfind(" ", keep, middle + 1)
    right = text.find(" ", max(middle, keep))
    for cut in (left, right) if middle - left <= right - middle else (right, left):
        if keep <= cut <= MAX_LINE_CHARS and len(text) - cut - 1 <= MAX_LINE_CHARS:
            return f"{text[:cut]}\n{text[cut + 1 :]}"
    return None


def _one_cue(t: Transcript, first: int, stop: int, prefix: str) -> Cue | None:
    """Words [first, stop) as a single cue, or None when they do not fit one."""
    if t.ends[stop - 1] - t.starts[first] > MAX_CUE_S:
        return None
    text = _fit(prefix + " ".join(t.display[first:stop]), len(prefix) + len(t.display[first]))
    return None if text is None else Cue(t.starts[first], t.ends[stop - 1], text)


def _sentence_cues(t: Transcript, first: int, stop: int, prefix: str, out: list[Cue]) -> None:
    """Cues for words [first, stop) of one sentence of one turn."""
    cue = _one_cue(t, first, stop, prefix)
    if cue is not None:
        out.append(cue)
        return
    # Too long for one cue: group clauses (cut after commas) while they fit together.
    display = t.display
    clause_stops = [i + 1 for i in range(first, stop - 1) if display[i].endswith(CLAUSE_END)]
    clause_stops.append(stop)
    group_first, group_stop = first, clause_stops[0]
    for clause_stop in clause_stops[1:]:
        if _one_cue(t, group_first, clause_stop, prefix) is not None:
            group_stop = clause_stop
            continue
        _word_cues(t, group_first, group_stop, prefix, out)
        prefix = ""
        group_first, group_stop = group_stop, clause_stop
    _word_cues(t, group_first, group_stop, prefix, out)


def _word_cues(t: Transcript, first: int, stop: int, prefix: str, out: list[Cue]) -> None:
    """Cues for words [first, stop): one if they fit, else filled word by word."""
    cue = _one_cue(t, first, stop, prefix)
    if cue is not None:
        out.append(cue)
        return
    display, starts, ends = t.display, t.starts, t.ends
    cue_first = first
    lines: list[str] = []
    line = prefix + display[first]
    for i in range(first + 1, stop):
        word = display[i]
        if ends[i] - starts[cue_first] <= MAX_CUE_S:
            if len(line) + 1 + len(word) <= MAX_LINE_CHARS:
                line = f"{line} {word}"
                continue
            if len(lines) + 1 < MAX_LINES:
                lines.append(line)
                line = word
                continue
        lines.append(line)
        out.append(Cue(starts[cue_first], ends[i - 1], "\n".join(lines)))
        cue_first, lines, line = i, [], word
    lines.append(line)
    out.append(Cue(starts[cue_first], ends[stop - 1], "\n".join(lines)))
