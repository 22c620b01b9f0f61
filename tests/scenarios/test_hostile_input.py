"""Numbers at and past every bound of the schema, and files no scenario is (issue 18's probes).

Every number the schema accepts is one a run can honour; every other one is a
`ScenarioError` naming its field, never an exception from deeper down.
"""

import math
import os
import typing

import pytest
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import scenarios
from scenarios.errors import ScenarioError
from scenarios.schema import MAX_VIRTUAL_S, Scenario

TINY = {
    "name": "tiny",
    "chain": {"heights": 12, "accounts": 12},
    "incident": {"start_height": 4},
    "detection": {"delay_blocks": 1},
    "workload": {"traders": 4, "keepers": 1, "profit_takers": 1},
    "response": {"pause_s": 5.0},
}


def _bounds(metadata) -> tuple[float | None, float | None]:
    low = high = None
    for m in metadata:
        if isinstance(m, (Ge, Gt)):
            low = m.ge if isinstance(m, Ge) else m.gt
        if isinstance(m, (Le, Lt)):
            high = m.le if isinstance(m, Le) else m.lt
    return low, high


def _number_type(annotation):
    """(int or float, metadata of an Annotated value type) for a number field, else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation in (int, float):
        return annotation, []
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        return _number_type(args[0])
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        found = _number_type(base)
        meta = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return None if found is None else (found[0], found[1] + meta)
    return None


def walk_number_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type, float | None, float | None]]:
    """(dotted key, type, low, high) of every number the schema holds in a table or a table of
    markets (arrays of tables are walked by hand below)."""
    found = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += walk_number_fields(annotation, f"{key}.")
            continue
        if typing.get_origin(annotation) is dict:
            number = _number_type(typing.get_args(annotation)[1])
            if number is not None:
                found.append((f"{key}.BTC-USD", number[0], *_bounds(number[1])))
            continue
        number = _number_type(annotation)
        if number is not None and key != "seed":
            found.append((key, number[0], *_bounds(list(info.metadata) + number[1])))
    return found


FIELDS = walk_number_fields(Scenario)


def extremes(kind: type, low: float | None, high: float | None) -> list:
    """Each bound, the nearest value past it, and values far out, as the field's type."""
    values = [0, 1, -1, 1e308, -1e308, math.inf, 1e-300, 2**64]
    for bound, outward in ((low, -math.inf), (high, math.inf)):
        if bound is not None:
            values += [bound, math.nextafter(bound, outward), math.nextafter(bound, -outward)]
            if kind is int:
                values += [int(bound) - 1, int(bound) + 1]
    if kind is int:
        return sorted({int(v) for v in values if isinstance(v, int) or (math.isfinite(v) and v == int(v))})
    return [float(v) for v in values]


def test_the_walk_finds_the_numbers_of_every_table():
    keys = {key for key, *_ in FIELDS}
    assert {"chain.block_time_s", "incident.bad_price", "prices.initial_usd.BTC-USD", "chain.heights",
            "network.drop_rate", "response.pause_s", "exchange.funding_index_usd.BTC-USD"} <= keys
    assert ("validators.count", int) in {(k, t) for k, t, *_ in FIELDS}


def assert_numbers_a_run_can_take(scenario: Scenario) -> None:
    """What a run first does with the numbers it is given, without the run: prices become 1e18
    integers in uint256 slots, moments become int64 microseconds, a block lasts some of them."""
    from consensus.network import seconds_to_us
    from scenarios.market import usd_to_wei

    prices = [scenario.incident.bad_price, *scenario.prices.initial_usd.values(),
              scenario.workload.aggressor_notional_usd, scenario.exchange.vault_usd]
    assert all(0 <= usd_to_wei(p) * 10**18 < 2**255 for p in prices)  # times a 1e18 size, still in range
    assert all(usd_to_wei(p) >= 10**12 for p in scenario.prices.initial_usd.values())
    network = scenario.network
    moments = [scenario.response.pause_s, *(t for c in network.crashes for t in (c.at_s, c.restart_s or 0.0)),
               *(t for p in network.partitions for t in (p.start_s, p.end_s))]
    assert all(seconds_to_us(t + scenario.chain.heights * scenario.chain.block_time_s) < 2**63 for t in moments)
    assert seconds_to_us(scenario.chain.block_time_s) >= 1000


def _assert_loads_or_names_the_field(overrides: dict, field: str) -> None:
    try:
        scenario = scenarios.load(TINY, overrides=overrides)
    except ScenarioError as error:
        assert "\n" not in str(error)
        assert field.split(".")[0] in str(error) or "overrides" in str(error), str(error)
        return
    assert_numbers_a_run_can_take(scenario)


