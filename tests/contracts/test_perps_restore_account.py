"""Selective restore: `restore_account` sets one account back to a snapshot, paid by the vault.

The owner sets the account's collateral and positions (every market not listed flat);
the vault pays the collateral difference (or takes it back), so no ETH moves and both
conservation identities keep holding. Open interest follows the positions exactly.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.contracts import event_topic
from chain.exchange import (
    AccountRestored,
    ExchangeAddresses,
    PositionRestored,
    decode_log,
    restore_account_call,
)
from scenarios.actors import ExchangeIndex, apply_event

from .conftest import BASE, BTC, ETH, SOL, USD, deploy_exchange, check_identities
from .test_perps_conservation import apply_operation, check_conservation, check_open_interest, operations

MARKETS = (BTC, ETH, SOL)


def check_open_interest_of(exchange, accounts) -> None:
    for market in MARKETS:
        sizes = [exchange.perps.call("position", a.address, market)[0] for a in accounts]
        long = sum(s for s in sizes if s > 0)
        short = -sum(s for s in sizes if s < 0)
        assert exchange.perps.call("open_interest", market) == (long, short)


def account_state(exchange, account) -> dict:
    perps = exchange.perps
    return {
        "collateral": perps.call("collateral", account.address),
        "positions": {m: perps.call("position", account.address, m) for m in MARKETS},
        "equity": perps.call("equity", account.address),
    }


def restore(exchange, account, collateral, positions, sender=None, expect_ok=True):
    """positions: [(market, size, entry_price)]."""
    return exchange.perps.transact(
        sender or exchange.owner,
        "restore_account",
        account.address,
        collateral,
        [m for m, _, _ in positions],
        [s for _, s, _ in positions],
        [e for _, _, e in positions],
        expect_ok=expect_ok,
    )


@pytest.fixture
def incident():
    """A 9x BTC long liquidated at BTC = 0, with a short and an ETH trader beside it.

    Returns (exchange, victim, snapshot of the victim before the glitch, everyone).
    """
    exchange = deploy_exchange(vault_usd=1_000_000)
    victim = exchange.trader(deposit_usd=10_000)
    short = exchange.trader(deposit_usd=20_000)
    other = exchange.trader(deposit_usd=5_000)
    keeper = exchange.trader()
    perps = exchange.perps
    perps.transact(victim, "trade", BTC, 9 * BASE // 10)  # $90k on $10k
    perps.transact(victim, "trade", ETH, -BASE)  # and a $4k ETH short
    perps.transact(short, "trade", BTC, -BASE // 2)
    perps.transact(other, "trade", ETH, 5 * BASE)
    snapshot = account_state(exchange, victim)
    assert not perps.call("is_liquidatable", victim.address)

    exchange.set_price_usd(BTC, 0)
    perps.transact(keeper, "liquidate", victim.address, BTC)
    assert perps.call("position", victim.address, BTC) == (0, 0)
    # Everyone else's activity in the window stands.
    perps.transact(other, "trade", ETH, BASE)
    exchange.set_price_usd(BTC, 100_000)
    return exchange, victim, snapshot, [victim, short, other, keeper]


def snapshot_positions(snapshot) -> list:
    return [(m, size, entry) for m, (size, entry) in snapshot["positions"].items() if size != 0]


def test_restoring_a_liquidated_account_gives_back_its_snapshot(incident):
    exchange, victim, snapshot, everyone = incident
    perps = exchange.perps
    assert perps.call("collateral", victim.address) < snapshot["collateral"]
    check_identities(exchange)
    collateral_before = perps.call("collateral", victim.address)
    vault_before = perps.call("vault_balance")
    total_before = perps.call("total_collateral")
    balance_before = exchange.evm.balance(perps.address)

    result = restore(exchange, victim, snapshot["collateral"], snapshot_positions(snapshot))

    paid = snapshot["collateral"] - collateral_before
    assert paid > 0
    assert account_state(exchange, victim) == snapshot  # same price: same equity, to the wei
    assert perps.call("vault_balance") == vault_before - paid
    assert perps.call("total_collateral") == total_before + paid
    assert perps.call("total_restored_from_vault") == paid
    assert perps.call("total_restored_to_vault") == 0
    assert exchange.evm.balance(perps.address) == balance_before  # no ETH moves
    check_identities(exchange)
    check_open_interest_of(exchange, everyone)
    victim_hex = "0x" + victim.address.hex()
    assert perps.events(result, "AccountRestored") == [
        {"account": victim_hex, "collateral": snapshot["collateral"], "vault_delta": -paid}
    ]
    assert perps.events(result, "PositionRestored") == [
        {"account": victim_hex, "market": m, "size": s, "entry_price": e} for m, s, e in snapshot_positions(snapshot)
    ]


def test_the_events_come_account_first_then_positions(incident):
    exchange, victim, snapshot, _ = incident
    perps = exchange.perps
    result = restore(exchange, victim, snapshot["collateral"], snapshot_positions(snapshot))
    names = {event_topic(perps.compiled, n): n for n in ("AccountRestored", "PositionRestored")}
    order = [names.get(topics[0].to_bytes(32, "big")) for address, topics, _ in result.logs if address == perps.address]
    assert order == ["AccountRestored", "PositionRestored", "PositionRestored"]


def test_restore_flattens_unlisted_markets_and_can_lower_the_collateral(incident):
    """Collateral down: the vault takes the difference; positions not listed are closed."""
    exchange, victim, _, everyone = incident
    perps = exchange.perps
    _, short, _, _ = everyone
    collateral = perps.call("collateral", short.address)
    vault = perps.call("vault_balance")
    result = restore(exchange, short, collateral - 1_234 * USD, [(SOL, 7 * BASE, 199 * USD)])
    assert perps.call("collateral", short.address) == collateral - 1_234 * USD
    assert perps.call("vault_balance") == vault + 1_234 * USD
    assert perps.call("total_restored_to_vault") == 1_234 * USD
    assert perps.call("position", short.address, BTC) == (0, 0)
    assert perps.call("position", short.address, SOL) == (7 * BASE, 199 * USD)
    assert perps.events(result, "AccountRestored")[0]["vault_delta"] == 1_234 * USD
    check_identities(exchange)
    check_open_interest_of(exchange, everyone)


def test_restore_to_flat_and_unchanged_collateral_moves_nothing_but_positions(incident):
    exchange, _, _, everyone = incident
    perps = exchange.perps
    other = everyone[2]
    collateral, vault = perps.call("collateral", other.address), perps.call("vault_balance")
    result = restore(exchange, other, collateral, [])
    assert perps.call("collateral", other.address) == collateral
    assert perps.call("vault_balance") == vault
    assert all(perps.call("position", other.address, m) == (0, 0) for m in MARKETS)
    assert perps.events(result, "AccountRestored")[0]["vault_delta"] == 0
    assert perps.events(result, "PositionRestored") == []
    check_identities(exchange)
    check_open_interest_of(exchange, everyone)


def test_a_restore_ignores_margin_and_the_keepers_may_liquidate_again(incident):
    """The snapshot is restored as it was, even into a bad price."""
    exchange, victim, snapshot, everyone = incident
    exchange.set_price_usd(BTC, 0)
    restore(exchange, victim, snapshot["collateral"], snapshot_positions(snapshot))
    assert exchange.perps.call("is_liquidatable", victim.address)
    exchange.perps.transact(everyone[3], "liquidate", victim.address, BTC)
    check_identities(exchange)
    check_open_interest_of(exchange, everyone)


def test_only_the_owner_restores(incident):
    exchange, victim, snapshot, everyone = incident
    before = account_state(exchange, victim)
    result = restore(exchange, victim, snapshot["collateral"], snapshot_positions(snapshot),
                     sender=victim, expect_ok=False)
    assert result.revert_reason == "perps: not owner"
    assert account_state(exchange, victim) == before


@pytest.mark.parametrize(
    "markets, sizes, entries, reason",
    [
        ([BTC], [BASE], [], "perps: length mismatch"),
        ([BTC], [], [USD], "perps: length mismatch"),
        ([BTC, ETH], [BASE], [USD, USD], "perps: length mismatch"),
        ([3], [BASE], [USD], "perps: unknown market"),
        ([BTC, BTC], [BASE, BASE], [USD, USD], "perps: duplicate market"),
        ([ETH, BTC, ETH], [BASE, BASE, -BASE], [USD, USD, USD], "perps: duplicate market"),
        ([BTC], [0], [USD], "perps: bad position"),
        ([BTC], [BASE], [0], "perps: bad position"),
    ],
)
def test_malformed_restores_revert(incident, markets, sizes, entries, reason):
    exchange, victim, snapshot, _ = incident
    perps = exchange.perps
    before = account_state(exchange, victim)
    result = perps.transact(exchange.owner, "restore_account", victim.address, snapshot["collateral"],
                            markets, sizes, entries, expect_ok=False)
    assert result.revert_reason == reason
    assert account_state(exchange, victim) == before


def test_zero_account_reverts(incident):
    exchange, _, _, _ = incident
    result = exchange.perps.transact(exchange.owner, "restore_account", b"\x00" * 20, USD, [], [], [],
                                     expect_ok=False)
    assert result.revert_reason == "perps: zero account"


def test_exactly_coverable_succeeds_one_wei_more_reverts():
    exchange = deploy_exchange(vault_usd=1_000)
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=500)
    vault = perps.call("vault_balance")
    limit = 500 * USD + vault
    result = restore(exchange, trader, limit + 1, [], expect_ok=False)
    assert result.revert_reason == "perps: vault too small"
    assert perps.call("collateral", trader.address) == 500 * USD
    restore(exchange, trader, limit, [(BTC, BASE // 100, 100_000 * USD)])
    assert perps.call("vault_balance") == 0
    assert perps.call("collateral", trader.address) == limit
    assert perps.call("open_interest", BTC) == (BASE // 100, 0)
    check_identities(exchange)


def test_the_client_encodes_the_call_and_the_index_follows_the_events(incident):
    """chain.exchange encodes the call and decodes its logs; the actors' index then matches the chain."""
    exchange, victim, snapshot, everyone = incident
    perps = exchange.perps
    addresses = ExchangeAddresses(oracle=exchange.oracle.address, perps=perps.address, bridge=b"\x99" * 20)
    # The index as it stood after the liquidation: flat BTC, the ETH short, what collateral was left.
    index = ExchangeIndex(
        height=0,
        collateral={victim.address: perps.call("collateral", victim.address)},
        positions={victim.address: ((ETH, *perps.call("position", victim.address, ETH)),)},
    )
    positions = snapshot_positions(snapshot)
    call = restore_account_call(addresses, victim.address, snapshot["collateral"], positions)
    assert call.to == perps.address and call.value == 0
    computation = exchange.evm.send(exchange.owner, call.to, call.data, call.value)
    assert not computation.is_error
    events = [decode_log(addresses, *log) for log in computation.get_log_entries() if log[0] == perps.address]
    paid = snapshot["collateral"] - index.collateral[victim.address]
    assert events == [
        AccountRestored(account=victim.address, collateral=snapshot["collateral"], vault_delta=-paid),
        *(PositionRestored(account=victim.address, market=m, size=s, entry_price=e) for m, s, e in positions),
    ]
    for event in events:
        apply_event(index, event)
    assert index.collateral[victim.address] == perps.call("collateral", victim.address)
    assert index.positions[victim.address] == tuple(
        (m, *perps.call("position", victim.address, m)) for m in MARKETS if perps.call("position", victim.address, m)[0]
    )
    check_identities(exchange)
    check_open_interest_of(exchange, everyone)


