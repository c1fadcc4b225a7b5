"""What a run simulates: how many uploads, when they arrive, how long they are, the quotas
and the faults. Everything random comes from one seed, so a run is repeatable."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from devkit.simulation.faults import Faults
from devkit.transcribe_medical import typical_processing_time

Arrival = Literal["burst", "clinic_day"]


@dataclass(frozen=True)
class Upload:
    key: str
    arrives_s: float
    duration_s: float  # audio length
    valid: bool = True  # False: an untranscribable file (rejected at admission)

    @property
    def job_s(self) -> float:
        return typical_processing_time(self.duration_s)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    files: int
    arrival: Arrival = "burst"
    day_hours: float = 8.0  # a clinic day: a Poisson stream over this many hours
    mean_audio_min: float = 15.0  # lognormal audio lengths with this mean...
    audio_sigma: float = 0.75  # ...and this spread (of the underlying normal)
    min_audio_min: float = 1.0
    max_audio_min: float = 120.0
    quota: int = 250  # the account's concurrent-job quota
    start_rate: int = 25  # the account's Start calls per second
    get_rate: float = 30.0
    share: int | None = None  # this stack's share of the quota (None: all of it)
    reconcile_minutes: float = 5.0
    batch_size: int = 5  # the start function's event source (stack defaults)
    max_concurrency: int = 5
    visibility_timeout_s: float = 360.0
    max_receives: int = 10
    invalid_fraction: float = 0.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 8
    # Exact uploads instead of random ones (a parity test replays them elsewhere);
    # `files` must then be their number.
    given_uploads: tuple[Upload, ...] = ()

    def __post_init__(self) -> None:
        if self.files < 1:
            raise ValueError(f"scenario {self.name}: files must be >= 1, got {self.files}")
        if self.given_uploads and len(self.given_uploads) != self.files:
            raise ValueError(
                f"scenario {self.name}: files is {self.files} but {len(self.given_uploads)} "
                "uploads are given; make them equal"
            )
        if self.arrival not in ("burst", "clinic_day"):
            raise ValueError(f"scenario {self.name}: arrival must be burst or clinic_day")
        if not 0 < self.min_audio_min <= self.mean_audio_min <= self.max_audio_min:
            raise ValueError(f"scenario {self.name}: need 0 < min <= mean <= max audio minutes")

    @property
    def stack_share(self) -> int:
        return self.share if self.share is not None else self.quota

    def uploads(self) -> list[Upload]:
        if self.given_uploads:
            return list(self.given_uploads)
        rng = random.Random(self.seed)
        mu = math.log(self.mean_audio_min) - self.audio_sigma**2 / 2  # mean of the lognormal
        uploads = []
        t = 0.0
        rate = self.files / (self.day_hours * 3600.0)
        for i in range(self.files):
            if self.arrival == "clinic_day":
                t += rng.expovariate(rate)
            minutes = min(
                self.max_audio_min,
                max(self.min_audio_min, rng.lognormvariate(mu, self.audio_sigma)),
            )
            valid = rng.random() >= self.invalid_fraction
            folder = "conversation" if i % 3 else "dictation"
            extension = ".wav" if valid else ".txt"
            uploads.append(
                Upload(
                    key=f"{folder}/clinic-{i % 17:02d}/visit {i:06d}{extension}",
                    arrives_s=t,
                    duration_s=round(minutes * 60.0, 3),
                    valid=valid,
                )
            )
        return uploads
