"""The emergency upgrade, one sans-I/O protocol: alarm, halt, views, sync, plan, certificate.

Every step is decided by a validator from what it holds (its chain, its own price feed,
the signed messages it received); the event loop only carries messages and fires timers.

1. **Alarm and halt** (`Alarm`, `on_block_committed`): after each block it commits on the
   first fork a validator compares the oracle prices its chain now holds with its own
   reference feed, and the funding indices its chain holds with those it computes itself.
   The first height where either deviates is its `first_bad_height`; once
   the deviation has stood for `delay_blocks` (or at the operator's halt height) it commits
   nothing above that height. Honest validators hold the same chain and the same feed, so
   they halt at the same height, and with more than a third of the power refusing every
   later block, no later block can be certified: that is the agreed halt.
2. **Views** (`HaltView`): after the pause each validator signs its account of the halt
   (last height, state roots over a bounded window, first corrupted height) and gossips
   it, resending until the plan is certified. A view is validated before it is kept
   (`validate_view`); one whose roots contradict the receiver's certified chain is
   evidence (`ViewConflict`).
3. **Sync** (`SyncRequest`, `SyncBlocks`): a view that reports blocks the receiver lacks
   makes it ask that peer for them; blocks are accepted only with a verified commit
   certificate, re-executed, and the alarm is re-derived over them.
4. **Plan and certificate** (`RestorePlan`): the plan carries a quorum of signed views, so
   anyone can recompute its target (`compute_target`). It is voted like a block by the
   Tendermint engine in its own signing domain (`get_plan_fork_id`, at `PLAN_HEIGHT`). An
   honest validator prevotes a plan only if its target lies below the first corrupted
   height it found itself (`check_target_before`) and it recomputes the very same plan
   from its own chain. 2/3+ of the power in precommits is the rollback certificate
   (`verify_rollback_certificate`).
5. **Apply and restart**: each validator applies the plan it decided to its own chain and
   compares its root with the certificate's expected root before it votes again.

`EmergencyEngine` drives 2-4 for one validator (wrapping its plan engine); the validator
layer supplies the chain (`EmergencyChain`) and the behaviour (honest or Byzantine).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Protocol, Sequence

import rlp
from eth_hash.auto import keccak
from rlp.sedes import Binary, CountableList, big_endian_int, binary, text

from consensus.messages import (
    CertificateError,
    Commit,
    CommitCertificate,
    CommitRequest,
    ConsensusError,
    HasVotes,
    Proposal,
    ValidatorSet,
    Vote,
    recover_public_key,
    sign_digest,
    verify_certificate,
)
from consensus.tendermint import (
    Action,
    Broadcast,
    Decide,
    Engine,
    ResumePoint,
    ScheduleTimeout,
    SendTo,
)

VIEW_DOMAIN = b"l2sim/emergency/view/v2"
PLAN_DOMAIN = b"l2sim/emergency/plan/v2"
PLAN_HEIGHT = 0
"""The plan is voted at height 0 of its own fork id (see `get_plan_fork_id`)."""
PLAN_FORK_BASE = 1 << 32
MODES = ("full-rollback", "selective-restore", "rollback-replay")
NO_BAD_HEIGHT = 0
"""`first_bad_height` of a validator that saw nothing corrupted (height 0 is genesis)."""
VIEW_WINDOW = 64  # heights of roots a view reports (bounded: a view is a small message)
VIEW_RESEND_S = 1.0
VIEW_GATHER_S = 2.0  # views gossip this long before the first plan is proposed (as in wen_restart)
MAX_VIEW_SENDS = 3600  # a view is resent at most this often (an hour at one a second)
MAX_SYNC_BLOCKS = 256  # blocks per sync answer
MAX_VIEW_EVIDENCE = 64  # conflicting views kept per engine


def get_plan_fork_id(new_fork_id: int) -> int:
    """The fork id the restore plan for `new_fork_id` is voted under.

    Its own signing domain: whatever a plan vote signs (an engine wanders on to later heights
    while laggards catch up) can never occupy a slot the new fork's blocks will need.
    """
    return PLAN_FORK_BASE + new_fork_id


# --- errors ----------------------------------------------------------------------------------


class EmergencyError(ConsensusError):
    """Raised when a halt view, plan or rollback certificate does not hold (base class)."""


class InvalidView(EmergencyError):
    """Raised when a halt view is malformed, unsigned or for another fork."""

    def __init__(self, validator: object, reason: str):
        super().__init__(f"view of validator {validator}: {reason}")
        self.validator = validator
        self.reason = reason


class PlanRejected(EmergencyError):
    """Raised when a restore plan disagrees with what the checking validator computes."""

    def __init__(self, plan_hash: bytes, reason: str):
        super().__init__(f"restore plan 0x{plan_hash.hex()[:16]} rejected: {reason}")
        self.plan_hash = plan_hash
        self.reason = reason


# --- 1. the alarm ------------------------------------------------------------------------------


def is_price_deviation(onchain_price: int, reference_price: int, threshold_bps: int) -> bool:
    """True when the on-chain price is further than `threshold_bps` from the reference."""
    if reference_price <= 0:
        return onchain_price > 0
    return abs(onchain_price - reference_price) * 10_000 > threshold_bps * reference_price


def is_index_deviation(onchain_index: int, expected_index: int, threshold_bps: int) -> bool:
    """True when a (signed) funding index on chain is further than `threshold_bps` of the
    expected index from it; any change of an expected 0 deviates."""
    if expected_index == 0:
        return onchain_index != 0
    return abs(onchain_index - expected_index) * 10_000 > threshold_bps * abs(expected_index)


@dataclass(frozen=True)
class Alarm:
    """One validator's deviation alarm over the blocks it committed on the first fork."""

    deviation_bps: int
    delay_blocks: int
    operator_halt_height: int | None = None
    first_bad_height: int = NO_BAD_HEIGHT
    deviating_markets: tuple[int, ...] = ()  # markets whose price deviated at the first bad height
    deviating_funding: tuple[int, ...] = ()  # markets whose funding index deviated there
    halt_height: int | None = None  # commit nothing above this height

    @property
    def is_halted(self) -> bool:
        return self.halt_height is not None


