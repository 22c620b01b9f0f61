"""Deterministic discrete-event loop and a simulated network over a networkx graph.

Virtual time is kept in integer microseconds so that runs are identical on every
machine; nothing reads the wall clock. The event heap holds (time_us, seq, event) with a
monotonic sequence number as tie-breaker, so events at the same instant run in the
order they were scheduled and events themselves are never compared.

Messages travel point to point along the shortest path of the topology (its latency is
computed once per sender, lazily, not all pairs up front), plus per-message jitter; each
transmission may be dropped or duplicated, and partitions drop traffic between their
groups while they last. Every random draw comes from the `random.Random` passed in.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import networkx as nx

from consensus.messages import ConsensusError

US_PER_S = 1_000_000
US_PER_MS = 1_000
MAX_TOPOLOGY_ATTEMPTS = 32


class NetworkConfigError(ConsensusError):
    """Raised when a topology, link profile or fault schedule cannot be built as given."""

    def __init__(self, field_name: str, value: Any, reason: str):
        super().__init__(f"{field_name}={value!r}: {reason}")
        self.field_name = field_name
        self.value = value
        self.reason = reason


def seconds_to_us(seconds: float) -> int:
    """Virtual seconds to integer microseconds (rounded half to even, deterministic)."""
    return int(round(seconds * US_PER_S))


def ms_to_us(milliseconds: float) -> int:
    """Milliseconds to integer microseconds."""
    return int(round(milliseconds * US_PER_MS))


# --- event loop ----------------------------------------------------------------------------


@dataclass
class EventLoop:
    """A heap of (time_us, seq, event) in virtual time."""

    now_us: int = 0
    processed: int = 0
    _heap: list[tuple[int, int, Any]] = field(default_factory=list)
    _seq: int = 0

    def schedule_at_us(self, time_us: int, event: Any) -> None:
        """Schedule `event` at absolute virtual time `time_us` (not in the past)."""
        assert time_us >= self.now_us, "cannot schedule in the past"
        heapq.heappush(self._heap, (time_us, self._seq, event))
        self._seq += 1

    def schedule_after_s(self, delay_s: float, event: Any) -> None:
        """Schedule `event` `delay_s` virtual seconds from now."""
        self.schedule_at_us(self.now_us + max(0, seconds_to_us(delay_s)), event)

    def peek_time_us(self) -> int | None:
        """Time of the next event, or None when the heap is empty."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[int, Any]:
        """Advance the clock to the next event and return (time_us, event)."""
        time_us, _, event = heapq.heappop(self._heap)
        self.now_us = time_us
        self.processed += 1
        return time_us, event

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(frozen=True)
class RunResult:
    """Why `run_until` stopped: "time", "predicate", "empty" or "max_events"."""

    reason: str
    events: int
    now_us: int


def run_until(loop: EventLoop, handle: Callable[[int, Any], None], max_events: int,
              until_s: float | None = None, stop: Callable[[], bool] | None = None) -> RunResult:
    """Run events (each through `handle(time_us, event)`) until virtual time passes
    `until_s`, `stop()` holds (checked after each event), the heap empties, or
    `max_events` events have run."""
    assert max_events >= 0
    until_us = None if until_s is None else seconds_to_us(until_s)
    for count in range(max_events):
        next_us = loop.peek_time_us()
        if next_us is None:
            return RunResult("empty", count, loop.now_us)
        if until_us is not None and next_us > until_us:
            loop.now_us = max(loop.now_us, until_us)
            return RunResult("time", count, loop.now_us)
        time_us, event = loop.pop()
        handle(time_us, event)
        if stop is not None and stop():
            return RunResult("predicate", count + 1, loop.now_us)
    return RunResult("max_events", max_events, loop.now_us)


# --- topologies ---------------------------------------------------------------------------


def build_complete_topology(node_count: int, latency_ms: float) -> nx.Graph:
    """Every pair linked directly with the same base latency."""
    _check_count(node_count)
    graph = nx.complete_graph(node_count)
    nx.set_edge_attributes(graph, ms_to_us(latency_ms), "latency_us")
    graph.graph["direct"] = True
    return graph


def build_random_regular_topology(node_count: int, degree: int, latency_ms: float, rng: random.Random) -> nx.Graph:
    """A connected random `degree`-regular graph; each link's latency is drawn in
    [0.5, 1.5] x `latency_ms`. Messages follow shortest paths."""
    _check_count(node_count)
    if not 0 < degree < node_count or (node_count * degree) % 2:
        raise NetworkConfigError("degree", degree, f"no {degree}-regular graph on {node_count} nodes")
    for _ in range(MAX_TOPOLOGY_ATTEMPTS):
        graph = nx.random_regular_graph(degree, node_count, seed=rng.getrandbits(32))
        if nx.is_connected(graph):
            break
    else:
        raise NetworkConfigError("degree", degree, "random regular graphs drawn were not connected")
    for a, b in sorted(graph.edges()):
        graph.edges[a, b]["latency_us"] = ms_to_us(latency_ms * (0.5 + rng.random()))
    graph.graph["direct"] = False
    return graph


