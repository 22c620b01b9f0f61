"""secp256k1 validator keys derived deterministically from a seed.

Key i is keccak(b"l2sim-validator" || seed || i) reduced into [1, n-1]. The primitives
(sign, recover) live in `consensus.messages` so that the consensus layer can verify
certificates without importing this one; this module names keys and derives them.
"""

from __future__ import annotations

from dataclasses import dataclass

import chain  # noqa: F401  (selects the fast keccak backend before eth_hash loads)
from coincurve import PrivateKey
from eth_hash.auto import keccak

from consensus.messages import (
    SECP256K1_ORDER,
    SignedMessage,
    compute_address,
    is_valid_signature,
    sign_digest,
    sign_message,
)

KEY_DOMAIN = b"l2sim-validator"
MAX_VALIDATORS = 100_000


class ValidatorError(Exception):
    """Raised when the validators layer is given input it cannot accept (base class)."""


class KeyDerivationError(ValidatorError):
    """Raised when a key seed is negative or a validator count is out of range."""

    def __init__(self, seed: int, count: int):
        super().__init__(f"cannot derive {count} validator keys from seed {seed}")
        self.seed = seed
        self.count = count


@dataclass(frozen=True)
class ValidatorKey:
    """A validator's keypair: 32-byte private key, 64-byte public key, 20-byte address."""

    index: int
    private_key: bytes
    public_key: bytes
    address: bytes

    def __repr__(self) -> str:  # never print the private key
        return f"ValidatorKey(index={self.index}, address=0x{self.address.hex()})"


def derive_validator_key(seed: int, index: int) -> ValidatorKey:
    """Key number `index` of the set derived from `seed`."""
    if seed < 0 or index < 0:
        raise KeyDerivationError(seed, index)
    material = keccak(KEY_DOMAIN + seed.to_bytes(32, "big", signed=False) + index.to_bytes(32, "big"))
    secret = int.from_bytes(material, "big") % (SECP256K1_ORDER - 1) + 1
    private_key = secret.to_bytes(32, "big")
    public_key = PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return ValidatorKey(index, private_key, public_key, compute_address(public_key))


def derive_validator_keys(seed: int, count: int) -> tuple[ValidatorKey, ...]:
    """`count` validator keys derived from `seed` (seed < 2**256, 0 <= count <= MAX_VALIDATORS)."""
    if seed < 0 or seed >= 1 << 256 or not 0 <= count <= MAX_VALIDATORS:
        raise KeyDerivationError(seed, count)
    return tuple(derive_validator_key(seed, i) for i in range(count))


def sign(key: ValidatorKey, digest32: bytes) -> bytes:
    """65-byte recoverable signature of a 32-byte digest."""
    return sign_digest(key.private_key, digest32)


def verify(public_key_bytes: bytes, digest32: bytes, signature: bytes) -> bool:
    """True when `signature` over `digest32` was made by the 64-byte public key."""
    return is_valid_signature(public_key_bytes, digest32, signature)


def make_raw_signer(key: ValidatorKey):
    """A signer callback that signs anything, bypassing any journal (a Byzantine key)."""

    def signer(message: SignedMessage) -> SignedMessage:
        return sign_message(key.private_key, message)

    return signer


def resign_message(key: ValidatorKey, message: SignedMessage, attempt: int) -> SignedMessage:
    """`message` signed again by `key` with another nonce (RFC 6979 with extra entropy from
    `attempt`): a second valid, low-s signature of the same digest, as a Byzantine key
    holder can always make. Honest nodes must count it as the same vote."""
    entropy = keccak(b"l2sim/resign" + attempt.to_bytes(8, "big"))
    return sign_message(key.private_key, message, entropy)
