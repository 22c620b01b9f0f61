"""The exchange world built from a scenario and a seed: accounts, genesis, true prices, the glitch.

Everything here is a deterministic function of (scenario, seed), the same on any machine:
randomness comes from `random.Random` seeded by `derive_seed` (sha256 of labels, never
`hash()`), and the only float operations are + - * / (correctly rounded by IEEE 754);
exponentials use `compute_exp`, a series written with those alone, not the platform's libm.

Genesis (height 0) holds, as real transactions executed by py-evm after the contracts are
deployed: the reporter's first prices, the owner funding the vault and the bridge reserve,
then for every trader and profit-taker a deposit and one opening trade. Keepers and the
remaining accounts ("holders") only have a balance.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from chain.exchange import (
    BPS,
    MARKET_IDS,
    SIZE_UNIT,
    USD,
    ExchangeAddresses,
    PerpsParams,
    deposit_call,
    exchange_deployments,
    fund_reserve_call,
    fund_vault_call,
    post_funding_call,
    post_prices_call,
    set_flow_half_life_call,
    set_market_depth_call,
    sign_call,
    trade_call,
)
from chain.genesis import FundedAccount, GenesisSpec, deployer_key_for
from chain.transactions import address_of, derive_private_key
from scenarios.seeds import derive_rng
from scenarios.schema import DEFAULT_INITIAL_PRICES_USD, MARKETS, Scenario, compute_margins_bps

_LN2 = 0.6931471805599453
WALLET_MULTIPLE = 2  # a trader's balance beside the deposit, as a multiple of it
HOLDER_BALANCE_USD = 1_000


# ---------------------------------------------------------------- deterministic randomness
# (seeds come from scenarios.seeds)


def draw_standard_normal(rng: random.Random) -> float:
    """An approximately standard normal draw (Irwin-Hall, 12 uniforms): no libm involved.
    Written out, not `sum()` over a generator: the same additions in the same order (so the
    same bits), at half the cost; the price path draws ~90,000 of them in every run."""
    r = rng.random
    return r() + r() + r() + r() + r() + r() + r() + r() + r() + r() + r() + r() - 6.0


def compute_exp(x: float) -> float:
    """e**x with + - * / only (so bit-identical across platforms), to ~1e-15 relative."""
    k = int(x / _LN2)
    r = x - k * _LN2
    term, total = 1.0, 1.0
    for n in range(1, 25):
        term = term * r / n
        total += term
    return math.ldexp(total, k)


def usd_to_wei(usd: float) -> int:
    """USD (a TOML float) to wei or oracle units (both 1e18 per USD), via its shortest repr."""
    return int(Decimal(repr(usd)) * USD)


# ---------------------------------------------------------------- the world's fixed parts


@dataclass(frozen=True)
class Actor:
    """An account that acts: its role, index within the role, key and address."""

    role: str
    index: int
    key: bytes
    address: bytes


@dataclass(frozen=True)
class OpeningPosition:
    """A trader's collateral and first position, opened at genesis."""

    deposit_wei: int
    market: int
    size: int


@dataclass(frozen=True)
class Glitch:
    """In heights [start_height, end_height) the price API posts `bad_price` for each of
    `price_markets` and a funding index of 0 for each of `funding_markets` (either may be empty)."""

    price_markets: tuple[int, ...]
    funding_markets: tuple[int, ...]
    start_height: int
    end_height: int
    bad_price: int

    def is_active(self, height: int) -> bool:
        """True if the block at `height` carries the bad price."""
        return self.start_height <= height < self.end_height


