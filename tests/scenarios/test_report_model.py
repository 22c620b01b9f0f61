"""The typed report all the way down: every object of a full report is read as a declared
model field (nothing left in `model_extra`, no untyped dict of structure), the JSON Schema
comes from the same models and accepts the report, and the attributes the contract names
read as attributes."""

from __future__ import annotations

import json
import shlex
import subprocess
import tomllib

import jsonschema
import pytest
from pydantic import BaseModel, RootModel

import scenarios
from scenarios.report_model import Report, report_json_schema

# Between them these runs fill every section: the reopening and its compensation (paradex),
# a rejected plan and a forged view convicted against a certified header (lying-minority),
# conflicting votes (equivocation-third), withdrawals final on L1 (final-withdrawals),
# selective-restore surgery, a replayed window, and stale feeds after the restart.
FULL = ("paradex-2026", "lying-minority", "equivocation-third", "final-withdrawals", "dao-selective-restore",
        "replay-after-rollback", "stale-oracle-restart")


@pytest.fixture(scope="module", params=FULL)
def report(request) -> Report:
    return scenarios.run(request.param, small=True)


def find_untyped(value: object, path: str = "report") -> list[str]:
    """Paths below `value` where the JSON's structure is not a declared model field: a key a
    model does not declare, or a dict or list holding objects or lists without a model."""
    found: list[str] = []
    if isinstance(value, RootModel):
        return find_untyped(value.root, path) if not isinstance(value.root, dict) else [
            p for k, v in value.root.items() for p in _scalar_or_model(v, f"{path}[{k!r}]")]
    if isinstance(value, BaseModel):
        found += [f"{path}.{key} (undeclared)" for key in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += find_untyped(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _scalar_or_model(item, f"{path}[{key!r}]")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                found.append(f"{path}[{i}] (untyped {type(item).__name__})")
            else:
                found += find_untyped(item, f"{path}[{i}]")
    return found


def _scalar_or_model(item: object, path: str) -> list[str]:
    if isinstance(item, (dict, list)):
        return [f"{path} (untyped {type(item).__name__})"]
    if isinstance(item, tuple):
        return [p for i, x in enumerate(item) for p in _scalar_or_model(x, f"{path}[{i}]")]
    return find_untyped(item, path)


def test_every_object_of_a_full_report_is_a_declared_model_field(report):
    assert find_untyped(report) == []
    assert Report.model_validate(report.to_dict()).to_dict() == report.to_dict()


def test_the_json_schema_of_the_same_models_accepts_the_report(report):
    jsonschema.validate(report.to_dict(), report_json_schema())


def test_the_walk_finds_what_a_model_does_not_declare():
    """The check above is worth something only if it sees an untyped field: plant one."""
    data = scenarios.run("paradex-2026", small=True).to_dict()
    data["reopening"]["phases"][0]["colour"] = {"r": 1}
    data["series"][0]["extra"] = [{"x": 1}]
    found = find_untyped(Report.model_validate(data))
    assert any("reopening.phases[0].colour" in f for f in found)
    assert any("series[0].extra" in f for f in found)


def test_the_contracts_attributes_read_as_attributes():
    report = scenarios.run("paradex-2026", small=True)
    assert report.reopening.phases[0].mode == "cancel-only"
    assert report.reopening.phases[-1].mode == "open" and report.reopening.phases[-1].end_height is None
    assert report.restore.returned.policy == "restore-returned"
    assert report.restore.returned.total == sum(e.amount for e in report.restore.returned.entries)
    entry = report.compensation.entries[0]
    assert entry.payer == "liquidator-vault" and entry.amount == entry.counterfactual_equity - entry.restored_equity
    assert report.restart.fork_id == report.chain.fork_id
    assert set(report.series[0].onchain) == {"BTC-USD", "ETH-USD", "SOL-USD", "PAXG-USD"}
    assert report.restore.restored_roots["0"] == report.restore.expected_state_root
    assert dict(report.restore.restored_roots.items()) == report.to_dict()["restore"]["restored_roots"]


# ---------------------------------------------------------------- a failure that replays, from any source

TWO_DOWN = {"name": "drawn", "extends": "paradex-2026",
            "validators": {"byzantine": [{"index": 0, "behaviour": "crash"}, {"index": 1, "behaviour": "crash"}]}}


@pytest.mark.parametrize("source", ["dict", "Scenario"])
def test_a_failing_scenario_given_as_data_prints_a_command_that_replays_it(source):
    """Two of four validators down for good: no certificate. The command the report names
    runs as printed and gives the same digest, whatever the scenario was given as."""
    given = TWO_DOWN if source == "dict" else scenarios.load(TWO_DOWN)
    report = scenarios.run(given, small=True)
    assert not report.ok and report.reproduce is not None
    replayed = subprocess.run(shlex.split(report.reproduce) + ["--json", "-", "--quiet"], capture_output=True,
                              text=True, timeout=600)
    assert replayed.returncode == 1, replayed.stderr
    assert json.loads(replayed.stdout)["digest"] == report.digest


def test_the_report_carries_the_scenario_it_ran_and_saves_it(tmp_path):
    report = scenarios.run(TWO_DOWN, small=True)
    assert scenarios.load(tomllib.loads(report.scenario_toml())) == scenarios.load(TWO_DOWN, small=True)
    command = report.save_scenario(tmp_path / "failing.toml")
    assert command == f"l2sim run {tmp_path / 'failing.toml'} --seed {report.seed}"
    with pytest.raises(ValueError, match="read from JSON"):
        Report.model_validate(report.to_dict()).scenario_toml()