def on_block_committed(alarm: Alarm, height: int, onchain: Mapping[int, int], reference: Mapping[int, int],
                       onchain_funding: Mapping[int, int] | None = None,
                       expected_funding: Mapping[int, int] | None = None) -> Alarm:
    """The alarm after the validator committed `height`, whose oracle holds `onchain` while
    the validator's own feed says `reference` (market -> price); and, when given, whose
    exchange holds the funding indices `onchain_funding` while the validator computes
    `expected_funding` itself (market -> index)."""
    if alarm.is_halted:
        return alarm
    if alarm.first_bad_height == NO_BAD_HEIGHT:
        prices = {m for m in reference if is_price_deviation(onchain.get(m, 0), reference[m], alarm.deviation_bps)}
        funding = {m for m in (expected_funding or {})
                   if is_index_deviation((onchain_funding or {}).get(m, 0), expected_funding[m], alarm.deviation_bps)}
        if prices or funding:
            alarm = replace(alarm, first_bad_height=height, deviating_markets=tuple(sorted(prices)),
                            deviating_funding=tuple(sorted(funding)))
    fired = alarm.first_bad_height != NO_BAD_HEIGHT and height >= alarm.first_bad_height + alarm.delay_blocks
    scheduled = alarm.operator_halt_height is not None and height >= alarm.operator_halt_height
    if fired or scheduled:
        alarm = replace(alarm, halt_height=height)
    return alarm


# --- 2. views ------------------------------------------------------------------------------------


class HaltView(rlp.Serializable):
    """One validator's signed account of the chain at the halt."""

    fields = [
        ("validator", big_endian_int),
        ("fork_id", big_endian_int),
        ("last_height", big_endian_int),
        ("first_bad_height", big_endian_int),
        ("window_start", big_endian_int),
        ("roots", CountableList(Binary.fixed_length(32))),  # heights window_start .. last_height
        ("signature", binary),
    ]

    @functools.cached_property
    def digest(self) -> bytes:
        """keccak(domain || rlp(view without its signature)); what the validator signs
        (memoised: a view is immutable, and every receiver checks the same object)."""
        return _view_digest(rlp.encode(self.copy(signature=b"")))

    def signing_digest(self) -> bytes:
        return self.digest

    @property
    def signer_index(self) -> int:
        return self.validator

    def root_at(self, height: int) -> bytes | None:
        """The root this view reports at `height`, or None outside its window."""
        if self.window_start <= height <= self.last_height and height - self.window_start < len(self.roots):
            return self.roots[height - self.window_start]
        return None


