"""Gossip driven by what is missing: a node undecided at its beat sends a HasVotes summary,
and a peer answers with exactly the signed messages it lacks; whole simulations with many
validators under partitions and loss still decide every height (HYPOTHESIS_PROFILE=thorough
draws more schedules).
"""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.checks import check_agreement, check_liveness, check_no_double_sign
from consensus.messages import PRECOMMIT, PREVOTE, Commit, CommitRequest, HasVotes, Proposal, Vote, sign_message
from consensus.network import LinkProfile, Partition
from consensus.sim import BytesApp, SimConfig, create_simulation
from consensus.strategies import link_profiles
from consensus.tendermint import Broadcast, Engine, SendTo
from consensus_support import get_keys, make_kit_factory, make_validator_set, simulate

KEYS = get_keys(4)
VSET = make_validator_set(4)
HEIGHT = 1  # proposer of (1, 0) is validator 1


def make_engine(index):
    return Engine(1, VSET, index, BytesApp(index).propose, BytesApp(index).is_valid,
                  lambda m: sign_message(KEYS[index].private_key, m))


def vote(validator, step, block_hash, round=0):
    return sign_message(KEYS[validator].private_key, Vote(1, HEIGHT, round, step, block_hash, validator))


def summary_of(engine):
    (message,) = [a.message for a in engine.on_timeout("rebroadcast", engine.height, 0) if isinstance(a, Broadcast)]
    assert isinstance(message, HasVotes)
    return message


def answer(engine, summary, to):
    return [a.message for a in engine.on_message(summary) if isinstance(a, SendTo) and a.validator == to]


def test_the_answer_to_a_summary_is_exactly_what_it_lacks():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    block_hash, payload = BytesApp(1).propose(HEIGHT, 0)
    proposal = sign_message(KEYS[1].private_key, Proposal(1, HEIGHT, 0, block_hash, -1, 1))
    ahead.on_proposal(proposal, payload)  # ahead prevotes the block itself
    ahead.on_vote(vote(1, PREVOTE, block_hash))
    ahead.on_vote(vote(2, PREVOTE, None))
    behind.on_vote(vote(1, PREVOTE, block_hash))  # behind holds validator 1's prevote, nothing else
    sent = answer(ahead, summary_of(behind), to=3)
    assert isinstance(sent[0], Proposal) and sent[0].digest == proposal.digest
    assert sorted((m.validator, m.block_hash) for m in sent[1:]) == [(0, block_hash), (2, None)]
    assert answer(ahead, summary_of(behind), to=3) == [], "one answer per peer per beat"


def test_a_summary_of_a_decided_height_is_answered_with_its_certificate():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    block_hash, payload = BytesApp(1).propose(HEIGHT, 0)
    ahead.on_proposal(sign_message(KEYS[1].private_key, Proposal(1, HEIGHT, 0, block_hash, -1, 1)), payload)
    for v in (1, 2):
        ahead.on_vote(vote(v, PREVOTE, block_hash))
    for v in (1, 2):
        ahead.on_vote(vote(v, PRECOMMIT, block_hash))
    assert ahead.decided
    assert ahead.on_timeout("rebroadcast", HEIGHT, 0) == [a for a in ahead.on_timeout("rebroadcast", HEIGHT, 0)
                                                           if not isinstance(a, Broadcast)], "decided: no summary"
    (commit,) = answer(ahead, summary_of(behind), to=3)
    assert isinstance(commit, Commit) and commit.certificate.block_hash == block_hash


def test_a_summary_from_a_height_ahead_makes_a_commit_request():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT + 1)
    behind.on_start(HEIGHT)
    (request,) = answer(behind, summary_of(ahead), to=0)
    assert request == CommitRequest(1, HEIGHT, 3)


def test_a_malformed_or_foreign_summary_gets_no_answer():
    ahead, behind = make_engine(0), make_engine(3)
    ahead.on_start(HEIGHT)
    behind.on_start(HEIGHT)
    ahead.on_vote(vote(1, PREVOTE, None))
    summary = summary_of(behind)
    for bad in (replace(summary, sender=7), replace(summary, sender=-1), replace(summary, fork_id=2),
                replace(summary, voters=((0, "prevote", None, -1),)), replace(summary, voters=[(0, "vote", None, 0)]),
                replace(summary, proposal_rounds=("0",))):
        assert ahead.on_message(bad) == [], bad
    assert answer(ahead, summary, to=3), "the well-formed one is answered"


# --- whole simulations ---------------------------------------------------------------------


@settings(max_examples=max(5, settings.default.max_examples // 4), deadline=None)  # ci: 5, thorough: 125
@given(count=st.integers(7, 20), seed=st.integers(0, 2**32), link=link_profiles(),
       cut_s=st.floats(0.0, 3.0), heal_after_s=st.floats(0.5, 8.0), cut=st.integers(1, 6))
def test_every_honest_validator_gets_the_votes_it_needs_under_partitions_and_loss(count, seed, link, cut_s,
                                                                                   heal_after_s, cut):
    # the old timer re-sent everything every second; the summaries must heal the same faults:
    # a minority cut off mid-height and lossy links still decide every height after the heal
    config = SimConfig(seed=seed, link=link, target_height=3, max_time_s=300.0, max_events=400_000,
                       partitions=(Partition(cut_s, cut_s + heal_after_s, (tuple(range(min(cut, count // 3))),)),))
    trace = simulate(config, count)
    reproduce = f"reproduce with: {config!r}, count={count}"
    for check in (check_agreement(trace), check_no_double_sign(trace), check_liveness(trace, 120.0)):
        assert check.ok, f"{check.detail}; {reproduce}"
    assert trace.result.reason == "predicate", reproduce


def test_a_healthy_height_costs_one_broadcast_per_signed_message():
    # 64 validators, no loss: each vote reaches every peer once, and no summary is needed
    count = 64
    config = SimConfig(seed=3, link=LinkProfile(jitter_ms=10.0), target_height=3)
    sim = create_simulation(config, make_validator_set(count), make_kit_factory(count))
    trace = sim.run()
    heights = max(d.height for d in trace.decisions)
    assert trace.result.reason == "predicate" and heights >= 3
    per_height = count * (count - 1) * 2 + (count - 1)  # prevotes, precommits, the proposal
    assert trace.deliveries <= heights * per_height
