"""Chain benchmarks: each figure is a ratio of two things measured side by side in one run.

    python benchmarks/chain_bench.py [--accounts 20000] [--quick] [--seed 0]

(a) block execution through `chain.execution.apply_block` against plain py-evm
    `state.apply_transaction`, one transaction at a time, on the same parent state
    (target: within 10%);
(b) full rollback (`chain.restore.rollback`) against rebuilding the state from scratch
    (target: under 1 ms, independent of the state's size: shown at two sizes);
(c) diff of 100 changed accounts against a full scan of both tries (target: under 1%).

Not a test: nothing here asserts a time. The seed is printed first; every figure is the
median of a few repeats.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM

from chain.diff import diff_roots, iterate_trie
from chain.execution import apply_block, build_block, context_for
from chain.genesis import GenesisSpec, build_genesis, derive_funded_accounts
from chain.history import History
from chain.restore import rollback
from chain.state import open_state
from chain.store import MemoryStore
from chain.transactions import sign_legacy

BALANCE_WEI = 10**18
PROPOSER = b"\x0a" * 20
REPEATS = 5


def median_s(run, repeats: int = REPEATS, setup=None) -> float:
    """Median wall time of `run()` in seconds; `setup()` (untimed) runs before each repeat."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class World:
    """A funded genesis of `count` accounts in a MemoryStore, and the keys that own them."""

    def __init__(self, seed: int, count: int):
        pairs = derive_funded_accounts(seed, count, BALANCE_WEI)
        self.keys = [key for key, _ in pairs]
        self.addresses = [account.address for _, account in pairs]
        self.spec = GenesisSpec(seed=seed, accounts=tuple(account for _, account in pairs))
        self.store = MemoryStore()
        start = time.perf_counter()
        self.genesis = build_genesis(self.store, self.spec)
        self.genesis_s = time.perf_counter() - start
        self.nonces = [0] * count

    def transfers(self, rng: random.Random, count: int) -> list:
        """`count` valid transfers between random accounts, with the next nonces."""
        txs = []
        for _ in range(count):
            sender = rng.randrange(len(self.keys))
            to = self.addresses[rng.randrange(len(self.addresses))]
            txs.append(sign_legacy(self.keys[sender], nonce=self.nonces[sender], to=to,
                                   value=rng.randrange(1, 1000), gas_price=1))
            self.nonces[sender] += 1
        return txs


def apply_with_plain_py_evm(store, parent_root: bytes, header, txs) -> bytes:
    """The baseline: py-evm's state, `apply_transaction` one by one, persisted once."""
    context = context_for(header)
    execution_context = ExecutionContext(
        coinbase=context.coinbase, timestamp=context.timestamp, block_number=context.height,
        difficulty=0, mix_hash=b"\x00" * 32, gas_limit=context.gas_limit, prev_hashes=(),
        chain_id=context.chain_id, base_fee_per_gas=0, excess_blob_gas=0,
    )
    state = PragueVM.get_state_class()(store, execution_context, parent_root)
    for tx in txs:
        state.lock_changes()
        state.apply_transaction(tx)
    state.persist()
    return state.state_root


def bench_execution(world: World, rng: random.Random, tx_count: int) -> None:
    txs = world.transfers(rng, tx_count)
    parent = world.genesis.header
    built = build_block(world.store, parent, txs, proposer=PROPOSER, timestamp=1)
    assert not built.rejected, built.rejected[:1]
    block = built.block
    plain_root = apply_with_plain_py_evm(world.store, parent.state_root, block.header, txs)
    assert plain_root == block.header.state_root, "baseline and chain disagree"
    chain_s, plain_s = [], []
    for _ in range(REPEATS):  # interleaved, so that both see the same machine
        chain_s.append(median_s(lambda: apply_block(world.store, parent.state_root, block), 1))
        plain_s.append(median_s(
            lambda: apply_with_plain_py_evm(world.store, parent.state_root, block.header, txs), 1))
    chain, plain = statistics.median(chain_s), statistics.median(plain_s)
    print(f"(a) execution, {tx_count} transfers over {len(world.keys)} accounts:")
    print(f"    apply_block {chain * 1e3:.1f} ms, plain py-evm {plain * 1e3:.1f} ms, "
          f"ratio {chain / plain:.3f} (target <= 1.10)")