@functools.lru_cache(maxsize=4096)
def _view_digest(unsigned: bytes) -> bytes:
    return keccak(VIEW_DOMAIN + unsigned)


def make_view(validator: int, fork_id: int, last_height: int, first_bad_height: int,
              get_root: Callable[[int], bytes]) -> HaltView:
    """The unsigned view of a validator whose chain ends at `last_height`."""
    start = max(0, last_height - VIEW_WINDOW)
    roots = tuple(get_root(h) for h in range(start, last_height + 1))
    return HaltView(validator, fork_id, last_height, first_bad_height, start, roots, b"")


def sign_view(private_key: bytes, view: HaltView) -> HaltView:
    """`view` signed with `private_key`."""
    return view.copy(signature=sign_digest(private_key, view.digest))


def is_view_signed(view: HaltView, validator_set: ValidatorSet) -> bool:
    """True when `view` is signed by the validator it names (canonical signatures only)."""
    if not 0 <= view.validator < validator_set.size:
        return False
    return recover_public_key(view.digest, view.signature) == validator_set.public_keys[view.validator]


def validate_view(view: object, validator_set: ValidatorSet, fork_id: int) -> HaltView:
    """`view` if it is a well-formed view signed by the validator it names for `fork_id`;
    raises `InvalidView` otherwise (never anything else, whatever the bytes)."""
    if not isinstance(view, HaltView):
        raise InvalidView("?", f"not a halt view: {type(view).__name__}")
    try:
        return _check_view(view, validator_set, fork_id)
    except (TypeError, ValueError, rlp.SerializationError) as error:  # fields RLP cannot hold
        raise InvalidView(getattr(view, "validator", "?"), f"malformed: {error}") from None


def _check_view(view: HaltView, validator_set: ValidatorSet, fork_id: int) -> HaltView:
    if view.fork_id != fork_id:
        raise InvalidView(view.validator, f"for fork {view.fork_id}, not {fork_id}")
    if not 0 <= view.validator < validator_set.size:
        raise InvalidView(view.validator, "unknown validator")
    if view.window_start > view.last_height or view.last_height - view.window_start > VIEW_WINDOW:
        raise InvalidView(view.validator, f"window {view.window_start}..{view.last_height} is not 1..{VIEW_WINDOW + 1} heights")
    if len(view.roots) != view.last_height - view.window_start + 1:
        raise InvalidView(view.validator, f"{len(view.roots)} roots for window {view.window_start}..{view.last_height}")
    if view.first_bad_height > view.last_height:
        raise InvalidView(view.validator, f"first bad height {view.first_bad_height} above its last height")
    if not is_view_signed(view, validator_set):
        raise InvalidView(view.validator, "not signed by the validator it names")
    return view


@dataclass(frozen=True)
class ViewConflict:
    """Evidence: a signed view whose root at `height` contradicts a certified header."""

    view: HaltView
    height: int
    certified_root: bytes


def find_view_conflict(view: HaltView, get_certified_root: Callable[[int], bytes | None]) -> ViewConflict | None:
    """The first height where `view` contradicts the caller's certified chain, if any."""
    for offset, root in enumerate(view.roots):
        height = view.window_start + offset
        certified = get_certified_root(height)
        if certified is not None and certified != root:
            return ViewConflict(view, height, certified)
    return None


@dataclass(frozen=True)
class Target:
    """Where to restore to: the last height before the first corrupted write, and its root."""

    height: int
    state_root: bytes


def get_distinct_views(views: Sequence[object], validator_set: ValidatorSet, fork_id: int) -> tuple[HaltView, ...]:
    """The valid views, the first one per validator, by validator index."""
    seen: dict[int, HaltView] = {}
    for view in views:
        try:
            valid = validate_view(view, validator_set, fork_id)
        except InvalidView:
            continue
        seen.setdefault(valid.validator, valid)
    return tuple(seen[i] for i in sorted(seen))


