"""Hypothesis strategies for property tests against l2sim: scenarios, faults, and bad input.

Needs hypothesis, a test-only dependency (`pip install 'l2sim[test]'`); nothing
else in the package imports this module. Everything drawn is plain data, the shape
the public API takes:

- `scenario_dicts()`: whole scenario files as TOML-shaped dicts. By default each one
  loads and runs (`scenarios.run(d)` returns a report; a check may still fail) and is
  small enough to run many; `runnable=False` draws from every file the schema accepts
  (some do not run: no honest validator, or too big to be quick); `broken=True` draws
  files broken in one place, for bad-input tests (`bad_scenario_dicts`).
- `fault_overrides(scenario)`: dotted-key overrides that add faults (Byzantine
  validators, lossy links, partitions, crashes) to that scenario, at times where its run
  is busy (the chain, and the vote after the pause):

      @given(faults=fault_overrides("paradex-2026", small=True))
      def test_...(faults):
          report = scenarios.run("paradex-2026", small=True, overrides=faults)

- `byzantine_entries`, `partitions`, `crashes`, `toml_values`: the parts.

Importing this module registers the Hypothesis profile `l2sim` (20 examples, no deadline:
`settings.load_profile("l2sim")`) and imports py-evm (see below).

(`consensus.strategies.fault_schedules` draws schedules for the bare consensus
simulation, a different shape; the names differ so that imports cannot mix them up.)
"""

import datetime
from typing import Any

try:
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "scenarios.strategies needs hypothesis: pip install 'l2sim[test]'", name="hypothesis"
    ) from e

# py-evm raises the interpreter's recursion limit when it is first imported (eth/__init__.py:
# sys.setrecursionlimit(100000), for deep EVM call stacks). First imported inside a test, as
# `scenarios.run` would, that makes Hypothesis warn on every property ("The recursion limit
# will not be reset, since it was changed during test execution"). Whoever draws scenarios
# is about to run them, so py-evm is imported here, once, before any test starts.
import eth  # noqa: E402,F401

