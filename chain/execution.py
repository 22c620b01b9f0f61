"""Execution: a block's signed transactions applied to its parent state through py-evm.

All of a block's transactions run on one py-evm state opened at the parent root, and the
state is persisted once at the end: py-evm's `chain.apply_transaction` rebuilds the block's
tries on every call and is ~20x slower. A transaction py-evm refuses (bad signature, wrong
nonce, too little balance, wrong fork) is reverted before it touches anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, MutableMapping, Sequence

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.state import PragueState
from eth_hash.auto import keccak
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError

from chain.blocks import Block, Header, compute_receipts_root, compute_transactions_root, encode_block
from chain.contracts import decode_revert_reason
from chain.errors import InvalidBlockError, InvalidTransactionError
from chain.state import BlockContext, open_state
from chain.store import Store
from chain.transactions import chain_id_for_fork

_STATUS_SUCCESS = b"\x01"
_STATUS_FAILURE = b""


@dataclass(frozen=True)
class ExecutionResult:
    """What executing a block's transactions on its parent state produced."""

    state_root: bytes
    receipts: tuple[ReceiptAPI, ...]
    gas_used: int
    receipts_root: bytes
    # (receipt index, reason) of every reverted transaction: not part of any root, but what
    # a user needs to know when a transaction that had to succeed did not.
    reverts: tuple[tuple[int, str], ...] = ()

    @property
    def failed_count(self) -> int:
        """How many included transactions reverted (they still count: they paid and bumped nonces)."""
        return sum(1 for r in self.receipts if r.state_root == _STATUS_FAILURE)


@dataclass(frozen=True)
class Rejection:
    """A transaction left out of a block being built, and why."""

    transaction: SignedTransactionAPI
    reason: str


@dataclass(frozen=True)
class BuiltBlock:
    """A block a proposer assembled, what executing it gave, and what it left out."""

    block: Block
    result: ExecutionResult
    rejected: tuple[Rejection, ...]


ExecutionCache = MutableMapping[tuple[bytes, bytes], ExecutionResult]
"""(parent state root, the block's encoded bytes) -> result; shared by honest validators."""


def context_for(header: Header) -> BlockContext:
    """The EVM context of a block: its height, timestamp, proposer and fork's chain id."""
    return BlockContext(
        height=header.height,
        timestamp=header.timestamp,
        chain_id=chain_id_for_fork(header.fork_id),
        coinbase=header.proposer,
    )


def _validate_and_apply(state: PragueState, tx: SignedTransactionAPI) -> object:
    """Apply one transaction or raise ValueError with the reason; state untouched on error."""
    if tx.chain_id != state.execution_context.chain_id:
        raise ValueError(
            f"signed for chain id {tx.chain_id}, this fork is {state.execution_context.chain_id}"
        )
    state.lock_changes()
    snapshot = state.snapshot()
    try:
        return state.apply_transaction(tx)
    except (ValidationError, BadSignature) as error:
        state.revert(snapshot)
        raise ValueError(str(error)) from None


def _run(
    store: Store,
    parent_root: bytes,
    context: BlockContext,
    transactions: Iterable[SignedTransactionAPI],
    strict: bool,
) -> tuple[ExecutionResult, list[SignedTransactionAPI], list[Rejection]]:
    state = open_state(store, parent_root, context)
    receipts: list[ReceiptAPI] = []
    included: list[SignedTransactionAPI] = []
    rejected: list[Rejection] = []
    touched: set[bytes] = set()
    reverts: list[tuple[int, str]] = []
    gas_used = 0
    for index, tx in enumerate(transactions):
        try:
            if gas_used + tx.gas > context.gas_limit:
                raise ValueError(f"gas {tx.gas} exceeds what is left of the block's limit")
            computation = _validate_and_apply(state, tx)
        except ValueError as error:
            if strict:
                raise InvalidTransactionError(tx.hash, index, str(error)) from None
            rejected.append(Rejection(tx, str(error)))
            continue
        gas_used += PragueVM.finalize_gas_used(tx, computation)
        status = _STATUS_FAILURE if computation.is_error else _STATUS_SUCCESS
        if computation.is_error:
            output = computation.output
            reverts.append((len(receipts), decode_revert_reason(output) if output else type(computation.error).__name__))
        receipts.append(tx.make_receipt(status, gas_used, computation.get_log_entries()))
        included.append(tx)
        touched.add(tx.sender)
        if tx.to:
            touched.add(tx.to)
    witness = state.persist()
    _record_preimages(store, witness, touched)
    result = ExecutionResult(
        state_root=state.state_root,
        receipts=tuple(receipts),
        gas_used=gas_used,
        receipts_root=compute_receipts_root(receipts),
        reverts=tuple(reverts),
    )
    return result, included, rejected


