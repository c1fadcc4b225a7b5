"""Injected faults: AWS errors with their real codes, and crashes no handler can catch."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError


class SimulatedCrash(BaseException):
    """The Lambda sandbox dies here (timeout, out of memory, a kill). A BaseException, so
    the real code's `except Exception` cannot swallow it, as it could not swallow a crash."""


def client_error(code: str, operation: str, *, status: int = 400, message: str = "") -> ClientError:
    """A botocore ClientError shaped as boto3 raises it for `code`."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or code},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Fault rates, each a probability in [0, 1]."""

    event_drop: float = 0.0  # an EventBridge event never arrives
    event_duplicate: float = 0.0  # an event arrives twice
    event_max_delay_s: float = 2.0  # each event is delayed uniformly up to this: reordering
    start_throttle: float = 0.0  # a Start call answered LimitExceededException
    start_server_error: float = 0.0  # a Start call answered InternalFailureException (500)
    start_crash: float = 0.0  # an invocation that dispatches dies right after a Start
    post_process_crash: float = 0.0  # a post-process invocation dies after some documents
    message_duplicate: float = 0.0  # S3 delivers a notification twice
    job_failure: float = 0.0  # Transcribe fails the job

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name != "event_max_delay_s" and not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name} is {value}; allowed: 0 to 1")
        if self.event_max_delay_s < 0:
            raise ValueError("event_max_delay_s must be >= 0")


# Issue 8's fault mix: lost, repeated and reordered events, throttled and failing starts,
# and invocations that die at the worst moment.
ISSUE_8_FAULTS = Faults(
    event_drop=0.30,
    event_duplicate=0.10,
    event_max_delay_s=120.0,
    start_throttle=0.20,
    start_server_error=0.05,
    start_crash=0.10,
    post_process_crash=0.10,
    message_duplicate=0.05,
)
