"""One node, no consensus: the actors' transactions through `build_block` and `History.append`.

This is the exchange world on its own, for calibration and tests: how many accounts the
glitch liquidates, how the vault and open interest move, what a block costs. The
multi-validator runner drives the same `World` through consensus instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chain.exchange import (
    Liquidated,
    get_open_interest,
    get_vault_balance,
)
from chain.execution import build_block
from chain.history import History
from chain.store import MemoryStore, Store
from scenarios.actors import World, build_world
from scenarios.schema import Scenario


@dataclass(frozen=True)
class BlockStats:
    """What one block did to the exchange."""

    height: int
    state_root: bytes
    txs: int
    reverted: int
    rejected: int
    liquidations: int
    liquidated_accounts: tuple[bytes, ...]  # distinct, in order of first liquidation
    vault_wei: int
    open_interest: tuple[tuple[int, int], ...]  # (long, short) per market id
    posted_prices: tuple[int, ...]  # per market id
    glitch: bool


@dataclass(frozen=True)
class SingleNodeRun:
    """A single-node run: the per-block stats, and totals over the run."""

    seed: int
    glitch: bool
    blocks: tuple[BlockStats, ...]
    final_root: bytes
    wall_s: float

    @property
    def liquidations(self) -> int:
        """Liquidations over the whole run."""
        return sum(b.liquidations for b in self.blocks)

    @property
    def liquidated_accounts(self) -> tuple[bytes, ...]:
        """Distinct accounts liquidated at least once, in order of first liquidation."""
        seen: dict[bytes, None] = {}
        for block in self.blocks:
            seen.update(dict.fromkeys(block.liquidated_accounts))
        return tuple(seen)

    @property
    def txs(self) -> int:
        """Transactions included over the run."""
        return sum(b.txs for b in self.blocks)


def run_blocks(world: World, history: History, heights: int, *, block_time_s: float = 1.0) -> tuple[BlockStats, ...]:
    """Extend `history` by `heights` blocks of the world's transactions; `world` observes each."""
    stats = []
    store = history.store
    addresses = world.market.addresses
    markets = world.market.markets
    for _ in range(heights):  # bounded by the caller's height count
        parent = history.head
        height = parent.height + 1
        candidates = world.transactions_for(parent.height, parent.state_root)
        built = build_block(
            store,
            parent,
            candidates,
            proposer=world.market.owner,
            timestamp=world.genesis.header.timestamp + int(height * block_time_s),
            fork_id=world.fork_id,
        )
        history.append(built.block)
        events = world.observe(built.block, built.result)
        liquidated = [e.account for e in events if isinstance(e, Liquidated)]
        root = built.block.header.state_root
        glitch = world.market.glitch
        posted = world.index.prices
        stats.append(
            BlockStats(
                height=height,
                state_root=root,
                txs=len(built.block.transactions),
                reverted=built.result.failed_count,
                rejected=len(built.rejected),
                liquidations=len(liquidated),
                liquidated_accounts=tuple(dict.fromkeys(liquidated)),
                vault_wei=get_vault_balance(store, root, addresses),
                open_interest=tuple(get_open_interest(store, root, addresses, m) for m in markets),
                posted_prices=tuple(posted.get(m, 0) for m in markets),
                glitch=glitch is not None and glitch.is_active(height),
            )
        )
    return tuple(stats)


def run_single_node(
    scenario: Scenario,
    seed: int | None = None,
    *,
    glitch: bool = True,
    heights: int | None = None,
    store: Store | None = None,
) -> SingleNodeRun:
    """Genesis and `heights` blocks (default `chain.heights`) of `scenario` on one node.

    With `glitch=False` the price API stays honest throughout: the same world without
    the incident, to tell the glitch's liquidations from the organic ones.
    """
    started = time.perf_counter()
    seed = scenario.seed if seed is None else seed
    store = MemoryStore() if store is None else store
    world = build_world(scenario, store, seed, glitch=glitch)
    history = History.create(store, world.genesis.header)
    blocks = run_blocks(
        world,
        history,
        scenario.chain.heights if heights is None else heights,
        block_time_s=scenario.chain.block_time_s,
    )
    return SingleNodeRun(
        seed=seed,
        glitch=glitch,
        blocks=blocks,
        final_root=history.head.state_root,
        wall_s=time.perf_counter() - started,
    )
