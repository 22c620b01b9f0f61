"""The emergency upgrade as a protocol: halt views, the restore plan, the rollback certificate.

After a halt every validator signs a `HaltView`: its last committed height, its state roots
over the suspect window and the first height whose oracle write it considers corrupted. A
`RestorePlan` carries a quorum of those views, so anyone can recompute its target from the
plan alone. The plan is then voted exactly like a block (Tendermint, in the plan's own
signing domain `get_plan_fork_id`, at `PLAN_HEIGHT`); more than 2/3 of the power in
precommits on the plan's hash is the rollback certificate. Everything here is pure: the event loop and the nodes drive it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import rlp
from eth_hash.auto import keccak

from consensus.messages import (
    CommitCertificate,
    ConsensusError,
    ValidatorSet,
    recover_public_key,
    sign_digest,
    verify_certificate,
)

VIEW_DOMAIN = b"l2sim/emergency/view/v1"
PLAN_DOMAIN = b"l2sim/emergency/plan/v1"
PLAN_HEIGHT = 0
"""The plan is voted at height 0 of its own fork id (see `get_plan_fork_id`)."""
PLAN_FORK_BASE = 1 << 32


def get_plan_fork_id(new_fork_id: int) -> int:
    """The fork id the restore plan for `new_fork_id` is voted under.

    Its own signing domain: whatever a plan vote signs (an engine wanders on to later heights
    while laggards catch up) can never occupy a slot the new fork's blocks will need.
    """
    return PLAN_FORK_BASE + new_fork_id

MODES = ("full-rollback", "selective-restore", "rollback-replay")
NO_BAD_HEIGHT = 0
"""`first_bad_height` of a validator that saw nothing corrupted (height 0 is genesis)."""


class EmergencyError(ConsensusError):
    """Raised when a halt view, plan or rollback certificate does not hold (base class)."""


class PlanRejected(EmergencyError):
    """Raised when a restore plan disagrees with what the checking validator computes."""

    def __init__(self, plan_hash: bytes, reason: str):
        super().__init__(f"restore plan 0x{plan_hash.hex()[:16]} rejected: {reason}")
        self.plan_hash = plan_hash
        self.reason = reason


@dataclass(frozen=True)
class HaltView:
    """One validator's signed account of the chain at the halt."""

    validator: int
    fork_id: int
    last_height: int
    first_bad_height: int
    window_start: int
    roots: tuple[bytes, ...]  # state roots at heights window_start .. last_height
    signature: bytes = b""

    @functools.cached_property
    def digest(self) -> bytes:
        """keccak(domain || rlp(fields)); what the validator signs."""
        body = [
            self.validator,
            self.fork_id,
            self.last_height,
            self.first_bad_height,
            self.window_start,
            list(self.roots),
        ]
        return keccak(VIEW_DOMAIN + rlp.encode(body))

    def root_at(self, height: int) -> bytes | None:
        """The root this view reports at `height`, or None outside its window."""
        if self.window_start <= height <= self.last_height:
            return self.roots[height - self.window_start]
        return None


def sign_view(private_key: bytes, view: HaltView) -> HaltView:
    """`view` signed with `private_key`."""
    return replace(view, signature=sign_digest(private_key, view.digest))


def is_view_signed(view: HaltView, validator_set: ValidatorSet) -> bool:
    """True when `view` is signed by the validator it names."""
    if not 0 <= view.validator < validator_set.size:
        return False
    return recover_public_key(view.digest, view.signature) == validator_set.public_keys[view.validator]


@dataclass(frozen=True)
class Target:
    """Where to restore to: the last height before the first corrupted write, and its root."""

    height: int
    state_root: bytes


def compute_target(views: tuple[HaltView, ...], validator_set: ValidatorSet) -> Target:
    """The restore target implied by a quorum of signed views.

    The first bad height is the lowest height that validators holding more than the faulty
    power (f+1) call corrupted at or before: at least one honest validator vouches for it,
    so Byzantine views can neither drag the target back to genesis nor past the glitch. The
    snapshot root must be reported by views holding a quorum of power.
    """
    views = _distinct_signed(views, validator_set)
    if validator_set.get_power(v.validator for v in views) < validator_set.quorum:
        raise EmergencyError("views hold no quorum of power")
    reported = sorted(
        (v.first_bad_height, v.validator) for v in views if v.first_bad_height != NO_BAD_HEIGHT
    )
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


