"""A typed client over the exchange contracts: calls to sign, views at any root, decoded events.

Writing: each `*_call` function returns a `Call` (recipient, calldata, value), a plain
value that `sign_call` turns into a signed transaction for a given key, nonce and fork.
Reading: each `get_*` / `is_*` function runs a view through `call_view` at a state root,
so any committed height can be read. Events: `decode_events` turns a block's receipts
into typed, frozen event records, in log order.

Units are the contracts' (see perps.vy): collateral and amounts in wei (1e18 wei = 1
USD), prices in USD * 1e18 per whole base unit, sizes in base units * 1e18 (+ long,
- short). Market ids are the oracle's: 0 BTC-USD, 1 ETH-USD, 2 SOL-USD, 3 PAXG-USD.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth_utils import function_signature_to_4byte_selector

from chain.contracts import (
    CompiledContract,
    compile_contract,
    decode_event,
    decode_result,
    deployment_code,
    encode_call,
    event_topic,
)
from chain.genesis import Deployment, genesis_contract_address
from chain.state import BlockContext, call_view
from chain.store import Store
from chain.transactions import CALL_GAS, chain_id_for_fork, sign_legacy

USD = 10**18  # wei of collateral per USD
PRICE_UNIT = 10**18  # oracle price of 1 USD per base unit
SIZE_UNIT = 10**18  # size of one whole base unit (1 BTC)
BPS = 10_000
MARKET_IDS: dict[str, int] = {"BTC-USD": 0, "ETH-USD": 1, "SOL-USD": 2, "PAXG-USD": 3}
MARKET_NAMES: dict[int, str] = {market: name for name, market in MARKET_IDS.items()}


@dataclass(frozen=True)
class ExchangeAddresses:
    """Where the three contracts live."""

    oracle: bytes
    perps: bytes
    bridge: bytes


@dataclass(frozen=True)
class PerpsParams:
    """The perps contract's constructor arguments (besides the oracle)."""

    num_markets: int = 3
    initial_margin_bps: int = 500
    maintenance_margin_bps: int = 250
    max_leverage: int = 20
    trading_fee_bps: int = 5
    liquidation_fee_bps: int = 50
    liquidation_penalty_bps: int = 50


def compute_exchange_addresses(seed: int) -> ExchangeAddresses:
    """Where genesis (deploying from a key derived from `seed`) puts oracle, perps and bridge."""
    return ExchangeAddresses(
        oracle=genesis_contract_address(seed, 0),
        perps=genesis_contract_address(seed, 1),
        bridge=genesis_contract_address(seed, 2),
    )


def exchange_deployments(
    seed: int, *, reporter: bytes, relayer: bytes, finality_blocks: int, params: PerpsParams
) -> tuple[tuple[Deployment, ...], ExchangeAddresses]:
    """Genesis deployments of oracle, perps and bridge (in that order) and where they will land.

    The perps constructor needs the oracle's address before it exists; genesis deploys
    from a key derived from `seed`, so the address is known in advance.
    """
    addresses = compute_exchange_addresses(seed)
    deployments = (
        Deployment("oracle", deployment_code("oracle", reporter)),
        Deployment(
            "perps",
            deployment_code(
                "perps",
                addresses.oracle,
                params.num_markets,
                params.initial_margin_bps,
                params.maintenance_margin_bps,
                params.max_leverage,
                params.trading_fee_bps,
                params.liquidation_fee_bps,
                params.liquidation_penalty_bps,
            ),
        ),
        Deployment("bridge", deployment_code("bridge", relayer, finality_blocks)),
    )
    return deployments, addresses


# ---------------------------------------------------------------- calls to sign


@dataclass(frozen=True)
class Call:
    """A contract call to be signed: recipient, calldata and value in wei."""

    to: bytes
    data: bytes
    value: int = 0


def sign_call(
    private_key: bytes, call: Call, *, nonce: int, fork_id: int, gas: int = CALL_GAS
) -> SignedTransactionAPI:
    """`call` as a legacy transaction signed for `fork_id` (gas price 0)."""
    return sign_legacy(
        private_key, nonce=nonce, to=call.to, value=call.value, data=call.data, gas=gas, fork_id=fork_id
    )


def _perps() -> CompiledContract:
    return compile_contract("perps")


def _oracle() -> CompiledContract:
    return compile_contract("oracle")


def _bridge() -> CompiledContract:
    return compile_contract("bridge")


