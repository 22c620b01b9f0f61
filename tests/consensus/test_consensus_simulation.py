"""Whole runs: random fault schedules against agreement, liveness, the journal, forensics."""

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given

from consensus.checks import (
    check_agreement,
    check_certificates,
    check_liveness,
    check_no_double_sign,
    check_validity,
)
from consensus.forensics import find_culprits
from consensus.messages import PRECOMMIT, Vote, get_signature_memo_size, is_signature_memo_enabled, set_signature_memo
from consensus.network import CrashFault, LinkProfile, Partition
from consensus.sim import SimConfig, SimConfigError, create_simulation
from consensus.strategies import fault_schedules
from validators.behaviours import BYZANTINE_BEHAVIOURS, get_behaviour
from consensus_support import get_signing_times_us, is_bytes_block_valid, make_kit_factory, make_validator_set, simulate

LIVENESS_BOUND_S = 120.0


def run_and_convict(config, count, powers, sqlite_dir=None):
    trace = simulate(config, count, powers, sqlite_dir)
    report = find_culprits(trace.messages, make_validator_set(count, powers), [d.certificate for d in trace.decisions])
    return trace, report


def assert_safe_and_live(trace, report):
    reproduce = f"reproduce with: {trace.config!r}, powers={trace.validator_set.powers}"
    for check in (check_agreement(trace), check_certificates(trace), check_no_double_sign(trace),
                  check_validity(trace, is_bytes_block_valid), check_liveness(trace, LIVENESS_BOUND_S)):
        assert check.ok, f"{check.detail}; {reproduce}"
    assert set(report.culprits).isdisjoint(trace.honest), reproduce


@given(schedule=fault_schedules(byzantine="minority", behaviours=BYZANTINE_BEHAVIOURS))
# round split: nodes 1 and 3 (power 2 < f+1) timed out of round 0 and re-sent only their
# round-1 messages, so nodes 0 and 4, which had lost their nil precommits of round 0, could
# neither time out of round 0 nor skip: height 2 stalled forever (now the nodes ahead relay
# the votes that justify their round to peers last seen in an earlier one)
@example(schedule=(SimConfig(seed=0, latency_ms=5.0, link=LinkProfile(jitter_ms=1.0, drop_rate=0.296875,
                                                                       duplicate_rate=0.171875),
                             crashes=(CrashFault(0, 0.0, 0.0), CrashFault(0, 1.5, 2.5)), byzantine=((2, "crash"),),
                             max_time_s=250.0, max_events=40_000), 5, (1, 1, 1, 1, 3)))
# lost certificate: node 0 decided height 4 alone before crashing; the others, short of its
# precommit, stayed at 4, and after the restart its new engine no longer held the commit
# certificate of 4 to hand over (now the certificates of committed heights persist with the chain)
@example(schedule=(SimConfig(seed=590561, topology="geo", latency_ms=106.05165990942045,
                             link=LinkProfile(jitter_ms=38.861328872260415, drop_rate=0.20634443343496622),
                             partitions=(Partition(8.313595501577996, 14.658947780938854, ((0,),)),
                                         Partition(7.476650149845693e-10, 4.057537623781843, ((2,),))),
                             crashes=(CrashFault(0, 9.083958859717727, 17.083958859717725),),
                             max_time_s=250.0, max_events=40_000), 4, (3, 2, 2, 2)))
def test_with_less_than_a_third_byzantine_agreement_and_liveness_hold(schedule):
    assert_safe_and_live(*run_and_convict(*schedule))


@pytest.mark.parametrize("journal", ["memory", "sqlite"])
@given(schedule=fault_schedules(byzantine="none", partitions=False))
def test_crash_and_restart_at_any_time_never_double_signs(journal, schedule):
    # the journal keeps each slot to one message, and resumes the lock, across restarts;
    # an SQLite journal is closed and its file reopened at every restart
    with tempfile.TemporaryDirectory() as tmp:
        trace, report = run_and_convict(*schedule, sqlite_dir=Path(tmp) if journal == "sqlite" else None)
    assert_safe_and_live(trace, report)
    assert report.culprits == ()


def test_a_crash_just_before_or_after_any_signature_never_double_signs_with_sqlite(tmp_path):
    config = SimConfig(seed=4, link=LinkProfile(10, 0.3, 0.1), target_height=2)
    crash_times_us = sorted({t + after for t in get_signing_times_us(config, 4, node=1) for after in (0, 1)})
    refusals = 0
    for at_us in crash_times_us:  # a crash at a signature's instant runs before it; one µs later, after
        # back half a second later, inside the height it crashed in: it must try its slots again
        crash = CrashFault(1, at_us / 1e6, at_us / 1e6 + 0.5)
        trace, report = run_and_convict(replace(config, crashes=(crash,)), 4, None, sqlite_dir=tmp_path / str(at_us))
        assert_safe_and_live(trace, report)
        assert report.culprits == ()
        refusals += len(trace.refusals)
    assert len(crash_times_us) >= 8 and refusals > 0  # restarted nodes did try to re-sign: the file stopped them