# A profile for properties that run whole scenarios: `settings.load_profile("l2sim")`.
# Every example is a run of a second or more: no deadline (a run's time is not the
# property), few examples, and too_slow suppressed because slow draws are not the cost here.
settings.register_profile("l2sim", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

from scenarios.schema import (
    BEHAVIOURS,
    MARKETS,
    RESPONSE_MODES,
    TOPOLOGIES,
    WITHDRAWAL_POLICIES,
    compute_topology_error,
)

MAX_DRAWN_VALIDATORS = 7  # keeps drawn scenarios small enough to run many of them
MAX_RUNNABLE_VALIDATORS = 5
# The runner's topologies need enough validators: random-regular is 3-regular (an even count above 3),
# geo has 3 clusters (at least 3 validators). The schema accepts any count.
RANDOM_REGULAR_COUNTS = (4, 6)
MIN_GEO_COUNT = 3


def probabilities(*, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Probabilities in [0, max_value]."""
    return st.floats(min_value=0.0, max_value=max_value, allow_nan=False)


def byzantine_entries(
    count: int, *, max_faulty: int | None = None, min_faulty: int = 0
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """`validators.byzantine` for `count` validators: distinct indices, each with a behaviour;
    between `min_faulty` and `max_faulty` (default `count`) of them."""
    limit = count if max_faulty is None else min(count, max_faulty)
    return st.lists(
        st.fixed_dictionaries(
            {"index": st.integers(0, count - 1), "behaviour": st.sampled_from(BEHAVIOURS)}
        ),
        min_size=min(min_faulty, limit),
        max_size=limit,
        unique_by=lambda entry: entry["index"],
    )


Windows = tuple[tuple[float, float], ...]
"""Spans of virtual seconds since genesis, [start, end] each, in which faults are drawn."""


TIME_STEP_S = 0.1  # fault times are whole tenths of a second: integers shrink in a few dozen steps, floats in hundreds


def _window_times(draw: st.DrawFn, windows: Windows) -> tuple[float, float]:
    """A (start, end) pair inside one of `windows`, on a 0.1 s grid: it shrinks toward the
    first window, its start toward the window's start, and its length toward one step."""
    low, high = windows[draw(st.integers(0, len(windows) - 1))]
    steps = max(1, int((high - low) / TIME_STEP_S))
    start = draw(st.integers(0, steps - 1))
    length = draw(st.integers(1, steps - start))
    return round(low + start * TIME_STEP_S, 1), round(low + (start + length) * TIME_STEP_S, 1)


RATES = (0.0, 0.01, 0.05, 0.2)  # a few rates, so that a rate that does not matter shrinks to 0 in a step or two


def rates(*, max_value: float = 0.2) -> st.SearchStrategy[float]:
    """A link's loss or duplication rate: 0 or a few values up to `max_value` (0 first)."""
    return st.sampled_from([r for r in RATES if r <= max_value] or [0.0])


@st.composite
def partitions(
    draw: st.DrawFn, count: int, *, horizon_s: float = 3600.0, max_partitions: int = 2, windows: Windows | None = None
) -> list[dict[str, Any]]:
    """`network.partitions` for `count` validators, every window inside [0, horizon_s] (or
    inside one of `windows`)."""
    windows = windows or ((0.0, horizon_s),)
    result = []
    for _ in range(draw(st.integers(0, max_partitions))):
        start_s, end_s = _window_times(draw, windows)
        order = draw(st.permutations(range(count)))
        cut = draw(st.integers(1, count))
        groups = [sorted(order[:cut]), sorted(order[cut:])]
        result.append({"start_s": start_s, "end_s": end_s, "groups": [g for g in groups if g]})
    return result


@st.composite
def crashes(draw: st.DrawFn, count: int, *, horizon_s: float = 3600.0, max_crashes: int = 2,
            windows: Windows | None = None) -> list[dict[str, Any]]:
    """`network.crashes` for `count` validators: each crash restarts inside [0, horizon_s] (or
    inside the one of `windows` it starts in)."""
    windows = windows or ((0.0, horizon_s),)
    result = []
    for _ in range(draw(st.integers(0, max_crashes))):
        at_s, restart_s = _window_times(draw, windows)
        result.append({"node": draw(st.integers(0, count - 1)), "at_s": at_s, "restart_s": restart_s})
    return result


def compute_fault_windows(scenario) -> Windows:
    """Where faults matter in a run of `scenario` (a `Scenario`), in virtual seconds: the chain
    up to a little past the halt, and the vote after the pause through the restart's blocks.
    Estimated from the scenario alone (a height takes about `block_time_s`); the pause
    between them, when nothing is sent, is left out."""
    block_s = scenario.chain.block_time_s
    halt = scenario.detection.operator_halt_height or scenario.incident.start_height + scenario.detection.delay_blocks
    halt_s = (halt + 2) * block_s
    vote_s = halt_s + scenario.response.pause_s
    after_s = (scenario.chain.heights - scenario.incident.start_height + 3) * block_s + 10.0
    if scenario.response.pause_s <= after_s:
        return ((0.0, vote_s + after_s),)
    return ((0.0, halt_s), (vote_s - 1.0, vote_s + after_s))


MAX_FAULTS = 6  # faults drawn for one run at most, of any kind


@st.composite
def _one_lossy_link(draw: st.DrawFn) -> tuple[str, Any]:
    return draw(st.sampled_from(("network.drop_rate", "network.duplicate_rate"))), draw(st.sampled_from(RATES[1:]))


@st.composite
def _one_crash(draw: st.DrawFn, count: int, windows: Windows) -> tuple[str, Any]:
    node = draw(st.integers(0, count - 1))
    at_s, restart_s = _window_times(draw, windows)
    return "network.crashes", {"node": node, "at_s": at_s, "restart_s": restart_s}


@st.composite
def _one_partition(draw: st.DrawFn, count: int, windows: Windows) -> tuple[str, Any]:
    start_s, end_s = _window_times(draw, windows)
    mask = draw(st.integers(1, 2**count - 2))  # who is on the first side; shrinks toward [0] alone
    side = [i for i in range(count) if mask >> i & 1]
    return "network.partitions", {"start_s": start_s, "end_s": end_s,
                                  "groups": [side, [i for i in range(count) if i not in side]]}


@st.composite
def _one_byzantine(draw: st.DrawFn, count: int) -> tuple[str, Any]:
    return "validators.byzantine", {"index": draw(st.integers(0, count - 1)),
                                    "behaviour": draw(st.sampled_from(BEHAVIOURS))}


def compute_fault_overrides(faults: list[tuple[str, Any]], max_faulty: int) -> dict[str, Any]:
    """Dotted-key overrides from a list of faults, each (key, value): rates set (the last
    wins), crashes and partitions listed, Byzantine entries listed once per validator and at
    most `max_faulty` of them (later ones are dropped)."""
    overrides: dict[str, Any] = {"validators.byzantine": [], "network.drop_rate": 0.0, "network.duplicate_rate": 0.0,
                                 "network.partitions": [], "network.crashes": []}
    for key, value in faults:
        if key == "validators.byzantine":
            taken = {entry["index"] for entry in overrides[key]}
            if value["index"] not in taken and len(taken) < max_faulty:
                overrides[key].append(value)
        elif isinstance(overrides[key], list):
            overrides[key].append(value)
        else:
            overrides[key] = value
    return overrides


def fault_overrides(
    scenario: Any, *, small: bool = False, horizon_s: float | None = None, within_threshold: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Dotted-key overrides that misbehave: Byzantine validators, lossy links, partitions and
    crashes that restart.

    `scenario` is what they are drawn for (a bundled name, a path, a dict or a `Scenario`,
    with `small` as `scenarios.load` takes it): its validator count, and fault times where
    the run is busy (`compute_fault_windows`: the chain, and the vote after the pause), so
    that faults fall where the vote happens. A bare int is a validator count, with faults
    inside [0, `horizon_s`] (3600 s by default). `horizon_s` always wins when given.

    With `within_threshold`, fewer than a third of the (equal-power) validators
    are Byzantine, so agreement must hold whatever else is drawn.

    Drawn to shrink fast, because every example a failing property tries is a whole run: one
    list of up to `MAX_FAULTS` faults (Hypothesis deletes what the failure does not need, one
    fault at a time), each a lossy link, a crash, a partition or a Byzantine validator, in
    that order of preference (a fault shrinks toward the kinds before it), at times on a
    0.1 s grid that shrink toward the start of the first window, and rates from a short list.
    """
    if isinstance(scenario, int) and not isinstance(scenario, bool):
        count, windows = scenario, ((0.0, 3600.0 if horizon_s is None else horizon_s),)
    else:
        from scenarios.api import load  # drawing for a scenario reads it once, here

        resolved = load(scenario, small=small)
        count = resolved.validators.count
        windows = ((0.0, horizon_s),) if horizon_s is not None else compute_fault_windows(resolved)
    max_faulty = (count - 1) // 3 if within_threshold else count
    kinds = [_one_lossy_link(), _one_crash(count, windows)]
    if count > 1:
        kinds.append(_one_partition(count, windows))
    byzantine = st.lists(_one_byzantine(count), max_size=max_faulty)
    return st.tuples(byzantine, st.lists(st.one_of(kinds), max_size=MAX_FAULTS)).map(
        lambda drawn: compute_fault_overrides(drawn[0] + drawn[1], max_faulty))


def scenario_dicts(
    *, runnable: bool = True, broken: bool = False, max_validators: int | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Whole scenario files as TOML-shaped dicts.

    By default every one loads and runs to a report in about a second (2 to 5 validators,
    at least one honest; at most 30 heights and 80 accounts). `runnable=False` draws any
    file the schema accepts, up to `max_validators` (7); `broken=True` draws files that do
    not load (see `bad_scenario_dicts`).
    """
    if broken:
        return bad_scenario_dicts()
    if runnable:
        return _runnable_scenario_dicts(max_validators=min(max_validators or MAX_RUNNABLE_VALIDATORS,
                                                           MAX_RUNNABLE_VALIDATORS))
    return _valid_scenario_dicts(max_validators=max_validators or MAX_DRAWN_VALIDATORS)


def _responses(*, max_pause_s: float) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "mode": st.sampled_from(RESPONSE_MODES),
        "pause_s": st.floats(0.0, max_pause_s, allow_nan=False),
        "withdrawal_policy": st.sampled_from(WITHDRAWAL_POLICIES),
    })


@st.composite
def _runnable_scenario_dicts(draw: st.DrawFn, *, max_validators: int) -> dict[str, Any]:
    # At least 2: on this branch a lone validator certifies its plan before the runner's plan
    # phase is set up (IndexError in runner.on_certificate); the runner rewrite runs it, so
    # lower the bound to 1 once both meet.
    count = draw(st.integers(2, max(2, max_validators)))
    heights = draw(st.integers(12, 30))
    start_height = draw(st.integers(2, heights - 4))
    accounts = draw(st.integers(12, 80))
    traders = draw(st.integers(0, min(30, accounts - 7)))  # room for 3 keepers and 4 profit-takers
    keepers = draw(st.integers(1, 3))
    profit_takers = draw(st.integers(0, 4))
    block_time_s = draw(st.sampled_from([0.5, 1.0, 2.0]))
    faulty = draw(byzantine_entries(count, max_faulty=count - 1))  # someone stays honest
    topologies = [t for t in TOPOLOGIES if (t != "random-regular" or count in RANDOM_REGULAR_COUNTS)
                  and (t != "geo" or count >= MIN_GEO_COUNT)]
    validators: dict[str, Any] = {"count": count, "byzantine": faulty, "topology": draw(st.sampled_from(topologies))}
    if draw(st.booleans()):
        validators["power"] = draw(st.lists(st.integers(1, 10), min_size=count, max_size=count))
    detection: dict[str, Any] = {"delay_blocks": draw(st.integers(0, 3))}
    if draw(st.booleans()):
        detection["operator_halt_height"] = draw(st.integers(start_height, heights))
    horizon_s = heights * block_time_s * 4
    return {
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)),
        "seed": draw(st.integers(0, 2**32)),
        "chain": {"block_time_s": block_time_s, "accounts": accounts, "heights": heights,
                  "finality_blocks": draw(st.integers(1, 100))},
        "validators": validators,
        "network": {
            "drop_rate": draw(probabilities(max_value=0.1)),
            "partitions": draw(partitions(count, horizon_s=horizon_s, max_partitions=1)),
            "crashes": draw(crashes(count, horizon_s=horizon_s, max_crashes=1)),
        },
        "incident": {
            "market": draw(st.sampled_from(MARKETS)),
            "start_height": start_height,
            "duration_blocks": draw(st.integers(1, 5)),
        },
        "detection": detection,
        "response": draw(_responses(max_pause_s=600.0)),
        "oracle": {"stale_after_restart_blocks": draw(st.integers(0, 5))},
        "workload": {"traders": traders, "keepers": keepers, "profit_takers": profit_takers,
                     "trade_probability": draw(probabilities(max_value=0.3))},
    }


