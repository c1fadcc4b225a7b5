"""Deterministic transcripts in the shape Amazon Transcribe Medical writes (dev and tests only).

The shape follows the real batch outputs in ``shared/reference-transcripts`` and the
AWS documentation:

- numbers are strings: times with 3 decimals (``"5.020"``), confidences as a rounded
  decimal (``"0.9876"``, ``"1.0"``);
- punctuation items have no times and a ``"0.0"`` confidence;
- ``speaker_labels.segments[].items`` hold times and labels only, no words;
- ``channel_labels.channels[].items`` hold full items, and the top-level ``items``
  are the channels merged in time order without a channel label;
- ``results.segments[].alternatives[].items`` are flat (``content`` beside
  ``confidence``), unlike ``results.items``;
- ``results.entities`` (PHI) use camelCase keys and numeric values.

Everything derives from ``seed``: the same arguments give the same dictionary.
Unless ``emulated=False``, the transcript carries ``EMULATED_MARKER_KEY`` (a member
real Transcribe never writes) saying its words are invented, and every document
rendered from it repeats that.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from pipeline.transcript.emulation import EMULATED_MARKER_KEY, EMULATED_NOTE

PUNCTUATION = ".,?!"
SENTENCE_END = ".?!"
LOW_CONFIDENCE_RATE = 0.02  # share of words given a confidence below 0.5
MAX_SECONDS = 4 * 3600  # Transcribe Medical accepts media under 4 hours
WORDS_PER_HOUR = 11_250  # about 45,000 words in 4 hours, as in a busy clinic recording


def _time(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _confidence(value: float) -> str:
    return repr(round(value, 4))


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(content, is_punctuation) in spoken order; trailing .,?! become punctuation items."""
    out: list[tuple[str, bool]] = []
    for chunk in text.split():
        word = chunk.rstrip(PUNCTUATION)
        if word:
            out.append((word, False))
        out.extend((mark, True) for mark in chunk[len(word) :])
    return out


class _Word:
    __slots__ = ("confidence", "content", "end_ms", "punct", "speaker", "start_ms")

    def __init__(self, content: str, speaker: int, start_ms: int, end_ms: int, conf: float) -> None:
        self.content = content
        self.speaker = speaker
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.confidence = conf
        self.punct: list[str] = []  # punctuation spoken right after this word


def _timeline(
    utterances: Sequence[tuple[int, str]], *, words_per_second: float, start_s: float, rng: Any
) -> list[list[list[_Word]]]:
    """Utterances -> sentences -> words with times (ms) and confidences."""
    if words_per_second <= 0:
        raise ValueError("words_per_second must be positive")
    cycle_ms = 1000.0 / words_per_second
    now = round(start_s * 1000)
    turns: list[list[list[_Word]]] = []
    for turn_no, (speaker, text) in enumerate(utterances):
        if speaker < 0:
            raise ValueError("speaker indexes start at 0")
        if turn_no:
            now += round(rng.uniform(400, 1200))  # pause between turns
        sentences: list[list[_Word]] = [[]]
        for content, is_punct in _tokens(text):
            current = sentences[-1]
            if is_punct:
                if current:
                    current[-1].punct.append(content)
                elif len(sentences) > 1 and sentences[-2]:
                    sentences[-2][-1].punct.append(content)
                if content in SENTENCE_END and current:
                    sentences.append([])
                    now += round(rng.uniform(200, 600))  # pause between sentences
                continue
            step = cycle_ms * rng.uniform(0.8, 1.2)
            length = max(1, round(step * rng.uniform(0.75, 0.95)))
            if rng.random() < LOW_CONFIDENCE_RATE:
                conf = rng.uniform(0.15, 0.49)
            elif rng.random() < 0.4:
                conf = 1.0
            else:
                conf = rng.uniform(0.85, 1.0)
            current.append(_Word(content, speaker, now, now + length, conf))
            now += max(length, round(step))
        turns.append([s for s in sentences if s])
    return turns


MAX_SPEED_UP = 1.6  # fit a script into short audio by talking up to this much faster...


