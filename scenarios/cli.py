"""The `l2sim` command: list, show and validate scenarios, run them, inspect saved runs.

Exit status: 0 the command did its work (for `run`: every check held); 1 `run`
finished but a check failed (the report is still written), or an internal invariant broke
(a bug: the seed and the command that replays it are the last line); 2 bad input, printed
as one line `l2sim: FILE:LINE: FIELD: REASON` on stderr, without a traceback.

`run` and `inspect` call into the runner and the chain, imported only when they run
so that `list`, `show` and `schema` stay fast and work without the chain's heavy
dependencies loaded. `run` checks its output paths (`--json`, `--data-dir`) before
anything runs, so a run is never lost to a path it cannot write. They call:

    scenarios.report.run_scenario(scenario: Scenario, *, json_path: str | None,
                                  data_dir: str | None, quiet: bool, reproduce: str) -> bool
        Run the (seed-resolved) scenario; write the JSON report to `json_path`
        ("-" for stdout, None for none); save the run under `data_dir` (new or empty)
        when given; print the terminal summary unless `quiet`; name `reproduce` in it
        on failure. True when every check held.

    scenarios.inspect.inspect_run(data_dir: str, *, height: int, account: str | None,
                                  validator: int | None) -> dict
        Historical state of a saved run: at least {height, state_root} and, with
        an account, {balance, nonce}; JSON-ready values (ints, 0x-hex strings).
"""

import json
import traceback
from typing import Any

import click

from chain.errors import ChainError
from scenarios.api import format_reproduce
from scenarios.errors import RunFailed, ScenarioError
from scenarios.loader import (
    describe_small_preset,
    dump_scenario,
    get_bundled_names,
    load_scenario,
    parse_set_options,
)
from scenarios.datadir import check_data_dir, claim_optional_data_dir, claim_output_file
from scenarios.interrupt import stop_on_signals
from scenarios.output import check_output_paths, get_scenario_files
from scenarios.schema import MAX_SEED, scenario_json_schema

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class _Group(click.Group):
    """A click group that turns the typed input errors of any command, and click's own usage
    errors (unknown option, missing argument, bad value), into one line and exit 2."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # `l2sim` alone prints the help
        except click.UsageError as e:
            _echo_error(compute_usage_line(e))
            raise click.exceptions.Exit(EXIT_BAD_INPUT) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with stop_on_signals():  # Ctrl-C anywhere: one line, exit 130 (a run says more)
                return super().invoke(ctx)
        except (ScenarioError, ChainError) as e:
            _echo_error(str(e))
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            _echo_error(compute_usage_line(e))
        ctx.exit(EXIT_BAD_INPUT)


def _echo_error(text: str) -> None:
    click.echo(f"l2sim: {' '.join(text.split())}", err=True)


def compute_usage_line(error: click.UsageError) -> str:
    """`run: no such option '--bogus'.`: the subcommand (when there is one) and click's message."""
    message = error.format_message()
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    ctx = error.ctx
    if ctx is not None and ctx.parent is not None:
        return f"{ctx.info_name}: {message}"
    return message


@click.group(cls=_Group)
def main() -> None:
    """Replay an L2 chain incident end to end and test the recovery."""


@main.command("list")
def list_command() -> None:
    """One line per bundled scenario: its name and what it shows."""
    names = get_bundled_names()
    width = max((len(n) for n in names), default=0)
    for name in names:
        scenario = load_scenario(name)
        click.echo(f"{name:<{width}}  {compute_first_sentence(scenario.description)}".rstrip())


_SET_OPTION = click.option(
    "--set", "set_options", multiple=True, metavar="KEY=VALUE",
    help="Override a key of the scenario file (dotted, e.g. detection.delay_blocks=2; value in TOML). Repeatable.",
)
_WEI_OPTION = click.option("--wei", is_flag=True, help="Amounts in the summary in wei, as the JSON report has them "
                                                      "(default: dollars).")
