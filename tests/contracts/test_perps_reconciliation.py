"""Reconciling an L1-final withdrawal after a rollback: `settle_l1_withdrawal` moves exactly
`amount` out of the exchange into the bridge, by policy, and value stays conserved.

Policies: "debit-account" (charge_vault=False) takes the amount from the account's
collateral and the vault covers what the collateral lacks; "charge-vault" (True) takes
it all from the vault.
"""

import pytest

from chain.exchange import ExchangeAddresses, L1WithdrawalSettled, decode_log, settle_l1_withdrawal_call
from scenarios.actors import ExchangeIndex, apply_event

from .conftest import BASE, BTC, USD, deploy_exchange, check_identities

FINALITY_BLOCKS = 10
DEBIT_ACCOUNT, CHARGE_VAULT = False, True


@pytest.fixture
def world():
    """An exchange with a $10k vault, a bridge, and a trader holding $3k of collateral."""
    exchange = deploy_exchange(vault_usd=10_000)
    relayer = exchange.evm.new_account()
    bridge = exchange.evm.deploy(exchange.owner, "bridge", relayer.address, FINALITY_BLOCKS)
    trader = exchange.trader(deposit_usd=3_000)
    return exchange, bridge, trader


def snapshot(exchange, bridge, account) -> dict:
    perps, evm = exchange.perps, exchange.evm
    return {
        "perps": evm.balance(perps.address),
        "bridge": evm.balance(bridge.address),
        "collateral": perps.call("collateral", account.address),
        "total_collateral": perps.call("total_collateral"),
        "vault": perps.call("vault_balance"),
        "settled": perps.call("total_l1_settled"),
        "settled_from_vault": perps.call("total_l1_settled_from_vault"),
    }


def settle(exchange, bridge, account, amount, charge_vault):
    return exchange.perps.transact(
        exchange.owner, "settle_l1_withdrawal", account.address, amount, charge_vault, bridge.address
    )


def assert_settled(exchange, bridge, account, before, result, amount, from_account, from_vault):
    after = snapshot(exchange, bridge, account)
    assert from_account + from_vault == amount
    assert result.returned == (from_account,)
    assert exchange.perps.events(result, "L1WithdrawalSettled") == [
        {
            "account": "0x" + account.address.hex(),
            "bridge": "0x" + bridge.address.hex(),
            "amount": amount,
            "from_account": from_account,
            "from_vault": from_vault,
        }
    ]
    assert after["perps"] == before["perps"] - amount
    assert after["bridge"] == before["bridge"] + amount
    assert after["collateral"] == before["collateral"] - from_account
    assert after["total_collateral"] == before["total_collateral"] - from_account
    assert after["vault"] == before["vault"] - from_vault
    assert after["settled"] == before["settled"] + amount
    assert after["settled_from_vault"] == before["settled_from_vault"] + from_vault
    check_identities(exchange)


def test_only_the_owner_settles(world):
    exchange, bridge, trader = world
    before = snapshot(exchange, bridge, trader)
    for policy in (DEBIT_ACCOUNT, CHARGE_VAULT):
        reason = exchange.perps.reverts(
            trader, "settle_l1_withdrawal", trader.address, USD, policy, bridge.address
        )
        assert reason == "perps: not owner"
    assert snapshot(exchange, bridge, trader) == before


def test_charge_vault_moves_the_amount_from_the_vault_to_the_bridge(world):
    exchange, bridge, trader = world
    before = snapshot(exchange, bridge, trader)
    result = settle(exchange, bridge, trader, 1_234 * USD + 7, CHARGE_VAULT)
    assert_settled(exchange, bridge, trader, before, result, 1_234 * USD + 7, 0, 1_234 * USD + 7)


def test_debit_account_takes_it_from_the_collateral(world):
    exchange, bridge, trader = world
    before = snapshot(exchange, bridge, trader)
    result = settle(exchange, bridge, trader, 2_000 * USD, DEBIT_ACCOUNT)
    assert_settled(exchange, bridge, trader, before, result, 2_000 * USD, 2_000 * USD, 0)


def test_debit_account_with_short_collateral_takes_the_rest_from_the_vault(world):
    exchange, bridge, trader = world
    before = snapshot(exchange, bridge, trader)
    result = settle(exchange, bridge, trader, 5_000 * USD, DEBIT_ACCOUNT)
    assert_settled(exchange, bridge, trader, before, result, 5_000 * USD, 3_000 * USD, 2_000 * USD)
    assert exchange.perps.call("collateral", trader.address) == 0


