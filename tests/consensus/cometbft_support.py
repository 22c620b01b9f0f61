"""Helpers for the ports of CometBFT's consensus tests: one engine under test, driven message
by message the way CometBFT's `state_test.go` drives `cs1`.

CometBFT's `randState(n)` makes validator 0 (`cs1`, the one under test) the proposer of
round 0, and `vs2, vs3, ...` the proposers of rounds 1, 2, ...; l2sim's proposer of
(height, round) is the round robin over the slot height + round, so at `HEIGHT` (4) the
proposer of round r is validator r mod n for n in 1, 2 and 4: validator 0 is `cs1` and
validator i is `vs{i+1}`, as there.

`Node.fire(kind, round)` is CometBFT's `ensureNewTimeout` followed by the timeout itself:
it fails unless the engine scheduled that timeout, for that round, with the delay its
`TimeoutConfig` gives, and only then delivers it.
"""

from __future__ import annotations

from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote, sign_message
from consensus.sim import BytesApp
from consensus.tendermint import (
    Broadcast,
    Decide,
    Engine,
    ResumePoint,
    ScheduleTimeout,
    TimeoutConfig,
)
from consensus_support import get_keys, make_validator_set
from eth_hash.auto import keccak

FORK = 1
HEIGHT = 4
OTHER_HASH = keccak(b"a block nobody proposed")  # CometBFT's `hash[0] + 1` copy of a block hash
NO_REBROADCAST = TimeoutConfig(rebroadcast_s=0)  # CometBFT's tests have no re-gossip timer either


def make_block(proposer: int, round: int, height: int = HEIGHT, kind: str = "") -> tuple[bytes, bytes]:
    """(block hash, payload) the bytes app of `proposer` builds: `kind` "" for its block,
    "conflicting" for a second one, "invalid" for one every validator rejects."""
    app = BytesApp(proposer)
    if kind == "conflicting":
        return app.propose_conflicting(height, round)
    if kind == "invalid":
        return app.propose_invalid(height, round)
    assert kind == "", kind
    return app.propose(height, round)