@given(schedule=fault_schedules(byzantine="third-or-more", crashes=False, partitions=False))
# two equivocators out of four split the two honest nodes: agreement breaks
@example(schedule=(SimConfig(seed=1, byzantine=((2, "equivocate"), (3, "equivocate"))), 4, (1, 1, 1, 1)))
def test_a_third_or_more_equivocating_may_break_agreement_but_is_then_convicted(schedule):
    config, count, powers = schedule
    trace, report = run_and_convict(config, count, powers)
    vset = make_validator_set(count, powers)
    assert set(report.culprits).isdisjoint(trace.honest)
    if not check_agreement(trace).ok:
        assert report.get_culprit_power(vset) > vset.max_faulty_power


def test_two_of_four_equivocating_break_agreement_and_both_are_convicted():
    trace, report = run_and_convict(SimConfig(seed=1, byzantine=((2, "equivocate"), (3, "equivocate"))), 4, None)
    assert not check_agreement(trace).ok
    assert report.culprits == (2, 3) and report.conflicts


def test_the_same_seed_gives_the_same_trace():
    config = SimConfig(seed=9, topology="geo", link=LinkProfile(20, 0.1, 0.1),
                       partitions=(Partition(1, 4, ((0, 1, 2),)),), crashes=(CrashFault(4, 2, 5),),
                       byzantine=((6, "equivocate"),))
    digests = {simulate(config, 7).digest() for _ in range(2)}
    assert len(digests) == 1
    assert simulate(SimConfig(**{**config.__dict__, "seed": 10}), 7).digest() not in digests


def test_the_signature_memo_changes_nothing_but_time():
    config = SimConfig(seed=9, topology="geo", link=LinkProfile(20, 0.1, 0.1),
                       partitions=(Partition(1, 4, ((0, 1, 2),)),), crashes=(CrashFault(4, 2, 5),),
                       byzantine=((5, "wrong-root"), (6, "equivocate")))
    was_enabled = is_signature_memo_enabled()
    try:
        set_signature_memo(False)
        trace_off, report_off = run_and_convict(config, 7, None)
        assert get_signature_memo_size() == 0
        set_signature_memo(True)
        trace_on, report_on = run_and_convict(config, 7, None)
        assert get_signature_memo_size() > 0
    finally:
        set_signature_memo(was_enabled)
    assert trace_on.digest() == trace_off.digest()
    assert (trace_on.decisions, trace_on.messages, trace_on.refusals) == \
        (trace_off.decisions, trace_off.messages, trace_off.refusals)
    assert report_on == report_off


def test_a_long_partition_heals_and_progress_resumes():
    config = SimConfig(seed=4, partitions=(Partition(0.5, 30, ((0, 1),)),), target_height=2)
    trace, report = run_and_convict(config, 4, None)
    assert_safe_and_live(trace, report)
    assert trace.result.now_us > 30_000_000


def test_duplicate_votes_count_once_so_two_of_four_never_lock_nor_decide():
    # validators 2 and 3 are down: node 0 and the duplicate-voter 1 hold half the power;
    # counting each copy of 1's prevotes gave node 0 a polka, so it locked and precommitted
    config = SimConfig(seed=3, byzantine=((1, "duplicate-votes"),), target_height=1, max_time_s=20.0,
                       crashes=(CrashFault(2, 0.0), CrashFault(3, 0.0)))
    trace, report = run_and_convict(config, 4, None)
    copies = [m for m in trace.messages if m.signer_index == 1]
    assert len({m.signature for m in copies}) > len({m.signing_digest() for m in copies})  # it did re-sign
    locks = [m for m in trace.messages if isinstance(m, Vote) and m.signer_index == 0 and m.step == PRECOMMIT
             and m.block_hash is not None]
    assert locks == [] and trace.decisions == [] and report.culprits == ()


def test_with_a_duplicate_voter_honest_nodes_agree_and_progress():
    config = SimConfig(seed=5, byzantine=((1, "duplicate-votes"),), link=LinkProfile(10, 0.1, 0.1), target_height=3)
    trace, report = run_and_convict(config, 4, None)
    assert_safe_and_live(trace, report)
    assert report.culprits == ()  # copies of one digest are not equivocation


def test_a_simulation_is_driven_in_steps_on_its_own_clock():
    journals: dict = {}
    sim = create_simulation(SimConfig(seed=2, target_height=50), make_validator_set(4), make_kit_factory(4, journals))
    first = sim.run_until(until_s=3.0)
    assert (first.reason, sim.now_s) == ("time", 3.0)
    decided = len(sim.trace.decisions)
    second = sim.run_until(until_s=60.0, stop=lambda: len(sim.trace.decisions) > decided)
    assert second.reason == "predicate" and sim.now_s > 3.0 and sim.trace.result == second
    assert sim.run_until(until_s=120.0, max_events=5).reason == "max_events"


def test_a_kit_behaviour_must_carry_the_name_the_config_judges_it_by():
    plain = make_kit_factory(4)

    def make_node_kit(index):
        kit = plain(index)
        return replace(kit, behaviour=get_behaviour("withhold")) if index == 2 else kit

    with pytest.raises(SimConfigError, match="withhold"):
        create_simulation(SimConfig(), make_validator_set(4), make_node_kit)
    sim = create_simulation(SimConfig(byzantine=((2, "withhold"),)), make_validator_set(4), make_node_kit)
    assert sim.trace.honest == (0, 1, 3)
    with pytest.raises(SimConfigError, match="liar"):
        create_simulation(SimConfig(byzantine=((1, "liar"),)), make_validator_set(4), plain)