_SMALL_OPTION = click.option(
    "--small", is_flag=True, help="Scaled down: the same faults and response, fewer accounts and heights."
)


def load_with_options(scenario: str, set_options: tuple[str, ...], small: bool):
    """SCENARIO resolved with `--small` and then every `--set` applied."""
    return load_scenario(scenario, overrides=parse_set_options(set_options), small=small, overrides_label="--set")


@main.command("show")
@click.argument("scenario")
@_SET_OPTION
@_SMALL_OPTION
def show_command(scenario: str, set_options: tuple[str, ...], small: bool) -> None:
    """Print SCENARIO (a bundled name or a TOML path) resolved, with every default, as TOML.

    With --small, comment lines first say what the small preset changed.
    """
    resolved = load_with_options(scenario, set_options, small)
    if small:
        for line in describe_small_preset(load_scenario(scenario)):
            click.echo(f"# --small: {line}")
    click.echo(dump_scenario(resolved), nl=False)


@main.command("schema")
@click.option("--report", "of_report", is_flag=True, help="The JSON Schema of the run report instead.")
def schema_command(of_report: bool) -> None:
    """Print the JSON Schema of a scenario file (or, with --report, of the JSON report)."""
    if of_report:
        from scenarios.report_model import report_json_schema

        click.echo(json.dumps(report_json_schema(), indent=2))
        return
    click.echo(json.dumps(scenario_json_schema(), indent=2))


@main.command("run")
@click.argument("scenario")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Override the scenario's seed.")
@click.option("--json", "json_path", metavar="PATH|-", default=None, help="Write the JSON report here ('-': stdout).")
@click.option("--data-dir", metavar="DIR", default=None,
              help="Save the run here (a new or empty directory) for `l2sim inspect`.")
@click.option("--force", is_flag=True, help="Replace the saved run already in --data-dir.")
@click.option("--quiet", is_flag=True, help="No terminal summary.")
@click.option("--events", "events_path", metavar="PATH", default=None, help="Write the event log here (JSON Lines).")
@click.option("--html", "html_path", metavar="PATH", default=None, help="Write the offline HTML report here.")
@click.option("--narrate", is_flag=True, help="Tell the story in the terminal as it happens.")
@click.option("--step", is_flag=True,
              help="Narrate step by step (on a terminal): Enter for the next caption, p for the next phase, "
                   "c to run to the end.")
@_WEI_OPTION
@_SET_OPTION
@_SMALL_OPTION
def run_command(scenario: str, seed: int | None, json_path: str | None, data_dir: str | None, force: bool,
                quiet: bool, events_path: str | None, html_path: str | None, narrate: bool, step: bool,
                wei: bool, set_options: tuple[str, ...], small: bool) -> None:
    """Run SCENARIO (a bundled name or a TOML path); exit 1 if a check fails."""
    resolved = load_with_options(scenario, set_options, small)
    if seed is not None:
        resolved = resolved.model_copy(update={"seed": seed})
    reproduce = format_reproduce(scenario, resolved.seed, small=small, set_options=set_options)
    if force and data_dir is None:
        raise click.UsageError("--force replaces a saved run: it needs --data-dir")
    # Every path is checked before anything changes on disk, and before the run.
    if data_dir is not None:
        check_data_dir(data_dir, force=force)
    check_output_paths({"--json": json_path, "--events": events_path, "--html": html_path}, data_dir=data_dir,
                       inputs=get_scenario_files(scenario))

    from scenarios.report import run_scenario  # the runner loads the chain; only `run` needs it

    narrate = narrate or step  # --step is a way of narrating
    # Only the teaching options given are passed on (the runner's defaults stand for the rest).
    teaching = {name: value for name, value in (("events_path", events_path), ("html_path", html_path),
                                                ("narrate", narrate), ("step", step), ("wei", wei)) if value}
    with claim_optional_data_dir(data_dir, force=force), stop_on_signals(saved_in=data_dir):
        try:
            is_ok = run_scenario(resolved, json_path=json_path, data_dir=data_dir, quiet=quiet,
                                 reproduce=reproduce, **teaching)
        except AssertionError as error:
            # A bug in l2sim, not bad input: loud (a bare assert keeps its traceback), and the last
            # line is the seed and the command that replays it.
            if not isinstance(error, RunFailed):
                traceback.print_exc()
            reason = str(error) or type(error).__name__
            if not (isinstance(error, RunFailed) and error.seed is not None):
                reason += f" (seed {resolved.seed})"
            _echo_error(f"internal error: {reason}; reproduce with: {reproduce}")
            is_ok = False
    click.get_current_context().exit(EXIT_OK if is_ok else EXIT_CHECK_FAILED)