@st.composite
def _valid_scenario_dicts(draw: st.DrawFn, *, max_validators: int) -> dict[str, Any]:
    count = draw(st.integers(1, max_validators))
    heights = draw(st.integers(20, 200))
    start_height = draw(st.integers(1, heights - 1))
    accounts = draw(st.integers(10, 300))
    traders = draw(st.integers(0, accounts - 2))
    keepers = draw(st.integers(0, accounts - traders - 1))
    profit_takers = draw(st.integers(0, accounts - traders - keepers))
    block_time_s = draw(st.sampled_from([0.5, 1.0, 2.0]))
    validators: dict[str, Any] = {
        "count": count,
        "byzantine": draw(byzantine_entries(count, max_faulty=count - 1)),  # at least one honest
        "topology": draw(st.sampled_from([t for t in TOPOLOGIES if compute_topology_error(t, count) is None])),
    }
    if draw(st.booleans()):
        validators["power"] = draw(st.lists(st.integers(1, 100), min_size=count, max_size=count))
    # At most 50 %: the bad prices drawn (0, 1, 1e9) must stand outside the band of every genesis
    # price, or the schema refuses the incident as undetectable (1 USD is within 99.5 % of SOL's 190).
    detection: dict[str, Any] = {"deviation_bps": draw(st.integers(1, 5_000))}
    if draw(st.booleans()):
        detection["operator_halt_height"] = draw(st.integers(start_height, heights))
        detection["delay_blocks"] = draw(st.integers(0, 10))
    else:  # the alarm must halt by the last height
        detection["delay_blocks"] = draw(st.integers(0, min(10, heights - start_height)))
    return {
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)),
        "seed": draw(st.integers(0, 2**32)),
        "description": draw(st.text(st.characters(codec="utf-8"), max_size=40)),
        "chain": {
            "block_time_s": block_time_s,
            "accounts": accounts,
            "heights": heights,
            "finality_blocks": draw(st.integers(1, 100)),
        },
        "validators": validators,
        "network": {
            "latency_ms": draw(st.floats(0.0, 500.0, allow_nan=False)),
            "jitter_ms": draw(st.floats(0.0, 100.0, allow_nan=False)),
            "drop_rate": draw(probabilities(max_value=0.3)),
            "duplicate_rate": draw(probabilities(max_value=0.3)),
            "partitions": draw(partitions(count, horizon_s=heights * block_time_s * 4)),
        },
        "incident": {
            "market": draw(st.sampled_from(MARKETS)),
            "start_height": start_height,
            "duration_blocks": draw(st.integers(1, 20)),
            "bad_price": draw(st.sampled_from([0.0, 1.0, 1e9])),
        },
        "detection": detection,
        "response": draw(_responses(max_pause_s=86400.0)),
        "oracle": {"stale_after_restart_blocks": draw(st.integers(0, 30))},
        "workload": {
            "traders": traders,
            "keepers": keepers,
            "profit_takers": profit_takers,
            "leverage_max": draw(st.floats(1.0, 50.0, allow_nan=False)),
            "trade_probability": draw(probabilities()),
            "withdraw_probability": draw(probabilities(max_value=0.2)),
        },
    }


def toml_values(*, max_leaves: int = 5) -> st.SearchStrategy[Any]:
    """Any value a TOML file can hold: scalars, dates, arrays and tables."""
    scalars = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from([0, -1, 1, 2**64]),
        st.floats(),
        st.booleans(),
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(list(BEHAVIOURS) + list(MARKETS) + list(RESPONSE_MODES) + ["", "paradex-2026"]),
        st.dates(),
        st.datetimes(timezones=st.sampled_from([datetime.timezone.utc])),
    )
    keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=10)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=max_leaves,
    )


@st.composite
def bad_scenario_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid scenario dict broken in one place: a value replaced, a key added, or a key removed."""
    data = draw(scenario_dicts(runnable=False))
    paths = list(_walk_paths(data))
    path = draw(st.sampled_from(paths))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "add", "remove"]))
    if action == "replace":
        parent[path[-1]] = draw(toml_values())
    elif action == "add" and isinstance(parent, dict):
        key = draw(st.sampled_from(["colour", "count", "index", "extends", "validators", "x-y"]))
        parent[key] = draw(toml_values())
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return data


def _walk_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    paths = []
    for key, value in items:
        paths.append(prefix + (key,))
        paths.extend(_walk_paths(value, prefix + (key,)))
    return paths
