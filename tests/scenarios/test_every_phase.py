"""Every size keeps the whole story: the small preset reaches every phase its scenario has, an
incident of any kind is detected, and a fault that outlasts the run ends it, named.

- `--small` scales what follows the restart (cancel-only, post-only, a stale feed) with the
  chain and grows the heights to hold it: each bundled scenario, small, shows the same
  phases and kinds of event as the same scenario with its full heights and durations (the
  population cut as small cuts it, so that the full-length run stays cheap).
- A funding-index reset alone is seen by every validator's alarm (against the index it
  computes itself) and rolled back; an incident no alarm could see is refused at load.
- A partition that never heals, or a crash past the run's end, ends the run in bounded work
  with the checks it could not reach `not_reached`, naming the fault.
"""

from __future__ import annotations

import os

import pytest

import scenarios
from scenarios.errors import ScenarioError
from scenarios.events import EventLog
from scenarios.loader import compute_small_overrides, describe_small_preset, get_bundled_names, load_scenario
from scenarios.report import build_report
from scenarios.runner import run_scenario_once

POPULATION = ("chain.accounts", "workload.")  # what `--small` cuts that is not a time or a height
# The full-length run costs half a minute each: CI compares the headline scenario (a
# rollback's reopening; a selective restore's reopening and a stale feed are checked on their
# small runs alone); `HYPOTHESIS_PROFILE=thorough` compares every bundled scenario.
EVERY_SCENARIO = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
CI_COMPARED = ("paradex-2026",)


def _phases_and_kinds(scenario) -> tuple[set[str], set[str], dict]:
    log = EventLog()
    run, virtual_s, wall_s = run_scenario_once(scenario, events=log)
    report = build_report(run, virtual_s, wall_s)
    phases = {entry["event"] for entry in report["timeline"]}
    phases |= {f"reopening {p['mode']}" for p in (report.get("reopening") or {}).get("phases", [])}
    return phases, {e["kind"] for e in log.get_ordered()}, report


@pytest.mark.parametrize("name", get_bundled_names())
def test_small_shows_every_phase_and_event_kind_the_full_length_run_shows(name):
    if not EVERY_SCENARIO and name not in CI_COMPARED:
        pytest.skip("full-length comparison of every bundled scenario: HYPOTHESIS_PROFILE=thorough")
    full = load_scenario(name)
    cut = {k: v for k, v in compute_small_overrides(full).items() if k.startswith(POPULATION)}
    small_phases, small_kinds, small_report = _phases_and_kinds(load_scenario(name, small=True))
    full_phases, full_kinds, _ = _phases_and_kinds(load_scenario(name, overrides=cut))
    assert small_phases == full_phases
    assert small_kinds == full_kinds
    if "restart" in full_phases and (full.response.cancel_only_s or full.response.post_only_s):
        assert {"reopening cancel-only", "reopening post-only", "reopening open"} <= small_phases
    assert all(check["ok"] for check in small_report["checks"].values()), small_report["checks"]


def test_small_paradex_reopens_in_three_phases_and_pays_compensation():
    report = scenarios.run("paradex-2026", small=True)
    assert [p["mode"] for p in report.to_dict()["reopening"]["phases"]] == ["cancel-only", "post-only", "open"]
    assert report.compensation.accounts > 0 and report.compensation.total > 0
    assert report.ok, report.failed_checks


@pytest.mark.parametrize("name", get_bundled_names())
def test_show_small_names_every_value_it_changed(name):
    full, small = load_scenario(name), load_scenario(name, small=True)
    described = {line.split(" = ", 1)[0] for line in describe_small_preset(full)}
    changed = set()
    for table, values in small.model_dump(mode="json").items():
        if isinstance(values, dict):
            changed |= {f"{table}.{k}" for k, v in values.items() if v != full.model_dump(mode="json")[table][k]}
        elif values != full.model_dump(mode="json")[table]:
            changed.add(table)
    assert changed == described


def test_the_small_reopening_fits_a_selective_restore_too():
    """A selective restore restarts two heights after the halt, later than a rollback."""
    small = load_scenario("dao-selective-restore", small=True)
    report = scenarios.run(small)
    assert [p["mode"] for p in report.to_dict()["reopening"]["phases"]] == ["cancel-only", "post-only", "open"]
    assert report.ok, report.failed_checks


