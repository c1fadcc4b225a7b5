"""The mark of a transcript the local emulator wrote (the devkit), never Amazon Transcribe.

The emulator does not recognise speech: the words it writes are invented. It puts
``EMULATED_MARKER_KEY`` at the top level of the transcript JSON (a member real
Transcribe output never has) with ``EMULATED_NOTE`` as its value, and every document
rendered from such a transcript repeats the note, so nobody mistakes invented words
for a transcription.
"""

from __future__ import annotations

EMULATED_MARKER_KEY = "emulatedTranscript"
EMULATED_NOTE = (
    "Emulated transcript: these words were invented by the local emulator, "
    "not recognised from the audio."
)
