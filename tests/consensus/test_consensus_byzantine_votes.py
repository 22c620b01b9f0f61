"""One Byzantine key against honest engines: re-signed votes count once, high-s never counts.

Four validators of power 1 (quorum 3), one of them Byzantine (1/4 of the power). A key
holder can sign one vote digest many times (another RFC 6979 nonce each time) and, from
any signature (r, s), make (r, n - s). Each attack below drives honest engines event by
event with what the attacker can sign, and checks what no quorum of distinct validators
stands behind never happens: a decision, a lock, an unlock, a conviction.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from consensus.checks import check_no_double_sign
from consensus.forensics import find_culprits
from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    SECP256K1_ORDER,
    CommitCertificate,
    ConflictingVoteError,
    InvalidSignatureError,
    Proposal,
    Vote,
    is_canonical_signature,
    recover_public_key,
    sign_message,
    verify_certificate,
)
from consensus.sim import BytesApp, SimConfig, Trace
from consensus.tendermint import Broadcast, Decide, Engine, VoteTally
from consensus_support import get_keys, make_validator_set
from validators.keys import resign_message

KEYS = get_keys(4)
VSET = make_validator_set(4)
HEIGHT = 1  # proposers of height 1: round 0 -> 1, round 1 -> 2, round 2 -> 3


def make_engine(index):
    return Engine(1, VSET, index, BytesApp(index).propose, BytesApp(index).is_valid,
                  lambda m: sign_message(KEYS[index].private_key, m))


def signed(message):
    return sign_message(KEYS[message.signer_index].private_key, message)


def flip_s(message):
    """The same message with (r, n - s, v ^ 1): a valid but high-s signature."""
    sig = message.signature
    s = int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    return Vote(message.fork_id, message.height, message.round, message.step, message.block_hash,
                message.validator, flipped)


def copies_of(message, attempts=(), flip=False):
    """`message` and what its signer can add: copies re-signed with other nonces, and the flip."""
    extra = [resign_message(KEYS[message.signer_index], message, a) for a in attempts]
    return [message, *extra, *([flip_s(message)] if flip else [])]


def vote(validator, step, value, round=0):
    return signed(Vote(1, HEIGHT, round, step, value, validator))


def block(proposer, round=0, conflicting=False):
    app = BytesApp(proposer)
    return app.propose_conflicting(HEIGHT, round) if conflicting else app.propose(HEIGHT, round)


def broadcasts(actions):
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, (Vote, Proposal))]


def feed(engine, messages, payload=None):
    actions = []
    for message in messages:
        actions += engine.on_message(message, payload if isinstance(message, Proposal) else None)
    return actions


# --- the primitives -------------------------------------------------------------------------


def test_a_flipped_signature_recovers_to_none_and_our_signing_is_always_low_s():
    message = vote(1, PREVOTE, b"\xaa" * 32)
    assert is_canonical_signature(message.signature)
    assert recover_public_key(message.digest, message.signature) == KEYS[1].public_key
    assert recover_public_key(message.digest, flip_s(message).signature) is None
    for attempt in range(1, 20):
        again = resign_message(KEYS[1], message, attempt)
        assert again.signature != message.signature and is_canonical_signature(again.signature)
        assert recover_public_key(again.digest, again.signature) == KEYS[1].public_key


def test_certificates_refuse_high_s_and_a_validator_signing_twice():
    value = b"\xaa" * 32
    votes = [vote(v, PRECOMMIT, value) for v in (0, 1, 2)]
    verify_certificate(CommitCertificate(1, HEIGHT, 0, value, tuple(votes)), VSET)
    with pytest.raises(InvalidSignatureError):
        verify_certificate(CommitCertificate(1, HEIGHT, 0, value, (votes[0], votes[1], flip_s(votes[2]))), VSET)
    twice = (votes[0], votes[1], resign_message(KEYS[1], votes[1], 1))
    with pytest.raises(ConflictingVoteError):
        verify_certificate(CommitCertificate(1, HEIGHT, 0, value, twice), VSET)


def test_an_equivocator_counts_once_per_value_and_duplicates_not_at_all():
    tally = VoteTally()
    a, b = b"\xaa" * 32, b"\xbb" * 32
    first = vote(3, PREVOTE, a)
    assert tally.add(first, 1) is None
    for copy in copies_of(first, attempts=(1, 2))[1:]:
        assert tally.is_duplicate(copy)
    assert tally.add(vote(3, PREVOTE, b), 1) == first  # the pair is the evidence
    assert tally.power_by_value == {a: 1, b: 1} and tally.power == 1


@given(deliveries=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([None, b"\xaa" * 32, b"\xbb" * 32]),
                                      st.integers(0, 3)), max_size=30))
def test_a_tally_counts_what_a_set_of_distinct_signers_would(deliveries):
    """Beside the obvious model: power per value is the power of the distinct validators
    that signed it, whatever copies (attempt > 0: re-signed) arrive, in any order."""
    powers = (1, 2, 3, 4)
    tally, voters = VoteTally(), {}
    for validator, value, attempt in deliveries:
        message = vote(validator, PREVOTE, value)
        if attempt:
            message = resign_message(KEYS[validator], message, attempt)
        if not tally.is_duplicate(message):
            tally.add(message, powers[validator])
        voters.setdefault(value, set()).add(validator)
    assert tally.power_by_value == {v: sum(powers[i] for i in who) for v, who in voters.items()}
    assert tally.power == sum(powers[i] for i in set().union(*voters.values()))


# --- (a) re-signed precommits do not split two honest engines ------------------------------


def run_split_attack(attempts, flip):
    """Byzantine proposer 1 shows block A to engine 0 and block B to engine 2, then sends
    each its prevote and precommit for that block with the copies it can make."""
    a_hash, a_payload = block(1)
    b_hash, b_payload = block(1, conflicting=True)
    decided = {}
    for victim, value, payload in ((0, a_hash, a_payload), (2, b_hash, b_payload)):
        engine = make_engine(victim)
        engine.on_start(HEIGHT)
        actions = engine.on_proposal(signed(Proposal(1, HEIGHT, 0, value, -1, 1)), payload)
        actions += feed(engine, copies_of(vote(1, PREVOTE, value), attempts, flip))
        actions += feed(engine, copies_of(vote(1, PRECOMMIT, value), attempts, flip))
        decided[victim] = [a.block_hash for a in actions if isinstance(a, Decide)]
    return decided


@given(attempts=st.lists(st.integers(1, 2**32), max_size=3, unique=True), flip=st.booleans())
# three copies of one precommit (two re-signed with other nonces) counted as three
# validators: engines 0 and 2 decided different blocks at height 1
@example(attempts=[1, 2], flip=False)
# the s -> n-s flip of its own signature counted as another validator's vote
@example(attempts=[], flip=True)
def test_resigned_votes_never_let_one_validator_split_honest_engines(attempts, flip):
    decided = run_split_attack(attempts, flip)
    assert not (decided[0] and decided[2] and decided[0] != decided[2]), f"honest engines split: {decided}"
    assert decided == {0: [], 2: []}  # two distinct validators per side: no quorum anywhere


def test_three_copies_of_a_precommit_do_not_decide():
    assert run_split_attack(attempts=(1, 2), flip=False) == {0: [], 2: []}


def test_a_high_s_copy_is_refused():
    assert run_split_attack(attempts=(), flip=True) == {0: [], 2: []}


# --- (b) a polka of copies does not lock an honest validator --------------------------------


def run_fake_polka(attempts, flip):
    """Honest proposer 1's block reaches engine 0; the Byzantine validator 3 sends its
    prevote for it with copies. Returns the engine and what it signed."""
    value, payload = block(1)
    engine = make_engine(0)
    engine.on_start(HEIGHT)
    actions = engine.on_proposal(signed(Proposal(1, HEIGHT, 0, value, -1, 1)), payload)
    actions += feed(engine, copies_of(vote(3, PREVOTE, value), attempts, flip))
    return engine, value, broadcasts(actions)


@given(attempts=st.lists(st.integers(1, 2**32), max_size=3, unique=True), flip=st.booleans())
# a "polka" of the victim's own prevote and three copies of validator 3's locked the
# victim on a block only two validators had prevoted
@example(attempts=[1, 2], flip=False)
@example(attempts=[], flip=True)
def test_a_polka_of_copies_never_locks_an_honest_validator(attempts, flip):
    engine, value, sent = run_fake_polka(attempts, flip)
    assert (engine.locked_round, engine.locked_hash) == (-1, None)
    assert not [m for m in sent if isinstance(m, Vote) and m.step == PRECOMMIT]


def test_a_polka_of_copies_does_not_lock():
    engine, _, _ = run_fake_polka(attempts=(1, 2), flip=False)
    assert engine.locked_round == -1


# --- (c) forensics convicts the attacker, not its victim ------------------------------------


def run_amnesia_frame(attempts, flip):
    """Byzantine validator 3 tries to make honest engine 0 look amnesic:
    round 0: a polka of copies for proposer 1's block A, to lock engine 0 on A;
    round 1: a polka of copies for B shown to engine 0 (nil to the rest: equivocation);
    round 2: 3 proposes B with pol_round 1, to make engine 0 unlock and prevote B.
    Returns every signed message of the attack and of engine 0 (what forensics sees)."""
    a_hash, a_payload = block(1)
    b_hash, b_payload = block(3, round=2)
    engine = make_engine(0)
    seen = []

    def deliver(messages, payload=None):
        seen.extend(messages)
        seen.extend(broadcasts(feed(engine, messages, payload)))

    def leave_round(round):
        for kind in ("propose", "prevote"):
            seen.extend(broadcasts(engine.on_timeout(kind, HEIGHT, round)))
        deliver([vote(1, PRECOMMIT, None, round), vote(2, PRECOMMIT, None, round)])
        seen.extend(broadcasts(engine.on_timeout("precommit", HEIGHT, round)))

    seen.extend(broadcasts(engine.on_start(HEIGHT)))
    deliver([signed(Proposal(1, HEIGHT, 0, a_hash, -1, 1))], a_payload)
    deliver(copies_of(vote(3, PREVOTE, a_hash, 0), attempts, flip))
    deliver([vote(2, PREVOTE, None, 0)])
    leave_round(0)
    deliver(copies_of(vote(3, PREVOTE, b_hash, 1), attempts, flip))
    seen.append(vote(3, PREVOTE, None, 1))  # what 3 sent the others in round 1
    deliver([vote(1, PREVOTE, None, 1), vote(2, PREVOTE, None, 1)])
    leave_round(1)
    assert engine.round == 2
    deliver([signed(Proposal(1, HEIGHT, 2, b_hash, 1, 3))], b_payload)
    seen.extend(broadcasts(engine.on_timeout("propose", HEIGHT, 2)))
    return seen


@given(attempts=st.lists(st.integers(1, 2**32), max_size=3, unique=True), flip=st.booleans())
# engine 0 locked on A through a polka of copies, unlocked on a polka of copies for B and
# prevoted B: forensics, which counts each validator once, saw no polka and convicted the
# honest engine 0 of amnesia
@example(attempts=[1, 2], flip=False)
@example(attempts=[], flip=True)
def test_forensics_convicts_the_attacker_and_never_its_victim(attempts, flip):
    report = find_culprits(run_amnesia_frame(attempts, flip), VSET)
    assert report.culprits == (3,)


def test_forensics_after_a_framing_attempt_names_only_the_attacker():
    report = find_culprits(run_amnesia_frame(attempts=(1, 2), flip=False), VSET)
    assert report.culprits == (3,)
    assert {e.kind for e in report.evidence} == {"equivocation"}


def test_resigned_duplicates_alone_are_not_equivocation():
    original = vote(2, PRECOMMIT, b"\xaa" * 32)
    report = find_culprits(copies_of(original, attempts=(1, 2, 3), flip=True), VSET)
    assert report.culprits == ()


# --- future heights: buffered after the signature, within the signer's quota ----------------


def decide_height_one(engine):
    value, payload = block(1)
    engine.on_start(HEIGHT)
    feed(engine, [signed(Proposal(1, HEIGHT, 0, value, -1, 1))], payload)
    feed(engine, [vote(v, PREVOTE, value) for v in (1, 2)])
    actions = feed(engine, [vote(v, PRECOMMIT, value) for v in (1, 2)])
    (decision,) = [a for a in actions if isinstance(a, Decide)]
    return decision


def test_a_flood_for_a_future_height_cannot_crowd_out_an_honest_proposal():
    engine = make_engine(0)
    next_hash, next_payload = BytesApp(2).propose(2, 0)  # proposer of (2, 0) is validator 2
    decision = decide_height_one(engine)
    flood = [signed(Vote(1, 2, r, step, None, 3)) for r in range(60) for step in (PREVOTE, PRECOMMIT)]
    forged = [Vote(1, 2, r, PREVOTE, None, 1, signature=flood[0].signature) for r in range(60)]
    feed(engine, flood + forged)
    feed(engine, [signed(Proposal(1, 2, 0, next_hash, -1, 2))], next_payload)
    actions = engine.on_timeout("commit", HEIGHT, decision.round)
    assert engine.height == 2
    assert [(m.step, m.block_hash) for m in broadcasts(actions) if isinstance(m, Vote)] == [(PREVOTE, next_hash)]


def test_the_journal_check_flags_two_digests_not_copies_nor_forgeries():
    a, b = b"\xaa" * 32, b"\xbb" * 32
    honest_vote = vote(2, PREVOTE, a)
    forged = Vote(1, HEIGHT, 0, PREVOTE, b, 2, signature=vote(3, PREVOTE, b).signature)

    def check(messages):
        return check_no_double_sign(Trace(SimConfig(), VSET, (0, 1, 2), messages=list(messages))).ok

    assert check(copies_of(honest_vote, attempts=(1, 2)) + [forged])
    assert not check([honest_vote, vote(2, PREVOTE, b)])
