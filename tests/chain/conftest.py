"""Fixtures of the chain tests: a small funded genesis with one storage contract.

The suite runs with `--import-mode=importlib`, so test modules cannot import each other or
this file: everything they share travels on the `funded` fixture.
"""

from dataclasses import dataclass

import pytest

from chain.genesis import FundedAccount, Genesis, GenesisSpec, build_genesis, derive_funded_accounts
from chain.store import MemoryStore

SEED = 11
BALANCE_WEI = 10**18
# PUSH1 0 CALLDATALOAD PUSH1 32 CALLDATALOAD SSTORE STOP: store calldata word 0 at slot word 1.
SSTORE_CODE = bytes.fromhex("6000356020355500")
CONTRACT_ADDRESS = b"\xc0" * 20
CONTRACT_STORAGE = ((1, 5), (2, 7))


@dataclass(frozen=True)
class Funded:
    """Four funded keys and a storage contract at genesis, with the spec that built them."""

    keys: tuple[bytes, ...]
    spec: GenesisSpec
    store: MemoryStore
    genesis: Genesis
    seed: int = SEED
    balance_wei: int = BALANCE_WEI
    contract: bytes = CONTRACT_ADDRESS
    contract_code: bytes = SSTORE_CODE
    contract_storage: tuple[tuple[int, int], ...] = CONTRACT_STORAGE

    @property
    def root(self) -> bytes:
        return self.genesis.state_root

    @property
    def addresses(self) -> tuple[bytes, ...]:
        return tuple(a.address for a in self.spec.accounts[: len(self.keys)])

    @staticmethod
    def sstore_call(slot: int, value: int) -> bytes:
        """Calldata making the contract store `value` at `slot`."""
        return value.to_bytes(32, "big") + slot.to_bytes(32, "big")


@pytest.fixture
def funded() -> Funded:
    """The funded genesis, built in a fresh MemoryStore."""
    pairs = derive_funded_accounts(SEED, 4, BALANCE_WEI)
    contract = FundedAccount(CONTRACT_ADDRESS, 0, code=SSTORE_CODE, storage=CONTRACT_STORAGE)
    spec = GenesisSpec(seed=SEED, accounts=tuple(a for _, a in pairs) + (contract,))
    store = MemoryStore()
    return Funded(tuple(k for k, _ in pairs), spec, store, build_genesis(store, spec))
