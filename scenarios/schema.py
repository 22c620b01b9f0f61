"""The scenario file as pydantic models: every key, its type, its default and its bounds.

A file that gives only `name` is a small runnable scenario: four honest validators,
a hundred accounts, BTC posted at 0 for five blocks at height 40, a ten-minute halt
and a full rollback. Every other key overrides one of these defaults.

Values are frozen. Scalars are strict (TOML `"4"` is not the integer 4, `true` is not
1); arrays become tuples. Errors found across fields carry, in their context, the
path of the offending value below the model that raised them (`path`) and a reason
without that path (`reason`), so the loader can name the exact key and line.
"""

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from scenarios.errors import format_value

Behaviour = Literal["crash", "equivocate", "withhold", "amnesia", "wrong-root", "duplicate-votes", "forge-views",
                    "lie-target"]
Market = Literal["BTC-USD", "ETH-USD", "SOL-USD", "PAXG-USD"]
ResponseMode = Literal["full-rollback", "selective-restore", "rollback-replay"]
WithdrawalPolicy = Literal["debit-account", "charge-vault"]
GlitchKind = Literal["price", "funding-reset", "both"]
CompensationPolicy = Literal["halt-drift", "reopening-harm"]
Topology = Literal["complete", "random-regular", "geo"]

BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
MARKETS: tuple[str, ...] = get_args(Market)
RESPONSE_MODES: tuple[str, ...] = get_args(ResponseMode)
WITHDRAWAL_POLICIES: tuple[str, ...] = get_args(WithdrawalPolicy)
GLITCH_KINDS: tuple[str, ...] = get_args(GlitchKind)
TOPOLOGIES: tuple[str, ...] = get_args(Topology)

DEFAULT_INITIAL_PRICES_USD = {"BTC-USD": 95_000.0, "ETH-USD": 3_300.0, "SOL-USD": 190.0, "PAXG-USD": 4_600.0}
# A height costs about 2 x count^2 message deliveries (every validator receives every vote,
# tens of microseconds each in Python) besides its block's execution (once per distinct
# block); state is one content-addressed store for every validator. What each validator
# costs, as benchmarks/validators_bench.py measured it, is in the description of `count`.
MAX_VALIDATORS = 512
# The simulated network's shapes (consensus.sim.SimConfig's defaults, which the runner keeps):
# a random regular graph links each validator to this many others; geo has this many clusters.
RANDOM_REGULAR_DEGREE = 3
GEO_CLUSTERS = 3
MAX_ACCOUNTS = 1_000_000
MAX_HEIGHTS = 1_000_000
MAX_SEED = 2**64 - 1
# Bounds a run can honour. The clock ticks in microseconds: a block needs at least a
# millisecond of them, and no moment lies past a million hours (3.6e9 s, exact in a
# float's microseconds; a crash at 1e308 s overflowed the clock).
MIN_BLOCK_TIME_S = 0.001
MAX_BLOCK_TIME_S = 30.0
MAX_VIRTUAL_S = MAX_HEIGHTS * 3600.0
# The runner gives the chain 60 virtual seconds a height (scenarios.runner's chain phase):
# a height's block time and its three message delays (proposal, prevote, precommit) at the
# slowest link must fit, or the run stops short and every recovery check fails. Measured:
# 600 s links or hour-long blocks failed them all; 5 s + 5 s of jitter, or 30 s blocks, ran.
MAX_LINK_DELAY_MS = 5_000.0
HEIGHT_ALLOWANCE_S = 45.0
# Prices are 1e18-scaled integers in the contracts: a millionth of a dollar keeps twelve
# digits, and a trillion keeps every product of a price and a size far inside uint256
# (a bad price of 1e60 overflowed the oracle's ABI encoding).
MIN_PRICE_USD = 1e-6
MAX_PRICE_USD = 1e12

FieldPath = tuple[str | int, ...]


def _invalid(kind: str, path: FieldPath, value: Any, reason: str) -> PydanticCustomError:
    """The error a validator raises for `value` at `path` (relative to its model).

    `kind` picks the typed `ScenarioError` the loader turns it into: `out_of_range`
    or `inconsistent`. The rendered message starts with the dotted path so that
    pydantic's own report is readable too.
    """
    return PydanticCustomError(
        kind,
        "{message}",
        {
            "message": f"{format_path(path)}: {reason}",
            "reason": reason,
            "path": path,
            "value": value,
        },
    )


