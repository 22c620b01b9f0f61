"""`l2sim shrink`: a planted failure among irrelevant faults is reduced to the faults that cause it.

The plant: two of four validators crash for good during the halt, so no 2/3 of the power
can sign a rollback certificate (`certificate` is not reached); around it, faults that do
not matter: a crash that restarts after five seconds, a drop rate, and a short partition.
"""

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import scenarios
from scenarios.cli import main
from scenarios.shrink import ShrinkLimits, shrink_scenario

ROOT = Path(__file__).resolve().parents[2]

BASE = """name = "slow-pause"
extends = "paradex-2026"

[response]
pause_s = 300.0
"""

PLANTED = """name = "planted"
extends = "base.toml"

[network]
drop_rate = 0.01

[[network.partitions]]
start_s = 5.0
end_s = 20.0
groups = [[0], [1, 2, 3]]

[[network.crashes]]
node = 1
at_s = 20.0
restart_s = 25.0

[[network.crashes]]
node = 2
at_s = 200.0

[[network.crashes]]
node = 3
at_s = 200.0
"""


@pytest.fixture(scope="module", autouse=True)
def tree_on_pythonpath():
    """Spawned workers import this tree, as the test does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(ROOT))
        yield


@pytest.fixture()
def planted(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "base.toml").write_text(BASE)
    (folder / "planted.toml").write_text(PLANTED)
    return folder / "planted.toml"


def test_the_planted_cause_is_all_that_is_left(planted, tmp_path):
    original = scenarios.run(planted, small=True)
    assert original.checks["certificate"].status == "not_reached" and original.checks["halt"].status == "held"
    out = tmp_path / "out" / "shrunk.toml"
    out.parent.mkdir()
    lines: list[str] = []
    assert shrink_scenario(str(planted), check="certificate", seed=None, overrides={}, small=True,
                           out_path=str(out), workers=2, say=lines.append)
    shrunk = tomllib.loads(out.read_text())
    assert shrunk["extends"] == "../in/base.toml"  # the original's base, from where the file is
    assert set(shrunk) == {"name", "extends", "seed", "description", "network"}
    assert set(shrunk["network"]) == {"crashes"}  # no drop rate, no partition
    assert sorted(c["node"] for c in shrunk["network"]["crashes"]) == [2, 3]
    assert all("restart_s" not in c for c in shrunk["network"]["crashes"])
    said = "\n".join(lines)
    assert any(re.match(r"candidate \d+: .*: (still|does not) fail", line) for line in lines)
    assert not any(line.startswith("stopped at") for line in lines)  # finished well within its bounds
    for removed in ("network.drop_rate", "network.partitions[0]", "network.crashes[0]"):
        assert f"removed: {removed}" in said
    assert "could be anything: network.crashes[1].at_s" in said
    report = scenarios.run(out, small=True)  # the file alone replays the failure with the same seed
    assert report.seed == shrunk["seed"] == 2026
    assert report.checks["certificate"].status == "not_reached"
    # Not another failure: both crashes at 0 would stop the chain before the halt; the halt still holds.
    assert report.checks["halt"].status == "held"
    assert set(report.failed_checks) <= set(original.failed_checks)
    assert scenarios.load(out).response.pause_s == 300.0


def test_a_check_that_holds_on_the_original_is_exit_1(tmp_path):
    out = tmp_path / "shrunk.toml"
    result = CliRunner().invoke(main, ["shrink", "paradex-2026", "--check", "liveness", "--small", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "liveness is held on the original" in result.output and not out.exists()


def test_an_unknown_check_or_an_unwritable_out_is_exit_2(planted, tmp_path):
    result = CliRunner().invoke(main, ["shrink", str(planted), "--check", "bogus", "--small", "--workers", "1",
                                       "--out", str(tmp_path / "shrunk.toml")])
    assert result.exit_code == 2 and "--check" in result.output and "bogus" in result.output
    assert "certificate" in result.output  # it names the checks there are
    result = CliRunner().invoke(main, ["shrink", str(planted), "--check", "certificate", "--out",
                                       str(tmp_path / "missing" / "shrunk.toml")])
    assert result.exit_code == 2 and "--out" in result.output and len(result.output.strip().splitlines()) == 1


def test_the_candidate_bound_is_kept_and_a_file_still_written(planted, tmp_path):
    out = tmp_path / "shrunk.toml"
    lines: list[str] = []
    assert shrink_scenario(str(planted), check="certificate", seed=None, overrides={}, small=True, out_path=str(out),
                           workers=1, limits=ShrinkLimits(max_candidates=1), say=lines.append)
    assert "1 candidate run" in lines[-1]
    assert sum(line.startswith("candidate 1: ") for line in lines) == 1  # each candidate is told as it ends
    assert not any(line.startswith("candidate 2") for line in lines)
    assert lines[-2].startswith("stopped at --max-candidates 1: ")  # the bound is named, not a silent stop
    shrunk = tomllib.loads(out.read_text())  # nothing could be tried: every fault is still there
    assert len(shrunk["network"]["crashes"]) == 3 and shrunk["network"]["drop_rate"] == 0.01
