# pragma version 0.4.3
"""
@title Perpetual futures exchange, cross margin, native-token collateral
@notice One cross-margin account per trader, one position per market, marked
        to the oracle price; liquidation by anyone below maintenance margin.
@dev Units (all integers, no floats anywhere):
       collateral   wei of the chain's native token; 1e18 wei = 1 USD
       price        USD per whole base unit * 1e18 (the oracle's 18 decimals)
       size         base units * 1e18; positive long, negative short
       notional     |size| * price // 1e18, in wei
       *_bps        basis points, 10_000 = 100 %
     Counterparty: the vault. Every trade executes at the oracle mark against
     the exchange's vault (house liquidity, like Paradex's liquidator vault or
     Hyperliquid's HLP): a trader's realised loss is paid into the vault and a
     realised profit is paid out of it. So value only moves between accounts,
     the vault and the fee pot, and the contract's ETH balance is exactly
         total_collateral + vault + fees_accrued                 (I1)
     and also
         total_deposited + total_vault_funded
           - total_withdrawn - total_fees_collected
           - total_l1_settled                                    (I2)
     to the wei, after every transaction. The only way to break either is ETH
     forced in without a call (SELFDESTRUCT or a block reward), which shows up
     as balance > accounted_balance() and is never counted as anyone's.
     Rounding always goes against the trader and for the vault: PnL is floored
     toward -infinity, the entry price of a grown long is rounded up and of a
     grown short down, fees and margin requirements round up.
     Losses larger than an account's collateral: the account's collateral floors
     at 0 and the vault forgoes the rest (recorded in `shortfall_absorbed`).
     Profits larger than the vault: the vault pays what it has and the rest is
     recorded as `bad_debt` (and per account in `unpaid_profit`).
     L1 settlements (after a rollback): a withdrawal already final on L1 inside
     the rolled-back window was paid out on L1, yet the rollback restored its
     tokens on L2. `settle_l1_withdrawal` moves that amount out of the exchange
     into the bridge (where it would be had the withdrawal stood), taken from
     the account's collateral and/or the vault; it leaves the contract, so I1
     is unchanged and I2 subtracts `total_l1_settled`.
     Selective restore (the DAO fork's irregular state change, done through the
     contract): `restore_account` sets one account's collateral and positions
     back to a snapshot. The collateral difference is paid by the vault (more
     collateral: the vault pays it; less: the vault takes it), so value only
     moves between the account and the vault and no ETH moves: I1 and I2 read
     exactly as above. The gross flows are kept in `total_restored_from_vault`
     (vault to collateral) and `total_restored_to_vault` (collateral to vault);
     the vault's net change from restores is their difference, negated.
     Funding (as Paradex documents it): each market has a funding index (price
     units, signed), the integral of the funding rate, posted by the oracle's
     reporter with `post_funding`. A position caches the index at its last
     change; its accrued funding, paid by the account, is
         size * (index - cached) / 1e18     (a rising index: longs pay shorts)
     and its funding PnL is the negative of that, floored against the trader.
     Funding PnL counts in equity (and so in every margin test) and is realised,
     against the vault like any PnL, on a trade or liquidation of that position
     and on every position at a withdrawal. Resetting an index to 0 adds
     size * cached to every open position's PnL at once.
     Mark price: mark = index price (the oracle's) + premium, with
         premium = index * flow_notional / (100 * depth)
     where flow_notional = flow * index / 1e18 is the recent signed trade flow
     (buys +, sells -, liquidations included) and `depth` is the notional (wei)
     that moves the mark by 1 %; the flow halves every `flow_half_life` blocks.
     |premium| is capped at MAX_PREMIUM_BPS of the index. Depth 0 (the default)
     means infinitely deep: the mark is the index. A trade fills at the mark
     after its own flow (it pays its impact, so a round trip cannot profit).
     Trading mode (owner): OPEN, CANCEL_ONLY (only trades that reduce or close a
     position; liquidations run) or POST_ONLY (the vault is the only maker: any
     trade fills, while depth is thin). In the restricted modes, with
     `price_band_bps` > 0, the mark is clamped to index * (1 +/- band).
"""

interface Oracle:
    def price(market: uint256) -> uint256: view
    def updated_at(market: uint256) -> uint256: view
    def reporter() -> address: view

interface Bridge:
    def fund_reserve(): payable