def format_path(path: FieldPath) -> str:
    """`("validators", "byzantine", 0, "index")` -> `validators.byzantine[0].index`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _check_probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise PydanticCustomError(
            "out_of_range",
            "{reason}",
            {"reason": f"{format_value(p)} is not a probability in [0, 1]"},
        )
    return p


def _check_rate(p: float) -> float:
    # A link that loses (or duplicates) every message is no network: the simulated links
    # take rates in [0, 1), and with 1.0 no message would ever arrive.
    if not 0.0 <= p < 1.0:
        raise PydanticCustomError(
            "out_of_range",
            "{reason}",
            {"reason": f"{format_value(p)} is not a rate in [0, 1) (at 1 every message would be hit)"},
        )
    return p


Probability = Annotated[float, AfterValidator(_check_probability)]
LinkRate = Annotated[float, AfterValidator(_check_rate)]
ValidatorIndex = Annotated[int, Field(ge=0, lt=MAX_VALIDATORS)]
NonNegativeSeconds = Annotated[float, Field(ge=0.0, le=MAX_VIRTUAL_S)]
_LAX_ARRAY = Field(strict=False)  # TOML arrays are lists; a tuple field takes them, items stay strict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ChainConfig(_Model):
    """The L2 chain and its L1 bridge."""

    block_time_s: float = Field(1.0, ge=MIN_BLOCK_TIME_S, le=MAX_BLOCK_TIME_S,
                                description="Virtual seconds between blocks.")
    accounts: int = Field(100, ge=1, le=MAX_ACCOUNTS, description="Funded accounts at genesis.")
    heights: int = Field(
        120,
        ge=2,
        le=MAX_HEIGHTS,
        description="Blocks to produce before the run ends (heights of the final chain).",
    )
    finality_blocks: int = Field(
        10,
        ge=1,
        le=MAX_HEIGHTS,
        description="L2 blocks after which a withdrawal is final on L1 and cannot be rolled back.",
    )


class ByzantineValidator(_Model):
    """One validator that does not follow the protocol, and how it misbehaves."""

    index: ValidatorIndex = Field(description="0-based validator index.")
    behaviour: Behaviour = Field(description="How it misbehaves.")


class ValidatorsConfig(_Model):
    """The validator set."""

    count: int = Field(
        4, ge=1, le=MAX_VALIDATORS,
        description=("Number of validators, 1 to 512. Each height costs about 2 x count^2 message deliveries "
                     "besides its block's execution: on the small world about 0.6-2 s a height at 16 validators, "
                     "5-10 s at 150 and 110 s at 512 (benchmarks/validators_bench.py, a busy 2-core machine), "
                     "and about 0.4 MiB of memory per validator (state is shared by content)."),
    )
    byzantine: Annotated[tuple[ByzantineValidator, ...], _LAX_ARRAY] = Field(
        (), description="Validators that misbehave; the others are honest."
    )
    power: Annotated[tuple[Annotated[int, Field(ge=1)], ...], _LAX_ARRAY] | None = Field(
        None, description="Voting power per validator, one per index; equal power when absent."
    )
    topology: Topology = Field("complete", description="How validators are linked: every pair, a random regular graph, or geographic clusters.")

    @model_validator(mode="after")
    def _check_indices(self) -> "ValidatorsConfig":
        seen: set[int] = set()
        for i, b in enumerate(self.byzantine):
            path = ("byzantine", i, "index")
            if b.index >= self.count:
                raise _invalid(
                    "out_of_range", path, b.index, f"{b.index} is out of range for {self.count} validators"
                )
            if b.index in seen:
                raise _invalid(
                    "inconsistent", path, b.index, f"validator {b.index} is listed twice"
                )
            seen.add(b.index)
        if len(self.byzantine) == self.count:
            raise _invalid(
                "inconsistent",
                ("byzantine",),
                [b.index for b in self.byzantine],
                f"all {self.count} validators are Byzantine; a run needs at least one honest validator",
            )
        topology_error = compute_topology_error(self.topology, self.count)
        if topology_error is not None:
            raise _invalid("inconsistent", ("topology",), self.topology, topology_error)
        if self.power is not None and len(self.power) != self.count:
            raise _invalid(
                "inconsistent",
                ("power",),
                list(self.power),
                f"{len(self.power)} entries for {self.count} validators",
            )
        return self


def compute_topology_error(topology: str, count: int) -> str | None:
    """Why the network cannot be built with `topology` for `count` validators, or None if it can."""
    degree = RANDOM_REGULAR_DEGREE
    if topology == "random-regular" and not (degree < count and count * degree % 2 == 0):
        return (f'"random-regular" links each validator to {degree} others: it needs an even count above '
                f"{degree}, not count = {count}")
    if topology == "geo" and count < GEO_CLUSTERS:
        return f'"geo" spreads validators over {GEO_CLUSTERS} clusters: it needs count >= {GEO_CLUSTERS}, not {count}'
    return None


class Partition(_Model):
    """A window of virtual time during which links between different groups are cut.

    Validators listed in no group form one more group together.
    """

    start_s: NonNegativeSeconds = Field(description="Virtual seconds since genesis when the cut starts.")
    end_s: NonNegativeSeconds = Field(description="Virtual seconds since genesis when it heals.")
    groups: Annotated[
        tuple[Annotated[tuple[ValidatorIndex, ...], _LAX_ARRAY, Field(min_length=1)], ...],
        _LAX_ARRAY,
        Field(min_length=1),
    ] = Field(description="Validator indices that can still reach each other, one array per side.")

    @model_validator(mode="after")
    def _check_window_and_groups(self) -> "Partition":
        if not self.start_s < self.end_s:
            raise _invalid(
                "inconsistent",
                ("end_s",),
                self.end_s,
                f"{format_value(self.end_s)} is not after start_s = {format_value(self.start_s)}",
            )
        seen: set[int] = set()
        for g, group in enumerate(self.groups):
            for k, index in enumerate(group):
                if index in seen:
                    raise _invalid(
                        "inconsistent", ("groups", g, k), index, f"validator {index} is in two groups"
                    )
                seen.add(index)
        return self


class Crash(_Model):
    """A validator that crashes at `at_s` and restarts at `restart_s` (never, when absent),
    keeping only what it persisted: its chain and its vote journal."""

    node: ValidatorIndex = Field(description="0-based validator index.")
    at_s: NonNegativeSeconds = Field(description="Virtual seconds since genesis when it crashes.")
    restart_s: NonNegativeSeconds | None = Field(None, description="When it comes back; never when absent.")

    @model_validator(mode="after")
    def _check_window(self) -> "Crash":
        if self.restart_s is not None and not self.at_s < self.restart_s:
            raise _invalid(
                "inconsistent",
                ("restart_s",),
                self.restart_s,
                f"{format_value(self.restart_s)} is not after at_s = {format_value(self.at_s)}",
            )
        return self


class NetworkConfig(_Model):
    """The simulated network between validators."""

    latency_ms: float = Field(50.0, ge=0.0, le=MAX_LINK_DELAY_MS, description="Mean one-way message delay.")
    jitter_ms: float = Field(10.0, ge=0.0, le=MAX_LINK_DELAY_MS, description="Spread of the delay around the mean.")
    drop_rate: LinkRate = Field(0.0, description="Probability that a message is lost (below 1).")
    duplicate_rate: LinkRate = Field(0.0, description="Probability that a message is delivered twice (below 1).")
    partitions: Annotated[tuple[Partition, ...], _LAX_ARRAY] = Field((), description="Windows of cut links.")
    crashes: Annotated[tuple[Crash, ...], _LAX_ARRAY] = Field((), description="Validators that crash and restart.")


class IncidentConfig(_Model):
    """The glitch: corrupted market data posted for a while (a wrong price, reset funding indices, or both)."""

    kind: GlitchKind = Field(
        "price", description="price: `market` posted at `bad_price`; funding-reset: the funding index of "
        "each of `funding_markets` posted as 0; both: the two at once (Paradex, Jan 2026)."
    )
    market: Market = Field("BTC-USD", description="Market whose price is wrong.")
    markets: Annotated[tuple[Market, ...], _LAX_ARRAY] = Field(
        (), description="More markets posted at `bad_price` beside `market` (kinds price and both)."
    )
    funding_markets: Annotated[tuple[Market, ...], _LAX_ARRAY] = Field(
        (), description="Markets whose funding index is reset to 0; empty means every market (funding kinds)."
    )
    start_height: int = Field(40, ge=1, le=MAX_HEIGHTS, description="First block carrying the bad data.")
    duration_blocks: int = Field(5, ge=1, le=MAX_HEIGHTS, description="Blocks for which the bad data is posted.")
    bad_price: float = Field(0.0, ge=0.0, le=MAX_PRICE_USD, description="The wrong price, in USD (Paradex posted 0).")

    @model_validator(mode="after")
    def _check_kind(self) -> "IncidentConfig":
        if self.kind == "price" and self.funding_markets:
            raise _invalid("inconsistent", ("funding_markets",), list(self.funding_markets),
                           "funding_markets needs kind = \"funding-reset\" or \"both\"")
        if self.kind == "funding-reset" and self.markets:
            raise _invalid("inconsistent", ("markets",), list(self.markets),
                           "markets (more bad prices) needs kind = \"price\" or \"both\"")
        return self


class DetectionConfig(_Model):
    """How the halt is triggered."""

    deviation_bps: int = Field(
        2000, ge=1, le=1_000_000, description="How far (bps) an on-chain price may stand from the validator's own "
        "feed, or a funding index from the one it computes, before its alarm fires."
    )
    operator_halt_height: int | None = Field(
        None, ge=1, le=MAX_HEIGHTS, description="Height at which operators halt by hand, alarm or not."
    )
    delay_blocks: int = Field(2, ge=0, le=MAX_HEIGHTS, description="Blocks between the alarm and the halt.")


class ResponseConfig(_Model):
    """What the validators do once halted."""

    mode: ResponseMode = Field("full-rollback", description="How state is restored.")
    pause_s: float = Field(
        600.0, ge=0.0, le=30 * 86400.0, description="Virtual seconds the chain stays halted (Paradex: ~6 h)."
    )
    withdrawal_policy: WithdrawalPolicy = Field(
        "debit-account",
        description="Who pays for withdrawals already final on L1: the account or the vault.",
    )
    cancel_only_s: float = Field(
        0.0, ge=0.0, le=86400.0, description="After the restart, virtual seconds of cancel-only trading "
        "(positions may only shrink; liquidations run). Paradex: about 2 minutes."
    )
    post_only_s: float = Field(
        0.0, ge=0.0, le=86400.0, description="Then virtual seconds of post-only trading (the book refills: "
        "depth stays at reopen_depth_share), before trading opens. Paradex: about 2 minutes."
    )
    reopen_depth_share: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of each market's depth during cancel-only and post-only; "
        "full depth returns when trading opens."
    )
    price_band_bps: int = Field(
        0, ge=0, le=10_000, description="During cancel-only and post-only, clamp the mark to the index price "
        "+/- this band; 0 = off (Paradex added it after the incident)."
    )
    compensation_policies: Annotated[tuple[CompensationPolicy, ...], _LAX_ARRAY] = Field(
        ("halt-drift",), description="What is paid, from the liquidator vault: halt-drift (accounts liquidated "
        "in the rolled-back window, for what the window on true prices would have left them beyond the "
        "restore, at the restart price) and/or reopening-harm (accounts liquidated in cancel-only or "
        "post-only at a mark outside audit_band_bps, for what a replay with the band on would have left "
        "them). What the restore itself returned is always reported, never paid."
    )
    audit_band_bps: int = Field(
        100, ge=1, le=10_000, description="The band the reopening-harm audit judges liquidations by "
        "(price_band_bps instead when that is on)."
    )


class OracleConfig(_Model):
    """The validators' price feeds."""

    stale_after_restart_blocks: int = Field(
        0, ge=0, le=MAX_HEIGHTS, description="Blocks after restart during which feeds still post pre-halt prices."
    )


