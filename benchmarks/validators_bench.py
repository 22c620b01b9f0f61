"""Validator-count benchmark: heights per second of the chain phase by number of validators.

A small world (the scenario file's `name`-only defaults, no incident reached) runs with
4, 8, 16, ... validators; each count runs until it reaches `--heights` or spends
`--budget-s` wall seconds (checked at each commit), and prints the heights it committed per wall second (setup,
that is genesis and key derivation, excluded). What `validators.count`'s maximum in
the schema rests on. Not a test: no thresholds are asserted.
"""

from __future__ import annotations

import argparse
import time

from chain.contracts import CONTRACT_NAMES, compile_contract

from scenarios.loader import load_scenario
from scenarios.runner import Recorder, execute_run, prepare_run
from scenarios.schema import MAX_VALIDATORS


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="small", help="a bundled name or TOML path (default: defaults only)")
    parser.add_argument("--heights", type=int, default=10, help="heights each count runs to")
    parser.add_argument("--budget-s", type=float, default=60.0, help="wall seconds each count may spend")
    parser.add_argument("--counts", default=f"1,4,8,16,{MAX_VALIDATORS},{2 * MAX_VALIDATORS}",
                        help="validator counts, comma-separated (past the schema's maximum too)")
    args = parser.parse_args()
    if args.scenario == "small":
        from scenarios.schema import Scenario

        scenario = Scenario.model_validate({"name": "small"})
    else:
        scenario = load_scenario(args.scenario)
    print(f"seed {scenario.seed}")
    for name in CONTRACT_NAMES:  # compile once up front, so no measured count pays for it
        compile_contract(name)
    for count in (int(c) for c in args.counts.split(",")):
        reached, wall_s = measure(scenario, count, args.heights, args.budget_s)
        rate = reached / wall_s if wall_s > 0 else float("inf")
        print(f"{count:>4} validators: {reached:>3} of {args.heights} heights in {wall_s:6.1f} s wall, "
              f"{rate:6.2f} heights/s", flush=True)
    print(f"reproduce with: python benchmarks/validators_bench.py --heights {args.heights} "
          f"--budget-s {args.budget_s:g} --counts {args.counts}")


if __name__ == "__main__":
    main()
