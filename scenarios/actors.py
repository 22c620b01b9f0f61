"""The actors around the chain: price API, traders, keepers, profit-takers; and the `World` they share.

Actors never run Vyper to decide. They keep an off-chain index of the exchange built from
the events in committed receipts (as real indexers do) and compute account health in
Python with the contract's own integer formulas, so a keeper finds the liquidatable
accounts among thousands without one EVM call; a wrong guess (two keepers racing for one
account, a price moving in the same block) simply reverts on chain.

Rewinding: the index after every committed height is kept (it is small: prices,
collateral and positions), so after a rollback `World.rewind(h)` puts the actors back to
what they knew after height `h`; nonces and balances are always read from the parent
state. Decisions are drawn from a `random.Random` per (actor, fork, height), derived from
the master seed, so asking twice for the same block gives the same transactions, and a
rewind needs no random state restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from eth.abc import SignedTransactionAPI

from chain.blocks import Block
from chain.exchange import (
    BPS,
    TRADING_MODES,
    SIZE_UNIT,
    AccountRestored,
    BadDebt,
    Compensated,
    Deposited,
    ExchangeEvent,
    FlowHalfLifeSet,
    FundingIndexUpdated,
    FundingRealised,
    MarketDepthSet,
    PriceBandSet,
    TradingModeChanged,
    L1WithdrawalSettled,
    Liquidated,
    PerpsParams,
    PositionRestored,
    PriceUpdated,
    Traded,
    Withdrawn,
    bridge_withdraw_call,
    close_call,
    decode_events,
    deposit_call,
    get_collateral,
    get_funding_cached,
    get_funding_index,
    get_position,
    get_price,
    liquidate_call,
    post_funding_call,
    post_prices_call,
    sign_call,
    trade_call,
    withdraw_call,
)
from chain.execution import ExecutionResult
from chain.genesis import Genesis, SetupRevertedError, build_genesis_once
from chain.state import get_balance, get_nonce
from chain.store import Store
from scenarios.errors import RunFailed
from scenarios.market import (
    Actor,
    MarketWorld,
    PricePath,
    build_market_world,
    compute_leverage_cap,
    compute_size,
    derive_rng,
    draw_leverage,
    draw_market,
    initial_funding_indices,
    usd_to_wei,
)
from scenarios.schema import Scenario

MIN_WITHDRAWAL_WEI = 10 * 10**18  # actors do not bother moving less than $10
MAX_PREMIUM_BPS = 5_000  # perps.vy's constants
MAX_HALVINGS = 128
DEVIATION_ALERT_BPS = 1_000  # profit-takers pounce when the oracle is 10 % off the world's price
TRADE_HEADROOM = 0.9  # fraction of the margin room a trader dares use (prices move within a block)


# ---------------------------------------------------------------- the off-chain index


@dataclass
class ExchangeIndex:
    """What actors know of the exchange after `height`: prices, collateral, open positions.

    `positions[account]` is a tuple of (market, size, entry_price), sorted by market, for
    open positions only; tuples make a shallow copy a full snapshot. `funding[market]` is
    the market's funding index and `funding_cached[(account, market)]` the index an open
    position cached at its last change.
    """

    height: int
    prices: dict[int, int] = field(default_factory=dict)
    collateral: dict[bytes, int] = field(default_factory=dict)
    positions: dict[bytes, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)
    funding: dict[int, int] = field(default_factory=dict)
    funding_cached: dict[tuple[bytes, int], int] = field(default_factory=dict)
    # The book behind the mark: depth, flow and the block the flow last changed, per market.
    depth: dict[int, int] = field(default_factory=dict)
    flow: dict[int, tuple[int, int]] = field(default_factory=dict)
    half_life: int = 0
    mode: int = 0
    band_bps: int = 0

    def copy(self) -> "ExchangeIndex":
        """An independent snapshot."""
        return ExchangeIndex(self.height, dict(self.prices), dict(self.collateral), dict(self.positions),
                             dict(self.funding), dict(self.funding_cached), dict(self.depth), dict(self.flow),
                             self.half_life, self.mode, self.band_bps)

    def current_flow(self, market: int, block_number: int | None) -> int:
        """`perps._current_flow` at `block_number` (None: no decay, as a view at height 0)."""
        flow, last = self.flow.get(market, (0, 0))
        if flow == 0 or self.half_life == 0 or block_number is None or block_number <= last:
            return flow
        halvings = (block_number - last) // self.half_life
        return 0 if halvings >= MAX_HALVINGS else _div_toward_zero(flow, 2**halvings)

    def mark(self, market: int, block_number: int | None = None) -> int:
        """`perps._mark(market)` at `block_number`: the index price plus the flow premium."""
        index = self.prices.get(market, 0)
        depth = self.depth.get(market, 0)
        mark = index
        if depth > 0 and index > 0:
            flow_notional = _div_toward_zero(self.current_flow(market, block_number) * index, SIZE_UNIT)
            premium = _div_toward_zero(flow_notional * index, 100 * depth)
            cap = index * MAX_PREMIUM_BPS // BPS
            mark = index + max(-cap, min(cap, premium))
        if self.band_bps > 0 and self.mode != 0:
            width = index * min(self.band_bps, BPS) // BPS
            mark = max(index - width, min(index + width, mark))
        return mark

    def add_flow(self, market: int, size_delta: int) -> None:
        """A fill at block `height` moves the flow where depth makes it matter (`perps._add_flow`)."""
        if self.depth.get(market, 0) == 0:
            return
        self.flow[market] = (self.current_flow(market, self.height) + size_delta, self.height)


def _div_toward_zero(a: int, b: int) -> int:
    """The EVM's SDIV (Vyper's `//` on int256): truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _set_position(index: ExchangeIndex, account: bytes, market: int, size: int, entry_price: int) -> None:
    # The contract caches the market's index whenever it writes a position.
    if size != 0:
        index.funding_cached[(account, market)] = index.funding.get(market, 0)
    else:
        index.funding_cached.pop((account, market), None)
    others = tuple(p for p in index.positions.get(account, ()) if p[0] != market)
    if size != 0:
        others = tuple(sorted(others + ((market, size, entry_price),)))
    if others:
        index.positions[account] = others
    else:
        index.positions.pop(account, None)


