"""Who may write a data directory, and what `--force` may remove (issue 18's probes).

A directory holds a saved run by its content (the manifest's format, the store's meta
record), not its file names; `--force` removes only what a run writes; one process at a
time owns a data directory, a sweep's `--out` or shrink's `--out`.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from scenarios.cli import main
from scenarios.datadir import LOCK_NAME, claim_data_dir, claim_output_file, hold_lock, is_saved_run
from scenarios.errors import DataDirLockedError, UsedDataDirError

MANIFEST = json.dumps({"format": "l2sim-run-1", "status": "finished", "validators": []})


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_refused(result, *expected):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("l2sim: ")
    for text in expected:
        assert text in line, line


def make_saved_run(directory):
    """The files a run leaves, each of its kind (a real store is not needed to recognise them)."""
    directory.mkdir()
    (directory / "run.json").write_text(MANIFEST)
    (directory / "chain.sqlite").write_bytes(b"SQLite format 3\x00...")
    (directory / "chain.sqlite-wal").write_bytes(b"wal")
    (directory / "journal-0.sqlite").write_bytes(b"")
    (directory / "report.json").write_text("{}")
    (directory / "events.jsonl").write_text("")
    (directory / ".run.json.k2j3.tmp").write_text("{")  # killed while it replaced the manifest
    return directory


def snapshot(directory):
    return {p.name: p.read_bytes() if p.is_file() else None for p in directory.iterdir()}


# ---------------------------------------------------------------- recognised by content


def test_a_directory_named_like_a_run_is_not_one_and_force_keeps_it_whole(tmp_path):
    # The probe: a build directory with its own run.json, a .git and notes.
    directory = tmp_path / "P"
    (directory / ".git").mkdir(parents=True)
    (directory / "run.json").write_text('{"build":"release"}')
    (directory / "NOTES.md").write_text("keep")
    before = snapshot(directory)
    assert not is_saved_run(directory)
    assert_refused(invoke("run", "paradex-2026", "--small", "--data-dir", str(directory), "--force"),
                   "--data-dir: is not empty and holds no l2sim run")
    assert snapshot(directory) == before


def test_force_refuses_a_saved_run_with_a_user_file_beside_it_and_names_the_file(tmp_path):
    directory = make_saved_run(tmp_path / "run")
    (directory / "NOTES.md").write_text("mine")
    (directory / "plots").mkdir()
    before = snapshot(directory)
    assert_refused(invoke("run", "paradex-2026", "--data-dir", str(directory), "--force"),
                   "files l2sim did not write (NOTES.md, plots/)")
    assert snapshot(directory) == before


@pytest.mark.parametrize("name, content", [("chain.sqlite", b"not a database"), ("run.json", b'{"format": "x"}')],
                         ids=["store that is not SQLite", "manifest of another format"])
def test_a_run_file_of_the_wrong_kind_is_not_removed(tmp_path, name, content):
    directory = make_saved_run(tmp_path / "run")
    (directory / name).write_bytes(content)
    before = snapshot(directory)
    with pytest.raises(UsedDataDirError, match=name):
        with claim_data_dir(str(directory), force=True):
            pass
    assert snapshot(directory) == before


def test_force_removes_exactly_the_files_a_run_writes(tmp_path):
    directory = make_saved_run(tmp_path / "run")
    with claim_data_dir(str(directory), force=True):
        assert [p.name for p in directory.iterdir()] == [LOCK_NAME]
    assert list(directory.iterdir()) == []  # the lock goes with its holder


def test_a_run_killed_before_its_first_manifest_is_replaced_by_force_and_inspect_says_so(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / ".run.json.x1y2.tmp").write_text('{"format": "l2sim-ru')
    (directory / LOCK_NAME).write_text("999999\n")  # its holder is gone: the kernel dropped the lock
    assert_refused(invoke("inspect", str(directory), "--height", "0"), "not an l2sim run (no run.json")
    assert_refused(invoke("run", "paradex-2026", "--data-dir", str(directory)), "pass --force")
    with claim_data_dir(str(directory), force=True):
        assert [p.name for p in directory.iterdir()] == [LOCK_NAME]


# ---------------------------------------------------------------- one owner at a time


def test_a_held_data_dir_is_refused_naming_the_holder(tmp_path):
    directory = tmp_path / "run"
    with claim_data_dir(str(directory), force=False):
        (directory / "run.json").write_text(MANIFEST)
        for force in (False, True):
            with pytest.raises(DataDirLockedError, match=rf"in use by another l2sim process \(pid {os.getpid()}\)"):
                with claim_data_dir(str(directory), force=force):
                    pass
            assert_refused(invoke("run", "paradex-2026", "--data-dir", str(directory), *["--force"] * force),
                           f"pid {os.getpid()}")
        assert (directory / "run.json").read_text() == MANIFEST


def test_a_held_sweep_out_and_shrink_out_are_refused(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    with hold_lock(out / LOCK_NAME, target=str(out), option="--out"):
        assert_refused(invoke("sweep", "paradex-2026", "--small", "--seeds", "1", "--out", str(out)),
                       "--out: is in use by another l2sim process", f"pid {os.getpid()}")
    target = tmp_path / "small.toml"
    with claim_output_file(str(target), option="--out"):
        assert_refused(invoke("shrink", "paradex-2026", "--small", "--check", "no_liquidation_on_bad_price",
                              "--out", str(target)), "--out: is in use", f"pid {os.getpid()}")
    assert not target.exists()


_CLAIMANT = textwrap.dedent("""
    import os, sys, time
    from scenarios.datadir import claim_data_dir
    from scenarios.errors import ScenarioError
    directory, release = sys.argv[1], sys.argv[2]
    try:
        with claim_data_dir(directory, force=False):
            with open(os.path.join(directory, "run.json"), "w") as out:
                out.write(str(os.getpid()))
            for _ in range(3000):  # held until the test says so (bounded: at most ~30 s)
                if os.path.exists(release):
                    break
                time.sleep(0.01)
    except ScenarioError as error:
        print(error)
        sys.exit(2)
