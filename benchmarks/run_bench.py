"""Whole-run benchmark: wall time of a scenario, and what consensus costs over one node.

Prints, measured side by side in one process:
  (a) the scenario end to end (default paradex-2026): wall seconds and heights per second;
  (b) the same world without the incident for N heights: 4 validators (execution and
      signature checks memoised across honest nodes) vs a single node building the same
      kind of blocks; the ratio single/consensus (target: at least 0.8);
  (c) the 4-validator run again with both memos off, to show what memoisation buys.
Not a test: no thresholds are asserted.
"""

from __future__ import annotations

import argparse
import time

from chain.contracts import CONTRACT_NAMES, compile_contract

from scenarios.loader import load_scenario
from scenarios.report import build_report
from scenarios.runner import run_scenario_once
from scenarios.single_node import run_single_node


def _without_incident(scenario, heights: int):
    """The scenario with a deviation threshold nothing reaches: no halt, just blocks."""
    return scenario.model_copy(
        update={
            "chain": scenario.chain.model_copy(update={"heights": heights}),
            "detection": scenario.detection.model_copy(update={"deviation_bps": 1_000_000}),
            "incident": scenario.incident.model_copy(update={"start_height": heights - 1, "duration_blocks": 1,
                                                               "bad_price": 1e9}),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="paradex-2026")
    parser.add_argument("--heights", type=int, default=40, help="heights for the consensus-overhead runs")
    parser.add_argument("--skip-full", action="store_true", help="skip (a), the full scenario run")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    print(f"seed {scenario.seed}")
    for name in CONTRACT_NAMES:  # compile once up front, so no measured run pays for it
        compile_contract(name)

    if not args.skip_full:
        run, virtual_s, wall_s = run_scenario_once(scenario)
        report = build_report(run, virtual_s, wall_s)
        blocks = report["metrics"]["blocks"]
        print(f"(a) {scenario.name}: {wall_s:.1f} s wall, {blocks} heights of the final chain, "
              f"{blocks / wall_s:.2f} heights/s, {report['metrics']['txs']} transactions, "
              f"{report['metrics']['messages']} signed messages, every check held: "
              f"{all(c['ok'] for c in report['checks'].values())}")

    plain = _without_incident(scenario, args.heights)
    started = time.perf_counter()
    single = run_single_node(plain)
    single_s = time.perf_counter() - started
    run, _, consensus_s = run_scenario_once(plain)
    _, _, no_memo_s = run_scenario_once(plain, memo=False)
    print(f"(b) {args.heights} heights without the incident: single node {single_s:.2f} s "
          f"({len(single.blocks)} blocks), {scenario.validators.count} validators {consensus_s:.2f} s "
          f"({run.reference.view.history.height} blocks); single/consensus = {single_s / consensus_s:.2f} "
          f"(target >= 0.8)")
    print(f"(c) same with execution and signature memos off: {no_memo_s:.2f} s; "
          f"memo on is {no_memo_s / consensus_s:.2f}x faster")
    print(f"reproduce with: python benchmarks/run_bench.py {args.scenario} --heights {args.heights}")


if __name__ == "__main__":
    main()