def compute_target(views: Sequence[HaltView], validator_set: ValidatorSet, fork_id: int) -> Target:
    """The restore target implied by a quorum of signed views of `fork_id`.

    The first bad height is the lowest height that views holding more than the faulty
    power (f+1) call corrupted at or before: at least one honest validator reported a bad
    height at or below it, so Byzantine views cannot drag the target back to genesis. They
    could still push it later by choosing which views a plan carries; that is what each
    honest validator's own check (`check_target_before`) stops. The snapshot root must be
    reported by views holding a quorum of power.
    """
    views = get_distinct_views(views, validator_set, fork_id)
    if validator_set.get_power(v.validator for v in views) < validator_set.quorum:
        raise EmergencyError("views hold no quorum of power")
    reported = sorted((v.first_bad_height, v.validator) for v in views if v.first_bad_height != NO_BAD_HEIGHT)
    power = 0
    first_bad = None
    for height, index in reported:
        power += validator_set.powers[index]
        if power > validator_set.max_faulty_power:
            first_bad = height
            break
    if first_bad is None:
        raise EmergencyError("no more than the faulty power reports a corrupted height")
    target = first_bad - 1
    roots: dict[bytes, int] = {}
    for view in views:
        root = view.root_at(target)
        if root is not None:
            roots[root] = roots.get(root, 0) + validator_set.powers[view.validator]
    agreed = [root for root, held in sorted(roots.items()) if held >= validator_set.quorum]
    if not agreed:
        raise EmergencyError(f"no quorum of views agrees on the root at height {target}")
    return Target(target, agreed[0])


# --- 3. sync ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncRequest:
    """Unsigned: `requester` asks for the certified blocks of `fork_id` from `from_height`.
    Harmless to forge: the answer carries certificates the requester verifies."""

    fork_id: int
    from_height: int
    requester: int

    @property
    def height(self) -> int:
        return self.from_height


@dataclass(frozen=True)
class SyncBlocks:
    """Answer to a `SyncRequest`: consecutive blocks (payloads) with their commit certificates."""

    fork_id: int
    blocks: tuple[tuple[bytes, CommitCertificate], ...]

    @property
    def height(self) -> int:
        return self.blocks[0][1].height if self.blocks else 0


def verify_synced_block(payload: bytes, certificate: CommitCertificate, block_hash: bytes,
                        height: int, fork_id: int, validator_set: ValidatorSet) -> None:
    """Raise `EmergencyError` unless `certificate` proves the block `block_hash` (the hash of
    `payload`, computed by the caller) at `height` of `fork_id`."""
    if certificate.fork_id != fork_id or certificate.height != height:
        raise EmergencyError(f"certificate for fork {certificate.fork_id} height {certificate.height}, "
                             f"not {fork_id}/{height}")
    if certificate.block_hash != block_hash:
        raise EmergencyError(f"certificate at height {height} is for another block")
    try:
        verify_certificate(certificate, validator_set)
    except CertificateError as error:
        raise EmergencyError(f"certificate at height {height}: {error}") from None


# --- 4. the plan -----------------------------------------------------------------------------------


class RestorePlan(rlp.Serializable):
    """What the validators agree to do; its hash is what they vote on."""

    fields = [
        ("old_fork_id", big_endian_int),
        ("new_fork_id", big_endian_int),
        ("halt_height", big_endian_int),
        ("target_height", big_endian_int),
        ("snapshot_root", Binary.fixed_length(32)),
        ("mode", text),
        ("surgery_digest", Binary.fixed_length(32)),
        ("replay_digest", Binary.fixed_length(32)),
        ("compensation_digest", Binary.fixed_length(32)),
        ("reconciliation_digest", Binary.fixed_length(32)),
        ("expected_root", Binary.fixed_length(32)),
        ("views", CountableList(HaltView)),
    ]

    @property
    def hash(self) -> bytes:
        """keccak(domain || rlp(plan)): the value the certificate commits to."""
        return _plan_hash(encode_plan(self))