class WorkloadConfig(_Model):
    """The actors that trade on the exchange; together at most `chain.accounts`.

    Every trader and profit-taker deposits and opens one position at genesis; the other
    funded accounts only hold a balance.
    """

    traders: int = Field(40, ge=0, le=MAX_ACCOUNTS, description="Accounts that open and close positions.")
    keepers: int = Field(2, ge=0, le=MAX_ACCOUNTS, description="Accounts that liquidate undercollateralised ones.")
    profit_takers: int = Field(4, ge=0, le=MAX_ACCOUNTS, description="Accounts that trade against a bad price.")
    aggressors: int = Field(
        0, ge=0, le=MAX_ACCOUNTS, description="Accounts that, once the chain reopens, trade hard into the "
        "thinnest market against the crowd's side (they skewed PAXG's price on Paradex)."
    )
    aggressor_notional_usd: float = Field(
        50_000.0, gt=0.0, le=1e12, description="Notional of each of an aggressor's trades."
    )
    leverage_max: float = Field(10.0, ge=1.0, le=100.0, description="Highest leverage a trader takes.")
    leverage_min: float = Field(1.0, ge=1.0, le=100.0, description="Lowest leverage a trader takes.")
    trade_probability: Probability = Field(0.3, description="Chance per block that a trader trades.")
    withdraw_probability: Probability = Field(0.02, description="Chance per block that a trader withdraws to L1.")
    long_share: Probability = Field(0.6, description="Chance that a new position is long.")
    market_weights: Annotated[dict[Market, Annotated[float, Field(ge=0.0)]], Field(strict=False)] = Field(
        default_factory=lambda: {"BTC-USD": 0.5, "ETH-USD": 0.3, "SOL-USD": 0.2},
        description="Relative chance that a new position is in each market (absent markets: 0).",
    )
    deposit_median_usd: float = Field(
        3000.0, gt=0.0, le=1e9, description="Median collateral a trader deposits (log-normal spread)."
    )
    deposit_spread: float = Field(
        1.0, ge=0.0, le=3.0, description="Sigma of the log of deposits: 0 gives every trader the median."
    )
    max_liquidations_per_keeper: int = Field(
        20, ge=0, le=10_000, description="Liquidations a keeper submits per block at most."
    )

    @model_validator(mode="after")
    def _check_leverage_and_weights(self) -> "WorkloadConfig":
        if self.leverage_min > self.leverage_max:
            raise _invalid(
                "inconsistent",
                ("leverage_min",),
                self.leverage_min,
                f"{format_value(self.leverage_min)} is above leverage_max = {format_value(self.leverage_max)}",
            )
        if not any(weight > 0 for weight in self.market_weights.values()):
            raise _invalid(
                "inconsistent", ("market_weights",), dict(self.market_weights), "no market has a positive weight"
            )
        return self