@main.command("inspect")
@click.argument("data_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--height", type=click.IntRange(min=0), required=True, help="Block height to read.")
@click.option("--account", default=None, help="Account address (0x-hex) to read at that height.")
@click.option("--validator", type=click.IntRange(min=0), default=None,
              help="Read this validator's chain (default: the furthest honest one).")
@click.option("--fork", type=click.IntRange(min=0), default=None,
              help="Read the chain of this fork (an older one keeps its rolled-back heights).")
@_WEI_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text (amounts in wei).")
def inspect_command(data_dir: str, height: int, account: str | None, validator: int | None, fork: int | None,
                    wei: bool, as_json: bool) -> None:
    """Historical state at --height of a run saved with `l2sim run --data-dir DIR` (read-only)."""
    from scenarios.inspect import inspect_run  # loads the chain; only `inspect` needs it

    state = inspect_run(data_dir, height=height, account=account, validator=validator, fork=fork)
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True))
    else:
        from scenarios.terminal import format_state

        for line in format_state(state, wei=wei):
            click.echo(line)


@main.command("report")
@click.argument("data_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--html", "html_path", metavar="PATH", default=None, help="Write the offline HTML report here.")
@click.option("--json", "json_path", metavar="PATH|-", default=None, help="Write the JSON report here ('-': stdout).")
@_WEI_OPTION
def report_command(data_dir: str, html_path: str | None, json_path: str | None, wei: bool) -> None:
    """The report of a run saved with `l2sim run --data-dir DIR`: summary, page or JSON."""
    from scenarios.html import load_saved_run, read_saved_reproduce, write_html
    from scenarios.output import write_text_atomic

    check_output_paths({"--html": html_path, "--json": json_path}, data_dir=data_dir, data_dir_option="DIR")
    report, events = load_saved_run(data_dir)
    if html_path is not None:
        write_html(report, events, html_path, reproduce=read_saved_reproduce(data_dir))
    if json_path == "-":
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    elif json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    if html_path is None and json_path is None:
        from rich.console import Console

        from scenarios.report import render_summary

        render_summary(report, Console(), wei=wei)


@main.command("explain")
@click.argument("term", nargs=-1, required=True)
def explain_command(term: tuple[str, ...]) -> None:
    """Explain TERM: a check of the report or a word the output uses (quorum, fork id, ...)."""
    from scenarios.explain import explain

    click.echo(explain(" ".join(term)))


@main.command("votes")
@click.argument("data_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--height", type=click.IntRange(min=0), default=None, help="Height whose signed votes to list.")
@click.option("--plan", is_flag=True, help="The plan vote instead (signed at the halt, for the fork it starts).")
@click.option("--fork", type=click.IntRange(min=0), default=None,
              help="Only this fork id (with --plan: the fork the plan starts; default: every fork).")