def bench_rollback(world: World, rng: random.Random, blocks: int, txs_per_block: int) -> tuple[float, float]:
    history = History.create(world.store, world.genesis.header)
    built_blocks = []
    for height in range(1, blocks + 1):
        txs = world.transfers(rng, txs_per_block)
        built = build_block(world.store, history.head, txs, proposer=PROPOSER, timestamp=height)
        history.append(built.block)
        built_blocks.append(built.block)
    target = blocks // 2

    def reappend() -> None:
        for block in built_blocks[history.height:]:
            history.append(block)

    rollback_s = median_s(lambda: rollback(history, target), repeats=9, setup=reappend)
    assert history.root_at(target) == built_blocks[target - 1].header.state_root

    def rebuild() -> None:
        store = MemoryStore()
        root = build_genesis(store, world.spec).state_root
        for block in built_blocks[:target]:
            root = apply_block(store, root, block).state_root
        assert root == history.root_at(target)

    rebuild_s = median_s(rebuild, repeats=1 if len(world.keys) > 5000 else 3)
    print(f"    {len(world.keys):>6} accounts, {blocks} blocks, back to {target}: rollback "
          f"{rollback_s * 1e3:.4f} ms, rebuild from scratch {rebuild_s * 1e3:.0f} ms, "
          f"ratio {rollback_s / rebuild_s:.2e}")
    return rollback_s, rebuild_s


def bench_diff(world: World, rng: random.Random, changed: int) -> None:
    root = world.genesis.state_root
    state = open_state(world.store, root)
    chosen = rng.sample(world.addresses, changed)
    for address in chosen:
        state.set_balance(address, state.get_balance(address) + 1)
    state.persist()
    new_root = state.state_root

    def full_scan() -> int:
        left, right = dict(iterate_trie(world.store, root)), dict(iterate_trie(world.store, new_root))
        return sum(1 for key in left.keys() | right.keys() if left.get(key) != right.get(key))

    assert full_scan() == changed
    assert sorted(diff_roots(world.store, root, new_root).addresses) == sorted(chosen)
    diff_s = median_s(lambda: diff_roots(world.store, root, new_root))
    scan_s = median_s(full_scan, repeats=1 if len(world.keys) > 5000 else 3)
    print(f"(c) diff, {changed} changed of {len(world.keys)} accounts: diff_roots "
          f"{diff_s * 1e3:.1f} ms, full scan {scan_s * 1e3:.0f} ms, "
          f"ratio {diff_s / scan_s:.2%} (target < 1%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000, help="state size (accounts)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"seed {args.seed}")
    accounts = 400 if args.quick else args.accounts
    tx_count = 20 if args.quick else 500
    rng = random.Random(args.seed)

    big = World(args.seed, accounts)
    small = World(args.seed + 1, max(accounts // 10, 100))
    print(f"genesis: {accounts} accounts in {big.genesis_s:.2f} s, "
          f"{len(small.keys)} accounts in {small.genesis_s:.2f} s")
    bench_execution(big, rng, tx_count)
    print("(b) full rollback (target < 1 ms, independent of size):")
    blocks, per_block = (3, 5) if args.quick else (10, 20)
    small_s, _ = bench_rollback(small, rng, blocks=blocks, txs_per_block=per_block)
    big_s, _ = bench_rollback(big, rng, blocks=blocks, txs_per_block=per_block)
    print(f"    rollback time, large / small state: {big_s / small_s:.2f}")
    bench_diff(big, rng, 20 if args.quick else 100)
    print(f"reproduce with: python benchmarks/chain_bench.py --seed {args.seed}"
          f"{' --quick' if args.quick else f' --accounts {args.accounts}'}")


if __name__ == "__main__":
    main()