class PricesConfig(_Model):
    """The true (reference) prices: a seeded random walk per market, one step per block."""

    initial_usd: Annotated[dict[Market, Annotated[float, Field(ge=MIN_PRICE_USD, le=MAX_PRICE_USD)]],
                           Field(strict=False)] = Field(
        default_factory=lambda: dict(DEFAULT_INITIAL_PRICES_USD),
        description="Price at genesis in USD; markets left out keep these defaults.",
    )
    volatility_bps: float = Field(
        5.0, ge=0.0, le=1_000.0, description="Standard deviation of one block's price move, in basis points."
    )


class ExchangeConfig(_Model):
    """The perps exchange's parameters and its starting liquidity."""

    initial_margin_bps: int | None = Field(
        None, ge=2, le=10_000, description="Initial margin; by default 10000 / ceil(workload.leverage_max)."
    )
    maintenance_margin_bps: int | None = Field(
        None, ge=1, le=10_000, description="Maintenance margin; by default half the initial margin."
    )
    trading_fee_bps: int = Field(5, ge=0, le=1_000, description="Fee per trade, of notional.")
    liquidation_fee_bps: int = Field(50, ge=0, le=5_000, description="Paid to the liquidator, of notional.")
    liquidation_penalty_bps: int = Field(50, ge=0, le=5_000, description="Paid to the vault, of notional.")
    vault_usd: float = Field(5_000_000.0, ge=0.0, le=1e12, description="Vault (house liquidity) funded at genesis.")
    bridge_reserve_usd: float = Field(
        1_000_000.0, ge=0.0, le=1e12, description="Bridge reserve for L1 deposits, funded at genesis."
    )
    depth_usd: dict[Market, Annotated[float, Field(ge=0.0, le=1e15)]] = Field(
        default_factory=dict, description="Each market's depth: the notional (USD) that moves its mark 1 % "
        "(absent or 0: infinitely deep, the mark is the index price)."
    )
    flow_half_life_blocks: int = Field(
        10, ge=0, le=MAX_HEIGHTS, description="Blocks after which the trade flow behind the mark's premium halves."
    )
    funding_index_usd: dict[Market, Annotated[float, Field(ge=-1e9, le=1e9)]] = Field(
        default_factory=dict,
        description="Each market's funding index at genesis (USD per base unit, the integral of funding since "
        "launch); positions cache it, so a reset to 0 gives each one size x index of spurious PnL.",
    )