def _add_collateral(index: ExchangeIndex, account: bytes, amount: int) -> None:
    index.collateral[account] = index.collateral.get(account, 0) + amount


def apply_event(index: ExchangeIndex, event: ExchangeEvent) -> None:
    """Update `index` with one event, mirroring the contract's arithmetic exactly.

    A `BadDebt` is logged before the trade or liquidation whose profit the vault could not
    pay; subtracting it while the trade adds the full PnL gives what was paid.
    """
    if isinstance(event, PriceUpdated):
        index.prices[event.market] = event.price
    elif isinstance(event, MarketDepthSet):
        index.flow[event.market] = (index.current_flow(event.market, index.height), index.height)
        index.depth[event.market] = event.depth
    elif isinstance(event, FlowHalfLifeSet):
        for market in sorted(index.flow):
            index.flow[market] = (index.current_flow(market, index.height), index.height)
        index.half_life = event.blocks
    elif isinstance(event, TradingModeChanged):
        index.mode = event.mode
    elif isinstance(event, PriceBandSet):
        index.band_bps = event.price_band_bps
    elif isinstance(event, FundingIndexUpdated):
        index.funding[event.market] = event.index
    elif isinstance(event, FundingRealised):
        # As a liquidation's PnL: a loss beyond the collateral is the vault's.
        settled = event.amount + event.shortfall if event.amount < 0 else event.amount
        _add_collateral(index, event.account, settled)
        index.funding_cached[(event.account, event.market)] = index.funding.get(event.market, 0)
    elif isinstance(event, (Deposited, Compensated)):
        _add_collateral(index, event.account, event.amount)
    elif isinstance(event, (Withdrawn, BadDebt)):
        _add_collateral(index, event.account, -event.amount)
    elif isinstance(event, Traded):
        index.add_flow(event.market, event.size_delta)
        _add_collateral(index, event.account, event.realised_pnl - event.fee)
        _set_position(index, event.account, event.market, event.new_size, event.entry_price)
    elif isinstance(event, Liquidated):
        index.add_flow(event.market, -event.size)
        # A loss beyond the collateral (the shortfall) is the vault's, not the account's.
        settled = event.realised_pnl + event.shortfall if event.realised_pnl < 0 else event.realised_pnl
        _add_collateral(index, event.account, settled - event.liquidator_fee - event.penalty)
        _add_collateral(index, event.liquidator, event.liquidator_fee)
        _set_position(index, event.account, event.market, 0, 0)
    elif isinstance(event, L1WithdrawalSettled):
        # Only the collateral part is the account's; the vault is not indexed.
        _add_collateral(index, event.account, -event.from_account)
    elif isinstance(event, AccountRestored):
        # The contract logs it with the account flat; its positions follow.
        index.collateral[event.account] = event.collateral
        index.positions.pop(event.account, None)
    elif isinstance(event, PositionRestored):
        _set_position(index, event.account, event.market, event.size, event.entry_price)