@dataclass(frozen=True)
class MarketWorld:
    """What is fixed about a run's exchange world: accounts, contracts, genesis, parameters."""

    seed: int
    scenario: Scenario
    addresses: ExchangeAddresses
    params: PerpsParams
    owner_key: bytes
    reporter: Actor
    relayer: Actor
    traders: tuple[Actor, ...]
    keepers: tuple[Actor, ...]
    profit_takers: tuple[Actor, ...]
    holders: tuple[bytes, ...]
    openings: dict[bytes, OpeningPosition]
    genesis_spec: GenesisSpec
    glitch: Glitch | None
    aggressors: tuple[Actor, ...] = ()
    setup_descriptions: tuple[str, ...] = ()  # one per genesis setup transaction, in order

    @property
    def markets(self) -> tuple[int, ...]:
        """Market ids listed on the exchange."""
        return tuple(range(self.params.num_markets))

    @property
    def owner(self) -> bytes:
        """The contracts' owner (the genesis deployer)."""
        return address_of(self.owner_key)

    @property
    def all_addresses(self) -> tuple[bytes, ...]:
        """Every account holding value at genesis, contracts included, in a fixed order."""
        actors = (self.reporter, self.relayer, *self.traders, *self.keepers, *self.profit_takers, *self.aggressors)
        return (
            self.owner,
            *(a.address for a in actors),
            *self.holders,
            self.addresses.oracle,
            self.addresses.perps,
            self.addresses.bridge,
        )


def compute_perps_params(scenario: Scenario) -> PerpsParams:
    """The perps constructor arguments a scenario asks for."""
    initial, maintenance = compute_margins_bps(scenario)
    exchange = scenario.exchange
    return PerpsParams(
        num_markets=len(MARKETS),
        initial_margin_bps=initial,
        maintenance_margin_bps=maintenance,
        max_leverage=math.ceil(scenario.workload.leverage_max),
        trading_fee_bps=exchange.trading_fee_bps,
        liquidation_fee_bps=exchange.liquidation_fee_bps,
        liquidation_penalty_bps=exchange.liquidation_penalty_bps,
    )


def compute_leverage_cap(params: PerpsParams) -> float:
    """The highest leverage a new position may take, with a 5 % safety margin for rounding.

    A position of notional N = L * E on equity E pays the fee f * N and must then keep
    E - f * N >= m * N (initial margin m) and N <= M * (E - f * N) (leverage cap M), so
    L <= 1 / (m + f) and L <= M / (1 + M * f); both bind for some accepted inputs.
    """
    fee = params.trading_fee_bps / BPS
    by_margin = 1.0 / (params.initial_margin_bps / BPS + fee)
    by_cap = params.max_leverage / (1.0 + params.max_leverage * fee)
    return 0.95 * min(by_margin, by_cap)


def draw_leverage(rng: random.Random, scenario: Scenario, params: PerpsParams) -> float:
    """Leverage in [leverage_min, leverage_max], skewed low (u**2): most traders are moderate;
    never above `compute_leverage_cap`, so every position drawn passes the contract's margin tests."""
    low = scenario.workload.leverage_min
    high = scenario.workload.leverage_max
    u = rng.random()
    return min(low + (high - low) * u * u, compute_leverage_cap(params))


