"""Diff: what differs between two roots, checked against a full scan of both tries."""

import pytest
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.iter import NodeIterator

from chain.diff import diff_roots, diff_tries, iterate_trie
from chain.errors import UnknownRootError
from chain.execution import build_block
from chain.restore import selective_restore
from chain.state import decode_account
from chain.transactions import sign_legacy

PROPOSER = b"\x0d" * 20
STRANGER = b"\x5e" * 20


def _scan(store, root):
    return dict(iterate_trie(store, root))


def brute_force_diff(store, a, b):
    """Accounts and slots that differ, from a full scan of both state tries and storage tries."""
    left, right = _scan(store, a), _scan(store, b)
    accounts, slots = {}, {}
    for key in sorted(set(left) | set(right)):
        before, after = decode_account(left.get(key, b"")), decode_account(right.get(key, b""))
        if left.get(key) == right.get(key):
            continue
        accounts[key] = (before, after)
        storage_a, storage_b = _scan(store, before.storage_root), _scan(store, after.storage_root)
        for slot_key in sorted(set(storage_a) | set(storage_b)):
            x = rlp.decode(storage_a[slot_key], sedes=rlp.sedes.big_endian_int) if slot_key in storage_a else 0
            y = rlp.decode(storage_b[slot_key], sedes=rlp.sedes.big_endian_int) if slot_key in storage_b else 0
            if x != y:
                slots[(key, slot_key)] = (x, y)
    return accounts, slots


def assert_diff_matches_scan(store, a, b):
    diff = diff_roots(store, a, b)
    accounts, slots = brute_force_diff(store, a, b)
    assert {c.key: (c.before, c.after) for c in diff.accounts} == accounts
    assert {(s.account_key, s.key): (s.before, s.after) for s in diff.slots} == slots
    assert [c.key for c in diff.accounts] == sorted(accounts)  # trie-key order
    for change in diff.accounts:  # every change is named by a preimage the store recorded
        assert change.address is not None and keccak(change.address) == change.key
    for change in diff.slots:
        assert change.slot is not None and keccak(change.slot.to_bytes(32, "big")) == change.key
    return diff


@pytest.fixture
def changed(funded):
    """Genesis, then a block with transfers (one to a new account) and storage writes."""
    alice, bob = funded.addresses[:2]
    key = funded.keys[0]
    txs = [
        sign_legacy(key, nonce=0, to=bob, value=50, gas_price=1),
        sign_legacy(key, nonce=1, to=STRANGER, value=7),
        sign_legacy(key, nonce=2, to=funded.contract, data=funded.sstore_call(9, 99), gas=100_000),
        sign_legacy(key, nonce=3, to=funded.contract, data=funded.sstore_call(1, 0), gas=100_000),
        sign_legacy(key, nonce=4, to=funded.contract, data=funded.sstore_call(2, 8), gas=100_000),
    ]
    built = build_block(funded.store, funded.genesis.header, txs, proposer=PROPOSER, timestamp=1)
    assert built.rejected == () and built.result.failed_count == 0
    return built.block.header.state_root


def test_iterate_trie_agrees_with_py_trie(funded, changed):
    # Genesis: 4 funded, the contract and the deployer; the block adds the stranger and proposer.
    for root, count in ((funded.root, 6), (changed, 8)):
        expected = dict(NodeIterator(HexaryTrie(funded.store, root)).items())
        assert _scan(funded.store, root) == expected
        assert len(expected) == count
    assert _scan(funded.store, BLANK_ROOT_HASH) == {}


def test_diff_of_a_block_matches_a_full_scan(funded, changed):
    diff = assert_diff_matches_scan(funded.store, funded.root, changed)
    alice, bob = funded.addresses[:2]
    assert set(diff.addresses) == {alice, bob, STRANGER, PROPOSER, funded.contract}
    assert {(s.slot, s.before, s.after) for s in diff.slots} == {(9, 0, 99), (1, 5, 0), (2, 7, 8)}
    new = {c.address: c for c in diff.accounts}
    assert new[STRANGER].before.is_empty and new[STRANGER].after.balance == 7


def test_diff_is_antisymmetric_and_empty_on_itself(funded, changed):
    forward = diff_roots(funded.store, funded.root, changed)
    backward = assert_diff_matches_scan(funded.store, changed, funded.root)
    assert [(c.key, c.after, c.before) for c in backward.accounts] == [
        (c.key, c.before, c.after) for c in forward.accounts]
    assert [(s.key, s.after, s.before) for s in backward.slots] == [
        (s.key, s.before, s.after) for s in forward.slots]
    same = diff_roots(funded.store, changed, changed)
    assert same.accounts == () and same.slots == ()


def test_diff_after_a_selective_restore_of_storage(funded, changed):
    restored = selective_restore(funded.store, changed, funded.root, [funded.contract, STRANGER])
    diff = assert_diff_matches_scan(funded.store, changed, restored)
    assert set(diff.addresses) == {funded.contract, STRANGER}
    assert {(s.slot, s.before, s.after) for s in diff.slots} == {(9, 99, 0), (1, 0, 5), (2, 8, 7)}
    assert_diff_matches_scan(funded.store, funded.root, restored)


def test_diff_against_the_empty_state_lists_every_account(funded, changed):
    diff = assert_diff_matches_scan(funded.store, BLANK_ROOT_HASH, changed)
    assert len(diff.accounts) == 8
    assert {s.slot for s in diff.slots} == {2, 9}


def test_diff_tries_yields_only_differences(funded, changed):
    left, right = _scan(funded.store, funded.root), _scan(funded.store, changed)
    expected = {k for k in set(left) | set(right) if left.get(k) != right.get(k)}
    found = list(diff_tries(funded.store, funded.root, changed))
    assert {k for k, _, _ in found} == expected
    for key, a, b in found:
        assert (a, b) == (left.get(key, b""), right.get(key, b""))


def test_diff_refuses_unknown_roots(funded):
    with pytest.raises(UnknownRootError):
        diff_roots(funded.store, funded.root, keccak(b"nowhere"))
    with pytest.raises(UnknownRootError):
        diff_roots(funded.store, keccak(b"nowhere"), funded.root)
