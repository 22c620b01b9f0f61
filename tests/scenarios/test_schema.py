"""The scenario schema: defaults, bounds, cross-field rules, and the JSON Schema it publishes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scenarios.loader import load_scenario_table
from scenarios.schema import BEHAVIOURS, Scenario, format_path, scenario_json_schema
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
    ],
)
def test_cross_field_errors_carry_the_path_of_the_bad_value(data, kind, path):
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate({"name": "x", **data})
    (error,) = info.value.errors()
    assert error["type"] == kind
    assert error["ctx"]["path"] == path
