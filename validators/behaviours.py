"""How a validator behaves, one class per behaviour (the `consensus.sim.Behaviour` protocol).

`Honest` is the base: every hook does what an honest node does, and each Byzantine
behaviour overrides only the hooks it corrupts. The consensus simulation calls three:

- `is_running()`: False for `crash` (down for the whole run);
- `get_engine_inputs(kit)`: how the engine proposes, judges blocks, signs, and whether
  it forgets its locks (`wrong-root` proposes blocks honest nodes reject and accepts
  anything; `equivocate` signs with the key that bypasses the journal; `amnesia` drops its
  lock at every round);
- `transmit(transmission)`: what goes on the wire (`withhold` sends nothing;
  `equivocate` shows one value to half of the honest nodes and another to the rest;
  `duplicate-votes` sends each of its proposals and votes along with copies re-signed
  with other nonces, valid and low-s, which honest nodes must count once).

The emergency layer calls two more, which a behaviour of that layer overrides:
`make_view(view, key)` (the signed halt view to send, or None) and
`choose_plan_views(views, validator_set)` (the views a proposer builds its plan from):
`forge-views` signs views with false roots and a false first corrupted height;
`lie-target`, as proposer, builds its plan from the quorum of views that puts the target
latest, inside the corrupted window if it can.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, replace
from typing import ClassVar

from eth_hash.auto import keccak

from consensus.emergency import EmergencyError, HaltView, compute_target, sign_view
from consensus.messages import Message, Proposal, SignedMessage, ValidatorSet, Vote
from consensus.sim import HONEST, BehaviourLookup, EngineInputs, NodeKit, Transmission
from validators.keys import ValidatorError, ValidatorKey, resign_message

DUPLICATE_COPIES = 2  # re-signed copies `duplicate-votes` sends beside each message


class UnknownBehaviourError(ValidatorError, LookupError):
    """Raised when a behaviour name is not one of `BEHAVIOUR_NAMES`."""

    def __init__(self, name: str):
        super().__init__(f"unknown behaviour {name!r}: expected one of {', '.join(BEHAVIOUR_NAMES)}")
        self.name = name


Sent = list[tuple[int, Message, bytes | None]]


@dataclass(frozen=True)
class Honest:
    """Follows the protocol; the base every behaviour overrides hook by hook. `key` is the
    node's key, for behaviours that sign beyond what the engine asks (`duplicate-votes`)."""

    key: ValidatorKey | None = None
    name: ClassVar[str] = HONEST

    def is_running(self) -> bool:
        """True: the node starts (and restarts after a scheduled crash)."""
        return True

    def get_engine_inputs(self, kit: NodeKit) -> EngineInputs:
        """The app's own proposals and checks, signatures through the journal."""
        return EngineInputs(kit.app.propose, kit.app.is_valid, kit.signer)

    def transmit(self, transmission: Transmission) -> Sent:
        """Every message to every receiver, unchanged."""
        return transmission.as_sent()

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        """The halt view to send, from the node's honest signed `view`; None sends none."""
        return view

    def choose_plan_views(self, views: tuple[HaltView, ...],
                          validator_set: ValidatorSet | None = None) -> tuple[HaltView, ...]:
        """The views a proposer builds its restore plan from: all it received."""
        return views


@dataclass(frozen=True)
class Crash(Honest):
    """Down for the whole run: never starts, sends no view."""

    name: ClassVar[str] = "crash"

    def is_running(self) -> bool:
        return False

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        return None


@dataclass(frozen=True)
class Withhold(Honest):
    """Runs the protocol but sends nothing, views included."""

    name: ClassVar[str] = "withhold"

    def transmit(self, transmission: Transmission) -> Sent:
        return []

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        return None


@dataclass(frozen=True)
class Amnesia(Honest):
    """Forgets its lock at every new round and on restart."""

    name: ClassVar[str] = "amnesia"

    def get_engine_inputs(self, kit: NodeKit) -> EngineInputs:
        return replace(super().get_engine_inputs(kit), forget_locks=True)


@dataclass(frozen=True)
class WrongRoot(Honest):
    """Proposes blocks with a wrong state root, prevotes anything, and reports a halt view
    of zero roots that calls every height bad (to drag the restore back to genesis)."""

    name: ClassVar[str] = "wrong-root"

    def get_engine_inputs(self, kit: NodeKit) -> EngineInputs:
        return EngineInputs(kit.app.propose_invalid, lambda height, block_hash, payload: True, kit.signer)

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        forged = view.copy(first_bad_height=1, roots=tuple(bytes(32) for _ in view.roots), signature=b"")
        return sign_view(key.private_key, forged)


@dataclass(frozen=True)
class Equivocate(Honest):
    """Signs with the key that bypasses the journal and, with the other Byzantine nodes,
    shows one value to half of the honest nodes (side A) and another to the rest (side B)."""

    name: ClassVar[str] = "equivocate"

    def get_engine_inputs(self, kit: NodeKit) -> EngineInputs:
        return replace(super().get_engine_inputs(kit), signer=kit.raw_signer)

    def transmit(self, transmission: Transmission) -> Sent:
        # every own message keeps to the split, the answers to a peer's summary too: side B
        # must never be handed the version side A saw
        if not transmission.is_own_signed():
            return transmission.as_sent()
        version_a, payload_a, version_b, payload_b = _split(transmission)
        side_b = transmission.coalition.side_b
        return [(i, version_b, payload_b) if i in side_b else (i, version_a, payload_a)
                for i in transmission.receivers]


