"""The exchange world: deterministic from its seed, the glitch liquidates longs, value is conserved, actors rewind."""

from chain.exchange import Liquidated, decode_events, get_collateral, get_perps_totals
from chain.execution import apply_block, build_block
from chain.state import get_balance
from exchange_support import GLITCH_START, run_world, small_scenario
from scenarios.actors import compute_health
from scenarios.market import PricePath, build_market_world, compute_exp
from scenarios.single_node import run_blocks, run_single_node


def test_same_seed_same_blocks(glitch_run):
    again = run_world(small_scenario())
    assert [b.state_root for b in again.blocks] == [b.state_root for b in glitch_run.blocks]
    assert again.world.genesis.state_root == glitch_run.world.genesis.state_root


def test_another_seed_another_world():
    a, b = build_market_world(small_scenario(seed=1)), build_market_world(small_scenario(seed=2))
    assert a.traders[0].address != b.traders[0].address
    assert PricePath(small_scenario(seed=1), 1).at(5) != PricePath(small_scenario(seed=2), 2).at(5)


def test_the_glitch_liquidates_longs_and_the_calm_run_does_not(glitch_run, calm_run):
    glitched = glitch_run.blocks
    assert sum(b.liquidations for b in calm_run.blocks) == 0  # no organic liquidation at this size
    assert sum(b.liquidations for b in glitched) >= 5
    assert all(b.liquidations == 0 for b in glitched if b.height <= GLITCH_START)
    # Every account liquidated held a BTC long when the bad price came, or acted on the bad
    # price (a short that withdrew or levered up on its phantom profit) and paid for it once
    # BTC came back.
    world = glitch_run.world
    before, after = world._snapshots[GLITCH_START - 1], world._snapshots[GLITCH_START + 2]
    longs = 0
    for account in {a for b in glitched for a in b.liquidated_accounts}:
        btc_size = dict((m, s) for m, s, _ in before.positions.get(account, ())).get(0, 0)
        longs += btc_size > 0
        acted = before.positions.get(account) != after.positions.get(account) or before.collateral.get(
            account
        ) != after.collateral.get(account)
        assert btc_size > 0 or acted, f"0x{account.hex()} was neither long BTC nor acted in the glitch"
    assert longs >= 5
    # Identical until the glitch, different after.
    calm_roots = [b.state_root for b in calm_run.blocks]
    glitch_roots = [b.state_root for b in glitched]
    assert calm_roots[: GLITCH_START - 1] == glitch_roots[: GLITCH_START - 1]
    assert calm_roots[GLITCH_START - 1] != glitch_roots[GLITCH_START - 1]


def test_the_vault_gains_what_liquidated_longs_lose(glitch_run, calm_run):
    start = glitch_run.blocks[GLITCH_START - 2].vault_wei
    assert glitch_run.blocks[-1].vault_wei > start
    assert glitch_run.blocks[-1].vault_wei > calm_run.blocks[-1].vault_wei


def test_value_is_conserved_to_the_wei(glitch_run):
    """No wei created or destroyed: EOAs, contracts and the bridge's escrow (L1 withdrawals) add up."""
    run = glitch_run
    market = run.world.market
    addresses = market.all_addresses
    genesis_total = sum(get_balance(run.store, run.history.root_at(0), a) for a in addresses)
    for height in range(run.history.height + 1):
        root = run.history.root_at(height)
        assert sum(get_balance(run.store, root, a) for a in addresses) == genesis_total
    root = run.history.head.state_root
    totals = get_perps_totals(run.store, root, market.addresses)
    perps_balance = get_balance(run.store, root, market.addresses.perps)
    assert perps_balance == totals.total_collateral + totals.vault + totals.fees_accrued
    assert perps_balance == (
        totals.total_deposited
        + totals.total_vault_funded
        - totals.total_withdrawn
        - totals.total_fees_collected
        - totals.total_l1_settled
    )
    assert totals.total_collateral == sum(run.world.index.collateral.values())