def _record_preimages(store: Store, witness: object, extra: Iterable[bytes]) -> None:
    """Remember hashed address and slot keys so that diffs can name what they find."""
    addresses = set(witness.accounts_queried) | set(extra)  # type: ignore[attr-defined]
    pairs = [(keccak(a), a) for a in addresses]
    for address in witness.accounts_queried:  # type: ignore[attr-defined]
        for slot in witness.get_slots_queried(address):  # type: ignore[attr-defined]
            key = slot.to_bytes(32, "big")
            pairs.append((keccak(key), key))
    store.put_preimages(sorted(pairs))


def execute_transactions(
    store: Store,
    parent_root: bytes,
    context: BlockContext,
    transactions: Sequence[SignedTransactionAPI],
) -> ExecutionResult:
    """Apply every transaction in order; the first invalid one raises `InvalidTransactionError`."""
    result, _, _ = _run(store, parent_root, context, transactions, strict=True)
    return result


def build_block(
    store: Store,
    parent: Header,
    candidates: Iterable[SignedTransactionAPI],
    *,
    proposer: bytes,
    timestamp: int,
    fork_id: int | None = None,
) -> BuiltBlock:
    """Assemble the next block on `parent`: execute the candidates, keep the valid ones."""
    header = Header(
        height=parent.height + 1,
        parent_hash=parent.hash,
        state_root=parent.state_root,
        proposer=proposer,
        timestamp=timestamp,
        fork_id=parent.fork_id if fork_id is None else fork_id,
    )
    result, included, rejected = _run(
        store, parent.state_root, context_for(header), candidates, strict=False
    )
    header = Header(
        height=header.height,
        parent_hash=header.parent_hash,
        state_root=result.state_root,
        transactions_root=compute_transactions_root(included),
        receipts_root=result.receipts_root,
        proposer=proposer,
        timestamp=timestamp,
        fork_id=header.fork_id,
        gas_used=result.gas_used,
    )
    return BuiltBlock(Block(header, tuple(included)), result, tuple(rejected))


def apply_block(
    store: Store,
    parent_root: bytes,
    block: Block,
    *,
    cache: ExecutionCache | None = None,
) -> ExecutionResult:
    """Re-execute `block` on `parent_root` and check every root its header commits to.

    Raises `InvalidBlockError` if a transaction is invalid or the header's state root,
    transactions root, receipts root or gas disagree with execution. With `cache`, honest
    validators share the result of executing the same block on the same parent.
    """
    # Keyed by the block's full bytes, never its header hash alone: a header can be sent
    # with other transactions, and the memo must not skip the check that would catch it.
    key = (parent_root, encode_block(block)) if cache is not None else None
    if key is not None and key in cache:
        return cache[key]
    header = block.header
    if compute_transactions_root(block.transactions) != header.transactions_root:
        raise InvalidBlockError(header.height, "transactions root does not match its transactions")
    try:
        result = execute_transactions(store, parent_root, context_for(header), block.transactions)
    except InvalidTransactionError as error:
        raise InvalidBlockError(header.height, str(error)) from None
    mismatches = [
        f"{name} 0x{claimed.hex()} != executed 0x{got.hex()}"
        for name, claimed, got in (
            ("state root", header.state_root, result.state_root),
            ("receipts root", header.receipts_root, result.receipts_root),
        )
        if claimed != got
    ]
    if header.gas_used != result.gas_used:
        mismatches.append(f"gas used {header.gas_used} != executed {result.gas_used}")
    if mismatches:
        raise InvalidBlockError(header.height, "; ".join(mismatches))
    if key is not None:
        cache[key] = result
    return result
