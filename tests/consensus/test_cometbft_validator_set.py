"""CometBFT's proposer-priority tests (`types/validator_set_test.go`, `state/state_test.go`,
v1.x), ported to l2sim's proposer code: `consensus.proposer` (CometBFT's
`IncrementProposerPriority` with its rescale and centring) and
`ValidatorSet.get_proposer`, which walks it one step per slot height + round.

l2sim differs by design in three ways (docs/design.md): ties go to the lower validator
index, not the lower address (l2sim names validators by index and has no addresses to
order); the set is fixed for a run, so there is no validator-set update and no
newcomer's priority (CometBFT gives it -1.125 x the total power): where a CometBFT test
updates the set, the port starts the step from the priorities the update leaves; and the
proposer of a slot is computed from the genesis priorities rather than carried in a
stored state, so there is nothing to serialise.
"""

import random

import pytest

from consensus.emergency import EmergencyError, compute_target, make_view, sign_view
from consensus.proposer import compute_centred_priorities, compute_proposer_step
from consensus_support import KEY_SEED, get_keys, make_validator_set
from validators.keys import derive_validator_keys

MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)


def get_proposers(powers: tuple[int, ...], count: int) -> list[int]:
    """The first `count` proposers of a set with `powers` (slots 0, 1, ...)."""
    validator_set = make_validator_set(len(powers), powers)
    return [validator_set.get_proposer(0, slot) for slot in range(count)]


def test_proposer_selection_1():
    """TestProposerSelection1: foo (1000), bar (300) and baz (330): the 99 proposers CometBFT
    lists, in its order; the same by height as by round."""
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz"
        " foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo"
        " foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    ).split()
    names = ("foo", "bar", "baz")
    powers = (1000, 300, 330)
    assert [names[i] for i in get_proposers(powers, 99)] == expected
    validator_set = make_validator_set(3, powers)
    assert [names[validator_set.get_proposer(h, 0)] for h in range(99)] == expected


def test_proposer_selection_2():
    """TestProposerSelection2: with equal power the proposers go in index order (CometBFT:
    address order); 400 against 100 and 100 proposes first but not twice in a row, 401
    proposes twice in a row; powers 4, 5 and 3 propose 40, 50 and 30 times in 120 slots."""
    assert get_proposers((100, 100, 100), 15) == [0, 1, 2] * 5
    assert get_proposers((100, 100, 400), 2) == [2, 0]
    assert get_proposers((100, 100, 401), 3) == [2, 2, 0]
    counts = [0, 0, 0]
    for proposer in get_proposers((4, 5, 3), 120):
        counts[proposer] += 1
    assert counts == [40, 50, 30]


def test_proposer_selection_3():
    """TestProposerSelection3: four equal validators keep their order forever, however
    many steps each call takes (`times` from 1 to 4, drawn as CometBFT draws it, from a
    seeded generator); and the stateless proposer of each slot is the one the stepped
    priorities give (CometBFT checks it after a serialisation round trip)."""
    powers = (1, 1, 1, 1)
    validator_set = make_validator_set(4, powers)
    priorities = (0, 0, 0, 0)
    order = []
    for _ in range(4):
        step = compute_proposer_step(powers, priorities)
        priorities = step.priorities
        order.append(step.proposer)
    assert order == [0, 1, 2, 3]
    rng = random.Random(3)
    slot = 3  # the slot of the last step taken
    for _ in range(10_000):
        times = 1
        if rng.randrange(1 << 30) % (rng.randrange(1 << 30) % 5 + 1) > 0:
            times = rng.randrange(1 << 30) % 4 + 1
        step = compute_proposer_step(powers, priorities, times)
        priorities = step.priorities
        slot += times
        assert step.proposer == order[slot % 4] == validator_set.get_proposer(0, slot)