def deposit_call(addresses: ExchangeAddresses, amount_wei: int) -> Call:
    """Deposit `amount_wei` of the sender's balance as perps collateral."""
    return Call(addresses.perps, encode_call(_perps(), "deposit"), amount_wei)


def withdraw_call(addresses: ExchangeAddresses, amount_wei: int) -> Call:
    """Withdraw `amount_wei` of free collateral back to the sender's balance."""
    return Call(addresses.perps, encode_call(_perps(), "withdraw", amount_wei))


def trade_call(addresses: ExchangeAddresses, market: int, size_delta: int) -> Call:
    """Change the sender's position in `market` by `size_delta` at the mark."""
    return Call(addresses.perps, encode_call(_perps(), "trade", market, size_delta))


def close_call(addresses: ExchangeAddresses, market: int) -> Call:
    """Close the sender's whole position in `market`."""
    return Call(addresses.perps, encode_call(_perps(), "close", market))


def liquidate_call(addresses: ExchangeAddresses, account: bytes, market: int) -> Call:
    """Liquidate `account`'s position in `market` (reverts unless it is liquidatable)."""
    return Call(addresses.perps, encode_call(_perps(), "liquidate", account, market))


def fund_vault_call(addresses: ExchangeAddresses, amount_wei: int) -> Call:
    """Add `amount_wei` to the perps vault."""
    return Call(addresses.perps, encode_call(_perps(), "fund_vault"), amount_wei)


def compensate_call(addresses: ExchangeAddresses, account: bytes, amount_wei: int) -> Call:
    """Credit `amount_wei` from the vault to `account`'s collateral (perps owner only)."""
    return Call(addresses.perps, encode_call(_perps(), "compensate", account, amount_wei))


def restore_account_call(
    addresses: ExchangeAddresses,
    account: bytes,
    collateral: int,
    positions: Sequence[tuple[int, int, int]],
) -> Call:
    """Set `account` back to a snapshot (perps owner only; the selective restore).

    `collateral` in wei; `positions` are the (market, size, entry_price) of its open
    positions, every other market becomes flat. The vault pays the collateral difference
    (or takes it back when it is lower); reverts if the vault cannot pay. The contract logs
    `AccountRestored`, then one `PositionRestored` per position, in the order given.
    """
    markets = [market for market, _, _ in positions]
    sizes = [size for _, size, _ in positions]
    entry_prices = [entry_price for _, _, entry_price in positions]
    return Call(
        addresses.perps,
        encode_call(_perps(), "restore_account", account, collateral, markets, sizes, entry_prices),
    )


SETTLEMENT_POLICIES = ("debit-account", "charge-vault")


def settle_l1_withdrawal_call(
    addresses: ExchangeAddresses, account: bytes, amount_wei: int, charge_vault: bool
) -> Call:
    """Reconcile a withdrawal of `account` already final on L1 in a rolled-back window (perps owner only).

    Sends exactly `amount_wei` from the perps contract to the bridge's reserve, taken from
    the vault (`charge_vault`, policy "charge-vault") or from `account`'s collateral with
    the vault covering what the collateral lacks ("debit-account"). Reverts if the vault
    cannot cover its part. The `L1WithdrawalSettled` event records the split.
    """
    return Call(
        addresses.perps,
        encode_call(_perps(), "settle_l1_withdrawal", account, amount_wei, charge_vault, addresses.bridge),
    )


TRADING_MODES: dict[str, int] = {"open": 0, "cancel-only": 1, "post-only": 2}
TRADING_MODE_NAMES: dict[int, str] = {mode: name for name, mode in TRADING_MODES.items()}


def post_funding_call(addresses: ExchangeAddresses, indices: Mapping[int, int]) -> Call:
    """Post `{market: funding index}` to perps, markets ascending (the oracle's reporter only)."""
    markets = sorted(indices)
    return Call(
        addresses.perps,
        encode_call(_perps(), "post_funding", markets, [indices[m] for m in markets]),
    )


def set_trading_mode_call(addresses: ExchangeAddresses, mode: str) -> Call:
    """Set the perps trading mode, one of TRADING_MODES (perps owner only)."""
    return Call(addresses.perps, encode_call(_perps(), "set_trading_mode", TRADING_MODES[mode]))


def set_market_depth_call(addresses: ExchangeAddresses, market: int, depth_wei: int) -> Call:
    """Set the notional (wei) that moves `market`'s mark by 1 %; 0 = infinite (perps owner only)."""
    return Call(addresses.perps, encode_call(_perps(), "set_market_depth", market, depth_wei))


