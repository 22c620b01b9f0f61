"""Restore: a rollback returns the recorded root; a selective restore rewrites only the listed accounts."""

import pytest
from eth_hash.auto import keccak

from chain.errors import UnknownRootError
from chain.execution import build_block
from chain.genesis import deployer_key_for
from chain.history import History
from chain.restore import rollback, selective_restore
from chain.state import EMPTY_ACCOUNT, get_account, get_storage
from chain.transactions import address_of, sign_legacy

PROPOSER = b"\x0e" * 20
STRANGER = b"\x5f" * 20


@pytest.fixture
def history(funded):
    """Four blocks: transfers among the funded keys, a new account, storage writes."""
    history = History.create(funded.store, funded.genesis.header)
    a = funded.addresses
    for height in range(1, 5):
        txs = [
            sign_legacy(funded.keys[0], nonce=height - 1, to=a[1], value=height, gas_price=1),
            sign_legacy(funded.keys[2], nonce=height - 1, to=a[3], value=10 * height),
            sign_legacy(funded.keys[1], nonce=height - 1, to=funded.contract,
                        data=funded.sstore_call(height, height * 11), gas=100_000),
        ]
        if height == 3:
            txs.append(sign_legacy(funded.keys[3], nonce=0, to=STRANGER, value=123))
        built = build_block(funded.store, history.head, txs, proposer=PROPOSER, timestamp=height)
        assert built.rejected == ()
        history.append(built.block)
    return history


def _everyone(funded):
    return funded.addresses + (funded.contract, STRANGER, PROPOSER, address_of(deployer_key_for(funded.seed)))


@pytest.mark.parametrize("height", [0, 1, 3, 4])
def test_rollback_returns_the_recorded_root(funded, history, height):
    recorded = [history.root_at(h) for h in range(5)]
    accounts = [get_account(funded.store, recorded[height], a) for a in _everyone(funded)]
    root = rollback(history, height)
    assert root == recorded[height]
    assert history.height == height and history.head.state_root == root
    assert [get_account(funded.store, root, a) for a in _everyone(funded)] == accounts
    assert History.open(funded.store).head == history.head


@pytest.mark.parametrize("source_height", [0, 1, 2])
def test_selective_restore_sets_listed_accounts_and_keeps_the_rest(funded, history, source_height):
    current, source = history.root_at(4), history.root_at(source_height)
    listed = [funded.addresses[0], funded.addresses[3], funded.contract, STRANGER]
    restored = selective_restore(funded.store, current, source, listed)
    for address in _everyone(funded):
        expected_from = source if address in listed else current
        assert get_account(funded.store, restored, address) == get_account(
            funded.store, expected_from, address)
    # The stranger did not exist before height 3, so restoring it removes it.
    assert get_account(funded.store, restored, STRANGER) == EMPTY_ACCOUNT
    assert keccak(STRANGER) not in dict(_keys(funded.store, restored))
    for slot in range(1, 5):
        assert get_storage(funded.store, restored, funded.contract, slot) == get_storage(
            funded.store, source, funded.contract, slot)
    assert history.root_at(4) == current  # the current root is untouched


def _keys(store, root):
    from chain.diff import iterate_trie

    return iterate_trie(store, root)


def test_selective_restore_of_nothing_or_of_the_same_root_is_the_identity(funded, history):
    current = history.root_at(4)
    assert selective_restore(funded.store, current, history.root_at(1), []) == current
    assert selective_restore(funded.store, current, current, _everyone(funded)) == current


def test_selective_restore_of_everyone_is_the_source_root(funded, history):
    restored = selective_restore(funded.store, history.root_at(4), history.root_at(2), _everyone(funded))
    assert restored == history.root_at(2)


def test_selective_restore_refuses_unknown_roots(funded, history):
    with pytest.raises(UnknownRootError):
        selective_restore(funded.store, keccak(b"nowhere"), history.root_at(0), [STRANGER])
    with pytest.raises(UnknownRootError):
        selective_restore(funded.store, history.root_at(0), keccak(b"nowhere"), [STRANGER])
