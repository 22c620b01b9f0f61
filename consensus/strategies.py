"""Hypothesis strategies for consensus runs, reusable by any layer's property tests.

A fault schedule is data: voting powers, a Byzantine set (kept under a third of the
power, or deliberately at a third or more), link profiles, partitions and crashes, all
drawn into one `SimConfig` that `consensus.sim.run_simulation` interprets. Hypothesis is
a test-only dependency: it is imported inside the strategy functions, and nothing in the
product imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from consensus.network import CrashFault, LinkProfile, Partition
from consensus.sim import TOPOLOGIES, SimConfig
from consensus.tendermint import TimeoutConfig

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

BYZANTINE_MODES = ("minority", "third-or-more", "none")


def validator_powers(min_validators: int = 4, max_validators: int = 7, max_power: int = 3) -> SearchStrategy:
    """Tuples of voting powers, one per validator, each in 1..max_power."""
    from hypothesis import strategies as st

    return st.integers(min_validators, max_validators).flatmap(
        lambda count: st.tuples(*[st.integers(1, max_power)] * count))


def byzantine_minorities(powers: Sequence[int], behaviours: Sequence[str]) -> SearchStrategy:
    """Byzantine sets ((index, behaviour), ...) by index, whose power stays strictly below
    a third of the total (possibly empty)."""
    from hypothesis import strategies as st

    total = sum(powers)

    @st.composite
    def draw_set(draw):
        order = draw(st.permutations(range(len(powers))))
        chosen: list[int] = []
        for index in order[: draw(st.integers(0, len(powers)))]:
            if (sum(powers[i] for i in chosen) + powers[index]) * 3 < total:
                chosen.append(index)
        return tuple((i, draw(st.sampled_from(tuple(behaviours)))) for i in sorted(chosen))

    return draw_set()


def byzantine_thirds_or_more(powers: Sequence[int], behaviour: str = "equivocate") -> SearchStrategy:
    """Byzantine sets, all with `behaviour`, whose power reaches a third of the total or more:
    validators in a drawn order until the coalition is that large."""
    from hypothesis import strategies as st

    total = sum(powers)

    def take(order: Sequence[int]) -> tuple[tuple[int, str], ...]:
        chosen: list[int] = []
        for index in order:
            if sum(powers[i] for i in chosen) * 3 >= total:
                break
            chosen.append(index)
        return tuple((i, behaviour) for i in sorted(chosen))

    return st.permutations(range(len(powers))).map(take)


def link_profiles(max_jitter_ms: float = 50.0, max_drop_rate: float = 0.3,
                  max_duplicate_rate: float = 0.2) -> SearchStrategy:
    """Link profiles with jitter, drop and duplication up to the given bounds."""
    from hypothesis import strategies as st

    return st.builds(LinkProfile, jitter_ms=st.floats(0, max_jitter_ms), drop_rate=st.floats(0, max_drop_rate),
                     duplicate_rate=st.floats(0, max_duplicate_rate))


def partition_schedules(node_count: int, max_partitions: int = 2, max_start_s: float = 10.0,
                        max_length_s: float = 15.0) -> SearchStrategy:
    """Up to `max_partitions` partitions, each cutting a drawn proper subset of the nodes
    off from the rest for a while."""
    from hypothesis import strategies as st

    if node_count < 2:
        return st.just(())
    partition = st.builds(
        lambda start, length, group: Partition(start, start + length, (tuple(sorted(group)),)),
        st.floats(0, max_start_s), st.floats(0, max_length_s),
        st.sets(st.integers(0, node_count - 1), min_size=1, max_size=node_count - 1),
    )
    return st.lists(partition, max_size=max_partitions).map(tuple)


def crash_schedules(nodes: Sequence[int], max_crashes: int = 3, max_at_s: float = 10.0,
                    max_down_s: float = 8.0) -> SearchStrategy:
    """Up to `max_crashes` crashes of the given nodes, each followed by a restart."""
    from hypothesis import strategies as st

    if not nodes:
        return st.just(())
    crash = st.builds(lambda node, at_s, down_s: CrashFault(node, at_s, at_s + down_s),
                      st.sampled_from(tuple(nodes)), st.floats(0, max_at_s), st.floats(0, max_down_s))
    return st.lists(crash, max_size=max_crashes).map(tuple)


def fault_schedules(min_validators: int = 4, max_validators: int = 7, byzantine: str = "minority",
                    behaviours: Sequence[str] = (), crashes: bool = True,
                    partitions: bool = True, target_height: int = 3, max_time_s: float = 250.0,
                    max_events: int = 40_000) -> SearchStrategy:
    """(SimConfig, validator count, powers) on a drawn topology. byzantine: "minority"
    (< 1/3 of the power, drawn from the behaviour names `behaviours`, e.g.
    `validators.behaviours.BYZANTINE_BEHAVIOURS` with `duplicate-votes`), "third-or-more"
    (>= 1/3, all equivocating) or "none". Only honest nodes crash, and every crash restarts."""
    from hypothesis import strategies as st

    assert byzantine in BYZANTINE_MODES, byzantine
    assert behaviours or byzantine != "minority", "a Byzantine minority needs behaviour names to draw from"

    @st.composite
    def draw_schedule(draw):
        powers = draw(validator_powers(min_validators, max_validators))
        count = len(powers)
        if byzantine == "minority":
            byz = draw(byzantine_minorities(powers, behaviours))
        elif byzantine == "third-or-more":
            byz = draw(byzantine_thirds_or_more(powers))
        else:
            byz = ()
        topology = draw(st.sampled_from(TOPOLOGIES))
        if topology == "random-regular" and count % 2:
            topology = "complete"
        faulty = {i for i, _ in byz}
        honest = [i for i in range(count) if i not in faulty]
        config = SimConfig(
            seed=draw(st.integers(0, 2**32)), topology=topology, degree=4 if count > 4 else 3,
            latency_ms=draw(st.floats(5, 200)), link=draw(link_profiles()),
            partitions=draw(partition_schedules(count)) if partitions else (),
            crashes=draw(crash_schedules(honest)) if crashes else (), byzantine=byz,
            timeouts=TimeoutConfig(), target_height=target_height, max_time_s=max_time_s, max_events=max_events,
        )
        return config, count, powers

    return draw_schedule()
