"""Every script in benchmarks/ runs to its end with its smallest settings (nothing timed,
no threshold asserted): a refactor that breaks a benchmark fails here, not months later.

The scripts run in this process (imports and the genesis images are shared), each as
`__main__` with its own argv. A script added to benchmarks/ without an entry here fails
`test_every_benchmark_has_a_smoke_run`.
"""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SMALL_SCENARIO = 'name = "small"\n'  # the schema's defaults: the smallest world a run takes

# script -> its smallest arguments ({tmp} is a fresh folder; the sweep's is kept for the table)
SMOKE_ARGS = {
    "api_bench.py": ["--quick"],
    "chain_bench.py": ["--quick"],
    "consensus_bench.py": ["--sizes", "4", "--heights", "2"],
    "exchange_bench.py": ["--count", "3"],
    "mutation_consensus.py": ["--plant-only"],
    "run_bench.py": ["{tmp}/small.toml", "--quick"],
    "sweep_bench.py": ["--quick", "--out", "{tmp}/sweep"],
    "calibration_table.py": ["{tmp}/sweep"],  # reads the folder sweep_bench.py kept
    "validators_bench.py": ["--counts", "4", "--heights", "1"],
}


def _run_script(name: str, argv: list[str], monkeypatch) -> int:
    """Run benchmarks/`name` as __main__ with `argv`; returns its exit status (0 when it returns)."""
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / name), *argv])
    try:
        runpy.run_path(str(BENCHMARKS / name), run_name="__main__")
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_every_benchmark_has_a_smoke_run():
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(SMOKE_ARGS)


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory) -> Path:
    """One folder for the module: the small scenario file, and the sweep the table reads."""
    folder = tmp_path_factory.mktemp("benchmarks")
    (folder / "small.toml").write_text(SMALL_SCENARIO)
    return folder


@pytest.mark.parametrize("name", list(SMOKE_ARGS))  # in order: the table reads the sweep's folder
def test_benchmark_runs_with_its_smallest_settings(name, shared_folder, monkeypatch, capsys):
    status = _run_script(name, [a.format(tmp=shared_folder) for a in SMOKE_ARGS[name]], monkeypatch)
    out = capsys.readouterr().out
    assert status == 0, f"{name} exited {status}:\n{out}"
    assert out.strip(), f"{name} printed nothing"