UNIT: constant(uint256) = 10**18          # size and price precision
SUNIT: constant(int256) = 10**18
BPS: constant(uint256) = 10_000
MAX_MARKETS: constant(uint256) = 16       # bounds every per-account loop
MAX_PREMIUM_BPS: constant(uint256) = 5_000  # the mark stays within index * (1 +/- 50 %)
MAX_HALVINGS: constant(uint256) = 128     # a flow halved this often is 0
MODE_OPEN: constant(uint256) = 0
MODE_CANCEL_ONLY: constant(uint256) = 1
MODE_POST_ONLY: constant(uint256) = 2

struct Health:
    equity: int256          # collateral + unrealised PnL, wei
    initial: uint256        # initial margin requirement, wei
    maintenance: uint256    # maintenance margin requirement, wei
    notional: uint256       # sum of |size| * mark, wei
    open_positions: uint256

struct Position:
    size: int256            # base units * 1e18, + long, - short
    entry_price: uint256    # 18 decimals; 0 when flat
    funding_cached: int256  # the market's funding index at the last change

event Deposit:
    account: indexed(address)
    amount: uint256

event Withdrawal:
    account: indexed(address)
    amount: uint256

event Trade:
    account: indexed(address)
    market: indexed(uint256)
    size_delta: int256
    price: uint256
    new_size: int256
    entry_price: uint256
    realised_pnl: int256
    fee: uint256

event Liquidation:
    account: indexed(address)
    market: indexed(uint256)
    liquidator: indexed(address)
    size: int256
    entry_price: uint256
    price: uint256
    realised_pnl: int256
    liquidator_fee: uint256
    penalty: uint256
    shortfall: uint256

event BadDebt:
    account: indexed(address)
    amount: uint256

event VaultFunded:
    sender: indexed(address)
    amount: uint256

event Compensated:
    account: indexed(address)
    amount: uint256

event FeesCollected:
    recipient: indexed(address)
    amount: uint256

event L1WithdrawalSettled:
    account: indexed(address)
    bridge: indexed(address)
    amount: uint256          # = from_account + from_vault, sent to the bridge
    from_account: uint256    # taken from the account's collateral
    from_vault: uint256      # taken from the vault

event AccountRestored:
    account: indexed(address)
    collateral: uint256      # the account's collateral after the restore
    vault_delta: int256      # the vault's change: old collateral - new collateral

# After AccountRestored (which leaves the account flat), one per listed position.
event PositionRestored:
    account: indexed(address)
    market: uint256
    size: int256
    entry_price: uint256

# Funding PnL (positive: to the account) realised on `market`'s position; of a
# loss, `shortfall` exceeded the collateral and was forgone by the vault.
event FundingRealised:
    account: indexed(address)
    market: indexed(uint256)
    amount: int256
    shortfall: uint256

event FundingIndexUpdated:
    market: indexed(uint256)
    index: int256

event TradingModeChanged:
    mode: uint256

event MarketDepthSet:
    market: indexed(uint256)
    depth: uint256

event PriceBandSet:
    price_band_bps: uint256

event FlowHalfLifeSet:
    blocks: uint256

event MarketsListed:
    num_markets: uint256

event OwnershipTransferred:
    old_owner: indexed(address)
    new_owner: indexed(address)

owner: public(address)
oracle: public(address)
# Markets are the ids 0 .. num_markets-1; listing more only raises the count.
num_markets: public(uint256)

initial_margin_bps: public(uint256)
maintenance_margin_bps: public(uint256)
max_leverage: public(uint256)            # max total notional / equity, whole x
trading_fee_bps: public(uint256)
liquidation_fee_bps: public(uint256)     # to the liquidator, of notional
liquidation_penalty_bps: public(uint256) # to the vault, of notional

collateral: public(HashMap[address, uint256])
_positions: HashMap[address, HashMap[uint256, Position]]
open_interest_long: public(HashMap[uint256, uint256])    # sum of long sizes
open_interest_short: public(HashMap[uint256, uint256])   # sum of |short sizes|

_vault: uint256
fees_accrued: public(uint256)
total_collateral: public(uint256)

# Running totals for the conservation checks (I1, I2 above).
total_deposited: public(uint256)
total_withdrawn: public(uint256)
total_vault_funded: public(uint256)
total_fees_collected: public(uint256)
total_compensated: public(uint256)
# Wei sent to the bridge by settle_l1_withdrawal (I2), and the vault's part of it.
total_l1_settled: public(uint256)
total_l1_settled_from_vault: public(uint256)
# Collateral set by restore_account: paid by the vault, and taken back into it.
total_restored_from_vault: public(uint256)
total_restored_to_vault: public(uint256)
shortfall_absorbed: public(uint256)
bad_debt: public(uint256)
unpaid_profit: public(HashMap[address, uint256])
liquidation_count: public(uint256)