def test_every_number_at_and_past_its_bounds_loads_or_is_one_scenario_error():
    for key, kind, low, high in FIELDS:  # every field, every extreme: a few hundred loads
        for value in extremes(kind, low, high):
            _assert_loads_or_names_the_field({key: value}, key)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_number_anywhere_loads_or_is_one_scenario_error(data):
    key, kind, low, high = data.draw(st.sampled_from(FIELDS))
    near = [b for b in (low, high) if b is not None]
    if kind is int:
        value = data.draw(st.integers() | st.sampled_from(near or [0]).map(lambda b: int(b) + data.draw(
            st.integers(-2, 2))))
    else:
        value = data.draw(st.floats(allow_nan=False) | st.sampled_from(near or [0.0]).map(
            lambda b: b * data.draw(st.floats(0.5, 2.0))))
    _assert_loads_or_names_the_field({key: value}, key)


_WINDOWS = [(0.0, 1.0), (MAX_VIRTUAL_S - 1, MAX_VIRTUAL_S), (MAX_VIRTUAL_S, math.nextafter(MAX_VIRTUAL_S, math.inf)),
            (1e308, math.inf), (-1.0, 5.0), (1.0, 1e308)]


@pytest.mark.parametrize("start, end", _WINDOWS)
def test_crash_and_partition_times_at_and_past_their_bounds(start, end):
    _assert_loads_or_names_the_field(
        {"network.crashes": [{"node": 1, "at_s": start, "restart_s": end}]}, "network.crashes")
    _assert_loads_or_names_the_field(
        {"network.partitions": [{"start_s": start, "end_s": end, "groups": [[0, 1], [2, 3]]}]}, "network.partitions")


@pytest.mark.parametrize("key, value, expected", [
    ("network.crashes", [{"node": 1, "at_s": 1e308}], "network.crashes[0].at_s"),
    ("incident.bad_price", 1e60, "incident.bad_price"),
    ("chain.block_time_s", 1e-300, "chain.block_time_s"),
    ("prices.initial_usd", {"BTC-USD": 1e-300}, "prices.initial_usd.BTC-USD"),
    ("network.latency_ms", 600_000.0, "network.latency_ms"),
    ("chain.block_time_s", 3600.0, "chain.block_time_s"),
], ids=["crash at 1e308 s", "bad price 1e60", "block every 1e-300 s", "price 1e-300", "10-minute links",
        "hour-long blocks"])
def test_the_numbers_that_broke_a_run_are_refused_naming_the_field(key, value, expected):
    with pytest.raises(ScenarioError, match=expected.replace(".", r"\.").replace("[", r"\[")):
        scenarios.load(TINY, overrides={key: value})


def test_a_scenario_at_the_honourable_extremes_runs_to_the_end():
    """One small run at once at the bounds that used to overflow or never end (the rest of the
    walk loads only: a run costs seconds)."""
    report = scenarios.run(TINY, overrides={
        "chain.block_time_s": 0.001,
        "incident.bad_price": 1e12,
        "prices.initial_usd": {"SOL-USD": 1e-6, "ETH-USD": 1e12},
        "network.crashes": [{"node": 1, "at_s": MAX_VIRTUAL_S}],
    })
    assert report.ok, report.failed_checks


# ---------------------------------------------------------------- files that are no scenario


@pytest.mark.parametrize("make, expected", [
    (lambda t: "/dev/zero", "/dev/zero: cannot read: not a regular file"),
    (lambda t: (os.mkfifo(t / "pipe"), t / "pipe")[1], "pipe: cannot read: not a regular file"),
    (lambda t: ((t / "big.toml").write_bytes(b"#" * 1_000_001), t / "big.toml")[1], "larger than 1000 kB"),
    (lambda t: ((t / "deep.toml").write_text('name = "x"\nv = ' + "[" * 3000 + "]" * 3000), t / "deep.toml")[1],
     "deep.toml: nested more than 16"),
    (lambda t: ((t / "d.toml").write_text('name = "x"\n[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q]\n'), t / "d.toml")[1],
     "d.toml: nested more than 16"),
], ids=["device", "named pipe", "too large", "nested arrays", "nested tables"])
def test_a_file_that_is_no_scenario_is_one_line_at_once(tmp_path, make, expected):
    from click.testing import CliRunner

    from scenarios.cli import main

    result = CliRunner().invoke(main, ["show", str(make(tmp_path))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert expected in line


@pytest.mark.parametrize("call, expected", [
    (lambda: scenarios.load("paradex-2026", overrides="abc"), "overrides: \"'abc'\" is not a mapping"),
    (lambda: scenarios.load("paradex-2026", small="yes"), "small:"),
    (lambda: scenarios.run("paradex-2026", data_dir=5), "data_dir: \"5\" is not a path"),
    (lambda: scenarios.run("paradex-2026", events=b"x.jsonl"), "events:"),
], ids=["overrides a string", "small a string", "data_dir a number", "events bytes"])
def test_api_arguments_of_the_wrong_type_are_one_scenario_error(call, expected):
    with pytest.raises(ScenarioError, match=expected):
        call()
