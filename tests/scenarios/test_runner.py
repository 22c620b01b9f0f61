"""The whole run, end to end: every bundled scenario (scaled down) holds all its checks, the
restore does what the certificate says, old transactions cannot be replayed, and the same
seed gives the same digest in any process."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chain.diff import diff_roots
from chain.execution import build_block
from chain.state import get_balance
from scenarios.loader import get_bundled_names, load_scenario
from scenarios.report import build_report, is_report_ok
from scenarios.report_model import Report, report_json_schema
from scenarios.runner import apply_certified_plan, run_scenario_once
from scenarios.strategies import fault_overrides

REPORT_SCHEMA = report_json_schema()


def run_small(name="paradex-2026", *, memo=True, overrides=None):
    """A bundled scenario run with the small preset (`l2sim run NAME --small`); every report it
    makes must validate against the published report schema and read back unchanged."""
    scenario = load_scenario(name, small=True, overrides=overrides)
    run, virtual_s, wall_s = run_scenario_once(scenario, memo=memo)
    report = build_report(run, virtual_s, wall_s)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert Report.model_validate(report).to_dict() == report
    return run, report


@pytest.fixture(scope="module")
def paradex_small():
    return run_small()


def failed(report):
    return {name: check["detail"] for name, check in report["checks"].items() if not check["ok"]}


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("name", get_bundled_names())
def test_every_bundled_scenario_holds_all_its_checks(name):
    run, report = run_small(name)
    assert is_report_ok(report), failed(report)
    assert report["schema_version"] == 1 and report["scenario"] == f"small-{name}"
    if name == "final-withdrawals":
        assert report["reconciliation"]["irreversible"], "withdrawals final inside the window are listed"


def test_full_rollback_lands_every_honest_validator_on_the_snapshot(paradex_small):
    run, report = paradex_small
    plan = run.plan
    assert plan is not None and plan.mode == "full-rollback"
    snapshot = run.snapshot_root_before_restore
    assert plan.expected_root == snapshot
    for node in run.honest:
        assert node.view.restored_root == plan.expected_root
        assert node.view.history.root_at(plan.target_height) == snapshot
    # every account's balance equals its snapshot balance: nothing differs at all
    assert diff_roots(run.store, snapshot, plan.expected_root).accounts == ()
    for address in run.world.market.all_addresses[:50]:
        assert get_balance(run.store, plan.expected_root, address) == get_balance(run.store, snapshot, address)
    assert report["restore"]["expected_state_root"] == report["restore"]["snapshot_state_root"]


def test_the_discarded_window_cannot_be_replayed(paradex_small):
    run, _ = paradex_small
    head = run.reference.view.history.head
    old = run.recovery.discarded_transactions
    assert old, "the incident window held transactions"
    built = build_block(run.store, head, old, proposer=head.proposer, timestamp=head.timestamp + 1,
                        fork_id=head.fork_id)
    assert built.block.transactions == () and len(built.rejected) == len(old)
    assert all("chain id" in r.reason for r in built.rejected)


def test_a_restored_root_that_misses_the_certificate_halts_the_validator(paradex_small):
    run, _ = paradex_small
    from dataclasses import replace

    node = run.honest[-1]
    lying = run.plan.copy(expected_root=b"\x11" * 32)
    node.view.plan_certificate = None
    apply_certified_plan(run.setup, node, lying, run.certificate)
    assert node.view.restore_error is not None and "not the one this validator computes" in node.view.restore_error


def test_compensation_is_paid_from_the_vault_in_the_first_block_after_restart(paradex_small):
    run, report = paradex_small
    entries = report["compensation"]["entries"]
    assert report["compensation"]["total"] == sum(e["amount"] for e in entries)
    first = run.reference.view.history.block_at(run.recovery.restart_height)
    ledger = run.recovery.restart_transactions
    assert tuple(tx.hash for tx in first.transactions[: len(ledger)]) == tuple(tx.hash for tx in ledger)
    assert report["checks"]["compensation_paid"]["ok"]


@settings(max_examples=3, deadline=None)
@given(start=st.integers(6, 12), duration=st.integers(1, 5), delay=st.integers(0, 3))
def test_any_incident_start_length_and_detection_delay_recovers(start, duration, delay):
    run, report = run_small(overrides={"incident.start_height": start, "incident.duration_blocks": duration,
                                       "detection.delay_blocks": delay})
    assert is_report_ok(report), failed(report)
    assert run.plan.target_height == start - 1
    assert run.halt_height == start + delay


def test_a_partition_during_the_vote_never_yields_two_certificates():
    partition = {"start_s": 5.0, "end_s": 700.0, "groups": [[0, 1], [2, 3]]}
    run, report = run_small(overrides={"response.pause_s": 600.0, "network.partitions": [partition]})
    plan_decisions = {d.block_hash for label, trace in run.traces if label == "plan" for d in trace.decisions}
    assert len(plan_decisions) == 1
    assert is_report_ok(report), failed(report)
    certified_at = next(e["time_s"] for e in report["timeline"] if e["event"] == "rollback certificate")
    assert certified_at >= 700.0  # not before the partition healed: neither side holds 2/3


# Twenty seconds each: CI runs the one with a Byzantine proposer (its honest validators take
# every path the honest run takes); `HYPOTHESIS_PROFILE=thorough` runs all three.
_THOROUGH_ONLY = pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE") != "thorough",
                                    reason="memo on/off for this behaviour: HYPOTHESIS_PROFILE=thorough")


@pytest.mark.parametrize("byzantine", [
    pytest.param([], marks=_THOROUGH_ONLY),
    [{"index": 0, "behaviour": "wrong-root"}],  # proposes blocks and plans whose roots are wrong
    pytest.param([{"index": 1, "behaviour": "duplicate-votes"}], marks=_THOROUGH_ONLY),  # re-signed copies
], ids=["honest", "wrong-root", "duplicate-votes"])
def test_the_memos_never_change_the_report_even_with_byzantine_validators(byzantine):
    overrides = {"validators.byzantine": byzantine}
    _, with_memo = run_small(memo=True, overrides=overrides)
    _, without = run_small(memo=False, overrides=overrides)
    assert with_memo["digest"] == without["digest"]
    assert json.dumps(dict(with_memo, metrics={}), sort_keys=True) == json.dumps(dict(without, metrics={}),
                                                                                  sort_keys=True)


def test_no_certificate_without_two_thirds_of_honest_power_exits_1(tmp_path):
    path = tmp_path / "two-faulty.toml"
    path.write_text('name = "two-faulty"\nextends = "paradex-2026"\n[validators]\n'
                    'byzantine = [{ index = 0, behaviour = "crash" }, { index = 1, behaviour = "wrong-root" }]\n')
    result = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(path), "--small", "--quiet",
                             "--seed", "3"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"reproduce with: l2sim run {path} --seed 3" in result.stdout + result.stderr


# ---------------------------------------------------------------- determinism and the command


def _digest_in_subprocess(name: str, hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", name, "--small", "--json", "-", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=600, check=True).stdout
    return json.loads(out)["digest"]


def test_same_seed_same_digest_across_processes_and_hash_seeds():
    assert _digest_in_subprocess("paradex-2026", "0") == _digest_in_subprocess("paradex-2026", "12345")


def test_data_dir_is_readable_by_inspect(tmp_path):
    data = tmp_path / "run"
    cli = [sys.executable, "-m", "scenarios.cli"]
    subprocess.run(cli + ["run", "paradex-2026", "--small", "--quiet", "--data-dir", str(data)], check=True,
                   timeout=600)
    report = json.loads((data / "report.json").read_text())
    account = report["incident"]["liquidated_accounts"][0]
    out = subprocess.run(cli + ["inspect", str(data), "--height", "3", "--account", account, "--json"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    state = json.loads(out)
    assert state["height"] == 3 and state["state_root"].startswith("0x") and state["balance"] > 0
    final = json.loads(subprocess.run(cli + ["inspect", str(data), "--height", str(report["chain"]["final_height"]),
                                             "--json"], capture_output=True, text=True, check=True).stdout)
    assert final["state_root"] == report["chain"]["final_state_root"]
    bad = subprocess.run(cli + ["inspect", str(data), "--height", "999999"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_the_installed_console_script_runs():
    result = subprocess.run(["l2sim", "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "paradex-2026" in result.stdout


# The size the pinned examples below were found at (the small preset is smaller).
EXAMPLES_SIZE = {"chain.accounts": 200, "chain.heights": 26, "workload.traders": 60}


@settings(max_examples=max(4, settings.default.max_examples // 5), deadline=None)  # ci: 4, thorough: 100
@given(faults=fault_overrides(4, horizon_s=120.0))
@example(faults={  # plan engines wandered on to later heights of the new fork and signed votes there
    "validators.byzantine": [],
    "network.drop_rate": 0.0576, "network.duplicate_rate": 0.0724,
    "network.crashes": [{"node": 0, "at_s": 34.1, "restart_s": 71.5}],
    "network.partitions": [{"start_s": 73.8, "end_s": 120.0, "groups": [[1], [0, 2, 3]]},
                           {"start_s": 100.3, "end_s": 116.5, "groups": [[0, 2, 3], [1]]}]})
@example(faults={  # a validator down through the plan vote restarted the new fork on the old head
    "validators.byzantine": [],
    "network.drop_rate": 0.0, "network.duplicate_rate": 0.0045,
    "network.crashes": [{"node": 0, "at_s": 20.08, "restart_s": 120.0},
                        {"node": 0, "at_s": 9.28, "restart_s": 60.0}],
    "network.partitions": [{"start_s": 107.9, "end_s": 113.4, "groups": [[0, 1, 2], [3]]}]})
def test_under_a_third_byzantine_and_any_network_faults_every_check_holds(faults):
    """Real chain, real re-execution and signatures: agreement, validity, liveness and the whole
    recovery hold for random lossy links, partitions that heal, and a Byzantine minority."""
    overrides = {**EXAMPLES_SIZE, "incident.duration_blocks": 3, "response.pause_s": 60.0, **faults}
    run, report = run_small(overrides=overrides)
    assert is_report_ok(report), (failed(report), faults)


@settings(max_examples=max(2, settings.default.max_examples // 10), deadline=None)  # ci: 2, thorough: 50
@given(faults=fault_overrides(7, horizon_s=120.0))
def test_two_byzantine_of_seven_mixing_behaviours_never_get_a_bad_target_certified(faults):
    """Seven validators, up to two Byzantine with any two behaviours (lie-target, forge-views,
    duplicate-votes, equivocate, ...), lossy links, partitions and crashes: the target is
    below every honest validator's first corrupted height, and every honest validator that
    applied the plan is on the certificate's root (the checks say so, or the run fails)."""
    overrides = {"validators.count": 7, "response.pause_s": 60.0, **faults}
    run, report = run_small(overrides=overrides)
    assert is_report_ok(report), (failed(report), faults)
    first_bad = min(n.view.first_bad_height for n in run.honest if n.view.first_bad_height)
    assert run.plan.target_height < first_bad
    assert all(n.view.restored_root == run.plan.expected_root for n in run.honest if n.view.restored_root)