""")


@pytest.mark.parametrize("trial", range(2))
def test_two_processes_started_together_one_owns_the_dir_the_other_is_refused(tmp_path, trial):
    directory, release = tmp_path / "run", tmp_path / "release"
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMANT, str(directory), str(release)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    # The one refused ends on its own; the owner waits for the release.
    for _ in range(6000):  # bounded: ~60 s
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    release.write_text("")
    codes = sorted((p.wait(timeout=60), p) for p in procs)
    (ok, owner), (refused, loser) = codes[0], codes[1]
    assert (ok, refused) == (0, 2)
    assert f"in use by another l2sim process (pid {owner.pid})" in loser.stdout.read()
    assert (directory / "run.json").read_text() == str(owner.pid)
    assert sorted(p.name for p in directory.iterdir()) == ["run.json"]


TINY = """name = "tiny"
[chain]
heights = 12
accounts = 12
[incident]
start_height = 4
[detection]
delay_blocks = 1
[workload]
traders = 4
keepers = 1
profit_takers = 1
[response]
pause_s = 5
"""


def test_two_real_runs_on_one_new_dir_leave_one_whole_saved_run(tmp_path):
    """The issue's race end to end: two seeds at once; one runs, one is refused, and the manifest,
    report and log that stay are all of the run that ran, its verdict its own."""
    scenario, directory = tmp_path / "tiny.toml", tmp_path / "run"
    scenario.write_text(TINY)
    seeds = (2026, 7)
    procs = [subprocess.Popen([sys.executable, "-m", "scenarios.cli", "run", str(scenario), "--quiet", "--data-dir",
                               str(directory), "--seed", str(seed)], stderr=subprocess.PIPE, text=True)
             for seed in seeds]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = [code for code, _ in results]
    assert 2 in codes and len([c for c in codes if c in (0, 1)]) == 1, results
    winner_code, winner = [(code, seed) for seed, (code, _) in zip(seeds, results) if code != 2][0]
    (refusal,) = [err for code, err in results if code == 2]
    assert "in use by another l2sim process" in refusal or "already holds an l2sim run" in refusal
    manifest = json.loads((directory / "run.json").read_text())
    report = json.loads((directory / "report.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["seed"] == report["seed"] == winner and manifest["digest"] == report["digest"]
    assert manifest["ok"] == all(c["ok"] for c in report["checks"].values()) == (winner_code == 0)
    assert (directory / "events.jsonl").stat().st_size > 0
    assert not (directory / LOCK_NAME).exists()
    assert invoke("inspect", str(directory), "--height", "1").exit_code == 0


# ---------------------------------------------------------------- outputs checked against each other


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "child.toml").write_text('name = "child"\nextends = "tiny.toml"\n')
    return tmp_path


@pytest.mark.parametrize("make_args, expected", [
    (lambda t: ["run", t / "tiny.toml", "--data-dir", t / "X", "--json", t / "X"], "--json: is --data-dir"),
    (lambda t: ["run", t / "tiny.toml", "--data-dir", t, "--html", t / "page.html"], "--data-dir:"),
    (lambda t: ["run", t / "tiny.toml", "--json", t / "tiny.toml"], "--json: is also the scenario file"),
    (lambda t: ["run", t / "child.toml", "--events", t / "tiny.toml"], "--events: is also the scenario file"),
    (lambda t: ["run", t / "tiny.toml", "--json", t / "r.json", "--html", t / "sub" / ".." / "r.json"],
     "--html: is also --json"),
    (lambda t: ["shrink", t / "child.toml", "--check", "x", "--out", t / "tiny.toml"], "--out: is also the scenario"),
    (lambda t: ["report", t, "--json", t / "report.json"], "--json: is DIR"),
], ids=["json is the data dir", "data dir holds the page", "json is the scenario", "events is the extended file",
        "two outputs one file", "shrink overwrites what it extends", "report over its own report"])
def test_outputs_that_would_overwrite_each_other_or_an_input_are_refused_before_the_run(files, make_args, expected):
    (files / "sub").mkdir()
    before = snapshot(files)
    assert_refused(invoke(*map(str, make_args(files))), expected)
    assert snapshot(files) == before


def test_a_device_may_take_several_outputs():
    from scenarios.output import check_output_paths

    check_output_paths({"--json": "/dev/null", "--events": "/dev/null"})


def test_a_write_that_fails_at_the_end_is_one_typed_error_naming_the_path():
    from scenarios.errors import OutputPathError
    from scenarios.output import write_text_atomic

    with pytest.raises(OutputPathError, match="^/dev/full: cannot be written: No space left on device$"):
        write_text_atomic("/dev/full", "{}\n")


def test_a_sweep_whose_cluster_cannot_be_reached_leaves_no_half_made_out_dir(tmp_path, monkeypatch):
    import scenarios.sweep as sweep

    def unreachable(workers, scheduler):
        raise sweep.SchedulerError("cannot reach tcp://127.0.0.1:1", file="--scheduler")

    monkeypatch.setattr(sweep, "open_pool", unreachable)
    (tmp_path / "tiny.toml").write_text(TINY)
    plan = sweep.plan_sweep(str(tmp_path / "tiny.toml"), seeds=1, axes={}, small=False, master_seed=None)
    with pytest.raises(sweep.SchedulerError):
        sweep.run_sweep(plan, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
