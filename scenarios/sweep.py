"""Sweeps: one scenario run over the cartesian product of `--set` values times N seeds.

Each run is one task of a pool: a local pool of spawned processes by default, or a Dask
distributed cluster (an existing one by address, or a `LocalCluster`). Retries are off (a
run is deterministic; a lost worker is reported, not hidden). Every finished run is
written to `DIR/runs/KEY.json` as soon as it arrives, keyed by the sha256 of the resolved
scenario, the seed and the code version, so a sweep that is interrupted resumes without
rerunning what finished. `DIR/results.csv` and `DIR/summary.html` are rebuilt from those
files at the end, in run order.

A run's seed is `derive_seed(master_seed, "sweep", k)` for its seed index k in 0..N-1: every
point of the product sees the same N seeds (a paired comparison across values), and a row
is replayed alone by the `l2sim run` command it carries.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import importlib.metadata
import io
import itertools
import json
import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed as futures_as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.api import format_reproduce
from scenarios.checks import order_checks
from scenarios.errors import InvalidValueError, OutputPathError, ScenarioError, UsedDataDirError, format_value
from scenarios.loader import format_set_options, load_scenario, parse_set_options
from scenarios.seeds import derive_seed
from scenarios.datadir import LOCK_NAME, hold_lock
from scenarios.output import check_output_file, write_text_atomic
from scenarios.schema import Scenario

RUNS_DIR = "runs"
MANIFEST_NAME = "sweep.json"
CSV_NAME = "results.csv"
HTML_NAME = "summary.html"
MAX_RUNS = 100_000  # a product bigger than this is a typo, not a sweep
SOURCE_PACKAGES = ("chain", "consensus", "validators", "scenarios")
SOURCE_SUFFIXES = (".py", ".vy", ".toml")
METRIC_COLUMNS = ("liquidated_accounts", "halt_height", "certificate_power", "compensation_total")


class SchedulerError(ScenarioError):
    """Raised when `--scheduler` is neither `tcp://HOST:PORT` nor `local`, or cannot be reached."""


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep: where it sits in the product, what it runs, and how to replay it."""

    index: int
    seed: int
    values: tuple[tuple[str, Any], ...]  # every --set key, in command-line order, with this run's value
    scenario_json: str  # the resolved scenario, seed included
    key: str  # sha256 of (resolved scenario, seed, code version): the name of its result file
    reproduce: str


@dataclass(frozen=True)
class SweepPlan:
    """Every run of a sweep, in run order."""

    scenario: str
    keys: tuple[str, ...]
    varied: tuple[str, ...]  # the keys given more than one value
    tasks: tuple[RunTask, ...]
    code_version: str


