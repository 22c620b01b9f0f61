"""Tendermint BFT consensus engine, sans-I/O.

Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic,
arXiv:1807.04938), with weighted voting power. Each `on_*` handler takes one event and
returns the actions it causes; the engine never reads a clock, touches a network or
signs by itself:

- the application is reached through `propose(height, round) -> (block_hash, payload)`
  and `is_valid(height, block_hash, payload) -> bool` (nil prevote when False);
- signing goes through `signer(message) -> signed message`, which may raise
  `SigningRefused` (the journal refusing a double sign): the engine then moves on
  without sending, as if the message had been lost.

Line numbers in comments refer to Algorithm 1 of the paper.

What the paper leaves to the gossip layer is done as CometBFT's reactor does it, driven
by what is missing rather than by re-sending everything: a node still undecided when its
`rebroadcast` beat fires (the beat restarts with every height, so a height that decides
within it sends nothing more) broadcasts a `HasVotes` summary of the proposals and votes
it holds; a peer answers it once per beat with exactly the signed messages the summary
lacks (every round of the height: the precommits that ended an earlier round, a polka a
later proposal needs, equivocating pairs), or with the commit certificate (`Commit`) when
it has decided that height. So partitions, drops and restarts heal, and a healthy height
costs one broadcast per signed message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    VOTE_STEPS,
    CertificateError,
    Commit,
    CommitCertificate,
    CommitRequest,
    HasVotes,
    Message,
    Proposal,
    SignedMessage,
    SigningRefused,
    ValidatorSet,
    Vote,
    is_signed_by,
    is_well_formed,
    is_well_formed_summary,
    verify_certificate,
)

STEP_PROPOSE = "propose"
STEP_PREVOTE = "prevote"
STEP_PRECOMMIT = "precommit"
STEP_DECIDED = "decided"
TIMEOUT_KINDS = ("propose", "prevote", "precommit", "commit", "rebroadcast")
MAX_RULE_FIRINGS = 256  # per event; each firing advances step, round or height
FUTURE_HEIGHTS = 2  # messages for heights up to this far ahead are buffered
# Buffered messages per (future height, signer): a proposal and two votes for each of 8
# rounds. Per signer, and only after the signature checks, so a flooder fills its own
# quota and never an honest validator's.
FUTURE_MESSAGES_PER_SIGNER = 24

ProposeFn = Callable[[int, int], tuple[bytes, bytes]]
IsValidFn = Callable[[int, bytes, bytes], bool]
SignerFn = Callable[[SignedMessage], SignedMessage]


@dataclass(frozen=True)
class TimeoutConfig:
    """Timeouts grow linearly with the round: base_s + round * delta_s."""

    propose_s: float = 1.0
    propose_delta_s: float = 0.5
    prevote_s: float = 0.5
    prevote_delta_s: float = 0.25
    precommit_s: float = 0.5
    precommit_delta_s: float = 0.25
    commit_s: float = 0.5
    rebroadcast_s: float = 1.0  # beat of the HasVotes summaries of an undecided height; 0 disables them

    def get_delay_s(self, kind: str, round: int) -> float:
        """Delay of timeout `kind` in `round`."""
        if kind == "propose":
            return self.propose_s + round * self.propose_delta_s
        if kind == "prevote":
            return self.prevote_s + round * self.prevote_delta_s
        if kind == "precommit":
            return self.precommit_s + round * self.precommit_delta_s
        if kind == "commit":
            return self.commit_s
        assert kind == "rebroadcast", kind
        return self.rebroadcast_s


@dataclass(frozen=True)
class ResumePoint:
    """Where a (re)started engine begins a height: round and lock, from the vote journal."""

    round: int = 0
    locked_round: int = -1
    locked_hash: bytes | None = None


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Broadcast:
    """Send `message` (with the block `payload` for proposals and commits) to every peer."""

    message: Message
    payload: bytes | None = None


@dataclass(frozen=True)
class SendTo:
    """Send `message` to one validator (catch-up)."""

    validator: int
    message: Message
    payload: bytes | None = None


@dataclass(frozen=True)
class ScheduleTimeout:
    """Call `on_timeout(kind, height, round)` after `delay_s` of virtual time."""

    kind: str
    height: int
    round: int
    delay_s: float


@dataclass(frozen=True)
class Decide:
    """`block_hash` (with `payload`) is committed at `height`, proven by `certificate`."""

    height: int
    round: int
    block_hash: bytes
    payload: bytes | None
    certificate: CommitCertificate


@dataclass(frozen=True)
class Refused:
    """The signer refused `message` (e.g. the journal prevented a double sign)."""

    message: SignedMessage
    reason: str


Action = Union[Broadcast, SendTo, ScheduleTimeout, Decide, Refused]


# --- state -------------------------------------------------------------------------------


@dataclass
class VoteTally:
    """Votes of one (round, step), counted as CometBFT's `VoteSet` counts them: a validator's
    power at most once per value, however many signatures it makes.

    A second vote with a digest already seen is a duplicate and is dropped whatever its
    signature (a key holder can sign one digest many times, with other nonces). A vote for
    another value from a validator already seen is equivocation: it counts once for that
    value too, so that a polka shown to some nodes can be relayed to all (safety holds while
    Byzantine power stays below 1/3), and `add` returns the first vote to pair it with.
    """

    votes: dict[int, Vote] = field(default_factory=dict)  # first vote per validator
    by_value: dict[bytes | None, dict[int, Vote]] = field(default_factory=dict)
    power_by_value: dict[bytes | None, int] = field(default_factory=dict)
    power: int = 0  # of distinct validators, whatever they voted

    def is_duplicate(self, vote: Vote) -> bool:
        """True when a vote with the same signing digest was already counted."""
        counted = self.by_value.get(vote.block_hash, {}).get(vote.validator)
        return counted is not None and counted.digest == vote.digest

    def add(self, vote: Vote, power: int) -> Vote | None:
        """Count a new (not duplicate) vote of `power`; returns the validator's earlier
        vote for another value when this one equivocates, else None."""
        assert not self.is_duplicate(vote), "duplicates are dropped before counting"
        voters = self.by_value.setdefault(vote.block_hash, {})
        assert vote.validator not in voters, "one digest per (validator, value) in a tally"
        voters[vote.validator] = vote
        self.power_by_value[vote.block_hash] = self.power_by_value.get(vote.block_hash, 0) + power
        first = self.votes.get(vote.validator)
        if first is not None:
            return first
        self.votes[vote.validator] = vote
        self.power += power
        return None

    def get_votes_for(self, value: bytes | None) -> tuple[Vote, ...]:
        """Votes for `value`, one per validator, by validator index."""
        voters = self.by_value.get(value, {})
        return tuple(voters[i] for i in sorted(voters))


@dataclass
class Engine:
    """One validator's Tendermint state machine (mutable; the engine owns it)."""

    fork_id: int
    validator_set: ValidatorSet
    index: int | None  # None: an observer that never signs
    propose: ProposeFn
    is_valid: IsValidFn
    signer: SignerFn
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    verify_signatures: bool = True
    forget_locks: bool = False  # amnesia (a Byzantine option): drop the lock at every new round

    height: int = -1
    round: int = -1
    step: str = STEP_PROPOSE
    locked_round: int = -1
    locked_hash: bytes | None = None
    valid_round: int = -1
    valid_hash: bytes | None = None
    valid_payload: bytes | None = None
    decided: bool = False
    # conflicting signed pairs this node has seen (same slot, different messages)
    evidence: list[tuple[SignedMessage, SignedMessage]] = field(default_factory=list)

    _proposals: dict[int, tuple[Proposal, bytes | None]] = field(default_factory=dict)
    _tallies: dict[tuple[int, str], VoteTally] = field(default_factory=dict)
    _round_senders: dict[int, set[int]] = field(default_factory=dict)
    _round_power: dict[int, int] = field(default_factory=dict)  # round -> power of its distinct senders
    _fired: set[tuple[str, int]] = field(default_factory=set)
    _valid_cache: dict[tuple[bytes, bytes], bool] = field(default_factory=dict)
    _future: dict[int, list[tuple[SignedMessage, bytes | None]]] = field(default_factory=dict)
    _future_load: dict[tuple[int, int], int] = field(default_factory=dict)  # (height, signer) -> buffered
    _future_digests: set[tuple[int, bytes]] = field(default_factory=set)  # (height, digest) buffered
    _certificates: dict[int, tuple[CommitCertificate, bytes | None]] = field(default_factory=dict)
    _catchup_sent: set[tuple[int, int]] = field(default_factory=set)
    _requested: set[tuple[int, int]] = field(default_factory=set)
    _answered: set[int] = field(default_factory=set)  # peers whose summary was answered this beat
    certificate_window: int = 256  # how many decided heights are kept for catch-up

    def get_tally(self, round: int, step: str) -> VoteTally:
        """The votes of (round, step) this node counted at its height (empty when none): a
        read-only view, as CometBFT's `HeightVoteSet.Prevotes(round)` / `Precommits(round)`."""
        return self._tallies.get((round, step)) or VoteTally()

    @property
    def tendermint(self) -> "Engine":
        """The Tendermint engine itself (a wrapper such as the emergency engine returns its inner one)."""
        return self

    # --- events ---------------------------------------------------------------------------

    def on_start(self, height: int, resume: ResumePoint = ResumePoint(),
                 decided: Sequence[Decide] = ()) -> list[Action]:
        """Start (or restart) at `height`, from the journal's resume point. `decided` are
        decisions the node persisted before (its chain's commits), kept to help peers that
        are still working on those heights."""
        assert height >= 0
        actions: list[Action] = []
        for decision in decided:
            if height - self.certificate_window <= decision.height < height:
                self._certificates[decision.height] = (decision.certificate, decision.payload)
        self._enter_height(height, resume, actions)
        return actions

    def on_message(self, message: Message, payload: bytes | None = None) -> list[Action]:
        """Dispatch a received message."""
        if isinstance(message, Proposal):
            return self.on_proposal(message, payload)
        if isinstance(message, Vote):
            return self.on_vote(message)
        if isinstance(message, CommitRequest):
            return self.on_commit_request(message)
        if isinstance(message, HasVotes):
            return self.on_has_votes(message)
        assert isinstance(message, Commit), type(message)
        return self.on_commit(message, payload)

    def on_commit_request(self, request: CommitRequest) -> list[Action]:
        """A peer still at `request.height` asks for its commit certificate."""
        actions: list[Action] = []
        if request.fork_id == self.fork_id and 0 <= request.requester < self.validator_set.size:
            self._help_peer(request.requester, request.height, actions)
        return actions

    def on_proposal(self, proposal: Proposal, payload: bytes | None) -> list[Action]:
        """A proposal (with its block payload) was received."""
        actions: list[Action] = []
        if self._route(proposal, payload, actions):
            self._ingest_proposal(proposal, payload, verify=True)
            self._apply_rules(actions)
        return actions

    def on_vote(self, vote: Vote) -> list[Action]:
        """A prevote or precommit was received."""
        actions: list[Action] = []
        if self._route(vote, None, actions) and self._ingest_vote(vote, verify=True):
            self._apply_rules(actions)
        return actions

    def on_commit(self, commit: Commit, payload: bytes | None) -> list[Action]:
        """A commit certificate (catch-up) was received: decide if it proves this height."""
        actions: list[Action] = []
        cert = commit.certificate
        if cert.fork_id != self.fork_id or cert.height != self.height or self.decided or payload is None:
            return actions
        try:
            verify_certificate(cert, self.validator_set)
        except CertificateError:
            return actions
        if self._check_valid(cert.block_hash, payload):
            self._decide(cert.round, cert.block_hash, payload, cert, actions)
        return actions

    def on_timeout(self, kind: str, height: int, round: int) -> list[Action]:
        """A timeout scheduled earlier fired."""
        actions: list[Action] = []
        if height != self.height:
            return actions
        if kind == "commit":
            if self.decided:
                self._enter_height(height + 1, ResumePoint(), actions)
            return actions
        if kind == "rebroadcast":
            self._rebroadcast(actions)
            return actions
        if self.decided or round != self.round:
            return actions
        if kind == "propose" and self.step == STEP_PROPOSE:  # line 57
            self._send_vote(PREVOTE, None, actions)
            self.step = STEP_PREVOTE
        elif kind == "prevote" and self.step == STEP_PREVOTE:  # line 61
            self._send_vote(PRECOMMIT, None, actions)
            self.step = STEP_PRECOMMIT
        elif kind == "precommit":  # line 65
            self._start_round(self.round + 1, actions)
        self._apply_rules(actions)
        return actions

    # --- height and round -------------------------------------------------------------------

    def _enter_height(self, height: int, resume: ResumePoint, actions: list[Action]) -> None:
        self.height = height
        self.decided = False
        self.locked_round = resume.locked_round
        self.locked_hash = resume.locked_hash
        self.valid_round = resume.locked_round
        self.valid_hash = resume.locked_hash
        self.valid_payload = None
        self._proposals = {}
        self._tallies = {}
        self._round_senders = {}
        self._round_power = {}
        self._fired = set()
        self._valid_cache = {}
        self._catchup_sent = set()
        self._requested = set()
        self._answered = set()
        for old in [h for h in self._certificates if h < height - self.certificate_window]:
            del self._certificates[old]
        buffered = self._future.pop(height, [])
        for old in [h for h in self._future if h < height]:
            del self._future[old]
        self._future_load = {k: n for k, n in self._future_load.items() if k[0] > height}
        self._future_digests = {k for k in self._future_digests if k[0] > height}
        if self.timeouts.rebroadcast_s > 0:
            actions.append(ScheduleTimeout("rebroadcast", height, 0, self.timeouts.rebroadcast_s))
        self._start_round(resume.round, actions)
        for message, payload in buffered:  # their signatures were checked when buffered
            if isinstance(message, Proposal):
                self._ingest_proposal(message, payload, verify=False)
            else:
                self._ingest_vote(message, verify=False)
        self._apply_rules(actions)

    def _start_round(self, round: int, actions: list[Action]) -> None:  # line 11
        self.round = round
        self.step = STEP_PROPOSE
        if self.forget_locks:
            self.locked_round, self.locked_hash = -1, None
        actions.append(ScheduleTimeout("propose", self.height, round, self.timeouts.get_delay_s("propose", round)))
        if self.index is None or self.validator_set.get_proposer(self.height, round) != self.index:
            return
        if self.valid_hash is not None:
            if self.valid_payload is None:
                return  # restarted with a lock but without its block: let the round time out
            block_hash, payload, pol_round = self.valid_hash, self.valid_payload, self.valid_round
        else:
            block_hash, payload = self.propose(self.height, round)
            pol_round = -1
        proposal = Proposal(self.fork_id, self.height, round, block_hash, pol_round, self.index)
        signed = self._sign(proposal, actions)
        if signed is not None:
            actions.append(Broadcast(signed, payload))
            self._ingest_proposal(signed, payload, verify=False)

    # --- ingesting messages ------------------------------------------------------------------

    def _route(self, message: SignedMessage, payload: bytes | None, actions: list[Action]) -> bool:
        """True when the message belongs to the current height; buffers or answers otherwise."""
        if not is_well_formed(message) or message.fork_id != self.fork_id or self.height < 0:
            return False
        if message.height > self.height:
            if message.height > self.height + FUTURE_HEIGHTS or not self._is_authentic(message):
                return False
            self._buffer_future(message, payload)
            peer = message.signer_index
            if self.index is not None and peer != self.index and (peer, self.height) not in self._requested:
                self._requested.add((peer, self.height))  # a peer is ahead: ask it for our height
                actions.append(SendTo(peer, CommitRequest(self.fork_id, self.height, self.index)))
            return False
        if message.height < self.height:
            self._help_peer(message.signer_index, message.height, actions)
            return False
        # Decided here: a vote still arriving for the height is no sign its sender lags (its
        # quorum may be a few messages away); one still undecided a beat later asks with
        # its summary and gets the certificate then, not one per late vote.
        return not self.decided

    def _is_authentic(self, message: SignedMessage) -> bool:
        return not self.verify_signatures or is_signed_by(message, self.validator_set)

    def _buffer_future(self, message: SignedMessage, payload: bytes | None) -> None:
        """Keep an authentic message for a later height, once per digest, within its
        signer's quota."""
        load_key = (message.height, message.signer_index)
        digest_key = (message.height, message.digest)
        if digest_key in self._future_digests or self._future_load.get(load_key, 0) >= FUTURE_MESSAGES_PER_SIGNER:
            return
        self._future_digests.add(digest_key)
        self._future_load[load_key] = self._future_load.get(load_key, 0) + 1
        self._future.setdefault(message.height, []).append((message, payload))

    def _help_peer(self, peer: int, height: int, actions: list[Action]) -> None:
        stored = self._certificates.get(height)
        if stored is None or peer == self.index or (peer, height) in self._catchup_sent:
            return
        self._catchup_sent.add((peer, height))
        actions.append(SendTo(peer, Commit(stored[0]), stored[1]))

    def _ingest_proposal(self, proposal: Proposal, payload: bytes | None, verify: bool) -> None:
        if proposal.round < 0 or not (proposal.pol_round == -1 or 0 <= proposal.pol_round < proposal.round):
            return
        if proposal.proposer != self.validator_set.get_proposer(proposal.height, proposal.round):
            return
        existing = self._proposals.get(proposal.round)
        if existing is not None and existing[0].digest == proposal.digest:
            if existing[1] is None and payload is not None:  # the block of the proposal kept
                self._proposals[proposal.round] = (existing[0], payload)
            return  # a re-signed copy is the same proposal, whatever its signature
        if verify and not self._is_authentic(proposal):
            return
        if existing is not None:  # another proposal from the proposer of the round
            self.evidence.append((existing[0], proposal))
            return
        self._proposals[proposal.round] = (proposal, payload)
        self._note_sender(proposal.round, proposal.proposer)

    def _ingest_vote(self, vote: Vote, verify: bool) -> bool:
        """Count the vote; True when it may make a rule fire: it brought its tally, its value
        or its round's senders up to a threshold. The engine is quiescent before each event
        and every rule's condition is a count reaching a threshold, so a vote that crosses
        none changes no rule's answer (the rules are not re-run for it)."""
        if vote.step not in VOTE_STEPS or vote.round < 0 or not 0 <= vote.validator < self.validator_set.size:
            return False
        tally = self._tallies.get((vote.round, vote.step))
        if tally is not None and tally.is_duplicate(vote):
            return False  # the same vote again, re-signed or not: a validator counts once
        if verify and not self._is_authentic(vote):
            return False
        if tally is None:
            tally = self._tallies[(vote.round, vote.step)] = VoteTally()
        quorum = self.validator_set.quorum
        before = (tally.power, tally.power_by_value.get(vote.block_hash, 0), self._round_power.get(vote.round, 0))
        first = tally.add(vote, self.validator_set.powers[vote.validator])
        if first is not None:
            self.evidence.append((first, vote))
        else:
            self._note_sender(vote.round, vote.validator)
        after = (tally.power, tally.power_by_value.get(vote.block_hash, 0), self._round_power.get(vote.round, 0))
        thresholds = (quorum, quorum, self.validator_set.skip_threshold)
        return any(b < t <= a for b, a, t in zip(before, after, thresholds))

    def _note_sender(self, round: int, validator: int) -> None:
        senders = self._round_senders.setdefault(round, set())
        if validator not in senders:  # the power of a round's senders, kept as they arrive
            senders.add(validator)
            self._round_power[round] = self._round_power.get(round, 0) + self.validator_set.powers[validator]

    # --- the upon rules ----------------------------------------------------------------------

    def _apply_rules(self, actions: list[Action]) -> None:
        for _ in range(MAX_RULE_FIRINGS):
            if self.decided or self.height < 0 or not self._fire_one_rule(actions):
                return
        raise AssertionError("upon rules did not quiesce")

    def _fire_one_rule(self, actions: list[Action]) -> bool:
        quorum = self.validator_set.quorum
        r = self.round
        # line 49: a proposal and 2f+1 precommits for it, in any round
        for round in sorted(k[0] for k in self._tallies if k[1] == PRECOMMIT):
            tally = self._tallies[(round, PRECOMMIT)]
            entry = self._proposals.get(round)
            if entry is None or tally.power_by_value.get(entry[0].block_hash, 0) < quorum:
                continue
            proposal, payload = entry
            if payload is not None and self._check_valid(proposal.block_hash, payload):
                self._decide(round, proposal.block_hash, payload, None, actions)
                return True
        # line 55: f+1 (by power) messages from a later round
        later = [k for k, power in self._round_power.items()
                 if k > r and power >= self.validator_set.skip_threshold]
        if later:
            self._start_round(max(later), actions)
            return True
        entry = self._proposals.get(r)
        if self.step == STEP_PROPOSE and entry is not None:
            proposal, payload = entry
            vr = proposal.pol_round
            if vr == -1:  # line 22
                ok = self._is_payload_valid(proposal, payload) and (
                    self.locked_round == -1 or self.locked_hash == proposal.block_hash)
                self._send_vote(PREVOTE, proposal.block_hash if ok else None, actions)
                self.step = STEP_PREVOTE
                return True
            if 0 <= vr < r and self._get_power(vr, PREVOTE, proposal.block_hash) >= quorum:  # line 28
                ok = self._is_payload_valid(proposal, payload) and (
                    self.locked_round <= vr or self.locked_hash == proposal.block_hash)
                self._send_vote(PREVOTE, proposal.block_hash if ok else None, actions)
                self.step = STEP_PREVOTE
                return True
        prevotes = self._tallies.get((r, PREVOTE))
        if self.step == STEP_PREVOTE and prevotes is not None and prevotes.power >= quorum \
                and ("prevote-any", r) not in self._fired:  # line 34
            self._fired.add(("prevote-any", r))
            actions.append(ScheduleTimeout("prevote", self.height, r, self.timeouts.get_delay_s("prevote", r)))
            return True
        if self.step in (STEP_PREVOTE, STEP_PRECOMMIT) and entry is not None and ("polka", r) not in self._fired:
            proposal, payload = entry
            if self._get_power(r, PREVOTE, proposal.block_hash) >= quorum \
                    and self._is_payload_valid(proposal, payload):  # line 36
                self._fired.add(("polka", r))
                if self.step == STEP_PREVOTE:
                    self.locked_hash, self.locked_round = proposal.block_hash, r
                    self._send_vote(PRECOMMIT, proposal.block_hash, actions)
                    self.step = STEP_PRECOMMIT
                self.valid_hash, self.valid_round, self.valid_payload = proposal.block_hash, r, payload
                return True
        if self.step == STEP_PREVOTE and self._get_power(r, PREVOTE, None) >= quorum:  # line 44
            self._send_vote(PRECOMMIT, None, actions)
            self.step = STEP_PRECOMMIT
            return True
        precommits = self._tallies.get((r, PRECOMMIT))
        if precommits is not None and precommits.power >= quorum and ("precommit-any", r) not in self._fired:  # line 47
            self._fired.add(("precommit-any", r))
            actions.append(ScheduleTimeout("precommit", self.height, r, self.timeouts.get_delay_s("precommit", r)))
            return True
        return False

    def _get_power(self, round: int, step: str, value: bytes | None) -> int:
        tally = self._tallies.get((round, step))
        return 0 if tally is None else tally.power_by_value.get(value, 0)

    def _is_payload_valid(self, proposal: Proposal, payload: bytes | None) -> bool:
        return payload is not None and self._check_valid(proposal.block_hash, payload)

    def _check_valid(self, block_hash: bytes, payload: bytes) -> bool:
        key = (block_hash, payload)
        if key not in self._valid_cache:
            self._valid_cache[key] = bool(self.is_valid(self.height, block_hash, payload))
        return self._valid_cache[key]

    # --- outputs --------------------------------------------------------------------------

    def _sign(self, message: SignedMessage, actions: list[Action]) -> SignedMessage | None:
        """The signed message, or what was already signed in its slot (a restarted node
        re-sends its earlier vote instead of a new one), or None."""
        try:
            return self.signer(message)
        except SigningRefused as refusal:
            actions.append(Refused(message, str(refusal)))
            previous = refusal.previous
            if previous is None or type(previous) is not type(message):
                return None
            if isinstance(message, Proposal) and previous.block_hash != message.block_hash:
                return None  # we would not have its payload
            return previous

    def _send_vote(self, step: str, value: bytes | None, actions: list[Action]) -> None:
        if self.index is None:
            return
        signed = self._sign(Vote(self.fork_id, self.height, self.round, step, value, self.index), actions)
        if signed is not None:
            assert isinstance(signed, Vote)
            actions.append(Broadcast(signed))
            self._ingest_vote(signed, verify=False)

    def _decide(self, round: int, block_hash: bytes, payload: bytes, certificate: CommitCertificate | None,
                actions: list[Action]) -> None:  # line 49
        if certificate is None:
            votes = self._tallies[(round, PRECOMMIT)].get_votes_for(block_hash)
            certificate = CommitCertificate(self.fork_id, self.height, round, block_hash, votes)
        self.decided = True
        self.step = STEP_DECIDED
        self._certificates[self.height] = (certificate, payload)
        actions.append(Decide(self.height, round, block_hash, payload, certificate))
        actions.append(ScheduleTimeout("commit", self.height, round, self.timeouts.get_delay_s("commit", round)))

    def _rebroadcast(self, actions: list[Action]) -> None:
        # A new beat: answers, catch-up and commit requests may go out again (once per peer).
        self._catchup_sent = set()
        self._requested = set()
        self._answered = set()
        if not self.decided and self.index is not None:
            actions.append(Broadcast(self.get_summary()))
        actions.append(ScheduleTimeout("rebroadcast", self.height, 0, self.timeouts.rebroadcast_s))

    def get_summary(self) -> HasVotes:
        """What this node holds of its height: the rounds whose proposal (with its block) it
        has, and per (round, step, value) the bitmask of the validators whose vote it counted."""
        proposals = tuple(sorted(r for r, (_, payload) in self._proposals.items() if payload is not None))
        voters = tuple((round, step, value, sum(1 << i for i in by_validator))
                       for (round, step), tally in sorted(self._tallies.items())
                       for value, by_validator in tally.by_value.items())
        return HasVotes(self.fork_id, self.height, self.round, -1 if self.index is None else self.index,
                        proposals, voters)

    def on_has_votes(self, summary: HasVotes) -> list[Action]:
        """A peer's summary: send it what it lacks of its height (once per peer per beat)."""
        actions: list[Action] = []
        size = self.validator_set.size
        if not is_well_formed_summary(summary, size) or summary.fork_id != self.fork_id or self.index is None \
                or summary.sender == self.index or summary.sender in self._answered or self.height < 0:
            return actions
        self._answered.add(summary.sender)
        peer = summary.sender
        if summary.height < self.height or (summary.height == self.height and self.decided):
            self._help_peer(peer, summary.height, actions)
        elif summary.height > self.height:
            if (peer, self.height) not in self._requested:  # a peer is ahead: ask it for our height
                self._requested.add((peer, self.height))
                actions.append(SendTo(peer, CommitRequest(self.fork_id, self.height, self.index)))
        else:
            for round in sorted(self._proposals):
                proposal, payload = self._proposals[round]
                if payload is not None and round not in summary.proposal_rounds:
                    actions.append(SendTo(peer, proposal, payload))
            known = summary.get_known()
            for (round, step), tally in sorted(self._tallies.items()):
                for value, by_validator in tally.by_value.items():
                    bits = known.get((round, step, value), 0)
                    actions.extend(SendTo(peer, by_validator[i]) for i in sorted(by_validator) if not bits >> i & 1)
        return actions