@functools.lru_cache(maxsize=1024)
def _plan_hash(encoded: bytes) -> bytes:
    return keccak(PLAN_DOMAIN + encoded)


def encode_plan(plan: RestorePlan) -> bytes:
    """The plan as RLP: what a proposer gossips and every validator decodes and checks."""
    return rlp.encode(plan)


def decode_plan(raw: bytes) -> RestorePlan | None:
    """Decode `encode_plan` output; None for anything else (a Byzantine payload)."""
    try:
        return rlp.decode(raw, sedes=RestorePlan)
    except (rlp.DecodingError, rlp.DeserializationError, ValueError, TypeError, UnicodeDecodeError):
        return None


def compute_digest(items: list) -> bytes:
    """keccak of the RLP of a ledger (surgery, replay, compensation, reconciliation)."""
    return keccak(rlp.encode(items))


def check_plan_shape(plan: RestorePlan, validator_set: ValidatorSet) -> Target:
    """Check what anyone can check from the plan alone; return the target it must name."""
    if plan.mode not in MODES:
        raise PlanRejected(plan.hash, f"unknown mode {plan.mode!r}")
    if plan.new_fork_id != plan.old_fork_id + 1:
        raise PlanRejected(plan.hash, "new fork id must be the old one plus one")
    for view in plan.views:
        try:
            validate_view(view, validator_set, plan.old_fork_id)
        except InvalidView as error:
            raise PlanRejected(plan.hash, str(error)) from None
        if view.last_height > plan.halt_height:
            raise PlanRejected(plan.hash, f"view of validator {view.validator} is past the halt height")
    try:
        target = compute_target(plan.views, validator_set, plan.old_fork_id)
    except EmergencyError as error:
        raise PlanRejected(plan.hash, str(error)) from None
    if (plan.target_height, plan.snapshot_root) != (target.height, target.state_root):
        raise PlanRejected(
            plan.hash,
            f"target {plan.target_height} 0x{plan.snapshot_root.hex()[:16]} is not what its "
            f"views imply ({target.height} 0x{target.state_root.hex()[:16]})",
        )
    if not target.height < plan.halt_height:
        raise PlanRejected(plan.hash, "target is not below the halt height")
    return target


def check_target_before(plan: RestorePlan, own_first_bad_height: int) -> None:
    """An honest validator's own bound: the target must lie below the first corrupted
    height it found on its own chain with its own feed (a minority cannot move it later)."""
    if own_first_bad_height == NO_BAD_HEIGHT:
        raise PlanRejected(plan.hash, "this validator found no corrupted height on its own chain")
    if not plan.target_height < own_first_bad_height:
        raise PlanRejected(plan.hash, f"target {plan.target_height} is not below the first corrupted height "
                                      f"{own_first_bad_height} this validator found itself")


@dataclass(frozen=True)
class RollbackCertificate:
    """A restore plan and more than 2/3 of the power in precommits on its hash."""

    plan: RestorePlan
    certificate: CommitCertificate


def verify_rollback_certificate(rollback: RollbackCertificate, validator_set: ValidatorSet) -> int:
    """Verify a rollback certificate from its own contents; return the power that signed it."""
    cert = rollback.certificate
    if cert.block_hash != rollback.plan.hash:
        raise EmergencyError("certificate is for another plan")
    if cert.fork_id != get_plan_fork_id(rollback.plan.new_fork_id) or cert.height != PLAN_HEIGHT:
        raise EmergencyError("certificate is not in the plan's signing domain at the plan height")
    verify_certificate(cert, validator_set)
    check_plan_shape(rollback.plan, validator_set)
    return validator_set.get_power(cert.signers())


# --- the engine ------------------------------------------------------------------------------------


class EmergencyChain(Protocol):
    """What the emergency engine needs of a validator's own chain (old fork)."""

    @property
    def height(self) -> int:
        """Its head height."""

    def get_certified_root(self, height: int) -> bytes | None:
        """The state root at `height` if it holds that block (with its certificate), else None."""

    def get_synced_blocks(self, fork_id: int, from_height: int, count: int) -> tuple[tuple[bytes, CommitCertificate], ...]:
        """Up to `count` consecutive certified blocks of `fork_id` from `from_height` it can serve."""

    def apply_synced_block(self, payload: bytes, certificate: CommitCertificate) -> bool:
        """Verify (certificate included) and append the block at its head + 1; False if refused."""

    def get_first_bad_height(self) -> int:
        """The first corrupted height its alarm found (NO_BAD_HEIGHT if none)."""


