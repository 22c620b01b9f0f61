"""CometBFT's vote-set and vote tests (`types/vote_set_test.go`, `types/vote_test.go`, v1.x),
ported.

l2sim's VoteSet is the engine's `VoteTally`, one per (round, step) of a height
(`Engine.get_tally`): CometBFT's `TwoThirdsMajority` is a value whose power in the tally
reaches the quorum, `HasTwoThirdsAny` the power of distinct voters reaching it. A
VoteSet rejects votes of another height, round or type itself; l2sim's engine files each
vote in the tally of its own round and step, and buffers later heights. So every test
below feeds the votes to an engine, an observer (it never votes, so the counts are
exactly the test's votes), reads its tallies, and checks what the engine does with them:
a nil majority ends its prevote step (Algorithm 1 line 44), +2/3 of anything schedules
timeoutPrevote (line 34), a majority for the proposal makes it the valid value (line 36),
precommits for it decide (line 49).
"""

from dataclasses import replace

import pytest
from eth_hash.auto import keccak

from consensus.forensics import find_culprits
from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    InsufficientPowerError,
    Vote,
    is_signed_by,
    is_well_formed,
    sign_message,
    verify_certificate,
)
from consensus.tendermint import STEP_PRECOMMIT, STEP_PREVOTE, ScheduleTimeout, VoteTally
from cometbft_support import FORK, HEIGHT, Node, make_block
from validators.keys import resign_message


def random_hash(label: str) -> bytes:
    """CometBFT's `cmtrand.Bytes(32)`, deterministic."""
    return keccak(label.encode())


def get_two_thirds_majority(tally: VoteTally, node: Node) -> list[bytes | None]:
    """CometBFT's `TwoThirdsMajority`: the values whose power reaches the quorum."""
    quorum = node.validator_set.quorum
    return [value for value, power in tally.power_by_value.items() if power >= quorum]


def has_two_thirds_any(tally: VoteTally, node: Node) -> bool:
    """CometBFT's `HasTwoThirdsAny`: distinct voters holding a quorum, whatever they voted."""
    return tally.power >= node.validator_set.quorum


def observer_in_prevote(count: int, proposal_block: tuple[bytes, bytes] | None = None) -> Node:
    """An observer at round 0 of `HEIGHT`, past its propose step: with `proposal_block` it
    got the round's proposal, else its propose timeout fired."""
    node = Node(count, index=None)
    node.start()
    if proposal_block is None:
        node.fire("propose", 0)
    else:
        node.deliver_proposal(*node.make_proposal(0, proposal_block))
    assert node.engine.step == STEP_PREVOTE
    return node


def prevote_timeouts(node: Node) -> list:
    return [a for a in node.actions if isinstance(a, ScheduleTimeout) and a.kind == "prevote"]


def test_vote_set_add_vote_good():
    """TestVoteSet_AddVote_Good: ten validators; before val0's nil prevote the set has no
    vote of val0 and no majority; after it, it has the vote (and still no majority)."""
    node = observer_in_prevote(10)
    tally = node.engine.get_tally(0, PREVOTE)
    assert 0 not in tally.votes and get_two_thirds_majority(tally, node) == []
    (vote,) = node.make_votes(PREVOTE, None, (0,))
    node.deliver([vote])
    tally = node.engine.get_tally(0, PREVOTE)
    assert tally.votes[0] == vote and tally.power == 1
    assert get_two_thirds_majority(tally, node) == [] and not has_two_thirds_any(tally, node)


def test_vote_set_add_vote_bad():
    """TestVoteSet_AddVote_Bad: after val0's nil prevote, val0's prevote for a block
    conflicts, and votes of another height, round or type do not enter round 0's prevotes.
    (CometBFT refuses the conflicting vote; l2sim counts it once for its value too and keeps
    the pair as evidence: see TestVoteSet_Conflicts below.) Also from CometBFT's `AddVote`:
    the same vote again, even re-signed with another nonce, is a duplicate and counts once
    (CometBFT's ed25519 signatures are deterministic, so there a second signature is an
    error; secp256k1 signers pick nonces, so l2sim identifies a vote by its digest)."""
    node = observer_in_prevote(10)
    first = node.make_votes(PREVOTE, None, (0,))[0]
    node.deliver([first])
    node.deliver([resign_message(node.keys[0], first, 1)])
    tally = node.engine.get_tally(0, PREVOTE)
    assert (tally.power, tally.power_by_value) == (1, {None: 1})

    conflicting = node.make_votes(PREVOTE, random_hash("block"), (0,))[0]
    node.deliver([conflicting])
    assert node.engine.evidence == [(first, conflicting)]
    assert tally.power == 1 and tally.votes[0] == first

    node.deliver(node.make_votes(PREVOTE, None, (1,), height=HEIGHT + 1))
    node.deliver(node.make_votes(PREVOTE, None, (2,), round=1))
    node.deliver(node.make_votes(PRECOMMIT, None, (3,), round=0))
    assert sorted(tally.votes) == [0]
    assert sorted(node.engine.get_tally(1, PREVOTE).votes) == [2]
    assert sorted(node.engine.get_tally(0, PRECOMMIT).votes) == [3]


