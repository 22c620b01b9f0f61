"""A selective restore on the glitch run: the owner's restore block sets the liquidated accounts back
to their pre-glitch snapshot, and the actors' index, fed the block's events, equals the chain."""

from chain.exchange import (
    AccountRestored,
    PositionRestored,
    decode_events,
    get_collateral,
    get_equity,
    get_open_interest,
    get_perps_totals,
    get_position,
    restore_account_call,
    sign_call,
)
from chain.execution import build_block
from chain.state import ZERO_ADDRESS, get_balance, get_nonce
from exchange_support import GLITCH_START
from scenarios.actors import apply_event, compute_health


def test_the_index_follows_a_restore_block_to_the_wei(glitch_run):
    run, world = glitch_run, glitch_run.world
    market, addresses, store = world.market, world.market.addresses, glitch_run.store
    head = run.history.head
    snapshot_root = run.history.root_at(GLITCH_START - 1)
    liquidated = sorted({a for b in run.blocks for a in b.liquidated_accounts})
    assert liquidated
    entries = []
    for account in liquidated:
        positions = tuple(
            (m, p.size, p.entry_price)
            for m in market.markets
            for p in [get_position(store, snapshot_root, addresses, account, m)]
            if p.size != 0
        )
        entries.append((account, get_collateral(store, snapshot_root, addresses, account), positions))
    nonce = get_nonce(store, head.state_root, market.owner)
    txs = [
        sign_call(market.owner_key, restore_account_call(addresses, *entry), nonce=nonce + i, fork_id=world.fork_id)
        for i, entry in enumerate(entries)
    ]
    built = build_block(store, head, txs, proposer=ZERO_ADDRESS, timestamp=head.timestamp + 1, fork_id=world.fork_id)
    assert not built.rejected and built.result.failed_count == 0
    root = built.result.state_root

    events = decode_events(addresses, built.result.receipts)
    restored = [e for e in events if isinstance(e, AccountRestored)]
    assert [e.account for e in restored] == liquidated
    assert len([e for e in events if isinstance(e, PositionRestored)]) == sum(len(p) for _, _, p in entries)
    index = world.index.copy()  # the session's world is shared: leave it as it is
    for event in events:
        apply_event(index, event)

    for account, collateral, positions in entries:
        assert index.collateral[account] == collateral == get_collateral(store, root, addresses, account)
        assert index.positions.get(account, ()) == positions
        for m in market.markets:
            position = get_position(store, root, addresses, account, m)
            assert (m, position.size, position.entry_price) in positions or position.size == 0
        assert compute_health(index, market.params, account).equity == get_equity(store, root, addresses, account)
    for m in market.markets:
        sizes = [s for ps in index.positions.values() for mm, s, _ in ps if mm == m]
        assert get_open_interest(store, root, addresses, m) == (
            sum(s for s in sizes if s > 0), -sum(s for s in sizes if s < 0)
        )

    before, after = get_perps_totals(store, head.state_root, addresses), get_perps_totals(store, root, addresses)
    paid = after.total_restored_from_vault - after.total_restored_to_vault
    assert paid == -sum(e.vault_delta for e in restored) > 0
    assert after.vault == before.vault - paid
    assert after.total_collateral == before.total_collateral + paid
    balance = get_balance(store, root, addresses.perps)
    assert balance == get_balance(store, head.state_root, addresses.perps)
    assert balance == after.total_collateral + after.vault + after.fees_accrued
    assert balance == (
        after.total_deposited + after.total_vault_funded - after.total_withdrawn
        - after.total_fees_collected - after.total_l1_settled
    )
