"""Validator keys: deterministic derivation, recoverable signatures, Ethereum addresses."""

from pathlib import Path

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

import validators
from validators.keys import (
    SECP256K1_ORDER,
    KeyDerivationError,
    derive_validator_keys,
    sign,
    verify,
)

KEYS = derive_validator_keys(11, 4)


def test_validators_package_is_ours_not_the_pypi_one():
    assert Path(validators.__file__).resolve().parent == Path(__file__).resolve().parents[2] / "validators"


@given(digest=st.binary(min_size=32, max_size=32), signer=st.integers(0, 3), other=st.integers(0, 3))
@settings(max_examples=25)
def test_a_signature_verifies_only_for_its_key_and_digest(digest, signer, other):
    signature = sign(KEYS[signer], digest)
    assert len(signature) == 65
    assert verify(KEYS[signer].public_key, digest, signature)
    assert verify(KEYS[other].public_key, digest, signature) == (other == signer)
    flipped = bytes([digest[0] ^ 1]) + digest[1:]
    assert not verify(KEYS[signer].public_key, flipped, signature)


def test_derivation_is_deterministic_and_distinct():
    again = derive_validator_keys(11, 4)
    assert [k.private_key for k in again] == [k.private_key for k in KEYS]
    assert len({k.private_key for k in KEYS}) == 4
    assert derive_validator_keys(12, 1)[0].private_key != KEYS[0].private_key
    assert derive_validator_keys(11, 2) == KEYS[:2]


def test_keys_are_in_range_and_addresses_are_ethereum_style():
    for index, key in enumerate(KEYS):
        assert key.index == index
        assert 1 <= int.from_bytes(key.private_key, "big") < SECP256K1_ORDER
        assert len(key.public_key) == 64
        assert key.address == keccak(key.public_key)[-20:]
        assert key.private_key.hex() not in repr(key)


def test_known_key_matches_eth_keys():
    eth_keys = pytest.importorskip("eth_keys")
    key = KEYS[0]
    assert eth_keys.keys.PrivateKey(key.private_key).public_key.to_canonical_address() == key.address


@pytest.mark.parametrize("seed, count", [(-1, 1), (0, -1), (1 << 256, 1)])
def test_bad_seed_or_count_is_a_typed_error(seed, count):
    with pytest.raises(KeyDerivationError) as error:
        derive_validator_keys(seed, count)
    assert (error.value.seed, error.value.count) == (seed, count)


def test_malformed_signatures_do_not_verify():
    digest = keccak(b"x")
    assert not verify(KEYS[0].public_key, digest, b"\x00" * 65)
    assert not verify(KEYS[0].public_key, digest, b"short")
