"""The scenario schema: defaults, bounds, cross-field rules, and the JSON Schema it publishes."""

import pytest
import tomli_w
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consensus.messages import ConsensusError
from consensus.sim import SimConfig, build_network, create_simulation
from consensus.tendermint import TimeoutConfig
from scenarios.errors import ScenarioError
from scenarios.loader import load_scenario_table, merge_tables, parse_scenario
from scenarios.report import build_report, is_report_ok
from scenarios.runner import Recorder, WorldMempool, _make_chain_kit, _sim_config, prepare_run, run_scenario_once
from scenarios.schema import (
    BEHAVIOURS,
    GEO_CLUSTERS,
    MAX_VALIDATORS,
    RANDOM_REGULAR_DEGREE,
    TOPOLOGIES,
    Scenario,
    compute_topology_error,
    format_path,
    scenario_json_schema,
)
from scenarios.strategies import fault_overrides, scenario_dicts

# The keys DESIGN.md promises users ("Scenario file keys that are stable").
STABLE_KEYS = [
    ("name",),
    ("seed",),
    ("description",),
    ("extends",),
    ("chain", "block_time_s"),
    ("validators", "count"),
    ("validators", "byzantine"),
    ("network", "latency_ms"),
    ("network", "drop_rate"),
    ("network", "partitions"),
    ("incident", "market"),
    ("incident", "start_height"),
    ("incident", "duration_blocks"),
    ("incident", "bad_price"),
    ("response", "mode"),
    ("response", "pause_s"),
]


@settings(deadline=None)
@given(scenario_dicts(runnable=False))
def test_drawn_scenarios_validate_and_survive_a_dump(data):
    scenario = Scenario.model_validate(data)
    assert Scenario.model_validate(scenario.model_dump(mode="json")) == scenario


@settings(deadline=None)
@given(st.data())
def test_faults_within_a_third_fit_any_validator_count(data):
    base = data.draw(scenario_dicts(runnable=False))
    count = base["validators"]["count"]
    faults = data.draw(fault_overrides(count, horizon_s=600.0))
    scenario = load_scenario_table(base, overrides=faults)
    assert 3 * len(scenario.validators.byzantine) < count


def test_only_name_is_required_and_gives_a_small_incident():
    scenario = Scenario.model_validate({"name": "tiny"})
    assert scenario.validators.count == 4
    assert scenario.validators.byzantine == ()
    assert scenario.chain.accounts <= 200
    assert scenario.incident.start_height < scenario.chain.heights
    assert scenario.incident.bad_price == 0.0
    assert scenario.response.mode == "full-rollback"


def test_behaviours_cover_the_design():
    assert {"crash", "equivocate", "withhold", "amnesia", "wrong-root"} <= set(BEHAVIOURS)


def test_json_schema_publishes_every_stable_key_and_requires_only_name():
    schema = scenario_json_schema()
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    for path in STABLE_KEYS:
        properties = schema["properties"]
        for part in path[:-1]:
            ref = properties[part]
            ref = ref.get("$ref") or ref["allOf"][0]["$ref"]
            properties = schema["$defs"][ref.rsplit("/", 1)[1]]["properties"]
        assert path[-1] in properties, format_path(path)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "seed": "1"},
        {"name": "x", "seed": True},
        {"name": "x", "chain": {"accounts": 1.0}},
        {"name": "x", "chain": {"block_time_s": "1"}},
        {"name": "x", "network": {"latency_ms": float("nan")}},
    ],
)
def test_scalars_are_strict(data):
    with pytest.raises(ValidationError):
        Scenario.model_validate(data)


def test_integers_are_accepted_where_numbers_belong():
    scenario = Scenario.model_validate({"name": "x", "response": {"pause_s": 60}})
    assert scenario.response.pause_s == 60.0
    assert isinstance(scenario.response.pause_s, float)