def split_values(text: str) -> list[str]:
    """`1,2,[3, 4]` -> `["1", "2", "[3, 4]"]`: commas split only outside brackets, braces and quotes."""
    parts, current, depth, quote, escaped = [], [], 0, None, False
    for c in text:
        if quote is not None:
            current.append(c)
            if escaped:
                escaped = False
            elif c == "\\" and quote == '"':  # a basic string's escape: the next character is data
                escaped = True
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            current.append(c)
        elif c in "[{":
            depth += 1
            current.append(c)
        elif c in "]}":
            depth -= 1
            current.append(c)
        elif c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_sweep_options(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """`--set KEY=V1,V2,...` options: each dotted key with its list of values (TOML syntax each)."""
    axes: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValueError(f"{format_value(pair)} is not KEY=V1,V2,...", file="--set", value=pair)
        if key in axes:
            raise InvalidValueError("set twice (list every value in one --set)", file="--set", field=key,
                                    value=text)
        values = []
        for part in split_values(text):
            if not part:
                raise InvalidValueError(f"{format_value(text)} has an empty value", file="--set", field=key,
                                        value=text)
            values.append(parse_set_options([f"{key}={part}"])[key])
        axes[key] = values
    return axes


@functools.cache
def compute_code_version() -> str:
    """l2sim's version and a hash of its sources (.py, .vy, .toml): a result from other code is not reused."""
    try:
        version = importlib.metadata.version("l2sim")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        root = Path(__import__(package).__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return f"{version}+{digest.hexdigest()[:16]}"


def compute_run_key(scenario_json: str, seed: int, code_version: str) -> str:
    """The cache key of one run: sha256 of the resolved scenario, the seed and the code version."""
    text = json.dumps({"scenario": json.loads(scenario_json), "seed": seed, "code": code_version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_sweep(scenario: str, *, seeds: int, axes: Mapping[str, Sequence[Any]], small: bool = False,
               master_seed: int | None = None) -> SweepPlan:
    """Every run of the sweep, each scenario loaded and validated before anything runs."""
    if seeds < 1:
        raise InvalidValueError(f"{seeds} must be at least 1", file="--seeds", value=seeds)
    keys = tuple(axes)
    count = seeds
    for key in keys:
        count *= len(axes[key])
    if count > MAX_RUNS:
        raise InvalidValueError(f"{count} runs is more than {MAX_RUNS}", file="--seeds", value=count)
    code_version = compute_code_version()
    base = load_scenario(scenario, small=small)
    master = base.seed if master_seed is None else master_seed
    tasks = []
    for point in itertools.product(*(axes[k] for k in keys)):
        overrides = dict(zip(keys, point, strict=True))
        resolved = load_scenario(scenario, overrides=overrides, small=small, overrides_label="--set")
        for k in range(seeds):
            seed = derive_seed(master, "sweep", k)  # 64 bits: always within MAX_SEED
            scenario_json = resolved.model_copy(update={"seed": seed}).model_dump_json()
            tasks.append(RunTask(
                index=len(tasks), seed=seed, values=tuple(overrides.items()), scenario_json=scenario_json,
                key=compute_run_key(scenario_json, seed, code_version),
                reproduce=format_reproduce(scenario, seed, small=small, set_options=format_set_options(overrides)),
            ))
    varied = tuple(k for k in keys if len(axes[k]) > 1)
    return SweepPlan(scenario=scenario, keys=keys, varied=varied, tasks=tuple(tasks), code_version=code_version)


# ----------------------------------------------------------------------------- one run, in a worker


def execute_run(scenario_json: str, seed: int) -> dict[str, Any]:
    """Run one resolved scenario (in a worker process): its report and the worker's code version."""
    import scenarios

    report = scenarios.run(Scenario.model_validate_json(scenario_json), seed=seed)
    return {"report": report.to_dict(), "code_version": compute_code_version()}


# ----------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class Outcome:
    """What came back for one task: the worker's result, or why there is none."""

    result: dict[str, Any] | None
    error: str | None = None


class LocalPool:
    """A pool of spawned processes (`concurrent.futures`), one run a task."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def run_all(self, args: Sequence[tuple[str, int]]) -> Iterator[tuple[int, Outcome]]:
        """(position in `args`, outcome) for every task, in the order they finish."""
        futures = {self._executor.submit(execute_run, *a): i for i, a in enumerate(args)}
        for future in futures_as_completed(futures):
            yield futures[future], _get_outcome(future)

    def close(self) -> None:
        """Stop the workers (a task still running is abandoned)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


class DaskPool:
    """The same tasks on a Dask distributed cluster: an existing one, or a `LocalCluster`."""

    def __init__(self, scheduler: str, workers: int):
        import dask
        from distributed import Client, LocalCluster

        self._cluster = None
        self._client = None
        logging.getLogger("distributed").setLevel(logging.ERROR)
        try:
            if scheduler == "local":
                # A task is deterministic: running it again where a worker died would only hide the
                # loss (the scheduler reads this when it starts; a remote one keeps its own setting).
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=None, silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
            else:
                self._client = Client(scheduler, timeout="10s")
        except OSError as error:
            self.close()
            raise SchedulerError(f"cannot reach {scheduler}: {error}", file="--scheduler", value=scheduler) from None
        except RuntimeError as error:  # a LocalCluster whose worker died while it started
            self.close()
            raise SchedulerError(f"cannot start a LocalCluster: {error}", file="--scheduler", value=scheduler) from None
        self.workers = workers if scheduler == "local" else max(1, len(self._client.scheduler_info()["workers"]))

    def run_all(self, args: Sequence[tuple[str, int]]) -> Iterator[tuple[int, Outcome]]:
        """(position in `args`, outcome) for every task, in the order they finish."""
        from distributed import as_completed

        futures = [self._client.submit(execute_run, *a, pure=False, retries=0) for a in args]
        positions = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            yield positions[future.key], _get_outcome(future)

    def close(self) -> None:
        """Disconnect, and stop the cluster when this pool started it."""
        with contextlib.suppress(Exception):  # a client whose scheduler went away closes with errors
            if self._client is not None:
                self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _get_outcome(future: Any) -> Outcome:
    try:
        return Outcome(future.result())
    except BrokenProcessPool:
        return Outcome(None, "lost: a worker process died")
    except Exception as error:  # the run's own failure is data for its row; the sweep goes on
        name = type(error).__name__
        if name == "KilledWorker":
            return Outcome(None, "lost: the Dask worker running it died")
        return Outcome(None, f"error: {name}: {' '.join(str(error).split())[:300]}")


def check_scheduler(scheduler: str | None) -> None:
    """Refuse a `--scheduler` that is neither `local` nor `tcp://HOST:PORT`."""
    if scheduler is None or scheduler == "local":
        return
    host, sep, port = scheduler.removeprefix("tcp://").rpartition(":")
    if not scheduler.startswith("tcp://") or not sep or not host or not port.isdigit():
        raise SchedulerError(f"{format_value(scheduler)} is not tcp://HOST:PORT or local", file="--scheduler",
                             value=scheduler)


@contextlib.contextmanager
def open_pool(workers: int | None, scheduler: str | None) -> Iterator[LocalPool | DaskPool]:
    """The executor of `--workers` / `--scheduler`, closed on the way out whatever happens."""
    check_scheduler(scheduler)
    count = workers or os.cpu_count() or 1
    pool = LocalPool(count) if scheduler is None else DaskPool(scheduler, count)
    try:
        yield pool
    except BaseException:
        # Ctrl-C while the executor starts its manager thread leaves a pool that cannot close
        # ("cannot join thread before it is started"): the first error is the one to report, and
        # the signal handler has already stopped the workers.
        with contextlib.suppress(Exception):
            pool.close()
        raise
    pool.close()


# ----------------------------------------------------------------------------- the output directory


def check_out_dir(path: str) -> None:
    """Refuse an `--out` directory that holds anything but a sweep (a sweep there is resumed)."""
    directory = Path(path)
    if not directory.exists():
        check_output_file(path, "--out")  # its parent exists and takes new entries
        return
    if not directory.is_dir():
        raise OutputPathError("is not a directory", file=path, field="--out")
    if any(p.name != LOCK_NAME for p in directory.iterdir()) and not (directory / MANIFEST_NAME).is_file():
        raise UsedDataDirError("is not empty and holds no sweep; give a new or empty directory", file=path,
                               field="--out")
    check_output_file(str(directory / MANIFEST_NAME), "--out")


def read_cached(out_dir: Path, task: RunTask) -> dict[str, Any] | None:
    """The finished result of `task` in `out_dir`, or None (a torn or foreign file counts as none)."""
    path = out_dir / RUNS_DIR / f"{task.key}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == task.key else None


def make_record(task: RunTask, plan: SweepPlan, result: dict[str, Any]) -> dict[str, Any]:
    """What `DIR/runs/KEY.json` holds: the run's identity and its whole report."""
    return {"key": task.key, "seed": task.seed, "code_version": plan.code_version,
            "scenario": json.loads(task.scenario_json), "report": result["report"]}


# ----------------------------------------------------------------------------- rows


def format_cell(value: Any) -> str:
    """A value as a CSV cell: strings bare, everything else as TOML text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return format_set_options({"v": value})[0].partition("=")[2]


def compute_row(task: RunTask, plan: SweepPlan, record: dict[str, Any] | None, error: str | None,
                checks: Sequence[str]) -> dict[str, str]:
    """One CSV row: the run's identity, its checks, digest and key metrics (empty when it did not run)."""
    row = {"run": str(task.index), "scenario": plan.scenario, "seed": str(task.seed)}
    row.update({key: format_cell(value) for key, value in task.values})
    report = record["report"] if record is not None else None
    row["ok"] = "" if report is None else ("true" if all(c["ok"] for c in report["checks"].values()) else "false")
    for name in checks:
        row[f"check.{name}"] = "" if report is None else report["checks"].get(name, {}).get("status") or ""
    row["digest"] = "" if report is None else report["digest"]
    metrics = compute_metrics(report) if report is not None else {}
    for name in METRIC_COLUMNS:
        row[name] = format_cell(metrics.get(name))
    row["wall_s"] = "" if report is None else format_cell(report["metrics"]["wall_s"])
    row["error"] = error or ""
    row["reproduce"] = task.reproduce
    return row


def compute_metrics(report: Mapping[str, Any]) -> dict[str, int | None]:
    """The key numbers of a report: liquidated accounts, halt height, certificate power, compensation."""
    restore = report.get("restore")
    return {
        "liquidated_accounts": len(report["incident"]["liquidated_accounts"]),
        "halt_height": report["incident"]["halt_height"],
        "certificate_power": restore["certificate"]["power"] if restore else None,
        "compensation_total": report["compensation"]["total"],
    }


def render_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """The rows as CSV text (header from the first row; every row has the same columns)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    """What a sweep did: runs found finished, runs executed now, and those that did not run."""

    rows: list[dict[str, str]]
    cached: int = 0
    executed: int = 0
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def is_complete(self) -> bool:
        """True when every run of the plan has a result (failed checks are results)."""
        return not self.errors


def run_sweep(plan: SweepPlan, out_dir: str, *, workers: int | None = None, scheduler: str | None = None,
              on_progress: Any = None) -> SweepResult:
    """Run every task of `plan` not finished in `out_dir`, then write results.csv and summary.html.

    `on_progress(done, total)` is called as results arrive. One sweep at a time owns `out_dir`
    (`scenarios.datadir.hold_lock`): a second one is refused, naming the first one's pid.
    """
    check_out_dir(out_dir)
    directory = Path(out_dir)
    is_new = not directory.exists()
    directory.mkdir(exist_ok=True)
    try:
        with hold_lock(directory / LOCK_NAME, target=out_dir, option="--out"):
            return _run_sweep_held(plan, out_dir, workers=workers, scheduler=scheduler, on_progress=on_progress)
    except SchedulerError:
        if is_new:  # an unreachable cluster: leave no half-made sweep behind (nothing ran)
            with contextlib.suppress(OSError):
                (directory / RUNS_DIR).rmdir()  # only when empty
                (directory / MANIFEST_NAME).unlink()
                directory.rmdir()
        raise


def _run_sweep_held(plan: SweepPlan, out_dir: str, *, workers: int | None, scheduler: str | None,
                    on_progress: Any) -> SweepResult:
    check_out_dir(out_dir)
    check_scheduler(scheduler)
    directory = Path(out_dir)
    (directory / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / MANIFEST_NAME, json.dumps(
        {"scenario": plan.scenario, "keys": list(plan.keys), "runs": len(plan.tasks),
         "code_version": plan.code_version}, indent=2) + "\n")
    records: dict[int, dict[str, Any]] = {}
    for task in plan.tasks:
        record = read_cached(directory, task)
        if record is not None:
            records[task.index] = record
    result = SweepResult(rows=[], cached=len(records))
    todo = [t for t in plan.tasks if t.index not in records]
    if on_progress is not None:
        on_progress(len(records), len(plan.tasks))
    if todo:
        with open_pool(workers, scheduler) as pool:
            for position, outcome in pool.run_all([(t.scenario_json, t.seed) for t in todo]):
                task = todo[position]
                error = outcome.error
                if outcome.result is not None and outcome.result["code_version"] != plan.code_version:
                    error = f"error: the worker runs l2sim {outcome.result['code_version']}, not {plan.code_version}"
                if error is None:
                    record = make_record(task, plan, outcome.result)
                    write_text_atomic(directory / RUNS_DIR / f"{task.key}.json", json.dumps(record, sort_keys=True))
                    records[task.index] = record
                    result.executed += 1
                else:
                    result.errors[task.index] = error
                if on_progress is not None:
                    on_progress(len(records) + len(result.errors), len(plan.tasks))
    # One column order whatever order runs finished in or came back from disk (sorted-key JSON).
    checks = order_checks(name for record in records.values() for name in record["report"]["checks"])
    result.rows = [compute_row(t, plan, records.get(t.index), result.errors.get(t.index), checks) for t in plan.tasks]
    write_text_atomic(directory / CSV_NAME, render_csv(result.rows))
    write_text_atomic(directory / HTML_NAME, render_summary_html(plan, result.rows, checks))
    return result


# ----------------------------------------------------------------------------- summary.html

CHART_W, CHART_H, CHART_PAD = 420, 180, 44
CHART_TITLES = {"held": "fraction of runs whose checks held", "liquidated_accounts": "liquidated accounts",
                "halt_height": "halt height", "certificate_power": "certificate power",
                "compensation_total": "compensation total (USD)"}
DISTRIBUTION_METRICS = ("liquidated_accounts", "compensation_total", "certificate_power", "halt_height")
MAX_LABEL_CHARS = 14  # a longer value is drawn as a short name (v1, v2, ...) and spelled out in a legend
MAX_BINS = 10


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _open_svg() -> list[str]:
    return [f'<svg class="chart" width="{CHART_W}" height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" '
            'xmlns="http://www.w3.org/2000/svg">']


def draw_chart(labels: Sequence[str], series: Sequence[Sequence[float]], *, bars: bool) -> str:
    """An SVG chart, one column per label: each run a dot and the mean a line (or, with `bars`, the mean a bar).

    A label with an empty column (no run of it ran) draws nothing: a missing run is not a zero.
    Integer coordinates in a fixed order, so the same rows give the same bytes."""
    from markupsafe import escape

    values = [v for column in series for v in column]
    top = max([1.0 if bars else 0.0, *values]) or 1.0
    x_step = (CHART_W - 2 * CHART_PAD) / max(1, len(labels))

    def x(i: int) -> int:
        return round(CHART_PAD + x_step * (i + 0.5))

    def y(v: float) -> int:
        return round(CHART_H - CHART_PAD + (v / top) * -(CHART_H - 2 * CHART_PAD + 20))

    parts = [*_open_svg(),
             f'<line class="axis" x1="{CHART_PAD}" y1="{y(0)}" x2="{CHART_W - 8}" y2="{y(0)}"/>',
             f'<text class="tick" x="4" y="{y(top) + 4}">{escape(_format_number(top))}</text>',
             f'<text class="tick" x="4" y="{y(0) + 4}">0</text>']
    means = []
    for i, (label, column) in enumerate(zip(labels, series, strict=True)):
        parts.append(f'<text class="tick" x="{x(i)}" y="{CHART_H - 14}" text-anchor="middle">{escape(label)}</text>')
        if not column:
            parts.append(f'<text class="tick missing" x="{x(i)}" y="{y(0) - 6}" text-anchor="middle">no run</text>')
            continue
        mean = sum(column) / len(column)
        means.append((x(i), y(mean)))
        if bars:
            width = max(4, round(x_step * 0.5))
            parts.append(f'<rect class="bar" x="{x(i) - width // 2}" y="{y(mean)}" width="{width}" '
                         f'height="{y(0) - y(mean)}"><title>{escape(_format_number(mean))}</title></rect>')
        else:
            for v in column:
                parts.append(f'<circle class="dot" cx="{x(i)}" cy="{y(v)}" r="3"><title>{escape(_format_number(v))}'
                             '</title></circle>')
    if not bars and len(means) > 1:
        points = " ".join(f"{a},{b}" for a, b in means)
        parts.append(f'<polyline class="mean" points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)


def draw_histogram(values: Sequence[float]) -> str:
    """An SVG histogram of `values` (one run each): up to MAX_BINS equal bins from the least to the most,
    each bar's height its count; the median marked. Integer coordinates, so the same values give the same bytes."""
    from markupsafe import escape

    low, high = min(values), max(values)
    bins = 1 if high == low else min(MAX_BINS, len(set(values)))
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    top = max(counts)
    bar_w = (CHART_W - 2 * CHART_PAD) / bins
    base = CHART_H - CHART_PAD

    def height(count: int) -> int:
        return round(count / top * (CHART_H - 2 * CHART_PAD))

    parts = [*_open_svg(), f'<line class="axis" x1="{CHART_PAD}" y1="{base}" x2="{CHART_W - 8}" y2="{base}"/>',
             f'<text class="tick" x="4" y="{base - height(top) + 4}">{top}</text>',
             f'<text class="tick" x="4" y="{base + 4}">0</text>']
    for i, count in enumerate(counts):
        left = round(CHART_PAD + i * bar_w)
        edge = low + i * width
        title = f"{count} run{'' if count == 1 else 's'} from {_format_number(edge)} to {_format_number(edge + width)}"
        parts.append(f'<rect class="hist" x="{left + 1}" y="{base - height(count)}" width="{max(2, round(bar_w) - 2)}" '
                     f'height="{height(count)}" data-count="{count}"><title>{escape(title)}</title></rect>')
    ordered = sorted(values)
    median = (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
    mx = round(CHART_PAD + (median - low) / (width * bins) * (CHART_W - 2 * CHART_PAD)) if high > low else CHART_W // 2
    parts += [f'<line class="median" x1="{mx}" y1="{CHART_PAD - 10}" x2="{mx}" y2="{base}"/>',
              f'<text class="tick" x="{CHART_PAD}" y="{CHART_H - 14}">{escape(_format_number(low))}</text>',
              f'<text class="tick" x="{CHART_W - 8}" y="{CHART_H - 14}" text-anchor="end">'
              f'{escape(_format_number(high))}</text>',
              f'<text class="tick" x="{mx}" y="{CHART_PAD - 14}" text-anchor="middle">median '
              f'{escape(_format_number(median))}</text>', "</svg>"]
    return "".join(parts)


def _format_number(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.2f}"


def _metric_values(rows: Iterable[Mapping[str, str]], metric: str) -> list[float]:
    """The metric's numbers over the rows that ran and have it; compensation in dollars, not wei."""
    scale = 1e18 if metric == "compensation_total" else 1.0
    numbers = (_number(r[metric]) for r in rows if r["ok"] and r[metric])
    return [n / scale for n in numbers if n is not None]


def compute_charts(plan: SweepPlan, rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Per varied key: its values (a legend for long ones, runs that ran and did not), and per metric and
    for the held fraction one chart. A sweep over seeds only gets one section: each metric's distribution."""
    from markupsafe import Markup

    ran = [r for r in rows if r["ok"]]
    sections = []
    for key in plan.varied:
        values: list[str] = []
        for r in rows:
            if r[key] not in values:
                values.append(r[key])
        short = any(len(v) > MAX_LABEL_CHARS for v in values)
        labels = [f"v{i + 1}" if short else v for i, v in enumerate(values)]
        legend = [{"label": label, "value": value, "ran": sum(1 for r in ran if r[key] == value),
                   "missing": sum(1 for r in rows if r[key] == value and not r["ok"])}
                  for label, value in zip(labels, values, strict=True)]
        charts = []
        for metric in ("held", *METRIC_COLUMNS):
            series = []
            for value in values:
                column = [r for r in ran if r[key] == value]
                if metric == "held":
                    series.append([1.0 if r["ok"] == "true" else 0.0 for r in column])
                else:
                    series.append(_metric_values(column, metric))
            charts.append({"title": CHART_TITLES[metric],
                           "svg": Markup(draw_chart(labels, series, bars=metric == "held"))})
        sections.append({"key": key, "title": f"By {key}", "legend": legend, "charts": charts,
                         "note": "Each dot is one run; the line joins the means. The green bars are the fraction "
                                 "of runs whose checks all held."})
    if not plan.varied and ran:
        charts = [{"title": f"{CHART_TITLES[metric]}: {len(values)} runs",
                   "svg": Markup(draw_histogram(values))}
                  for metric in DISTRIBUTION_METRICS if (values := _metric_values(ran, metric))]
        sections.append({"key": "seed", "title": "Across seeds", "legend": [], "charts": charts,
                         "note": "Each bar counts the runs (one per seed) whose value falls in its range; "
                                 "the line marks the median. Runs that did not run are not counted."})
    return sections


def render_summary_html(plan: SweepPlan, rows: Sequence[Mapping[str, str]], checks: Sequence[str]) -> str:
    """The offline summary page of a sweep (no network fetch: the SVG is drawn here)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("scenarios", "templates"), autoescape=True, undefined=StrictUndefined)
    held = {name: sum(1 for r in rows if r[f"check.{name}"] in ("held", "exempt")) for name in checks}
    return env.get_template("sweep.html.j2").render(
        plan=plan, rows=rows, checks=checks, held=held, sections=compute_charts(plan, rows),
        ran=sum(1 for r in rows if r["ok"]), failing=[r for r in rows if r["ok"] == "false"],
        missing=[r for r in rows if not r["ok"]])
