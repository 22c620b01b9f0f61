"""A validator node on the real chain: keys, journal, its own chain view, mempool, behaviour.

`ChainApp` is what the consensus engine sees of a node's chain. A proposer builds the
next block from the shared mempool (the actors' candidate transactions for the head);
every validator re-executes a proposed block on its own head and prevotes it only if the
header's state root (and receipts root and gas) is what execution gives. Execution results
are memoised across validators by (parent root, block hash) when a cache is given: honest
nodes compute the same thing, and a block with a wrong root has another hash, so a
Byzantine block always runs for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, MutableMapping, Protocol, Sequence

from eth.abc import SignedTransactionAPI
from eth_hash.auto import keccak

from chain.blocks import Block, decode_block, encode_block, with_header
from chain.errors import ChainError
from chain.execution import ExecutionCache, ExecutionResult, apply_block, build_block
from chain.history import History
from consensus.emergency import (
    MODES,
    PLAN_HEIGHT,
    EmergencyError,
    HaltView,
    PlanRejected,
    RestorePlan,
    check_plan_shape,
    decode_plan,
    encode_plan,
)
from consensus.messages import CommitCertificate, ValidatorSet
from consensus.sim import Behaviour, NodeKit
from validators.behaviours import make_behaviour_lookup
from validators.journal import Journal, get_resume_point, make_journaled_signer
from validators.keys import ValidatorKey, make_raw_signer


class Mempool(Protocol):
    """Where a proposer takes the transactions of the next block from."""

    def candidates_for(self, parent_height: int, parent_root: bytes) -> Sequence[SignedTransactionAPI]:
        """Candidate transactions for the block on top of `parent_height` (may be empty)."""


@dataclass
class NodeView:
    """The parts of a node that are its own: chain view and where it stops."""

    index: int
    address: bytes
    history: History
    fork_id: int
    halt_height: int | None = None  # commit nothing above this height
    certificates: dict[int, CommitCertificate] = field(default_factory=dict)
    unapplied: list[int] = field(default_factory=list)  # decided heights it could not append


NOT_READY = b"not-ready"
"""What a node that is behind (or off the fork) proposes: every validator rejects it."""

BlockDecoder = Callable[[bytes, bytes], Block | None]


def make_block_decoder(memo: MutableMapping[bytes, Block] | None) -> BlockDecoder:
    """`decode(block_hash, payload) -> Block | None`; None when the payload is not that block.

    With `memo`, a payload decoded by one node is reused by the others (decoding is pure).
    """

    def decode(block_hash: bytes, payload: bytes) -> Block | None:
        if memo is not None and block_hash in memo:
            return memo[block_hash]
        try:
            block = decode_block(payload)
        except ChainError:
            return None
        if block.hash != block_hash:
            return None
        if memo is not None:
            memo[block_hash] = block
        return block

    return decode


@dataclass
class ChainApp:
    """The consensus engine's window on one node's chain (implements `consensus.sim.App`)."""

    view: NodeView
    mempool: Mempool
    decode: BlockDecoder
    get_time_s: Callable[[], float]
    on_commit: Callable[[int, Block, ExecutionResult], None]
    cache: ExecutionCache | None = None
    required_prefix: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    """height -> hashes of the transactions a block there must start with (the restart
    block carries the certified reconciliation and compensation ledgers)."""

    @property
    def _head(self):
        return self.view.history.head

    def _build(self, height: int, timestamp_shift: int = 0) -> Block:
        head = self._head
        assert height == head.height + 1, f"node {self.view.index} asked to build {height} on {head.height}"
        candidates = self.mempool.candidates_for(head.height, head.state_root)
        built = build_block(
            self.view.history.store,
            head,
            candidates,
            proposer=self.view.address,
            timestamp=max(head.timestamp + 1, int(self.get_time_s())) + timestamp_shift,
            fork_id=self.view.fork_id,
        )
        if self.cache is not None:
            # The proposer just executed this block on this parent: the same result every
            # honest validator's re-execution would memoise.
            self.cache[(head.state_root, built.block.hash)] = built.result
        return built.block

    def _is_halted_at(self, height: int) -> bool:
        return self.view.halt_height is not None and height > self.view.halt_height

    def _is_ready(self, height: int) -> bool:
        return height == self._head.height + 1

    def propose(self, height: int, round: int) -> tuple[bytes, bytes]:
        """An honest block: the mempool's candidates executed on the head."""
        if not self._is_ready(height):
            return keccak(NOT_READY), NOT_READY  # behind or off the fork: nothing sound to offer
        block = self._build(height)
        return block.hash, encode_block(block)

    def propose_conflicting(self, height: int, round: int) -> tuple[bytes, bytes]:
        """Another valid block for the same slot (same transactions, later timestamp)."""
        if not self._is_ready(height):
            return keccak(NOT_READY), NOT_READY
        block = self._build(height, timestamp_shift=1)
        return block.hash, encode_block(block)

    def propose_invalid(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A block whose header claims a state root that execution does not give."""
        if not self._is_ready(height):
            return keccak(NOT_READY), NOT_READY
        honest = self._build(height)
        block = with_header(honest, state_root=keccak(b"wrong-root" + honest.header.state_root))
        return block.hash, encode_block(block)

    def is_valid(self, height: int, block_hash: bytes, payload: bytes) -> bool:
        """Re-execute the block on this node's head and check every root it claims."""
        if self._is_halted_at(height):
            return False
        block = self.decode(block_hash, payload)
        head = self._head
        if block is None or height != head.height + 1 or block.height != height:
            return False
        if block.header.parent_hash != head.hash or block.header.fork_id != self.view.fork_id:
            return False
        prefix = self.required_prefix.get(height, ())
        if tuple(tx.hash for tx in block.transactions[: len(prefix)]) != prefix:
            return False
        try:
            apply_block(self.view.history.store, head.state_root, block, cache=self.cache)
        except ChainError:
            return False
        return True

    def commit(
        self, height: int, block_hash: bytes, payload: bytes, certificate: CommitCertificate
    ) -> None:
        """Append a decided block (re-executed: a certificate is not a reason to trust a root)."""
        block = self.decode(block_hash, payload)
        assert block is not None, f"node {self.view.index} decided an undecodable block"
        head = self._head
        if height != head.height + 1 or block.header.parent_hash != head.hash:
            self.view.unapplied.append(height)  # behind or off the fork: state sync must fix it
            return
        result = apply_block(self.view.history.store, head.state_root, block, cache=self.cache)
        self.view.history.append(block)
        self.view.certificates[height] = certificate
        self.on_commit(self.view.index, block, result)


def make_node_kit(app: ChainApp | PlanApp, key: ValidatorKey, journal: Journal,
                  behaviour: str | Behaviour | None = None) -> NodeKit:
    """What a node keeps across crashes: the app, its journaled signer, its raw key and its
    behaviour. `behaviour` (a name or an object) fixes it; None (the default) leaves it to
    the simulation's `SimConfig.byzantine` ("honest" unless listed), through the kit's lookup."""
    lookup = make_behaviour_lookup(key)
    return NodeKit(
        app=app,
        signer=make_journaled_signer(key, journal),
        raw_signer=make_raw_signer(key),
        get_resume_point=lambda fork_id, height: get_resume_point(journal, fork_id, height),
        get_behaviour=lookup,
        behaviour=lookup(behaviour) if isinstance(behaviour, str) else behaviour,
    )


INVALID_PLAN = b"no-plan"
"""What a proposer that holds no quorum of views proposes: honest validators reject it."""


@dataclass
class PlanApp:
    """The consensus engine's window on the restore plan (implements `consensus.sim.App`).

    The plan is voted like a block at `PLAN_HEIGHT` of its own fork id. A validator prevotes a
    plan only if it recomputes the very same plan from the plan's own views and its own
    chain: the target, the snapshot root it holds at that height, every ledger digest and
    the expected post-restore root.
    """

    view: NodeView
    validator_set: ValidatorSet
    known_views: Callable[[], tuple[HaltView, ...]]
    compute_plan: Callable[[tuple[HaltView, ...]], RestorePlan]
    on_certificate: Callable[[int, RestorePlan, CommitCertificate], None]
    rejections: list[tuple[bytes, str]] = field(default_factory=list)  # (plan hash, why)

    def _propose_plan(self) -> RestorePlan | None:
        try:
            return self.compute_plan(self.known_views())
        except EmergencyError:
            return None

    def propose(self, height: int, round: int) -> tuple[bytes, bytes]:
        """The plan this node computes from the views it has received so far."""
        plan = self._propose_plan() if height == PLAN_HEIGHT else None
        if plan is None:
            return keccak(INVALID_PLAN), INVALID_PLAN
        return plan.hash, encode_plan(plan)

    def propose_conflicting(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A second plan for the same slot: the same one in another mode."""
        plan = self._propose_plan()
        if plan is None:
            return keccak(INVALID_PLAN), INVALID_PLAN
        other = next(m for m in MODES if m != plan.mode)
        plan = replace(plan, mode=other)
        return plan.hash, encode_plan(plan)

    def propose_invalid(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A plan whose expected root is not what the restore gives (a lying proposer)."""
        plan = self._propose_plan()
        if plan is None:
            return keccak(INVALID_PLAN), INVALID_PLAN
        plan = replace(plan, expected_root=keccak(b"wrong-root" + plan.expected_root))
        return plan.hash, encode_plan(plan)

    def is_valid(self, height: int, block_hash: bytes, payload: bytes) -> bool:
        """Recompute the plan from its views and this node's own chain; compare hashes."""
        if height != PLAN_HEIGHT:
            return False  # one plan per emergency: later heights of the plan's domain stay empty
        plan = decode_plan(payload)
        if plan is None or plan.hash != block_hash:
            reason = "the proposer held no quorum of views" if payload == INVALID_PLAN else "undecodable plan"
            self.rejections.append((block_hash, reason))
            return False
        try:
            target = check_plan_shape(plan, self.validator_set)
            history = self.view.history
            if target.height > history.height or history.root_at(target.height) != plan.snapshot_root:
                raise PlanRejected(plan.hash, "snapshot root is not this node's root at the target")
            mine = self.compute_plan(plan.views)
        except EmergencyError as error:
            self.rejections.append((block_hash, str(error)))
            return False
        if mine.hash != plan.hash:
            differs = [name for name in ("target_height", "snapshot_root", "mode", "expected_root",
                                         "surgery_digest", "replay_digest", "compensation_digest",
                                         "reconciliation_digest", "halt_height")
                       if getattr(mine, name) != getattr(plan, name)]
            self.rejections.append((block_hash, f"differs from this validator's own plan in {', '.join(differs)}"))
            return False
        return True

    def commit(
        self, height: int, block_hash: bytes, payload: bytes, certificate: CommitCertificate
    ) -> None:
        """The rollback certificate is formed: hand it to the node's restore step."""
        plan = decode_plan(payload)
        assert plan is not None and plan.hash == block_hash, "decided an undecodable plan"
        self.on_certificate(self.view.index, plan, certificate)
