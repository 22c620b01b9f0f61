"""The reopening after a restart: cancel-only, post-only, then open, set by owner calls in
the certified restart ledger at the phases' heights; aggressors in the thin market; the
price band keeping every restricted-phase liquidation inside it.

One small run per module fixture (a few validators, ~40 traders, 36 heights).
"""

import dataclasses

import pytest

from chain.exchange import MARKET_IDS, Liquidated, decode_events, get_price, get_trading_mode
from chain.execution import apply_block
from scenarios.loader import load_scenario
from scenarios.report import build_report
from scenarios.runner import run_scenario_once

PAXG = MARKET_IDS["PAXG-USD"]
REOPENING = {
    "chain.accounts": 120,
    "chain.heights": 40,
    "incident.start_height": 10,
    "incident.duration_blocks": 4,
    "incident.kind": "both",
    "detection.delay_blocks": 2,
    "response.pause_s": 600.0,
    "response.cancel_only_s": 4.0,
    "response.post_only_s": 12.0,
    "response.reopen_depth_share": 0.2,
    "workload.traders": 50,
    "workload.keepers": 2,
    "workload.profit_takers": 4,
    "workload.aggressors": 3,
    "workload.aggressor_notional_usd": 150_000.0,
    "workload.trade_probability": 0.05,
    "workload.max_liquidations_per_keeper": 20,
    "workload.market_weights": {"BTC-USD": 0.4, "PAXG-USD": 0.6},
    "prices.initial_usd": {"BTC-USD": 95_000.0, "ETH-USD": 3_300.0, "SOL-USD": 190.0, "PAXG-USD": 4_600.0},
    "exchange.depth_usd": {"PAXG-USD": 200_000.0},
    "exchange.funding_index_usd": {"BTC-USD": 2_000.0, "PAXG-USD": 60.0},
}


def run_reopening(**overrides):
    scenario = load_scenario("paradex-2026", overrides={**REOPENING, **overrides})
    run, virtual_s, wall_s = run_scenario_once(scenario, memo=True)
    return run, build_report(run, virtual_s, wall_s)


@pytest.fixture(scope="module")
def unbanded():
    return run_reopening()


@pytest.fixture(scope="module")
def banded():
    return run_reopening(**{"response.price_band_bps": 100})


def restricted_liquidations(run):
    """(height, Liquidated, index price) of every liquidation inside cancel-only or post-only."""
    phases = run.recovery.reopening_phases
    start, end = phases[0][0], phases[-1][0]
    history, store = run.reference.view.history, run.store
    addresses = run.world.market.addresses
    found = []
    for height in range(start, min(end, history.height + 1)):
        result = apply_block(store, history.root_at(height - 1), history.block_at(height))
        for event in decode_events(addresses, result.receipts):
            if isinstance(event, Liquidated):
                found.append((height, event, get_price(store, history.root_at(height), addresses, event.market)))
    return found


def test_the_phases_follow_the_response_and_the_chain_is_in_each_mode(unbanded):
    run, report = unbanded
    phases = report["reopening"]["phases"]
    assert [p["mode"] for p in phases] == ["cancel-only", "post-only", "open"]
    restart = run.recovery.restart_height
    assert phases[0]["start_height"] == restart
    assert phases[1]["start_height"] == restart + 4 and phases[2]["start_height"] == restart + 16
    history, addresses = run.reference.view.history, run.world.market.addresses
    for phase in phases:
        end = phase["end_height"] if phase["end_height"] is not None else history.height + 1
        for height in range(phase["start_height"], min(end, history.height + 1)):
            assert get_trading_mode(run.store, history.root_at(height), addresses) == phase["mode"]


def test_every_ledger_height_starts_with_its_certified_transactions(unbanded):
    run, _ = unbanded
    ledger = run.recovery.restart_ledger
    assert len(ledger) == 3  # restart, post-only, open
    for node in run.honest:
        history = node.view.history
        for height, txs in sorted(ledger.items()):
            block = history.block_at(height)
            assert tuple(tx.hash for tx in block.transactions[: len(txs)]) == tuple(tx.hash for tx in txs)


def test_the_plan_certifies_the_later_phase_calls(unbanded):
    run, _ = unbanded
    recovery = run.recovery
    for node in run.honest:
        assert node.view.restart_ledger == recovery.restart_ledger
    # Planted fault: a plan whose post-only call came one block later must not hash the same.
    (height, txs), = recovery.later_ledger[:1]
    moved = dataclasses.replace(recovery, later_ledger=((height + 1, txs), *recovery.later_ledger[1:]))
    assert moved.compensation_digest != recovery.compensation_digest
    assert run.plan.compensation_digest == recovery.compensation_digest


def test_aggressors_trade_in_post_only_and_liquidations_follow(unbanded):
    run, report = unbanded
    assert report["reopening"]["liquidations"] > 0
    assert any(e.market == PAXG for _, e, _ in restricted_liquidations(run))


def test_with_the_band_no_restricted_liquidation_is_outside_it(banded, unbanded):
    run, report = banded
    outside_unbanded = [(h, e) for h, e, index in restricted_liquidations(unbanded[0])
                        if abs(e.price - index) * 10_000 > index * 100]
    assert outside_unbanded, "the unbanded run must liquidate outside the band, or this test proves nothing"
    for height, event, index in restricted_liquidations(run):
        assert abs(event.price - index) * 10_000 <= index * 100, (height, event)
    assert report["reopening"]["liquidations"] < unbanded[1]["reopening"]["liquidations"]