# ---------------------------------------------------------------- any kind of incident is detected


def test_a_funding_reset_alone_is_detected_halted_and_rolled_back():
    report = scenarios.run("paradex-2026", small=True, overrides={"incident.kind": "funding-reset"})
    assert report.ok, report.failed_checks
    assert report.incident.first_bad_height == load_scenario("paradex-2026", small=True).incident.start_height
    assert report.restore.target_height == report.incident.first_bad_height - 1
    glitch = next(e for e in report.to_dict()["timeline"] if e["event"] == "glitch on chain")
    assert "funding index" in glitch["detail"] and "oracle price" not in glitch["detail"]


@pytest.mark.parametrize("overrides, field", [
    ({"incident.kind": "price", "incident.bad_price": 95_000.0}, "incident.bad_price"),  # BTC's own price
    ({"incident.kind": "price", "incident.bad_price": 100_000.0}, "incident.bad_price"),  # +5 %, inside 20 %
    ({"incident.kind": "funding-reset",
      "exchange.funding_index_usd": {"BTC-USD": 0.0, "ETH-USD": 0.0, "SOL-USD": 0.0, "PAXG-USD": 0.0}},
     "incident.kind"),
    ({"incident.kind": "both", "incident.bad_price": 95_000.0, "incident.funding_markets": ["SOL-USD"],
      "exchange.funding_index_usd": {"SOL-USD": 0.0}}, "incident.bad_price"),
])
def test_an_incident_no_alarm_could_see_is_refused_at_load(overrides, field):
    with pytest.raises(ScenarioError) as refused:
        scenarios.load("paradex-2026", overrides=overrides)
    assert refused.value.field == field


@pytest.mark.parametrize("overrides", [
    {"incident.kind": "price", "incident.bad_price": 120_000.0},  # +26 %: past the 20 % band
    {"incident.kind": "both", "incident.bad_price": 95_000.0},  # the price is right, the funding reset is not
    {"incident.kind": "funding-reset", "incident.funding_markets": ["PAXG-USD"]},
])
def test_an_incident_an_alarm_can_see_loads(overrides):
    scenarios.load("paradex-2026", overrides=overrides)


# ---------------------------------------------------------------- faults that outlast the run


def test_a_partition_that_never_heals_ends_the_vote_naming_it():
    """The vote needs 3 of 4 and no side has it: the run stops instead of waiting forever."""
    report = scenarios.run("paradex-2026", small=True, overrides={
        "network.partitions": [{"start_s": 30.0, "end_s": 1e7, "groups": [[0, 1], [2, 3]]}]})
    checks = report.checks
    assert checks["halt"].status == "held"
    for name in ("certificate", "restored_roots", "liveness", "compensation_paid"):
        assert checks[name].status == "not_reached" and "heals only at 1e+07 s" in checks[name].detail, name
    note = next(e for e in report.to_dict()["timeline"] if e["event"] == "no certificate")
    assert "heals only at" in note["detail"] and "of the last fault" not in note["detail"]
    # bounded work: the vote stopped waiting after its bound, not after two million events
    assert report.metrics.virtual_s < 21_600 + 30_000


def test_a_partition_after_the_restart_that_never_heals_leaves_liveness_not_reached():
    small = load_scenario("paradex-2026", small=True)
    report = scenarios.run(small, overrides={
        "network.partitions": [{"start_s": 21_620.0, "end_s": 1e9, "groups": [[0, 1], [2, 3]]}]})
    assert report.checks["certificate"].status == "held"
    for name in ("liveness", "compensation_paid"):
        assert report.checks[name].status == "not_reached", report.checks[name]
        assert "heals only at 1e+09 s" in report.checks[name].detail


def test_a_crash_after_the_run_is_over_changes_nothing():
    faulty = scenarios.run("paradex-2026", small=True, overrides={"network.crashes": [{"node": 0, "at_s": 1e6}]})
    plain = scenarios.run("paradex-2026", small=True)
    assert faulty.ok, faulty.failed_checks
    assert faulty.chain.final_state_root == plain.chain.final_state_root
