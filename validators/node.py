"""A validator node on the real chain: keys, journal, its own chain view, alarm, plan checks.

`ChainApp` is what the consensus engine sees of a node's chain. A proposer builds the
next block from the shared mempool (the actors' candidate transactions for the head),
preceded on the restart height by the ledgers of the plan it certified itself; every
validator re-executes a proposed block on its own head and prevotes it only if the
header's state root (and receipts root and gas) is what execution gives. After each
commit on the first fork the node runs its own deviation alarm (its chain's oracle prices
against its own feed) and halts when it fires. Execution results are memoised across
validators by the full block content when a cache is given.

`NodeChain` is the emergency engine's window on the same chain: certified roots, blocks
to serve to laggards, synced blocks accepted only with a verified commit certificate.
`PlanApp` is the plan vote's window: a node prevotes a plan only if its target lies
below the first corrupted height it found itself and it recomputes the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, MutableMapping, Protocol, Sequence

from eth.abc import SignedTransactionAPI
from eth_hash.auto import keccak

from chain.blocks import Block, decode_block, encode_block, with_header
from chain.errors import ChainError
from chain.execution import ExecutionCache, ExecutionResult, apply_block, build_block
from chain.history import History
from consensus.emergency import (
    MODES,
    NO_BAD_HEIGHT,
    PLAN_HEIGHT,
    Alarm,
    EmergencyError,
    HaltView,
    PlanRejected,
    RestorePlan,
    check_plan_shape,
    check_target_before,
    decode_plan,
    encode_plan,
    on_block_committed,
    verify_synced_block,
)
from consensus.messages import CommitCertificate, ValidatorSet
from consensus.sim import Behaviour, NodeKit
from validators.behaviours import make_behaviour_lookup
from validators.journal import Journal, get_resume_point, make_journaled_signer
from validators.keys import ValidatorKey, make_raw_signer

PriceFeed = Callable[[int], Mapping[int, int]]
"""A validator's own reference feed: height -> {market: price}."""
PriceReader = Callable[[bytes], Mapping[int, int]]
"""The oracle prices a state root holds: root -> {market: price}; also the funding indices
a root's exchange holds: root -> {market: index}."""


class Mempool(Protocol):
    """Where a proposer takes the transactions of the next block from."""

    def candidates_for(self, parent_height: int, parent_root: bytes) -> Sequence[SignedTransactionAPI]:
        """Candidate transactions for the block on top of `parent_height` (may be empty)."""


@dataclass
class NodeView:
    """The parts of a node that are its own: chain, alarm, archive, restore outcome."""

    index: int
    address: bytes
    history: History
    fork_id: int
    feed: PriceFeed
    read_prices: PriceReader
    alarm: Alarm | None = None  # its deviation alarm, which watches the first fork only
    alarm_fork_id: int = 0
    read_funding: PriceReader | None = None
    expected_funding: Mapping[int, int] | None = None
    """The funding indices it computes itself: its own chain's at genesis, carried forward by
    the exchange's accrual rule (in this model no funding accrues between the reporter's
    posts), so any other index on chain is a deviation its alarm sees."""
    archive: dict[tuple[int, int], tuple[bytes, CommitCertificate]] = field(default_factory=dict)
    """(fork, height) -> (block payload, commit certificate) of every block it committed,
    kept across a rollback (as CometBFT keeps blocks) so it can still serve laggards."""
    archived_roots: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (fork, height) -> state root
    restart_ledger: dict[int, tuple[SignedTransactionAPI, ...]] = field(default_factory=dict)
    """height -> the transactions a block there must start with (the certified ledgers)."""
    plan_certificate: CommitCertificate | None = None
    restored_root: bytes | None = None
    restore_error: str | None = None

    @property
    def halt_height(self) -> int | None:
        """Commit nothing above this height (None: not halted; a later fork is never halted)."""
        if self.alarm is None or self.fork_id != self.alarm_fork_id:
            return None
        return self.alarm.halt_height

    @property
    def first_bad_height(self) -> int:
        """The first corrupted height its own alarm found (NO_BAD_HEIGHT: none)."""
        return NO_BAD_HEIGHT if self.alarm is None else self.alarm.first_bad_height

    def note_commit(self, block: Block, payload: bytes, certificate: CommitCertificate) -> None:
        """Record a block it appended: its archive (with the certificate), and its own alarm."""
        self.archive[(block.header.fork_id, block.height)] = (payload, certificate)
        self.archived_roots[(block.header.fork_id, block.height)] = block.header.state_root
        if self.alarm is not None and block.header.fork_id == self.alarm_fork_id:
            root = block.header.state_root
            funding = self.read_funding(root) if self.read_funding is not None else None
            self.alarm = on_block_committed(self.alarm, block.height, self.read_prices(root), self.feed(block.height),
                                            funding, self.expected_funding)


NOT_READY = b"not-ready"
"""What a node that is behind (or off the fork) proposes: every validator rejects it."""

BlockDecoder = Callable[[bytes, bytes], Block | None]


