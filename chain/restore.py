"""Restore mechanics: full rollback and selective restore (state surgery). Both return a root.

A snapshot is a root: nodes are never pruned, so the state at any committed height is
still whole in the store. Full rollback re-points the head and truncates the block log;
selective restore writes chosen accounts' leaves from a source root into the current
state trie, storage and code included by reference, so it costs O(accounts * log n).
"""

from __future__ import annotations

from typing import Iterable

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.rlp.accounts import Account as _RlpAccount
from eth_hash.auto import keccak
from trie import HexaryTrie

from chain.history import History
from chain.state import get_account, require_root
from chain.store import Store


def rollback(history: History, height: int) -> bytes:
    """Make `height` the head of `history` again; return its state root."""
    history.truncate_above(height)
    return history.head.state_root


def selective_restore(
    store: Store, current_root: bytes, source_root: bytes, addresses: Iterable[bytes]
) -> bytes:
    """Set each listed account back to exactly what it was at `source_root`.

    Balance, nonce, storage and code of the listed accounts come from `source_root`; every
    other account stays as it is at `current_root`. An account absent at the source is
    removed. Returns the new root; `current_root` itself is untouched (nodes are immutable).
    """
    require_root(store, current_root)
    require_root(store, source_root)
    trie = HexaryTrie(store, current_root)
    for address in sorted(set(addresses)):
        source = get_account(store, source_root, address)
        key = keccak(address)
        if source.is_empty and source.storage_root == BLANK_ROOT_HASH:
            if trie.get(key):
                del trie[key]
        else:
            trie[key] = rlp.encode(
                _RlpAccount(source.nonce, source.balance, source.storage_root, source.code_hash)
            )
        store.put_preimages([(key, address)])
    store.commit()
    return trie.root_hash