# ---------------------------------------------------------------- property

RESTORE_PRICE = {BTC: 100_000 * USD, ETH: 4_000 * USD, SOL: 200 * USD}
restores = st.tuples(
    st.just("restore"),
    st.integers(0, 3),  # account
    st.integers(0, 30_000),  # collateral, USD
    st.lists(  # (market, size in steps, entry price percent)
        st.tuples(st.sampled_from((BTC, ETH, SOL)), st.integers(-20, 20), st.integers(50, 150)),
        max_size=3,
        unique_by=lambda p: p[0],
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(st.one_of(operations, restores, restores), min_size=5, max_size=20))
def test_restores_among_everything_else_conserve_value(script):
    """The conservation property's operations with restores mixed in: I1, I2, I3 and open interest hold."""
    exchange = deploy_exchange(vault_usd=20_000)
    bridge = exchange.evm.deploy(exchange.owner, "bridge", exchange.reporter.address, 10)
    accounts = [exchange.trader(deposit_usd=amount) for amount in (10_000, 5_000, 2_000)] + [exchange.trader()]
    eth_total = sum(exchange.evm.balance(a.address) for a in [exchange.owner, *accounts])
    eth_total += exchange.evm.balance(exchange.perps.address) + exchange.evm.balance(bridge.address)
    perps = exchange.perps
    for operation in script:
        if operation[0] == "restore":
            _, who, collateral_usd, listed = operation
            account = accounts[who]
            positions = [
                (m, steps * BASE // 100, 0 if steps == 0 else RESTORE_PRICE[m] * pct // 100)
                for m, steps, pct in listed
            ]
            old, vault = perps.call("collateral", account.address), perps.call("vault_balance")
            result = restore(exchange, account, collateral_usd * USD, positions, expect_ok=False)
            assert result.ok == (collateral_usd * USD - old <= vault)
            if result.ok:
                assert perps.call("collateral", account.address) == collateral_usd * USD
                assert perps.call("vault_balance") == vault + old - collateral_usd * USD
                wanted = {m: (s, e) for m, s, e in positions}
                for m in MARKETS:
                    assert perps.call("position", account.address, m) == wanted.get(m, (0, 0))
        else:
            apply_operation(exchange, accounts, operation, bridge)
        check_conservation(exchange, accounts, eth_total, bridge)
        check_open_interest(exchange, accounts)