funding_index: public(HashMap[uint256, int256])
trading_mode: public(uint256)
price_band_bps: public(uint256)          # 0: no band
market_depth: public(HashMap[uint256, uint256])  # wei of notional per 1 % move; 0: infinite
flow_half_life: public(uint256)          # blocks; 0: the flow never decays
_flow: HashMap[uint256, int256]
_flow_block: HashMap[uint256, uint256]


@deploy
def __init__(
    oracle: address,
    num_markets: uint256,
    initial_margin_bps: uint256,
    maintenance_margin_bps: uint256,
    max_leverage: uint256,
    trading_fee_bps: uint256,
    liquidation_fee_bps: uint256,
    liquidation_penalty_bps: uint256,
):
    assert num_markets <= MAX_MARKETS, "perps: too many markets"
    # Maintenance below initial, or a fresh position could be liquidated at once.
    assert 0 < maintenance_margin_bps and maintenance_margin_bps < initial_margin_bps
    assert initial_margin_bps <= BPS
    assert max_leverage >= 1
    assert liquidation_fee_bps + liquidation_penalty_bps <= BPS
    self.owner = msg.sender
    self.oracle = oracle
    self.num_markets = num_markets
    self.initial_margin_bps = initial_margin_bps
    self.maintenance_margin_bps = maintenance_margin_bps
    self.max_leverage = max_leverage
    self.trading_fee_bps = trading_fee_bps
    self.liquidation_fee_bps = liquidation_fee_bps
    self.liquidation_penalty_bps = liquidation_penalty_bps


# ---------------------------------------------------------------- arithmetic

@pure
@internal
def _ceil_div(a: uint256, b: uint256) -> uint256:
    return (a + b - 1) // b


@pure
@internal
def _pnl(size: int256, entry_price: uint256, mark: uint256) -> int256:
    # EVM SDIV truncates toward zero; PnL must round toward -infinity (SUNIT > 0, so a
    # negative remainder is exactly "inexact and negative"). Written out rather than a
    # helper call: this runs for every position in every margin test.
    scaled: int256 = size * (convert(mark, int256) - convert(entry_price, int256))
    if scaled % SUNIT < 0:
        return scaled // SUNIT - 1
    return scaled // SUNIT


@pure
@internal
def _oi_parts(size: int256) -> (uint256, uint256):
    if size > 0:
        return convert(size, uint256), 0
    return 0, convert(-size, uint256)


# ---------------------------------------------------------------- account health

@view
@internal
def _index_price(market: uint256) -> uint256:
    return staticcall Oracle(self.oracle).price(market)


@view
@internal
def _current_flow(market: uint256) -> int256:
    """The recent signed flow, halved once per `flow_half_life` blocks since it last changed."""
    flow: int256 = self._flow[market]
    half_life: uint256 = self.flow_half_life
    if flow == 0 or half_life == 0:
        return flow
    # A view run with an earlier block number (the client's default context) sees no decay.
    last: uint256 = self._flow_block[market]
    if block.number <= last:
        return flow
    halvings: uint256 = (block.number - last) // half_life
    if halvings >= MAX_HALVINGS:
        return 0
    # Truncation toward zero: the decay is symmetric for buys and sells.
    return flow // convert(1 << halvings, int256)


