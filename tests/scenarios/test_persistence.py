"""Nothing is lost: files are written atomically, a saved run is read without changing it,
`inspect` follows the furthest honest chain, and a run killed (SIGKILL) at any moment reads
at every height it committed, with the roots of the same run left uninterrupted."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from chain.blocks import decode_block
from chain.errors import ChainError, HeightOutOfRangeError
from chain.store import SQLiteStore, StoreError
from scenarios.errors import SavedRunError, ScenarioError, UsedDataDirError
from scenarios.inspect import (
    compute_start_manifest,
    finish_saved_run,
    inspect_run,
    open_saved_store,
    read_manifest,
    read_saved_chains,
    start_saved_run,
)
from scenarios.loader import load_scenario
from scenarios.output import write_text_atomic
from scenarios.report import build_report
from scenarios.runner import run_scenario_once

# Small, with validator 0 down for the whole run: the chain to read is never validator 0's.
SMALL = {
    "name": "small-kill",
    "extends": "paradex-2026",
    "chain": {"accounts": 200, "heights": 26},
    "validators": {"byzantine": [{"index": 0, "behaviour": "crash"}]},
    "incident": {"start_height": 10, "duration_blocks": 4},
    "detection": {"delay_blocks": 2},
    "response": {"cancel_only_s": 3.0, "post_only_s": 3.0},  # trading reopens within the heights
    "workload": {"traders": 60, "keepers": 2, "profit_takers": 4, "trade_probability": 0.05},
}
POLL_S = 0.05
WAIT_S = 180.0  # bounded: a run that never shows the height fails the test instead of hanging


# ---------------------------------------------------------------- atomic writes


def test_an_atomic_write_replaces_the_whole_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "report.json"
    write_text_atomic(target, "first\n")
    os.chmod(target, 0o640)
    write_text_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_write_that_fails_half_way_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(UnicodeEncodeError):  # the text is written, then fails mid-way
        write_text_atomic(target, '{"new": "' + "x" * 10_000 + '\udc80"}\n')
    assert target.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


# ---------------------------------------------------------------- refusing what is not a run


def _manifest_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    start_saved_run(str(directory), load_scenario("paradex-2026"))
    return directory


def test_a_run_claims_only_a_new_or_empty_directory(tmp_path):
    directory = _manifest_dir(tmp_path)
    assert read_manifest(str(directory))["status"] == "running"
    with pytest.raises(UsedDataDirError):
        start_saved_run(str(directory), load_scenario("paradex-2026"))


@pytest.mark.parametrize(
    "plant, expected",
    [
        (lambda d: (d / "run.json").unlink(), "not an l2sim run (no run.json"),
        (lambda d: (d / "run.json").write_text('{"format": "l2sim-run-1", "valid'), "run.json: not JSON"),
        (lambda d: (d / "run.json").write_text('{"format": "other"}'), "run.json has format 'other'"),
        (lambda d: None, "holds no chain.sqlite yet"),
        (lambda d: (d / "chain.sqlite").write_bytes(b""), "holds no chain.sqlite yet"),
    ],
    ids=["no manifest", "truncated manifest", "foreign manifest", "no chain", "empty chain file"],
)
def test_inspect_refuses_what_is_not_a_readable_run_in_one_line(tmp_path, plant, expected):
    directory = _manifest_dir(tmp_path)
    plant(directory)
    with pytest.raises(ScenarioError) as info:
        inspect_run(str(directory), height=0)
    assert str(info.value).startswith(str(directory)) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_inspect_leaves_a_foreign_sqlite_file_exactly_as_it_was(tmp_path):
    directory = _manifest_dir(tmp_path)
    foreign = directory / "chain.sqlite"
    with sqlite3.connect(foreign) as db:
        db.executescript("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);")
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(StoreError) as info:
        inspect_run(str(directory), height=0)
    assert "not an l2sim store" in str(info.value) and "\n" not in str(info.value)
    assert foreign.read_bytes() == before  # no table added, not switched to WAL
    assert sorted(p.name for p in directory.iterdir()) == ["chain.sqlite", "run.json"]
    db = sqlite3.connect(foreign)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("mine",)]
    db.close()


def test_a_store_opened_read_only_refuses_to_write_and_never_creates_a_file(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        SQLiteStore(tmp_path / "absent.sqlite", read_only=True)
    assert list(tmp_path.iterdir()) == []
    writer = SQLiteStore(tmp_path / "chain.sqlite")
    writer[b"k" * 32] = b"node"
    writer.commit()
    reader = SQLiteStore(tmp_path / "chain.sqlite", read_only=True)  # while the writer is open
    assert reader[b"k" * 32] == b"node"
    reader[b"j" * 32] = b"other"
    with pytest.raises(StoreError, match="read-only"):
        reader.commit()
    writer.close()


# ---------------------------------------------------------------- a finished run


def _write_small(directory: Path) -> Path:
    path = directory / "small-kill.toml"
    path.write_text(tomli_w.dumps(SMALL))
    return path


def _roots_by_fork_and_height(run) -> dict[tuple[int, int], bytes]:
    """Every state root the run committed, by (fork, height): the chain phase's blocks (the
    rolled-back ones too) and the final chain."""
    roots: dict[tuple[int, int], bytes] = {}

    def note(fork_id: int, height: int, root: bytes) -> None:
        assert roots.setdefault((fork_id, height), root) == root, ("two roots committed", fork_id, height)

    for label, trace in run.traces:
        for decision in trace.decisions:
            if label != "plan" and decision.payload is not None:
                header = decode_block(decision.payload).header
                note(header.fork_id, header.height, header.state_root)
    final = run.reference.view.history
    for height in range(final.height + 1):
        header = final.header_at(height)
        note(header.fork_id, height, header.state_root)
    return roots


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The small scenario run uninterrupted into a data directory, as `l2sim run` saves it."""
    base = tmp_path_factory.mktemp("finished")
    scenario = load_scenario(str(_write_small(base)))
    directory = base / "run"
    run, virtual_s, wall_s = run_scenario_once(scenario, data_dir=str(directory))
    report = build_report(run, virtual_s, wall_s)
    run.store.close()
    finish_saved_run(str(directory), report, {n.index: n.view.history.height for n in run.nodes}, [])
    return directory, report, _roots_by_fork_and_height(run)