class Scenario(_Model):
    """One incident and its recovery, as data. Only `name` is required."""

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Short identifier."
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Master seed; `l2sim run --seed` overrides it.")
    description: str = Field("", max_length=4000, description="What happens, in words a teacher can read aloud.")
    extends: str | None = Field(
        None, min_length=1, description="Bundled name or relative path of the scenario this one changes."
    )
    chain: ChainConfig = ChainConfig()
    validators: ValidatorsConfig = ValidatorsConfig()
    network: NetworkConfig = NetworkConfig()
    incident: IncidentConfig = IncidentConfig()
    detection: DetectionConfig = DetectionConfig()
    response: ResponseConfig = ResponseConfig()
    oracle: OracleConfig = OracleConfig()
    workload: WorkloadConfig = WorkloadConfig()
    prices: PricesConfig = PricesConfig()
    exchange: ExchangeConfig = ExchangeConfig()

    @model_validator(mode="after")
    def _check_across_tables(self) -> "Scenario":
        count = self.validators.count
        for p, partition in enumerate(self.network.partitions):
            for g, group in enumerate(partition.groups):
                for k, index in enumerate(group):
                    if index >= count:
                        raise _invalid(
                            "out_of_range",
                            ("network", "partitions", p, "groups", g, k),
                            index,
                            f"{index} is out of range for {count} validators",
                        )
        for c, crash in enumerate(self.network.crashes):
            if crash.node >= count:
                raise _invalid(
                    "out_of_range",
                    ("network", "crashes", c, "node"),
                    crash.node,
                    f"{crash.node} is out of range for {count} validators",
                )
        height_s = self.chain.block_time_s + 3 * (self.network.latency_ms + self.network.jitter_ms) / 1000
        if height_s > HEIGHT_ALLOWANCE_S:
            raise _invalid(
                "out_of_range",
                ("chain", "block_time_s"),
                self.chain.block_time_s,
                f"{format_value(self.chain.block_time_s)} s a block and three message delays of network.latency_ms"
                f" + jitter_ms take {format_value(round(height_s, 3))} s a height, more than the"
                f" {format_value(HEIGHT_ALLOWANCE_S)} s a run allows",
            )
        heights = self.chain.heights
        if self.incident.start_height >= heights:
            raise _invalid(
                "out_of_range",
                ("incident", "start_height"),
                self.incident.start_height,
                f"{self.incident.start_height} is not below chain.heights = {heights}",
            )
        halt = self.detection.operator_halt_height
        delay = self.detection.delay_blocks
        if halt is None and self.incident.start_height + delay > heights:
            # The alarm halts at the first bad height + delay_blocks (the glitch is on chain at
            # start_height at the earliest); past the last height nothing would halt, restore or
            # be checked, and the run would pass without testing the recovery.
            raise _invalid(
                "out_of_range",
                ("detection", "delay_blocks"),
                delay,
                f"incident.start_height + detection.delay_blocks = {self.incident.start_height} + {delay}"
                f" is past chain.heights = {heights}: the halt would come after the last height",
            )
        if halt is not None and not self.incident.start_height <= halt <= heights:
            raise _invalid(
                "out_of_range",
                ("detection", "operator_halt_height"),
                halt,
                f"{halt} is outside incident.start_height..chain.heights"
                f" = {self.incident.start_height}..{heights}",
            )
        undetectable = compute_undetectable_incident(self)
        if undetectable is not None:
            raise _invalid("inconsistent", undetectable[0], undetectable[1], undetectable[2])
        opens_at = compute_reopening_height(self)
        if "reopening-harm" in self.response.compensation_policies and opens_at is not None and opens_at > heights:
            raise _invalid(
                "out_of_range",
                ("chain", "heights"),
                heights,
                f"{heights} is too few: trading reopens only at height {opens_at} (the restart, then "
                f"response.cancel_only_s and response.post_only_s), so the reopening-harm audit would never run",
            )
        initial, maintenance = compute_margins_bps(self)
        if maintenance >= initial:
            raise _invalid(
                "inconsistent",
                ("exchange", "maintenance_margin_bps"),
                maintenance,
                f"{maintenance} is not below the initial margin of {initial} bps",
            )
        w = self.workload
        actors = w.traders + w.keepers + w.profit_takers + w.aggressors
        if actors > self.chain.accounts:
            raise _invalid(
                "inconsistent",
                ("workload", "traders"),
                w.traders,
                f"traders + keepers + profit_takers + aggressors = {actors} exceeds chain.accounts = {self.chain.accounts}",
            )
        return self


