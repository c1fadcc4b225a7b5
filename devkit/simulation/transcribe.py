"""Transcribe Medical in memory: quotas, start and Get rates, job durations, transcripts.

Answers as the service does: `ConflictException` for a name already taken (checked before
the quota), `LimitExceededException` over the start rate or at the concurrent-job quota,
`NotFoundException` for an unknown job. A job runs for 0.3 x the audio's length + 30 s
(devkit.transcribe_medical.typical_processing_time) and then writes a tiny transcript
(the same bytes for every job, so 100,000 completions stay cheap) to its OutputKey.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devkit.simulation.calls import CallCounter
from devkit.simulation.clock import EventLoop, VirtualClock
from devkit.simulation.faults import Faults, SimulatedCrash, client_error
from devkit.simulation.s3 import MemoryS3
from devkit.transcribe_medical import (
    QUOTA_MESSAGE,
    RATE_MESSAGE,
    TokenBucket,
    typical_processing_time,
)
from devkit.transcript_samples import make_transcript
from pipeline.job_names import JOB_NAME_PATTERN

TRANSCRIBE = "transcribe"
REGION = "us-east-1"
FAILURE_REASON = "The media format provided does not match the detected media format"
# What every simulated job "says" (the emulator can be given the same script, for parity).
# A name in it gives PHI identification something to label.
UTTERANCES: tuple[tuple[int, str], ...] = (
    (0, "How are you feeling today, Maria?"),
    (1, "Much better, thank you."),
)


@dataclass
class SimulatedJob:
    name: str
    media_uri: str
    request: dict[str, Any]
    created: datetime
    ends_at: float
    status: str = "IN_PROGRESS"
    completed: datetime | None = None
    failure_reason: str | None = None


class MemoryTranscribe:
    def __init__(
        self,
        *,
        clock: VirtualClock,
        loop: EventLoop,
        s3: MemoryS3,
        calls: CallCounter,
        rng: random.Random,
        faults: Faults,
        quota: int = 250,
        start_rate: float = 25.0,
        get_rate: float = 30.0,
    ) -> None:
        self._clock = clock
        self._loop = loop
        self._s3 = s3
        self._calls = calls
        self._rng = rng
        self._faults = faults
        self.quota = quota
        self._start_bucket = TokenBucket(start_rate, clock.epoch)
        self._get_bucket = TokenBucket(get_rate, clock.epoch)
        self.jobs: dict[str, SimulatedJob] = {}
        self.running = 0
        self.peak_running = 0
        self.accepted_by_media: Counter[str] = Counter()  # accepted starts per upload
        self.accepted_per_second: Counter[int] = Counter()
        self.on_job_end: Callable[[SimulatedJob], None] = lambda job: None
        self.on_running_change: Callable[[], None] = lambda: None
        self._crash_armed = False
        self._transcripts: dict[tuple[bool, bool, int | None, bool], bytes] = {}

    def arm_crash_after_start(self, armed: bool) -> None:
        """Make the invocation die right after its next accepted Start (or disarm)."""
        self._crash_armed = armed

    # --- StartMedicalTranscriptionJob ----------------------------------------------------

    def start_medical_transcription_job(self, **request: Any) -> dict[str, Any]:
        self._calls.count(TRANSCRIBE, "StartMedicalTranscriptionJob")
        operation = "StartMedicalTranscriptionJob"
        name = str(request.get("MedicalTranscriptionJobName", ""))
        if not JOB_NAME_PATTERN.match(name):
            raise client_error("BadRequestException", operation, message="invalid job name")
        if not self._start_bucket.take():
            raise client_error("LimitExceededException", operation, message=RATE_MESSAGE)
        roll = self._rng.random()
        if roll < self._faults.start_throttle:
            raise client_error("LimitExceededException", operation, message=RATE_MESSAGE)
        if roll < self._faults.start_throttle + self._faults.start_server_error:
            raise client_error("InternalFailureException", operation, status=500)
        if name in self.jobs:
            raise client_error("ConflictException", operation, status=409, message="name taken")
        if self.running >= self.quota:
            raise client_error("LimitExceededException", operation, message=QUOTA_MESSAGE)
        media_uri = str(request["Media"]["MediaFileUri"])
        bucket, _, key = media_uri.removeprefix("s3://").partition("/")
        upload = self._s3.current(bucket, key)
        duration = upload.duration_s if upload is not None else None
        now = self._clock.now
        job = SimulatedJob(
            name=name,
            media_uri=media_uri,
            request=request,
            created=self._clock.moment(),
            ends_at=now + typical_processing_time(duration),
        )
        self.jobs[name] = job
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        self.accepted_by_media[media_uri] += 1
        # Keyed as the ledger keys its windows: whole seconds of the epoch.
        self.accepted_per_second[math.floor(self._clock.epoch())] += 1
        self.on_running_change()
        self._loop.at(job.ends_at, lambda: self._end(job))
        if self._crash_armed:
            self._crash_armed = False
            raise SimulatedCrash("the invocation died right after Transcribe accepted a start")
        return {"MedicalTranscriptionJob": self._describe(job)}

    def _end(self, job: SimulatedJob) -> None:
        job.completed = self._clock.moment()
        if self._rng.random() < self._faults.job_failure:
            job.status = "FAILED"
            job.failure_reason = FAILURE_REASON
        else:
            job.status = "COMPLETED"
            self._s3.write(
                job.request["OutputBucketName"], job.request["OutputKey"], self._transcript(job)
            )
        self.running -= 1
        self.on_running_change()
        self.on_job_end(job)

    def _transcript(self, job: SimulatedJob) -> bytes:
        settings = job.request.get("Settings") or {}
        # What the job asked for shapes the transcript, as it does Transcribe's (and the
        # emulator's): speaker or channel labels, alternatives, PHI entities.
        shape = (
            bool(settings.get("ShowSpeakerLabels")),
            bool(settings.get("ChannelIdentification")),
            settings.get("MaxAlternatives") if settings.get("ShowAlternatives") else None,
            job.request.get("ContentIdentificationType") == "PHI",
        )
        if shape not in self._transcripts:
            transcript = make_transcript(
                job_name="simulated",
                utterances=UTTERANCES,
                show_speaker_labels=shape[0],
                channel_identification=shape[1],
                max_alternatives=shape[2],
                identify_phi=shape[3],
            )
            self._transcripts[shape] = json.dumps(transcript).encode()
        return self._transcripts[shape]

    # --- GetMedicalTranscriptionJob ------------------------------------------------------

    def get_medical_transcription_job(self, *, MedicalTranscriptionJobName: str) -> dict[str, Any]:
        self._calls.count(TRANSCRIBE, "GetMedicalTranscriptionJob")
        operation = "GetMedicalTranscriptionJob"
        if not self._get_bucket.take():
            raise client_error("LimitExceededException", operation, message=RATE_MESSAGE)
        job = self.jobs.get(MedicalTranscriptionJobName)
        if job is None:
            raise client_error("NotFoundException", operation, message="job not found")
        return {"MedicalTranscriptionJob": self._describe(job)}

    def _describe(self, job: SimulatedJob) -> dict[str, Any]:
        request = job.request
        record: dict[str, Any] = {
            "MedicalTranscriptionJobName": job.name,
            "TranscriptionJobStatus": job.status,
            "LanguageCode": request.get("LanguageCode"),
            "Media": {"MediaFileUri": job.media_uri},
            "MediaFormat": request.get("MediaFormat"),
            "CreationTime": job.created,
            "StartTime": job.created,
            "Specialty": request.get("Specialty"),
            "Type": request.get("Type"),
            "Settings": request.get("Settings", {}),
        }
        if job.completed is not None:
            record["CompletionTime"] = job.completed
        if job.status == "COMPLETED":
            bucket, key = request["OutputBucketName"], request["OutputKey"]
            record["Transcript"] = {
                "TranscriptFileUri": f"https://s3.{REGION}.amazonaws.com/{bucket}/{key}"
            }
        if job.failure_reason:
            record["FailureReason"] = job.failure_reason
        return record
