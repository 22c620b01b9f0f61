"""The typed client reads what direct contract calls read, and decodes what the contracts log."""

from chain.contracts import compile_contract, decode_result, encode_call
from chain.exchange import (
    Liquidated,
    Traded,
    decode_events,
    get_bridge_withdrawals,
    get_collateral,
    get_equity,
    get_margin_requirement,
    get_open_interest,
    get_perps_totals,
    get_position,
    get_price,
    get_vault_balance,
    is_liquidatable,
    split_withdrawals,
)
from chain.execution import apply_block
from chain.state import call_view, get_balance
from scenarios.actors import compute_health


def _direct(run, fn_name, *args):
    perps = compile_contract("perps")
    root = run.history.head.state_root
    output = call_view(run.store, root, run.world.market.addresses.perps, encode_call(perps, fn_name, *args))
    return decode_result(perps, fn_name, output)


def test_reads_match_direct_calls(glitch_run):
    run, root = glitch_run, glitch_run.history.head.state_root
    addresses = run.world.market.addresses
    for actor in run.world.market.traders[:5]:
        account = actor.address
        assert get_collateral(run.store, root, addresses, account) == _direct(run, "collateral", account)[0]
        assert get_equity(run.store, root, addresses, account) == _direct(run, "equity", account)[0]
        assert get_margin_requirement(run.store, root, addresses, account) == _direct(
            run, "margin_requirement", account
        )[0]
        assert is_liquidatable(run.store, root, addresses, account) == _direct(run, "is_liquidatable", account)[0]
        position = get_position(run.store, root, addresses, account, 0)
        assert (position.size, position.entry_price) == _direct(run, "position", account, 0)
    assert get_vault_balance(run.store, root, addresses) == _direct(run, "vault_balance")[0]
    assert get_open_interest(run.store, root, addresses, 0) == _direct(run, "open_interest", 0)


def test_the_index_equals_the_chain_to_the_wei(glitch_run):
    """What keepers compute in Python is what the contract would say, for every actor."""
    run, root = glitch_run, glitch_run.history.head.state_root
    world, addresses = run.world, run.world.market.addresses
    for market in world.market.markets:
        assert world.index.prices[market] == get_price(run.store, root, addresses, market)
    for actor in (*world.market.traders[:20], *world.market.profit_takers, *world.market.keepers):
        account = actor.address
        assert world.index.collateral.get(account, 0) == get_collateral(run.store, root, addresses, account)
        health = compute_health(world.index, world.market.params, account)
        assert health.equity == get_equity(run.store, root, addresses, account)
        assert health.maintenance == get_margin_requirement(run.store, root, addresses, account)
        assert health.is_liquidatable == is_liquidatable(run.store, root, addresses, account)
        for market, size, entry in world.index.positions.get(account, ()):
            assert get_position(run.store, root, addresses, account, market).size == size


def test_open_interest_is_the_sum_of_the_indexed_positions(glitch_run):
    run, root = glitch_run, glitch_run.history.head.state_root
    for market in run.world.market.markets:
        sizes = [s for ps in run.world.index.positions.values() for m, s, _ in ps if m == market]
        long = sum(s for s in sizes if s > 0)
        short = -sum(s for s in sizes if s < 0)
        assert get_open_interest(run.store, root, run.world.market.addresses, market) == (long, short)


def test_genesis_opens_one_position_per_trader(glitch_run):
    market = glitch_run.world.market
    trades = [e for e in decode_events(market.addresses, glitch_run.world.genesis.receipts) if isinstance(e, Traded)]
    assert len(trades) == len(market.traders) + len(market.profit_takers)
    assert {t.account for t in trades} == set(market.openings)


def test_liquidation_events_decode_with_their_fields(glitch_run):
    """Re-executing a block of the glitch gives receipts whose liquidations close BTC longs at 0."""
    run = glitch_run
    stats = next(b for b in run.blocks if b.liquidations)
    block = run.history.block_at(stats.height)
    result = apply_block(run.store, run.history.root_at(stats.height - 1), block)
    liquidations = [e for e in decode_events(run.world.market.addresses, result.receipts) if isinstance(e, Liquidated)]
    assert len(liquidations) == stats.liquidations
    keepers = {k.address for k in run.world.market.keepers}
    for event in liquidations:
        assert event.liquidator in keepers and event.account not in keepers
        assert event.size != 0 and event.entry_price > 0
    assert any(e.market == 0 and e.price == 0 and e.size > 0 for e in liquidations)


def test_bridge_withdrawals_split_into_pending_and_final(glitch_run):
    run = glitch_run
    root, height = run.history.head.state_root, run.history.height
    withdrawals = get_bridge_withdrawals(run.store, root, run.world.market.addresses)
    assert withdrawals, "traders withdraw to L1 in the small scenario"
    pending, final = split_withdrawals(withdrawals, height)
    finality = run.world.market.scenario.chain.finality_blocks
    assert all(w.final_at == w.made_at_height + finality for w in withdrawals)
    assert all(w.final_at <= height for w in final) and all(w.final_at > height for w in pending)
    assert [w.id for w in withdrawals] == list(range(len(withdrawals)))
    escrow = get_balance(run.store, root, run.world.market.addresses.bridge)
    assert escrow >= sum(w.amount for w in withdrawals)
    assert get_perps_totals(run.store, root, run.world.market.addresses).liquidation_count == sum(
        b.liquidations for b in run.blocks
    )