def compute_undetectable_incident(scenario: Scenario) -> tuple[FieldPath, Any, str] | None:
    """(field, value, reason) when no validator's alarm could tell the glitch from the truth
    at genesis, or None: every bad price within `detection.deviation_bps` of its market's
    genesis price, and every reset funding index already 0 (a reset that changes nothing)."""
    incident, bps = scenario.incident, scenario.detection.deviation_bps
    prices: tuple[str, ...] = ()
    if incident.kind in ("price", "both"):
        prices = tuple(dict.fromkeys((incident.market, *incident.markets)))
    funding: tuple[str, ...] = ()
    if incident.kind in ("funding-reset", "both"):
        funding = incident.funding_markets or MARKETS
    initial = {m: scenario.prices.initial_usd.get(m, DEFAULT_INITIAL_PRICES_USD[m]) for m in prices}
    if any(abs(incident.bad_price - initial[m]) * 10_000 > bps * initial[m] for m in prices):
        return None
    if any(scenario.exchange.funding_index_usd.get(m, 0.0) != 0.0 for m in funding):
        return None
    if prices and not funding:
        listed = ", ".join(f"{m} {format_value(initial[m])}" for m in prices)
        return (("incident", "bad_price"), incident.bad_price,
                f"{format_value(incident.bad_price)} is within detection.deviation_bps = {bps} of the genesis price "
                f"({listed}): no validator's alarm could tell it from the true price")
    if funding and not prices:
        return (("incident", "kind"), incident.kind,
                f"the reset sets funding indices that are already 0 at genesis ({', '.join(funding)}; "
                "exchange.funding_index_usd): it changes nothing a validator could detect")
    return (("incident", "bad_price"), incident.bad_price,
            f"{format_value(incident.bad_price)} is within detection.deviation_bps = {bps} of the genesis price and "
            "the funding indices it resets are already 0: no validator's alarm could detect the incident")