def test_debit_account_of_an_account_without_collateral_is_all_vault(world):
    exchange, bridge, _ = world
    stranger = exchange.evm.new_account()
    before = snapshot(exchange, bridge, stranger)
    result = settle(exchange, bridge, stranger, 10 * USD, DEBIT_ACCOUNT)
    assert_settled(exchange, bridge, stranger, before, result, 10 * USD, 0, 10 * USD)


def test_exactly_coverable_succeeds_one_wei_more_reverts(world):
    exchange, bridge, trader = world
    vault = exchange.perps.call("vault_balance")  # 10k
    collateral = exchange.perps.call("collateral", trader.address)  # 3k
    before = snapshot(exchange, bridge, trader)
    owner, perps = exchange.owner, exchange.perps
    args = (trader.address,)
    assert perps.reverts(owner, "settle_l1_withdrawal", *args, vault + 1, CHARGE_VAULT, bridge.address) == (
        "perps: vault too small"
    )
    assert perps.reverts(
        owner, "settle_l1_withdrawal", *args, vault + collateral + 1, DEBIT_ACCOUNT, bridge.address
    ) == "perps: vault too small"
    assert snapshot(exchange, bridge, trader) == before  # a revert moves nothing
    check_identities(exchange)

    result = settle(exchange, bridge, trader, vault + collateral, DEBIT_ACCOUNT)
    assert_settled(exchange, bridge, trader, before, result, vault + collateral, collateral, vault)
    assert exchange.perps.call("vault_balance") == 0


def test_zero_amount_and_bad_bridges_revert(world):
    exchange, bridge, trader = world
    owner, perps = exchange.owner, exchange.perps
    before = snapshot(exchange, bridge, trader)
    assert perps.reverts(owner, "settle_l1_withdrawal", trader.address, 0, CHARGE_VAULT, bridge.address) == (
        "perps: zero settlement"
    )
    assert perps.reverts(owner, "settle_l1_withdrawal", trader.address, USD, CHARGE_VAULT, b"\x00" * 20) == (
        "perps: bad bridge"
    )
    assert perps.reverts(owner, "settle_l1_withdrawal", trader.address, USD, CHARGE_VAULT, perps.address) == (
        "perps: bad bridge"
    )
    # An EOA or a contract without a payable fund_reserve() cannot receive it.
    perps.reverts(owner, "settle_l1_withdrawal", trader.address, USD, CHARGE_VAULT, trader.address)
    perps.reverts(owner, "settle_l1_withdrawal", trader.address, USD, CHARGE_VAULT, exchange.oracle.address)
    assert snapshot(exchange, bridge, trader) == before


def test_the_debit_ignores_margin_and_the_keeper_can_then_liquidate(world):
    """The account really was paid on L1: the debit stands even if it breaks the margin."""
    exchange, bridge, trader = world
    exchange.perps.transact(trader, "trade", BTC, BASE // 4)  # $25k, ~8.3x on $3k
    assert not exchange.perps.call("is_liquidatable", trader.address)
    settle(exchange, bridge, trader, 2_000 * USD, DEBIT_ACCOUNT)
    assert exchange.perps.call("is_liquidatable", trader.address)
    keeper = exchange.trader()
    exchange.perps.transact(keeper, "liquidate", trader.address, BTC)
    check_identities(exchange)


def test_the_client_encodes_the_call_and_the_index_follows_the_event(world):
    """chain.exchange's encoder drives the contract; its decoder and the actors' index read the log."""
    exchange, bridge, trader = world
    addresses = ExchangeAddresses(
        oracle=exchange.oracle.address, perps=exchange.perps.address, bridge=bridge.address
    )
    call = settle_l1_withdrawal_call(addresses, trader.address, 4_000 * USD, charge_vault=False)
    assert call.to == exchange.perps.address and call.value == 0
    computation = exchange.evm.send(exchange.owner, call.to, call.data, call.value)
    assert not computation.is_error
    (log,) = [entry for entry in computation.get_log_entries() if entry[0] == exchange.perps.address]
    event = decode_log(addresses, *log)
    assert event == L1WithdrawalSettled(
        account=trader.address, bridge=bridge.address, amount=4_000 * USD, from_account=3_000 * USD,
        from_vault=1_000 * USD,
    )
    index = ExchangeIndex(height=0, collateral={trader.address: 3_000 * USD})
    apply_event(index, event)
    assert index.collateral[trader.address] == 0 == exchange.perps.call("collateral", trader.address)
    check_identities(exchange)