def _distinct_signed(views: tuple[HaltView, ...], validator_set: ValidatorSet) -> tuple[HaltView, ...]:
    seen: dict[int, HaltView] = {}
    for view in views:
        if is_view_signed(view, validator_set) and view.validator not in seen:
            seen[view.validator] = view
    return tuple(seen[i] for i in sorted(seen))


@dataclass(frozen=True)
class RestorePlan:
    """What the validators agree to do; its hash is what they vote on."""

    old_fork_id: int
    new_fork_id: int
    halt_height: int
    target_height: int
    snapshot_root: bytes
    mode: str
    surgery_digest: bytes
    replay_digest: bytes
    compensation_digest: bytes
    reconciliation_digest: bytes
    expected_root: bytes
    views: tuple[HaltView, ...]

    @functools.cached_property
    def hash(self) -> bytes:
        """keccak(domain || rlp(fields, view digests)): the value the certificate commits to."""
        body = [
            self.old_fork_id,
            self.new_fork_id,
            self.halt_height,
            self.target_height,
            self.snapshot_root,
            self.mode.encode(),
            self.surgery_digest,
            self.replay_digest,
            self.compensation_digest,
            self.reconciliation_digest,
            self.expected_root,
            [v.digest + v.signature for v in self.views],
        ]
        return keccak(PLAN_DOMAIN + rlp.encode(body))


def compute_digest(items: list) -> bytes:
    """keccak of the RLP of a ledger (surgery, replay, compensation, reconciliation)."""
    return keccak(rlp.encode(items))


def check_plan_shape(plan: RestorePlan, validator_set: ValidatorSet) -> Target:
    """Check what anyone can check from the plan alone; return the target it must name."""
    if plan.mode not in MODES:
        raise PlanRejected(plan.hash, f"unknown mode {plan.mode!r}")
    if plan.new_fork_id != plan.old_fork_id + 1:
        raise PlanRejected(plan.hash, "new fork id must be the old one plus one")
    try:
        target = compute_target(plan.views, validator_set)
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


def is_price_deviation(onchain_price: int, reference_price: int, threshold_bps: int) -> bool:
    """True when the on-chain price is further than `threshold_bps` from the reference."""
    if reference_price <= 0:
        return onchain_price > 0
    return abs(onchain_price - reference_price) * 10_000 > threshold_bps * reference_price


def encode_plan(plan: RestorePlan) -> bytes:
    """The plan as RLP: what a proposer gossips and every validator decodes and checks."""
    views = [
        [v.validator, v.fork_id, v.last_height, v.first_bad_height, v.window_start, list(v.roots), v.signature]
        for v in plan.views
    ]
    return rlp.encode(
        [
            plan.old_fork_id,
            plan.new_fork_id,
            plan.halt_height,
            plan.target_height,
            plan.snapshot_root,
            plan.mode.encode(),
            plan.surgery_digest,
            plan.replay_digest,
            plan.compensation_digest,
            plan.reconciliation_digest,
            plan.expected_root,
            views,
        ]
    )


def decode_plan(raw: bytes) -> RestorePlan | None:
    """Decode `encode_plan` output; None for anything else (a Byzantine payload)."""
    integer = rlp.sedes.big_endian_int.deserialize
    try:
        items = rlp.decode(raw)
        views = tuple(
            HaltView(
                validator=integer(v[0]),
                fork_id=integer(v[1]),
                last_height=integer(v[2]),
                first_bad_height=integer(v[3]),
                window_start=integer(v[4]),
                roots=tuple(bytes(r) for r in v[5]),
                signature=bytes(v[6]),
            )
            for v in items[11]
        )
        return RestorePlan(
            old_fork_id=integer(items[0]),
            new_fork_id=integer(items[1]),
            halt_height=integer(items[2]),
            target_height=integer(items[3]),
            snapshot_root=bytes(items[4]),
            mode=bytes(items[5]).decode(),
            surgery_digest=bytes(items[6]),
            replay_digest=bytes(items[7]),
            compensation_digest=bytes(items[8]),
            reconciliation_digest=bytes(items[9]),
            expected_root=bytes(items[10]),
            views=views,
        )
    except (rlp.DecodingError, rlp.DeserializationError, ValueError, TypeError, IndexError):
        return None