@click.option("--full", is_flag=True, help="Whole block hashes and signatures (default: their first digits).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def votes_command(data_dir: str, height: int | None, plan: bool, fork: int | None, full: bool, as_json: bool) -> None:
    """Every signed proposal and vote recorded at --height (or of the plan vote, --plan) of a saved run."""
    from scenarios.saved_run import format_votes, list_votes

    if (height is None) == (not plan):
        raise click.UsageError("give --height H or --plan")
    votes = list_votes(data_dir, height=height or 0, fork=fork, plan=plan)
    if as_json:
        click.echo(json.dumps(votes, indent=2, sort_keys=True))
        return
    for line in format_votes(votes, width=_terminal_width(), full=full):
        click.echo(line)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


@main.command("diff")
@click.argument("data_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--from", "from_height", type=click.IntRange(min=1), default=None, help="First height.")
@click.option("--to", "to_height", type=click.IntRange(min=1), default=None, help="Second height.")
@click.option("--height", type=click.IntRange(min=1), default=None,
              help="One height for both sides (compare two forks there with --fork-a and --fork-b).")
@click.option("--fork", type=click.IntRange(min=0), default=None,
              help="Read both heights on this fork (default: the final chain).")
@click.option("--fork-a", type=click.IntRange(min=0), default=None, help="The fork of the first side.")
@click.option("--fork-b", type=click.IntRange(min=0), default=None, help="The fork of the second side.")
@click.option("--slots", is_flag=True, help="Also list the raw storage slots that differ.")
@_WEI_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text (amounts in wei).")
def diff_command(data_dir: str, from_height: int | None, to_height: int | None, height: int | None,
                 fork: int | None, fork_a: int | None, fork_b: int | None, slots: bool, wei: bool,
                 as_json: bool) -> None:
    """What differs between two heights (or two forks at one height) of a saved run: accounts by
    name, the exchange's collateral, positions, vault and prices, and the raw storage slots."""
    from scenarios.saved_run import diff_saved_run, format_diff

    if height is not None and (from_height is not None or to_height is not None):
        raise click.UsageError("--height is both sides: give it or --from and --to")
    if height is None and (from_height is None or to_height is None):
        raise click.UsageError("give --from H and --to H, or --height H with --fork-a and --fork-b")
    if fork is not None and (fork_a is not None or fork_b is not None):
        raise click.UsageError("--fork is both sides: give it or --fork-a and --fork-b")
    diff = diff_saved_run(data_dir, from_height=height or from_height, to_height=height or to_height,
                          from_fork=fork if fork is not None else fork_a,
                          to_fork=fork if fork is not None else fork_b)
    if as_json:
        click.echo(json.dumps(diff, indent=2, sort_keys=True))
        return
    for line in format_diff(diff, wei=wei, slots=slots):
        click.echo(line)


@main.command("sweep")
@click.argument("scenario")
@click.option("--seeds", type=click.IntRange(1, 100_000), required=True, help="Runs per point of the product.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None,
              help="Master seed the runs' seeds derive from (default: the scenario's).")
@click.option("--set", "set_options", multiple=True, metavar="KEY=V1,V2,...",
              help="A dotted key and the values to sweep it over (TOML each). Repeatable: the product is run.")
@_SMALL_OPTION
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Processes of the local pool or of --scheduler local (default: one per core).")
@click.option("--scheduler", metavar="tcp://HOST:PORT|local", default=None,
              help="Run on this Dask distributed cluster ('local': start a LocalCluster).")
@click.option("--out", "out_dir", metavar="DIR", required=True,
              help="Write results.csv, summary.html and runs/ here (a sweep already there is resumed).")
def sweep_command(scenario: str, seeds: int, seed: int | None, set_options: tuple[str, ...], small: bool,
                  workers: int | None, scheduler: str | None, out_dir: str) -> None:
    """Run SCENARIO over every combination of --set values times --seeds seeds; exit 1 if a run did not run."""
    from scenarios.sweep import check_out_dir, parse_sweep_options, plan_sweep

    _check_pool_options(workers, scheduler)
    check_out_dir(out_dir)
    plan = plan_sweep(scenario, seeds=seeds, axes=parse_sweep_options(set_options), small=small, master_seed=seed)
    with stop_on_signals(leaves=f"the sweep in {out_dir} keeps its finished runs (run it again to resume)"):
        result = _run_sweep_with_progress(plan, out_dir, workers=workers, scheduler=scheduler)
    click.echo(f"{len(plan.tasks)} runs: {result.cached} finished before, {result.executed} run now, "
               f"{len(result.errors)} did not run; {out_dir}/results.csv, {out_dir}/summary.html", err=True)
    for index, error in sorted(result.errors.items()):
        click.echo(f"l2sim: run {index} did not run: {error}; reproduce with: {plan.tasks[index].reproduce}",
                   err=True)
    click.get_current_context().exit(EXIT_OK if result.is_complete else EXIT_CHECK_FAILED)


def _check_pool_options(workers: int | None, scheduler: str | None) -> None:
    from scenarios.sweep import check_scheduler

    check_scheduler(scheduler)
    if workers is not None and scheduler not in (None, "local"):
        raise click.UsageError("--workers sizes the local pool or LocalCluster; a remote cluster has its own")


def _run_sweep_with_progress(plan, out_dir: str, *, workers: int | None, scheduler: str | None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from scenarios.sweep import run_sweep

    console = Console(stderr=True)
    if not console.is_terminal:
        return run_sweep(plan, out_dir, workers=workers, scheduler=scheduler)
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress_bar:
        task = progress_bar.add_task("sweep", total=len(plan.tasks))
        return run_sweep(plan, out_dir, workers=workers, scheduler=scheduler,
                         on_progress=lambda done, total: progress_bar.update(task, completed=done))


@main.command("shrink")
@click.argument("scenario")
@click.option("--check", "check_name", required=True, metavar="NAME", help="The check that fails (l2sim explain NAME).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Override the scenario's seed.")
@_SET_OPTION
@_SMALL_OPTION
@click.option("--out", "out_path", metavar="FILE", required=True, help="Write the smallest failing scenario here (TOML).")
@click.option("--workers", type=click.IntRange(1, 1024), default=None, help="Candidates run at once (default: one per core).")
@click.option("--scheduler", metavar="tcp://HOST:PORT|local", default=None, help="Run candidates on this Dask cluster.")
@click.option("--max-candidates", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Candidates to run at most.")
@click.option("--max-seconds", type=click.FloatRange(1, 30 * 86400), default=600.0, show_default=True,
              help="Stop starting new candidates after this long.")
def shrink_command(scenario: str, check_name: str, seed: int | None, set_options: tuple[str, ...], small: bool,
                   out_path: str, workers: int | None, scheduler: str | None, max_candidates: int,
                   max_seconds: float) -> None:
    """Shrink SCENARIO to a smaller one that still fails --check with the same seed; exit 1 if it does not fail."""
    from scenarios.shrink import ShrinkLimits, shrink_scenario

    _check_pool_options(workers, scheduler)
    check_output_paths({"--out": out_path}, inputs=get_scenario_files(scenario))
    with claim_output_file(out_path, option="--out"), stop_on_signals(leaves=f"{out_path} is unchanged"):
        found = shrink_scenario(scenario, check=check_name, seed=seed, overrides=parse_set_options(set_options),
                                small=small, out_path=out_path, workers=workers, scheduler=scheduler,
                                limits=ShrinkLimits(max_candidates=max_candidates, max_seconds=max_seconds),
                                say=lambda line: click.echo(line, err=True))
    click.get_current_context().exit(EXIT_OK if found else EXIT_CHECK_FAILED)


def compute_first_sentence(text: str) -> str:
    """The first sentence of `text` on one line (all of it when it has no full stop)."""
    flat = " ".join(text.split())
    for i, c in enumerate(flat):
        if c in ".!?" and (i + 1 == len(flat) or flat[i + 1] == " "):
            return flat[: i + 1]
    return flat


if __name__ == "__main__":
    main()