def set_price_band_call(addresses: ExchangeAddresses, price_band_bps: int) -> Call:
    """Clamp the mark to the index +/- `price_band_bps` in restricted modes; 0 = off (owner only)."""
    return Call(addresses.perps, encode_call(_perps(), "set_price_band", price_band_bps))


def set_flow_half_life_call(addresses: ExchangeAddresses, blocks: int) -> Call:
    """Set the blocks after which the trade flow behind the premium halves (owner only)."""
    return Call(addresses.perps, encode_call(_perps(), "set_flow_half_life", blocks))


def post_prices_call(addresses: ExchangeAddresses, prices: Mapping[int, int]) -> Call:
    """Post `{market: price}` in one oracle transaction, markets in ascending order (reporter only)."""
    markets = sorted(prices)
    return Call(
        addresses.oracle,
        encode_call(_oracle(), "post_prices", markets, [prices[m] for m in markets]),
    )


def bridge_withdraw_call(addresses: ExchangeAddresses, amount_wei: int) -> Call:
    """Send `amount_wei` of the sender's balance to L1 through the bridge."""
    return Call(addresses.bridge, encode_call(_bridge(), "withdraw"), amount_wei)


def credit_deposit_call(
    addresses: ExchangeAddresses, l1_deposit_id: int, account: bytes, amount_wei: int
) -> Call:
    """Pay L1 deposit `l1_deposit_id` to `account` on L2 (relayer only)."""
    return Call(
        addresses.bridge, encode_call(_bridge(), "credit_deposit", l1_deposit_id, account, amount_wei)
    )


def fund_reserve_call(addresses: ExchangeAddresses, amount_wei: int) -> Call:
    """Add `amount_wei` to the bridge's reserve for L1 deposits."""
    return Call(addresses.bridge, encode_call(_bridge(), "fund_reserve"), amount_wei)


# ---------------------------------------------------------------- views at a root


def _view(
    store: Store,
    root: bytes,
    to: bytes,
    compiled: CompiledContract,
    fn_name: str,
    *args,
    height: int = 0,
) -> tuple:
    context = BlockContext(height=height, timestamp=0, chain_id=chain_id_for_fork(0))
    output = call_view(store, root, to, encode_call(compiled, fn_name, *args), context=context)
    return decode_result(compiled, fn_name, output)


@dataclass(frozen=True)
class Position:
    """One account's position in one market."""

    size: int
    entry_price: int


@dataclass(frozen=True)
class PerpsTotals:
    """The perps contract's running totals (the terms of its conservation invariants)."""

    total_collateral: int
    vault: int
    fees_accrued: int
    total_deposited: int
    total_withdrawn: int
    total_vault_funded: int
    total_fees_collected: int
    total_compensated: int
    shortfall_absorbed: int
    bad_debt: int
    liquidation_count: int
    total_l1_settled: int
    total_l1_settled_from_vault: int
    total_restored_from_vault: int
    total_restored_to_vault: int


@dataclass(frozen=True)
class BridgeWithdrawal:
    """A withdrawal to L1: final (irreversible) once the chain reaches `final_at`."""

    id: int
    account: bytes
    amount: int
    made_at_height: int
    final_at: int


def get_price(store: Store, root: bytes, addresses: ExchangeAddresses, market: int) -> int:
    """The oracle's last posted price of `market` at `root`."""
    return _view(store, root, addresses.oracle, _oracle(), "price", market)[0]


def get_position(
    store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes, market: int
) -> Position:
    """`account`'s position in `market` at `root`."""
    size, entry_price = _view(store, root, addresses.perps, _perps(), "position", account, market)
    return Position(size, entry_price)


def get_mark_price(store: Store, root: bytes, addresses: ExchangeAddresses, market: int) -> int:
    """The perps mark of `market` at `root`: the index price plus the flow premium."""
    return _view(store, root, addresses.perps, _perps(), "mark_price", market)[0]


def get_funding_index(store: Store, root: bytes, addresses: ExchangeAddresses, market: int) -> int:
    """`market`'s funding index at `root` (price units, signed)."""
    return _view(store, root, addresses.perps, _perps(), "funding_index", market)[0]


def get_accrued_funding(
    store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes, market: int
) -> int:
    """Funding `account` owes on its `market` position since its last change (+: it pays)."""
    return _view(store, root, addresses.perps, _perps(), "accrued_funding", account, market)[0]