def test_vote_set_2_3_majority():
    """TestVoteSet_2_3Majority: ten validators (quorum 7); six nil prevotes are no majority,
    a seventh for a block is +2/3 of anything but no majority, an eighth nil is a nil
    majority: the engine waits timeoutPrevote from the seventh, and precommits (leaves its
    prevote step) on the eighth."""
    node = observer_in_prevote(10)
    node.add_votes(PREVOTE, None, range(6))
    tally = node.engine.get_tally(0, PREVOTE)
    assert get_two_thirds_majority(tally, node) == [] and prevote_timeouts(node) == []
    node.add_votes(PREVOTE, random_hash("block"), (6,))
    assert get_two_thirds_majority(tally, node) == [] and has_two_thirds_any(tally, node)
    assert len(prevote_timeouts(node)) == 1 and node.engine.step == STEP_PREVOTE
    node.add_votes(PREVOTE, None, (7,))
    assert get_two_thirds_majority(tally, node) == [None]
    assert node.engine.step == STEP_PRECOMMIT


def test_vote_set_2_3_majority_redux():
    """TestVoteSet_2_3MajorityRedux: a hundred validators (quorum 67); 66 prevotes for B,
    then one nil and three for other block ids (CometBFT varies the part-set header, an
    l2sim block is its hash alone, so these are other hashes), are no majority; the 71st
    for B is, and B becomes the engine's valid value."""
    proposer = HEIGHT % 100
    block = make_block(proposer, 0)
    node = observer_in_prevote(100, block)
    assert node.validator_set.quorum == 67
    node.add_votes(PREVOTE, block[0], range(66))
    tally = node.engine.get_tally(0, PREVOTE)
    assert get_two_thirds_majority(tally, node) == [] and node.engine.valid_hash is None
    node.add_votes(PREVOTE, None, (66,))
    for index, label in ((67, "part set hash"), (68, "part set total"), (69, "block hash")):
        node.add_votes(PREVOTE, random_hash(label), (index,))
        assert get_two_thirds_majority(tally, node) == [] and node.engine.valid_hash is None
    node.add_votes(PREVOTE, block[0], (70,))
    assert get_two_thirds_majority(tally, node) == [block[0]]
    assert (node.engine.valid_round, node.engine.valid_hash) == (0, block[0])


def test_vote_set_conflicts():
    """TestVoteSet_Conflicts (a designed difference): four validators, val0 prevotes nil,
    then B1, then B2; val1 prevotes B1; val2 B2 then B1. CometBFT adds a conflicting vote
    only for a block some peer claimed a +2/3 majority for (`SetPeerMaj23`), to bound
    what an equivocator makes it store. l2sim has no such claims: it counts each
    validator's vote once per value (every pair kept as evidence), so a polka shown to
    some honest nodes can be relayed to all, and the total of distinct voters counts each
    validator once. The outcomes CometBFT asserts hold: no majority and no +2/3 of
    anything with two voters, +2/3 of anything but no majority with three, a majority for
    B1 once val2's B1 arrives."""
    block1, block2 = random_hash("block 1"), random_hash("block 2")
    node = observer_in_prevote(4)
    tally = node.engine.get_tally(0, PREVOTE)
    node.add_votes(PREVOTE, None, (0,))
    node.add_votes(PREVOTE, block1, (0,))
    node.add_votes(PREVOTE, block1, (0,))  # the same vote again: a duplicate
    node.add_votes(PREVOTE, block2, (0,))
    node.add_votes(PREVOTE, block1, (1,))
    tally = node.engine.get_tally(0, PREVOTE)
    assert get_two_thirds_majority(tally, node) == [] and not has_two_thirds_any(tally, node)
    assert prevote_timeouts(node) == []
    node.add_votes(PREVOTE, block2, (2,))
    assert get_two_thirds_majority(tally, node) == [] and has_two_thirds_any(tally, node)
    assert len(prevote_timeouts(node)) == 1
    node.add_votes(PREVOTE, block1, (2,))
    assert get_two_thirds_majority(tally, node) == [block1] and has_two_thirds_any(tally, node)
    assert [(a.validator, a.block_hash, b.block_hash) for a, b in node.engine.evidence] == [
        (0, None, block1), (0, None, block2), (2, block2, block1)]


