"""Diff: the accounts and storage slots that differ between two state roots.

Both tries are walked together from the root; wherever the two sides reference the same
node (same hash, or the same inline node) the whole subtree is skipped. The cost therefore
grows with what changed, not with the size of the state.

Trie keys are keccak hashes; a change is named by its address or slot where the store
holds the preimage (execution and genesis record them), and by the hash otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import rlp
from eth.constants import BLANK_ROOT_HASH

from chain.blocks import encode_hex_prefix
from chain.state import Account, decode_account, require_root
from chain.store import Store

_BLANK = b""


@dataclass(frozen=True)
class AccountChange:
    """An account whose leaf differs between the two roots."""

    key: bytes  # keccak(address)
    address: bytes | None
    before: Account
    after: Account


@dataclass(frozen=True)
class SlotChange:
    """A storage slot whose value differs between the two roots."""

    account_key: bytes
    address: bytes | None
    key: bytes  # keccak(slot as 32 bytes)
    slot: int | None
    before: int
    after: int


@dataclass(frozen=True)
class StateDiff:
    """Everything that differs between root `a` and root `b`, in trie-key order."""

    accounts: tuple[AccountChange, ...]
    slots: tuple[SlotChange, ...]

    @property
    def addresses(self) -> tuple[bytes | None, ...]:
        """The changed accounts' addresses (None where no preimage is known)."""
        return tuple(change.address for change in self.accounts)


def diff_roots(store: Store, a: bytes, b: bytes) -> StateDiff:
    """What differs between the states at `a` and `b` (both must be in `store`)."""
    require_root(store, a)
    require_root(store, b)
    accounts: list[AccountChange] = []
    slots: list[SlotChange] = []
    for key, left, right in diff_tries(store, a, b):
        before = decode_account(left)
        after = decode_account(right)
        address = store.get_preimage(key)
        accounts.append(AccountChange(key, address, before, after))
        if before.storage_root != after.storage_root:
            for slot_key, left_slot, right_slot in diff_tries(
                store, before.storage_root, after.storage_root
            ):
                preimage = store.get_preimage(slot_key)
                slots.append(
                    SlotChange(
                        account_key=key,
                        address=address,
                        key=slot_key,
                        slot=None if preimage is None else int.from_bytes(preimage, "big"),
                        before=_decode_slot(left_slot),
                        after=_decode_slot(right_slot),
                    )
                )
    return StateDiff(tuple(accounts), tuple(slots))


def _decode_slot(encoded: bytes) -> int:
    return rlp.decode(encoded, sedes=rlp.sedes.big_endian_int) if encoded else 0


def diff_tries(store: Store, a: bytes, b: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield `(key, value_at_a, value_at_b)` for each key whose value differs (b"" = absent)."""
    ref_a = _BLANK if a == BLANK_ROOT_HASH else a
    ref_b = _BLANK if b == BLANK_ROOT_HASH else b
    for nibbles, left, right in _diff_nodes(store, ref_a, ref_b, ()):
        yield _nibbles_to_bytes(nibbles), left, right


def iterate_trie(store: Store, root: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every `(key, value)` of the trie at `root`: a full scan, for comparison with a diff."""
    ref = _BLANK if root == BLANK_ROOT_HASH else root
    for nibbles, _, value in _diff_nodes(store, _BLANK, ref, ()):
        yield _nibbles_to_bytes(nibbles), value


def _diff_nodes(store: Store, a: object, b: object, path: tuple[int, ...]):
    """Walk the subtrees referenced by `a` and `b` at `path`, skipping identical references."""
    if a == b:
        return
    node_a, node_b = _load(store, a), _load(store, b)
    if _is_leaf_or_blank(node_a) or _is_leaf_or_blank(node_b):
        # One side holds at most one key: compare key by key instead of splitting the leaf
        # into one virtual node per nibble. Every key of the other side differs anyway.
        left = dict(_leaves(store, node_a, path))
        right = dict(_leaves(store, node_b, path))
        for key in sorted(left.keys() | right.keys()):
            value_a, value_b = left.get(key, _BLANK), right.get(key, _BLANK)
            if value_a != value_b:
                yield key, value_a, value_b
        return
    value_a, children_a = _expand(store, node_a)
    value_b, children_b = _expand(store, node_b)
    if value_a != value_b:
        yield path, value_a, value_b
    for nibble in range(16):
        if children_a[nibble] != children_b[nibble]:  # the skip, without a generator per child
            yield from _diff_nodes(store, children_a[nibble], children_b[nibble], path + (nibble,))


_NO_CHILDREN = (_BLANK,) * 16


def _load(store: Store, ref: object) -> list | None:
    """The node a reference points at (a hash is looked up, an inline node is itself)."""
    if ref == _BLANK:
        return None
    return rlp.decode(store[ref]) if isinstance(ref, bytes) and len(ref) == 32 else ref


def _is_leaf_or_blank(node: list | None) -> bool:
    return node is None or (len(node) == 2 and bool(node[0][0] >> 4 & 2))


def _leaves(store: Store, node: list | None, path: tuple[int, ...]):
    """Every (key nibbles, value) below a loaded node."""
    if node is None:
        return
    if len(node) == 17:
        if node[16]:
            yield path, node[16]
        for nibble in range(16):
            yield from _leaves(store, _load(store, node[nibble]), path + (nibble,))
        return
    nibbles, is_leaf = _decode_hex_prefix(node[0])
    if is_leaf:
        yield path + nibbles, node[1]
    else:
        yield from _leaves(store, _load(store, node[1]), path + nibbles)


def _expand(store: Store, node: list) -> tuple[bytes, tuple[object, ...]]:
    """A branch or extension node seen as a branch: (value stored here, 16 child references).

    An extension is split one nibble at a time into virtual nodes; a virtual node is an
    inline list, so two equal ones still compare equal and are skipped.
    """
    if len(node) == 17:
        return node[16], tuple(node[:16])
    nibbles, is_leaf = _decode_hex_prefix(node[0])
    assert not is_leaf and nibbles, "leaves are compared key by key, never expanded"
    rest = node[1] if len(nibbles) == 1 else [encode_hex_prefix(nibbles[1:], is_leaf=False), node[1]]
    children = [_BLANK] * 16
    children[nibbles[0]] = rest
    return _BLANK, tuple(children)


def _decode_hex_prefix(encoded: bytes) -> tuple[tuple[int, ...], bool]:
    flag = encoded[0] >> 4
    nibbles = [n for byte in encoded[1:] for n in (byte >> 4, byte & 0x0F)]
    if flag & 1:
        nibbles.insert(0, encoded[0] & 0x0F)
    return tuple(nibbles), bool(flag & 2)


def _nibbles_to_bytes(nibbles: tuple[int, ...]) -> bytes:
    assert len(nibbles) % 2 == 0, "trie keys are whole bytes"
    return bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))