def get_funding_cached(
    store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes, market: int
) -> int:
    """The funding index `account`'s `market` position cached at its last change."""
    return _view(store, root, addresses.perps, _perps(), "funding_cached", account, market)[0]


def get_market_depth(store: Store, root: bytes, addresses: ExchangeAddresses, market: int) -> int:
    """`market`'s depth at `root`: wei of notional per 1 % move of the mark; 0 = infinite."""
    return _view(store, root, addresses.perps, _perps(), "market_depth", market)[0]


def get_trading_mode(store: Store, root: bytes, addresses: ExchangeAddresses) -> str:
    """The perps trading mode at `root`: "open", "cancel-only" or "post-only"."""
    return TRADING_MODE_NAMES[_view(store, root, addresses.perps, _perps(), "trading_mode")[0]]


def get_collateral(store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes) -> int:
    """`account`'s collateral in wei at `root`."""
    return _view(store, root, addresses.perps, _perps(), "collateral", account)[0]


def get_equity(store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes) -> int:
    """Collateral plus unrealised PnL of `account` at `root` (may be negative)."""
    return _view(store, root, addresses.perps, _perps(), "equity", account)[0]


def get_margin_requirement(
    store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes
) -> int:
    """`account`'s maintenance margin requirement at `root`."""
    return _view(store, root, addresses.perps, _perps(), "margin_requirement", account)[0]


def get_free_collateral(
    store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes
) -> int:
    """What `account` could withdraw at `root`."""
    return _view(store, root, addresses.perps, _perps(), "free_collateral", account)[0]


def is_liquidatable(store: Store, root: bytes, addresses: ExchangeAddresses, account: bytes) -> bool:
    """True if `account` holds a position and its equity is below maintenance at `root`."""
    return _view(store, root, addresses.perps, _perps(), "is_liquidatable", account)[0]


def get_vault_balance(store: Store, root: bytes, addresses: ExchangeAddresses) -> int:
    """Wei in the perps vault at `root`."""
    return _view(store, root, addresses.perps, _perps(), "vault_balance")[0]


def get_open_interest(
    store: Store, root: bytes, addresses: ExchangeAddresses, market: int
) -> tuple[int, int]:
    """(sum of long sizes, sum of |short sizes|) in `market` at `root`."""
    return _view(store, root, addresses.perps, _perps(), "open_interest", market)


def get_perps_totals(store: Store, root: bytes, addresses: ExchangeAddresses) -> PerpsTotals:
    """Every running total of the perps contract at `root`."""
    names = (
        "total_collateral",
        "vault_balance",
        "fees_accrued",
        "total_deposited",
        "total_withdrawn",
        "total_vault_funded",
        "total_fees_collected",
        "total_compensated",
        "shortfall_absorbed",
        "bad_debt",
        "liquidation_count",
        "total_l1_settled",
        "total_l1_settled_from_vault",
        "total_restored_from_vault",
        "total_restored_to_vault",
    )
    values = [_view(store, root, addresses.perps, _perps(), name)[0] for name in names]
    return PerpsTotals(*values)


def get_bridge_withdrawals(
    store: Store, root: bytes, addresses: ExchangeAddresses
) -> tuple[BridgeWithdrawal, ...]:
    """Every withdrawal to L1 recorded at `root`, in id order."""
    bridge = _bridge()
    count = _view(store, root, addresses.bridge, bridge, "withdrawal_count")[0]
    if count == 0:
        return ()
    finality = _view(store, root, addresses.bridge, bridge, "finality_blocks")[0]
    found = []
    for wid in range(count):
        account, amount, made_at = _view(store, root, addresses.bridge, bridge, "withdrawal", wid)
        found.append(BridgeWithdrawal(wid, bytes.fromhex(account[2:]), amount, made_at, made_at + finality))
    return tuple(found)


def split_withdrawals(
    withdrawals: Iterable[BridgeWithdrawal], height: int
) -> tuple[tuple[BridgeWithdrawal, ...], tuple[BridgeWithdrawal, ...]]:
    """(pending, final) at `height`: final once `height >= final_at`, as the bridge decides."""
    pending = tuple(w for w in withdrawals if w.final_at > height)
    final = tuple(w for w in withdrawals if w.final_at <= height)
    return pending, final


def get_pending_withdrawals(
    store: Store, root: bytes, addresses: ExchangeAddresses, height: int
) -> tuple[BridgeWithdrawal, ...]:
    """Withdrawals at `root` (committed at `height`) not yet final on L1."""
    return split_withdrawals(get_bridge_withdrawals(store, root, addresses), height)[0]


