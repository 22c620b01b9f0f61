"""Funding indices, the flow-driven mark, trading modes and the price band of the perps contract.

Funding: a position owes size * (index - cached) / 1e18 since its last change; its PnL
(the negative, floored) counts in equity and is realised on trade, liquidation and
withdrawal. Mark: index * (1 + flow_notional / (100 * depth)), capped at +/- 50 %,
clamped to the band in restricted modes. A property at the end runs random price,
funding, flow and mode paths and checks conservation to the wei and the band.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import BASE, BTC, ETH, USD, check_identities, deploy_exchange

OPEN, CANCEL_ONLY, POST_ONLY = 0, 1, 2


def post_funding(exchange, indices: dict[int, int]) -> None:
    markets = sorted(indices)
    exchange.perps.transact(exchange.reporter, "post_funding", markets, [indices[m] for m in markets])


def funding_events(exchange, result):
    return exchange.perps.events(result, "FundingRealised")


# ---------------------------------------------------------------- funding


def test_accrued_funding_is_size_times_index_change_and_counts_in_equity(exchange):
    perps = exchange.perps
    post_funding(exchange, {BTC: 50 * USD})  # the index before the position opens
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, BASE // 2)  # 0.5 BTC long, fee 25
    assert perps.call("funding_cached", trader.address, BTC) == 50 * USD
    equity = perps.call("equity", trader.address)

    post_funding(exchange, {BTC: 250 * USD})  # +200 per BTC: the long pays 100
    assert perps.call("accrued_funding", trader.address, BTC) == 100 * USD
    assert perps.call("equity", trader.address) == equity - 100 * USD
    assert perps.call("collateral", trader.address) == 9_975 * USD  # not realised yet


def test_funding_is_realised_on_trade_and_the_cache_moves(exchange):
    perps = exchange.perps
    long, short = exchange.trader(deposit_usd=10_000), exchange.trader(deposit_usd=10_000)
    perps.transact(long, "trade", BTC, BASE // 2)
    perps.transact(short, "trade", BTC, -BASE // 2)
    post_funding(exchange, {BTC: 300 * USD})
    vault = perps.call("vault_balance")

    result = perps.transact(long, "trade", BTC, -BASE // 4)  # reduce: funding then the trade
    assert funding_events(exchange, result) == [
        {"account": "0x" + long.address.hex(), "market": BTC, "amount": -150 * USD, "shortfall": 0}
    ]
    assert perps.call("funding_cached", long.address, BTC) == 300 * USD
    assert perps.call("accrued_funding", long.address, BTC) == 0
    # The short receives when it trades: from the vault, the counterparty of everything.
    result = perps.transact(short, "close", BTC)
    assert funding_events(exchange, result)[0]["amount"] == 150 * USD
    assert perps.call("vault_balance") == vault  # paid 150 by the long, 150 to the short
    assert perps.call("collateral", short.address) == (10_000 + 150 - 25 - 25) * USD  # two fees of 25
    check_identities(exchange)


def test_funding_pnl_is_floored_against_the_trader(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, 3)  # 3e-18 BTC
    equity = perps.call("equity", trader.address)
    post_funding(exchange, {BTC: 1})  # owes 3 * 1 / 1e18: a fraction of a wei
    assert perps.call("equity", trader.address) == equity - 1  # floored: the trader pays the wei
    post_funding(exchange, {BTC: -1})  # receives a fraction of a wei: floored to 0
    assert perps.call("equity", trader.address) == equity


def test_a_reset_index_gives_every_position_size_times_cached(exchange):
    perps = exchange.perps
    post_funding(exchange, {BTC: 1_000 * USD, ETH: 40 * USD})
    long, short = exchange.trader(deposit_usd=10_000), exchange.trader(deposit_usd=10_000)
    perps.transact(long, "trade", BTC, BASE // 10)
    perps.transact(short, "trade", ETH, -BASE)
    long_equity, short_equity = perps.call("equity", long.address), perps.call("equity", short.address)
    post_funding(exchange, {BTC: 0, ETH: 0})  # the incident's corrupted market data
    assert perps.call("equity", long.address) == long_equity + 100 * USD
    assert perps.call("equity", short.address) == short_equity - 40 * USD


def test_funding_is_realised_on_withdrawal_and_liquidation(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    keeper = exchange.trader(deposit_usd=1)
    perps.transact(trader, "trade", BTC, BASE // 2)
    post_funding(exchange, {BTC: -400 * USD})  # the long receives 200
    result = perps.transact(trader, "withdraw", 1 * USD)
    assert funding_events(exchange, result)[0]["amount"] == 200 * USD
    assert perps.call("collateral", trader.address) == 9_975 * USD + 200 * USD - 1 * USD

    post_funding(exchange, {BTC: 15_000 * USD})  # owes 7_700: below maintenance
    assert perps.call("is_liquidatable", trader.address)
    result = perps.transact(keeper, "liquidate", trader.address, BTC)
    assert funding_events(exchange, result)[0]["amount"] == -7_700 * USD
    assert perps.call("position", trader.address, BTC) == (0, 0)
    check_identities(exchange)


def test_only_the_reporter_posts_funding(exchange):
    trader = exchange.trader()
    assert exchange.perps.reverts(trader, "post_funding", [BTC], [1]) == "perps: not reporter"
    assert exchange.perps.reverts(exchange.owner, "post_funding", [BTC], [1]) == "perps: not reporter"
    assert exchange.perps.reverts(exchange.reporter, "post_funding", [7], [1]) == "perps: unknown market"


# ---------------------------------------------------------------- the mark


def test_depth_zero_keeps_the_mark_at_the_index(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    perps.transact(trader, "trade", BTC, BASE // 2)
    assert perps.call("mark_price", BTC) == perps.call("index_price", BTC) == 100_000 * USD
    assert perps.call("trade_flow", BTC) == 0


def test_a_trade_moves_the_mark_by_its_notional_over_depth_and_pays_its_impact(exchange):
    perps = exchange.perps
    perps.transact(exchange.owner, "set_market_depth", BTC, 1_000_000 * USD)  # $1M per 1 %
    trader = exchange.trader(deposit_usd=50_000)
    result = perps.transact(trader, "trade", BTC, BASE)  # $100k buy: +0.1 %
    assert perps.call("mark_price", BTC) == 100_100 * USD
    assert perps.events(result, "Trade")[0]["price"] == 100_100 * USD  # filled after its impact
    assert perps.call("position", trader.address, BTC) == (BASE, 100_100 * USD)
    collateral = perps.call("collateral", trader.address)
    perps.transact(trader, "close", BTC)  # the sell brings the mark back: the round trip loses
    assert perps.call("mark_price", BTC) == 100_000 * USD
    assert perps.call("collateral", trader.address) < collateral - 100 * USD


def test_the_flow_halves_every_half_life_and_the_premium_is_capped(exchange):
    perps = exchange.perps
    perps.transact(exchange.owner, "set_market_depth", BTC, 10_000 * USD)  # very thin
    perps.transact(exchange.owner, "set_flow_half_life", 10)
    trader = exchange.trader(deposit_usd=100_000)
    perps.transact(trader, "trade", BTC, -BASE // 10)  # $10k sell into $10k depth: -1 %
    assert perps.call("mark_price", BTC) == 99_000 * USD
    exchange.evm.mine(10)
    assert perps.call("trade_flow", BTC) == -BASE // 20
    assert perps.call("mark_price", BTC) == 99_500 * USD
    perps.transact(trader, "trade", BTC, -BASE * 8)  # far beyond the cap
    assert perps.call("mark_price", BTC) == 50_000 * USD
    exchange.evm.mine(10 * 130)
    assert perps.call("trade_flow", BTC) == 0 and perps.call("mark_price", BTC) == 100_000 * USD


# ---------------------------------------------------------------- trading modes and the band


def test_cancel_only_allows_only_reducing_and_liquidation_still_runs(exchange):
    perps = exchange.perps
    trader = exchange.trader(deposit_usd=10_000)
    keeper = exchange.trader(deposit_usd=1)
    perps.transact(trader, "trade", BTC, BASE // 2)
    perps.transact(exchange.owner, "set_trading_mode", CANCEL_ONLY)
    assert perps.reverts(trader, "trade", BTC, BASE // 10) == "perps: cancel-only"  # adds
    assert perps.reverts(trader, "trade", BTC, -BASE) == "perps: cancel-only"  # flips
    assert perps.reverts(trader, "trade", ETH, BASE) == "perps: cancel-only"  # opens
    perps.transact(trader, "trade", BTC, -BASE // 10)  # reduces
    exchange.set_price_usd(BTC, 78_000)  # 0.4 BTC lose 8_800 of ~9_970: below maintenance
    perps.transact(keeper, "liquidate", trader.address, BTC)
    perps.transact(exchange.owner, "set_trading_mode", POST_ONLY)
    perps.transact(keeper, "trade", ETH, 1)  # post-only: the vault makes, a trade fills


def test_modes_and_market_settings_are_the_owners(exchange):
    perps, trader = exchange.perps, exchange.trader()
    for fn, args in (("set_trading_mode", (1,)), ("set_market_depth", (BTC, 1)),
                     ("set_price_band", (10,)), ("set_flow_half_life", (1,))):
        assert perps.reverts(trader, fn, *args) == "perps: not owner"
    assert perps.reverts(exchange.owner, "set_trading_mode", 3) == "perps: bad mode"
    assert perps.reverts(exchange.owner, "set_price_band", 10_001) == "perps: bad band"


def test_the_band_clamps_the_mark_only_in_restricted_modes(exchange):
    perps = exchange.perps
    perps.transact(exchange.owner, "set_market_depth", BTC, 10_000 * USD)
    perps.transact(exchange.owner, "set_price_band", 100)  # 1 %
    trader = exchange.trader(deposit_usd=100_000)
    perps.transact(trader, "trade", BTC, BASE // 2)  # +5 %
    assert perps.call("mark_price", BTC) == 105_000 * USD  # open: no band
    perps.transact(exchange.owner, "set_trading_mode", POST_ONLY)
    assert perps.call("mark_price", BTC) == 101_000 * USD
    perps.transact(exchange.owner, "set_price_band", 0)
    assert perps.call("mark_price", BTC) == 105_000 * USD


# ---------------------------------------------------------------- the property

TRADERS = 3
KEEPER = TRADERS
MARKETS = (BTC, ETH)
START = {BTC: 100_000, ETH: 4_000}
STEP = {BTC: 10**16, ETH: 10**17}
who = st.integers(0, TRADERS - 1)
market = st.sampled_from(MARKETS)
operations = st.one_of(
    st.tuples(st.just("trade"), who, market, st.integers(-200, 200).filter(bool)),
    st.tuples(st.just("trade"), who, market, st.integers(-200, 200).filter(bool)),
    st.tuples(st.just("close"), who, market),
    st.tuples(st.just("price"), market, st.sampled_from([0, 60, 90, 100, 110, 140])),
    st.tuples(st.just("funding"), market, st.integers(-5_000, 5_000)),  # USD per base unit
    st.tuples(st.just("depth"), market, st.sampled_from([0, 5_000, 50_000, 1_000_000])),
    st.tuples(st.just("mode"), st.sampled_from([OPEN, CANCEL_ONLY, POST_ONLY])),
    st.tuples(st.just("band"), st.sampled_from([0, 50, 500])),
    st.tuples(st.just("withdraw"), who, st.integers(1, 100)),
    st.tuples(st.just("mine"), st.integers(1, 20)),
    st.tuples(st.just("keeper"),),
)


def _keeper(exchange, accounts, marks_ok) -> None:
    perps = exchange.perps
    for account in accounts[:TRADERS]:
        if not perps.call("is_liquidatable", account.address):
            continue
        for m in MARKETS:
            if perps.call("position", account.address, m)[0] != 0:
                result = perps.transact(accounts[KEEPER], "liquidate", account.address, m)
                marks_ok(result)
                break


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(operations, min_size=8, max_size=25), vault_usd=st.sampled_from([0, 2_000, 200_000]))
def test_funding_flow_and_modes_conserve_value_and_the_band_holds(script, vault_usd):
    exchange = deploy_exchange(vault_usd=vault_usd)
    perps, evm = exchange.perps, exchange.evm
    accounts = [exchange.trader(deposit_usd=5_000) for _ in range(TRADERS)] + [exchange.trader(deposit_usd=1)]
    eoas = [exchange.owner, exchange.reporter, *accounts]
    eth_total = sum(evm.balance(a.address) for a in eoas) + evm.balance(perps.address)

    def marks_ok(result):
        """No liquidation in a restricted mode at a mark outside the band."""
        band, mode = perps.call("price_band_bps"), perps.call("trading_mode")
        for event in perps.events(result, "Liquidation"):
            index = perps.call("index_price", event["market"])
            if band and mode != OPEN:
                assert abs(event["price"] - index) <= index * band // 10_000

    for op in script:
        kind, args = op[0], op[1:]
        if kind == "trade":
            i, m, steps = args
            perps.transact(accounts[i], "trade", m, steps * STEP[m], expect_ok=False)
        elif kind == "close":
            perps.transact(accounts[args[0]], "close", args[1], expect_ok=False)
        elif kind == "price":
            exchange.set_price_usd(args[0], START[args[0]] * args[1] // 100)
            _keeper(exchange, accounts, marks_ok)
        elif kind == "funding":
            post_funding(exchange, {args[0]: args[1] * USD})
            _keeper(exchange, accounts, marks_ok)
        elif kind == "depth":
            perps.transact(exchange.owner, "set_market_depth", args[0], args[1] * USD)
        elif kind == "mode":
            perps.transact(exchange.owner, "set_trading_mode", args[0])
        elif kind == "band":
            perps.transact(exchange.owner, "set_price_band", args[0])
        elif kind == "withdraw":
            free = perps.call("free_collateral", accounts[args[0]].address)
            amount = free * args[1] // 100
            result = perps.transact(accounts[args[0]], "withdraw", amount, expect_ok=False)
            # Realising funding first never shrinks what may leave: equity is unchanged.
            assert result.ok or amount == 0
        elif kind == "mine":
            evm.mine(args[0])
        else:
            _keeper(exchange, accounts, marks_ok)
        collateral = sum(perps.call("collateral", a.address) for a in accounts)
        assert perps.call("total_collateral") == collateral
        check_identities(exchange)
        assert sum(evm.balance(a.address) for a in eoas) + evm.balance(perps.address) == eth_total
        if perps.call("price_band_bps") and perps.call("trading_mode") != OPEN:
            for m in MARKETS:
                index, mark = perps.call("index_price", m), perps.call("mark_price", m)
                assert abs(mark - index) <= index * perps.call("price_band_bps") // 10_000
