"""`l2sim sweep`: rows that equal single runs, the same CSV on Dask, and a killed sweep that resumes.

One small sweep (two values of detection.delay_blocks times two seeds) is run once on the
local pool and compared with single `scenarios.run` calls, with a two-worker LocalCluster,
and with a sweep killed by SIGKILL half way and run again.
"""

import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from click.testing import CliRunner

import scenarios
from scenarios.cli import main
from scenarios.interrupt import Interrupted
from scenarios.loader import format_set_options, parse_set_options
from scenarios.checks import get_promised_checks, order_checks
from scenarios.sweep import (
    CSV_NAME,
    RUNS_DIR,
    SweepPlan,
    compute_charts,
    open_pool,
    parse_sweep_options,
    plan_sweep,
    render_summary_html,
    run_sweep,
    split_values,
)

ROOT = Path(__file__).resolve().parents[2]
SWEEP_ARGS = ["paradex-2026", "--seeds", "2", "--set", "detection.delay_blocks=1,3", "--small"]


@pytest.fixture(scope="module", autouse=True)
def tree_on_pythonpath():
    """Spawned workers (the pool's, the LocalCluster's) import this tree, as the test does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(ROOT))
        yield


def _plan():
    return plan_sweep("paradex-2026", seeds=2, axes={"detection.delay_blocks": [1, 3]}, small=True)


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _without_wall(text: str) -> list[list[str]]:
    """The CSV's header and rows, in their column order, without the one column that may differ: wall seconds."""
    lines = list(csv.reader(io.StringIO(text)))
    wall = lines[0].index("wall_s")
    return [line[:wall] + line[wall + 1:] for line in lines]


@pytest.fixture(scope="module")
def pool_sweep(tmp_path_factory):
    """The sweep on the local pool of two processes: its directory."""
    out = tmp_path_factory.mktemp("pool") / "sweep"
    result = run_sweep(_plan(), str(out), workers=2)
    assert result.is_complete and result.executed == 4, result.errors
    return out


def test_each_row_is_the_single_run_its_command_replays(pool_sweep):
    rows = _rows((pool_sweep / CSV_NAME).read_text())
    assert [r["detection.delay_blocks"] for r in rows] == ["1", "1", "3", "3"]
    assert rows[0]["seed"] == rows[2]["seed"] != rows[1]["seed"]  # every point sees the same seeds
    assert len({r["digest"] for r in rows}) == 4
    for row in (rows[0], rows[3]):
        words = shlex.split(row["reproduce"])
        assert words[:3] == ["l2sim", "run", "paradex-2026"] and "--small" in words
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        report = scenarios.run("paradex-2026", seed=int(words[words.index("--seed") + 1]), small=True,
                               overrides=parse_set_options(sets))
        assert report.digest == row["digest"]
        assert row["ok"] == ("true" if report.ok else "false")
        assert row["check.liveness"] == report.checks["liveness"].status
        assert row["halt_height"] == str(report.incident.halt_height)
        assert row["liquidated_accounts"] == str(len(report.incident.liquidated_accounts))
        assert row["certificate_power"] == str(report.restore.certificate.power)
        assert row["compensation_total"] == str(report.compensation.total)
    assert rows[0]["halt_height"] != rows[2]["halt_height"]  # the varied key reached the runs
    html = (pool_sweep / "summary.html").read_text()
    assert "By detection.delay_blocks" in html and "<svg" in html and "src=" not in html


