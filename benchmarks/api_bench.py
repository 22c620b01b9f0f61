"""Library benchmark: what small runs cost a property test, before and after the speed-ups.

Prints, measured side by side in one run (CPU seconds of the process doing the work):
  (a) a cold small run: a new process that imports l2sim and runs `paradex-2026 --small`;
      with the shipped compiled contracts, and with them hidden (compiling, as before);
  (b) a warm small run in a process that already ran one: with genesis reused, and with
      the kept genesis images dropped before each run (as before);
  (c) the size the tests used to run (200 accounts, 26 heights, 60 traders) against the
      small preset;
  (d) hypothesis examples a minute in one process: the README's property test.
Ratios are printed; nothing is asserted (targets: warm <= 1.5 s, cold <= 2x warm,
>= 30 examples a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

_CHILD = """
import json, sys, time
if sys.argv[1] == "compile":
    import chain.contracts, pathlib
    chain.contracts.SHIPPED_DIR = pathlib.Path("/nonexistent")  # and XDG_CACHE_HOME is empty
import scenarios
report = scenarios.run("paradex-2026", small=True)
print(json.dumps({"ok": report.ok, "digest": report.digest}))
"""

OLD_TEST_SIZE = {"chain.accounts": 200, "chain.heights": 26, "workload.traders": 60}


def _child_cpu_s(mode: str, cache: str | None = None) -> tuple[float, dict]:
    """CPU seconds (user + sys) of a new process doing one small run, with the user cache in
    `cache` (a new empty one when None: the first run ever on a machine)."""
    with tempfile.TemporaryDirectory() as fresh:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        env = dict(os.environ, XDG_CACHE_HOME=cache or fresh)
        out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=env,
                             check=True, timeout=900).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, json.loads(out)


def _warm_cpu_s(repeats: int, *, reuse_genesis: bool, overrides: dict | None = None) -> float:
    """Median CPU seconds of a small run in this (already warm) process."""
    import chain.genesis
    import scenarios

    scenarios.run("paradex-2026", small=True, overrides=overrides)  # warm: imports, caches, genesis
    times = []
    saved = os.environ.get("XDG_CACHE_HOME")
    try:
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as empty:
                if not reuse_genesis:  # the state before genesis reuse: every run builds its own
                    chain.genesis._images.clear()
                    os.environ["XDG_CACHE_HOME"] = empty  # and no image on disk either
                started = time.process_time()
                scenarios.run("paradex-2026", small=True, overrides=overrides)
                times.append(time.process_time() - started)
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    return sorted(times)[len(times) // 2]


def _examples_per_minute(examples: int) -> tuple[float, float]:
    """(examples a minute by wall clock, CPU seconds an example) of the README's property test."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    import scenarios
    from scenarios.strategies import byzantine_entries

    @settings(max_examples=examples, deadline=None, database=None)
    @given(delay=st.integers(0, 3), byzantine=byzantine_entries(4, min_faulty=1, max_faulty=1))
    def property_test(delay, byzantine):
        report = scenarios.run("paradex-2026", small=True,
                               overrides={"detection.delay_blocks": delay, "validators.byzantine": byzantine})
        assert report.restore is not None
        counted.append(1)

    counted: list[int] = []
    wall, cpu = time.perf_counter(), time.process_time()
    property_test()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 60.0 * len(counted) / wall, cpu / len(counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per measurement (median)")
    parser.add_argument("--examples", type=int, default=10, help="hypothesis examples for (d)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in this process: one example of (d); no ratios")
    args = parser.parse_args()
    if args.quick:
        per_minute, cpu_each = _examples_per_minute(1)
        print(f"quick: one property-test example, {cpu_each:.2f} s CPU")
        return

    cold, result = _child_cpu_s("shipped")
    cold_compiling, result_compiling = _child_cpu_s("compile")
    assert result == result_compiling, "compiling or not, the same report"
    with tempfile.TemporaryDirectory() as cache:
        _child_cpu_s("shipped", cache)  # the first run on this machine fills the user cache
        cold_cached, result_cached = _child_cpu_s("shipped", cache)
    assert result == result_cached, "with the genesis image or without, the same report"
    print(f"(a) cold small run (new process): {cold:.2f} s CPU with shipped contracts, "
          f"{cold_compiling:.2f} s compiling them; compiling costs {cold_compiling / cold:.2f}x; "
          f"{cold_cached:.2f} s once the user cache holds its genesis image")

    warm = _warm_cpu_s(args.repeats, reuse_genesis=True)
    warm_rebuilding = _warm_cpu_s(args.repeats, reuse_genesis=False)
    print(f"(b) warm small run: {warm:.2f} s CPU reusing genesis, {warm_rebuilding:.2f} s building it each time; "
          f"reuse is {warm_rebuilding / warm:.2f}x faster; cold/warm = {cold / warm:.2f} on a first run ever, "
          f"{cold_cached / warm:.2f} with the user cache filled (target <= 2)")

    old_size = _warm_cpu_s(args.repeats, reuse_genesis=False, overrides=OLD_TEST_SIZE)
    print(f"(c) the tests' old size without reuse: {old_size:.2f} s CPU; small preset with reuse is "
          f"{old_size / warm:.2f}x cheaper (target: warm <= 1.5 s)")

    per_minute, cpu_each = _examples_per_minute(args.examples)
    print(f"(d) README property test: {per_minute:.1f} examples a minute (wall), {cpu_each:.2f} s CPU an example "
          f"(target >= 30 a minute)")
    print(f"reproduce with: python benchmarks/api_bench.py --repeats {args.repeats} --examples {args.examples}")


if __name__ == "__main__":
    main()