def make_block_decoder(memo: MutableMapping[bytes, Block] | None) -> BlockDecoder:
    """`decode(block_hash, payload) -> Block | None`; None when the payload is not that block.

    With `memo`, a payload decoded by one node is reused by the others: keyed by the payload
    itself, since decoding is a pure function of the bytes (a hash alone could stand for
    other bytes a Byzantine proposer sends under the same header).
    """

    def decode(block_hash: bytes, payload: bytes) -> Block | None:
        block = memo.get(payload) if memo is not None else None
        if block is None:
            try:
                block = decode_block(payload)
            except ChainError:
                return None
            if memo is not None:
                memo[payload] = block
        return block if block.hash == block_hash else None

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

    @property
    def _head(self):
        return self.view.history.head

    def _build(self, height: int, timestamp_shift: int = 0) -> Block:
        head = self._head
        assert height == head.height + 1, f"node {self.view.index} asked to build {height} on {head.height}"
        ledger = list(self.view.restart_ledger.get(height, ()))
        candidates = ledger + list(self.mempool.candidates_for(head.height, head.state_root))
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
            self.cache[(head.state_root, encode_block(built.block))] = built.result
        return built.block

    def _is_halted_at(self, height: int) -> bool:
        return self.view.halt_height is not None and height > self.view.halt_height

    def _is_ready(self, height: int) -> bool:
        return height == self._head.height + 1 and not self._is_halted_at(height)

    def propose(self, height: int, round: int) -> tuple[bytes, bytes]:
        """An honest block: the mempool's candidates executed on the head."""
        if not self._is_ready(height):
            return keccak(NOT_READY), NOT_READY  # behind, halted or off the fork: nothing sound to offer
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
        ledger = tuple(tx.hash for tx in self.view.restart_ledger.get(height, ()))
        if tuple(tx.hash for tx in block.transactions[: len(ledger)]) != ledger:
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
            return  # behind or off the fork: the emergency sync fixes it
        result = apply_block(self.view.history.store, head.state_root, block, cache=self.cache)
        self.view.history.append(block)
        self.view.note_commit(block, payload, certificate)
        self.on_commit(self.view.index, block, result)


@dataclass
class NodeChain:
    """The emergency engine's window on a node's old-fork chain (`consensus.emergency.EmergencyChain`)."""

    view: NodeView
    fork_id: int  # the old fork, the one halted
    validator_set: ValidatorSet
    decode: BlockDecoder
    cache: ExecutionCache | None = None

    @property
    def height(self) -> int:
        """Its head on the old fork (after a restore: the last old-fork block it archived)."""
        if self.view.plan_certificate is None:
            return self.view.history.height
        return max((h for f, h in self.view.archived_roots if f == self.fork_id), default=0)

    def get_certified_root(self, height: int) -> bytes | None:
        """The root at `height` of the old fork, from the blocks it holds or archived."""
        if height == 0:
            return self.view.history.root_at(0)
        if self.view.plan_certificate is None:
            history = self.view.history
            return history.root_at(height) if 0 <= height <= history.height else None
        return self.view.archived_roots.get((self.fork_id, height))

    def get_synced_blocks(self, fork_id: int, from_height: int, count: int):
        """Consecutive archived blocks of `fork_id` from `from_height`, with certificates."""
        out = []
        for height in range(from_height, from_height + count):
            entry = self.view.archive.get((fork_id, height))
            if entry is None:
                break
            out.append(entry)
        return tuple(out)

    def apply_synced_block(self, payload: bytes, certificate: CommitCertificate) -> bool:
        """Append a block at head + 1 only with a verified certificate and a clean re-execution."""
        history = self.view.history
        height = history.height + 1
        if self.view.plan_certificate is not None:
            return False  # restored already: the old fork is history
        block = self.decode(certificate.block_hash, payload)
        if block is None or block.height != height or block.header.parent_hash != history.head.hash:
            return False
        if self.view.halt_height is not None and height > self.view.halt_height:
            return False  # past its own halt: a block it would never have voted for
        try:
            verify_synced_block(payload, certificate, block.hash, height, self.fork_id, self.validator_set)
            apply_block(history.store, history.head.state_root, block, cache=self.cache)
        except (EmergencyError, ChainError):
            return False
        history.append(block)
        self.view.note_commit(block, payload, certificate)
        return True

    def get_first_bad_height(self) -> int:
        return self.view.first_bad_height


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
    choose_views: Callable[[tuple[HaltView, ...]], tuple[HaltView, ...]] = lambda views: views
    """Which of its views a proposer puts in its plan (all; a Byzantine one may pick)."""
    rejections: list[tuple[bytes, str]] = field(default_factory=list)  # (plan hash, why)

    def _propose_plan(self) -> RestorePlan | None:
        try:
            return self.compute_plan(self.choose_views(self.known_views()))
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
        plan = plan.copy(mode=other)
        return plan.hash, encode_plan(plan)

    def propose_invalid(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A plan whose expected root is not what the restore gives (a lying proposer)."""
        plan = self._propose_plan()
        if plan is None:
            return keccak(INVALID_PLAN), INVALID_PLAN
        plan = plan.copy(expected_root=keccak(b"wrong-root" + plan.expected_root))
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
            check_target_before(plan, self.view.first_bad_height)
            history = self.view.history
            if plan.halt_height != history.height:
                raise PlanRejected(plan.hash, f"halt height {plan.halt_height} is not this node's head {history.height}")
            if history.root_at(target.height) != plan.snapshot_root:
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
