"""The Python API: load a scenario, run it, get the report as a typed value.

    import scenarios

    scenario = scenarios.load("paradex-2026", small=True, overrides={"detection.delay_blocks": 1})
    report = scenarios.run(scenario, seed=7)
    assert report.ok, report.failed_checks

A scenario is named by a bundled name, a TOML path, a TOML-shaped dict (as a file would
hold it, `name` included) or a `Scenario`. `overrides` maps dotted keys of the scenario
file to values, as `l2sim run --set KEY=VALUE` does; `small=True` is `--small`. Bad input
raises a `ScenarioError` whose message is the one line `l2sim` prints. `run` returns the
same report, with the same digest, as `l2sim run --json`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chain.files import get_user_cache_dir
from scenarios.datadir import claim_optional_data_dir
from scenarios.errors import InvalidValueError, OutOfRangeError, UsedDataDirError, WrongTypeError, format_value
from scenarios.loader import dump_scenario, format_set_options, load_scenario, load_scenario_table
from scenarios.output import check_output_paths, get_path_argument, write_text_atomic
from scenarios.report_model import Report
from scenarios.schema import MAX_SEED, Scenario

ScenarioSource = Scenario | str | os.PathLike[str] | Mapping[str, Any]


DataDirInUseError = UsedDataDirError
"""Raised when `run(data_dir=...)` is given a directory that already holds a run (or other files)."""


def load(
    scenario: ScenarioSource, *, overrides: Mapping[str, Any] | None = None, small: bool = False
) -> Scenario:
    """The resolved, validated scenario: defaults filled in, `extends` followed, then the small
    preset and `overrides` applied."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise WrongTypeError(f"{format_value(repr(overrides))} is not a mapping of dotted keys to values",
                             field="overrides", value=overrides)
    if not isinstance(small, bool):
        raise WrongTypeError(f"{format_value(repr(small))} is not true or false", field="small", value=small)
    if isinstance(scenario, Scenario):
        if not overrides and not small:
            return scenario
        data = scenario.model_dump(mode="python", exclude_none=True, exclude={"extends"})  # already resolved
        return load_scenario_table(data, overrides=overrides, small=small, label=f"<Scenario {scenario.name}>")
    if isinstance(scenario, Mapping):
        return load_scenario_table(scenario, overrides=overrides, small=small)
    if not isinstance(scenario, (str, os.PathLike)):
        raise InvalidValueError(
            f"{format_value(repr(scenario))} is not a scenario name, path, dict or Scenario", value=scenario
        )
    return load_scenario(scenario, overrides=overrides, small=small)


def run(
    scenario: ScenarioSource,
    *,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    small: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    events: str | os.PathLike[str] | None = None,
) -> Report:
    """Run a scenario to the end and return its report (`report.ok`: every check held).

    `seed` replaces the scenario's seed. `data_dir` saves the run there for
    `l2sim inspect` and `l2sim report` (it must not hold a saved run already). `events`
    writes the event log (JSON Lines) to that path; recording it never changes the report.
    """
    resolved = load(scenario, overrides=overrides, small=small)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise OutOfRangeError(f"{format_value(seed)} is not an integer in 0..{MAX_SEED}", field="seed", value=seed)
        resolved = resolved.model_copy(update={"seed": seed})

    data_path = get_path_argument(data_dir, "data_dir")
    events_path = get_path_argument(events, "events")
    check_output_paths({"events": events_path}, data_dir=data_path, data_dir_option="data_dir")

    from scenarios.events import EventLog, write_events
    from scenarios.inspect import finish_saved_run
    from scenarios.report import build_report  # the runner loads the chain: only running needs it
    from scenarios.runner import run_scenario_once

    log = EventLog() if events is not None or data_path is not None else None
    with claim_optional_data_dir(data_path, force=False, option="data_dir"):
        done, virtual_s, wall_s = run_scenario_once(resolved, data_dir=data_path, events=log)
        try:
            data = build_report(done, virtual_s, wall_s)
        finally:
            if data_path is not None:
                done.store.close()
        report = Report.model_validate(data)
        command = None
        if isinstance(scenario, (str, os.PathLike)):
            command = format_reproduce(os.fspath(scenario), resolved.seed, small=small,
                                       set_options=format_set_options(overrides or {}))
        elif data_path is not None or not report.ok:  # a dict or a Scenario has no file to name: write one
            command = format_reproduce(os.fspath(save_replay_file(resolved)), resolved.seed, small=False,
                                       set_options=())
        if data_path is not None:  # as `l2sim run --data-dir` saves it: the report without `reproduce`
            finish_saved_run(data_path, data, {n.index: n.view.history.height for n in done.nodes},
                             log.get_ordered(), reproduce=command)
    if events is not None:
        write_events(log.get_ordered(), events)
    if not report.ok:
        report = Report.model_validate({**report.to_dict(), "reproduce": command})
    return report.with_scenario(dump_scenario(resolved))


def save_replay_file(resolved: Scenario) -> Path:
    """The resolved scenario as a TOML file that `l2sim run FILE --seed N` replays: under the
    user cache (`~/.cache/l2sim/replay`, else the system's temporary folder), named by its
    content, so one failing scenario is one file however often it fails."""
    text = dump_scenario(resolved)
    directory = get_user_cache_dir("replay")
    if not directory.is_absolute():
        directory = Path(tempfile.gettempdir()) / "l2sim-replay"
    path = directory / f"{resolved.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.toml"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return path


def format_reproduce(scenario: str, seed: int, *, small: bool, set_options: Sequence[str]) -> str:
    """The `l2sim run` command line that replays a run."""
    words = ["l2sim", "run", scenario, "--seed", str(seed)]
    if small:
        words.append("--small")
    for option in set_options:
        words += ["--set", option]
    return shlex.join(words)