@pytest.mark.parametrize(
    "data, kind, path",
    [
        (
            {"validators": {"byzantine": [{"index": 4, "behaviour": "crash"}]}},
            "out_of_range",
            ("byzantine", 0, "index"),
        ),
        (
            {"validators": {"byzantine": [{"index": 1, "behaviour": "crash"}, {"index": 1, "behaviour": "amnesia"}]}},
            "inconsistent",
            ("byzantine", 1, "index"),
        ),
        ({"validators": {"power": [1, 1]}}, "inconsistent", ("power",)),
        (
            {"network": {"partitions": [{"start_s": 9, "end_s": 9, "groups": [[0]]}]}},
            "inconsistent",
            ("end_s",),
        ),
        (
            {"network": {"partitions": [{"start_s": 0, "end_s": 9, "groups": [[0, 1], [1]]}]}},
            "inconsistent",
            ("groups", 1, 0),
        ),
        (
            {"network": {"partitions": [{"start_s": 0, "end_s": 9, "groups": [[0, 4]]}]}},
            "out_of_range",
            ("network", "partitions", 0, "groups", 0, 1),
        ),
        ({"incident": {"start_height": 120}}, "out_of_range", ("incident", "start_height")),
        ({"detection": {"operator_halt_height": 39}}, "out_of_range", ("detection", "operator_halt_height")),
        ({"workload": {"traders": 99}}, "inconsistent", ("workload", "traders")),
        (
            {"validators": {"count": 2, "byzantine": [{"index": 0, "behaviour": "crash"},
                                                      {"index": 1, "behaviour": "withhold"}]}},
            "inconsistent",
            ("byzantine",),
        ),
        ({"validators": {"count": 5, "topology": "random-regular"}}, "inconsistent", ("topology",)),
        ({"validators": {"count": 2, "topology": "geo"}}, "inconsistent", ("topology",)),
        ({"network": {"drop_rate": 1.0}}, "out_of_range", ("network", "drop_rate")),
        ({"network": {"duplicate_rate": 1.0}}, "out_of_range", ("network", "duplicate_rate")),
        (
            {"chain": {"heights": 26}, "incident": {"start_height": 22}, "detection": {"delay_blocks": 5}},
            "out_of_range",
            ("detection", "delay_blocks"),
        ),
    ],
)
def test_cross_field_errors_carry_the_path_of_the_bad_value(data, kind, path):
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate({"name": "x", **data})
    (error,) = info.value.errors()
    assert error["type"] == kind
    assert error["ctx"].get("path", error["loc"]) == path


@pytest.mark.parametrize(
    "data",
    [
        {"validators": {"count": 1}},
        {"validators": {"count": MAX_VALIDATORS}},
        {"validators": {"power": [1, 1, 1, 7]}},
        {"validators": {"count": 4, "topology": "random-regular"}},
        {"validators": {"count": 6, "topology": "random-regular"}},
        {"validators": {"count": 3, "topology": "geo"}},
        {"validators": {"count": 2, "byzantine": [{"index": 1, "behaviour": "crash"}]}},
        {"network": {"drop_rate": 0.999, "duplicate_rate": 0.999}},
        {"chain": {"heights": 26}, "incident": {"start_height": 22}, "detection": {"delay_blocks": 4}},
        {"chain": {"heights": 26}, "incident": {"start_height": 22},
         "detection": {"delay_blocks": 9, "operator_halt_height": 25}},
    ],
)
def test_the_edges_just_inside_each_rule_are_accepted(data):
    Scenario.model_validate({"name": "x", **data})


def test_the_validator_maximum_is_enforced():
    with pytest.raises(ValidationError):
        Scenario.model_validate({"name": "x", "validators": {"count": MAX_VALIDATORS + 1}})


def test_the_topology_rule_matches_the_network_the_runner_builds():
    for topology in TOPOLOGIES:
        for count in range(1, 12):
            config = SimConfig(topology=topology)
            assert (config.degree, config.cluster_count) == (RANDOM_REGULAR_DEGREE, GEO_CLUSTERS)
            try:
                build_network(config, count)
                built = True
            except ConsensusError:
                built = False
            assert built == (compute_topology_error(topology, count) is None), (topology, count)