def build_geo_cluster_topology(node_count: int, cluster_count: int, rng: random.Random,
                               base_latency_ms: float = 5.0, ms_per_unit: float = 150.0,
                               cluster_radius: float = 0.05) -> nx.Graph:
    """Nodes in `cluster_count` geographic clusters on the unit square; a direct link
    between every pair with latency base + distance x ms_per_unit. Node i is in
    cluster i % cluster_count (graph attribute `cluster` on each node)."""
    _check_count(node_count)
    if not 0 < cluster_count <= node_count:
        raise NetworkConfigError("cluster_count", cluster_count, f"must be in 1..{node_count}")
    centers = [(rng.random(), rng.random()) for _ in range(cluster_count)]
    graph = nx.complete_graph(node_count)
    positions = []
    for node in range(node_count):
        cx, cy = centers[node % cluster_count]
        position = (cx + rng.uniform(-cluster_radius, cluster_radius), cy + rng.uniform(-cluster_radius, cluster_radius))
        positions.append(position)
        graph.nodes[node]["cluster"] = node % cluster_count
        graph.nodes[node]["position"] = position
    for a, b in graph.edges():
        distance = math.dist(positions[a], positions[b])
        graph.edges[a, b]["latency_us"] = ms_to_us(base_latency_ms + distance * ms_per_unit)
    graph.graph["direct"] = True  # latency grows with distance: the direct link is shortest
    return graph


def _check_count(node_count: int) -> None:
    if node_count < 1:
        raise NetworkConfigError("node_count", node_count, "need at least one node")


# --- faults -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """Between `start_s` and `end_s` traffic crosses no group boundary; nodes listed in no
    group form one more group together."""

    start_s: float
    end_s: float
    groups: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not 0 <= self.start_s <= self.end_s:
            raise NetworkConfigError("partition", (self.start_s, self.end_s), "need 0 <= start_s <= end_s")
        seen: set[int] = set()
        for group in self.groups:
            for node in group:
                if node in seen:
                    raise NetworkConfigError("partition.groups", self.groups, f"node {node} in two groups")
                seen.add(node)

    def get_group(self, node: int) -> int:
        """Index of the node's group (len(groups) for unlisted nodes)."""
        for index, group in enumerate(self.groups):
            if node in group:
                return index
        return len(self.groups)

    def is_active_at(self, time_us: int) -> bool:
        return seconds_to_us(self.start_s) <= time_us < seconds_to_us(self.end_s)


@dataclass(frozen=True)
class CrashFault:
    """Node `node` crashes at `at_s` (loses its engine state) and restarts at `restart_s`
    (never when None), keeping only what it persisted (chain and vote journal)."""

    node: int
    at_s: float
    restart_s: float | None = None

    def __post_init__(self) -> None:
        if self.at_s < 0 or (self.restart_s is not None and self.restart_s < self.at_s):
            raise NetworkConfigError("crash", (self.at_s, self.restart_s), "need 0 <= at_s <= restart_s")


@dataclass(frozen=True)
class LinkProfile:
    """Per-transmission behaviour of every link: jitter added to the path latency, and
    drop and duplication probabilities."""

    jitter_ms: float = 10.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.jitter_ms < 0:
            raise NetworkConfigError("jitter_ms", self.jitter_ms, "must be >= 0")
        for name in ("drop_rate", "duplicate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise NetworkConfigError(name, value, "must be in [0, 1)")


def get_last_heal_s(partitions: Sequence[Partition]) -> float:
    """When the last partition heals (0.0 when there is none)."""
    return max((p.end_s for p in partitions), default=0.0)


# --- the network ----------------------------------------------------------------------------


@dataclass
class Network:
    """Links between nodes 0..n-1 of `graph` (edge attribute `latency_us`)."""

    graph: nx.Graph
    link: LinkProfile
    rng: random.Random
    partitions: tuple[Partition, ...] = ()
    _rows: dict[int, dict[int, int]] = field(default_factory=dict)

    def get_path_latency_us(self, sender: int, receiver: int) -> int:
        """Base latency of the shortest path (computed once per sender)."""
        if sender == receiver:
            return 0
        if self.graph.graph.get("direct"):
            return self.graph.edges[sender, receiver]["latency_us"]
        row = self._rows.get(sender)
        if row is None:
            row = self._rows[sender] = nx.single_source_dijkstra_path_length(self.graph, sender, weight="latency_us")
        return row[receiver]

    def is_partitioned(self, sender: int, receiver: int, time_us: int) -> bool:
        """True when an active partition separates the two nodes at `time_us`."""
        for partition in self.partitions:
            if partition.is_active_at(time_us) and partition.get_group(sender) != partition.get_group(receiver):
                return True
        return False

    def plan_delivery_us(self, sender: int, receiver: int, now_us: int) -> list[int]:
        """Arrival times of one transmission: [] if dropped or cut by a partition (at send
        or arrival), two entries if duplicated. Draws from the rng in a fixed order (the drop
        and duplication draws only when their rate is above zero)."""
        link = self.link  # a rate of zero draws nothing: a clean link costs one draw a copy
        dropped = link.drop_rate > 0 and self.rng.random() < link.drop_rate
        jitter_us = ms_to_us(self.rng.uniform(0.0, link.jitter_ms))
        duplicated = link.duplicate_rate > 0 and self.rng.random() < link.duplicate_rate
        extra_us = ms_to_us(self.rng.uniform(0.0, self.link.jitter_ms)) if duplicated else 0
        if dropped or self.is_partitioned(sender, receiver, now_us):
            return []
        arrivals = [now_us + self.get_path_latency_us(sender, receiver) + jitter_us]
        if duplicated:
            arrivals.append(arrivals[0] + extra_us + 1)
        return [t for t in arrivals if not self.is_partitioned(sender, receiver, t)]
