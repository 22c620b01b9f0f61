"""Transactions: keys are deterministic, encoding roundtrips, garbage is refused with a typed error."""

import pytest
from hypothesis import given, strategies as st
from eth_keys import keys

from chain.transactions import (
    BASE_CHAIN_ID,
    MalformedTransactionError,
    address_of,
    chain_id_for_fork,
    decode_transaction,
    derive_private_key,
    encode_transaction,
    sign_dynamic_fee,
    sign_legacy,
)

KEY = derive_private_key(5, "account", 0)
TO = b"\x42" * 20


def test_keys_are_deterministic_and_distinct():
    assert derive_private_key(5, "account", 0) == KEY
    others = {derive_private_key(5, "account", 1), derive_private_key(6, "account", 0),
              derive_private_key(5, "validator", 0)}
    assert KEY not in others and len(others) == 3
    assert address_of(KEY) == keys.PrivateKey(KEY).public_key.to_canonical_address()


def test_chain_id_changes_with_the_fork():
    assert chain_id_for_fork(0) == BASE_CHAIN_ID
    assert chain_id_for_fork(3) != chain_id_for_fork(2)


@pytest.mark.parametrize("fork_id", [0, 2])
def test_legacy_roundtrip(fork_id):
    tx = sign_legacy(KEY, nonce=7, to=TO, value=123, data=b"\x01\x02", gas=50_000,
                     gas_price=9, fork_id=fork_id)
    decoded = decode_transaction(encode_transaction(tx))
    assert decoded == tx
    assert (decoded.nonce, decoded.to, decoded.value, decoded.data, decoded.gas, decoded.gas_price) == (
        7, TO, 123, b"\x01\x02", 50_000, 9)
    assert decoded.sender == address_of(KEY)
    assert decoded.chain_id == chain_id_for_fork(fork_id)
    assert decoded.hash == tx.hash


@pytest.mark.parametrize("fork_id", [0, 2])
def test_dynamic_fee_roundtrip(fork_id):
    tx = sign_dynamic_fee(KEY, nonce=1, to=TO, value=5, max_fee_per_gas=11,
                          max_priority_fee_per_gas=3, fork_id=fork_id)
    raw = encode_transaction(tx)
    assert raw[0] == 2  # EIP-2718 envelope of an EIP-1559 transaction
    decoded = decode_transaction(raw)
    assert decoded == tx
    assert (decoded.max_fee_per_gas, decoded.max_priority_fee_per_gas) == (11, 3)
    assert decoded.sender == address_of(KEY)
    assert decoded.chain_id == chain_id_for_fork(fork_id)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00", b"\xff" * 40, b"\xc0", b"\x02\xc0", b"\x02", b"\x80", b"hello world"],
)
def test_garbage_is_malformed(raw):
    with pytest.raises(MalformedTransactionError) as raised:
        decode_transaction(raw)
    assert raised.value.raw == raw


def test_truncated_encoding_is_malformed():
    raw = encode_transaction(sign_legacy(KEY, nonce=0, to=TO, value=1))
    for cut in (1, len(raw) // 2, len(raw) - 1):
        with pytest.raises(MalformedTransactionError):
            decode_transaction(raw[:cut])


@given(st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b"\x02" + b)))
def test_decode_transaction_accepts_or_raises_malformed(raw):
    try:
        decode_transaction(raw)
    except MalformedTransactionError as error:
        assert error.raw == raw


@given(st.data())
def test_a_flipped_byte_never_decodes_to_the_same_signed_transaction(data):
    tx = sign_legacy(KEY, nonce=3, to=TO, value=10, gas_price=1)
    raw = bytearray(encode_transaction(tx))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_transaction(bytes(raw))
    except MalformedTransactionError:
        return
    assert decoded.hash != tx.hash