def draw_deposit_wei(rng: random.Random, scenario: Scenario) -> int:
    """Log-normal collateral around `deposit_median_usd`, capped at 100 times the median."""
    workload = scenario.workload
    factor = min(compute_exp(workload.deposit_spread * draw_standard_normal(rng)), 100.0)
    return max(USD, int(usd_to_wei(workload.deposit_median_usd) * factor) // USD * USD)


def draw_market(rng: random.Random, scenario: Scenario) -> int:
    """A market id drawn by `workload.market_weights`."""
    weights = [scenario.workload.market_weights.get(name, 0.0) for name in MARKETS]
    u = rng.random() * sum(weights)
    for market, weight in enumerate(weights):
        if u < weight:
            return market
        u -= weight
    return max(m for m, w in enumerate(weights) if w > 0)


def compute_size(notional_wei: int, price: int) -> int:
    """Size in base units * 1e18 whose notional at `price` is `notional_wei` (rounded down)."""
    return notional_wei * SIZE_UNIT // price if price > 0 else 0


def draw_opening(
    rng: random.Random, scenario: Scenario, params: PerpsParams, prices: dict[int, int], long_share: float
) -> OpeningPosition:
    """A trader's deposit and first position at genesis prices."""
    deposit = draw_deposit_wei(rng, scenario)
    market = draw_market(rng, scenario)
    leverage = draw_leverage(rng, scenario, params)
    side = 1 if rng.random() < long_share else -1
    size = compute_size(int(deposit * leverage), prices[market])
    return OpeningPosition(deposit, market, side * max(size, 1))


def compute_opening_refusal(opening: OpeningPosition, price: int, params: PerpsParams) -> str | None:
    """Why the perps contract would refuse `opening` at genesis (its revert message), or None.

    The contract's own tests of a deposit and a first trade, in its integer arithmetic, in
    the genesis state the draws are made for: the mark is the index price (depths are set
    only after the openings) and no funding has accrued (positions cache the index posted
    before them), so the fill is at `price` and the trade realises nothing.
    """
    if opening.deposit_wei <= 0:
        return "perps: zero deposit"
    if price <= 0:
        return "perps: no price"
    if opening.size == 0:
        return "perps: zero size"
    scaled = abs(opening.size) * price
    fee = -(-scaled * params.trading_fee_bps // (SIZE_UNIT * BPS))
    if fee > opening.deposit_wei:
        return "perps: cannot pay fee"
    equity = opening.deposit_wei - fee
    if equity < -(-scaled * params.initial_margin_bps // (SIZE_UNIT * BPS)):
        return "perps: below initial margin"
    if scaled // SIZE_UNIT > equity * params.max_leverage:
        return "perps: leverage cap"
    return None


def describe_opening(actor: "Actor", opening: OpeningPosition, price: int) -> str:
    """`trader 412 opens a 3.2 BTC long at 18.8x with $180 collateral`: a genesis opening in words."""
    base = MARKETS[opening.market].split("-")[0]
    amount = Decimal(abs(opening.size)) / SIZE_UNIT
    leverage = abs(opening.size) * price / SIZE_UNIT / opening.deposit_wei if opening.deposit_wei else float("inf")
    side = "long" if opening.size > 0 else "short"
    return (f"{actor.role} {actor.index} opens a {amount:.4g} {base} {side} at {leverage:.1f}x "
            f"with ${opening.deposit_wei / USD:,.2f} collateral")


def _actors(seed: int, role: str, count: int) -> tuple[Actor, ...]:
    actors = []
    for index in range(count):
        key = derive_private_key(seed, role, index)
        actors.append(Actor(role, index, key, address_of(key)))
    return tuple(actors)


def compute_glitch(scenario: Scenario) -> Glitch:
    """The scenario's glitch in chain units: which markets get a bad price, which a reset index."""
    incident = scenario.incident
    price_markets: tuple[int, ...] = ()
    if incident.kind in ("price", "both"):
        price_markets = tuple(sorted({MARKET_IDS[incident.market], *(MARKET_IDS[m] for m in incident.markets)}))
    funding_markets: tuple[int, ...] = ()
    if incident.kind in ("funding-reset", "both"):
        names = incident.funding_markets or MARKETS
        funding_markets = tuple(sorted({MARKET_IDS[m] for m in names}))
    return Glitch(
        price_markets=price_markets,
        funding_markets=funding_markets,
        start_height=incident.start_height,
        end_height=incident.start_height + incident.duration_blocks,
        bad_price=usd_to_wei(incident.bad_price),  # 1 USD of price is 1e18, as 1 USD of collateral
    )


def build_market_world(scenario: Scenario, seed: int | None = None, *, glitch: bool = True) -> MarketWorld:
    """The exchange world of `scenario` under `seed` (the scenario's own seed by default).

    With `glitch=False` the price API never posts the bad price: the counterfactual run.
    """
    seed = scenario.seed if seed is None else seed
    workload = scenario.workload
    params = compute_perps_params(scenario)
    owner_key = deployer_key_for(seed)
    (reporter,) = _actors(seed, "reporter", 1)
    (relayer,) = _actors(seed, "relayer", 1)
    traders = _actors(seed, "trader", workload.traders)
    keepers = _actors(seed, "keeper", workload.keepers)
    profit_takers = _actors(seed, "profit-taker", workload.profit_takers)
    aggressors = _actors(seed, "aggressor", workload.aggressors)
    holder_count = (scenario.chain.accounts - workload.traders - workload.keepers - workload.profit_takers
                    - workload.aggressors)
    holders = tuple(a.address for a in _actors(seed, "holder", holder_count))

    deployments, addresses = exchange_deployments(
        seed,
        reporter=reporter.address,
        relayer=relayer.address,
        finality_blocks=scenario.chain.finality_blocks,
        params=params,
    )
    prices = initial_prices(scenario)
    openings: dict[bytes, OpeningPosition] = {}
    for actor in traders:
        rng = derive_rng(seed, "trader", actor.index, "opening")
        openings[actor.address] = draw_opening(rng, scenario, params, prices, workload.long_share)
    for actor in profit_takers:
        # Profit-takers are contrarian: they lean the other way from the crowd.
        rng = derive_rng(seed, "profit-taker", actor.index, "opening")
        openings[actor.address] = draw_opening(rng, scenario, params, prices, 1.0 - workload.long_share)

    accounts = [FundedAccount(reporter.address, 0), FundedAccount(relayer.address, 0)]
    setup: list = []
    described: list[str] = []  # what each setup transaction does, to name one that fails

    def add(key: bytes, call, nonce: int, what: str) -> None:
        setup.append(sign_call(key, call, nonce=nonce, fork_id=0))
        described.append(what)

    add(reporter.key, post_prices_call(addresses, prices), 0, "the reporter posts the genesis prices")
    funding = initial_funding_indices(scenario)
    if any(funding.values()):
        # Before any position opens, so each caches the index it will be reset from.
        add(reporter.key, post_funding_call(addresses, funding), 1, "the reporter posts the genesis funding indices")
    owner_nonce = len(deployments)
    vault, reserve = usd_to_wei(scenario.exchange.vault_usd), usd_to_wei(scenario.exchange.bridge_reserve_usd)
    owner_calls = [
        (call, what) for call, what in (
            (fund_vault_call(addresses, vault), f"the owner funds the vault with ${vault / USD:,.2f}"),
            (fund_reserve_call(addresses, reserve), f"the owner funds the bridge reserve with ${reserve / USD:,.2f}"),
        ) if call.value > 0
    ]
    for actor in (*traders, *profit_takers):
        opening = openings[actor.address]
        accounts.append(FundedAccount(actor.address, opening.deposit_wei * (1 + WALLET_MULTIPLE)))
        add(actor.key, deposit_call(addresses, opening.deposit_wei), 0,
            f"{actor.role} {actor.index} deposits ${opening.deposit_wei / USD:,.2f}")
        add(actor.key, trade_call(addresses, opening.market, opening.size), 1,
            describe_opening(actor, opening, prices[opening.market]))
    # Depth comes after the openings: every opening fills at the index price, as its draw
    # assumed, instead of at a mark pushed by the openings before it in the same block.
    depths = initial_depths(scenario)
    if any(depths.values()):
        owner_calls.append((set_flow_half_life_call(addresses, scenario.exchange.flow_half_life_blocks),
                            f"the owner sets the flow half-life to {scenario.exchange.flow_half_life_blocks} blocks"))
        owner_calls += [(set_market_depth_call(addresses, m, depths[m]),
                         f"the owner sets {MARKETS[m]}'s depth to ${depths[m] / USD:,.2f} per 1 %")
                        for m in sorted(depths) if depths[m]]
    for call, what in owner_calls:
        add(owner_key, call, owner_nonce, what)
        owner_nonce += 1
    for actor in aggressors:
        # Collateral for the first trade at 2x; later ones add exposure up to the leverage cap.
        deposit = usd_to_wei(workload.aggressor_notional_usd) // 2
        accounts.append(FundedAccount(actor.address, deposit * (1 + WALLET_MULTIPLE)))
        add(actor.key, deposit_call(addresses, deposit), 0, f"{actor.role} {actor.index} deposits ${deposit / USD:,.2f}")
    accounts += [FundedAccount(actor.address, HOLDER_BALANCE_USD * USD) for actor in keepers]
    accounts += [FundedAccount(address, HOLDER_BALANCE_USD * USD) for address in holders]
    # The deployer funds the vault and the reserve: its balance covers any the schema accepts.
    spec = GenesisSpec(seed=seed, accounts=tuple(accounts), deployments=deployments, setup=tuple(setup),
                       deployer_balance=max(GenesisSpec.deployer_balance, vault + reserve + USD))
    return MarketWorld(
        seed=seed,
        scenario=scenario,
        addresses=addresses,
        params=params,
        owner_key=owner_key,
        reporter=reporter,
        relayer=relayer,
        traders=traders,
        keepers=keepers,
        profit_takers=profit_takers,
        holders=holders,
        openings=openings,
        genesis_spec=spec,
        glitch=compute_glitch(scenario) if glitch else None,
        aggressors=aggressors,
        setup_descriptions=tuple(described),
    )


# ---------------------------------------------------------------- prices


def initial_prices(scenario: Scenario) -> dict[int, int]:
    """{market id: price} at genesis, in oracle units."""
    return {
        MARKET_IDS[name]: usd_to_wei(scenario.prices.initial_usd.get(name, DEFAULT_INITIAL_PRICES_USD[name]))
        for name in MARKETS
    }


def initial_depths(scenario: Scenario) -> dict[int, int]:
    """{market id: depth in wei of notional per 1 % move}; 0 (infinitely deep) where not given."""
    given = scenario.exchange.depth_usd
    return {MARKET_IDS[name]: usd_to_wei(given.get(name, 0.0)) for name in MARKETS}


def initial_funding_indices(scenario: Scenario) -> dict[int, int]:
    """{market id: funding index} at genesis (price units, signed; 0 where not given)."""
    given = scenario.exchange.funding_index_usd
    return {MARKET_IDS[name]: usd_to_wei(given.get(name, 0.0)) for name in MARKETS}


class PricePath:
    """The true price of every market at every height: a seeded multiplicative random walk.

    A step is `price * (1 + volatility * z)` in integers (z approximately standard normal),
    so the path is identical on every machine. Heights are computed once, on demand.
    """

    def __init__(self, scenario: Scenario, seed: int):
        self._volatility_ppb = int(scenario.prices.volatility_bps * 100_000)  # bps -> parts per 1e9
        self._rngs = {market: derive_rng(seed, "prices", market) for market in MARKET_IDS.values()}
        self._path: list[dict[int, int]] = [initial_prices(scenario)]

    def at(self, height: int) -> dict[int, int]:
        """{market: true price} for the block at `height` (height 0: genesis prices)."""
        assert height >= 0
        missing = height + 1 - len(self._path)
        if missing > 0:  # market by market (each has its own generator), then height by height
            last, volatility_ppb = self._path[-1], self._volatility_ppb
            columns = []
            for market, price in last.items():
                r, column = self._rngs[market].random, []
                for _ in range(missing):  # draw_standard_normal, written out: ~90,000 draws a run
                    move_ppb = int(volatility_ppb * (r() + r() + r() + r() + r() + r() + r() + r() + r() + r() + r()
                                                     + r() - 6.0))
                    price = max(1, price * (10**9 + move_ppb) // 10**9)
                    column.append(price)
                columns.append(column)
            markets = tuple(last)
            self._path.extend(dict(zip(markets, prices)) for prices in zip(*columns))
        return dict(self._path[height])