def test_actors_rewind_and_continue_on_a_new_fork():
    run = run_world(small_scenario(seed=11))
    rollback_to = GLITCH_START - 1
    run.history.truncate_above(rollback_to)
    run.world.rewind(rollback_to)
    run.world.set_fork(1)
    assert run.world.index.height == rollback_to
    blocks = run_blocks(run.world, run.history, 5)
    assert all(b.rejected == 0 for b in blocks), "a nonce or fork error after the rewind"
    assert all(b.txs > 0 for b in blocks)
    assert run.history.head.fork_id == 1
    # The index still equals the chain after continuing.
    root = run.history.head.state_root
    for actor in run.world.market.traders[:10]:
        assert run.world.index.collateral.get(actor.address, 0) == get_collateral(
            run.store, root, run.world.market.addresses, actor.address
        )


def test_transactions_for_is_pure(glitch_run):
    run = run_world(small_scenario(), heights=3)
    head = run.history.head
    first = run.world.transactions_for(head.height, head.state_root)
    second = run.world.transactions_for(head.height, head.state_root)
    assert [t.hash for t in first] == [t.hash for t in second]


def test_counterfactual_price_posts_replace_the_glitch():
    """Replaying the glitch's blocks with true prices in place of the bad ones: no liquidations."""
    run = run_world(small_scenario(seed=5), heights=GLITCH_START + 2)
    world, store = run.world, run.store
    glitch_height = GLITCH_START
    block = run.history.block_at(glitch_height)
    price_tx = block.transactions[0]
    assert world.is_price_transaction(price_tx)
    honest = world.price_transaction(glitch_height, price_tx.nonce, world.reference_prices(glitch_height))
    replay = build_block(
        store,
        run.history.header_at(glitch_height - 1),
        (honest, *block.transactions[1:]),
        proposer=block.header.proposer,
        timestamp=block.header.timestamp,
    )
    assert not replay.rejected
    events = decode_events(world.market.addresses, replay.result.receipts)
    assert not [e for e in events if isinstance(e, Liquidated)]
    original = apply_block(store, run.history.root_at(glitch_height - 1), block)
    assert original.state_root != replay.result.state_root


def test_single_node_runner_reports_per_block(glitch_run):
    result = run_single_node(small_scenario(), heights=3)
    assert [b.height for b in result.blocks] == [1, 2, 3]
    assert result.final_root == result.blocks[-1].state_root
    assert result.blocks[0].state_root == glitch_run.blocks[0].state_root


def test_deterministic_exp_matches_the_math_library():
    import math

    for x in (-3.0, -0.5, 0.0, 0.3, 1.0, 2.5):
        assert math.isclose(compute_exp(x), math.exp(x), rel_tol=1e-13)


def test_health_of_an_account_without_positions_is_its_collateral(glitch_run):
    holder = glitch_run.world.market.keepers[0].address
    health = compute_health(glitch_run.world.index, glitch_run.world.market.params, holder)
    assert health.open_positions == 0 and not health.is_liquidatable


def test_the_price_path_is_its_definition_whatever_heights_are_asked_first():
    # The definition, step by step: each market's price moves by volatility x an Irwin-Hall
    # draw of its own generator's 12 uniforms (the path computes it market by market).
    scenario = small_scenario(seed=3)
    reference = PricePath(scenario, 3)
    rngs, volatility_ppb = reference._rngs, reference._volatility_ppb
    expected = [reference._path[0]]
    for _ in range(400):
        expected.append({market: max(1, price * (10**9 + int(volatility_ppb * (
            sum(rngs[market].random() for _ in range(12)) - 6.0))) // 10**9)
            for market, price in expected[-1].items()})
    path = PricePath(scenario, 3)
    assert [path.at(h) for h in (7, 3, 150, 400, 0, 399)] == [expected[h] for h in (7, 3, 150, 400, 0, 399)]
    assert [path.at(h) for h in range(401)] == expected
