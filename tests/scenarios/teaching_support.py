"""A small recorded run for the teaching tests (event log, HTML page, narration): paradex-2026
under the small preset (`--small`) with a partition, a crash and a lossy link, so that every
kind of event happens."""

import os
import subprocess
import sys
from pathlib import Path

from scenarios.events import EventLog
from scenarios.loader import load_scenario
from scenarios.report import build_report
from scenarios.runner import run_scenario_once

FAULTS = """
[network]
drop_rate = 0.02
partitions = [{ start_s = 4.0, end_s = 7.0, groups = [[0, 1], [2, 3]] }]
crashes = [{ node = 3, at_s = 2.0, restart_s = 6.0 }]
"""


def write_small(folder: Path, extends: str, *, extra: str = "") -> Path:
    """A scenario file extending `extends` with `extra`; run it with the small preset."""
    path = folder / f"small-{extends}.toml"
    # seed 3: with the small preset, the thin reopening liquidates some accounts at marks
    # outside the audit's band, who are then owed compensation (every kind of event happens)
    path.write_text(f'name = "faulty-{extends}"\nextends = "{extends}"\nseed = 3\n' + extra)
    return path


def load_small_scenario(tmp_path):
    """The small scenario with faults, loaded."""
    return load_scenario(str(write_small(tmp_path, "paradex-2026", extra=FAULTS)), small=True)


def record_small_run(scenario):
    """(run, report, log) of one recorded run of `scenario`."""
    log = EventLog()
    run, virtual_s, wall_s = run_scenario_once(scenario, events=log)
    return run, build_report(run, virtual_s, wall_s), log


def l2sim(*args, stdin=None):
    """Run the `l2sim` command of this tree in a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], capture_output=True, text=True, env=env,
                          stdin=stdin, timeout=600)


def save_small_run(folder: Path) -> Path:
    """Run the small scenario with --events, --html and --data-dir into `folder`."""
    scenario = write_small(folder, "paradex-2026", extra=FAULTS)
    result = l2sim("run", str(scenario), "--small", "--quiet", "--events", str(folder / "events.jsonl"),
                   "--html", str(folder / "page.html"), "--data-dir", str(folder / "data"))
    assert result.returncode == 0, result.stderr
    return folder
