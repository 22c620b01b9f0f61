"""The emergency upgrade under attack, on the real chain: Byzantine validators that lie about
their views, choose the views of a plan, or re-sign their votes never get a bad target
certified, and every honest validator that is up lands on the certificate's root."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from scenarios.loader import load_scenario
from scenarios.report import build_report, is_report_ok
from scenarios.runner import run_scenario_once

SMALL = """
[chain]
accounts = 120
heights = 22
[incident]
start_height = 8
duration_blocks = 3
[detection]
delay_blocks = 2
[response]
pause_s = 60.0
cancel_only_s = 3.0
post_only_s = 3.0
[workload]
traders = 40
keepers = 2
profit_takers = 2
trade_probability = 0.05
max_liquidations_per_keeper = 20
"""


def run_with(tmp_path, name: str, overrides: dict):
    data = tomllib.loads(SMALL)
    for table, values in overrides.items():
        data.setdefault(table, {}).update(values)
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nextends = "paradex-2026"\n' + tomli_w.dumps(data))
    run, virtual_s, wall_s = run_scenario_once(load_scenario(str(path)))
    return run, build_report(run, virtual_s, wall_s)


def failed(report):
    return {name: check["detail"] for name, check in report["checks"].items() if not check["ok"]}


def assert_recovered_soundly(run, report):
    assert is_report_ok(report), failed(report)
    plan = run.plan
    assert plan is not None
    first_bad = min(n.view.first_bad_height for n in run.honest if n.view.first_bad_height)
    assert plan.target_height < first_bad, "a target at or after the first corrupted height was certified"
    for node in run.honest:
        assert node.view.restored_root == plan.expected_root, f"validator {node.index} is off the certificate"


@pytest.mark.parametrize("behaviour", ["lie-target", "forge-views", "duplicate-votes"])
def test_a_byzantine_minority_attacking_the_protocol_gets_nothing_certified_but_the_honest_plan(tmp_path, behaviour):
    # Validators 0 and 1 of 7 (f = 2): validator 0 proposes first at the plan height.
    run, report = run_with(tmp_path, behaviour, {"validators": {
        "count": 7, "byzantine": [{"index": 0, "behaviour": behaviour}, {"index": 1, "behaviour": behaviour}]}})
    assert_recovered_soundly(run, report)
    if behaviour == "forge-views":
        conflicts = run.emergency.view_conflicts
        assert conflicts and {c.view.validator for c in conflicts} == {0, 1}
        assert set(report["forensics"]["culprits"]) >= {0, 1}


def test_a_validator_down_through_the_glitch_syncs_certified_blocks_and_re_derives_the_corruption(tmp_path):
    # Down from before the glitch until the vote: it comes back behind, asks a peer for the
    # blocks it missed, checks each commit certificate, finds the glitch on its own chain,
    # and only then signs the plan.
    run, report = run_with(tmp_path, "laggard", {"network": {"crashes": [
        {"node": 3, "at_s": 4.0, "restart_s": 40.0}]}, "response": {"pause_s": 30.0}})
    assert_recovered_soundly(run, report)
    laggard = run.nodes[3]
    assert laggard.view.first_bad_height == run.first_bad_height
    assert laggard.view.plan_certificate is not None
