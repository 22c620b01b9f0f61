"""The `l2sim` command: list, show and validate scenarios, run them, inspect saved runs.

Exit status: 0 the command did its work (for `run`: every check held); 1 `run`
finished but a check failed (the report is still written); 2 bad input, printed
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
import shlex
from typing import Any

import click

from chain.errors import ChainError
from scenarios.errors import ScenarioError
from scenarios.loader import dump_scenario, get_bundled_names, load_scenario
from scenarios.output import check_data_dir, check_output_file, prepare_data_dir
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


@main.command("show")
@click.argument("scenario")
def show_command(scenario: str) -> None:
    """Print SCENARIO (a bundled name or a TOML path) resolved, with every default, as TOML."""
    click.echo(dump_scenario(load_scenario(scenario)), nl=False)


@main.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a scenario file."""
    click.echo(json.dumps(scenario_json_schema(), indent=2))


@main.command("run")
@click.argument("scenario")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Override the scenario's seed.")
@click.option("--json", "json_path", metavar="PATH|-", default=None, help="Write the JSON report here ('-': stdout).")
@click.option("--data-dir", metavar="DIR", default=None,
              help="Save the run here (a new or empty directory) for `l2sim inspect`.")
@click.option("--force", is_flag=True, help="Replace the saved run already in --data-dir.")
@click.option("--quiet", is_flag=True, help="No terminal summary.")
def run_command(scenario: str, seed: int | None, json_path: str | None, data_dir: str | None, force: bool,
                quiet: bool) -> None:
    """Run SCENARIO (a bundled name or a TOML path); exit 1 if a check fails."""
    resolved = load_scenario(scenario)
    if seed is not None:
        resolved = resolved.model_copy(update={"seed": seed})
    reproduce = shlex.join(["l2sim", "run", scenario, "--seed", str(resolved.seed)])
    if force and data_dir is None:
        raise click.UsageError("--force replaces a saved run: it needs --data-dir")
    # Every path is checked before anything changes on disk, and before the run.
    if data_dir is not None:
        check_data_dir(data_dir, force=force)
    if json_path is not None:
        check_output_file(json_path, "--json")
    if data_dir is not None:
        prepare_data_dir(data_dir, force=force)

    from scenarios.report import run_scenario  # the runner loads the chain; only `run` needs it

    is_ok = run_scenario(resolved, json_path=json_path, data_dir=data_dir, quiet=quiet, reproduce=reproduce)
    click.get_current_context().exit(EXIT_OK if is_ok else EXIT_CHECK_FAILED)


@main.command("inspect")
@click.argument("data_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--height", type=click.IntRange(min=0), required=True, help="Block height to read.")
@click.option("--account", default=None, help="Account address (0x-hex) to read at that height.")
@click.option("--validator", type=click.IntRange(min=0), default=None,
              help="Read this validator's chain (default: the furthest honest one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_command(data_dir: str, height: int, account: str | None, validator: int | None, as_json: bool) -> None:
    """Historical state at --height of a run saved with `l2sim run --data-dir DIR` (read-only)."""
    from scenarios.inspect import inspect_run  # loads the chain; only `inspect` needs it

    state = inspect_run(data_dir, height=height, account=account, validator=validator)
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True))
    else:
        for key, value in state.items():
            click.echo(f"{key}: {value}")


def compute_first_sentence(text: str) -> str:
    """The first sentence of `text` on one line (all of it when it has no full stop)."""
    flat = " ".join(text.split())
    for i, c in enumerate(flat):
        if c in ".!?" and (i + 1 == len(flat) or flat[i + 1] == " "):
            return flat[: i + 1]
    return flat


if __name__ == "__main__":
    main()