@dataclass(frozen=True)
class Health:
    """An account's margin state at the index's prices (the contract's `Health`)."""

    equity: int
    initial: int
    maintenance: int
    notional: int
    open_positions: int

    @property
    def is_liquidatable(self) -> bool:
        """The contract's rule: a position open and equity below maintenance."""
        return self.open_positions > 0 and self.equity < self.maintenance


def compute_health(
    index: ExchangeIndex, params: PerpsParams, account: bytes, block_number: int | None = None
) -> Health:
    """`perps._health(account)` in Python, to the wei, with the marks at `block_number`
    (None: the flow undecayed, as a view run at height 0)."""
    equity = index.collateral.get(account, 0)
    initial = maintenance = notional = 0
    positions = index.positions.get(account, ())
    for market, size, entry_price in positions:
        mark = index.mark(market, block_number)
        equity += size * (mark - entry_price) // SIZE_UNIT  # floor toward -inf, as _floor_div
        cached = index.funding_cached.get((account, market), 0)
        equity += size * (cached - index.funding.get(market, 0)) // SIZE_UNIT  # funding PnL, floored
        scaled = abs(size) * mark
        notional += scaled // SIZE_UNIT
        initial += -(-scaled * params.initial_margin_bps // (SIZE_UNIT * BPS))
        maintenance += -(-scaled * params.maintenance_margin_bps // (SIZE_UNIT * BPS))
    return Health(equity, initial, maintenance, notional, len(positions))


def compute_free_collateral(index: ExchangeIndex, params: PerpsParams, account: bytes) -> int:
    """`perps._free_collateral(account)` in Python: what a withdrawal may take."""
    health = compute_health(index, params, account)
    required = max(health.initial, -(-health.notional // params.max_leverage))
    if health.equity <= required:
        return 0
    return min(index.collateral.get(account, 0), health.equity - required)


def index_from_events(height: int, events: Iterable[ExchangeEvent]) -> ExchangeIndex:
    """A fresh index with `events` applied, as of `height`."""
    index = ExchangeIndex(height)
    for event in events:
        apply_event(index, event)
    return index


# ---------------------------------------------------------------- the world


@dataclass(frozen=True)
class LiquidationCandidate:
    """An account the index says is liquidatable, and the position a keeper would close."""

    account: bytes
    market: int


class _Nonces:
    """Next nonce per sender for one block: read from the parent state, counted up locally."""

    def __init__(self, store: Store, root: bytes):
        self._store = store
        self._root = root
        self._next: dict[bytes, int] = {}

    def take(self, address: bytes) -> int:
        if address not in self._next:
            self._next[address] = get_nonce(self._store, self._root, address)
        nonce = self._next[address]
        self._next[address] = nonce + 1
        return nonce


class World:
    """The actors of one run around one chain: they propose transactions and watch blocks.

    The runner calls, for every block: `transactions_for(parent_height, parent_root)` to get
    the candidates, then `observe(block, result)` once the block is committed. After a
    rollback: `rewind(height)` and `set_fork(fork_id)`.
    """

    def __init__(self, market: MarketWorld, store: Store, genesis: Genesis):
        self.market = market
        self.store = store
        self.genesis = genesis
        self.fork_id = 0
        self.price_offset = 0
        self.price_path = PricePath(market.scenario, market.seed)
        self.index = index_from_events(0, decode_events(market.addresses, genesis.receipts))
        self._snapshots: dict[int, ExchangeIndex] = {0: self.index.copy()}

    # -- what the runner calls ------------------------------------------------------
    def transactions_for(
        self, parent_height: int, parent_root: bytes, *, price_overrides: Mapping[int, int] | None = None
    ) -> list[SignedTransactionAPI]:
        """Signed candidates for the block at `parent_height + 1`, in the order to run them.

        The price post comes first, then the keepers' liquidations, the profit-takers' and
        the traders' transactions. Pure: the same call gives the same transactions.
        """
        assert self.index.height == parent_height, (
            f"the world last observed height {self.index.height}, asked for a child of {parent_height}"
        )
        height = parent_height + 1
        nonces = _Nonces(self.store, parent_root)
        reporter = self.market.reporter
        txs = [self.price_transaction(height, nonces.take(reporter.address), price_overrides)]
        funding = self.posted_funding(height)
        if funding is not None:
            call = post_funding_call(self.market.addresses, funding)
            txs.append(sign_call(reporter.key, call, nonce=nonces.take(reporter.address), fork_id=self.fork_id))
        candidates = self.liquidation_candidates()
        for keeper in self.market.keepers:
            txs += self._keeper_transactions(keeper, height, candidates, nonces)
        for actor in self.market.profit_takers:
            txs += self._profit_taker_transactions(actor, height, parent_root, nonces)
        for actor in self.market.aggressors:
            txs += self._aggressor_transactions(actor, nonces)
        activation = derive_rng(self.market.seed, "traders", self.fork_id, height)
        probability = self.market.scenario.workload.trade_probability
        for actor in self.market.traders:
            if activation.random() < probability:
                rng = derive_rng(self.market.seed, "trader", actor.index, self.fork_id, height)
                txs += self._trader_transactions(actor, rng, parent_root, nonces)
        return txs

    def observe(self, block: Block, result: ExecutionResult) -> tuple[ExchangeEvent, ...]:
        """Learn from a committed block; returns its exchange events in log order."""
        assert block.height == self.index.height + 1, (
            f"block {block.height} does not follow observed height {self.index.height}"
        )
        events = decode_events(self.market.addresses, result.receipts)
        # The block's number first: fills move the flow as of this block.
        self.index.height = block.height
        for event in events:
            apply_event(self.index, event)
        self._snapshots[block.height] = self.index.copy()
        return events

    def rewind(self, height: int) -> None:
        """Forget every block above `height`: the actors know what they knew after it."""
        assert height in self._snapshots, f"no snapshot of height {height}"
        self.index = self._snapshots[height].copy()
        for stale in [h for h in self._snapshots if h > height]:
            del self._snapshots[stale]

    def set_fork(self, fork_id: int) -> None:
        """Sign every later transaction for `fork_id` (after an emergency upgrade)."""
        self.fork_id = fork_id

    def resync_accounts(self, root: bytes, addresses: Iterable[bytes]) -> None:
        """Re-read `addresses`' collateral and positions, and the prices, from the state at `root`.

        For a selective restore, whose state matches no snapshot: only the restored
        accounts changed, so only they are read (four view calls each).
        """
        market = self.market
        for m in market.markets:
            self.index.prices[m] = get_price(self.store, root, market.addresses, m)
            self.index.funding[m] = get_funding_index(self.store, root, market.addresses, m)
        for address in sorted(set(addresses)):
            self.index.collateral[address] = get_collateral(self.store, root, market.addresses, address)
            for m in market.markets:
                position = get_position(self.store, root, market.addresses, address, m)
                _set_position(self.index, address, m, position.size, position.entry_price)
                if position.size != 0:
                    self.index.funding_cached[(address, m)] = get_funding_cached(
                        self.store, root, market.addresses, address, m)
        self._snapshots[self.index.height] = self.index.copy()

    # -- prices ---------------------------------------------------------------------
    def reference_prices(self, height: int, offset: int | None = None) -> dict[int, int]:
        """The true price of every market at `height` (what the world outside trades at).

        Heights stand still during a halt but markets do not: after a restart the path runs
        `price_offset` steps ahead (the blocks the halt and the discarded window would have
        held), unless another `offset` is given.
        """
        return self.price_path.at(height + (self.price_offset if offset is None else offset))

    def set_price_offset(self, offset: int) -> None:
        """Make the reference price path run `offset` steps ahead of the height (after a halt)."""
        assert offset >= 0
        self.price_offset = offset

    def posted_prices(self, height: int) -> dict[int, int]:
        """What the price API posts at `height`: the true prices, or the glitch's bad price.

        The glitch belongs to the first fork: the migration is fixed during the halt, so a
        restarted chain passing the same heights again posts true prices.
        """
        prices = self.reference_prices(height)
        glitch = self.market.glitch
        if glitch is not None and self.fork_id == 0 and glitch.is_active(height):
            for market in glitch.price_markets:
                prices[market] = glitch.bad_price
        return prices

    def posted_funding(self, height: int) -> dict[int, int] | None:
        """The funding indices the price API posts at `height`, if it posts any.

        Funding indices do not move in this model (no funding rate): the API posts them only
        when the glitch resets them (0 for each glitched market, each glitch block) and once
        more at the glitch's end height, when the migration's bad write is overwritten by the
        true indices. Like the bad price, it belongs to the first fork.
        """
        glitch = self.market.glitch
        if glitch is None or not glitch.funding_markets or self.fork_id != 0:
            return None
        if glitch.is_active(height):
            indices = {market: 0 for market in glitch.funding_markets}
        elif height == glitch.end_height:
            true = initial_funding_indices(self.market.scenario)
            indices = {market: true[market] for market in glitch.funding_markets}
        else:
            return None
        return indices

    def price_transaction(
        self, height: int, nonce: int, price_overrides: Mapping[int, int] | None = None
    ) -> SignedTransactionAPI:
        """The reporter's price post for the block at `height`; `price_overrides` replace markets.

        For a counterfactual replay, pass `reference_prices(height)` as the overrides.
        """
        prices = self.posted_prices(height)
        prices.update(price_overrides or {})
        call = post_prices_call(self.market.addresses, prices)
        return sign_call(self.market.reporter.key, call, nonce=nonce, fork_id=self.fork_id)

    def is_price_transaction(self, tx: SignedTransactionAPI) -> bool:
        """True for the price API's posts (the transactions a counterfactual replay replaces)."""
        return tx.sender == self.market.reporter.address

    # -- keepers --------------------------------------------------------------------
    def liquidation_candidates(self) -> tuple[LiquidationCandidate, ...]:
        """Accounts liquidatable at the index's prices, each with its worst position, by address."""
        params = self.market.params
        found = []
        for account in sorted(self.index.positions):
            health = compute_health(self.index, params, account, self.index.height + 1)
            if health.is_liquidatable:
                worst = min(
                    self.index.positions[account],
                    key=lambda p: (p[1] * (self.index.prices.get(p[0], 0) - p[2]), p[0]),
                )
                found.append(LiquidationCandidate(account, worst[0]))
        return tuple(found)

    def _keeper_transactions(
        self,
        keeper: Actor,
        height: int,
        candidates: Sequence[LiquidationCandidate],
        nonces: _Nonces,
    ) -> list[SignedTransactionAPI]:
        # Keepers race: each picks its own random subset, so some pick the same account and
        # all but the first revert, as on a real chain.
        targets = [c for c in candidates if c.account != keeper.address]
        bound = self.market.scenario.workload.max_liquidations_per_keeper
        if not targets or bound == 0:
            return []
        rng = derive_rng(self.market.seed, "keeper", keeper.index, self.fork_id, height)
        chosen = rng.sample(targets, min(bound, len(targets)))
        return [
            self._sign(keeper, liquidate_call(self.market.addresses, c.account, c.market), nonces)
            for c in chosen
        ]

    # -- profit-takers --------------------------------------------------------------
    def _profit_taker_transactions(
        self, actor: Actor, height: int, parent_root: bytes, nonces: _Nonces
    ) -> list[SignedTransactionAPI]:
        """Take everything out when the oracle is off the world's price; otherwise trade."""
        reference = self.reference_prices(height - 1)
        if any(
            abs(self.index.prices.get(m, 0) - reference[m]) * BPS >= DEVIATION_ALERT_BPS * reference[m]
            for m in reference
        ):
            free = compute_free_collateral(self.index, self.market.params, actor.address)
            return self._withdraw_to_l1(actor, free, nonces)
        rng = derive_rng(self.market.seed, "profit-taker", actor.index, self.fork_id, height)
        workload = self.market.scenario.workload
        if rng.random() < workload.trade_probability:
            return self._trader_transactions(actor, rng, parent_root, nonces)
        if rng.random() < workload.withdraw_probability:
            profit = self.index.collateral.get(actor.address, 0) - self.market.openings[actor.address].deposit_wei
            free = compute_free_collateral(self.index, self.market.params, actor.address)
            return self._withdraw_to_l1(actor, min(profit, free), nonces)
        return []

    # -- traders --------------------------------------------------------------------
    def _trader_transactions(
        self, actor: Actor, rng, parent_root: bytes, nonces: _Nonces
    ) -> list[SignedTransactionAPI]:
        index, params, scenario = self.index, self.market.params, self.market.scenario
        health = compute_health(index, params, actor.address)
        if health.is_liquidatable:
            return []  # only a keeper can act on it now; the contract refuses its trades
        workload = scenario.workload
        if rng.random() < workload.withdraw_probability:
            free = compute_free_collateral(index, params, actor.address)
            return self._withdraw_to_l1(actor, int(free * (0.3 + 0.6 * rng.random())), nonces)
        opening = self.market.openings[actor.address]
        if health.equity < opening.deposit_wei // 2 and rng.random() < 0.5:
            wallet = get_balance(self.store, parent_root, actor.address)
            if wallet >= opening.deposit_wei:
                return [self._sign(actor, deposit_call(self.market.addresses, opening.deposit_wei), nonces)]
        positions = index.positions.get(actor.address, ())
        choice = rng.random()
        if positions and choice < 0.4:
            market = rng.choice(positions)[0]
            return [self._sign(actor, close_call(self.market.addresses, market), nonces)]
        if positions and choice < 0.6:
            market, size, _ = rng.choice(positions)
            if abs(size) < 2:
                return []
            return [self._sign(actor, trade_call(self.market.addresses, market, -size // 2), nonces)]
        return self._open(actor, rng, health, nonces)

    def _open(self, actor: Actor, rng, health: Health, nonces: _Nonces) -> list[SignedTransactionAPI]:
        """Open or add to a position, within what the margin rules allow at index prices."""
        params, scenario = self.market.params, self.market.scenario
        market = draw_market(rng, scenario)
        price = self.index.prices.get(market, 0)
        if price == 0 or health.equity <= 0:
            return []
        cap = compute_leverage_cap(params)
        # The notional the account could still add: leverage cap and initial margin both bind.
        room = min(
            cap * health.equity - health.notional,
            (health.equity - health.initial) * BPS / (params.initial_margin_bps + params.trading_fee_bps),
        )
        wanted = draw_leverage(rng, scenario, params) * health.equity * 0.5
        notional = int(min(wanted, room * TRADE_HEADROOM))
        size = compute_size(notional, price)
        if size <= 0:
            return []
        side = 1 if rng.random() < scenario.workload.long_share else -1
        return [self._sign(actor, trade_call(self.market.addresses, market, side * size), nonces)]

    # -- aggressors -----------------------------------------------------------------
    def thinnest_market(self) -> int | None:
        """The market with the least (finite) depth, lowest id on a tie; None if all are deep."""
        thin = [(depth, market) for market, depth in sorted(self.index.depth.items()) if depth > 0]
        return min(thin)[1] if thin else None

    def _aggressor_transactions(self, actor: Actor, nonces: _Nonces) -> list[SignedTransactionAPI]:
        """During post-only after a restart, sell (or buy) `aggressor_notional_usd` into the
        thinnest market against the crowd's side, every block; close once trading opens."""
        market = self.thinnest_market()
        if market is None or self.fork_id == 0:
            return []
        positions = dict((m, size) for m, size, _ in self.index.positions.get(actor.address, ()))
        if self.index.mode == TRADING_MODES["open"]:
            if market in positions:
                return [self._sign(actor, close_call(self.market.addresses, market), nonces)]
            return []
        if self.index.mode != TRADING_MODES["post-only"]:
            return []
        crowd = sum(size for account, held in sorted(self.index.positions.items()) if account != actor.address
                    for m, size, _ in held if m == market)
        side = -1 if crowd >= 0 else 1  # push the mark against the side that holds the most
        size = compute_size(usd_to_wei(self.market.scenario.workload.aggressor_notional_usd),
                            self.index.prices.get(market, 0))
        if size <= 0:
            return []
        return [self._sign(actor, trade_call(self.market.addresses, market, side * size), nonces)]

    # -- shared ---------------------------------------------------------------------
    def _withdraw_to_l1(self, actor: Actor, amount: int, nonces: _Nonces) -> list[SignedTransactionAPI]:
        """Withdraw `amount` of collateral and send it to L1 through the bridge (two transactions)."""
        if amount < MIN_WITHDRAWAL_WEI:
            return []
        addresses = self.market.addresses
        return [
            self._sign(actor, withdraw_call(addresses, amount), nonces),
            self._sign(actor, bridge_withdraw_call(addresses, amount), nonces),
        ]

    def _sign(self, actor: Actor, call, nonces: _Nonces) -> SignedTransactionAPI:
        return sign_call(actor.key, call, nonce=nonces.take(actor.address), fork_id=self.fork_id)


def build_world(
    scenario: Scenario, store: Store, seed: int | None = None, *, glitch: bool = True
) -> World:
    """Build genesis for `scenario` in `store` and the world of actors around it.

    `world.genesis.header` is header #0. With `glitch=False` the price API never posts
    the bad price (the run the incident is compared with). Runs that share a genesis
    (same scenario and seed, whatever the faults) build it once per process.
    """
    market = build_market_world(scenario, seed, glitch=glitch)
    try:
        genesis = build_genesis_once(store, market.genesis_spec)
    except SetupRevertedError as error:
        # The draws are constrained so that no setup transaction can fail: this is a bug.
        raise RunFailed(f"genesis setup transaction #{error.index}: {market.setup_descriptions[error.index]}: "
                        f"{error.reason}", seed=market.seed) from None
    assert genesis.contracts == {
        "oracle": market.addresses.oracle,
        "perps": market.addresses.perps,
        "bridge": market.addresses.bridge,
    }, "genesis deployed the contracts somewhere else than predicted"
    return World(market, store, genesis)
