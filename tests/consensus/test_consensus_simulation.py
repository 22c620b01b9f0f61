"""Whole runs: random fault schedules against agreement, liveness, the journal, forensics."""

from hypothesis import example, given, settings

from consensus.checks import (
    check_agreement,
    check_certificates,
    check_liveness,
    check_no_double_sign,
    check_validity,
)
from consensus.forensics import find_culprits
from consensus.network import CrashFault, LinkProfile, Partition
from consensus.sim import SimConfig
from consensus_support import fault_schedules, is_bytes_block_valid, make_validator_set, simulate

LIVENESS_BOUND_S = 120.0


def run_and_convict(config, count, powers):
    trace = simulate(config, count, powers)
    report = find_culprits(trace.messages, make_validator_set(count, powers), [d.certificate for d in trace.decisions])
    return trace, report


def assert_safe_and_live(trace, report):
    reproduce = f"reproduce with: {trace.config!r}"
    for check in (check_agreement(trace), check_certificates(trace), check_no_double_sign(trace),
                  check_validity(trace, is_bytes_block_valid), check_liveness(trace, LIVENESS_BOUND_S)):
        assert check.ok, f"{check.detail}; {reproduce}"
    assert set(report.culprits).isdisjoint(trace.honest), reproduce


@given(schedule=fault_schedules(byzantine="minority"))
@settings(max_examples=25)
def test_with_less_than_a_third_byzantine_agreement_and_liveness_hold(schedule):
    assert_safe_and_live(*run_and_convict(*schedule))


@given(schedule=fault_schedules(byzantine="none", partitions=False))
@settings(max_examples=15)
def test_crash_and_restart_at_any_time_never_double_signs(schedule):
    # the journal keeps each slot to one message, and resumes the lock, across restarts
    trace, report = run_and_convict(*schedule)
    assert_safe_and_live(trace, report)
    assert report.culprits == ()


@given(schedule=fault_schedules(byzantine="third-or-more", crashes=False, partitions=False))
@settings(max_examples=15)
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


def test_a_long_partition_heals_and_progress_resumes():
    config = SimConfig(seed=4, partitions=(Partition(0.5, 30, ((0, 1),)),), target_height=2)
    trace, report = run_and_convict(config, 4, None)
    assert_safe_and_live(trace, report)
    assert trace.result.now_us > 30_000_000