@st.composite
def edgy_scenario_dicts(draw: st.DrawFn) -> dict:
    """A drawn scenario with some values pushed to the edges the schema must accept or refuse."""
    data = draw(scenario_dicts())
    count = draw(st.sampled_from([data["validators"]["count"], 1, 2, 3, 5]))
    edges: dict = {"validators": {"count": count, "topology": draw(st.sampled_from(TOPOLOGIES))}}
    if draw(st.booleans()):
        edges["validators"]["byzantine"] = [{"index": i, "behaviour": draw(st.sampled_from(BEHAVIOURS))}
                                            for i in range(draw(st.integers(0, count)))]
    if "power" in data["validators"] or draw(st.booleans()):
        edges["validators"]["power"] = draw(st.lists(st.integers(1, 2**62), min_size=count, max_size=count))
    edges["network"] = {name: draw(st.sampled_from([0.0, 0.5, 0.999, 1.0])) for name in ("drop_rate", "duplicate_rate")}
    edges["network"]["partitions"] = []  # drawn for the original count
    edges["detection"] = {"delay_blocks": draw(st.integers(0, data["chain"]["heights"]))}
    return merge_tables(data, edges)


@settings(deadline=None, max_examples=15)
@given(scenario_dicts() | edgy_scenario_dicts())
# The inputs a tester found crashing `run` (issue 10, item 4), each pinned once.
@example({"name": "x", "validators": {"count": 1}})
@example({"name": "x", "validators": {"power": [1, 1, 1, 7]}})
@example({"name": "x", "validators": {"count": 2, "byzantine": [{"index": 0, "behaviour": "amnesia"},
                                                                {"index": 1, "behaviour": "crash"}]}})
@example({"name": "x", "network": {"drop_rate": 1.0}})
@example({"name": "x", "network": {"duplicate_rate": 1.0}})
@example({"name": "x", "validators": {"count": 5, "topology": "random-regular"}})
@example({"name": "x", "validators": {"count": 2, "topology": "geo"}})
def test_every_input_the_loader_accepts_sets_up_a_run(data):
    """The loader refuses with one line naming the file, or the runner's setup (genesis, keys,
    journals, the network, the first proposal) raises nothing."""
    try:
        scenario = parse_scenario(tomli_w.dumps(data), file="drawn.toml")
    except ScenarioError as error:
        assert str(error).startswith("drawn.toml") and "\n" not in str(error)
        return
    setup = prepare_run(scenario)
    config = _sim_config(setup, fork_id=0, start_height=1, start_s=0.0, timeouts=TimeoutConfig(), label="chain")
    create_simulation(config, setup.validator_set,
                      _make_chain_kit(setup, Recorder(), WorldMempool(setup.world, 0), [], "chain", 0.0))


SMALL_RUN = {
    "name": "small",
    "chain": {"accounts": 200, "heights": 26},
    "incident": {"start_height": 10, "duration_blocks": 4},
    "detection": {"delay_blocks": 2},
    "workload": {"traders": 60, "keepers": 2, "profit_takers": 4, "trade_probability": 0.05},
}


@pytest.mark.parametrize(
    "validators",
    [{"count": 1}, {"power": [1, 1, 1, 7]}],  # one validator holds more than 2/3 of the power
    ids=["one validator", "one validator over 2/3"],
)
def test_a_validator_with_a_quorum_alone_runs_the_whole_recovery(validators):
    scenario = Scenario.model_validate(merge_tables(SMALL_RUN, {"validators": validators}))
    run, virtual_s, wall_s = run_scenario_once(scenario)
    report = build_report(run, virtual_s, wall_s)
    assert report["restore"] is not None
    assert is_report_ok(report), {name: c for name, c in report["checks"].items() if not c["ok"]}