class Node:
    """`cs1`: one validator's engine; every action it returns is kept, in order."""

    def __init__(self, count: int, index: int | None = 0, powers: tuple[int, ...] | None = None,
                 height: int = HEIGHT, signer=None, timeouts: TimeoutConfig = NO_REBROADCAST):
        self.validator_set = make_validator_set(count, powers)
        self.keys = get_keys(count)
        self.height = height
        app = BytesApp(0 if index is None else index)
        if signer is None and index is not None:
            key = self.keys[index].private_key
            signer = lambda message: sign_message(key, message)  # noqa: E731
        self.engine = Engine(FORK, self.validator_set, index, app.propose, app.is_valid, signer, timeouts)
        self.actions: list = []

    # --- driving ----------------------------------------------------------------------------

    def start(self, round: int = 0, height: int | None = None) -> list:
        """CometBFT's `startTestRound(cs1, height, round)`."""
        return self.keep(self.engine.on_start(self.height if height is None else height, ResumePoint(round=round)))

    def sign(self, message):
        """`message` signed by the validator it names."""
        return sign_message(self.keys[message.signer_index].private_key, message)

    def make_proposal(self, round: int, block: tuple[bytes, bytes], pol_round: int = -1,
                      proposer: int | None = None) -> tuple[Proposal, bytes]:
        """A signed proposal of `block` for `round` (by its proposer unless `proposer` says)."""
        if proposer is None:
            proposer = self.validator_set.get_proposer(self.engine.height, round)
        block_hash, payload = block
        return self.sign(Proposal(FORK, self.engine.height, round, block_hash, pol_round, proposer)), payload

    def deliver_proposal(self, proposal: Proposal, payload: bytes | None) -> list:
        """CometBFT's `SetProposalAndBlock`."""
        return self.keep(self.engine.on_proposal(proposal, payload))

    def make_votes(self, step: str, value: bytes | None, validators, round: int | None = None,
                   height: int | None = None) -> list[Vote]:
        """CometBFT's `signVotes`: one signed vote per validator, none delivered."""
        round = self.engine.round if round is None else round
        height = self.engine.height if height is None else height
        return [self.sign(Vote(FORK, height, round, step, value, v)) for v in validators]

    def add_votes(self, step: str, value: bytes | None, validators, round: int | None = None) -> list:
        """CometBFT's `signAddVotes`: sign and deliver, in order."""
        return self.deliver(self.make_votes(step, value, validators, round))

    def deliver(self, votes) -> list:
        """CometBFT's `addVotes`: deliver already signed votes, in order."""
        actions: list = []
        for vote in votes:
            actions += self.keep(self.engine.on_vote(vote))
        return actions

    def fire(self, kind: str, round: int) -> list:
        """The `kind` timeout of `round`, which the engine must have scheduled (with its delay)."""
        height = self.engine.height
        expected = ScheduleTimeout(kind, height, round, self.engine.timeouts.get_delay_s(kind, round))
        assert expected in self.actions, f"no {kind} timeout scheduled for height {height} round {round}"
        return self.keep(self.engine.on_timeout(kind, height, round))

    def keep(self, actions: list) -> list:
        """Record `actions` (returned by the engine) and hand them back."""
        self.actions += actions
        return actions

    # --- looking ----------------------------------------------------------------------------

    def get_own_votes(self, step: str, round: int, height: int | None = None) -> list[Vote]:
        """The votes this node broadcast for (height, round, step)."""
        height = self.engine.height if height is None else height
        return [a.message for a in self.actions if isinstance(a, Broadcast) and isinstance(a.message, Vote)
                and (a.message.height, a.message.round, a.message.step) == (height, round, step)]

    def get_own_proposals(self, round: int, height: int | None = None) -> list[tuple[Proposal, bytes | None]]:
        """The proposals (with payload) this node broadcast for (height, round)."""
        height = self.engine.height if height is None else height
        return [(a.message, a.payload) for a in self.actions if isinstance(a, Broadcast)
                and isinstance(a.message, Proposal) and (a.message.height, a.message.round) == (height, round)]

    def get_decisions(self) -> list[Decide]:
        """Every decision the engine announced."""
        return [a for a in self.actions if isinstance(a, Decide)]

    def validate_prevote(self, round: int, value: bytes | None) -> None:
        """CometBFT's `validatePrevote`: exactly one own prevote in `round`, for `value`."""
        votes = self.get_own_votes(PREVOTE, round)
        assert [v.block_hash for v in votes] == [value], f"round {round} prevotes: {votes}"

    def validate_precommit(self, round: int, locked_round: int, value: bytes | None,
                           locked_value: bytes | None) -> None:
        """CometBFT's `validatePrecommit`: exactly one own precommit in `round`, for `value`,
        and the lock is (`locked_round`, `locked_value`)."""
        votes = self.get_own_votes(PRECOMMIT, round)
        assert [v.block_hash for v in votes] == [value], f"round {round} precommits: {votes}"
        self.validate_lock(locked_round, locked_value)

    def validate_lock(self, locked_round: int, locked_value: bytes | None) -> None:
        """The engine is locked on `locked_value` since `locked_round` (-1, None: unlocked)."""
        assert (self.engine.locked_round, self.engine.locked_hash) == (locked_round, locked_value)

    def validate_no_precommit(self, round: int) -> None:
        """No own precommit in `round` (where CometBFT would send a nil one: see docs/design.md)."""
        assert self.get_own_votes(PRECOMMIT, round) == []

    def is_in_round(self, round: int, step: str | None = None) -> bool:
        """CometBFT's `ensureNewRound`: the engine is at `round` (and in `step`, if given)."""
        return self.engine.round == round and step in (None, self.engine.step)