def test_a_local_dask_cluster_gives_the_same_csv(pool_sweep, tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = run_sweep(_plan(), str(tmp_path / "dask"), workers=2, scheduler="local")
    assert result.is_complete
    assert _without_wall((tmp_path / "dask" / CSV_NAME).read_text()) == _without_wall(
        (pool_sweep / CSV_NAME).read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the cluster is closed: its processes go away
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.2)
    assert not left, left


def test_a_killed_sweep_resumes_without_rerunning_what_finished(pool_sweep, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "scenarios.cli", "sweep", *SWEEP_ARGS, "--workers", "1", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / RUNS_DIR).glob("*.json"))) < 1:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and its pool, mid-way
        process.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / RUNS_DIR).glob("*.json")}
    assert 1 <= len(finished) < 4 and not (out / CSV_NAME).exists()

    result = CliRunner().invoke(main, ["sweep", *SWEEP_ARGS, "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{len(finished)} finished before, {4 - len(finished)} run now" in result.output
    for name, (mtime, data) in finished.items():
        path = out / RUNS_DIR / name
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data)
    assert len(list((out / RUNS_DIR).glob("*.json"))) == 4
    assert _without_wall((out / CSV_NAME).read_text()) == _without_wall((pool_sweep / CSV_NAME).read_text())


def test_a_finished_sweep_runs_nothing_again(pool_sweep):
    result = run_sweep(_plan(), str(pool_sweep), workers=1)
    assert (result.cached, result.executed) == (4, 0)


@pytest.mark.parametrize(("args", "names"), [
    (["--set", "detection.delay_blocks=1,x"], ["--set", "detection.delay_blocks", '"x"']),
    (["--set", "detection.bogus=1,2"], ["--set", "bogus"]),
    (["--set", "detection.delay_blocks=1,"], ["--set", "detection.delay_blocks", "empty"]),
    (["--scheduler", "udp://nowhere"], ["--scheduler", "udp://nowhere"]),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], ["--workers"]),
    (["--seeds", "0"], ["--seeds"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, names):
    base = ["sweep", "paradex-2026", "--seeds", "2", "--small", "--out", str(tmp_path / "out")]
    if "--seeds" in args:
        base[2:4] = []
    result = CliRunner().invoke(main, base + args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert all(name in lines[0] for name in names), lines[0]


def test_an_out_dir_holding_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["sweep", "paradex-2026", "--seeds", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "holds no sweep" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_values_split_on_top_level_commas_only():
    assert split_values('1, 2,[3, 4],{a = 1, b = "x,y"}') == ["1", "2", "[3, 4]", '{a = 1, b = "x,y"}']
    axes = parse_sweep_options(['validators.byzantine=[{index=0, behaviour="crash"}],[]', "response.mode=full-rollback"])
    assert axes == {"validators.byzantine": [[{"index": 0, "behaviour": "crash"}], []],
                    "response.mode": ["full-rollback"]}


def test_a_torn_result_file_is_run_again(pool_sweep, tmp_path):
    plan = plan_sweep("paradex-2026", seeds=1, axes={}, small=True)
    out = tmp_path / "torn"
    (out / RUNS_DIR).mkdir(parents=True)
    (out / "sweep.json").write_text("{}")
    (out / RUNS_DIR / f"{plan.tasks[0].key}.json").write_text('{"key": "')  # a write cut short
    result = run_sweep(plan, str(out), workers=1)
    assert (result.cached, result.executed) == (0, 1)
    assert json.loads((out / RUNS_DIR / f"{plan.tasks[0].key}.json").read_text())["key"] == plan.tasks[0].key


def test_a_worker_killed_mid_run_is_reported_lost_and_not_cached(tmp_path):
    plan = plan_sweep("paradex-2026", seeds=1, axes={}, small=True)
    box = {}
    sweep = threading.Thread(target=lambda: box.update(result=run_sweep(plan, str(tmp_path / "lost"), workers=1)))
    sweep.start()
    deadline = time.monotonic() + 60
    worker = None
    while worker is None and time.monotonic() < deadline:  # the pool's worker, not the resource tracker
        worker = next((p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())
                       and "resource_tracker" not in " ".join(p.cmdline())), None)
        time.sleep(0.05)
    assert worker is not None
    time.sleep(0.5)
    os.kill(worker.pid, signal.SIGKILL)
    sweep.join(timeout=60)
    result = box["result"]
    assert not result.is_complete and result.errors[0].startswith("lost")
    assert list((tmp_path / "lost" / RUNS_DIR).glob("*.json")) == []  # run again next time
    row = _rows((tmp_path / "lost" / CSV_NAME).read_text())[0]
    assert row["ok"] == "" and row["error"].startswith("lost") and row["reproduce"]


_TOML_SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                          st.booleans(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                                 max_size=8))
_TOML_VALUES = st.recursive(_TOML_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, max_size=2)),
    max_leaves=6)