def test_a_finished_run_says_what_it_holds(finished):
    directory, report, _ = finished
    manifest = read_manifest(str(directory))
    assert manifest["status"] == "finished" and manifest["digest"] == report["digest"]
    assert [(v["index"], v["honest"], v["behaviour"]) for v in manifest["validators"]] == [
        (0, False, "crash"), (1, True, "honest"), (2, True, "honest"), (3, True, "honest")]
    assert manifest["validators"][0]["final_height"] == 0
    assert manifest["validators"][1]["final_height"] == report["chain"]["final_height"]
    assert json.loads((directory / "report.json").read_text())["digest"] == report["digest"]


def test_inspect_reads_the_furthest_honest_chain_not_validator_0(finished):
    directory, report, _ = finished
    final = report["chain"]["final_height"]
    state = inspect_run(str(directory), height=final)
    assert state["validator"] != 0
    assert state["state_root"] == report["chain"]["final_state_root"]
    with pytest.raises(HeightOutOfRangeError):  # the crashed validator 0 holds genesis only
        inspect_run(str(directory), height=1, validator=0)
    assert inspect_run(str(directory), height=final, validator=2)["state_root"] == state["state_root"]


def test_inspect_changes_no_file_of_a_saved_run(finished):
    directory, report, _ = finished
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    inspect_run(str(directory), height=report["chain"]["final_height"],
                account=report["incident"]["liquidated_accounts"][0])
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


# ---------------------------------------------------------------- a killed run


def _read_head(directory: Path) -> tuple[int, int] | None:
    """(fork, height) of the furthest honest chain recorded so far, read-only; None before genesis."""
    try:
        manifest = read_manifest(str(directory))
        store = open_saved_store(str(directory))
    except (ScenarioError, ChainError):
        return None
    try:
        honest = [v["index"] for v in manifest["validators"] if v["honest"]]
        chains = read_saved_chains(store, honest)
    except (ChainError, sqlite3.Error):
        return None  # the writer is still creating the store
    finally:
        store.close()
    if not chains:
        return None
    head = max(chains.values(), key=lambda h: h.height).head
    return head.fork_id, head.height


def _run_and_kill(path: Path, directory: Path, is_far_enough) -> None:
    """Start `l2sim run` into `directory`, SIGKILL it as soon as `is_far_enough(fork, height)`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-m", "scenarios.cli", "run", str(path), "--quiet",
                                "--data-dir", str(directory)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            head = _read_head(directory)
            if head is not None and is_far_enough(*head):
                break
            if process.poll() is not None:
                pytest.fail(f"the run ended before it was killed: {process.stderr.read().decode()}")
            time.sleep(POLL_S)
        else:
            pytest.fail(f"no progress to kill at within {WAIT_S} s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()


@pytest.mark.parametrize(
    "is_far_enough",
    [
        lambda fork, height: height >= 3,  # early in the chain phase
        lambda fork, height: fork == 0 and height >= 10,  # inside the glitch (from height 10), before the halt
        lambda fork, height: fork == 1 and height >= 16,  # after the rollback and restart
    ],
    ids=["height 3", "during the glitch", "after the restart"],
)
def test_a_run_killed_at_any_moment_reads_at_every_committed_height(finished, tmp_path, is_far_enough):
    _, _, roots = finished
    path = _write_small(tmp_path)
    directory = tmp_path / "killed"
    _run_and_kill(path, directory, is_far_enough)
    manifest = read_manifest(str(directory))
    assert manifest["status"] == "running" and manifest["digest"] is None  # it never finished
    fork, head = _read_head(directory)
    assert is_far_enough(fork, head)
    for height in range(head + 1):
        state = inspect_run(str(directory), height=height)
        assert state["validator"] != 0
        expected = roots[(state["fork_id"], height)]
        assert state["state_root"] == "0x" + expected.hex(), (state["fork_id"], height)
    cli = subprocess.run([sys.executable, "-m", "scenarios.cli", "inspect", str(directory), "--height", str(head),
                          "--json"], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["state_root"] == "0x" + roots[(fork, head)].hex()
    refused = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(path), "--data-dir", str(directory)],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert refused.returncode == 2 and "already holds an l2sim run" in refused.stderr
    assert compute_start_manifest(load_scenario(str(path)))["validators"] == manifest["validators"]
