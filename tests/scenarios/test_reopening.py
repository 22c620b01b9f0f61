"""The reopening after a restart: cancel-only, post-only, then open, set by owner calls in
the certified restart ledger at the phases' heights; aggressors in the thin market; the
price band keeping every restricted-phase liquidation inside it.

One small run per module fixture (a few validators, ~40 traders, 36 heights).
"""

import dataclasses

import pytest

from chain.blocks import Block
from chain.exchange import MARKET_IDS, Liquidated, decode_events, get_price, get_trading_mode
from chain.execution import apply_block
from chain.store import OverlayStore
from scenarios.audit_replay import MIN_BACKGROUND_BLOCKS, BackgroundReplay, is_background_possible
from scenarios.loader import load_scenario
from scenarios.recovery import BandedReplay, compute_reopening_audit
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
    "response.compensation_policies": ["reopening-harm"],
    "response.price_band_bps": 0,
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
        # The audit's payments follow the planned calls where trading opens.
        installed = node.view.restart_ledger
        assert installed.keys() == recovery.restart_ledger.keys()
        for height, planned in recovery.restart_ledger.items():
            assert installed[height][: len(planned)] == planned
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


# ---------------------------------------------------------------- compensation


def test_every_compensation_entry_recomputes_from_the_report(unbanded):
    run, report = unbanded
    assert not [name for name, check in report["checks"].items() if not check["ok"]]
    compensation = report["compensation"]
    assert compensation["entries"], "the unbanded reopening must harm someone, or this test proves nothing"
    assert compensation["total"] == sum(e["amount"] for e in compensation["entries"])
    reopened = set(report["reopening"]["liquidated_accounts"])
    for entry in compensation["entries"]:
        assert entry["amount"] == entry["counterfactual_equity"] - entry["restored_equity"] > 0
        assert entry["reason"] == "reopening-harm" and entry["payer"] == "liquidator-vault"
        assert entry["account"] in reopened
    returned = report["restore"]["returned"]
    assert returned["accounts"] == len(report["incident"]["liquidated_accounts"]) > 0
    assert returned["total"] == sum(e["amount"] for e in returned["entries"])
    for entry in returned["entries"]:
        assert entry["amount"] == entry["restored_equity"] - entry["halted_equity"]
    # The restore gave the window's liquidated their equity back: reported, not paid.
    assert returned["total"] > 0


def test_an_account_whose_counterfactual_equals_its_restored_equity_is_paid_nothing(unbanded):
    run, _ = unbanded
    node = run.reference
    paid = node.audit
    assert paid is not None and paid.entries and paid.harmed
    # A replay whose band never binds (the premium is capped at 50 %) is the chain as it went:
    # every harmed account's counterfactual equals its equity, so nothing is owed.
    same = compute_reopening_audit(run.store, node.view.history, run.setup.exchange, run.recovery, 100,
                                   replay_band_bps=10_000)
    assert same.harmed == paid.harmed and same.entries == ()


def test_the_audit_pays_in_the_block_where_trading_opens(unbanded):
    run, _ = unbanded
    audit = run.reference.audit
    block = run.reference.view.history.block_at(audit.height)
    planned = run.recovery.restart_ledger[audit.height]
    expected = tuple(tx.hash for tx in planned + audit.transactions)
    assert tuple(tx.hash for tx in block.transactions[: len(expected)]) == expected
    assert len(audit.transactions) == len(audit.entries)


def test_with_the_band_nobody_is_harmed(banded):
    run, report = banded
    assert report["compensation"]["entries"] == []
    assert not [name for name, check in report["checks"].items() if not check["ok"]]


def _reopening_blocks(run):
    history, recovery = run.reference.view.history, run.recovery
    return history, range(recovery.restart_height, recovery.audit_height)


def test_the_run_replays_the_audit_in_the_background_and_it_equals_a_local_replay(unbanded):
    run, _ = unbanded
    recovery = run.recovery
    assert recovery.audit_height - recovery.restart_height >= MIN_BACKGROUND_BLOCKS and is_background_possible()
    # The audit the run installed (from the background replay) is the one a node computes alone.
    alone = compute_reopening_audit(run.store, run.reference.view.history, run.setup.exchange, recovery, 100)
    assert alone == run.reference.audit


def test_the_background_replay_writes_what_a_local_replay_writes(unbanded):
    run, _ = unbanded
    history, heights = _reopening_blocks(run)
    parent, band = history.header_at(heights.start - 1), 100
    local = BandedReplay(OverlayStore(run.store.get_forked_reader()), run.setup.exchange, parent, band)
    for height in heights:
        local.add(history.block_at(height))
    background = BackgroundReplay(run.store, run.setup.exchange, parent, band, heights.stop - 1)
    try:
        for height in heights:
            background.feed(history.block_at(height))
        assert background.take_head(history) == local.head
        result = background._result
        assert result.nodes == local.store.written_nodes and result.nodes
        assert result.preimages == local.store.written_preimages
    finally:
        background.close()
    assert not background._process.is_alive()


def test_a_replay_of_other_blocks_than_the_node_holds_is_not_used(unbanded):
    run, _ = unbanded
    history, heights = _reopening_blocks(run)
    parent = history.header_at(heights.start - 1)
    first = history.block_at(heights.start)
    # Planted fault: the block at the restart height sent with one transaction fewer (its
    # header, parent link included, unchanged): the replay takes it, the node must not.
    forged = Block(first.header, first.transactions[:-1])
    background = BackgroundReplay(run.store, run.setup.exchange, parent, 100, heights.stop - 1)
    try:
        background.feed(forged)
        for height in heights:
            background.feed(history.block_at(height))  # the real first block comes too late
        assert background.take_head(history) is None
    finally:
        background.close()
    # A replay that stopped one block short is not used either.
    short = BackgroundReplay(run.store, run.setup.exchange, parent, 100, heights.stop - 1)
    try:
        for height in heights[:-1]:
            short.feed(history.block_at(height))
        assert short.take_head(history) is None
    finally:
        short.close()
