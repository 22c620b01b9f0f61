"""The engine alone, event by event: Algorithm 1's rules, without a network or a clock."""

from consensus.messages import PRECOMMIT, PREVOTE, HasVotes, Proposal, SigningRefused, Vote, sign_message
from consensus.tendermint import Broadcast, Decide, Engine, Refused, ResumePoint, ScheduleTimeout, SendTo
from consensus_support import get_keys, make_validator_set
from consensus.sim import BytesApp

KEYS = get_keys(4)
VSET = make_validator_set(4)
APP = BytesApp(0)
HEIGHT = 1  # proposer of (1, 0) is validator 1, of (1, 1) validator 2


def make_engine(index, signer=None, is_valid=APP.is_valid):
    signer = signer or (lambda m: sign_message(KEYS[index].private_key, m))
    return Engine(1, VSET, index, BytesApp(index).propose, is_valid, signer)


def signed(message):
    return sign_message(KEYS[message.signer_index].private_key, message)


def proposal(round=0, pol_round=-1, payload=None):
    proposer = VSET.get_proposer(HEIGHT, round)
    block_hash, payload = BytesApp(proposer).propose(HEIGHT, round) if payload is None else payload
    return signed(Proposal(1, HEIGHT, round, block_hash, pol_round, proposer)), payload


def vote(validator, step, block_hash, round=0):
    return signed(Vote(1, HEIGHT, round, step, block_hash, validator))


def broadcasts(actions, kind=Vote):
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def test_proposer_proposes_and_prevotes_its_block():
    actions = make_engine(1).on_start(HEIGHT)
    (prop,) = broadcasts(actions, Proposal)
    (prevote,) = broadcasts(actions)
    assert prop.pol_round == -1 and (prevote.step, prevote.block_hash) == (PREVOTE, prop.block_hash)


def test_non_proposer_times_out_to_a_nil_prevote():
    engine = make_engine(0)
    actions = engine.on_start(HEIGHT)
    assert ScheduleTimeout("propose", HEIGHT, 0, 1.0) in actions
    (prevote,) = broadcasts(engine.on_timeout("propose", HEIGHT, 0))
    assert prevote.block_hash is None
    assert engine.on_timeout("propose", HEIGHT, 0) == []  # stale timeouts do nothing


def test_invalid_block_gets_a_nil_prevote():
    engine = make_engine(0)
    engine.on_start(HEIGHT)
    prop, payload = proposal(payload=BytesApp(1).propose_invalid(HEIGHT, 0))
    (prevote,) = broadcasts(engine.on_proposal(prop, payload))
    assert prevote.block_hash is None


def test_polka_locks_and_precommits_then_quorum_decides():
    engine = make_engine(0)
    engine.on_start(HEIGHT)
    prop, payload = proposal()
    engine.on_proposal(prop, payload)
    engine.on_vote(vote(1, PREVOTE, prop.block_hash))
    actions = engine.on_vote(vote(2, PREVOTE, prop.block_hash))
    (precommit,) = broadcasts(actions)
    assert precommit.step == PRECOMMIT and precommit.block_hash == prop.block_hash
    assert (engine.locked_round, engine.locked_hash) == (0, prop.block_hash)
    engine.on_vote(vote(1, PRECOMMIT, prop.block_hash))
    actions = engine.on_vote(vote(3, PRECOMMIT, prop.block_hash))
    (decide,) = [a for a in actions if isinstance(a, Decide)]
    assert decide.block_hash == prop.block_hash and decide.certificate.signers() == (0, 1, 3)
    assert engine.decided and ScheduleTimeout("commit", HEIGHT, 0, 0.5) in actions


def test_locked_validator_prevotes_nil_for_another_value_without_polka():
    engine = make_engine(0)
    engine.on_start(HEIGHT, ResumePoint(round=1, locked_round=0, locked_hash=b"\x01" * 32))
    prop, payload = proposal(round=1)
    (prevote,) = broadcasts(engine.on_proposal(prop, payload))
    assert prevote.block_hash is None


def test_f_plus_one_messages_from_a_later_round_skip_ahead():
    engine = make_engine(0)
    engine.on_start(HEIGHT)
    engine.on_vote(vote(2, PREVOTE, None, round=5))
    assert engine.round == 0
    engine.on_vote(vote(3, PRECOMMIT, None, round=4))
    assert engine.round == 0  # f+1 must be in one round
    engine.on_vote(vote(3, PRECOMMIT, None, round=5))
    assert engine.round == 5


def test_votes_of_another_fork_or_with_bad_signatures_are_ignored():
    engine = make_engine(0)
    engine.on_start(HEIGHT)
    other_fork = sign_message(KEYS[2].private_key, Vote(2, HEIGHT, 5, PREVOTE, None, 2))
    forged = Vote(1, HEIGHT, 5, PREVOTE, None, 3, signature=vote(2, PREVOTE, None, 5).signature)
    engine.on_vote(other_fork)
    engine.on_vote(forged)
    engine.on_vote(vote(2, PREVOTE, None, round=5))
    assert engine.round == 0