ViewSigner = Callable[[HaltView], "HaltView | None"]
"""Signs this validator's view (a Byzantine one may forge it, or return None to withhold)."""


VIEW_RESEND = "view-resend"  # timer kinds of the engine's own; the rest are the plan engine's
VIEW_GATHER = "view-gather"


@dataclass
class EmergencyEngine:
    """One validator's emergency upgrade after the pause: views, sync, the plan vote.

    Speaks the Tendermint engine's interface (`on_start`, `on_message`, `on_timeout`
    returning actions), so the event loop drives it like any engine. Mutable; it owns its state.
    """

    index: int | None
    validator_set: ValidatorSet
    old_fork_id: int
    chain: EmergencyChain
    plan_engine: Engine
    sign_own_view: ViewSigner
    views: dict[int, HaltView] = field(default_factory=dict)  # best valid view per validator
    conflicts: list[ViewConflict] = field(default_factory=list)
    rejected_views: int = 0
    _view_sends: int = 0
    _own_view: HaltView | None = None
    _requested: dict[int, int] = field(default_factory=dict)  # peer -> height asked from
    _ahead: dict[int, HaltView] = field(default_factory=dict)  # views past this chain's head
    _started_plan: bool = False
    _plan_start: tuple[int, ResumePoint, tuple[Decide, ...]] = (PLAN_HEIGHT, ResumePoint(), ())

    # --- the Tendermint engine's interface, forwarded -----------------------------------------

    @property
    def tendermint(self) -> Engine:
        """The plan vote's Tendermint engine (what the event loop may inspect)."""
        return self.plan_engine

    @property
    def height(self) -> int:
        return self.plan_engine.height

    @property
    def round(self) -> int:
        return self.plan_engine.round

    @property
    def decided(self) -> bool:
        return self.plan_engine.decided

    @property
    def certificate_window(self) -> int:
        return self.plan_engine.certificate_window

    def get_known_views(self) -> tuple[HaltView, ...]:
        """The views this validator holds, by validator index (what its plans carry)."""
        return tuple(self.views[i] for i in sorted(self.views))

    # --- events ----------------------------------------------------------------------------

    def on_start(self, height: int, resume: ResumePoint = ResumePoint(), decided: Sequence[Decide] = ()) -> list[Action]:
        """(Re)start: sign and send the own view now, start the plan vote after the gather time."""
        actions: list[Action] = []
        self._plan_start = (height, resume, tuple(decided))
        self._send_own_view(actions)
        actions.append(ScheduleTimeout(VIEW_RESEND, PLAN_HEIGHT, 0, VIEW_RESEND_S))
        actions.append(ScheduleTimeout(VIEW_GATHER, PLAN_HEIGHT, 0, VIEW_GATHER_S))
        return actions

    def on_message(self, message: object, payload: bytes | None = None) -> list[Action]:
        """Dispatch: views and sync here, the rest to the plan engine."""
        if isinstance(message, HaltView):
            return self.on_view(message)
        if isinstance(message, SyncRequest):
            return self.on_sync_request(message)
        if isinstance(message, SyncBlocks):
            return self.on_sync_blocks(message)
        if isinstance(message, (Proposal, Vote, Commit, CommitRequest, HasVotes)):
            return self.plan_engine.on_message(message, payload)
        return []  # anything else a Byzantine peer sends is noise

    def on_timeout(self, kind: str, height: int, round: int) -> list[Action]:
        """View timers here, the plan engine's own timers to it."""
        actions: list[Action] = []
        if kind == VIEW_GATHER:
            if not self._started_plan:
                self._started_plan = True
                start_height, resume, decided = self._plan_start
                actions += self.plan_engine.on_start(start_height, resume, decided)
            return actions
        if kind == VIEW_RESEND:
            if not self.plan_engine.decided and self._view_sends < MAX_VIEW_SENDS:
                self._send_own_view(actions)
                self._requested.clear()  # an unanswered sync request is asked again
                actions.append(ScheduleTimeout(VIEW_RESEND, PLAN_HEIGHT, 0, VIEW_RESEND_S))
            return actions
        if not self._started_plan:
            return actions
        return self.plan_engine.on_timeout(kind, height, round)

    def on_view(self, view: HaltView) -> list[Action]:
        """A peer's view: validate it; one this validator can check against its own chain is
        kept (the furthest per validator); one from further ahead waits, and makes it sync."""
        actions: list[Action] = []
        try:
            validate_view(view, self.validator_set, self.old_fork_id)
        except InvalidView:
            self.rejected_views += 1
            return actions
        if view.last_height > self.chain.height:
            # Unverifiable yet: kept aside (a claim of blocks nobody can serve must never get
            # into a plan, where every honest validator would reject it), and a sync is asked.
            waiting = self._ahead.get(view.validator)
            if waiting is None or view.last_height > waiting.last_height:
                self._ahead[view.validator] = view
            if self.index is not None and view.validator != self.index:
                self._request_sync(view.validator, actions)
            return actions
        self._keep_view(view)
        return actions

    def _keep_view(self, view: HaltView) -> None:
        conflict = find_view_conflict(view, self.chain.get_certified_root)
        if conflict is not None:
            if len(self.conflicts) < MAX_VIEW_EVIDENCE:
                self.conflicts.append(conflict)
            return  # a view that contradicts a certified header is evidence, not input
        kept = self.views.get(view.validator)
        if kept is None or view.last_height > kept.last_height:
            self.views[view.validator] = view

    def on_sync_request(self, request: SyncRequest) -> list[Action]:
        """Serve certified blocks to a peer that lacks them."""
        if request.fork_id != self.old_fork_id or not 0 <= request.requester < self.validator_set.size:
            return []
        if request.requester == self.index or request.from_height < 1:
            return []
        blocks = self.chain.get_synced_blocks(request.fork_id, request.from_height, MAX_SYNC_BLOCKS)
        if not blocks:
            return []
        return [SendTo(request.requester, SyncBlocks(request.fork_id, blocks))]

    def on_sync_blocks(self, answer: SyncBlocks) -> list[Action]:
        """Append the blocks that extend this chain and carry a valid certificate; then
        re-sign the own view, which now reaches further."""
        actions: list[Action] = []
        if answer.fork_id != self.old_fork_id:
            return actions
        before = self.chain.height
        blocks = answer.blocks if isinstance(answer.blocks, tuple) else ()
        for item in blocks[:MAX_SYNC_BLOCKS]:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], bytes)
                    and isinstance(item[1], CommitCertificate)):
                break  # not what an honest peer sends: nothing after it is trusted either
            payload, certificate = item
            if certificate.height != self.chain.height + 1:
                continue
            if not self.chain.apply_synced_block(payload, certificate):
                break
        if self.chain.height > before:
            self._requested.clear()
            self._send_own_view(actions)
            for validator in sorted(self._ahead):  # the views it can check now
                if self._ahead[validator].last_height <= self.chain.height:
                    self._keep_view(self._ahead.pop(validator))
        return actions

    # --- outputs ----------------------------------------------------------------------------

    def _send_own_view(self, actions: list[Action]) -> None:
        if self.index is None:
            return
        height = self.chain.height
        if self._own_view is None or self._own_view.last_height != height:
            unsigned = make_view(self.index, self.old_fork_id, height, self.chain.get_first_bad_height(),
                                 self.chain.get_certified_root)
            self._own_view = self.sign_own_view(unsigned)
            if self._own_view is not None:
                self.views[self.index] = self._own_view
        if self._own_view is not None:
            self._view_sends += 1
            actions.append(Broadcast(self._own_view))

    def _request_sync(self, peer: int, actions: list[Action]) -> None:
        from_height = self.chain.height + 1
        if self._requested.get(peer) == from_height:
            return
        self._requested[peer] = from_height
        actions.append(SendTo(peer, SyncRequest(self.old_fork_id, from_height, self.index)))
