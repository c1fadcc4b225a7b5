"""The demo's sample uploads, generated on the spot, and the scripts the emulator replays.

The audio is tones, not speech: the emulator does not recognise speech, so each good
sample comes with the script its transcript replays (with plausible timings), and the
documents read like the consultation they stand for. The scripts name a (made-up) person
and dates, which the emulator labels as PHI when the job asks for PHI identification, so
the demo shows redaction; the dictation carries integrator metadata (all invented), so its
FHIR and HL7 documents have a subject and a patient id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from devkit.media_samples import flac_bytes, text_bytes, wav_bytes


@dataclass(frozen=True)
class Sample:
    key: str
    body: bytes
    what: str
    script: Sequence[tuple[int, str]] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)  # S3 user metadata (contract 6)


DICTATION_SCRIPT = (
    (0, "Clinic note for Maria Lopez, seen on March 3 for a follow up visit."),
    (0, "The patient reports improved control of blood pressure on the current dose."),
    (0, "Home readings average one thirty over eighty two."),
    (0, "No headaches, chest pain or swelling of the ankles."),
    (0, "Plan: continue the current medication and recheck in three months."),
)

CONVERSATION_SCRIPT = (
    (0, "Good morning, Mr Patel. What brings you in today?"),
    (1, "I have had a sore throat for three days, and it hurts to swallow."),
    (0, "Any fever or cough?"),
    (1, "A mild fever yesterday evening. No cough."),
    (0, "Let me take a look. Open wide and say ah."),
    (0, "Your throat is red, but there are no white patches."),
    (1, "Do I need antibiotics?"),
    (0, "Most sore throats are viral. Rest, fluids, and come back if it lasts a week."),
)


# Invented identifiers in the shapes the start path accepts; 11506-3 is LOINC's progress note.
DICTATION_METADATA = {
    "patient-id": "DEMO-PAT-0001",
    "encounter-id": "DEMO-ENC-0001",
    "author": "Dr Demo Example",
    "note-type": "11506-3",
}


def demo_samples() -> list[Sample]:
    return [
        Sample(
            key="dictation/follow-up-note.wav",
            body=wav_bytes(sample_rate=16000, duration_s=30.0, tone_hz=330.0),
            what="a dictated clinic note (16 kHz mono WAV)",
            script=DICTATION_SCRIPT,
            metadata=DICTATION_METADATA,
        ),
        Sample(
            key="conversation/sore-throat-visit.flac",
            body=flac_bytes(sample_rate=16000, duration_s=40.0, tone_hz=440.0),
            what="a two-person consultation (16 kHz FLAC)",
            script=CONVERSATION_SCRIPT,
        ),
        Sample(
            key="conversation/phone-call-8khz.wav",
            body=wav_bytes(sample_rate=8000, duration_s=3.0),
            what="telephone audio at 8 kHz (too low for Transcribe Medical)",
        ),
        Sample(
            key="dictation/notes-not-audio.wav",
            body=text_bytes(),
            what="a text file renamed .wav",
        ),
        Sample(key="dictation/empty-upload.wav", body=b"", what="an empty file"),
    ]
