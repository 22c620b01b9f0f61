"""The perps exchange: margin, PnL, liquidation, the BTC = 0 incident, and conservation of value.

Amounts in the examples are whole USD where the arithmetic is exact; `usd("16.5")`
where it is not. 1 USD of collateral is 1e18 wei; 1 BTC of size is 1e18.
"""

from decimal import Decimal

import pytest

from .conftest import BASE, BTC, ETH, USD


def usd(amount: str) -> int:
    return int(Decimal(amount) * USD)


def btc(amount: str) -> int:
    return int(Decimal(amount) * BASE)


# ---------------------------------------------------------------- margin math


def test_equity_and_requirements_follow_the_mark(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.5"))  # 50k notional, 5x; fee 5 bps = 25

    assert perps.call("position", trader.address, BTC) == (btc("0.5"), 100_000 * USD)
    assert perps.call("collateral", trader.address) == 9_975 * USD
    assert perps.call("equity", trader.address) == 9_975 * USD
    assert perps.call("notional", trader.address) == 50_000 * USD
    assert perps.call("initial_margin_requirement", trader.address) == 5_000 * USD
    assert perps.call("margin_requirement", trader.address) == 2_500 * USD
    assert perps.call("free_collateral", trader.address) == 4_975 * USD
    assert perps.call("open_interest", BTC) == (btc("0.5"), 0)
    assert perps.call("fees_accrued") == 25 * USD

    exchange.set_price_usd(BTC, 98_000)
    assert perps.call("unrealised_pnl", trader.address, BTC) == -1_000 * USD
    assert perps.call("equity", trader.address) == 8_975 * USD
    assert perps.call("margin_requirement", trader.address) == 2_450 * USD
    assert perps.call("is_liquidatable", trader.address) is False


def test_opening_beyond_initial_margin_reverts(exchange):
    trader = exchange.trader(deposit_usd=10_000)
    # 100k notional needs 10k initial margin; after the 50 fee only 9,950 is left.
    assert exchange.perps.reverts(trader, "trade", BTC, btc("1")) == "perps: below initial margin"
    exchange.perps.transact(trader, "trade", BTC, btc("0.9"))
    assert exchange.perps.reverts(trader, "trade", BTC, btc("0.1")) == "perps: below initial margin"
    exchange.perps.transact(trader, "trade", BTC, -btc("0.1"))  # reducing needs no margin check


def test_leverage_cap_rejects_notional_above_max_leverage_times_equity(make_exchange):
    exchange = make_exchange(max_leverage=5)
    trader = exchange.trader(deposit_usd=10_000)
    # 6x passes the 10 % initial margin but not the 5x cap.
    assert exchange.perps.reverts(trader, "trade", BTC, btc("0.6")) == "perps: leverage cap"
    exchange.perps.transact(trader, "trade", BTC, btc("0.45"))
    # Cross margin: the cap is on the whole account's notional.
    assert exchange.perps.reverts(trader, "trade", ETH, 2 * BASE) == "perps: leverage cap"


def test_adding_averages_the_entry_and_reducing_realises_pnl(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.5"))
    exchange.set_price_usd(BTC, 110_000)
    perps.transact(trader, "trade", BTC, btc("0.1"))
    # (0.5 * 100k + 0.1 * 110k) / 0.6, rounded up for a long
    entry = -(-(btc("0.5") * 100_000 * USD + btc("0.1") * 110_000 * USD) // btc("0.6"))
    assert perps.call("position", trader.address, BTC) == (btc("0.6"), entry)

    vault_before = perps.call("vault_balance")
    collateral_before = perps.call("collateral", trader.address)
    result = perps.transact(trader, "trade", BTC, -btc("0.2"))
    (trade,) = perps.events(result, "Trade")
    realised = btc("0.2") * (110_000 * USD - entry) // BASE  # floor: against the trader
    assert trade["realised_pnl"] == realised and trade["fee"] == 11 * USD
    assert perps.call("position", trader.address, BTC) == (btc("0.4"), entry)  # entry unchanged
    assert perps.call("collateral", trader.address) == collateral_before + realised - 11 * USD
    assert perps.call("vault_balance") == vault_before - realised  # the vault is the counterparty

    perps.transact(trader, "close", BTC)
    assert perps.call("position", trader.address, BTC) == (0, 0)
    assert perps.call("open_interest", BTC) == (0, 0)
    assert perps.reverts(trader, "close", BTC) == "perps: no position"


def test_a_trade_through_zero_flips_the_position_at_the_mark(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.5"))
    exchange.set_price_usd(BTC, 110_000)
    result = perps.transact(trader, "trade", BTC, -btc("0.8"))
    assert perps.events(result, "Trade")[0]["realised_pnl"] == 5_000 * USD
    assert perps.call("position", trader.address, BTC) == (-btc("0.3"), 110_000 * USD)
    assert perps.call("open_interest", BTC) == (0, btc("0.3"))


def test_withdraw_only_free_collateral_and_never_unrealised_profit(exchange):
    perps, evm = exchange.perps, exchange.evm
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.5"))
    assert perps.reverts(trader, "withdraw", usd("4975") + 1) == "perps: exceeds free collateral"
    wallet = evm.balance(trader.address)
    perps.transact(trader, "withdraw", 4_975 * USD)
    assert evm.balance(trader.address) == wallet + 4_975 * USD
    assert perps.call("free_collateral", trader.address) == 0

    exchange.set_price_usd(BTC, 120_000)  # +10k unrealised, but only 5k of cash is there
    assert perps.call("free_collateral", trader.address) == 5_000 * USD
    assert perps.reverts(trader, "withdraw", 5_000 * USD + 1) == "perps: exceeds free collateral"


def test_a_realised_loss_larger_than_the_cash_must_wait_for_the_winners(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.4"))
    perps.transact(trader, "trade", ETH, -10 * BASE)
    exchange.set_price_usd(BTC, 70_000)  # -12k on BTC
    exchange.set_price_usd(ETH, 2_000)  # +20k on ETH: the account is healthy
    assert perps.call("is_liquidatable", trader.address) is False
    assert perps.reverts(trader, "close", BTC) == "perps: realised loss exceeds collateral"
    perps.transact(trader, "close", ETH)
    perps.transact(trader, "close", BTC)


# ---------------------------------------------------------------- liquidation


@pytest.fixture
def levered_long(exchange):
    """A 9x BTC long: 10k deposit, 0.9 BTC at 100k, collateral 9,955 after the fee."""
    trader = exchange.trader(deposit_usd=10_000)
    exchange.perps.transact(trader, "trade", BTC, btc("0.9"))
    return trader


def test_a_healthy_account_cannot_be_liquidated(exchange, levered_long):
    keeper = exchange.trader()
    assert exchange.perps.reverts(keeper, "liquidate", levered_long.address, BTC) == "perps: account healthy"
    exchange.set_price_usd(BTC, 95_000)  # equity 5,455 >= maintenance 4,275
    assert exchange.perps.call("is_liquidatable", levered_long.address) is False
    assert exchange.perps.reverts(keeper, "liquidate", levered_long.address, BTC) == "perps: account healthy"
    # No position in that market: nothing to liquidate there.
    assert exchange.perps.reverts(keeper, "liquidate", levered_long.address, ETH) == "perps: no position"


def test_liquidation_below_maintenance_pays_the_keeper_and_the_vault(exchange, levered_long):
    perps = exchange.perps
    keeper = exchange.trader()
    exchange.set_price_usd(BTC, 93_000)  # equity 3,655 < maintenance 4,185
    assert perps.call("is_liquidatable", levered_long.address) is True
    assert perps.reverts(levered_long, "trade", BTC, -btc("0.1")) == "perps: account liquidatable"
    vault_before = perps.call("vault_balance")

    result = perps.transact(keeper, "liquidate", levered_long.address, BTC)

    (event,) = perps.events(result, "Liquidation")
    assert event["realised_pnl"] == -6_300 * USD
    assert event["liquidator_fee"] == 837 * USD  # 1 % of 83,700
    assert event["penalty"] == 837 * USD
    assert event["shortfall"] == 0
    assert perps.call("collateral", keeper.address) == 837 * USD
    assert perps.call("collateral", levered_long.address) == (9_955 - 6_300 - 837 - 837) * USD
    assert perps.call("vault_balance") == vault_before + (6_300 + 837) * USD
    assert perps.call("position", levered_long.address, BTC) == (0, 0)
    assert perps.call("open_interest", BTC) == (0, 0)
    assert perps.call("liquidation_count") == 1


def test_a_position_is_liquidated_once(exchange, levered_long):
    keeper, second_keeper = exchange.trader(), exchange.trader()
    exchange.set_price_usd(BTC, 93_000)
    exchange.perps.transact(keeper, "liquidate", levered_long.address, BTC)
    assert exchange.perps.reverts(keeper, "liquidate", levered_long.address, BTC) == "perps: no position"
    assert exchange.perps.reverts(second_keeper, "liquidate", levered_long.address, BTC) == "perps: no position"
    assert exchange.perps.call("liquidation_count") == 1


def test_no_one_liquidates_himself(exchange, levered_long):
    exchange.set_price_usd(BTC, 93_000)
    assert exchange.perps.reverts(levered_long, "liquidate", levered_long.address, BTC) == "perps: self-liquidation"


def test_btc_at_zero_makes_levered_longs_liquidatable_and_shorts_profit(exchange):
    """The incident: the oracle posts BTC = 0."""
    perps = exchange.perps
    long, short, keeper = exchange.trader(10_000), exchange.trader(10_000), exchange.trader()
    perps.transact(long, "trade", BTC, btc("0.5"))
    perps.transact(short, "trade", BTC, -btc("0.5"))

    exchange.set_price_usd(BTC, 0)

    assert perps.call("equity", long.address) == (9_975 - 50_000) * USD
    assert perps.call("is_liquidatable", long.address) is True
    assert perps.call("equity", short.address) == (9_975 + 50_000) * USD
    assert perps.call("is_liquidatable", short.address) is False
    assert perps.reverts(keeper, "liquidate", short.address, BTC) == "perps: account healthy"
    assert perps.reverts(short, "trade", BTC, btc("0.1")) == "perps: no price"

    result = perps.transact(keeper, "liquidate", long.address, BTC)
    (event,) = perps.events(result, "Liquidation")
    assert event["price"] == 0 and event["liquidator_fee"] == 0
    # The long's collateral floors at 0; the vault forgoes the other 40,025.
    assert event["shortfall"] == 40_025 * USD
    assert perps.call("collateral", long.address) == 0
    assert perps.call("shortfall_absorbed") == 40_025 * USD
    assert perps.call("open_interest", BTC) == (0, btc("0.5"))


# ---------------------------------------------------------------- vault, fees, compensation


def test_profit_the_vault_cannot_pay_is_recorded_as_bad_debt(make_exchange):
    exchange = make_exchange(vault_usd=1_000)
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, btc("0.5"))
    exchange.set_price_usd(BTC, 110_000)
    result = perps.transact(trader, "close", BTC)
    assert perps.events(result, "BadDebt") == [{"account": "0x" + trader.address.hex(), "amount": 4_000 * USD}]
    assert perps.call("vault_balance") == 0
    assert perps.call("bad_debt") == 4_000 * USD
    assert perps.call("unpaid_profit", trader.address) == 4_000 * USD
    assert perps.call("collateral", trader.address) == usd("9975") + 1_000 * USD - usd("27.5")


def test_compensation_moves_value_from_the_vault_to_an_account(exchange):
    perps = exchange.perps
    victim, stranger = exchange.trader(), exchange.trader()
    assert perps.reverts(stranger, "compensate", victim.address, USD) == "perps: not owner"
    perps.transact(exchange.owner, "compensate", victim.address, 650 * USD)
    assert perps.call("collateral", victim.address) == 650 * USD
    assert perps.call("vault_balance") == (1_000_000 - 650) * USD
    assert perps.call("total_compensated") == 650 * USD
    assert perps.reverts(exchange.owner, "compensate", victim.address, 10**30) == "perps: vault too small"


def test_fees_accrue_and_only_the_owner_collects_them(exchange):
    perps, evm = exchange.perps, exchange.evm
    trader, treasury = exchange.trader(deposit_usd=10_000), exchange.evm.new_account()
    perps.transact(trader, "trade", BTC, btc("0.5"))
    assert perps.reverts(trader, "collect_fees", trader.address) == "perps: not owner"
    perps.transact(exchange.owner, "collect_fees", treasury.address)
    assert evm.balance(treasury.address) == 25 * USD
    assert perps.call("fees_accrued") == 0 and perps.call("total_fees_collected") == 25 * USD


def test_plain_transfers_and_unknown_markets_are_rejected(exchange):
    trader = exchange.trader(deposit_usd=1_000)
    computation = exchange.evm.send(trader, exchange.perps.address, b"", USD)
    assert computation.is_error  # no default function: every wei in is accounted
    assert exchange.perps.reverts(trader, "trade", 3, BASE) == "perps: unknown market"
    assert exchange.perps.reverts(trader, "trade", BTC, 0) == "perps: zero size"
    assert exchange.perps.reverts(trader, "deposit") == "perps: zero deposit"
