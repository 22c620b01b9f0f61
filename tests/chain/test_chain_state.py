"""State reads at a root: accounts, balances, nonces, code and storage; unknown roots are refused."""

import pytest
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth_hash.auto import keccak

from chain.errors import UnknownRootError
from chain.genesis import deployer_key_for
from chain.state import (
    EMPTY_ACCOUNT,
    get_account,
    get_balance,
    get_code,
    get_nonce,
    get_storage,
    open_state,
)
from chain.transactions import address_of


def test_reads_match_the_genesis_spec(funded):
    store, root = funded.store, funded.root
    for address in funded.addresses:
        account = get_account(store, root, address)
        assert (account.balance, account.nonce) == (funded.balance_wei, 0)
        assert account.code_hash == EMPTY_SHA3 and account.storage_root == BLANK_ROOT_HASH
        assert get_balance(store, root, address) == funded.balance_wei
        assert get_nonce(store, root, address) == 0
        assert get_code(store, root, address) == b""
    assert get_balance(store, root, address_of(deployer_key_for(funded.seed))) == 10**30


def test_contract_reads_code_and_storage(funded):
    store, root = funded.store, funded.root
    assert get_code(store, root, funded.contract) == funded.contract_code
    assert get_account(store, root, funded.contract).code_hash == keccak(funded.contract_code)
    assert get_nonce(store, root, funded.contract) == 1  # code gets a nonce (EIP-161)
    for slot, value in funded.contract_storage:
        assert get_storage(store, root, funded.contract, slot) == value
    assert get_storage(store, root, funded.contract, 99) == 0


def test_absent_account_reads_as_empty(funded):
    absent = b"\x99" * 20
    assert get_account(funded.store, funded.root, absent) == EMPTY_ACCOUNT
    assert EMPTY_ACCOUNT.is_empty
    assert get_storage(funded.store, funded.root, absent, 1) == 0


def test_reads_agree_with_py_evm_state(funded):
    state = open_state(funded.store, funded.root)
    for address in funded.addresses + (funded.contract,):
        assert state.get_balance(address) == get_balance(funded.store, funded.root, address)
        assert state.get_nonce(address) == get_nonce(funded.store, funded.root, address)
        assert state.get_code(address) == get_code(funded.store, funded.root, address)
    assert state.get_storage(funded.contract, 2) == 7


def test_blank_root_opens_empty(funded):
    assert get_account(funded.store, BLANK_ROOT_HASH, funded.addresses[0]) == EMPTY_ACCOUNT
    assert open_state(funded.store, BLANK_ROOT_HASH).state_root == BLANK_ROOT_HASH


@pytest.mark.parametrize("read", [get_account, get_balance, get_nonce, get_code])
def test_unknown_root_is_refused(funded, read):
    unknown = keccak(b"no such root")
    with pytest.raises(UnknownRootError) as raised:
        read(funded.store, unknown, funded.addresses[0])
    assert raised.value.root == unknown


def test_unknown_root_is_refused_by_open_state_and_storage(funded):
    unknown = keccak(b"no such root")
    with pytest.raises(UnknownRootError):
        open_state(funded.store, unknown)
    with pytest.raises(UnknownRootError):
        get_storage(funded.store, unknown, funded.contract, 1)
