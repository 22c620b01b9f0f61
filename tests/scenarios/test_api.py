"""The Python API: `scenarios.load` and `scenarios.run` as a third party uses them, the typed
report and its JSON Schema, `--set` and `--small` on the command line, and the README's
worked property test (run from the README itself)."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from pydantic import ValidationError

import scenarios
from scenarios import errors
from scenarios.api import DataDirInUseError
from scenarios.loader import compute_small_overrides, get_bundled_names, load_scenario
from scenarios.report import compute_digest
from scenarios.report_model import Report, report_json_schema
from scenarios.strategies import scenario_dicts

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = [sys.executable, "-m", "scenarios.cli"]


@pytest.fixture(scope="module")
def small_report():
    """One small paradex run through the API, with one override."""
    return scenarios.run("paradex-2026", small=True, overrides={"detection.delay_blocks": 1})


def without_wall_clock(data: dict) -> dict:
    return dict(data, metrics={k: v for k, v in data["metrics"].items() if k != "wall_s"})


# ---------------------------------------------------------------- run: the same report as the command


def test_run_gives_the_report_and_digest_of_l2sim_run_json(small_report):
    out = subprocess.run(CLI + ["run", "paradex-2026", "--small", "--set", "detection.delay_blocks=1", "--json", "-",
                                "--quiet"], capture_output=True, text=True, timeout=600, check=True).stdout
    from_cli = json.loads(out)
    assert isinstance(small_report, Report) and small_report.ok
    assert small_report.digest == from_cli["digest"]
    assert without_wall_clock(small_report.to_dict()) == without_wall_clock(from_cli)
    assert small_report.incident.halt_height == small_report.incident.first_bad_height + 1  # the override


def test_the_report_is_typed_and_frozen(small_report):
    assert small_report.restore is not None
    assert small_report.restore.expected_state_root.startswith("0x")
    assert all(isinstance(check.ok, bool) for check in small_report.checks.values())
    with pytest.raises(ValidationError):
        small_report.seed = 1  # type: ignore[misc]
    assert small_report.scenario == "small-paradex-2026"


def test_to_json_round_trips_every_key_and_keeps_the_digest(small_report):
    data = json.loads(small_report.to_json())
    assert Report.model_validate(data).to_dict() == data
    assert compute_digest(data) == small_report.digest


def test_fields_added_by_a_newer_l2sim_are_kept(small_report):
    data = small_report.to_dict()
    data["new_section"] = {"anything": [1, 2.5, None]}
    data["chain"] = dict(data["chain"], new_key="x")
    data["checks"] = {name: dict(check, status="held" if check["ok"] else "failed", extra=0)
                      for name, check in data["checks"].items()}
    data["metrics"] = dict(data["metrics"], virtual_s=0)  # an int stays an int
    data["forensics"] = {"culprits": [1], "evidence": [{"validator": 1, "kind": "a-new-kind", "height": 3}]}
    report = Report.model_validate(data)
    assert report.to_dict() == data
    assert json.loads(report.to_json()) == data


def test_every_report_validates_against_the_published_schema(small_report):
    schema = report_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(small_report.to_dict(), schema)
    cli = subprocess.run(CLI + ["schema", "--report"], capture_output=True, text=True, check=True).stdout
    assert json.loads(cli) == schema


@pytest.mark.parametrize("plant", [
    lambda d: d.update(seed="1"),  # a string where an integer belongs
    lambda d: d.pop("checks"),  # a promised key missing
    lambda d: d["chain"].update(final_state_root="abc"),  # a root that is not 0x-hex
    lambda d: d["incident"].update(liquidations=1.5),
])
def test_a_report_that_breaks_the_contract_fails_both_schema_and_model(small_report, plant):
    data = small_report.to_dict()
    plant(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, report_json_schema())
    with pytest.raises(ValidationError):
        Report.model_validate(data)


def test_a_check_whose_ok_contradicts_its_status_is_rejected(small_report):
    data = small_report.to_dict()
    name = next(iter(data["checks"]))
    data["checks"][name] = dict(data["checks"][name], ok=True, status="failed")
    with pytest.raises(ValidationError, match="contradicts"):
        Report.model_validate(data)


def test_a_failed_run_says_how_to_reproduce_it(tmp_path):
    path = tmp_path / "two-faulty.toml"
    path.write_text('name = "two-faulty"\nextends = "paradex-2026"\n')
    faulty = [{"index": 0, "behaviour": "crash"}, {"index": 1, "behaviour": "wrong-root"}]
    report = scenarios.run(str(path), seed=3, small=True, overrides={"validators.byzantine": faulty})
    assert not report.ok and report.failed_checks
    assert report.reproduce == (f"l2sim run {path} --seed 3 --small --set "
                                "'validators.byzantine=[{ index = 0, behaviour = \"crash\" }, "
                                "{ index = 1, behaviour = \"wrong-root\" }]'")


def test_run_with_a_data_dir_saves_a_run_that_inspect_reads_and_refuses_a_used_one(tmp_path):
    report = scenarios.run({"name": "tiny", "chain": {"heights": 12, "accounts": 30},
                            "incident": {"start_height": 5}, "workload": {"traders": 10}}, data_dir=tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == report.to_dict()
    out = subprocess.run(CLI + ["inspect", str(tmp_path), "--height", str(report.chain.final_height), "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["state_root"] == report.chain.final_state_root
    with pytest.raises(DataDirInUseError):
        scenarios.run("paradex-2026", small=True, data_dir=tmp_path)


@pytest.mark.parametrize("seed", [-1, 2**64, "3", True])
def test_a_bad_seed_is_one_scenario_error_line(seed):
    with pytest.raises(errors.OutOfRangeError, match="^seed: "):
        scenarios.run("paradex-2026", small=True, seed=seed)


def test_the_event_log_through_the_api_never_changes_the_report(tmp_path):
    with_log = scenarios.run("paradex-2026", small=True, events=tmp_path / "events.jsonl")
    without = scenarios.run("paradex-2026", small=True)
    assert with_log.digest == without.digest
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["kind"] for line in lines)


# ---------------------------------------------------------------- load: names, paths, dicts, overrides


def test_load_takes_a_name_a_path_a_dict_and_a_scenario_alike(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\nextends = "paradex-2026"\n[detection]\ndelay_blocks = 1\n')
    by_path = scenarios.load(path)
    by_dict = scenarios.load({"name": "x", "extends": "paradex-2026", "detection": {"delay_blocks": 1}})
    by_override = scenarios.load("paradex-2026", overrides={"name": "x", "detection.delay_blocks": 1})
    assert by_path == by_dict == by_override
    assert scenarios.load(by_path) is by_path
    assert scenarios.load(by_path, small=True) == scenarios.load(path, small=True)


@pytest.mark.parametrize("source, overrides, message", [
    ({"name": "x", "chain": {"heights": "3"}}, None, '<dict>: chain.heights: "3" is not an integer'),
    ({"chain": {}}, None, "<dict>: name: required key is missing"),
    ("paradex-2026", {"detection.delay_blocks": -1}, "overrides: detection.delay_blocks: -1 must be at least 0"),
    ("paradex-2026", {"detection.delay": 2}, "overrides: detection.delay: unknown key"),
    ("paradex-2026", {"chain": {}, "chain.heights": 3}, "overrides: chain.heights: is inside chain"),
    ("paradex-2026", {"extends": "x"}, "overrides: extends: cannot be overridden"),
    ("paradex-2026", {"a..b": 1}, 'overrides: "a..b" is not a dotted key'),
    ("paradex-2026", {"incident.start_height": 180}, "overrides: incident.start_height: 180 is not below"),
])
def test_bad_input_is_one_line_naming_where_and_the_key(source, overrides, message):
    with pytest.raises(errors.ScenarioError) as caught:
        scenarios.load(source, overrides=overrides)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@settings(deadline=None)
@given(scenario_dicts(broken=True))
def test_any_broken_dict_loads_or_raises_one_scenario_error_line(data):
    try:
        scenario = scenarios.load(data)
    except errors.ScenarioError as e:
        assert "\n" not in str(e) and e.file is not None
    else:
        assert isinstance(scenario, scenarios.Scenario)


# ---------------------------------------------------------------- the small preset


@pytest.mark.parametrize("name", get_bundled_names())
def test_small_keeps_faults_and_response_and_only_shrinks(name):
    full, small = load_scenario(name), load_scenario(name, small=True)
    assert small.name == f"small-{name}"
    timed = {"cancel_only_s", "post_only_s"}
    assert small.validators == full.validators
    assert small.response.model_dump(exclude=timed) == full.response.model_dump(exclude=timed)
    # What follows the restart shrinks with the chain, but a phase the full scenario has stays.
    for key in timed:
        assert (getattr(small.response, key) > 0) == (getattr(full.response, key) > 0)
        assert getattr(small.response, key) <= getattr(full.response, key)
    stale_small, stale_full = small.oracle.stale_after_restart_blocks, full.oracle.stale_after_restart_blocks
    assert (stale_small > 0) == (stale_full > 0) and stale_small <= stale_full
    assert len(small.network.partitions) == len(full.network.partitions)
    assert small.network.drop_rate == full.network.drop_rate
    assert small.chain.accounts <= min(full.chain.accounts, 80) and small.chain.heights <= full.chain.heights
    assert small.incident.market == full.incident.market and small.incident.bad_price == full.incident.bad_price


def test_small_moves_faults_with_the_incident():
    """A partition during the pause stays during the pause; a crash before the glitch stays before it."""
    full = scenarios.load("paradex-2026", overrides={
        "network.partitions": [{"start_s": 600.0, "end_s": 700.0, "groups": [[0], [1, 2, 3]]}],
        "network.crashes": [{"node": 1, "at_s": 9.0, "restart_s": 50.0}],
        "detection.operator_halt_height": 50,
    })
    small = scenarios.load(full, small=True)
    moved = (full.incident.start_height - small.incident.start_height) * full.chain.block_time_s
    partition, crash = small.network.partitions[0], small.network.crashes[0]
    assert (partition.start_s, partition.end_s) == (600.0 - moved, 700.0 - moved)
    assert crash.at_s < small.incident.start_height * small.chain.block_time_s < crash.restart_s
    assert crash.restart_s == 50.0 - moved
    assert small.detection.operator_halt_height - small.incident.start_height == 50 - full.incident.start_height


def test_overrides_win_over_the_small_preset():
    small = scenarios.load("paradex-2026", small=True, overrides={"chain.accounts": 150, "incident.start_height": 12})
    assert (small.chain.accounts, small.incident.start_height) == (150, 12)
    assert small.chain.heights == scenarios.load("paradex-2026", small=True).chain.heights  # the preset's own


def test_a_scenario_already_small_is_left_as_it_is_but_renamed():
    tiny = scenarios.load({"name": "tiny", "chain": {"heights": 12, "accounts": 30},
                           "incident": {"start_height": 5, "duration_blocks": 3},
                           "workload": {"traders": 10, "trade_probability": 0.3}})
    assert compute_small_overrides(tiny) == {"name": "small-tiny"}


# ---------------------------------------------------------------- the command line: --set, --small


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120)


def test_show_set_applies_toml_typed_values():
    result = _cli("show", "paradex-2026", "--set", "detection.delay_blocks=7", "--set", "response.mode=selective-restore",
                  "--set", 'validators.byzantine=[{index = 1, behaviour = "crash"}]')
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    assert shown["detection"]["delay_blocks"] == 7 and shown["response"]["mode"] == "selective-restore"
    assert shown["validators"]["byzantine"] == [{"index": 1, "behaviour": "crash"}]


@pytest.mark.parametrize("option, message", [
    ("detection.delay_blocks=-1", "l2sim: --set: detection.delay_blocks: -1 must be at least 0"),
    ("detection.delay_blocks='2'", 'l2sim: --set: detection.delay_blocks: "2" is not an integer'),
    ("chain.colour=1", "l2sim: --set: chain.colour: unknown key"),
    ("no-equals-sign", 'l2sim: --set: "no-equals-sign" is not KEY=VALUE'),
])
def test_a_bad_set_is_one_line_naming_the_key_and_exit_2(option, message):
    for command in ("show", "run"):
        result = _cli(command, "paradex-2026", "--set", option)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_setting_one_key_twice_is_refused():
    result = _cli("show", "paradex-2026", "--set", "seed=1", "--set", "seed=2")
    assert result.returncode == 2 and "--set: seed: set twice" in result.stderr


def test_show_small_says_what_it_changed_and_prints_the_small_scenario():
    result = _cli("show", "paradex-2026", "--small")
    assert result.returncode == 0, result.stderr
    comments = [line for line in result.stdout.splitlines() if line.startswith("# --small: ")]
    assert "# --small: chain.accounts = 80 (was 2500)" in comments
    assert "# --small: incident.start_height = 10 (was 45)" in comments
    assert len(comments) == len(compute_small_overrides(load_scenario("paradex-2026")))
    assert scenarios.load(tomllib.loads(result.stdout)) == load_scenario("paradex-2026", small=True)


# ---------------------------------------------------------------- the README's worked example


def _readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- property-test -->\s*```python\n(.*?)```\s*<!-- /property-test -->", text, re.S)
    assert match, "README.md has a worked property test between <!-- property-test --> markers"
    return match.group(1)


def test_the_readme_property_test_uses_only_the_public_api():
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", _readme_example(), re.M)
    assert set(imports) <= {"hypothesis", "scenarios", "scenarios.strategies"}, imports


def test_the_readme_property_test_runs_and_passes():
    namespace: dict = {}
    exec(compile(_readme_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the README example defines a test"
    for test in tests:
        test()


def test_a_run_without_a_halt_reports_no_restore_and_still_round_trips():
    report = scenarios.run("paradex-2026", small=True, overrides={"detection.deviation_bps": 1_000_000,
                                                                  "incident.bad_price": 95_000.0})
    assert report.restore is None and report.incident.halt_height is None
    assert Report.model_validate(report.to_dict()).to_dict() == report.to_dict()
    jsonschema.validate(report.to_dict(), report_json_schema())
    assert compute_digest(report.to_dict()) == report.digest


@settings(deadline=None)
@given(scenario_dicts(runnable=False))
def test_the_small_preset_of_any_valid_scenario_is_valid_and_no_bigger(data):
    full = scenarios.load(data)
    small = scenarios.load(data, small=True)
    assert small.chain.heights <= full.chain.heights and small.chain.accounts <= full.chain.accounts
    assert small.validators == full.validators and small.response == full.response
    assert len(small.network.crashes) == len(full.network.crashes)
    assert small.incident.start_height <= min(full.incident.start_height, 10)
    if full.workload.trade_probability == 0:
        assert small.workload.trade_probability == 0


def test_the_report_schema_requires_the_promised_keys_and_allows_new_ones():
    """The JSON report's contract: these keys are always there; a newer l2sim may add more."""
    schema = report_json_schema()
    assert set(schema["required"]) >= {"schema_version", "scenario", "seed", "digest", "validators", "chain",
                                       "incident", "restore", "reconciliation", "compensation", "forensics",
                                       "checks", "metrics"}
    assert schema["additionalProperties"] is True
    check = schema["$defs"]["Check"]
    assert set(check["required"]) == {"ok", "detail"} and "status" in check["properties"]
    assert set(schema["$defs"]["Metrics"]["required"]) >= {"blocks", "txs", "messages", "virtual_s", "wall_s"}
