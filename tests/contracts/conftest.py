"""A tiny harness for the contract tests: signed transactions on py-evm's Prague state.

It stands alone on purpose (no chain/ execution layer): one `PragueState` over an
`AtomicDB`, an explicit block number and timestamp, gas price 0. Keys are derived
from their index, so every run is byte-for-byte the same.
"""

from dataclasses import dataclass, field

import pytest
from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth.vm.message import Message
from eth_keys import keys
from eth_utils import keccak

from chain.contracts import (
    CompiledContract,
    compile_contract,
    decode_event,
    decode_revert_reason,
    decode_result,
    deployment_code,
    encode_call,
    event_topic,
)

CHAIN_ID = 1
TX_GAS = 10_000_000
BLOCK_GAS_LIMIT = 30_000_000
GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
BLOCK_TIME_S = 2


class TxReverted(Exception):
    """Raised when a transaction the test expected to succeed reverts; carries the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Account:
    """An externally owned account of the harness."""

    key: keys.PrivateKey

    @property
    def address(self) -> bytes:
        return self.key.public_key.to_canonical_address()


@dataclass(frozen=True)
class TxResult:
    """What one transaction did: success, decoded return values, raw logs (address, topics, data)."""

    ok: bool
    returned: tuple
    logs: tuple
    revert_reason: str | None


@dataclass
class Evm:
    """One world state, one block at a time; transactions applied in order."""

    block_number: int = 1
    state: object = field(init=False)
    _accounts_made: int = 0

    def __post_init__(self):
        state_class = PragueVM.get_state_class()
        self.state = state_class(AtomicDB(), self._context(), BLANK_ROOT_HASH)

    def _context(self) -> ExecutionContext:
        return ExecutionContext(
            coinbase=ZERO_ADDRESS,
            timestamp=GENESIS_TIMESTAMP + BLOCK_TIME_S * self.block_number,
            block_number=self.block_number,
            difficulty=0,
            mix_hash=b"\x00" * 32,
            gas_limit=BLOCK_GAS_LIMIT,
            prev_hashes=(),
            chain_id=CHAIN_ID,
            base_fee_per_gas=0,
            excess_blob_gas=0,
        )

    def mine(self, blocks: int = 1) -> None:
        """Move to a later block (the state carries over unchanged)."""
        assert blocks >= 1
        self.block_number += blocks
        self.state.execution_context = self._context()

    def new_account(self, balance_wei: int = 0) -> Account:
        """A fresh EOA with a deterministic key, funded with `balance_wei`."""
        self._accounts_made += 1
        key = keys.PrivateKey(keccak(b"l2sim-test-account-%d" % self._accounts_made))
        account = Account(key)
        self.state.set_balance(account.address, balance_wei)
        return account

    def balance(self, address: bytes) -> int:
        return self.state.get_balance(address)

    def send(self, sender: Account, to: bytes, data: bytes = b"", value: int = 0):
        """Sign and apply one transaction; returns py-evm's computation."""
        nonce = self.state.get_nonce(sender.address)
        unsigned = PragueTransactionBuilder.create_unsigned_transaction(
            nonce=nonce, gas_price=0, gas=TX_GAS, to=to, value=value, data=data
        )
        tx = unsigned.as_signed_transaction(sender.key, CHAIN_ID)
        self.state.lock_changes()
        return self.state.apply_transaction(tx)

    def deploy(self, sender: Account, name: str, *args) -> "Contract":
        """Deploy contract `name` from `sender`; returns a handle bound to its address."""
        computation = self.send(sender, b"", deployment_code(name, *args))
        if computation.is_error:
            raise TxReverted(decode_revert_reason(computation.output))
        return Contract(self, compile_contract(name), computation.msg.storage_address)

    def static_call(self, to: bytes, data: bytes, sender: bytes = ZERO_ADDRESS) -> bytes:
        """Run a message without keeping its effects (an eth_call)."""
        message = Message(
            gas=TX_GAS, to=to, sender=sender, value=0, data=data, code=self.state.get_code(to)
        )
        context = self.state.get_transaction_context_class()(gas_price=0, origin=sender)
        snapshot = self.state.snapshot()
        try:
            computation = self.state.computation_class.apply_message(self.state, message, context)
        finally:
            self.state.revert(snapshot)
        if computation.is_error:
            raise TxReverted(decode_revert_reason(computation.output))
        return computation.output


