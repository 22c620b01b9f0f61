"""Exchange calls per second against plain transfers, measured side by side in one run.

    python benchmarks/exchange_bench.py [--count N]

Each kind of transaction runs as one block of N through `execute_transactions` on the
same genesis (deposits and opening trades already in it), so the ratios compare like
with like: py-evm signature recovery, the state trie and persistence are in every
number; the Vyper code and its oracle calls are what differ.
"""

from __future__ import annotations

import argparse
import time

from chain.contracts import CONTRACT_NAMES, compile_contract
from chain.exchange import (
    USD,
    close_call,
    deposit_call,
    get_price,
    liquidate_call,
    post_prices_call,
    sign_call,
    trade_call,
    withdraw_call,
)
from chain.execution import execute_transactions
from chain.state import BlockContext, get_nonce
from chain.store import MemoryStore
from chain.transactions import chain_id_for_fork, sign_legacy
from scenarios.actors import build_world
from scenarios.schema import Scenario


def _scenario(count: int) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench",
            "seed": 1,
            "chain": {"accounts": count + 2, "heights": 100},
            "workload": {"traders": count, "keepers": 1, "profit_takers": 0, "leverage_min": 15.0, "leverage_max": 18.0},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="transactions per kind")
    count = parser.parse_args().count
    for name in CONTRACT_NAMES:
        compile_contract(name)  # compile outside the timings
    store = MemoryStore()
    world = build_world(_scenario(count), store, glitch=False)
    market, root = world.market, world.genesis.state_root
    addresses, traders = market.addresses, market.traders
    context = BlockContext(height=1, timestamp=1, chain_id=chain_id_for_fork(0))

    def nonce(address: bytes) -> int:
        return get_nonce(store, root, address)

    btc = get_price(store, root, addresses, 0)
    keeper = market.keepers[0]
    kinds = {
        "transfer": [
            sign_legacy(t.key, nonce=nonce(t.address), to=traders[0].address, value=1) for t in traders
        ],
        "deposit": [sign_call(t.key, deposit_call(addresses, USD), nonce=nonce(t.address), fork_id=0) for t in traders],
        "withdraw": [
            sign_call(t.key, withdraw_call(addresses, USD), nonce=nonce(t.address), fork_id=0) for t in traders
        ],
        "trade (2nd market)": [
            sign_call(t.key, trade_call(addresses, (market.openings[t.address].market + 1) % 3, 10**15), nonce=nonce(t.address), fork_id=0)
            for t in traders
        ],
        "close": [
            sign_call(t.key, close_call(addresses, market.openings[t.address].market), nonce=nonce(t.address), fork_id=0)
            for t in traders
        ],
        "post_prices (3 markets)": [
            sign_call(market.reporter.key, post_prices_call(addresses, {0: btc, 1: 3300 * USD, 2: 190 * USD}), nonce=nonce(market.reporter.address) + i, fork_id=0)
            for i in range(count)
        ],
    }
    # Liquidations: BTC at half price makes the levered BTC longs liquidatable.
    crash = sign_call(market.reporter.key, post_prices_call(addresses, {0: btc // 2}), nonce=nonce(market.reporter.address), fork_id=0)
    crashed_root = execute_transactions(store, root, context, [crash]).state_root
    victims = [t for t in traders if market.openings[t.address].market == 0 and market.openings[t.address].size > 0]
    liquidations = [
        sign_call(keeper.key, liquidate_call(addresses, t.address, 0), nonce=i, fork_id=0) for i, t in enumerate(victims)
    ]

    rates = {}
    for kind, txs in kinds.items():
        started = time.perf_counter()
        result = execute_transactions(store, root, context, txs)
        rates[kind] = (len(txs) / (time.perf_counter() - started), result.failed_count)
    started = time.perf_counter()
    result = execute_transactions(store, crashed_root, context, liquidations)
    rates["liquidate"] = (len(liquidations) / (time.perf_counter() - started), result.failed_count)

    base = rates["transfer"][0]
    print(f"{'kind':<24} {'tx/s':>8} {'vs transfer':>12} {'reverted':>9}")
    for kind, (rate, failed) in rates.items():
        print(f"{kind:<24} {rate:>8.0f} {rate / base:>11.2f}x {failed:>9}")


if __name__ == "__main__":
    main()
