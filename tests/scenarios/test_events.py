"""The event log: it observes a run without changing it, it is the same bytes for the same
seed, it holds every kind the issue names, and its reader refuses malformed files."""

import json

import pytest

from scenarios.events import KINDS, EventLog, EventLogError, read_events, write_events
from scenarios.report import build_report
from scenarios.runner import run_scenario_once
from teaching_support import load_small_scenario, record_small_run


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    scenario = load_small_scenario(tmp_path_factory.mktemp("events"))
    _, report, log = record_small_run(scenario)
    plain, virtual_s, wall_s = run_scenario_once(scenario)
    return report, build_report(plain, virtual_s, wall_s), log, scenario


def test_recording_never_changes_the_digest(recorded):
    with_log, without_log, log, _ = recorded
    assert log.events, "the run recorded nothing"
    assert with_log["digest"] == without_log["digest"]


def test_same_seed_same_bytes(recorded, tmp_path):
    _, _, log, scenario = recorded
    again = EventLog()
    run_scenario_once(scenario, events=again)
    write_events(log.get_ordered(), tmp_path / "a.jsonl")
    write_events(again.get_ordered(), tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_every_kind_is_recorded_with_its_fields(recorded, tmp_path):
    _, report, log, _ = recorded
    write_events(log.get_ordered(), tmp_path / "events.jsonl")
    events = read_events(tmp_path / "events.jsonl")
    kinds = {e["kind"] for e in events}
    # The small run has no rejected plan or lost receiver; every kind the issue names is here.
    assert set(KINDS) - kinds == set(), sorted(set(KINDS) - kinds)
    for event in events:
        for name in ("t_s", "fork", "height", "kind", *KINDS[event["kind"]][0]):
            assert name in event, (name, event)
    times = [e["t_s"] for e in events]
    assert times == sorted(times), "events are written in order of virtual time"
    halts = [e for e in events if e["kind"] == "halt"]
    assert {e["height"] for e in halts} == {report["incident"]["detected_height"]}
    commits = {e["height"]: e["state_root"] for e in events if e["kind"] == "commit" and e["fork"] == 0}
    target = report["restore"]["target_height"]
    assert commits[target] == report["restore"]["snapshot_state_root"]
    signers = [e["signers"] for e in events if e["kind"] == "certificate"]
    assert signers == [report["restore"]["certificate"]["signers"]]


def test_drops_name_their_cause(recorded):
    _, _, log, _ = recorded
    reasons = {e["reason"] for e in log.events if e["kind"] == "drop"}
    assert {"lost", "partition", "receiver_down"} <= reasons, reasons
    during = [e for e in log.events if e["kind"] == "drop" and e["reason"] == "partition"]
    start = next(e["t_s"] for e in log.events if e["kind"] == "partition_start")
    end = next(e["t_s"] for e in log.events if e["kind"] == "partition_end")
    assert during and all(start <= e["t_s"] <= end for e in during)
    assert all({e["from"], e["to"]} not in ({0, 1}, {2, 3}) for e in during)


def test_nil_votes_say_why(recorded):
    _, _, log, _ = recorded
    nil = [e for e in log.events if e["kind"] == "vote" and e["value"] is None]
    assert nil and all(e["reason"] in ("no_proposal", "locked", "invalid", "no_polka") for e in nil)
    voted = [e for e in log.events if e["kind"] == "vote" and e["value"] is not None]
    assert all(e["reason"] is None for e in voted)


def test_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"t_s": 0.0, "fork": 0, "height": 1, "kind": "crash", "validator": 0}) + "\nnot json\n")
    with pytest.raises(EventLogError, match=r"bad.jsonl:2: not JSON"):
        read_events(path)
    path.write_text(json.dumps({"t_s": 0.0, "fork": 0, "kind": "commit"}) + "\n")
    with pytest.raises(EventLogError, match=r":1: an event needs"):
        read_events(path)
    path.write_text(json.dumps({"t_s": 0.0, "fork": 0, "height": 1, "kind": "teleport"}) + "\n")
    with pytest.raises(EventLogError, match="unknown kind"):
        read_events(path)


def test_emit_refuses_an_event_without_its_fields():
    with pytest.raises(AssertionError, match="lacks"):
        EventLog().emit("vote", t_s=0.0, fork=0, height=1, validator=0)