@dataclass(frozen=True)
class Contract:
    """A deployed contract: `call` for views, `transact` for transactions."""

    evm: Evm
    compiled: CompiledContract
    address: bytes

    def call(self, fn_name: str, *args):
        """A view's return value (unwrapped when it is a single value)."""
        output = self.evm.static_call(self.address, encode_call(self.compiled, fn_name, *args))
        values = decode_result(self.compiled, fn_name, output)
        return values[0] if len(values) == 1 else values

    def call_reverts(self, fn_name: str, *args) -> str:
        """Call a view that must revert; returns the revert reason."""
        with pytest.raises(TxReverted) as caught:
            self.evm.static_call(self.address, encode_call(self.compiled, fn_name, *args))
        return caught.value.reason

    def transact(self, sender: Account, fn_name: str, *args, value: int = 0, expect_ok: bool = True) -> TxResult:
        """Send a transaction; raises TxReverted on revert unless expect_ok is False."""
        data = encode_call(self.compiled, fn_name, *args)
        computation = self.evm.send(sender, self.address, data, value)
        logs = tuple(computation.get_log_entries())
        if computation.is_error:
            result = TxResult(False, (), logs, decode_revert_reason(computation.output))
            if expect_ok:
                raise TxReverted(result.revert_reason)
            return result
        return TxResult(True, decode_result(self.compiled, fn_name, computation.output), logs, None)

    def reverts(self, sender: Account, fn_name: str, *args, value: int = 0) -> str:
        """Send a transaction that must revert; returns the revert reason."""
        result = self.transact(sender, fn_name, *args, value=value, expect_ok=False)
        assert not result.ok, f"{fn_name}{args} did not revert"
        return result.revert_reason

    def events(self, result: TxResult, event_name: str) -> list[dict]:
        """The `event_name` logs this contract emitted in `result`, decoded."""
        topic = event_topic(self.compiled, event_name)
        found = []
        for address, topics, data in result.logs:
            topic_bytes = [t.to_bytes(32, "big") for t in topics]
            if address == self.address and topic_bytes[0] == topic:
                found.append(decode_event(self.compiled, event_name, topic_bytes, data))
        return found


USD = 10**18  # wei per USD of collateral
BASE = 10**18  # size units per whole base asset (1 BTC = 10**18)
BTC, ETH, SOL = 0, 1, 2
START_PRICES_USD = {BTC: 100_000, ETH: 4_000, SOL: 200}
DEFAULT_PERPS_PARAMS = {
    "num_markets": 3,
    "initial_margin_bps": 1_000,  # 10 %
    "maintenance_margin_bps": 500,  # 5 %
    "max_leverage": 10,
    "trading_fee_bps": 5,
    "liquidation_fee_bps": 100,  # 1 % of notional to the liquidator
    "liquidation_penalty_bps": 100,  # 1 % of notional to the vault
}


@dataclass(frozen=True)
class Exchange:
    """Oracle + perps deployed on one Evm, with the owner and reporter accounts."""

    evm: Evm
    owner: Account
    reporter: Account
    oracle: Contract
    perps: Contract

    def set_price_usd(self, market: int, price_usd: int) -> None:
        self.oracle.transact(self.reporter, "post_price", market, price_usd * USD)

    def trader(self, deposit_usd: int = 0, wallet_usd: int = 1_000_000) -> Account:
        """A funded EOA, with `deposit_usd` already deposited as collateral."""
        account = self.evm.new_account(wallet_usd * USD)
        if deposit_usd:
            self.perps.transact(account, "deposit", value=deposit_usd * USD)
        return account


def deploy_exchange(vault_usd: int = 1_000_000, **overrides) -> Exchange:
    """A fresh Evm with the oracle priced at START_PRICES_USD and the perps vault funded."""
    evm = Evm()
    owner = evm.new_account(100_000_000 * USD)
    reporter = evm.new_account()
    oracle = evm.deploy(owner, "oracle", reporter.address)
    params = {**DEFAULT_PERPS_PARAMS, **overrides}
    perps = evm.deploy(owner, "perps", oracle.address, *params.values())
    exchange = Exchange(evm, owner, reporter, oracle, perps)
    for market, price_usd in START_PRICES_USD.items():
        exchange.set_price_usd(market, price_usd)
    if vault_usd:
        perps.transact(owner, "fund_vault", value=vault_usd * USD)
    return exchange


@pytest.fixture
def evm() -> Evm:
    return Evm()


@pytest.fixture
def exchange() -> Exchange:
    return deploy_exchange()


@pytest.fixture
def make_exchange():
    """Factory: make_exchange(vault_usd=..., **perps_params) -> a fresh Exchange."""
    return deploy_exchange


def check_identities(exchange) -> None:
    """Both conservation identities of the perps contract, to the wei."""
    perps = exchange.perps
    balance = exchange.evm.balance(perps.address)
    assert balance == perps.call("accounted_balance")
    assert balance == perps.call("total_collateral") + perps.call("vault_balance") + perps.call("fees_accrued")
    assert balance == (
        perps.call("total_deposited")
        + perps.call("total_vault_funded")
        - perps.call("total_withdrawn")
        - perps.call("total_fees_collected")
        - perps.call("total_l1_settled")
    )