def compute_reopening_height(scenario: Scenario) -> int | None:
    """The latest height at which trading reopens after the restart (None: no restricted phase).

    A rollback restarts at the glitch's first height; a selective restore two heights after
    the halt (the restore block, then the new fork's first block). The phases last
    `int(seconds / block_time_s)` blocks each, as the runner counts them.
    """
    response, block_s = scenario.response, scenario.chain.block_time_s
    restricted = int(response.cancel_only_s / block_s) + int(response.post_only_s / block_s)
    if restricted == 0:
        return None
    start = scenario.incident.start_height
    halt = scenario.detection.operator_halt_height
    if halt is None:
        halt = start + scenario.detection.delay_blocks
    restart = halt + 2 if response.mode == "selective-restore" else start
    return restart + restricted


def compute_margins_bps(scenario: Scenario) -> tuple[int, int]:
    """(initial, maintenance) margin in bps, the defaults derived from `workload.leverage_max`."""
    initial = scenario.exchange.initial_margin_bps
    if initial is None:
        initial = max(2, 10_000 // math.ceil(scenario.workload.leverage_max))
    maintenance = scenario.exchange.maintenance_margin_bps
    if maintenance is None:
        maintenance = max(1, initial // 2)
    return initial, maintenance


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file, as `l2sim schema` prints it."""
    schema = Scenario.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