def test_a_refused_signature_is_reported_and_not_sent():
    def refuse(message):
        raise SigningRefused("journal says no")

    engine = make_engine(0, signer=refuse)
    engine.on_start(HEIGHT)
    actions = engine.on_timeout("propose", HEIGHT, 0)
    assert broadcasts(actions) == [] and isinstance(actions[0], Refused)
    assert engine.step == "prevote"  # moves on as if the vote were lost


def test_lagging_peer_gets_the_certificate_and_catches_up():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    prop, payload = proposal()
    ahead.on_proposal(prop, payload)
    for v in (1, 2):
        ahead.on_vote(vote(v, PREVOTE, prop.block_hash))
    for v in (1, 2):
        ahead.on_vote(vote(v, PRECOMMIT, prop.block_hash))
    assert ahead.decided
    ahead.on_timeout("commit", HEIGHT, 0)
    (nil_prevote,) = broadcasts(behind.on_timeout("propose", HEIGHT, 0))
    (reply,) = ahead.on_vote(nil_prevote)
    assert reply.validator == 3
    actions = behind.on_message(reply.message, reply.payload)
    assert [a.block_hash for a in actions if isinstance(a, Decide)] == [prop.block_hash]


def test_a_peer_left_in_an_earlier_round_gets_the_precommits_that_ended_it():
    # the round-split stall: nodes ahead re-sent only their new round's messages, so a
    # peer that had lost the nil precommits of round 0 could never leave it; now its
    # summary says what it lacks, and the answer is those precommits
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    for engine in (ahead, behind):
        engine.on_timeout("propose", HEIGHT, 0)
    for v in (1, 2):
        ahead.on_vote(vote(v, PREVOTE, None))
        behind.on_vote(vote(v, PREVOTE, None))
    ahead.on_vote(vote(3, PREVOTE, None))  # validator 3 was last seen in round 0
    for v in (1, 2):
        ahead.on_vote(vote(v, PRECOMMIT, None))
    ahead.on_timeout("precommit", HEIGHT, 0)
    assert ahead.round == 1 and behind.round == 0
    (summary,) = [a.message for a in behind.on_timeout("rebroadcast", HEIGHT, 0) if isinstance(a, Broadcast)]
    assert isinstance(summary, HasVotes) and summary.round == 0
    relayed = [a.message for a in ahead.on_message(summary) if isinstance(a, SendTo) and a.validator == 3]
    assert ahead.on_message(summary) == [], "one answer per peer per beat"
    precommits = [m for m in relayed if isinstance(m, Vote) and (m.round, m.step) == (0, PRECOMMIT)]
    assert sorted(m.validator for m in precommits) == [0, 1, 2]
    actions = [a for m in precommits for a in behind.on_vote(m)]
    assert ScheduleTimeout("precommit", HEIGHT, 0, 0.5) in actions
    behind.on_timeout("precommit", HEIGHT, 0)
    assert behind.round == 1


def test_a_restarted_engine_still_hands_over_the_certificates_it_decided():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    prop, payload = proposal()
    ahead.on_proposal(prop, payload)
    for v in (1, 2):
        ahead.on_vote(vote(v, PREVOTE, prop.block_hash))
    decided = [a for v in (1, 2) for a in ahead.on_vote(vote(v, PRECOMMIT, prop.block_hash)) if isinstance(a, Decide)]
    restarted = make_engine(0)  # the crash lost the engine; the chain kept the decision
    restarted.on_start(HEIGHT + 1, ResumePoint(), decided)
    (nil_prevote,) = broadcasts(behind.on_timeout("propose", HEIGHT, 0))
    (reply,) = restarted.on_vote(nil_prevote)
    assert reply.validator == 3
    assert [a.block_hash for a in behind.on_message(reply.message, reply.payload) if isinstance(a, Decide)] \
        == [prop.block_hash]


def test_forget_locks_drops_the_lock_at_the_next_round_and_an_honest_engine_keeps_it():
    locks = {}
    for forget in (False, True):
        engine = make_engine(0)
        engine.forget_locks = forget
        engine.on_start(HEIGHT, ResumePoint(round=1, locked_round=0, locked_hash=b"\x01" * 32))
        at_start = (engine.locked_round, engine.locked_hash)
        engine.on_timeout("propose", HEIGHT, 1)
        for v in (1, 2, 3):
            engine.on_vote(vote(v, PRECOMMIT, None, round=1))
        engine.on_timeout("precommit", HEIGHT, 1)
        assert engine.round == 2
        locks[forget] = (at_start, (engine.locked_round, engine.locked_hash))
    assert locks[False] == (((0, b"\x01" * 32),) * 2)
    assert locks[True] == ((-1, None), (-1, None))  # amnesia: even the journal's lock is dropped on restart