def test_avg_proposer_priority():
    """TestAvgProposerPriority: the average centring subtracts is the floor of the mean
    (CometBFT's big.Int Euclidean division), exact at the int64 extremes."""
    for priorities, average in [((0, 0, 0), 0), ((MAX_INT64, 0, 0), MAX_INT64 // 3),
                                ((MAX_INT64, 0), MAX_INT64 // 2), ((MAX_INT64, MAX_INT64), MAX_INT64),
                                ((MIN_INT64, MIN_INT64), MIN_INT64), ((0, -123), -62)]:
        centred = compute_centred_priorities(priorities)
        assert [p - c for p, c in zip(priorities, centred)] == [average] * len(priorities)


@pytest.mark.parametrize("priorities, times, average", [
    ((1, 2, 3), 1, 2),
    ((10, -10, 1), 11, 0),  # centred once, at the first of the 11 steps: 1 // 3 == 0
    ((100, -10, 1), 1, 91 // 3),
])
def test_averaging_in_increment_proposer_priority(priorities, times, average):
    """TestAveragingInIncrementProposerPriority: with zero voting power a step changes no
    priority but for the centring: each ends as its start minus the average."""
    step = compute_proposer_step((0, 0, 0), priorities, times)
    assert step.priorities == tuple(p - average for p in priorities)


def test_averaging_in_increment_proposer_priority_with_voting_power():
    """TestAveragingInIncrementProposerPriorityWithVotingPower: powers 10, 1 and 1 from zero
    priorities, 1 to 11 steps: each validator's priority and the last proposer, as CometBFT
    tabulates them (the average is zero at every step)."""
    vp0, vp1, vp2 = 10, 1, 1
    total = vp0 + vp1 + vp2
    table = [
        (1, (vp0 - total, vp1, vp2), 0),
        (2, (2 * (vp0 - total), 2 * vp1, 2 * vp2), 0),
        (3, (3 * (vp0 - total), 3 * vp1, 3 * vp2), 0),
        (4, (4 * (vp0 - total), 4 * vp1, 4 * vp2), 0),
        (5, (4 * (vp0 - total) + vp0, 5 * vp1 - total, 5 * vp2), 1),
        (6, (6 * vp0 - 5 * total, 6 * vp1 - total, 6 * vp2), 0),
        (7, (7 * vp0 - 6 * total, 7 * vp1 - total, 7 * vp2), 0),
        (8, (8 * vp0 - 7 * total, 8 * vp1 - total, 8 * vp2), 0),
        (9, (9 * vp0 - 7 * total, 9 * vp1 - total, 9 * vp2 - total), 2),
        (10, (10 * vp0 - 8 * total, 10 * vp1 - total, 10 * vp2 - total), 0),
        (11, (11 * vp0 - 9 * total, 11 * vp1 - total, 11 * vp2 - total), 0),
    ]
    for times, priorities, proposer in table:
        step = compute_proposer_step((vp0, vp1, vp2), (0, 0, 0), times)
        assert (step.priorities, step.proposer) == (priorities, proposer), times


def test_proposer_priority_does_not_get_reset_to_zero():
    """TestProposerPriorityDoesNotGetResetToZero (tendermint#2718): priorities carry over from
    step to step, through a centring and through a rescale. One validator of power 10: one
    step from 0 leaves 0 + 10 - 10. A second validator of power 100 joins (CometBFT's update
    gives it -(110 + 110 >> 3) = -123 and keeps 0 for the first; l2sim has no updates, so
    the step starts from those): centred to 62 and -61, stepped to -38 and 39. The second
    drops to power 1: the spread 77 exceeds twice the total (22), so both are divided by
    ceil(77 / 22) = 4, toward zero, to -9 and 9, and the step leaves 1 and -1 with the
    second validator proposing."""
    step = compute_proposer_step((10,), (0,))
    assert step.priorities == (0 + 10 - 10,)
    assert compute_proposer_step((10,), step.priorities).priorities == (0,)

    step = compute_proposer_step((10, 100), (0, -(110 + (110 >> 3))))
    assert (step.priorities, step.proposer) == ((62 + 10 - 110, -61 + 100), 0)
    assert step.priorities == (-38, 39)

    step = compute_proposer_step((10, 1), step.priorities)
    assert (step.priorities, step.proposer) == ((-9 + 10, 9 + 1 - 11), 1)


def test_stateless_schedule_matches_the_stepped_priorities_for_any_powers():
    """Not a CometBFT test: the property the ports above lean on. For small sets of any
    powers, the proposer of every slot (over two periods) is the one CometBFT's stepped
    priorities give from genesis, by height as by round."""
    rng = random.Random(19)
    for _ in range(40):
        powers = tuple(rng.randint(1, 9) for _ in range(rng.randint(1, 6)))
        validator_set = make_validator_set(len(powers), powers)
        priorities = (0,) * len(powers)
        for slot in range(2 * sum(powers)):
            step = compute_proposer_step(powers, priorities)
            priorities = step.priorities
            assert validator_set.get_proposer(slot, 0) == validator_set.get_proposer(0, slot) == step.proposer


def test_validator_set_verify_commit_light_trusting():
    """TestValidatorSet_VerifyCommitLightTrusting (types/validation_test.go), carried to the
    emergency target: CometBFT's light client trusts a commit once signers holding more than
    1/3 of a set it trusts signed it, for then one of them is honest; l2sim's target trusts a
    first bad height once views holding more than the faulty power f report it (at or
    before), for the same reason. The thresholds agree unless the total power is a multiple
    of 3: there f+1 is exactly a third (a designed difference: f is the largest power below
    a third, so f+1 still includes an honest validator, and CometBFT's strict "more than
    1/3" would ask one validator more than safety needs). Six validators, f = 1: all six
    views give the target; views signed by keys outside the set (CometBFT's set with no
    overlap) count for nothing; one view alone cannot drag the target back, two (a third)
    can, where CometBFT would want three."""
    count = 6
    validator_set = make_validator_set(count)
    keys = get_keys(count)

    def views_of(first_bads, signers=keys):
        return [sign_view(signers[i].private_key, make_view(i, 0, 12, bad, lambda h: bytes([h]) * 32))
                for i, bad in enumerate(first_bads)]

    assert validator_set.max_faulty_power == 1
    assert compute_target(views_of([9] * count), validator_set, 0).height == 8
    strangers = derive_validator_keys(KEY_SEED + 1, count)
    with pytest.raises(EmergencyError, match="quorum"):
        compute_target(views_of([9] * count, strangers), validator_set, 0)
    assert compute_target(views_of([3, 9, 9, 9, 9, 9]), validator_set, 0).height == 8
    assert compute_target(views_of([3, 5, 9, 9, 9, 9]), validator_set, 0).height == 4
