"""Whole-run benchmark: what the headline run costs, phase by phase, against raw py-evm.

    python benchmarks/run_bench.py [SCENARIO] [--seed N] [--small] [--consensus-heights N]

Prints, measured in one process with warm caches (contracts compiled and one untimed
run first, unless --cold):
  (a) the scenario end to end (default paradex-2026, its own seed): wall and CPU seconds
      (the run's process, and the audit's band-on replay on the second core), transactions
      on the final chain, transactions executed (every proposal, re-execution, replay, probe
      and counterfactual that reached py-evm, in the run's process and in the replay's),
      executions per transaction, and the time of each phase: genesis, before the halt,
      emergency, reopening, audit (what the run waits for it), report;
  (b) raw py-evm applying the final chain's transactions to the same states (one Prague
      state per block at its parent root, `apply_transaction` one by one, persisted once),
      its opcodes, and the ratio l2sim / raw py-evm: everything l2sim adds over executing
      the chain once (stock py-evm over stock py-trie); then the same through l2sim's
      computation class and trie key memo;
  (d) gas by contract function over the final chain (the table in docs/design.md);
  (c) with --consensus-heights N: the same world without the incident for N heights,
      4 validators against a single node, with and without the execution and signature memos.
`--small` runs the scenario's small preset with no warm-up: a few seconds, for a smoke run.
Not a test: no thresholds are asserted; the goals are printed beside the figures.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import resource
import time
from dataclasses import dataclass, field

from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from eth.vm.code_stream import CodeStream

import chain.execution
import chain.nibbles
from chain.computation import AnalysedState
import scenarios.audit_replay
import scenarios.report
import scenarios.runner
from chain.contracts import CONTRACT_NAMES, _abi_types, compile_contract
from eth_utils import function_signature_to_4byte_selector
from chain.execution import context_for
from scenarios.errors import ScenarioError
from scenarios.loader import load_scenario
from scenarios.schema import MAX_SEED
from scenarios.single_node import run_single_node

PHASES = ("genesis", "before halt", "emergency", "reopening", "audit", "report")


@dataclass
class Meter:
    """Wall and CPU seconds by phase, and how many transactions reached py-evm (in all, and
    by phase)."""

    wall_s: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))
    cpu_s: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))
    executed: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    executions: int = 0
    background_executions: int = 0  # transactions the audit's replay process was sent (+1: the band)
    refused: int = 0  # offered but refused by their signing domain before py-evm

    @property
    def run_executions(self) -> int:
        """Executions after genesis (building a genesis deploys and funds; a cached one does not)."""
        return self.executions - self.executed["genesis"]

    def timed(self, phase: str, function, subtract: str | None = None):
        """`function` wrapped so that its time adds to `phase` (and, nested, leaves `subtract`)."""

        def wrapper(*args, **kwargs):
            wall, cpu, executions = time.perf_counter(), time.process_time(), self.executions
            try:
                return function(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                executions = self.executions - executions
                self.wall_s[phase] += wall
                self.cpu_s[phase] += cpu
                self.executed[phase] += executions
                if subtract is not None:
                    self.wall_s[subtract] -= wall
                    self.cpu_s[subtract] -= cpu
                    self.executed[subtract] -= executions

        return wrapper


@contextlib.contextmanager
def metered(meter: Meter):
    """The runner's phases and chain's transaction application, timed and counted into `meter`
    (module attributes swapped for the duration of one run: this is a benchmark, not product)."""
    runner = scenarios.runner
    apply_one = chain.execution._validate_and_apply
    feed = scenarios.audit_replay.BackgroundReplay.feed

    def counted(state, tx):
        # A transaction signed for another fork is refused before py-evm sees it (the
        # replay-protection check offers the discarded window to the final head): not an execution.
        if tx.chain_id == state.execution_context.chain_id:
            meter.executions += 1
        else:
            meter.refused += 1
        return apply_one(state, tx)

    def counted_feed(replay, block):
        sent = len(replay._sent)
        feed(replay, block)
        if len(replay._sent) > sent:
            meter.background_executions += len(block.transactions) + (sent == 0)

    swaps = [
        (runner, "prepare_run", meter.timed("genesis", runner.prepare_run)),
        (runner, "run_chain_phase", meter.timed("before halt", runner.run_chain_phase)),
        (runner, "run_emergency_phase", meter.timed("emergency", runner.run_emergency_phase)),
        (runner, "follow_restore", meter.timed("emergency", runner.follow_restore)),
        (runner, "run_restart_phase", meter.timed("reopening", runner.run_restart_phase)),
        (runner, "compute_reopening_audit",
         meter.timed("audit", runner.compute_reopening_audit, subtract="reopening")),
        (chain.execution, "_validate_and_apply", counted),
        (scenarios.audit_replay.BackgroundReplay, "feed", counted_feed),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in swaps]
    for module, name, replacement in swaps:
        setattr(module, name, replacement)
    try:
        yield meter
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_metered(scenario) -> tuple[object, dict, Meter, float, float, float]:
    """One run and its report, timed by phase: (run, report, meter, wall s, CPU s, CPU s of the
    audit's replay process)."""
    meter = Meter()
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu_s()
    with metered(meter):
        run, virtual_s, wall_run_s = scenarios.runner.run_scenario_once(scenario)
        report = meter.timed("report", scenarios.report.build_report)(run, virtual_s, wall_run_s)
    return (run, report, meter, time.perf_counter() - wall, time.process_time() - cpu,
            _children_cpu_s() - children)


def final_chain(run) -> list:
    """(parent root, block) for every block of the reference validator's final chain."""
    history = run.reference.view.history
    return [(history.root_at(h - 1), history.block_at(h)) for h in range(1, history.height + 1)]


def apply_raw(store, blocks, state_class, after_each=None) -> int:
    """py-evm alone: each block's transactions on a Prague state at its parent root; returns
    how many it applied (calling `after_each()` after each). Asserts every root, so that both
    sides did the same work."""
    applied = 0
    for parent_root, block in blocks:
        context = context_for(block.header)
        execution_context = ExecutionContext(
            coinbase=context.coinbase, timestamp=context.timestamp, block_number=context.height,
            difficulty=0, mix_hash=b"\x00" * 32, gas_limit=context.gas_limit, prev_hashes=(),
            chain_id=context.chain_id, base_fee_per_gas=0, excess_blob_gas=0,
        )
        state = state_class(store, execution_context, parent_root)
        for tx in block.transactions:
            state.lock_changes()
            state.apply_transaction(tx)
            applied += 1
            if after_each is not None:
                after_each()
        state.persist()
        assert state.state_root == block.header.state_root, f"raw py-evm disagrees at {block.height}"
    return applied


def count_raw_opcodes(store, blocks) -> list[int]:
    """Opcodes py-evm runs for each transaction of the final chain (an instrumented pass,
    never timed)."""
    counter = collections.Counter()
    per_transaction = []
    # Every opcode py-evm runs is one step of the code stream's iterator: count those.
    iterate = CodeStream.__iter__

    def counting_iter(self):
        for opcode in iterate(self):
            counter["opcodes"] += 1
            yield opcode

    CodeStream.__iter__ = counting_iter
    try:
        apply_raw(store, blocks, PragueVM.get_state_class(),
                  after_each=lambda: per_transaction.append(counter["opcodes"] - sum(per_transaction)))
    finally:
        CodeStream.__iter__ = iterate
    return per_transaction


def bench_run(scenario, small: bool, cold: bool) -> None:
    for name in CONTRACT_NAMES:  # compile once up front, so no measured run pays for it
        compile_contract(name)
    if not (small or cold):
        scenarios.runner.run_scenario_once(scenario)  # warm: imports, caches, code paths
    run, report, meter, wall_s, cpu_s, background_cpu_s = run_metered(scenario)
    txs = sum(len(block.transactions) for _, block in final_chain(run))
    in_all = meter.run_executions + meter.background_executions
    print(f"(a) {scenario.name}: {wall_s:.2f} s wall (goal <= 15), {cpu_s:.2f} s CPU in the run's process and "
          f"{background_cpu_s:.2f} s in the audit's replay process; {report['metrics']['blocks']} heights, {txs} "
          f"transactions on the final chain, {meter.run_executions} executed after genesis in the run's process "
          f"({meter.run_executions / max(txs, 1):.2f} a transaction, goal <= 1.2) and "
          f"{meter.background_executions} by the replay process ({in_all / max(txs, 1):.2f} in all; {meter.refused} "
          f"more refused by their signing domain before py-evm); "
          f"every check held: {all(c['ok'] for c in report['checks'].values())}; digest {report['digest'][:16]}")
    for phase in PHASES:
        print(f"    {phase:<12} {meter.wall_s[phase]:7.2f} s wall {meter.cpu_s[phase]:7.2f} s CPU "
              f"{meter.executed[phase]:6d} executed")
    blocks = final_chain(run)
    chain.nibbles.install(chain.nibbles.STOCK)  # raw is stock py-evm over stock py-trie
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        applied = apply_raw(run.store, blocks, PragueVM.get_state_class())
        raw_wall_s, raw_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        chain.nibbles.install(chain.nibbles.INSTALLED)
    per_transaction = count_raw_opcodes(run.store, blocks)
    opcodes = sum(per_transaction)
    print(f"(b) raw py-evm, the final chain's {applied} transactions on the same states: "
          f"{raw_wall_s:.2f} s wall, {raw_cpu_s:.2f} s CPU, {opcodes} opcodes "
          f"({opcodes / max(applied, 1):.0f} per transaction); l2sim / raw py-evm = "
          f"{cpu_s / raw_cpu_s:.2f} by CPU, {wall_s / raw_wall_s:.2f} by wall (goal <= 1.15)")
    wall = time.perf_counter()
    apply_raw(run.store, blocks, AnalysedState)
    inline_wall_s = time.perf_counter() - wall
    print(f"    the same through l2sim's computation and trie key memo (chain/computation.py, chain/nibbles.py): "
          f"{inline_wall_s:.2f} s wall, {raw_wall_s / inline_wall_s:.2f}x stock py-evm")
    results = [chain.execution.apply_block(run.store, root, block, cache=run.cache) for root, block in blocks]
    print_gas_table(blocks, results, per_transaction)


def function_names() -> dict[bytes, str]:
    """4-byte selector -> "contract.function" for every function of the three contracts."""
    names = {}
    for contract in CONTRACT_NAMES:
        for entry in compile_contract(contract).abi:
            if entry.get("type") == "function":
                signature = f"{entry['name']}({','.join(_abi_types(entry['inputs']))})"
                names[function_signature_to_4byte_selector(signature)] = f"{contract}.{entry['name']}"
    return names


def gas_by_function(blocks, results, opcodes) -> dict[str, list[tuple[int, int]]]:
    """function -> (gas, opcodes) of each of its calls on the final chain (transfers as "transfer")."""
    names = function_names()
    out: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    counts = iter(opcodes)
    for (_, block), result in zip(blocks, results):
        before = 0
        for tx, receipt in zip(block.transactions, result.receipts):
            data = bytes(tx.data)
            name = names.get(data[:4], "other") if data else "transfer"
            out[name].append((receipt.gas_used - before, next(counts)))
            before = receipt.gas_used
    return out


def print_gas_table(blocks, results, opcodes) -> None:
    table = gas_by_function(blocks, results, opcodes)
    print("(d) by function on the final chain: calls, mean gas, mean opcodes, share of opcodes")
    total = sum(opcodes)
    for name, calls in sorted(table.items(), key=lambda item: -sum(o for _, o in item[1])):
        gas, ops = sum(g for g, _ in calls), sum(o for _, o in calls)
        print(f"    {name:<28} {len(calls):6d} {gas // len(calls):9d} {ops // len(calls):7d} {ops / total:7.1%}")


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


def bench_consensus(scenario, heights: int) -> None:
    plain = _without_incident(scenario, heights)
    started = time.perf_counter()
    single = run_single_node(plain)
    single_s = time.perf_counter() - started
    run, _, consensus_s = scenarios.runner.run_scenario_once(plain)
    _, _, no_memo_s = scenarios.runner.run_scenario_once(plain, memo=False)
    print(f"(c) {heights} heights without the incident: single node {single_s:.2f} s "
          f"({len(single.blocks)} blocks), {scenario.validators.count} validators {consensus_s:.2f} s "
          f"({run.reference.view.history.height} blocks); single/consensus = {single_s / consensus_s:.2f} "
          f"(target >= 0.8); memos off {no_memo_s:.2f} s, memo on is {no_memo_s / consensus_s:.2f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="paradex-2026")
    parser.add_argument("--seed", type=int, default=None, help=f"override the scenario's seed (0..{MAX_SEED})")
    parser.add_argument("--small", "--quick", action="store_true", dest="small",
                        help="the small preset, no warm-up: a smoke run (--quick as in the other benchmarks)")
    parser.add_argument("--cold", action="store_true", help="no untimed warm-up run first")
    parser.add_argument("--consensus-heights", type=int, default=0,
                        help="also (c), the consensus overhead over this many heights (0: skip)")
    args = parser.parse_args()
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        parser.exit(2, f"run_bench: --seed {args.seed} is not an integer in 0..{MAX_SEED}\n")
    try:
        scenario = load_scenario(args.scenario, small=args.small)
    except ScenarioError as error:
        parser.exit(2, f"run_bench: {error}\n")
    if args.seed is not None:
        scenario = scenario.model_copy(update={"seed": args.seed})
    print(f"seed {scenario.seed}")
    bench_run(scenario, args.small, args.cold)
    if args.consensus_heights:
        bench_consensus(scenario, args.consensus_heights)
    flags = (" --small" if args.small else "") + (" --cold" if args.cold else "")
    flags += f" --consensus-heights {args.consensus_heights}" if args.consensus_heights else ""
    print(f"reproduce with: python benchmarks/run_bench.py {args.scenario} --seed {scenario.seed}{flags}")


if __name__ == "__main__":
    main()