@given(values=st.lists(_TOML_VALUES, min_size=1, max_size=4))
@example(values=['say "a,b"', 2])  # an escaped quote once ended the string early and split at its comma
def test_any_values_written_as_toml_and_joined_by_commas_come_back(values):
    texts = [format_set_options({"k": v})[0].partition("=")[2] for v in values]
    assert parse_sweep_options([f"network.drop_rate={','.join(texts)}"]) == {"network.drop_rate": values}


# ----------------------------------------------------------------------------- summary.html and column order


def test_check_columns_keep_one_order_however_the_reports_list_them():
    promised = get_promised_checks("full-rollback")
    assert order_checks(sorted(promised)) == list(promised)
    assert order_checks(["zz_new", *reversed(promised), "aa_new"]) == [*promised, "aa_new", "zz_new"]


def _summary_rows(values: list[tuple[str, str, str]], key: str | None) -> list[dict]:
    """Rows as compute_row makes them: (value of key, ok, liquidated_accounts); ok "" = did not run."""
    rows = []
    for i, (value, ok, liquidated) in enumerate(values):
        row = {"run": str(i), "scenario": "s", "seed": str(i), "ok": ok, "check.halt": "held" if ok else "",
               "digest": "", "liquidated_accounts": liquidated if ok else "", "halt_height": "45" if ok else "",
               "certificate_power": "3" if ok else "", "compensation_total": str(10**18 * (i + 1)) if ok else "",
               "wall_s": "", "error": "" if ok else "lost", "reproduce": f"l2sim run s --seed {i}"}
        if key is not None:
            row[key] = value
        rows.append(row)
    return rows


def _plan_of(key: str | None) -> SweepPlan:
    keys = (key,) if key else ()
    return SweepPlan(scenario="s", keys=keys, varied=keys, tasks=(), code_version="test")


def test_summary_spells_out_long_values_and_does_not_plot_runs_that_did_not_run():
    key = "validators.byzantine"
    long_value = '[{ index = 0, behaviour = "equivocate" }]'
    rows = _summary_rows([(long_value, "true", "7"), (long_value, "", ""), ("[]", "true", "5"), ("[]", "", "")],
                         key)
    html = render_summary_html(_plan_of(key), rows, ["halt"])
    assert html.count(long_value.replace('"', "&#34;")) >= 1  # whole, in the legend
    assert "[{ index = 0, beha" not in html.replace(long_value.replace('"', "&#34;"), "")
    assert ">v1<" in html and ">v2<" in html
    liquidations = next(c["svg"] for c in compute_charts(_plan_of(key), rows)[0]["charts"]
                        if c["title"] == "liquidated accounts")
    assert liquidations.count("<circle") == 2  # the two runs that ran, not the two that did not
    legend = compute_charts(_plan_of(key), rows)[0]["legend"]
    assert [(v["ran"], v["missing"]) for v in legend] == [(1, 1), (1, 1)]


def test_a_sweep_over_seeds_only_plots_each_metric_across_seeds():
    rows = _summary_rows([("", "true", n) for n in ("170", "174", "181", "174", "190")] + [("", "", "")], None)
    sections = compute_charts(_plan_of(None), rows)
    assert [s["title"] for s in sections] == ["Across seeds"]
    charts = {c["title"].partition(":")[0]: str(c["svg"]) for c in sections[0]["charts"]}
    assert set(charts) == {"liquidated accounts", "compensation total (USD)", "certificate power", "halt height"}
    counts = [int(c) for c in re.findall(r'data-count="(\d+)"', charts["liquidated accounts"])]
    assert sum(counts) == 5 and len(counts) == 4  # five runs that ran, four distinct values
    assert "median 174" in charts["liquidated accounts"]
    assert sum(int(c) for c in re.findall(r'data-count="(\d+)"', charts["halt height"])) == 5


def test_ctrl_c_while_the_pool_starts_is_reported_as_the_interrupt():
    """Found under load: SIGINT inside `submit`, while the executor starts its manager thread, left
    a pool whose shutdown raised `RuntimeError: cannot join thread before it is started`, so the
    user saw a traceback and exit 1 instead of the one line and exit 130."""
    with pytest.raises(Interrupted):
        with open_pool(1, None) as pool:
            # The executor's state at that moment: a manager thread made but never started.
            pool._executor._executor_manager_thread = threading.Thread(target=lambda: None)
            raise Interrupted(signal.SIGINT)
