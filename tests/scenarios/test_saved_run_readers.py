"""Readers of a saved run change nothing and say in one line what is damaged; a run stopped at
any moment, by a signal or a kill, stays readable and replaceable (issue 18's probes)."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from scenarios.cli import main
from scenarios.datadir import claim_data_dir
from scenarios.inspect import read_saved_height
from test_data_dirs import TINY


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line(result, expected):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("l2sim: ") and expected in line, line


def files_of(directory):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


@pytest.fixture
def data(saved, tmp_path):
    """A copy of the shared saved run (each test may damage its own)."""
    return shutil.copytree(saved / "data", tmp_path / "data")


READERS = [
    ("inspect", "--height", "2"),
    ("inspect", "--height", "2", "--account", "0x" + "11" * 20),
    ("diff", "--from", "1", "--to", "3"),
    ("votes", "--height", "2"),
    ("report",),
]


def test_readers_write_nothing_in_or_beside_a_finished_run(data):
    before = files_of(data)
    for command, *options in READERS:
        result = invoke(command, data, *options)
        assert result.exit_code == 0, (command, result.output)
    assert files_of(data) == before  # no byte, no mtime, no -shm/-wal beside the store


def test_diff_refuses_a_foreign_database_and_leaves_it_as_it_was(data):
    (data / "chain.sqlite").unlink()
    with sqlite3.connect(data / "chain.sqlite") as db:
        db.execute("CREATE TABLE mine (x)")
    db.close()
    before = files_of(data)
    assert_one_line(invoke("diff", data, "--from", "1", "--to", "2"), "not an l2sim store")
    assert files_of(data) == before


@pytest.mark.parametrize("damage, command, expected", [
    (lambda d: (d / "report.json").write_text("{}"), ("report",), "report.json: not an l2sim report"),
    (lambda d: (d / "report.json").write_bytes(b"\xff\xfe{}"), ("report",), "report.json: not UTF-8"),
    (lambda d: (d / "report.json").write_text("[" * 100_000), ("report",), "report.json: not JSON"),
    (lambda d: (d / "events.jsonl").write_text(json.dumps(
        {"t_s": 1.0, "fork": 0, "height": 2, "kind": "vote", "validator": 0, "round": 0, "value": None,
         "reason": None, "signature": "0x"}) + "\n"), ("votes", "--height", "2"), "events.jsonl:1: a vote event needs step"),
    (lambda d: (d / "events.jsonl").write_bytes(b'{"t_s": 1\xff}\n'), ("votes", "--height", "2"), "not UTF-8"),
    (lambda d: (d / "run.json").write_text(json.dumps(
        {k: v for k, v in json.loads((d / "run.json").read_text()).items() if k != "config"})),
     ("inspect", "--height", "1", "--account", "0x" + "11" * 20), "run.json holds no valid scenario"),
    (lambda d: (d / "chain.sqlite").write_bytes((d / "chain.sqlite").read_bytes()[:4096]),
     ("inspect", "--height", "5"), "data"),
], ids=["report {}", "report not UTF-8", "report nested", "vote without step", "events not UTF-8",
        "manifest without config", "store cut short"])
def test_every_damaged_file_is_one_line(data, damage, command, expected):
    damage(data)
    assert_one_line(invoke(command[0], data, *command[1:]), expected)


def test_the_manifest_says_finished_only_once_every_file_is_in_place(data, monkeypatch):
    import scenarios.inspect as inspect

    manifest = json.loads((data / "run.json").read_text())
    (data / "run.json").write_text(json.dumps({**manifest, "status": "running"}))
    (data / "events.jsonl").unlink()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inspect, "write_events", fail)
    with pytest.raises(OSError):
        inspect.finish_saved_run(str(data), json.loads((data / "report.json").read_text()), {}, [])
    assert json.loads((data / "run.json").read_text())["status"] == "running"


# ---------------------------------------------------------------- stopped by a signal

# The small file of the race test, long enough to be stopped half way.
LONG = TINY.replace("heights = 12", "heights = 400").replace("start_height = 4", "start_height = 300")


def _start_and_signal(tmp_path, signum, *args):
    scenario = tmp_path / "long.toml"
    scenario.write_text(LONG)
    directory = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "scenarios.cli", "run", str(scenario), "--quiet",
                             "--data-dir", str(directory), *args], stderr=subprocess.PIPE, text=True)
    for _ in range(6000):  # bounded (~60 s): until a few blocks are committed
        if proc.poll() is not None or (read_saved_height(str(directory)) or 0) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signum)
    return proc, directory, proc.wait(timeout=60), proc.stderr.read()


def test_sigterm_stops_a_run_in_one_line_and_leaves_it_readable_and_replaceable(tmp_path):
    proc, directory, returncode, stderr = _start_and_signal(tmp_path, signal.SIGTERM)
    assert returncode == 143, stderr
    (line,) = stderr.splitlines()
    assert line.startswith(f"l2sim: interrupted; the saved run in {directory} is readable up to height ")
    height = int(line.rsplit(" ", 1)[1])
    assert height >= 3
    result = invoke("inspect", directory, "--height", height)
    assert result.exit_code == 0, result.output
    assert json.loads((directory / "run.json").read_text())["status"] == "running"
    with claim_data_dir(str(directory), force=True):  # `run --force` takes it back
        assert [p.name for p in directory.iterdir()] == [".l2sim.lock"]


def test_a_killed_run_is_readable_up_to_its_last_block_and_replaceable(tmp_path):
    proc, directory, returncode, _ = _start_and_signal(tmp_path, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    height = read_saved_height(str(directory))
    assert height is not None and height >= 3
    assert invoke("inspect", directory, "--height", height).exit_code == 0
    assert_one_line(invoke("report", directory), "no saved report here")
    with claim_data_dir(str(directory), force=True):
        assert [p.name for p in directory.iterdir()] == [".l2sim.lock"]


def test_ctrl_c_stops_a_sweep_and_its_workers(tmp_path):
    scenario = tmp_path / "long.toml"
    scenario.write_text(LONG)
    proc = subprocess.Popen([sys.executable, "-m", "scenarios.cli", "sweep", str(scenario), "--seeds", "2",
                             "--workers", "1", "--out", str(tmp_path / "out")], stderr=subprocess.PIPE, text=True)
    workers = []
    for _ in range(6000):  # bounded (~60 s): until the pool's worker is up (imports run `file` too)
        workers = [pid for pid in _children(proc.pid) if "multiprocessing" in _command_line(pid)]
        if workers or proc.poll() is not None:
            break
        time.sleep(0.01)
    assert workers
    proc.send_signal(signal.SIGINT)  # to the parent alone: it must stop the workers itself
    assert proc.wait(timeout=60) == 130
    assert "l2sim: interrupted; the sweep in" in proc.stderr.read()
    for pid in workers:
        for _ in range(500):  # the parent terminated it; wait (bounded) for the kernel to reap it
            if not _is_alive(pid):
                break
            time.sleep(0.01)
        assert not _is_alive(pid)


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(p) for p in listing.read().split()]
    except OSError:
        return []


def _command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as listing:
            return listing.read().replace("\0", " ")
    except OSError:
        return ""


def _is_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
