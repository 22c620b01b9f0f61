"""Helpers of the exchange-world tests: a small scenario and a single-node run of it.

Small on purpose (about 50 accounts with positions, 14 blocks): every Vyper call costs
milliseconds in py-evm.
"""

from dataclasses import dataclass

from chain.history import History
from chain.store import MemoryStore
from scenarios.actors import World, build_world
from scenarios.schema import Scenario
from scenarios.single_node import BlockStats, run_blocks

HEIGHTS = 14
GLITCH_START = 8


def small_scenario(seed: int = 7, **workload) -> Scenario:
    """A scenario with ~50 positioned accounts, BTC posted at 0 for three blocks from height 8."""
    return Scenario.model_validate(
        {
            "name": "small",
            "seed": seed,
            "chain": {"accounts": 70, "heights": HEIGHTS, "finality_blocks": 4},
            "incident": {"market": "BTC-USD", "start_height": GLITCH_START, "duration_blocks": 3},
            "workload": {
                "traders": 45,
                "keepers": 2,
                "profit_takers": 4,
                "leverage_max": 20.0,
                "trade_probability": 0.15,
                "withdraw_probability": 0.1,
                "max_liquidations_per_keeper": 15,
                **workload,
            },
            "exchange": {"vault_usd": 2_000_000.0},
        }
    )


@dataclass
class Run:
    """A world, its history and the per-block stats of running it."""

    world: World
    history: History
    blocks: tuple[BlockStats, ...]

    @property
    def store(self):
        return self.history.store


def run_world(scenario: Scenario, *, glitch: bool = True, heights: int = HEIGHTS) -> Run:
    """Genesis and `heights` blocks on one node."""
    store = MemoryStore()
    world = build_world(scenario, store, glitch=glitch)
    history = History.create(store, world.genesis.header)
    return Run(world, history, run_blocks(world, history, heights))