def get_final_withdrawals(
    store: Store, root: bytes, addresses: ExchangeAddresses, height: int
) -> tuple[BridgeWithdrawal, ...]:
    """Withdrawals at `root` (committed at `height`) already final on L1: irreversible."""
    return split_withdrawals(get_bridge_withdrawals(store, root, addresses), height)[1]


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class PriceUpdated:
    """The oracle posted `price` for `market`."""

    market: int
    price: int


@dataclass(frozen=True)
class Deposited:
    """Perps collateral deposited."""

    account: bytes
    amount: int


@dataclass(frozen=True)
class Withdrawn:
    """Perps collateral withdrawn to the account's balance."""

    account: bytes
    amount: int


@dataclass(frozen=True)
class Traded:
    """A trade at `price`; `new_size` and `entry_price` are the position after it."""

    account: bytes
    market: int
    size_delta: int
    price: int
    new_size: int
    entry_price: int
    realised_pnl: int
    fee: int


@dataclass(frozen=True)
class Liquidated:
    """`liquidator` closed `account`'s position of `size` in `market` at `price`."""

    account: bytes
    market: int
    liquidator: bytes
    size: int
    entry_price: int
    price: int
    realised_pnl: int
    liquidator_fee: int
    penalty: int
    shortfall: int


@dataclass(frozen=True)
class BadDebt:
    """A profit of `amount` the vault could not pay to `account`."""

    account: bytes
    amount: int


@dataclass(frozen=True)
class VaultFunded:
    """`amount` added to the vault."""

    sender: bytes
    amount: int


@dataclass(frozen=True)
class Compensated:
    """`amount` credited from the vault to `account`."""

    account: bytes
    amount: int


@dataclass(frozen=True)
class L1WithdrawalSettled:
    """`amount` of `account`'s L1-final withdrawal sent from perps to `bridge` after a rollback.

    `from_account` came out of the account's collateral, `from_vault` out of the vault.
    """

    account: bytes
    bridge: bytes
    amount: int
    from_account: int
    from_vault: int


@dataclass(frozen=True)
class AccountRestored:
    """`account` set back to a snapshot: its collateral is now `collateral` and it is flat.

    `vault_delta` is the vault's change (old collateral - new collateral). The account's
    restored positions follow as `PositionRestored` events in the same transaction.
    """

    account: bytes
    collateral: int
    vault_delta: int


@dataclass(frozen=True)
class PositionRestored:
    """`account`'s position in `market` set to (`size`, `entry_price`) by a restore."""

    account: bytes
    market: int
    size: int
    entry_price: int


@dataclass(frozen=True)
class FundingRealised:
    """Funding PnL `amount` (+: to the account) settled on `account`'s `market` position;
    of a loss, `shortfall` exceeded the collateral and was forgone by the vault."""

    account: bytes
    market: int
    amount: int
    shortfall: int


@dataclass(frozen=True)
class FundingIndexUpdated:
    """`market`'s funding index set to `index`."""

    market: int
    index: int


@dataclass(frozen=True)
class TradingModeChanged:
    """The perps trading mode is now `mode` (TRADING_MODE_NAMES)."""

    mode: int


@dataclass(frozen=True)
class MarketDepthSet:
    """`market`'s depth (wei of notional per 1 % move) is now `depth`."""

    market: int
    depth: int


@dataclass(frozen=True)
class PriceBandSet:
    """The restricted-mode price band is now `price_band_bps`."""

    price_band_bps: int


@dataclass(frozen=True)
class FlowHalfLifeSet:
    """The trade flow behind the premium now halves every `blocks` blocks."""

    blocks: int


@dataclass(frozen=True)
class BridgeWithdrawalInitiated:
    """A withdrawal to L1 recorded by the bridge at `block_number`."""

    id: int
    account: bytes
    amount: int
    block_number: int


@dataclass(frozen=True)
class DepositCredited:
    """L1 deposit `l1_deposit_id` paid to `account`."""

    l1_deposit_id: int
    account: bytes
    amount: int


ExchangeEvent = (
    PriceUpdated
    | Deposited
    | Withdrawn
    | Traded
    | Liquidated
    | BadDebt
    | VaultFunded
    | Compensated
    | L1WithdrawalSettled
    | AccountRestored
    | PositionRestored
    | FundingRealised
    | FundingIndexUpdated
    | TradingModeChanged
    | MarketDepthSet
    | PriceBandSet
    | FlowHalfLifeSet
    | BridgeWithdrawalInitiated
    | DepositCredited
)

