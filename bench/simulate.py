"""`make simulate`: the pipeline's real logic at 10,000 and 100,000 files, in virtual time.

Prints only `run.name: value` lines on stdout (goals beside the figures they judge);
progress and the chart folder go to stderr.

    python bench/simulate.py                 # the four runs of issue 8
    python bench/simulate.py --only burst_10000 --out sim-output
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

from devkit.simulation.charts import write_chart  # noqa: E402
from devkit.simulation.faults import ISSUE_8_FAULTS  # noqa: E402
from devkit.simulation.runner import simulate  # noqa: E402
from devkit.simulation.scenario import Scenario  # noqa: E402


def scenarios() -> list[Scenario]:
    return [
        Scenario(name="burst_10000", files=10_000),
        Scenario(name="burst_100000", files=100_000),
        Scenario(name="clinic_day_2000", files=2_000, arrival="clinic_day"),
        Scenario(name="faults_10000", files=10_000, faults=ISSUE_8_FAULTS),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these scenarios (by name)")
    parser.add_argument("--out", default="sim-output", help="folder for the PNG charts")
    args = parser.parse_args(argv)
    chosen = [s for s in scenarios() if not args.only or s.name in args.only]
    if not chosen:
        names = ", ".join(s.name for s in scenarios())
        parser.error(f"no scenario named {args.only}; choose from {names}")
    out = Path(args.out)
    print(f"charts go to {out.resolve()}/", file=sys.stderr)
    for scenario in chosen:
        print(f"simulating {scenario.name}...", file=sys.stderr, flush=True)
        result = simulate(scenario)
        for line in result.lines():
            print(line, flush=True)
        print(f"chart: {write_chart(result, out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
