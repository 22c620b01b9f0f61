"""Consensus alone: heights and messages per second for 4 to 256 validators, in one run.

    python benchmarks/consensus_bench.py [--seed N] [--sizes 4,16,64,256]

Each size runs the Tendermint engines over the simulated network (complete topology,
50 ms links, no faults) with the bytes app, so the numbers are consensus, signatures
and the event loop, nothing of the chain. Larger sets run fewer heights to keep the whole
benchmark to a couple of minutes. Rates are per wall-clock second; "memo off" is the same
run with the signature memo switched off, measured beside it (small sets only: without
the memo every node recovers every signature it receives).
"""

from __future__ import annotations

import argparse
import time

from consensus.messages import ValidatorSet, set_signature_memo
from consensus.sim import BytesApp, NodeKit, SimConfig, Trace, run_simulation
from validators.behaviours import make_behaviour_lookup
from validators.journal import MemoryJournal, get_resume_point, make_journaled_signer
from validators.keys import ValidatorKey, derive_validator_keys, make_raw_signer

KEY_SEED = 1
HEIGHTS_BY_SIZE = {4: 200, 16: 40, 64: 6, 256: 2}
MEMO_OFF_MAX_SIZE = 16


def make_kit_factory(keys: tuple[ValidatorKey, ...]):
    """Bytes-app kits with in-memory journals."""

    def make_node_kit(index: int) -> NodeKit:
        journal = MemoryJournal()
        return NodeKit(BytesApp(index), make_journaled_signer(keys[index], journal), make_raw_signer(keys[index]),
                       lambda fork_id, height: get_resume_point(journal, fork_id, height),
                       get_behaviour=make_behaviour_lookup(keys[index]))

    return make_node_kit


def run_timed(seed: int, keys: tuple[ValidatorKey, ...], heights: int) -> tuple[Trace, float]:
    """One fault-free run to `heights` heights; returns its trace and wall seconds."""
    validator_set = ValidatorSet(tuple(k.public_key for k in keys), (1,) * len(keys))
    config = SimConfig(seed=seed, target_height=heights, max_time_s=10.0 * heights + 60.0, max_events=20_000_000)
    started = time.perf_counter()
    trace = run_simulation(config, validator_set, make_kit_factory(keys))
    return trace, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default="4,16,64,256", help="comma-separated validator counts")
    parser.add_argument("--heights", type=int, default=None, help="heights every size runs (default: by size)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"seed {args.seed}")
    print(f"{'validators':>10} {'heights':>7} {'virtual s':>9} {'wall s':>7} {'heights/s':>9} "
          f"{'messages':>9} {'messages/s':>10} {'memo off x':>10}")
    for size in sizes:
        keys = derive_validator_keys(KEY_SEED, size)  # outside the timings
        heights = args.heights or HEIGHTS_BY_SIZE.get(size, 2)
        trace, wall_s = run_timed(args.seed, keys, heights)
        assert trace.result is not None and trace.result.reason == "predicate", trace.result
        slowdown = "-"
        if size <= MEMO_OFF_MAX_SIZE:
            set_signature_memo(False)
            try:
                trace_off, wall_off_s = run_timed(args.seed, keys, heights)
            finally:
                set_signature_memo(True)
            assert trace_off.digest() == trace.digest(), "the signature memo changed the run"
            slowdown = f"{wall_off_s / wall_s:.2f}"
        print(f"{size:>10} {heights:>7} {trace.result.now_us / 1e6:>9.2f} {wall_s:>7.2f} {heights / wall_s:>9.2f} "
              f"{trace.deliveries:>9} {trace.deliveries / wall_s:>10.0f} {slowdown:>10}")


if __name__ == "__main__":
    main()