def _split(transmission: Transmission) -> tuple[SignedMessage, bytes | None, SignedMessage, bytes | None]:
    """Two conflicting signed versions of the message: (A, payload, B, payload). Votes
    follow the coalition's conflicting proposal of the round, else A's value against nil."""
    message, payload, kit = transmission.message, transmission.payload, transmission.kit
    assert isinstance(message, (Proposal, Vote))
    signer, conflicts = kit.raw_signer, transmission.coalition.conflicts
    key = (message.height, message.round)
    if isinstance(message, Proposal):
        if message.pol_round != -1 or payload is None:
            return message, payload, message, payload
        conflict = conflicts.get(key)
        if conflict is None:
            hash_b, payload_b = kit.app.propose_conflicting(message.height, message.round)
            proposal_b = signer(Proposal(message.fork_id, message.height, message.round, hash_b, -1,
                                         transmission.sender))
            conflict = conflicts[key] = (message, payload, proposal_b, payload_b)
        return conflict
    conflict = conflicts.get(key)
    if conflict is not None:
        hash_a, hash_b = conflict[0].block_hash, conflict[2].block_hash
    elif message.block_hash is not None:
        hash_a, hash_b = message.block_hash, None
    else:
        return message, None, message, None
    vote_a = signer(replace(message, block_hash=hash_a, signature=b""))
    vote_b = signer(replace(message, block_hash=hash_b, signature=b""))
    return vote_a, None, vote_b, None


@dataclass(frozen=True)
class DuplicateVotes(Honest):
    """Sends each proposal and vote it signs together with `copies` re-signed copies (other
    RFC 6979 nonces: valid, low-s, same digest). Counting each copy would let one key stand
    for several validators; honest nodes count it once."""

    name: ClassVar[str] = "duplicate-votes"
    copies: int = DUPLICATE_COPIES

    def __post_init__(self) -> None:
        assert self.key is not None, "duplicate-votes re-signs: it needs the node's key"

    def transmit(self, transmission: Transmission) -> Sent:
        if not transmission.is_own_signed():
            return transmission.as_sent()
        message = transmission.message
        assert isinstance(message, (Proposal, Vote))
        copies = [message, *(resign_message(self.key, message, attempt) for attempt in range(1, self.copies + 1))]
        assert len({c.signature for c in copies}) == len(copies), "a copy repeats a signature"
        return [(receiver, copy, transmission.payload) for receiver in transmission.receivers for copy in copies]


@dataclass(frozen=True)
class ForgeViews(Honest):
    """Votes like an honest node but signs halt views with false roots and a false first
    corrupted height (the last height: as late as it can claim)."""

    name: ClassVar[str] = "forge-views"

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        forged = view.copy(first_bad_height=view.last_height, signature=b"",
                           roots=tuple(keccak(b"forged" + root) for root in view.roots))
        return sign_view(key.private_key, forged)


@dataclass(frozen=True)
class LieTarget(Honest):
    """As proposer, builds its plan from the quorum of views that puts the target latest (a
    view that saw nothing and views that report late count for it); its own view reports
    the corruption at its last height."""

    name: ClassVar[str] = "lie-target"
    max_subsets: ClassVar[int] = 4096  # bounded search

    def make_view(self, view: HaltView, key: ValidatorKey) -> HaltView | None:
        return sign_view(key.private_key, view.copy(first_bad_height=view.last_height, signature=b""))

    def choose_plan_views(self, views: tuple[HaltView, ...],
                          validator_set: ValidatorSet | None = None) -> tuple[HaltView, ...]:
        if validator_set is None or not views:
            return views
        fork_id = views[0].fork_id
        best, best_height = views, -1
        for size in range(len(views), 0, -1):
            for count, subset in enumerate(itertools.combinations(views, size)):
                if count >= self.max_subsets:
                    break
                try:
                    height = compute_target(subset, validator_set, fork_id).height
                except EmergencyError:
                    continue
                if height > best_height:
                    best, best_height = subset, height
        return best


BEHAVIOUR_CLASSES: tuple[type[Honest], ...] = (Honest, Crash, Withhold, Equivocate, Amnesia, WrongRoot,
                                               DuplicateVotes, ForgeViews, LieTarget)
BEHAVIOUR_NAMES: tuple[str, ...] = tuple(cls.name for cls in BEHAVIOUR_CLASSES)
BYZANTINE_BEHAVIOURS: tuple[str, ...] = tuple(name for name in BEHAVIOUR_NAMES if name != HONEST)
_BY_NAME = {cls.name: cls for cls in BEHAVIOUR_CLASSES}


def get_behaviour(name: str, key: ValidatorKey | None = None) -> Honest:
    """The behaviour called `name`, for the node holding `key` (needed by `duplicate-votes`)."""
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownBehaviourError(name)
    return cls(key=key)


def make_behaviour_lookup(key: ValidatorKey) -> BehaviourLookup:
    """`name -> behaviour` for the node holding `key` (what a `NodeKit` carries)."""
    return functools.partial(get_behaviour, key=key)
