"""Small runs of the benchmark's scenarios: nothing lost, nothing started twice, nothing
dead-lettered, and the quotas held, with and without faults."""

from __future__ import annotations

import pytest

from devkit.simulation.faults import ISSUE_8_FAULTS
from devkit.simulation.metrics import RunResult
from devkit.simulation.runner import simulate
from devkit.simulation.scenario import Scenario

FAULT_MIX = ISSUE_8_FAULTS
# Small quotas so a few hundred files still make a backlog several times the quota.
SMALL = {"quota": 40, "start_rate": 5}


def assert_safe(result: RunResult) -> None:
    assert result.lost == 0
    assert result.duplicate_jobs == 0
    assert result.dlq_messages == 0
    assert result.peak_in_flight <= result.quota
    assert result.peak_starts_per_second <= result.start_rate
    # Busy AWS is expected under faults; a defect in the code or the glue is not.
    assert not set(result.errors) & {"AttributeError", "TypeError", "KeyError", "NameError"}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_burst_keeps_the_quota_full_and_loses_nothing(seed):
    result = simulate(Scenario(name="burst", files=400, seed=seed, **SMALL))

    assert_safe(result)
    assert result.completed == 400
    assert result.peak_in_flight == 40  # the quota was reached...
    assert result.quota_busy_while_backlog >= 0.9  # ...and kept full while work waited
    assert result.makespan_ratio <= 1.15
    assert result.start_calls_per_file == 1.0


def test_a_clinic_day_finishes_every_upload():
    result = simulate(Scenario(name="day", files=300, arrival="clinic_day", day_hours=2.0, **SMALL))

    assert_safe(result)
    assert result.completed == 300


@pytest.mark.parametrize("seed", [3, 4])
def test_under_the_fault_mix_nothing_is_lost_or_started_twice(seed):
    result = simulate(Scenario(name="faults", files=300, seed=seed, faults=FAULT_MIX, **SMALL))

    assert_safe(result)
    assert result.completed == 300
    assert result.extra["events_dropped"] > 0  # the faults did happen
    assert result.start_calls_per_file > 1.0


def test_invalid_uploads_are_rejected_without_a_start_call():
    result = simulate(Scenario(name="mixed", files=200, invalid_fraction=0.25, **SMALL))

    assert_safe(result)
    rejected = int(result.extra["rejected"])
    assert rejected > 20
    assert result.completed + rejected == 200
    assert result.start_calls == result.completed
