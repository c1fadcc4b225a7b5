"""Plays Amazon Transcribe Medical where moto stops.

moto keeps medical job records (Start/Get/List/Delete) but writes no transcript, never
fails a job, never throttles, and moves a job one status further on every Get. This
emulator takes over the job lifecycle inside moto's own backend: it freezes moto's
automatic progression, then moves jobs on command, writes a transcript in Transcribe
Medical's schema (speaker labels or channels, as the job asked) to the job's output
location, fails jobs with Transcribe's own FailureReason texts, and on the clients it is
attached to answers as Transcribe does: a start rate (token bucket), `ConflictException`
for a name already taken (before the quota), `LimitExceededException` at the
concurrent-job quota. Each job runs for a processing time that grows with the audio's
duration (read from the media, as Transcribe reads it); `advance(now)` moves every job
whose time has come, on whatever clock the caller keeps (virtual ticks or wall time).

It does not recognise speech: the words it writes come from a script (the demo's sample
scripts, or a generic consultation), never from the audio.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# Seconds of processing for a job whose audio lasts `duration_s` (None: unknown).
ProcessingTime = Callable[[float | None], float]

HEADER_BYTES = 64 * 1024  # enough for every header the pipeline's media checks read
QUOTA_MESSAGE = "You have exceeded the maximum number of concurrent jobs. Try again later."
RATE_MESSAGE = "You have sent too many requests. Try again later."


def typical_processing_time(duration_s: float | None) -> float:
    """About 0.3 x the audio's length plus 30 s of overhead (what issue 8 measured as
    typical); a job whose length is unknown takes the overhead alone."""
    return 0.3 * (duration_s or 0.0) + 30.0


class TokenBucket:
    """At most `rate` calls a second, with a burst of one second's worth, on any clock."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        if rate <= 0:
            raise ValueError(f"start rate must be positive, got {rate}")
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(frozen=True)
class StartRequest:
    """What a StartMedicalTranscriptionJob call asked for (moto keeps only part of it)."""

    job_name: str
    identify_phi: bool = False


