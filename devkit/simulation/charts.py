"""One PNG per run: jobs in Transcribe against the quota, waiting work, completions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from devkit.simulation.metrics import RunResult


def write_chart(result: RunResult, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    series = result.series
    hours = [t / 3600.0 for t in series.t]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot(hours, series.in_flight, label="jobs in Transcribe", color="tab:blue")
    top.axhline(result.quota, color="tab:red", linestyle="--", label=f"quota ({result.quota})")
    top.set_ylabel("jobs in flight")
    top.set_ylim(0, result.quota * 1.15)
    top.legend(loc="lower right")
    top.set_title(
        f"{result.name}: {result.files} files, makespan ratio {result.makespan_ratio:.2f}, "
        f"quota busy {result.quota_busy_while_backlog:.0%} while work waits"
    )
    bottom.plot(hours, series.backlog, label="waiting (not yet started)", color="tab:orange")
    bottom.plot(hours, series.completed, label="completed", color="tab:green")
    bottom.set_xlabel("virtual hours")
    bottom.set_ylabel("files")
    bottom.legend(loc="center right")
    figure.tight_layout()
    path = folder / f"{result.name}.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
