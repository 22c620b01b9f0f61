"""Validator-count benchmark: heights per second and peak memory of the chain phase by number of validators.

    python benchmarks/validators_bench.py [--counts 4,16,64,150,512] [--heights 5] [--budget-s 120]

The small world (the scenario file's `name`-only defaults: full state, real secp256k1
signatures, py-evm executing every block, no incident reached) runs with each count of
validators in a new process of its own, until it reaches `--heights` or spends `--budget-s`
wall seconds (checked at each commit). Printed per count: the heights committed per wall
second (setup, that is genesis and key derivation, excluded) and the process's peak
resident memory; then the growth exponent of the time a height takes between 16 and 150
validators (log of the time ratio over log of the count ratio: 1 is linear, 2 quadratic)
and the memory each validator past the smallest count adds. What `validators.count`'s
maximum in the schema rests on. Not a test: no thresholds are asserted (goals: 150
validators >= 1 height/s, 512 >= 0.2, exponent <= 1.5, <= 2 MiB a validator).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

from chain.contracts import CONTRACT_NAMES, compile_contract

from scenarios.loader import load_scenario
from scenarios.runner import Recorder, execute_run, prepare_run
from scenarios.schema import Scenario

DEFAULT_COUNTS = "4,16,64,150,512"
EXPONENT_FROM, EXPONENT_TO = 16, 150


class _OutOfBudget(Exception):
    """Raised from the progress callback to stop a count that has used its wall budget."""


def _plain(scenario, count: int, heights: int):
    """`scenario` with `count` validators and a deviation threshold nothing reaches: just blocks."""
    return scenario.model_copy(
        update={
            "validators": scenario.validators.model_copy(update={"count": count, "byzantine": (), "power": None}),
            "chain": scenario.chain.model_copy(update={"heights": heights}),
            "detection": scenario.detection.model_copy(update={"deviation_bps": 1_000_000,
                                                               "operator_halt_height": None}),
            "incident": scenario.incident.model_copy(update={"start_height": heights - 1}),
        }
    )


def measure(scenario, count: int, heights: int, budget_s: float) -> tuple[int, float]:
    """(heights committed, wall seconds spent on them) for `count` validators."""
    setup = prepare_run(_plain(scenario, count, heights))
    started = time.perf_counter()
    reached = [0]

    def on_progress(phase: str, height: int, virtual_s: float) -> None:
        reached[0] = max(reached[0], height)
        if time.perf_counter() - started > budget_s:
            raise _OutOfBudget

    try:
        execute_run(setup, Recorder(progress=on_progress))
    except _OutOfBudget:
        pass
    return reached[0], time.perf_counter() - started


def _load(name: str):
    return Scenario.model_validate({"name": "small"}) if name == "small" else load_scenario(name)


def _measure_here(args) -> None:
    """One count in this process (the child's side): one JSON line with its figures."""
    for name in CONTRACT_NAMES:  # compiled before the clock starts
        compile_contract(name)
    reached, wall_s = measure(_load(args.scenario), args.one, args.heights, args.budget_s)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"count": args.one, "heights": reached, "wall_s": wall_s, "peak_mib": peak_kib / 1024}))


def _measure_in_child(args, count: int) -> dict:
    """One count in a new process, so its peak memory is its own."""
    command = [sys.executable, __file__, "--one", str(count), "--scenario", args.scenario,
               "--heights", str(args.heights), "--budget-s", str(args.budget_s)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="small", help="a bundled name or TOML path (default: defaults only)")
    parser.add_argument("--heights", type=int, default=5, help="heights each count runs to")
    parser.add_argument("--budget-s", type=float, default=120.0, help="wall seconds each count may spend")
    parser.add_argument("--counts", default=DEFAULT_COUNTS, help="validator counts, comma-separated")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child measuring one count
    args = parser.parse_args()
    if args.one is not None:
        _measure_here(args)
        return
    print(f"seed {_load(args.scenario).seed}")
    rows = {}
    for count in (int(c) for c in args.counts.split(",")):
        row = rows[count] = _measure_in_child(args, count)
        rate = row["heights"] / row["wall_s"] if row["wall_s"] > 0 else float("inf")
        print(f"{count:>4} validators: {row['heights']:>3} of {args.heights} heights in {row['wall_s']:6.1f} s wall, "
              f"{rate:6.2f} heights/s, peak memory {row['peak_mib']:7.1f} MiB", flush=True)
    ends = [rows.get(c) for c in (EXPONENT_FROM, EXPONENT_TO)]
    if all(ends) and all(r["heights"] for r in ends):
        per_height = [r["wall_s"] / r["heights"] for r in ends]
        exponent = math.log(per_height[1] / per_height[0]) / math.log(EXPONENT_TO / EXPONENT_FROM)
        print(f"growth exponent {EXPONENT_FROM} -> {EXPONENT_TO}: {exponent:.2f} (1 linear, 2 quadratic)")
    if len(rows) > 1:
        low, high = min(rows), max(rows)
        per_validator = (rows[high]["peak_mib"] - rows[low]["peak_mib"]) / (high - low)
        print(f"memory per validator past {low}: {per_validator:.2f} MiB")
    print(f"reproduce with: python benchmarks/validators_bench.py --heights {args.heights} "
          f"--budget-s {args.budget_s:g} --counts {args.counts}")


if __name__ == "__main__":
    main()
