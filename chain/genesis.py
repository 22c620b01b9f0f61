"""Genesis: state root #0 built deterministically from a seed and a spec.

Funded accounts are written straight into the state; contracts are deployed by really
executing their creation code in py-evm (signed by a deployer key derived from the seed), so
constructors run and what is deployed is exactly what was compiled. Setup transactions
(initial deposits, positions, prices) then run in py-evm too, in order, on top of the
deployments; each must succeed. Their receipts are kept so that off-chain indexers can
start from genesis without reading the state.

`build_genesis_once` is the same build for callers that make many chains from one spec
(property tests, sweeps, every `l2sim run` of a bundled scenario): the first build of a spec
is kept as an image of the nodes it wrote, in the process and in a per-user cache on disk
(`$XDG_CACHE_HOME/l2sim/genesis`, keyed by the spec and a hash of the code that builds it),
and later builds of an identical spec copy those nodes into the new store instead of
executing again. Trie nodes are keyed by their hash, so the new store ends up holding
exactly what a fresh build would have written; an image that does not read back whole is
ignored and the spec is built again.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import rlp

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH
from eth.rlp.receipts import Receipt
from eth._utils.address import generate_contract_address
from eth_hash.auto import keccak

from chain.blocks import Header, ZERO_HASH
from chain.errors import ChainError, InvalidTransactionError
from chain.files import get_user_cache_dir, write_bytes_atomic
from chain.execution import execute_transactions
from chain.state import BlockContext, open_state
from chain.store import MemoryStore, Store
from chain.transactions import address_of, chain_id_for_fork, derive_private_key, sign_legacy

DEPLOY_GAS = 30_000_000
IMAGE_MAGIC = b"l2sim-genesis-image/1\n"
MAX_KEPT_GENESIS_IMAGES = 4  # a full paradex-2026 genesis holds tens of MB of nodes


class GenesisError(ChainError):
    """Raised when a genesis spec cannot be built (duplicate account, failed deployment)."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"genesis {what}: {reason}")
        self.what = what
        self.reason = reason


class SetupRevertedError(GenesisError):
    """Raised when a setup transaction of a genesis spec reverts or is refused; `index` is
    its position in `spec.setup` and `reason` the contract's revert message."""

    def __init__(self, index: int, reason: str):
        super().__init__(f"setup transaction #{index}", reason)
        self.index = index


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
                raise GenesisError(f"deployment {spec.deployments[error.index].name!r}", error.reason) from None
            raise SetupRevertedError(error.index - len(txs), error.reason) from None
        for index, reason in result.reverts[:1]:
            if index < len(spec.deployments):
                raise GenesisError(f"deployment {spec.deployments[index].name!r}", f"constructor reverted: {reason}")
            raise SetupRevertedError(index - len(txs), f"reverted: {reason}")
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


# ---------------------------------------------------------------- reuse within a process


class _ImageStore(MemoryStore):
    """A scratch store whose whole content can be read back, to copy a build into other stores."""

    def get_image(self) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]]:
        """(nodes, preimages) written so far, each as sorted (hash, bytes) pairs."""
        return tuple(sorted(self._nodes.items())), tuple(sorted(self._preimages.items()))


@dataclass(frozen=True)
class _GenesisImage:
    genesis: Genesis
    nodes: tuple[tuple[bytes, bytes], ...]
    preimages: tuple[tuple[bytes, bytes], ...]


_images: OrderedDict[bytes, _GenesisImage] = OrderedDict()  # spec key -> image, least recent first


def compute_spec_key(spec: GenesisSpec) -> bytes:
    """A hash of everything in `spec` that genesis depends on (setup transactions by their hash)."""
    content = (
        spec.seed,
        spec.accounts,
        spec.deployments,
        spec.deployer_balance,
        spec.timestamp,
        tuple(tx.hash for tx in spec.setup),
    )
    return hashlib.sha256(repr(content).encode()).digest()


def get_genesis_cache_dir() -> Path:
    """Where genesis images are cached for this user (relative, so unused, without a home)."""
    return get_user_cache_dir("genesis")