def _fit(turns: list[list[list[_Word]]], duration_s: float) -> list[list[list[_Word]]]:
    """The timeline within ``duration_s``: sped up (at most MAX_SPEED_UP), then cut.

    ...and cut the words that still end after the audio does: a transcript never runs
    past its recording.
    """
    words = [w for turn in turns for sentence in turn for w in sentence]
    if not words:
        return turns
    limit_ms = int(duration_s * 1000)
    origin = min(words[0].start_ms, limit_ms // 10)  # very short audio: start earlier
    last = max(w.end_ms for w in words)
    if last > limit_ms:
        scale = max((limit_ms - origin) / max(last - words[0].start_ms, 1), 1 / MAX_SPEED_UP)
        first = words[0].start_ms
        for w in words:
            w.start_ms = origin + int((w.start_ms - first) * scale)
            w.end_ms = max(w.start_ms + 1, origin + int((w.end_ms - first) * scale))
    fitted = []
    for turn in turns:
        kept = [[w for w in sentence if w.end_ms <= limit_ms] for sentence in turn]
        kept = [sentence for sentence in kept if sentence]
        if kept:
            fitted.append(kept)
    return fitted


def _labelled(item: dict[str, Any], speaker: int, *, spk: bool, ch: bool) -> dict[str, Any]:
    """The item with the newer per-item speaker or channel label, when asked for."""
    if spk:
        item["speaker_label"] = f"spk_{speaker}"
    if ch:
        item["channel_label"] = f"ch_{speaker}"
    return item


def _items(words: Sequence[_Word], *, spk: bool = False, ch: bool = False) -> list[dict[str, Any]]:
    """``results.items`` (or a channel's items): each word, then its punctuation marks."""
    out: list[dict[str, Any]] = []
    for word in words:
        item = {
            "start_time": _time(word.start_ms),
            "end_time": _time(word.end_ms),
            "alternatives": [{"confidence": _confidence(word.confidence), "content": word.content}],
            "type": "pronunciation",
        }
        out.append(_labelled(item, word.speaker, spk=spk, ch=ch))
        for mark in word.punct:
            punct = {
                "alternatives": [{"confidence": "0.0", "content": mark}],
                "type": "punctuation",
            }
            out.append(_labelled(punct, word.speaker, spk=spk, ch=ch))
    return out


def _flat_items(words: Sequence[_Word]) -> list[dict[str, Any]]:
    """Items as ``results.segments[].alternatives[].items`` hold them: flat."""
    out: list[dict[str, Any]] = []
    for word in words:
        out.append(
            {
                "start_time": _time(word.start_ms),
                "confidence": _confidence(word.confidence),
                "end_time": _time(word.end_ms),
                "type": "pronunciation",
                "content": word.content,
            }
        )
        out.extend({"confidence": "0.0", "type": "punctuation", "content": m} for m in word.punct)
    return out


def _text(words: Sequence[_Word]) -> str:
    """The transcript text the way Transcribe writes it: words spaced, punctuation attached."""
    return " ".join(w.content + "".join(w.punct) for w in words)


def _variant(words: Sequence[_Word], rng: Any) -> list[_Word]:
    """A plausible runner-up hypothesis: one word heard differently, a little less sure."""
    out = []
    pick = rng.randrange(len(words))
    for i, w in enumerate(words):
        content = w.content
        if i == pick:
            content = content[:-1] if content.endswith("s") and len(content) > 2 else content + "s"
        copy = _Word(
            content, w.speaker, w.start_ms, w.end_ms, w.confidence * rng.uniform(0.6, 0.95)
        )
        copy.punct = list(w.punct) if rng.random() > 0.2 else []
        out.append(copy)
    return out


def _alternative_segments(
    sentences: Sequence[list[_Word]], max_alternatives: int, rng: Any
) -> list[dict[str, Any]]:
    segments = []
    for words in sentences:
        hypotheses = [list(words)] + [_variant(words, rng) for _ in range(max_alternatives - 1)]
        segments.append(
            {
                # Transcribe's segment bounds are a little wider than its words (0.44 vs 0.49).
                "start_time": _time(max(0, words[0].start_ms - 50)),
                "end_time": _time(words[-1].end_ms + 65),
                "alternatives": [
                    {"transcript": _text(h), "items": _flat_items(h)} for h in hypotheses
                ],
            }
        )
    return segments


_NAME = re.compile(r"^[A-Z][a-z]+$")


def _phi_category(word: _Word, sentence_start: bool) -> str | None:
    if word.content.isdigit() and len(word.content) == 5:
        return "PHI-Geographic"  # a zip code
    if any(c.isdigit() for c in word.content):
        return "PHI-Personal"  # ages, dates, phone numbers
    if not sentence_start and _NAME.match(word.content):
        return "PHI-Personal"  # a capitalised word mid-sentence: a name
    return None


def _entities(sentences: Sequence[list[_Word]], rng: Any) -> list[dict[str, Any]]:
    """PHI labels: runs of name-like or numeric words, merged when adjacent."""
    entities: list[dict[str, Any]] = []
    for words in sentences:
        run: list[_Word] = []
        category: str | None = None
        for i, word in enumerate([*words, None]):
            found = _phi_category(word, i == 0) if word is not None else None
            if run and (found != category or run[-1].punct):
                entities.append(
                    {
                        "content": " ".join(w.content for w in run),
                        "category": category,
                        "startTime": run[0].start_ms / 1000,
                        "endTime": run[-1].end_ms / 1000,
                        "confidence": round(rng.uniform(0.8, 1.0), 4),
                    }
                )
                run = []
            if found is not None and word is not None:
                run.append(word)
                category = found
    return entities


def make_transcript(
    *,
    job_name: str,
    utterances: Sequence[tuple[int, str]],
    show_speaker_labels: bool = True,
    channel_identification: bool = False,
    max_alternatives: int | None = None,
    identify_phi: bool = False,
    words_per_second: float = 2.6,
    start_s: float = 0.5,
    seed: int = 0,
    account_id: str = "123456789012",
    item_labels: bool = False,
    duration_s: float | None = None,
    emulated: bool = True,
) -> dict[str, Any]:
    """A completed Transcribe Medical transcript for ``utterances`` ((speaker, text) pairs).

    Text is split on spaces; trailing ``.,?!`` become punctuation items. With
    ``channel_identification`` the speaker index is the channel (0 or 1) and no
    speaker labels are written (the two settings are alternatives). ``item_labels``
    adds the newer per-item fields (``id`` and ``speaker_label``/``channel_label``)
    that current AWS examples show. ``duration_s`` (the audio's length, when known):
    no word ends after it (the script is spoken faster, then cut, to fit).
    ``identify_phi`` labels name-like and numeric words as PHI entities.
    """
    rng = random.Random(seed)
    if channel_identification and any(s not in (0, 1) for s, _ in utterances):
        raise ValueError("with channel identification, speaker indexes are channels: 0 or 1")
    if max_alternatives is not None and not 2 <= max_alternatives <= 10:
        raise ValueError("max_alternatives must be 2-10 (Transcribe's range)")
    if duration_s is not None and not duration_s > 0:
        raise ValueError("duration_s must be positive")
    turns = _timeline(utterances, words_per_second=words_per_second, start_s=start_s, rng=rng)
    if duration_s is not None:
        turns = _fit(turns, duration_s)
    sentences = [s for turn in turns for s in turn]
    words = [w for s in sentences for w in s]
    speakers = show_speaker_labels and not channel_identification

    results: dict[str, Any] = {"transcripts": [{"transcript": _text(words)}]}
    if speakers:
        results["speaker_labels"] = {
            "speakers": len({w.speaker for w in words}),
            "segments": [
                {
                    "start_time": _time(s[0].start_ms),
                    "speaker_label": f"spk_{s[0].speaker}",
                    "end_time": _time(s[-1].end_ms),
                    "items": [
                        {
                            "start_time": _time(w.start_ms),
                            "speaker_label": f"spk_{w.speaker}",
                            "end_time": _time(w.end_ms),
                        }
                        for w in s
                    ],
                }
                for s in sentences
            ],
        }
    if channel_identification:
        results["channel_labels"] = {
            "channels": [
                {
                    "channel_label": f"ch_{ch}",
                    "items": _items([w for w in words if w.speaker == ch]),
                }
                for ch in (0, 1)
            ],
            "number_of_channels": 2,
        }
    items = _items(words, spk=item_labels and speakers, ch=item_labels and channel_identification)
    if item_labels:
        items = [{"id": i, **item} for i, item in enumerate(items)]
    results["items"] = items
    if max_alternatives is not None:
        results["segments"] = _alternative_segments(sentences, max_alternatives, rng)
    if identify_phi:
        results["entities"] = _entities(sentences, rng)
    doc = {"jobName": job_name, "accountId": account_id, "results": results, "status": "COMPLETED"}
    if emulated:
        doc[EMULATED_MARKER_KEY] = EMULATED_NOTE
    return doc


# Building blocks of a primary-care visit, written for this generator.
_CLINICIAN = [
    "How have you been feeling since your last visit?",
    "Any chest pain, shortness of breath, or palpitations?",
    "When did the {symptom} start?",
    "Does the {symptom} get worse when you {activity}?",
    "Let's review your {medication} dose.",
    "I'd like to order a {test} to rule out anything serious.",
    "Your blood pressure today is {number} over {number2}.",
    "Are you taking the {medication} every day, as prescribed?",
    "We will follow up in {number3} weeks, and call if anything changes.",
    "I'm going to listen to your lungs now, so take a deep breath.",
    "Have you noticed any swelling in your ankles or feet?",
    "On a scale of one to ten, how bad is the {symptom}?",
]
_PATIENT = [
    "Mostly fine, but the {symptom} keeps coming back.",
    "It started about {number3} weeks ago, after I went back to work.",
    "Yes, especially when I {activity}.",
    "I take the {medication} in the morning, with breakfast.",
    "Sometimes I forget it on weekends, to be honest.",
    "My daughter Maria drove me here today.",
    "No, nothing like that.",
    "It's maybe a six, and it wakes me up at night.",
    "I've been sleeping poorly, and I feel tired most afternoons.",
    "My address changed, it's now in zip code 94110.",
    "The pharmacy on Main Street said the refill was ready.",
]
_FILL = {
    "symptom": ["cough", "headache", "back pain", "dizziness", "fatigue", "heartburn"],
    "activity": ["climb stairs", "lie down", "walk the dog", "eat late", "bend over"],
    "medication": ["lisinopril", "metformin", "atorvastatin", "amlodipine", "omeprazole"],
    "test": ["chest x-ray", "blood panel", "lipid panel", "ECG", "thyroid test"],
    "number": ["128", "134", "142", "150"],
    "number2": ["78", "82", "86", "90"],
    "number3": ["two", "three", "four", "six"],
}


def _sentence(rng: Any, bank: Sequence[str]) -> str:
    template = rng.choice(bank)
    return template.format(**{k: rng.choice(v) for k, v in _FILL.items()})


def make_long_conversation(
    *, hours: float = 4.0, speakers: int = 2, seed: int = 0, **options: Any
) -> dict[str, Any]:
    """A clinic recording of ``hours`` (about 11,250 words an hour: ~45,000 for 4 h).

    Speaker 0 is the clinician; the others answer in turn. The last word ends
    before ``hours`` (and before Transcribe's 4-hour limit). ``options`` go to
    :func:`make_transcript` (``show_speaker_labels``, ``max_alternatives``...).
    """
    if speakers < 1:
        raise ValueError("speakers must be at least 1")
    if not 0 < hours * 3600 <= MAX_SECONDS:
        raise ValueError("hours must be in (0, 4]: Transcribe Medical takes media under 4 hours")
    rng = random.Random(seed)
    target_words = round(hours * WORDS_PER_HOUR)
    utterances: list[tuple[int, str]] = []
    words = sentences = 0
    while words < target_words:
        turn = len(utterances)
        speaker = 0 if turn % 2 == 0 or speakers == 1 else 1 + (turn // 2) % (speakers - 1)
        bank = _CLINICIAN if speaker == 0 else _PATIENT
        parts = [_sentence(rng, bank) for _ in range(rng.randint(1, 3))]
        text = " ".join(parts)
        utterances.append((speaker, text))
        words += len(text.split())
        sentences += len(parts)
    # Fit the speech rate so the recording fills ~97% of the time after the
    # expected pauses (0.8 s between turns, 0.4 s after each sentence).
    pauses_s = 0.8 * (len(utterances) - 1) + 0.4 * sentences
    speech_s = max(hours * 3600 * 0.97 - 0.5 - pauses_s, 1.0)
    options.setdefault("words_per_second", words / speech_s)
    return make_transcript(
        job_name=options.pop("job_name", f"long-conversation-{seed}"),
        utterances=utterances,
        seed=seed,
        **options,
    )
