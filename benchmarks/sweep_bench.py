"""Sweep benchmark: the same sweep on two workers against one, and what each worker holds.

Prints, measured side by side in one run: the wall seconds of one small sweep
(`paradex-2026 --small`, detection.delay_blocks over two values times --seeds seeds) on a
pool of one worker and on a pool of two (each from a new, empty output directory, so pool
start-up is counted), their ratio (target: at least 1.8 on 2 cores), and the peak resident
memory (RSS) of each worker process, sampled while the sweep runs. `--scheduler local`
measures a Dask LocalCluster instead of the local process pool. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # spawned workers import this tree

from scenarios.sweep import plan_sweep, run_sweep  # noqa: E402


def _sample_workers(stop: threading.Event, peaks: dict[int, int], cpu: dict[int, float]) -> None:
    """Peak RSS and CPU seconds by pid of every process below this one, every 0.2 s until `stop`."""
    me = psutil.Process()
    while not stop.wait(0.2):
        for child in me.children(recursive=True):
            try:
                peaks[child.pid] = max(peaks.get(child.pid, 0), child.memory_info().rss)
                times = child.cpu_times()
                cpu[child.pid] = max(cpu.get(child.pid, 0.0), times.user + times.system)
            except psutil.Error:
                continue


def measure(seeds: int, workers: int, scheduler: str | None, keep: Path | None = None,
            delays: tuple[int, ...] = (1, 3)) -> tuple[float, dict[int, int], float]:
    """(wall seconds, peak RSS by worker pid, CPU seconds of the workers) of the sweep on `workers` workers;
    the sweep's folder is kept at `keep` when given (a new, empty one otherwise, removed after)."""
    plan = plan_sweep("paradex-2026", seeds=seeds, axes={"detection.delay_blocks": list(delays)}, small=True)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_workers, args=(stop, peaks, cpu), daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_sweep(plan, str(keep or Path(out) / "sweep"), workers=workers, scheduler=scheduler)
        wall_s = time.perf_counter() - started
    stop.set()
    sampler.join()
    assert result.is_complete, result.errors
    # Helpers (the resource tracker, Dask's nannies) hold far less than a worker that ran a scenario.
    biggest = dict(sorted(peaks.items(), key=lambda item: -item[1])[:workers])
    return wall_s, biggest, sum(cpu.values())


def main() -> None:
    """Run the sweep on one worker, then on two, and print the ratio and the memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds per value (runs = 2 x seeds)")
    parser.add_argument("--scheduler", default=None, help="'local' for a Dask LocalCluster")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one run on one worker, no ratio")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the sweep's folder here (one worker's run), e.g. for calibration_table.py")
    args = parser.parse_args()
    if args.quick:
        one_s, one_rss, _ = measure(1, 1, args.scheduler, args.out, delays=(1,))
        print(f"quick: 1 run on 1 worker in {one_s:.1f} s, peak RSS "
              + ", ".join(f"{rss / 2**20:.0f} MiB" for rss in one_rss.values()))
        return
    runs = 2 * args.seeds
    print(f"sweep: paradex-2026 --small, {runs} runs, {'Dask LocalCluster' if args.scheduler else 'local pool'}, "
          f"{os.cpu_count()} cores")
    # Other processes on the machine take cores from the two workers: say how busy it was.
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    one_s, one_rss, one_cpu = measure(args.seeds, 1, args.scheduler, args.out)
    print(f"load average between: {os.getloadavg()[0]:.2f}")
    two_s, two_rss, two_cpu = measure(args.seeds, 2, args.scheduler)
    # CPU seconds of the workers over wall seconds: how many cores the pool got (at most its size).
    print(f"1 worker : {one_s:6.1f} s  ({one_s / runs:.2f} s a run; cores used {one_cpu / one_s:.2f})")
    print(f"2 workers: {two_s:6.1f} s  ({two_s / runs:.2f} s a run; cores used {two_cpu / two_s:.2f})")
    print(f"speed-up with 2 workers: {one_s / two_s:.2f}x (target >= 1.8 on 2 cores)")
    for label, peaks in (("1 worker", one_rss), ("2 workers", two_rss)):
        print(f"peak RSS per worker ({label}): " + ", ".join(f"{rss / 2**20:.0f} MiB" for rss in peaks.values()))


if __name__ == "__main__":
    main()
