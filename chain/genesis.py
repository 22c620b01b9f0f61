"""Genesis: state root #0 built deterministically from a seed and a spec.

Funded accounts are written straight into the state; contracts are deployed by really
executing their creation code in py-evm (signed by a deployer key derived from the seed), so
constructors run and what is deployed is exactly what was compiled. Setup transactions
(initial deposits, positions, prices) then run in py-evm too, in order, on top of the
deployments; each must succeed. Their receipts are kept so that off-chain indexers can
start from genesis without reading the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH
from eth._utils.address import generate_contract_address
from eth_hash.auto import keccak

from chain.blocks import Header, ZERO_HASH
from chain.errors import ChainError, InvalidTransactionError
from chain.execution import execute_transactions
from chain.state import BlockContext, open_state
from chain.store import Store
from chain.transactions import address_of, chain_id_for_fork, derive_private_key, sign_legacy

DEPLOY_GAS = 30_000_000


class GenesisError(ChainError):
    """Raised when a genesis spec cannot be built (duplicate account, failed deployment)."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"genesis {what}: {reason}")
        self.what = what
        self.reason = reason


@dataclass(frozen=True)
class FundedAccount:
    """An account present at genesis with a balance (and, for system accounts, code)."""

    address: bytes
    balance: int
    nonce: int = 0
    code: bytes = b""
    storage: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Deployment:
    """A contract created at genesis by executing `init_code` (creation code + args)."""

    name: str
    init_code: bytes
    value: int = 0


@dataclass(frozen=True)
class GenesisSpec:
    """What genesis holds: funded accounts, then contracts deployed in order, then setup.

    `setup` transactions are signed for fork 0 and run after the deployments; the deployer
    (`deployer_key_for(seed)`) has used nonces 0 .. len(deployments)-1 by then.
    """

    seed: int
    accounts: tuple[FundedAccount, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    deployer_balance: int = 10**30
    timestamp: int = 0
    setup: tuple[SignedTransactionAPI, ...] = ()


@dataclass(frozen=True)
class Genesis:
    """The built genesis: header #0 and where each deployment landed."""

    header: Header
    contracts: dict[str, bytes] = field(default_factory=dict)
    deployer_key: bytes = b""
    receipts: tuple[ReceiptAPI, ...] = ()  # of the deployments, then of the setup transactions

    @property
    def state_root(self) -> bytes:
        """State root #0."""
        return self.header.state_root


def deployer_key_for(seed: int) -> bytes:
    """The private key that deploys genesis contracts for `seed`."""
    return derive_private_key(seed, "deployer", 0)


def genesis_contract_address(seed: int, index: int) -> bytes:
    """Where the `index`-th deployment of a genesis built from `seed` lands."""
    return generate_contract_address(address_of(deployer_key_for(seed)), index)


def build_genesis(store: Store, spec: GenesisSpec) -> Genesis:
    """Build state root #0 in `store` and return header #0 and the contract addresses."""
    seen: set[bytes] = set()
    state = open_state(store, BLANK_ROOT_HASH)
    deployer_key = deployer_key_for(spec.seed)
    deployer = address_of(deployer_key)
    preimages = [(keccak(deployer), deployer)]
    for account in spec.accounts:
        if account.address in seen or account.address == deployer:
            raise GenesisError(f"account 0x{account.address.hex()}", "listed twice")
        seen.add(account.address)
        state.set_balance(account.address, account.balance)
        # EIP-161 deletes a touched account with no nonce, balance or code: give code a nonce.
        state.set_nonce(account.address, max(account.nonce, 1 if account.code else 0))
        if account.code:
            state.set_code(account.address, account.code)
        for slot, value in account.storage:
            state.set_storage(account.address, slot, value)
            key = slot.to_bytes(32, "big")
            preimages.append((keccak(key), key))
        preimages.append((keccak(account.address), account.address))
    state.set_balance(deployer, spec.deployer_balance)
    state.persist()
    store.put_preimages(sorted(preimages))
    root = state.state_root

    contracts: dict[str, bytes] = {}
    receipts: tuple[ReceiptAPI, ...] = ()
    if spec.deployments or spec.setup:
        context = BlockContext(height=0, timestamp=spec.timestamp, chain_id=chain_id_for_fork(0))
        txs = []
        for nonce, deployment in enumerate(spec.deployments):
            if deployment.name in contracts:
                raise GenesisError(f"deployment {deployment.name!r}", "listed twice")
            contracts[deployment.name] = generate_contract_address(deployer, nonce)
            txs.append(
                sign_legacy(
                    deployer_key,
                    nonce=nonce,
                    to=b"",
                    value=deployment.value,
                    data=deployment.init_code,
                    gas=DEPLOY_GAS,
                )
            )
        try:
            result = execute_transactions(store, root, context, txs + list(spec.setup))
        except InvalidTransactionError as error:
            if error.index < len(txs):
                what = f"deployment {spec.deployments[error.index].name!r}"
            else:
                what = f"setup transaction #{error.index - len(txs)}"
            raise GenesisError(what, error.reason) from None
        for index, receipt in enumerate(result.receipts):
            if receipt.state_root != b"\x01":
                if index < len(spec.deployments):
                    raise GenesisError(f"deployment {spec.deployments[index].name!r}", "constructor reverted")
                raise GenesisError(f"setup transaction #{index - len(txs)}", "reverted")
        root = result.state_root
        receipts = result.receipts
    store.commit()
    header = Header(height=0, parent_hash=ZERO_HASH, state_root=root, timestamp=spec.timestamp)
    return Genesis(header=header, contracts=contracts, deployer_key=deployer_key, receipts=receipts)


def derive_funded_accounts(seed: int, count: int, balance_wei: int, label: str = "account"):
    """`count` (private key, FundedAccount) pairs derived from `seed`, each with `balance_wei`."""
    pairs = []
    for index in range(count):
        key = derive_private_key(seed, label, index)
        pairs.append((key, FundedAccount(address_of(key), balance_wei)))
    return tuple(pairs)