def test_vote_set_make_commit():
    """TestVoteSet_MakeCommit: ten validators' precommits; six for B make no commit (a
    certificate of them does not verify); a seventh for another block, then an eighth for B
    decide B, with a certificate that verifies. (CometBFT's commit has a slot for each of
    the ten validators, absent, nil or other; l2sim's certificate holds the precommits for
    the block alone, all a verifier needs.)"""
    proposer = HEIGHT % 10
    block = make_block(proposer, 0)
    node = observer_in_prevote(10, block)
    node.add_votes(PRECOMMIT, block[0], range(6))
    six = node.engine.get_tally(0, PRECOMMIT).get_votes_for(block[0])
    assert node.get_decisions() == []
    with pytest.raises(InsufficientPowerError):
        verify_certificate(CommitCertificate(FORK, HEIGHT, 0, block[0], six), node.validator_set)
    node.add_votes(PRECOMMIT, random_hash("other block"), (6,))
    assert node.get_decisions() == []
    node.add_votes(PRECOMMIT, block[0], (7,))
    (decision,) = node.get_decisions()
    assert decision.block_hash == block[0] and decision.certificate.signers() == (0, 1, 2, 3, 4, 5, 7)
    verify_certificate(decision.certificate, node.validator_set)
    node.add_votes(PRECOMMIT, None, (8,))
    assert len(node.get_decisions()) == 1


# --- vote_test.go -------------------------------------------------------------------------


def test_vote_verify_signature():
    """TestVoteVerifySignature: a signed vote verifies, and again after a copy; changing
    what it says (here its step: a precommit's digest differs from a prevote's) breaks the
    signature."""
    node = Node(4)
    (vote,) = node.make_votes(PRECOMMIT, random_hash("block"), (1,), round=2, height=HEIGHT)
    assert is_signed_by(vote, node.validator_set)
    copy = Vote(vote.fork_id, vote.height, vote.round, vote.step, vote.block_hash, vote.validator, vote.signature)
    assert is_signed_by(copy, node.validator_set)
    as_prevote = Vote(vote.fork_id, vote.height, vote.round, PREVOTE, vote.block_hash, vote.validator, vote.signature)
    assert not is_signed_by(as_prevote, node.validator_set)


def test_vote_verify():
    """TestVoteVerify: a vote that names one validator but is signed by another key, or is
    not signed at all, does not verify; the engine does not count it."""
    node = observer_in_prevote(4)
    vote = Vote(FORK, HEIGHT, 0, PREVOTE, None, 1)
    wrong_key = sign_message(node.keys[2].private_key, vote)
    for bad in (wrong_key, vote):
        assert not is_signed_by(bad, node.validator_set)
        node.deliver([bad])
    assert node.engine.get_tally(0, PREVOTE).votes == {}


@pytest.mark.parametrize("field, value", [
    ("height", -1),
    ("round", -1),
    ("block_hash", b"\x01\x02\x03"),
    ("validator", -1),
    ("validator", 4),
    ("step", "proposal"),
])
@pytest.mark.parametrize("height", [HEIGHT, HEIGHT + 1])
def test_invalid_votes(field, value, height):
    """TestInvalidVotes: a malformed vote (negative height, round or validator index, a
    validator out of range, a block id that is not 32 bytes, a step that is no vote step),
    signed by validator 1 where its digest can be computed, is never counted, at the
    current height or buffered for the next, and crashes neither the engine nor forensics.
    Regression: a message with a negative round for a later height raised TypeError in
    the engine's signature check (RLP has no negative integers), as did a proposal without
    a block; both are now dropped as malformed (`is_well_formed`)."""
    node = observer_in_prevote(4)
    vote = Vote(**{**dict(fork_id=FORK, height=height, round=0, step=PREVOTE, block_hash=None, validator=1),
                   field: value})
    if field in ("block_hash", "step", "validator") and value != -1:
        vote = sign_message(node.keys[1].private_key, vote)
    else:
        vote = replace(vote, signature=b"\x01" * 65)
    assert not is_signed_by(vote, node.validator_set)
    assert is_well_formed(vote) == (field == "validator" and value == 4)  # the range is the set's to judge
    node.deliver([vote])
    assert node.engine.get_tally(0, PREVOTE).votes == {}
    node.keep(node.engine.on_start(HEIGHT + 1))  # whatever was buffered for the next height is read now
    assert node.engine.get_tally(0, PREVOTE).votes == {}
    assert find_culprits([vote, vote], node.validator_set).culprits == ()


def test_invalid_proposals():
    """TestInvalidVotes, for proposals (CometBFT's `Proposal.ValidateBasic`): a POL round
    below -1, a negative round or no block make a proposal malformed; the engine, which
    already holds the round's proposal, ignores them at the current height and the next
    (comparing one with the proposal it holds used to compute its digest, and crash)."""
    node = Node(4)
    node.start(round=1)
    block = make_block(1, 1)
    held, payload = node.make_proposal(1, block)
    node.deliver_proposal(held, payload)
    node.validate_prevote(1, block[0])
    for field, value in (("pol_round", -2), ("round", -1), ("block_hash", None)):
        for height in (HEIGHT, HEIGHT + 1):
            proposal = replace(held, **{field: value, "height": height})
            assert not is_well_formed(proposal)
            assert node.deliver_proposal(proposal, payload) == []
    assert node.engine.evidence == []
