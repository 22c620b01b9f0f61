"""Signed transactions: legacy (EIP-155) and EIP-1559, keys, encoding and decoding.

The chain id in every signature is derived from the fork id (`chain_id_for_fork`), so a
transaction signed before an emergency upgrade names the old fork and cannot be replayed
on the new one: the signing domain changes with the fork, as EIP-155 did after the DAO fork.
"""

from __future__ import annotations

from eth.abc import SignedTransactionAPI
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_hash.auto import keccak
from eth_keys import keys

from chain.errors import ChainError

BASE_CHAIN_ID = 7_100_000
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEFAULT_GAS = 21_000
CALL_GAS = 2_000_000


class MalformedTransactionError(ChainError):
    """Raised when bytes do not decode to a signed transaction."""

    def __init__(self, raw: bytes, reason: str):
        super().__init__(f"malformed transaction 0x{raw[:16].hex()}...: {reason}")
        self.raw = raw
        self.reason = reason


def chain_id_for_fork(fork_id: int) -> int:
    """The EIP-155 chain id that transactions on fork `fork_id` must sign."""
    return BASE_CHAIN_ID + fork_id


def derive_private_key(seed: int, label: str, index: int) -> bytes:
    """A deterministic secp256k1 private key for (seed, label, index)."""
    material = f"l2sim/{seed}/{label}/{index}".encode()
    for counter in range(256):  # bounded: a keccak outside the curve order is ~2^-128 likely
        candidate = keccak(material + counter.to_bytes(1, "big"))
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_N:
            return candidate
    raise AssertionError("no valid key in 256 tries")  # pragma: no cover


def address_of(private_key: bytes) -> bytes:
    """The 20-byte address of a private key."""
    return keys.PrivateKey(private_key).public_key.to_canonical_address()


def sign_legacy(
    private_key: bytes,
    *,
    nonce: int,
    to: bytes,
    value: int = 0,
    data: bytes = b"",
    gas: int = DEFAULT_GAS,
    gas_price: int = 0,
    fork_id: int = 0,
) -> SignedTransactionAPI:
    """A legacy EIP-155 transaction signed for fork `fork_id`."""
    unsigned = PragueTransactionBuilder.create_unsigned_transaction(
        nonce=nonce, gas_price=gas_price, gas=gas, to=to, value=value, data=data
    )
    return unsigned.as_signed_transaction(keys.PrivateKey(private_key), chain_id_for_fork(fork_id))


def sign_dynamic_fee(
    private_key: bytes,
    *,
    nonce: int,
    to: bytes,
    value: int = 0,
    data: bytes = b"",
    gas: int = DEFAULT_GAS,
    max_fee_per_gas: int = 0,
    max_priority_fee_per_gas: int = 0,
    fork_id: int = 0,
) -> SignedTransactionAPI:
    """An EIP-1559 transaction signed for fork `fork_id`."""
    unsigned = PragueTransactionBuilder.new_unsigned_dynamic_fee_transaction(
        chain_id=chain_id_for_fork(fork_id),
        nonce=nonce,
        max_priority_fee_per_gas=max_priority_fee_per_gas,
        max_fee_per_gas=max_fee_per_gas,
        gas=gas,
        to=to,
        value=value,
        data=data,
        access_list=(),
    )
    return unsigned.as_signed_transaction(keys.PrivateKey(private_key))


def encode_transaction(tx: SignedTransactionAPI) -> bytes:
    """The canonical bytes of a signed transaction (typed envelope for EIP-1559)."""
    return tx.encode()


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    """Decode canonical bytes back into a signed transaction."""
    try:
        return PragueTransactionBuilder.decode(raw)
    except Exception as error:  # py-evm raises several rlp and validation types here
        raise MalformedTransactionError(raw, f"{type(error).__name__}: {error}") from None
