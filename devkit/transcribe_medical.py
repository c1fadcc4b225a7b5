"""Plays Amazon Transcribe Medical where moto stops.

moto keeps medical job records (Start/Get/List/Delete) but writes no transcript, never
fails a job, never throttles, and moves a job one status further on every Get. This
emulator takes over the job lifecycle inside moto's own backend: it freezes moto's
automatic progression, then moves jobs on command, writes a transcript in Transcribe
Medical's schema (speaker labels or channels, as the job asked) to the job's output
location, fails jobs with Transcribe's own FailureReason texts, throttles starts and
enforces the concurrent-job quota on the clients it is attached to.

It does not recognise speech: the words it writes come from a script (the demo's sample
scripts, or a generic consultation), never from the audio.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from moto.backends import get_backend
from moto.moto_api import state_manager
from moto.transcribe.models import FakeMedicalTranscriptionJob

from devkit.transcript_samples import make_transcript

MODEL_NAME = "transcribe::medicaltranscriptionjob"
DEFAULT_ACCOUNT = "123456789012"

GENERIC_CONVERSATION: tuple[tuple[int, str], ...] = (
    (0, "Good morning. What brings you in today?"),
    (1, "I have had a dry cough for about two weeks, and it is worse at night."),
    (0, "Any fever, shortness of breath, or chest pain?"),
    (1, "A mild fever last week. No chest pain."),
    (0, "Let me listen to your lungs. Take a deep breath for me."),
    (0, "Your lungs sound clear. I think this is a post viral cough."),
    (1, "Okay. Is there anything I can take for it?"),
    (0, "Honey and warm fluids help. Come back if it lasts another two weeks."),
)
GENERIC_DICTATION: tuple[tuple[int, str], ...] = (
    (0, "Patient is a forty two year old presenting with a two week history of dry cough."),
    (0, "No chest pain. Mild fever last week, now resolved."),
    (0, "Lungs clear to auscultation bilaterally. Assessment, post viral cough."),
    (0, "Plan, supportive care and return if symptoms persist beyond two weeks."),
)

Script = Callable[[str, dict[str, Any]], Sequence[tuple[int, str]]]


def _start_queued() -> None:
    """With progression frozen, moto's jobs would stay in their pre-start status (None):
    make a new job QUEUED, as Transcribe reports it after StartMedicalTranscriptionJob."""
    init = FakeMedicalTranscriptionJob.__init__
    if getattr(init, "_starts_queued", False):
        return

    def queued_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._status = "QUEUED"

    queued_init._starts_queued = True  # type: ignore[attr-defined]
    FakeMedicalTranscriptionJob.__init__ = queued_init  # type: ignore[method-assign]


def _client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class TranscribeMedicalEmulator:
    """Drives medical jobs held in moto's backend. Use inside `mock_aws()` (or with moto's
    server running in this process)."""

    def __init__(
        self,
        *,
        s3: Any,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT,
        script: Script | None = None,
        concurrent_job_quota: int | None = None,
    ) -> None:
        self.s3 = s3
        self.region = region
        self.account_id = account_id
        self.script = script
        self.concurrent_job_quota = concurrent_job_quota
        self.throttle_next_starts = 0
        self.start_calls = 0
        self.throttled_starts = 0
        # moto moves a job one status on each Get; the emulator decides instead.
        _start_queued()
        state_manager.set_transition(MODEL_NAME, {"progression": "manual", "times": 10**12})

    def close(self) -> None:
        """Give moto its own job progression back."""
        state_manager.unset_transition(MODEL_NAME)

    def __enter__(self) -> TranscribeMedicalEmulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the backend --------------------------------------------------------------------

    @property
    def _jobs(self) -> dict[str, Any]:
        backend = get_backend("transcribe")[self.account_id][self.region]
        return backend.medical_transcriptions  # type: ignore[no-any-return]

    def job_names(self, *statuses: str) -> list[str]:
        return [name for name, job in self._jobs.items() if not statuses or job.status in statuses]

    def status(self, job_name: str) -> str:
        return str(self._jobs[job_name].status)

    def media_uri(self, job_name: str) -> str:
        return str(self._jobs[job_name].media["MediaFileUri"])

    def open_jobs(self) -> int:
        return sum(1 for job in self._jobs.values() if job.status in ("QUEUED", "IN_PROGRESS"))

    # --- the clients it plays for -------------------------------------------------------

    def attach(self, client: Any) -> None:
        """Throttle and enforce the concurrent-job quota on this transcribe client's starts."""
        client.meta.events.register(
            "before-call.transcribe.StartMedicalTranscriptionJob", self._before_start
        )

    def _before_start(self, params: dict[str, Any], **_: Any) -> None:
        self.start_calls += 1
        if self.throttle_next_starts > 0:
            self.throttle_next_starts -= 1
            self.throttled_starts += 1
            raise _client_error(
                "ThrottlingException", "Rate exceeded", "StartMedicalTranscriptionJob"
            )
        name = params.get("MedicalTranscriptionJobName")
        if name in self._jobs:
            return  # let moto answer ConflictException, as AWS does
        if self.concurrent_job_quota is not None and self.open_jobs() >= self.concurrent_job_quota:
            self.throttled_starts += 1
            raise _client_error(
                "LimitExceededException",
                "You have exceeded the maximum number of concurrent jobs. Try again later.",
                "StartMedicalTranscriptionJob",
            )

    # --- moving jobs ----------------------------------------------------------------------

    def run(self, job_name: str) -> None:
        """QUEUED -> IN_PROGRESS."""
        job = self._jobs[job_name]
        if job.status == "QUEUED":
            job.status = "IN_PROGRESS"
            job.start_time = datetime.now(UTC)

    def complete(
        self, job_name: str, *, utterances: Sequence[tuple[int, str]] | None = None
    ) -> dict[str, Any]:
        """Write the transcript where the job asked for it and mark the job COMPLETED."""
        job = self._jobs[job_name]
        self.run(job_name)
        settings = job.settings or {}
        lines = utterances if utterances is not None else self._script_for(job_name, job)
        transcript = make_transcript(
            job_name=job_name,
            utterances=lines,
            show_speaker_labels=bool(settings.get("ShowSpeakerLabels")),
            channel_identification=bool(settings.get("ChannelIdentification")),
            max_alternatives=settings.get("MaxAlternatives")
            if settings.get("ShowAlternatives")
            else None,
            account_id=self.account_id,
        )
        key = f"medical/{job_name}.json"
        put: dict[str, Any] = {
            "Bucket": job._output_bucket_name,
            "Key": key,
            "Body": json.dumps(transcript, separators=(",", ":")).encode(),
            "ContentType": "application/json",
        }
        if job._output_encryption_kms_key_id:
            put.update(
                ServerSideEncryption="aws:kms", SSEKMSKeyId=job._output_encryption_kms_key_id
            )
        self.s3.put_object(**put)
        job.status = "COMPLETED"
        job.completion_time = datetime.now(UTC) + timedelta(seconds=1)
        job.transcript = {
            "TranscriptFileUri": (
                f"https://s3.{self.region}.amazonaws.com/{job._output_bucket_name}/{key}"
            )
        }
        return transcript

    def fail(self, job_name: str, reason: str = "Unsupported media format") -> None:
        """Mark the job FAILED with Transcribe's FailureReason (moto's Get omits it: add it)."""
        job = self._jobs[job_name]
        job.status = "FAILED"
        job.failure_reason = reason
        job.completion_time = datetime.now(UTC)
        original = type(job).response_object

        def with_failure_reason(response_type: str) -> dict[str, Any]:
            response = original(job, response_type)
            if response_type == "GET":
                response["MedicalTranscriptionJob"]["FailureReason"] = job.failure_reason
            return response

        job.response_object = with_failure_reason

    def _script_for(self, job_name: str, job: Any) -> Sequence[tuple[int, str]]:
        if self.script is not None:
            return self.script(job_name, {"media": job.media, "type": job.type})
        return GENERIC_DICTATION if job.type == "DICTATION" else GENERIC_CONVERSATION
