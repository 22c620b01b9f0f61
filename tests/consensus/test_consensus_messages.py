"""Messages, signing digests, validator sets, proposer selection and certificates."""

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.emergency import HaltView, is_view_signed, sign_view
from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    SECP256K1_ORDER,
    CommitCertificate,
    ConflictingVoteError,
    InsufficientPowerError,
    InvalidSignatureError,
    InvalidValidatorSetError,
    Proposal,
    ValidatorSet,
    Vote,
    is_canonical_signature,
    is_signed_by,
    recover_public_key,
    sign_digest,
    sign_message,
    verify_certificate,
)
from consensus_support import get_keys, make_validator_set

KEYS = get_keys(4)
VSET = make_validator_set(4)
BLOCK = b"\x11" * 32


def precommits(validators, block=BLOCK, fork_id=1, height=3, round=0):
    return tuple(sign_message(KEYS[i].private_key, Vote(fork_id, height, round, PRECOMMIT, block, i))
                 for i in validators)


def test_digest_separates_fork_step_nil_and_kind():
    vote = Vote(1, 3, 0, PREVOTE, BLOCK, 0)
    assert vote.signing_digest() != replace(vote, fork_id=2).signing_digest()
    assert vote.signing_digest() != replace(vote, step=PRECOMMIT).signing_digest()
    assert replace(vote, block_hash=None).signing_digest() != replace(vote, block_hash=b"").signing_digest()
    assert Proposal(1, 3, 0, BLOCK, -1, 0).signing_digest() != vote.signing_digest()
    assert Proposal(1, 3, 1, BLOCK, -1, 0).signing_digest() != Proposal(1, 3, 1, BLOCK, 0, 0).signing_digest()
    assert replace(vote, signature=b"x").signing_digest() == vote.signing_digest()


def test_quorum_is_strictly_above_two_thirds():
    for powers, quorum, faulty in [((1,) * 4, 3, 1), ((1,) * 3, 3, 0), ((1,) * 7, 5, 2), ((10, 1, 1), 9, 3)]:
        vset = ValidatorSet(tuple(k.public_key for k in get_keys(len(powers))), powers)
        assert (vset.quorum, vset.max_faulty_power) == (quorum, faulty)
        assert vset.quorum * 3 > vset.total_power * 2 >= (vset.quorum - 1) * 3
        assert vset.max_faulty_power * 3 < vset.total_power


@given(powers=st.lists(st.integers(1, 6), min_size=1, max_size=6), height=st.integers(0, 10_000))
@settings(max_examples=30)
def test_proposer_round_robin_is_proportional_to_power(powers, height):
    vset = ValidatorSet(tuple(k.public_key for k in get_keys(len(powers))), tuple(powers))
    total = sum(powers)
    counts = Counter(vset.get_proposer(height, r) for r in range(total))
    assert [counts[i] for i in range(len(powers))] == powers
    assert vset.get_proposer(height, 1) == vset.get_proposer(height + 1, 0)


def test_proposer_ties_go_to_the_lower_index_and_huge_powers_still_work():
    assert [VSET.get_proposer(0, r) for r in range(5)] == [0, 1, 2, 3, 0]
    big = ValidatorSet(tuple(k.public_key for k in KEYS), (10**18, 10**18 + 1, 7, 3))
    picks = [big.get_proposer(h, 0) for h in range(50)]
    assert set(picks) <= {0, 1, 2, 3} and picks == [big.get_proposer(h, 0) for h in range(50)]


@pytest.mark.parametrize("keys, powers", [((), ()), ((b"\x00" * 64,), (0,)), ((b"\x00" * 64,), (1, 2)),
                                          ((b"\x00" * 33,), (1,))])
def test_bad_validator_sets_are_typed_errors(keys, powers):
    with pytest.raises(InvalidValidatorSetError):
        ValidatorSet(keys, powers)


def test_certificate_with_quorum_verifies():
    verify_certificate(CommitCertificate(1, 3, 0, BLOCK, precommits([0, 1, 3])), VSET)


def test_certificate_below_quorum_is_refused():
    with pytest.raises(InsufficientPowerError) as error:
        verify_certificate(CommitCertificate(1, 3, 0, BLOCK, precommits([0, 1])), VSET)
    assert (error.value.power, error.value.quorum) == (2, 3)


def test_certificate_with_a_forged_signature_is_refused():
    votes = list(precommits([0, 1, 2]))
    votes[2] = replace(votes[2], signature=votes[1].signature)
    with pytest.raises(InvalidSignatureError):
        verify_certificate(CommitCertificate(1, 3, 0, BLOCK, tuple(votes)), VSET)


@pytest.mark.parametrize("bad", [
    precommits([2], block=b"\x22" * 32),  # another block
    precommits([2], fork_id=2),  # another fork: a vote on the old fork never counts on a new one
    precommits([2], round=1),
    precommits([1]),  # validator twice
    (sign_message(KEYS[2].private_key, Vote(1, 3, 0, PREVOTE, BLOCK, 2)),),  # not a precommit
])
def test_certificate_with_a_conflicting_vote_is_refused(bad):
    with pytest.raises(ConflictingVoteError):
        verify_certificate(CommitCertificate(1, 3, 0, BLOCK, precommits([0, 1]) + bad), VSET)


def _flip_s(signature):
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])


@given(digest=st.binary(min_size=32, max_size=32), index=st.integers(0, 3),
       entropy=st.none() | st.binary(min_size=32, max_size=32))
def test_signing_is_low_s_and_only_low_s_recovers(digest, index, entropy):
    signature = sign_digest(KEYS[index].private_key, digest, entropy)
    assert is_canonical_signature(signature)
    assert recover_public_key(digest, signature) == KEYS[index].public_key
    assert not is_canonical_signature(_flip_s(signature))
    assert recover_public_key(digest, _flip_s(signature)) is None  # libsecp256k1 alone would recover the key
    assert recover_public_key(digest, signature[:64] + bytes([signature[64] + 2])) is None  # v outside {0, 1}


def test_high_s_proposals_and_halt_views_are_not_signed():
    proposal = sign_message(KEYS[1].private_key, Proposal(1, 1, 0, BLOCK, -1, 1))
    assert is_signed_by(proposal, VSET)
    assert not is_signed_by(replace(proposal, signature=_flip_s(proposal.signature)), VSET)
    view = sign_view(KEYS[2].private_key, HaltView(2, 0, 5, 4, 5, (b"\x01" * 32,), b""))
    assert is_view_signed(view, VSET)
    assert not is_view_signed(view.copy(signature=_flip_s(view.signature)), VSET)