def _request_body(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a serialized request: botocore's `before-call` sees the wire
    form, where the job name lives in the body, not at the top level."""
    body = params.get("body") or b"{}"
    if isinstance(body, bytes | bytearray):
        body = body.decode()
    try:
        parsed = json.loads(body) if isinstance(body, str) else dict(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


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
        start_rate: float | None = None,
        clock: Callable[[], float] | None = None,
        processing_time: ProcessingTime = typical_processing_time,
    ) -> None:
        self.s3 = s3
        self.region = region
        self.account_id = account_id
        self.script = script
        self.concurrent_job_quota = concurrent_job_quota
        self.clock = clock or (lambda: datetime.now(UTC).timestamp())
        self.rate = TokenBucket(start_rate, self.clock) if start_rate else None
        self.processing_time = processing_time
        self.throttle_next_starts = 0
        self.start_calls = 0
        self.throttled_starts = 0
        self.conflicts = 0
        self.requests: dict[str, StartRequest] = {}
        self.due: dict[str, float] = {}  # job name -> clock time it ends
        self.durations: dict[str, float | None] = {}  # job name -> the audio's seconds
        # moto's server threads and the caller's threads both touch the job records.
        self.lock = threading.RLock()
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
        jobs = list(self._jobs.items())  # moto's server threads may add or delete jobs meanwhile
        return [name for name, job in jobs if not statuses or job.status in statuses]

    def status(self, job_name: str) -> str:
        return str(self._jobs[job_name].status)

    def media_uri(self, job_name: str) -> str:
        return str(self._jobs[job_name].media["MediaFileUri"])

    def open_jobs(self) -> int:
        jobs = list(self._jobs.values())
        return sum(1 for job in jobs if job.status in ("QUEUED", "IN_PROGRESS"))

    # --- the clients it plays for -------------------------------------------------------

    def attach(self, client: Any) -> None:
        """Throttle and enforce the concurrent-job quota on this transcribe client's starts."""
        client.meta.events.register(
            "before-call.transcribe.StartMedicalTranscriptionJob", self._before_start
        )

    def _before_start(self, params: dict[str, Any], **_: Any) -> None:
        operation = "StartMedicalTranscriptionJob"
        with self.lock:
            self.start_calls += 1
            if self.throttle_next_starts > 0:
                self.throttle_next_starts -= 1
                self.throttled_starts += 1
                raise _client_error("ThrottlingException", "Rate exceeded", operation)
            if self.rate is not None and not self.rate.take():
                self.throttled_starts += 1
                raise _client_error("LimitExceededException", RATE_MESSAGE, operation)
            body = _request_body(params)
            name = str(body.get("MedicalTranscriptionJobName", ""))
            if name in self._jobs:
                self.conflicts += 1
                return  # moto answers ConflictException, as AWS does, even at a full quota
            quota = self.concurrent_job_quota
            if quota is not None and self.open_jobs() >= quota:
                self.throttled_starts += 1
                raise _client_error("LimitExceededException", QUOTA_MESSAGE, operation)
            self.requests[name] = StartRequest(
                job_name=name, identify_phi=body.get("ContentIdentificationType") == "PHI"
            )

    # --- moving jobs ----------------------------------------------------------------------

    def run(self, job_name: str) -> None:
        """QUEUED -> IN_PROGRESS; the job is due after its processing time."""
        with self.lock:
            job = self._jobs[job_name]
            if job.status == "QUEUED":
                job.status = "IN_PROGRESS"
                job.start_time = datetime.now(UTC)
                duration = self.media_duration(job_name)
                self.durations[job_name] = duration
                self.due[job_name] = self.clock() + self.processing_time(duration)

    def advance(
        self,
        *,
        fail: Callable[[str], str | None] = lambda _key: None,
        keep_running: Callable[[str], bool] = lambda _name: False,
    ) -> list[tuple[str, str]]:
        """Start every QUEUED job and end every running job whose processing time is over
        (on this emulator's clock) unless `keep_running(job name)`. `fail(input key)`
        returns a FailureReason to fail the job instead. Returns (job name, final status)
        of the jobs that ended."""
        ended: list[tuple[str, str]] = []
        with self.lock:
            for name in self.job_names("QUEUED"):
                self.run(name)
            now = self.clock()
            for name in self.job_names("IN_PROGRESS"):
                if self.due.setdefault(name, now) > now or keep_running(name):
                    continue
                reason = fail(self.input_key(name))
                if reason:
                    self.fail(name, reason)
                else:
                    self.complete(name)
                self.due.pop(name, None)
                ended.append((name, self.status(name)))
        return ended

    def input_key(self, job_name: str) -> str:
        """The object key of the job's media (s3://bucket/<key>)."""
        uri = self.media_uri(job_name)
        return uri.split("/", 3)[3] if uri.count("/") >= 3 else uri

    def media_duration(self, job_name: str) -> float | None:
        """The audio's length from its header, read as the pipeline's checks read it;
        None if the header does not say (or the object is gone)."""
        if job_name in self.durations:
            return self.durations[job_name]
        from pipeline.media import MediaRejected, inspect_media  # noqa: PLC0415 - lambdas/

        uri = self.media_uri(job_name)
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            response = self.s3.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}"
            )
            header = response["Body"].read()
            size = int(response.get("ContentRange", "/0").rsplit("/", 1)[-1] or len(header))
            info = inspect_media(
                extension=posixpath.splitext(key)[1], header=header, size=max(size, len(header))
            )
        except (ClientError, MediaRejected, ValueError):
            return None
        return info.duration_s

    def complete(
        self, job_name: str, *, utterances: Sequence[tuple[int, str]] | None = None
    ) -> dict[str, Any]:
        """Write the transcript where the job asked for it and mark the job COMPLETED."""
        job = self._jobs[job_name]
        self.run(job_name)
        settings = job.settings or {}
        lines = utterances if utterances is not None else self._script_for(job_name, job)
        options: dict[str, Any] = {
            "show_speaker_labels": bool(settings.get("ShowSpeakerLabels")),
            "channel_identification": bool(settings.get("ChannelIdentification")),
            "max_alternatives": settings.get("MaxAlternatives")
            if settings.get("ShowAlternatives")
            else None,
            "account_id": self.account_id,
            "identify_phi": self.requests.get(job_name, StartRequest(job_name)).identify_phi,
            "duration_s": self.media_duration(job_name),  # the words never run past the audio
        }
        transcript = make_transcript(job_name=job_name, utterances=lines, **options)
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
