"""World state: py-evm's Prague state opened at any root over a node store, and account reads.

A state is cheap to open (it is a root and a store), so reading history or restoring a
snapshot never copies anything: open a new state on the old root.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account as _RlpAccount
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague.state import PragueState
from eth.vm.message import Message
from eth_hash.auto import keccak
from trie import HexaryTrie

import chain.nibbles  # noqa: F401  (installs py-trie's memoised key conversions)
from chain.computation import AnalysedState
from chain.errors import ChainError, UnknownRootError
from chain.store import Store

ZERO_ADDRESS = b"\x00" * 20
BLOCK_GAS_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class BlockContext:
    """What the EVM sees of the block it runs in. Timestamps are virtual, never the wall clock."""

    height: int
    timestamp: int
    chain_id: int
    coinbase: bytes = ZERO_ADDRESS
    gas_limit: int = BLOCK_GAS_LIMIT
    base_fee_per_gas: int = 0


@dataclass(frozen=True)
class Account:
    """An account as the state trie holds it."""

    nonce: int
    balance: int
    storage_root: bytes
    code_hash: bytes

    @property
    def is_empty(self) -> bool:
        """True for an account with no nonce, balance or code (EIP-161)."""
        return self.nonce == 0 and self.balance == 0 and self.code_hash == EMPTY_SHA3


EMPTY_ACCOUNT = Account(0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)


def is_known_root(store: Store, root: bytes) -> bool:
    """True if the store holds the trie node behind `root` (or it is the empty trie)."""
    return root == BLANK_ROOT_HASH or root in store


def require_root(store: Store, root: bytes) -> None:
    """Raise `UnknownRootError` unless the store holds `root`."""
    if not is_known_root(store, root):
        raise UnknownRootError(root)


def open_state(store: Store, root: bytes, context: BlockContext | None = None) -> PragueState:
    """Open py-evm's Prague state at `root` over `store` (jump analysis cached per code)."""
    require_root(store, root)
    if context is None:
        context = BlockContext(height=0, timestamp=0, chain_id=1)
    execution_context = ExecutionContext(
        coinbase=context.coinbase,
        timestamp=context.timestamp,
        block_number=context.height,
        difficulty=0,
        mix_hash=b"\x00" * 32,
        gas_limit=context.gas_limit,
        prev_hashes=(),
        chain_id=context.chain_id,
        base_fee_per_gas=context.base_fee_per_gas,
        excess_blob_gas=0,
    )
    return AnalysedState(store, execution_context, root)


def get_account(store: Store, root: bytes, address: bytes) -> Account:
    """The account at `address` in the state at `root` (`EMPTY_ACCOUNT` if absent)."""
    require_root(store, root)
    encoded = HexaryTrie(store, root)[keccak(address)]
    return decode_account(encoded)


def decode_account(encoded: bytes) -> Account:
    """Decode an account leaf of the state trie (empty bytes mean no account)."""
    if not encoded:
        return EMPTY_ACCOUNT
    account = rlp.decode(encoded, sedes=_RlpAccount)
    return Account(account.nonce, account.balance, account.storage_root, account.code_hash)


def get_balance(store: Store, root: bytes, address: bytes) -> int:
    """Balance in wei of `address` at `root`."""
    return get_account(store, root, address).balance


def get_nonce(store: Store, root: bytes, address: bytes) -> int:
    """Nonce of `address` at `root`."""
    return get_account(store, root, address).nonce


def get_code(store: Store, root: bytes, address: bytes) -> bytes:
    """Code of `address` at `root` (empty for an externally owned account)."""
    code_hash = get_account(store, root, address).code_hash
    return b"" if code_hash == EMPTY_SHA3 else store[code_hash]


def get_storage(store: Store, root: bytes, address: bytes, slot: int) -> int:
    """Value of storage `slot` of `address` at `root` (0 if unset)."""
    storage_root = get_account(store, root, address).storage_root
    return read_storage_slot(store, storage_root, slot)


def read_storage_slot(store: Store, storage_root: bytes, slot: int) -> int:
    """Value of `slot` in the storage trie at `storage_root`."""
    if storage_root == BLANK_ROOT_HASH:
        return 0
    encoded = HexaryTrie(store, storage_root)[keccak(slot.to_bytes(32, "big"))]
    return rlp.decode(encoded, sedes=rlp.sedes.big_endian_int) if encoded else 0


class CallRevertedError(ChainError):
    """Raised when a read-only call reverts or runs out of gas."""

    def __init__(self, to: bytes, reason: str):
        super().__init__(f"call to 0x{to.hex()} failed: {reason}")
        self.to = to
        self.reason = reason


VIEW_GAS = 50_000_000


def call_view(
    store: Store,
    root: bytes,
    to: bytes,
    data: bytes,
    *,
    sender: bytes = ZERO_ADDRESS,
    context: BlockContext | None = None,
) -> bytes:
    """Run a read-only message call at `root` and return its output; nothing is persisted.

    This is how clients read contract views (equity, margin, prices) at any height.
    """
    state = open_state(store, root, context)
    message = Message(
        gas=VIEW_GAS, to=to, sender=sender, value=0, data=data, code=state.get_code(to)
    )
    transaction_context = state.get_transaction_context_class()(gas_price=0, origin=sender)
    computation = state.get_computation(message, transaction_context).apply_message(
        state, message, transaction_context
    )
    if computation.is_error:
        raise CallRevertedError(to, repr(computation.error))
    return computation.output