# (contract, event name, record type); the record's fields are named as the event's.
_EVENT_TYPES = (
    ("oracle", "PriceUpdated", PriceUpdated),
    ("perps", "Deposit", Deposited),
    ("perps", "Withdrawal", Withdrawn),
    ("perps", "Trade", Traded),
    ("perps", "Liquidation", Liquidated),
    ("perps", "BadDebt", BadDebt),
    ("perps", "VaultFunded", VaultFunded),
    ("perps", "Compensated", Compensated),
    ("perps", "L1WithdrawalSettled", L1WithdrawalSettled),
    ("perps", "AccountRestored", AccountRestored),
    ("perps", "PositionRestored", PositionRestored),
    ("perps", "FundingRealised", FundingRealised),
    ("perps", "FundingIndexUpdated", FundingIndexUpdated),
    ("perps", "TradingModeChanged", TradingModeChanged),
    ("perps", "MarketDepthSet", MarketDepthSet),
    ("perps", "PriceBandSet", PriceBandSet),
    ("perps", "FlowHalfLifeSet", FlowHalfLifeSet),
    ("bridge", "WithdrawalInitiated", BridgeWithdrawalInitiated),
    ("bridge", "DepositCredited", DepositCredited),
)


def _to_bytes(value: object) -> object:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return bytes.fromhex(value[2:])
    return value


def _decoders(addresses: ExchangeAddresses) -> dict[tuple[bytes, bytes], tuple]:
    decoders = {}
    for contract, event_name, record in _EVENT_TYPES:
        compiled = compile_contract(contract)
        address = getattr(addresses, contract)
        fields = tuple(f for f in record.__dataclass_fields__)
        decoders[(address, event_topic(compiled, event_name))] = (compiled, event_name, record, fields)
    return decoders


def decode_log(
    addresses: ExchangeAddresses, address: bytes, topics: Sequence[int | bytes], data: bytes
) -> ExchangeEvent | None:
    """The typed event of one log, or None for a log this client does not decode."""
    topic_bytes = [t if isinstance(t, bytes) else t.to_bytes(32, "big") for t in topics]
    if not topic_bytes:
        return None
    decoder = _decoders_cached(addresses).get((address, topic_bytes[0]))
    if decoder is None:
        return None
    compiled, event_name, record, fields = decoder
    raw = decode_event(compiled, event_name, topic_bytes, data)
    return record(**{name: _to_bytes(raw[name]) for name in fields})


@functools.cache
def _decoders_cached(addresses: ExchangeAddresses) -> dict:
    return _decoders(addresses)


def decode_events(
    addresses: ExchangeAddresses, receipts: Iterable[ReceiptAPI]
) -> tuple[ExchangeEvent, ...]:
    """Every exchange event in `receipts`, in log order (failed transactions log nothing)."""
    events = []
    for receipt in receipts:
        for log in receipt.logs:
            event = decode_log(addresses, log.address, log.topics, log.data)
            if event is not None:
                events.append(event)
    return tuple(events)


# ---------------------------------------------------------------- what a transaction calls


@functools.lru_cache(maxsize=None)
def _selector(fn_name: str, *types: str) -> bytes:
    return function_signature_to_4byte_selector(f"{fn_name}({','.join(types)})")


def is_price_post(addresses: ExchangeAddresses, tx: SignedTransactionAPI) -> bool:
    """True when `tx` calls the oracle's `post_price` or `post_prices` (read from its calldata)."""
    selectors = (_selector("post_prices", "uint256[]", "uint256[]"),
                 _selector("post_price", "uint256", "uint256"))
    return tx.to == addresses.oracle and bytes(tx.data[:4]) in selectors


def is_funding_post(addresses: ExchangeAddresses, tx: SignedTransactionAPI) -> bool:
    """True when `tx` calls the perps contract's `post_funding` (read from its calldata)."""
    return tx.to == addresses.perps and bytes(tx.data[:4]) == _selector("post_funding", "uint256[]", "int256[]")


def is_liquidation_call(addresses: ExchangeAddresses, tx: SignedTransactionAPI) -> bool:
    """True when `tx` calls the perps contract's `liquidate` (read from its calldata)."""
    return tx.to == addresses.perps and bytes(tx.data[:4]) == _selector("liquidate", "address", "uint256")
