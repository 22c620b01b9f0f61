"""The event loop and the simulated network: ordering, bounds, faults, determinism."""

import random

import pytest

from consensus.network import (
    CrashFault,
    EventLoop,
    LinkProfile,
    Network,
    NetworkConfigError,
    Partition,
    build_complete_topology,
    build_geo_cluster_topology,
    build_random_regular_topology,
    run_until,
    seconds_to_us,
)


def test_events_at_the_same_instant_run_in_scheduling_order():
    loop, seen = EventLoop(), []
    for name in ["b", "a", "c"]:
        loop.schedule_after_s(1.0, name)
    loop.schedule_after_s(0.5, "first")
    result = run_until(loop, lambda t, e: seen.append((t, e)), max_events=10)
    assert seen == [(500_000, "first"), (1_000_000, "b"), (1_000_000, "a"), (1_000_000, "c")]
    assert result.reason == "empty"


def test_run_until_is_bounded_by_time_predicate_and_event_count():
    loop = EventLoop()

    def tick(time_us, n):
        loop.schedule_after_s(1.0, n + 1)

    loop.schedule_after_s(0.0, 0)
    assert run_until(loop, tick, max_events=1000, until_s=10.5).reason == "time"
    assert loop.now_us == seconds_to_us(10.5)
    assert run_until(loop, tick, max_events=3).reason == "max_events"
    assert run_until(loop, tick, max_events=100, stop=lambda: loop.now_us >= 20_000_000).reason == "predicate"


def test_partitions_cut_only_across_groups_and_heal():
    network = Network(build_complete_topology(4, 10), LinkProfile(jitter_ms=0), random.Random(1),
                      (Partition(1.0, 2.0, ((0, 1),)),))
    assert network.plan_delivery_us(0, 2, 0) == [10_000]
    assert network.plan_delivery_us(0, 2, 1_500_000) == []  # across the cut
    assert network.plan_delivery_us(2, 3, 1_500_000) == [1_510_000]  # unlisted nodes form one group
    assert network.plan_delivery_us(0, 2, 995_000) == []  # would arrive during the partition
    assert network.plan_delivery_us(0, 2, 2_000_000) == [2_010_000]


def test_drop_and_duplicate_rates_are_roughly_honoured_and_seeded():
    def sample(seed):
        network = Network(build_complete_topology(2, 10), LinkProfile(5, 0.25, 0.25), random.Random(seed))
        return [network.plan_delivery_us(0, 1, 0) for _ in range(2000)]

    runs = sample(3)
    assert runs == sample(3)
    dropped = sum(1 for r in runs if not r) / len(runs)
    duplicated = sum(1 for r in runs if len(r) == 2) / len(runs)
    assert 0.2 < dropped < 0.3 and 0.15 < duplicated < 0.25


def test_random_regular_latency_is_the_shortest_path():
    graph = build_random_regular_topology(40, 3, 20, random.Random(5))
    network = Network(graph, LinkProfile(jitter_ms=0), random.Random(0))
    import networkx as nx
    expected = nx.shortest_path_length(graph, 0, 17, weight="latency_us")
    assert network.get_path_latency_us(0, 17) == expected
    assert build_random_regular_topology(40, 3, 20, random.Random(5)).edges(data=True) is not None


def test_geo_clusters_are_closer_inside_than_across():
    graph = build_geo_cluster_topology(30, 3, random.Random(2), cluster_radius=0.01)
    inside = graph.edges[0, 3]["latency_us"]  # same cluster (i % 3)
    across = [graph.edges[0, 1]["latency_us"], graph.edges[0, 2]["latency_us"]]
    assert inside < min(across)


@pytest.mark.parametrize("make", [
    lambda: build_random_regular_topology(5, 3, 10, random.Random(0)),  # n * degree odd
    lambda: build_complete_topology(0, 10),
    lambda: Partition(2.0, 1.0, ()),
    lambda: Partition(0.0, 1.0, ((0, 1), (1, 2))),
    lambda: LinkProfile(drop_rate=1.0),
    lambda: CrashFault(0, 5.0, 4.0),
])
def test_bad_network_configs_are_typed_errors(make):
    with pytest.raises(NetworkConfigError):
        make()