@view
@internal
def _mark(market: uint256) -> uint256:
    index: uint256 = self._index_price(market)
    depth: uint256 = self.market_depth[market]
    mark: uint256 = index
    if depth > 0 and index > 0:
        # The flow only matters where depth makes it move the mark: read it only there.
        flow_notional: int256 = self._current_flow(market) * convert(index, int256) // SUNIT
        premium: int256 = flow_notional * convert(index, int256) // convert(100 * depth, int256)
        cap: int256 = convert(index * MAX_PREMIUM_BPS // BPS, int256)
        premium = max(-cap, min(cap, premium))
        mark = convert(convert(index, int256) + premium, uint256)
    band: uint256 = self.price_band_bps
    if band > 0 and self.trading_mode != MODE_OPEN:
        width: uint256 = index * min(band, BPS) // BPS
        mark = max(index - width, min(index + width, mark))
    return mark


@internal
def _add_flow(market: uint256, size_delta: int256):
    """Record a fill's signed size in the market's flow (only where depth makes it matter)."""
    if self.market_depth[market] == 0:
        return
    self._flow[market] = self._current_flow(market) + size_delta
    self._flow_block[market] = block.number


@pure
@internal
def _funding_pnl(size: int256, cached: int256, index: int256) -> int256:
    # The account pays size * (index - cached); floored against it (as in _pnl).
    scaled: int256 = size * (cached - index)
    if scaled % SUNIT < 0:
        return scaled // SUNIT - 1
    return scaled // SUNIT


@view
@internal
def _health(account: address) -> Health:
    equity: int256 = convert(self.collateral[account], int256)
    initial: uint256 = 0
    maintenance: uint256 = 0
    notional: uint256 = 0
    open_positions: uint256 = 0
    initial_bps: uint256 = self.initial_margin_bps
    maintenance_bps: uint256 = self.maintenance_margin_bps
    for market: uint256 in range(self.num_markets, bound=MAX_MARKETS):
        # Most markets are flat for most accounts: one slot decides, the rest is read only
        # for an open position.
        size: int256 = self._positions[account][market].size
        if size == 0:
            continue
        mark: uint256 = self._mark(market)
        equity += self._pnl(size, self._positions[account][market].entry_price, mark)
        equity += self._funding_pnl(size, self._positions[account][market].funding_cached,
                                    self.funding_index[market])
        scaled: uint256 = convert(abs(size), uint256) * mark
        notional += scaled // UNIT
        # _ceil_div written out (same expression): once per position per margin test.
        initial += (scaled * initial_bps + UNIT * BPS - 1) // (UNIT * BPS)
        maintenance += (scaled * maintenance_bps + UNIT * BPS - 1) // (UNIT * BPS)
        open_positions += 1
    return Health(
        equity=equity, initial=initial, maintenance=maintenance,
        notional=notional, open_positions=open_positions,
    )


@view
@internal
def _is_liquidatable(account: address) -> bool:
    h: Health = self._health(account)
    return h.open_positions > 0 and h.equity < convert(h.maintenance, int256)


@view
@internal
def _free_collateral(account: address) -> uint256:
    h: Health = self._health(account)
    # What must stay: the initial margin and whatever the leverage cap demands.
    required: uint256 = max(h.initial, self._ceil_div(h.notional, self.max_leverage))
    if h.equity <= convert(required, int256):
        return 0
    # Unrealised profit is not cash: only collateral can leave.
    return min(self.collateral[account], convert(h.equity, uint256) - required)


# ---------------------------------------------------------------- value movements

@internal
def _settle(account: address, pnl: int256) -> uint256:
    """Move realised PnL between the account and the vault; return the shortfall."""
    if pnl >= 0:
        owed: uint256 = convert(pnl, uint256)
        paid: uint256 = min(owed, self._vault)
        self._vault -= paid
        self.collateral[account] += paid
        self.total_collateral += paid
        if owed > paid:
            self.bad_debt += owed - paid
            self.unpaid_profit[account] += owed - paid
            log BadDebt(account=account, amount=owed - paid)
        return 0
    loss: uint256 = convert(-pnl, uint256)
    taken: uint256 = min(loss, self.collateral[account])
    self.collateral[account] -= taken
    self.total_collateral -= taken
    self._vault += taken
    return loss - taken


@internal
def _set_position(account: address, market: uint256, old_size: int256, new_size: int256, entry_price: uint256):
    old_long: uint256 = 0
    old_short: uint256 = 0
    new_long: uint256 = 0
    new_short: uint256 = 0
    old_long, old_short = self._oi_parts(old_size)
    new_long, new_short = self._oi_parts(new_size)
    self.open_interest_long[market] = self.open_interest_long[market] - old_long + new_long
    self.open_interest_short[market] = self.open_interest_short[market] - old_short + new_short
    self._positions[account][market] = Position(
        size=new_size, entry_price=entry_price, funding_cached=self.funding_index[market]
    )


@internal
def _realise_funding(account: address, market: uint256) -> int256:
    """Settle `account`'s accrued funding in `market` against the vault and re-cache the index.
    Returns the funding PnL; a loss beyond the collateral goes to `shortfall_absorbed`."""
    size: int256 = self._positions[account][market].size
    if size == 0:
        return 0
    cached: int256 = self._positions[account][market].funding_cached
    index: int256 = self.funding_index[market]
    if cached == index:
        return 0
    amount: int256 = self._funding_pnl(size, cached, index)
    self._positions[account][market].funding_cached = index
    shortfall: uint256 = self._settle(account, amount)
    self.shortfall_absorbed += shortfall
    log FundingRealised(account=account, market=market, amount=amount, shortfall=shortfall)
    return amount


# ---------------------------------------------------------------- trader actions

@payable
@external
def deposit():
    """@notice Add msg.value to the sender's collateral."""
    assert msg.value > 0, "perps: zero deposit"
    self.collateral[msg.sender] += msg.value
    self.total_collateral += msg.value
    self.total_deposited += msg.value
    log Deposit(account=msg.sender, amount=msg.value)


@nonreentrant
@external
def withdraw(amount: uint256):
    """@notice Send `amount` wei of free collateral back to the sender."""
    assert amount > 0, "perps: zero withdrawal"
    for market: uint256 in range(self.num_markets, bound=MAX_MARKETS):
        self._realise_funding(msg.sender, market)
    assert amount <= self._free_collateral(msg.sender), "perps: exceeds free collateral"
    self.collateral[msg.sender] -= amount
    self.total_collateral -= amount
    self.total_withdrawn += amount
    log Withdrawal(account=msg.sender, amount=amount)
    # Effects before the interaction; @nonreentrant as a second line.
    raw_call(msg.sender, b"", value=amount)


@external
def trade(market: uint256, size_delta: int256):
    """
    @notice Change the sender's position in `market` by `size_delta` at the mark.
    @dev Opens, adds, reduces, closes or flips. Reducing realises PnL on the
         closed part. A trade that adds exposure must leave equity at or above
         the initial margin and total notional within `max_leverage` x equity.
    """
    self._trade(msg.sender, market, size_delta)


@external
def close(market: uint256):
    """@notice Close the sender's whole position in `market` at the mark."""
    size: int256 = self._positions[msg.sender][market].size
    assert size != 0, "perps: no position"
    self._trade(msg.sender, market, -size)


@internal
def _trade(trader: address, market: uint256, size_delta: int256):
    assert market < self.num_markets, "perps: unknown market"
    assert size_delta != 0, "perps: zero size"
    # A zero price is not a price one can trade at; liquidation still runs on it.
    assert self._index_price(market) > 0, "perps: no price"
    # Below maintenance the only way out is liquidation, or a trader could dodge
    # the penalty by closing himself a block before the keeper arrives.
    assert not self._is_liquidatable(trader), "perps: account liquidatable"
    # Funding first, so the trade's PnL and the new cache start from the index.
    self._realise_funding(trader, market)
    # The fill pays its own impact.
    self._add_flow(market, size_delta)
    mark: uint256 = self._mark(market)

    pos: Position = self._positions[trader][market]
    old_size: int256 = pos.size
    new_size: int256 = old_size + size_delta
    entry: uint256 = pos.entry_price
    realised: int256 = 0
    adds_exposure: bool = False

    if old_size == 0 or (old_size > 0) == (size_delta > 0):
        # Open or add: volume-weighted entry, rounded against the trader.
        adds_exposure = True
        cost: uint256 = convert(abs(old_size), uint256) * entry + convert(abs(size_delta), uint256) * mark
        if new_size > 0:
            entry = self._ceil_div(cost, convert(abs(new_size), uint256))
        else:
            entry = cost // convert(abs(new_size), uint256)
    else:
        # Reduce, close or flip: realise PnL on the part that closes.
        closed: int256 = min(abs(old_size), abs(size_delta))
        if old_size < 0:
            closed = -closed
        realised = self._pnl(closed, entry, mark)
        if new_size == 0:
            entry = 0
        elif (new_size > 0) != (old_size > 0):
            adds_exposure = True
            entry = mark
    assert not (adds_exposure and self.trading_mode == MODE_CANCEL_ONLY), "perps: cancel-only"

    self._set_position(trader, market, old_size, new_size, entry)
    shortfall: uint256 = self._settle(trader, realised)
    # Cross margin lets a losing position exceed the cash beside it; such a loss
    # is realised by closing the winners first (or by a liquidator).
    assert shortfall == 0, "perps: realised loss exceeds collateral"

    fee: uint256 = self._ceil_div(convert(abs(size_delta), uint256) * mark * self.trading_fee_bps, UNIT * BPS)
    assert fee <= self.collateral[trader], "perps: cannot pay fee"
    self.collateral[trader] -= fee
    self.total_collateral -= fee
    self.fees_accrued += fee

    if adds_exposure:
        h: Health = self._health(trader)
        assert h.equity >= convert(h.initial, int256), "perps: below initial margin"
        assert convert(h.notional, int256) <= h.equity * convert(self.max_leverage, int256), "perps: leverage cap"

    log Trade(
        account=trader, market=market, size_delta=size_delta, price=mark,
        new_size=new_size, entry_price=entry, realised_pnl=realised, fee=fee,
    )


# ---------------------------------------------------------------- liquidation

@external
def liquidate(account: address, market: uint256):
    """
    @notice Close `account`'s position in `market` at the mark, if the account
            is below maintenance margin. Anyone may call; the caller's
            collateral receives the liquidation fee.
    @dev The fee (bps of notional) and then the penalty (bps of notional, to the
         vault) are each capped by the collateral left after the PnL settles.
    """
    assert account != msg.sender, "perps: self-liquidation"
    assert market < self.num_markets, "perps: unknown market"
    pos: Position = self._positions[account][market]
    # Also what stops a second liquidation of the same position.
    assert pos.size != 0, "perps: no position"
    assert self._is_liquidatable(account), "perps: account healthy"

    self._realise_funding(account, market)
    # The liquidation is a fill against the book too: it moves the mark first.
    self._add_flow(market, -pos.size)
    mark: uint256 = self._mark(market)
    pnl: int256 = self._pnl(pos.size, pos.entry_price, mark)
    self._set_position(account, market, pos.size, 0, 0)
    shortfall: uint256 = self._settle(account, pnl)
    self.shortfall_absorbed += shortfall

    scaled: uint256 = convert(abs(pos.size), uint256) * mark
    fee: uint256 = min(scaled * self.liquidation_fee_bps // (UNIT * BPS), self.collateral[account])
    self.collateral[account] -= fee
    self.collateral[msg.sender] += fee
    penalty: uint256 = min(scaled * self.liquidation_penalty_bps // (UNIT * BPS), self.collateral[account])
    self.collateral[account] -= penalty
    self.total_collateral -= penalty
    self._vault += penalty
    self.liquidation_count += 1

    log Liquidation(
        account=account, market=market, liquidator=msg.sender, size=pos.size,
        entry_price=pos.entry_price, price=mark, realised_pnl=pnl,
        liquidator_fee=fee, penalty=penalty, shortfall=shortfall,
    )


# ---------------------------------------------------------------- vault and owner

@payable
@external
def fund_vault():
    """@notice Add msg.value to the vault (house liquidity / insurance). Anyone."""
    assert msg.value > 0, "perps: zero funding"
    self._vault += msg.value
    self.total_vault_funded += msg.value
    log VaultFunded(sender=msg.sender, amount=msg.value)


@external
def compensate(account: address, amount: uint256):
    """@notice Credit `amount` from the vault to `account`'s collateral. Owner only.
    @dev The refund path after an incident: value stays inside the contract."""
    assert msg.sender == self.owner, "perps: not owner"
    assert amount <= self._vault, "perps: vault too small"
    self._vault -= amount
    self.collateral[account] += amount
    self.total_collateral += amount
    self.total_compensated += amount
    log Compensated(account=account, amount=amount)


@nonreentrant
@external
def settle_l1_withdrawal(account: address, amount: uint256, charge_vault: bool, bridge: address) -> uint256:
    """
    @notice Reconcile a withdrawal of `account` that became final on L1 inside a
            rolled-back window: send exactly `amount` wei out of the exchange to
            `bridge.fund_reserve()`. Owner only. Returns the part taken from the
            account's collateral.
    @dev Policy "debit-account" (charge_vault=False): take from the account's
         collateral, and whatever the collateral lacks from the vault.
         Policy "charge-vault" (charge_vault=True): take it all from the vault.
         Reverts if the vault cannot cover its part. The debit ignores margin on
         purpose (the account really was paid on L1): it may leave the account
         below maintenance, for the keepers. Not idempotent: the caller settles
         each final withdrawal once.
    """
    assert msg.sender == self.owner, "perps: not owner"
    assert amount > 0, "perps: zero settlement"
    assert bridge != empty(address) and bridge != self, "perps: bad bridge"
    from_account: uint256 = 0
    if not charge_vault:
        from_account = min(amount, self.collateral[account])
    from_vault: uint256 = amount - from_account
    assert from_vault <= self._vault, "perps: vault too small"
    self.collateral[account] -= from_account
    self.total_collateral -= from_account
    self._vault -= from_vault
    self.total_l1_settled += amount
    self.total_l1_settled_from_vault += from_vault
    log L1WithdrawalSettled(
        account=account, bridge=bridge, amount=amount,
        from_account=from_account, from_vault=from_vault,
    )
    # Effects before the interaction; the bridge must be a contract (extcall
    # checks its code) and accept the value, or all of this reverts.
    extcall Bridge(bridge).fund_reserve(value=amount)
    return from_account


@external
def restore_account(
    account: address,
    collateral: uint256,
    markets: DynArray[uint256, MAX_MARKETS],
    sizes: DynArray[int256, MAX_MARKETS],
    entry_prices: DynArray[uint256, MAX_MARKETS],
):
    """
    @notice Set `account` back to a snapshot: collateral `collateral`, position
            (sizes[i], entry_prices[i]) in markets[i], flat in every other
            market. Owner only.
    @dev The collateral difference is paid by the vault (collateral up: the
         vault pays; down: the vault takes it); reverts if the vault cannot pay.
         Open interest follows the positions exactly. Ignores margin on purpose
         (a snapshot is restored as it was): the account may be liquidatable at
         the current mark, for the keepers. Logs AccountRestored, then one
         PositionRestored per listed market in the order given.
    """
    assert msg.sender == self.owner, "perps: not owner"
    assert account != empty(address), "perps: zero account"
    assert len(sizes) == len(markets) and len(entry_prices) == len(markets), "perps: length mismatch"
    listed: uint256 = 0
    for i: uint256 in range(len(markets), bound=MAX_MARKETS):
        market: uint256 = markets[i]
        assert market < self.num_markets, "perps: unknown market"
        bit: uint256 = 1 << market
        assert listed & bit == 0, "perps: duplicate market"
        listed |= bit
        # Flat is (0, 0); an open position always has a positive entry price.
        assert (sizes[i] == 0) == (entry_prices[i] == 0), "perps: bad position"

    old: uint256 = self.collateral[account]
    vault_delta: int256 = convert(old, int256) - convert(collateral, int256)
    if collateral > old:
        paid: uint256 = collateral - old
        assert paid <= self._vault, "perps: vault too small"
        self._vault -= paid
        self.total_collateral += paid
        self.total_restored_from_vault += paid
    else:
        taken: uint256 = old - collateral
        self._vault += taken
        self.total_collateral -= taken
        self.total_restored_to_vault += taken
    self.collateral[account] = collateral

    for market: uint256 in range(self.num_markets, bound=MAX_MARKETS):
        size: int256 = self._positions[account][market].size
        if size != 0:
            self._set_position(account, market, size, 0, 0)
    log AccountRestored(account=account, collateral=collateral, vault_delta=vault_delta)

    for i: uint256 in range(len(markets), bound=MAX_MARKETS):
        self._set_position(account, markets[i], 0, sizes[i], entry_prices[i])
        log PositionRestored(
            account=account, market=markets[i], size=sizes[i], entry_price=entry_prices[i],
        )


@nonreentrant
@external
def collect_fees(recipient: address):
    """@notice Send all accrued trading fees to `recipient`. Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    amount: uint256 = self.fees_accrued
    self.fees_accrued = 0
    self.total_fees_collected += amount
    log FeesCollected(recipient=recipient, amount=amount)
    raw_call(recipient, b"", value=amount)


@external
def post_funding(markets: DynArray[uint256, MAX_MARKETS], indices: DynArray[int256, MAX_MARKETS]):
    """@notice Post funding indices (price units, signed). The oracle's reporter only:
    funding is market data, written by whoever writes the prices."""
    assert msg.sender == staticcall Oracle(self.oracle).reporter(), "perps: not reporter"
    assert len(markets) == len(indices), "perps: length mismatch"
    for i: uint256 in range(len(markets), bound=MAX_MARKETS):
        assert markets[i] < self.num_markets, "perps: unknown market"
        self.funding_index[markets[i]] = indices[i]
        log FundingIndexUpdated(market=markets[i], index=indices[i])


@external
def set_trading_mode(mode: uint256):
    """@notice OPEN (0), CANCEL_ONLY (1) or POST_ONLY (2). Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    assert mode <= MODE_POST_ONLY, "perps: bad mode"
    self.trading_mode = mode
    log TradingModeChanged(mode=mode)


@external
def set_market_depth(market: uint256, depth: uint256):
    """@notice Notional (wei) that moves `market`'s mark by 1 %; 0 = infinite. Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    assert market < self.num_markets, "perps: unknown market"
    # The flow so far keeps its size; only its effect on the mark changes.
    self._flow[market] = self._current_flow(market)
    self._flow_block[market] = block.number
    self.market_depth[market] = depth
    log MarketDepthSet(market=market, depth=depth)


@external
def set_price_band(price_band_bps: uint256):
    """@notice In restricted modes, clamp the mark to index * (1 +/- band); 0 = off. Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    assert price_band_bps <= BPS, "perps: bad band"
    self.price_band_bps = price_band_bps
    log PriceBandSet(price_band_bps=price_band_bps)


@external
def set_flow_half_life(blocks: uint256):
    """@notice Blocks after which the trade flow behind the premium halves; 0 = never. Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    for market: uint256 in range(self.num_markets, bound=MAX_MARKETS):
        self._flow[market] = self._current_flow(market)
        self._flow_block[market] = block.number
    self.flow_half_life = blocks
    log FlowHalfLifeSet(blocks=blocks)


@external
def list_markets(num_markets: uint256):
    """@notice Raise the number of listed markets (ids 0 .. num_markets-1). Owner only."""
    assert msg.sender == self.owner, "perps: not owner"
    assert num_markets >= self.num_markets and num_markets <= MAX_MARKETS, "perps: bad market count"
    self.num_markets = num_markets
    log MarketsListed(num_markets=num_markets)


@external
def transfer_ownership(new_owner: address):
    """@notice Hand the owner role to another address."""
    assert msg.sender == self.owner, "perps: not owner"
    assert new_owner != empty(address), "perps: zero owner"
    log OwnershipTransferred(old_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


# ---------------------------------------------------------------- views

@view
@external
def position(account: address, market: uint256) -> (int256, uint256):
    """@notice (size, entry_price) of `account` in `market`; (0, 0) when flat."""
    pos: Position = self._positions[account][market]
    return pos.size, pos.entry_price


@view
@external
def unrealised_pnl(account: address, market: uint256) -> int256:
    """@notice PnL of one position at the current mark, floored, in wei."""
    pos: Position = self._positions[account][market]
    if pos.size == 0:
        return 0
    return self._pnl(pos.size, pos.entry_price, self._mark(market))


@view
@external
def accrued_funding(account: address, market: uint256) -> int256:
    """@notice Funding the position owes since its last change, size * (index - cached) / 1e18
    (positive: the account pays). Its PnL, floored, is counted in `equity`."""
    pos: Position = self._positions[account][market]
    return pos.size * (self.funding_index[market] - pos.funding_cached) // SUNIT


@view
@external
def funding_cached(account: address, market: uint256) -> int256:
    """@notice The funding index cached at the position's last change."""
    return self._positions[account][market].funding_cached


@view
@external
def mark_price(market: uint256) -> uint256:
    """@notice The mark: the oracle's index price plus the flow premium (band-clamped in
    restricted modes)."""
    return self._mark(market)


@view
@external
def index_price(market: uint256) -> uint256:
    """@notice The oracle's price of `market`."""
    return self._index_price(market)


@view
@external
def trade_flow(market: uint256) -> int256:
    """@notice The recent signed flow behind the premium, after decay."""
    return self._current_flow(market)


@view
@external
def equity(account: address) -> int256:
    """@notice Collateral plus unrealised PnL at the mark, in wei; may be negative."""
    return self._health(account).equity


@view
@external
def initial_margin_requirement(account: address) -> uint256:
    """@notice Sum over positions of notional * initial_margin_bps, rounded up."""
    return self._health(account).initial


@view
@external
def margin_requirement(account: address) -> uint256:
    """@notice Maintenance requirement: notional * maintenance_margin_bps, rounded up."""
    return self._health(account).maintenance


@view
@external
def notional(account: address) -> uint256:
    """@notice Sum of |size| * mark over the account's positions, in wei."""
    return self._health(account).notional


@view
@external
def free_collateral(account: address) -> uint256:
    """@notice What `withdraw` would allow now."""
    return self._free_collateral(account)


@view
@external
def is_liquidatable(account: address) -> bool:
    """@notice True when the account holds a position and equity < maintenance."""
    return self._is_liquidatable(account)


@view
@external
def open_interest(market: uint256) -> (uint256, uint256):
    """@notice (sum of long sizes, sum of |short sizes|) in `market`."""
    return self.open_interest_long[market], self.open_interest_short[market]


@view
@external
def vault_balance() -> uint256:
    """@notice Wei held by the vault (counterparty and insurance)."""
    return self._vault


@view
@external
def accounted_balance() -> uint256:
    """@notice total_collateral + vault + fees_accrued: equals self.balance (I1)."""
    return self.total_collateral + self._vault + self.fees_accrued
