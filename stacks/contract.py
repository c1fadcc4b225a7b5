"""Names the deployed stack and the emulator share, free of CDK imports so the emulator and
the demo start without jsii."""

from __future__ import annotations

SERVICE_NAME = "medical-transcription"
METRICS_NAMESPACE = "MedicalTranscription"

TABLE_INDEX_BY_INPUT = "by-input"
TABLE_INDEX_BY_STATUS = "by-status"

# Where Transcribe writes raw transcripts, and the post-processor its documents (contract 3).
TRANSCRIPT_PREFIX = "medical/"
DOCUMENTS_PREFIX = "transcripts/"
