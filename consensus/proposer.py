"""Proposer priorities: CometBFT's weighted round robin, as pure functions over tuples.

One step (CometBFT's `ValidatorSet.IncrementProposerPriority`) first *rescales* the
priorities so that the spread between the highest and the lowest stays within twice the
total power, then *centres* them on their average, then, `times` times, adds each
validator's power to its priority, picks the highest (ties: the lower index) as proposer
and takes the total power off the proposer's priority.

From CometBFT's genesis priorities (all equal, hence zero once centred) and a fixed set,
the rescale and the centring never change anything: the proposers are those of the plain
smooth weighted round robin. They are kept anyway, because they are what keeps the
priorities bounded whenever a step starts from priorities of another shape (CometBFT's
after a validator-set update), and `consensus.messages.ValidatorSet` draws its schedule
through this one function.

Integer arithmetic follows Go's: the rescale divides with truncation toward zero (Go's
`/` on int64), the average is the floor of the sum over the count (`big.Int.Div` is
Euclidean division, the floor for a positive divisor). Python integers do not overflow,
so CometBFT's clipping at the int64 bounds has nothing to clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

PRIORITY_WINDOW_SIZE_FACTOR = 2  # CometBFT's PriorityWindowSizeFactor: spread kept within 2x total power


@dataclass(frozen=True)
class ProposerStep:
    """Priorities after a step, and the proposer its last increment chose."""

    priorities: tuple[int, ...]
    proposer: int


def compute_rescaled_priorities(priorities: Sequence[int], diff_max: int) -> tuple[int, ...]:
    """CometBFT's `RescalePriorities`: when max - min exceeds `diff_max`, divide every
    priority by ceil((max - min) / diff_max), truncating toward zero; a non-positive
    `diff_max` leaves them as they are."""
    assert priorities, "no validators"
    if diff_max <= 0:
        return tuple(priorities)
    diff = max(priorities) - min(priorities)
    if diff <= diff_max:
        return tuple(priorities)
    ratio = (diff + diff_max - 1) // diff_max
    return tuple(_divide_toward_zero(p, ratio) for p in priorities)


def compute_centred_priorities(priorities: Sequence[int]) -> tuple[int, ...]:
    """CometBFT's `shiftByAvgProposerPriority`: every priority minus the floor of the average."""
    assert priorities, "no validators"
    average = sum(priorities) // len(priorities)
    return tuple(p - average for p in priorities)


def compute_proposer_step(powers: Sequence[int], priorities: Sequence[int], times: int = 1) -> ProposerStep:
    """CometBFT's `IncrementProposerPriority(times)`: rescale, centre, then `times` rounds of
    the weighted round robin. Powers may be zero here (CometBFT's own tests use such sets);
    a `ValidatorSet` only ever passes positive ones."""
    assert len(powers) == len(priorities) > 0, "one priority per validator"
    assert times > 0, "times must be positive"
    assert all(p >= 0 for p in powers), "powers are never negative"
    total = sum(powers)
    current = list(compute_centred_priorities(
        compute_rescaled_priorities(priorities, PRIORITY_WINDOW_SIZE_FACTOR * total)))
    proposer = 0
    for _ in range(times):
        for i, power in enumerate(powers):
            current[i] += power
        proposer = _get_most_priority(current)
        current[proposer] -= total
    return ProposerStep(tuple(current), proposer)


def compute_proposer_schedule(powers: Sequence[int], length: int) -> list[int]:
    """The proposers of the first `length` slots from the genesis priorities (zero), one
    step per slot, as CometBFT advances one step per height and one per round."""
    priorities: tuple[int, ...] = (0,) * len(powers)
    schedule = []
    for _ in range(length):
        step = compute_proposer_step(powers, priorities)
        priorities = step.priorities
        schedule.append(step.proposer)
    return schedule


def _get_most_priority(priorities: Sequence[int]) -> int:
    # the first maximum: ties go to the lower index (CometBFT: the lower address)
    best = 0
    for i in range(1, len(priorities)):
        if priorities[i] > priorities[best]:
            best = i
    return best


def _divide_toward_zero(value: int, divisor: int) -> int:
    assert divisor > 0
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient
