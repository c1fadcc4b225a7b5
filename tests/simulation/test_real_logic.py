"""The simulation runs the pipeline's own classes: their settings decide its outcome."""

from __future__ import annotations

from devkit.simulation.runner import Simulation
from devkit.simulation.scenario import Scenario
from pipeline.completion import JobFinisher
from pipeline.dispatch import Dispatcher
from pipeline.start import JobStarter


def test_the_stacks_share_bounds_jobs_in_flight():
    scenario = Scenario(name="share", files=150, quota=40, start_rate=10)

    full = Simulation(scenario).run()
    halved = Simulation(scenario, settings_overrides={"concurrent_job_share": 20}).run()

    assert full.peak_in_flight == 40
    assert halved.peak_in_flight == 20  # the real Dispatcher read the setting
    assert halved.makespan_s > full.makespan_s * 1.5
    assert halved.lost == 0


def test_the_configured_start_rate_paces_the_starts():
    scenario = Scenario(name="rate", files=100, quota=60, start_rate=20)

    result = Simulation(scenario, settings_overrides={"start_rate_per_second": 4}).run()

    assert result.peak_starts_per_second == 4


def test_the_stand_ins_carry_the_real_classes():
    simulation = Simulation(Scenario(name="wiring", files=1))

    assert type(simulation.starter) is JobStarter
    assert type(simulation.dispatcher) is Dispatcher
    assert isinstance(simulation.finisher, JobFinisher)


def test_documents_are_written_where_the_index_says():
    simulation = Simulation(Scenario(name="docs", files=3), keep_bodies=True)
    simulation.run()

    for item in list(simulation.store.items.values()):
        if item.get("status") != "COMPLETED":
            continue
        for key in item["outputs"].values():
            stored = simulation.s3.current("sim-output", key)
            assert stored is not None
            assert stored.body