@functools.lru_cache(maxsize=1)
def get_builder_version() -> str:
    """A hash of what a genesis image depends on besides its spec: this package's sources
    (execution, state, contracts) and py-evm's version."""
    digest = hashlib.sha256(version("py-evm").encode())
    root = Path(__file__).parent
    for path in sorted([*root.glob("*.py"), *root.glob("contracts/*.vy")]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _encode_pairs(pairs) -> bytes:
    out = bytearray()
    for key, value in pairs:
        out += len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value
    return bytes(out)


def _decode_pairs(raw: memoryview) -> tuple[tuple[bytes, bytes], ...]:
    pairs, at = [], 0
    while at < len(raw):
        key_len = int.from_bytes(raw[at:at + 4], "big")
        key = bytes(raw[at + 4:at + 4 + key_len])
        at += 4 + key_len
        value_len = int.from_bytes(raw[at:at + 4], "big")
        value = bytes(raw[at + 4:at + 4 + value_len])
        at += 4 + value_len
        if at > len(raw):
            raise ValueError("truncated")
        pairs.append((key, value))
    return tuple(pairs)


def _encode_image(image: "_GenesisImage") -> bytes:
    genesis = image.genesis
    meta = rlp.encode([rlp.encode(genesis.header), [[n, a] for n, a in sorted(genesis.contracts.items())],
                       genesis.deployer_key, [rlp.encode(r) for r in genesis.receipts]])
    nodes, preimages = _encode_pairs(image.nodes), _encode_pairs(image.preimages)
    body = b"".join(len(part).to_bytes(8, "big") + part for part in (meta, nodes, preimages))
    return IMAGE_MAGIC + hashlib.sha256(body).digest() + body


def _decode_image(raw: bytes) -> "_GenesisImage":
    """The image in `raw`; ValueError (or an RLP error) for anything not written whole."""
    if raw[:len(IMAGE_MAGIC)] != IMAGE_MAGIC:
        raise ValueError("not a genesis image")
    checksum, body = raw[len(IMAGE_MAGIC):len(IMAGE_MAGIC) + 32], raw[len(IMAGE_MAGIC) + 32:]
    if hashlib.sha256(body).digest() != checksum:
        raise ValueError("checksum mismatch")
    parts, view, at = [], memoryview(body), 0
    for _ in range(3):
        size = int.from_bytes(view[at:at + 8], "big")
        parts.append(view[at + 8:at + 8 + size])
        at += 8 + size
    header_raw, contracts, deployer_key, receipts = rlp.decode(bytes(parts[0]))
    genesis = Genesis(rlp.decode(header_raw, sedes=Header), {bytes(n).decode(): bytes(a) for n, a in contracts},
                      bytes(deployer_key), tuple(rlp.decode(r, sedes=Receipt) for r in receipts))
    return _GenesisImage(genesis, _decode_pairs(parts[1]), _decode_pairs(parts[2]))


def _load_image(key: bytes) -> "_GenesisImage | None":
    path = get_genesis_cache_dir() / f"{key.hex()}-{get_builder_version()}.img"
    if not path.is_absolute():
        return None
    try:
        return _decode_image(path.read_bytes())
    except (OSError, ValueError, rlp.DecodingError, rlp.DeserializationError):
        return None  # missing, torn or foreign: build it again


def _save_image(key: bytes, image: "_GenesisImage") -> None:
    directory = get_genesis_cache_dir()
    if not directory.is_absolute():
        return  # no home: never write into the working directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(directory / f"{key.hex()}-{get_builder_version()}.img", _encode_image(image))
    except OSError:
        return  # a read-only home or a full disk: building every time still works


def build_genesis_once(store: Store, spec: GenesisSpec) -> Genesis:
    """`build_genesis(store, spec)`, executing a given spec only once (per process, then per user on disk).

    The result is the same: the store receives the same nodes and preimages, and the
    returned `Genesis` is equal. A spec that fails raises as `build_genesis` does and
    is not kept.
    """
    key = compute_spec_key(spec)
    image = _images.get(key) or _load_image(key)
    if image is None:
        scratch = _ImageStore()
        genesis = build_genesis(scratch, spec)
        nodes, preimages = scratch.get_image()
        image = _GenesisImage(genesis, nodes, preimages)
        _save_image(key, image)
    if key not in _images:
        _images[key] = image
        while len(_images) > MAX_KEPT_GENESIS_IMAGES:
            _images.popitem(last=False)
    _images.move_to_end(key)
    for node_hash, node in image.nodes:
        store[node_hash] = node
    store.put_preimages(image.preimages)
    store.commit()
    return replace(image.genesis, contracts=dict(image.genesis.contracts))
