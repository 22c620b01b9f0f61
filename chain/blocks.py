"""Frozen block headers and blocks, their RLP encoding, keccak hashes and trie roots."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Sequence

import rlp
from rlp.sedes import Binary, big_endian_int
from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak

from chain.errors import ChainError
from chain.state import ZERO_ADDRESS
from chain.transactions import MalformedTransactionError, decode_transaction, encode_transaction

ZERO_HASH = b"\x00" * 32


class MalformedBlockError(ChainError):
    """Raised when bytes do not decode to a block."""

    def __init__(self, raw: bytes, reason: str):
        super().__init__(f"malformed block ({len(raw)} bytes): {reason}")
        self.raw = raw
        self.reason = reason


class Header(rlp.Serializable):
    """A block header, one RLP field list (encoding order). `fork_id` changes at every
    emergency upgrade; it is part of the hash. Immutable: `copy(**changes)` for a variant."""

    fields = [
        ("height", big_endian_int),
        ("parent_hash", Binary.fixed_length(32)),
        ("state_root", Binary.fixed_length(32)),
        ("transactions_root", Binary.fixed_length(32)),
        ("receipts_root", Binary.fixed_length(32)),
        ("proposer", Binary.fixed_length(20)),
        ("timestamp", big_endian_int),
        ("fork_id", big_endian_int),
        ("gas_used", big_endian_int),
    ]

    def __init__(self, height: int, parent_hash: bytes, state_root: bytes,
                 transactions_root: bytes = BLANK_ROOT_HASH, receipts_root: bytes = BLANK_ROOT_HASH,
                 proposer: bytes = ZERO_ADDRESS, timestamp: int = 0, fork_id: int = 0, gas_used: int = 0):
        super().__init__(height, parent_hash, state_root, transactions_root, receipts_root, proposer, timestamp,
                         fork_id, gas_used)

    @property
    def hash(self) -> bytes:
        """keccak of the header's RLP: the block's identity."""
        return _header_hash(rlp.encode(self))


@functools.lru_cache(maxsize=1 << 14)
def _header_hash(encoded: bytes) -> bytes:
    return keccak(encoded)


HEADER_FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in Header._meta.fields)


@dataclass(frozen=True)
class Block:
    """A header and the signed transactions it commits to."""

    header: Header
    transactions: tuple[SignedTransactionAPI, ...] = field(default=())

    @property
    def hash(self) -> bytes:
        """The header's hash."""
        return self.header.hash

    @property
    def height(self) -> int:
        """The header's height."""
        return self.header.height


def compute_transactions_root(transactions: Sequence[SignedTransactionAPI]) -> bytes:
    """Root of the trie `rlp(index) -> encoded transaction`, as Ethereum builds it."""
    return _index_trie_root([encode_transaction(tx) for tx in transactions])


def compute_receipts_root(receipts: Sequence[ReceiptAPI]) -> bytes:
    """Root of the trie `rlp(index) -> encoded receipt`."""
    return _index_trie_root([receipt.encode() for receipt in receipts])


def _index_trie_root(items: Sequence[bytes]) -> bytes:
    if not items:
        return BLANK_ROOT_HASH
    return compute_trie_root({rlp.encode(index): item for index, item in enumerate(items)})


def compute_trie_root(pairs: dict[bytes, bytes]) -> bytes:
    """Root of the hexary Merkle Patricia trie holding `pairs`, built in one pass in memory.

    The same root `trie.HexaryTrie` gives (a test holds them side by side), without a node
    store and its per-insert rewrites: blocks build two of these on every execution. It follows
    `patricialize` in ethereum/execution-specs.
    """
    if not pairs:
        return BLANK_ROOT_HASH
    nibbled = {tuple(n for byte in key for n in (byte >> 4, byte & 0x0F)): value for key, value in pairs.items()}
    return keccak(rlp.encode(_patricialize(nibbled, 0)))


def _patricialize(pairs: dict[tuple[int, ...], bytes], level: int) -> list | bytes:
    """The node (as an RLP structure) holding `pairs`, whose keys agree up to `level`."""
    if not pairs:
        return b""
    first = next(iter(pairs))
    if len(pairs) == 1:
        return [encode_hex_prefix(first[level:], is_leaf=True), pairs[first]]
    rest = first[level:]
    shared = len(rest)
    for key in pairs:  # bounded by the number of keys
        tail = key[level:]
        shared = min(shared, next((i for i, (a, b) in enumerate(zip(rest, tail)) if a != b), min(len(rest), len(tail))))
        if shared == 0:
            break
    if shared > 0:
        return [encode_hex_prefix(rest[:shared], is_leaf=False), _reference(_patricialize(pairs, level + shared))]
    branches: list[dict[tuple[int, ...], bytes]] = [{} for _ in range(16)]
    value = b""
    for key, item in pairs.items():
        if len(key) == level:
            value = item
        else:
            branches[key[level]][key] = item
    return [_reference(_patricialize(branch, level + 1)) for branch in branches] + [value]


def _reference(node: list | bytes) -> list | bytes:
    """How a parent refers to `node`: inline when its RLP is under 32 bytes, else by hash."""
    if node == b"":
        return b""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def encode_hex_prefix(nibbles: tuple[int, ...], *, is_leaf: bool) -> bytes:
    """A trie node's path in hex-prefix form, flagged as a leaf's or an extension's."""
    flag = 2 if is_leaf else 0
    if len(nibbles) % 2:
        nibbles = (flag + 1,) + nibbles
    else:
        nibbles = (flag, 0) + nibbles
    return bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def encode_block(block: Block) -> bytes:
    """RLP of `[header fields, [encoded transactions]]`."""
    return rlp.encode([block.header, [encode_transaction(tx) for tx in block.transactions]])


def decode_block(raw: bytes) -> Block:
    """Decode `encode_block` output; raises `MalformedBlockError` on anything else."""
    try:
        header_items, tx_items = rlp.decode(raw)
        header = Header.deserialize(header_items)
        transactions = tuple(decode_transaction(bytes(item)) for item in tx_items)
    except (
        rlp.DecodingError, rlp.DeserializationError, ValueError, TypeError, MalformedTransactionError
    ) as error:
        raise MalformedBlockError(raw, str(error)) from None
    return Block(header, transactions)


def with_header(block: Block, **changes: object) -> Block:
    """A copy of `block` with header fields replaced (used by tests and Byzantine proposers)."""
    return Block(block.header.copy(**changes), block.transactions)