def test_the_report_keeps_the_json_contract(paradex_small):
    """DESIGN.md, "JSON report": the keys users rely on, with their types and units."""
    _, report = paradex_small
    hex_string = lambda value: isinstance(value, str) and value.startswith("0x")  # noqa: E731
    assert report["schema_version"] == 1 and isinstance(report["seed"], int) and hex_string(report["digest"])
    validators = report["validators"]
    assert validators["count"] == 4 and validators["total_power"] == 4 and validators["byzantine"] == []
    assert isinstance(report["chain"]["final_height"], int) and hex_string(report["chain"]["final_state_root"])
    assert report["chain"]["fork_id"] == 1
    incident = report["incident"]
    assert incident["first_bad_height"] <= incident["detected_height"] <= incident["halt_height"]
    assert incident["liquidations"] >= len(incident["liquidated_accounts"]) > 0
    restore = report["restore"]
    assert restore["mode"] == "full-rollback" and isinstance(restore["target_height"], int)
    assert hex_string(restore["snapshot_state_root"]) and hex_string(restore["expected_state_root"])
    certificate = restore["certificate"]
    assert hex_string(certificate["plan_hash"]) and certificate["power"] >= 3
    assert certificate["signers"] == sorted(certificate["signers"])
    assert set(restore["restored_roots"]) == {"0", "1", "2", "3"}
    assert isinstance(report["reconciliation"]["irreversible"], list) and report["reconciliation"]["total"] >= 0
    compensation = report["compensation"]
    assert compensation["accounts"] == len(compensation["entries"])
    assert all(isinstance(e["amount"], int) and hex_string(e["account"]) and e["reason"] for e in compensation["entries"])
    assert report["forensics"] == {"culprits": [], "evidence": []}
    assert all(set(check) == {"ok", "status", "detail"} for check in report["checks"].values())
    assert all(check["status"] == "held" for check in report["checks"].values())
    assert set(report["metrics"]) >= {"blocks", "txs", "messages", "virtual_s", "wall_s"}
    json.dumps(report)  # plain JSON all the way down


def test_the_report_keeps_a_series_per_fork_so_the_restart_never_overwrites_the_glitch(paradex_small):
    run, report = paradex_small
    series = report["series"]
    forks = {p["fork"] for p in series}
    assert forks == {0, 1}
    first_bad = report["incident"]["first_bad_height"]
    glitched = next(p for p in series if p["fork"] == 0 and p["height"] == first_bad)
    assert glitched["onchain"]["BTC-USD"] != glitched["reference"]["BTC-USD"]
    again = [p for p in series if p["fork"] == 1 and p["height"] == first_bad]
    assert again and again[0]["onchain"]["BTC-USD"] > 0  # the restarted fork passes that height on true prices
    assert sum(p["liquidations"] for p in series if p["fork"] == 0) == report["incident"]["liquidations"]
    restart = report["restart"]
    assert restart["fork_id"] == 1 and restart["start_height"] == run.recovery.restart_height
    assert restart["liquidations"] == sum(p["liquidations"] for p in series if p["fork"] == 1)
    assert all(isinstance(p["vault"], int) and set(p["open_interest"]) == set(p["onchain"]) for p in series)
