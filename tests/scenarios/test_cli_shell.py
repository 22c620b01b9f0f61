"""The `l2sim` shell: list, show, schema, and how run/inspect reach the runner and fail on bad input."""

import json
import sys
import types

import pytest
from click.testing import CliRunner

from chain.errors import HeightOutOfRangeError
from scenarios.cli import compute_first_sentence, main
from scenarios.loader import get_bundled_names, load_scenario
from scenarios.schema import scenario_json_schema

# (case, file text, text the one stderr line must hold besides the file name)
BAD_FILES = [
    ("broken TOML", 'name = "x"\n[chain\n', "bad.toml:2:7: invalid TOML"),
    ("no name", "seed = 1\n", "bad.toml: name:"),
    ("unknown key", 'name = "x"\n[network]\nlatency = 5\n', "bad.toml:3: network.latency: unknown key"),
    ("wrong type", 'name = "x"\nseed = "seven"\n', 'bad.toml:2: seed: "seven" is not an integer'),
    ("negative count", 'name = "x"\n[validators]\ncount = -4\n', "bad.toml:3: validators.count: -4"),
    (
        "byzantine index",
        'name = "x"\n[validators]\ncount = 4\nbyzantine = [{index = 7, behaviour = "crash"}]\n',
        "bad.toml:4: validators.byzantine[0].index: 7 is out of range for 4 validators",
    ),
    (
        "unknown behaviour",
        'name = "x"\n[validators]\nbyzantine = [{index = 0, behaviour = "liar"}]\n',
        'bad.toml:3: validators.byzantine[0].behaviour: "liar"',
    ),
    ("unknown extends", 'name = "x"\nextends = "paradex-2025"\n', 'bad.toml:2: extends: "paradex-2025"'),
    ("extends cycle", 'name = "x"\nextends = "bad.toml"\n', "bad.toml:2: extends:"),
    ("probability", 'name = "x"\n[network]\ndrop_rate = -0.5\n', "bad.toml:3: network.drop_rate: -0.5"),
    (
        "partition window",
        'name = "x"\n[[network.partitions]]\nstart_s = 10\nend_s = 5\ngroups = [[0, 1], [2, 3]]\n',
        "bad.toml:4: network.partitions[0].end_s: 5.0 is not after start_s = 10.0",
    ),
    (
        "all byzantine",
        'name = "x"\n[validators]\ncount = 2\nbyzantine = [{index = 0, behaviour = "crash"}, '
        '{index = 1, behaviour = "amnesia"}]\n',
        "bad.toml:4: validators.byzantine: all 2 validators are Byzantine",
    ),
    ("drop everything", 'name = "x"\n[network]\ndrop_rate = 1.0\n', "bad.toml:3: network.drop_rate: 1.0 is not a rate"),
    (
        "random-regular of 5",
        'name = "x"\n[validators]\ncount = 5\ntopology = "random-regular"\n',
        'bad.toml:4: validators.topology: "random-regular" links each validator to 3 others',
    ),
    ("geo of 2", 'name = "x"\n[validators]\ncount = 2\ntopology = "geo"\n', "bad.toml:4: validators.topology:"),
    ("too many validators", 'name = "x"\n[validators]\ncount = 513\n', "bad.toml:3: validators.count: 513"),
    (
        "halt after the last height",
        'name = "x"\n[chain]\nheights = 26\n[incident]\nstart_height = 22\n[detection]\ndelay_blocks = 5\n',
        "bad.toml:7: detection.delay_blocks: incident.start_height + detection.delay_blocks = 22 + 5 is past "
        "chain.heights = 26",
    ),
]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, expected):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("l2sim: ")
    assert expected in lines[0]
    assert result.stdout == ""


@pytest.fixture
def runner_calls(monkeypatch):
    """A stand-in `scenarios.report` and `scenarios.inspect` (the entry points) that records its calls;
    set `.is_ok` or `.error` to steer it."""
    module = types.ModuleType("scenarios.report")
    module.calls = []
    module.is_ok = True
    module.error = None

    def run_scenario(scenario, **options):
        module.calls.append(("run", scenario, options))
        if module.error is not None:
            raise module.error
        return module.is_ok

    def inspect_run(data_dir, **options):
        module.calls.append(("inspect", data_dir, options))
        if module.error is not None:
            raise module.error
        return {"height": options["height"], "state_root": "0x" + "ab" * 32}

    module.run_scenario = run_scenario
    module.inspect_run = inspect_run
    monkeypatch.setitem(sys.modules, "scenarios.report", module)
    monkeypatch.setitem(sys.modules, "scenarios.inspect", module)
    return module


def test_list_prints_one_line_per_bundled_scenario():
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == get_bundled_names()
    assert all(line.rstrip().endswith((".", "!", "?")) for line in lines)


@pytest.mark.parametrize("name", get_bundled_names())
def test_show_prints_toml_that_loads_back_to_the_same_scenario(tmp_path, name):
    result = invoke("show", name)
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{name}.toml"
    path.write_text(result.stdout)
    assert load_scenario(str(path)) == load_scenario(name)
    assert "extends" not in result.stdout.split("\n[")[0]


def test_schema_prints_the_json_schema():
    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == scenario_json_schema()
    assert result.stdout.startswith('{\n  "')


@pytest.mark.parametrize("command", ["show", "run"])
@pytest.mark.parametrize("case, text, expected", BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_bad_scenario_files_give_one_line_and_exit_2(
    tmp_path, monkeypatch, runner_calls, command, case, text, expected
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(text)
    assert_one_line_error(invoke(command, "bad.toml"), expected)
    assert runner_calls.calls == []


def test_missing_file_and_unknown_name_give_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("show", "nowhere.toml"), "nowhere.toml: no such scenario file")
    assert_one_line_error(invoke("run", "paradox-2026"), 'unknown scenario "paradox-2026"')


def test_run_passes_the_resolved_scenario_and_a_reproduce_command(runner_calls, tmp_path):
    data_dir = str(tmp_path / "d")
    result = invoke("run", "equivocation-third", "--seed", "7", "--json", "-", "--data-dir", data_dir, "--quiet")
    assert result.exit_code == 0, result.output
    ((verb, scenario, options),) = runner_calls.calls
    assert verb == "run"
    assert scenario == load_scenario("equivocation-third").model_copy(update={"seed": 7})
    assert options == {
        "json_path": "-",
        "data_dir": data_dir,
        "quiet": True,
        "reproduce": "l2sim run equivocation-third --seed 7",
    }


def test_run_keeps_the_scenario_seed_without_seed_option(runner_calls):
    assert invoke("run", "paradex-2026").exit_code == 0
    ((_, scenario, options),) = runner_calls.calls
    assert scenario.seed == 2026
    assert options["reproduce"] == "l2sim run paradex-2026 --seed 2026"
    assert options["json_path"] is None and options["data_dir"] is None and options["quiet"] is False


def _saved_run(directory):
    """A directory that looks like a finished saved run to the CLI's checks."""
    directory.mkdir()
    (directory / "run.json").write_text('{"format": "l2sim-run-1"}\n')
    (directory / "chain.sqlite").write_bytes(b"SQLite format 3\x00 old run")
    return directory


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda t: ["--json", "/nonexistent/r.json"], "/nonexistent/r.json: --json: directory /nonexistent does not exist"),
        (lambda t: ["--json", str(t)], ": --json: is a directory, not a file"),
        (lambda t: ["--json", "/proc/r.json"], "/proc/r.json: --json: cannot create files in /proc"),
        (lambda t: ["--data-dir", str(t / "no" / "d")], "--data-dir: directory"),
        (lambda t: ["--data-dir", str(t / "file.txt")], "file.txt: --data-dir: is not a directory"),
        (lambda t: ["--data-dir", str(t / "other")], "other: --data-dir: is not empty and holds no l2sim run"),
        (lambda t: ["--data-dir", str(t / "other"), "--force"], "--data-dir: is not empty and holds no l2sim run"),
        (lambda t: ["--data-dir", str(t / "old")], "old: --data-dir: already holds an l2sim run; pass --force"),
        (lambda t: ["--force"], "l2sim: run: --force replaces a saved run: it needs --data-dir"),
        # the json path is checked before --force empties the data directory
        (lambda t: ["--data-dir", str(t / "old"), "--force", "--json", "/nonexistent/r.json"], "--json:"),
    ],
    ids=["json parent missing", "json is a directory", "json directory refuses files", "data-dir parent missing",
         "data-dir is a file", "data-dir holds other files", "force never empties other files", "data-dir used",
         "force alone", "json checked before force"],
)
def test_output_paths_are_checked_before_the_run(tmp_path, runner_calls, make_args, expected):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    old = _saved_run(tmp_path / "old")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    assert_one_line_error(invoke("run", "paradex-2026", *make_args(tmp_path)), expected)
    assert runner_calls.calls == []
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before  # the earlier run stays readable
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "no").exists()


def test_force_replaces_a_saved_run_with_an_empty_directory(tmp_path, runner_calls):
    old = _saved_run(tmp_path / "old")
    (old / "journal-0.sqlite").write_bytes(b"")
    (old / "chain.sqlite-wal").write_bytes(b"x")
    result = invoke("run", "paradex-2026", "--data-dir", str(old), "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert runner_calls.calls[0][2]["data_dir"] == str(old)
    assert list(old.iterdir()) == []


def test_a_new_or_empty_data_dir_is_taken(tmp_path, runner_calls):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "new"):
        assert invoke("run", "paradex-2026", "--data-dir", str(path), "--quiet").exit_code == 0
        assert path.is_dir()


def test_run_exits_1_when_a_check_fails(runner_calls):
    runner_calls.is_ok = False
    assert invoke("run", "paradex-2026").exit_code == 1


def test_chain_errors_from_the_runner_give_one_line_and_exit_2(runner_calls, tmp_path):
    runner_calls.error = HeightOutOfRangeError(99, 10)
    assert_one_line_error(invoke("run", "paradex-2026"), "height 99 out of range 0..10")
    assert_one_line_error(invoke("inspect", str(tmp_path), "--height", "99"), "height 99 out of range 0..10")


def test_inspect_prints_json_from_the_runner(runner_calls, tmp_path):
    result = invoke("inspect", str(tmp_path), "--height", "3", "--account", "0x01", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"height": 3, "state_root": "0x" + "ab" * 32}
    assert runner_calls.calls == [("inspect", str(tmp_path), {"height": 3, "account": "0x01", "validator": None,
                                                              "fork": None})]


def test_inspect_prints_text_without_json(runner_calls, tmp_path):
    result = invoke("inspect", str(tmp_path), "--height", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "height: 3"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "paradex-2026", "--bogus"], "l2sim: run: no such option '--bogus'"),
        (["run"], "l2sim: run: missing argument 'SCENARIO'"),
        (["run", "paradex-2026", "--seed", "seven"], "l2sim: run: invalid value for '--seed'"),
        (["inspect", "somewhere", "--height", "1"], "l2sim: inspect: invalid value for 'DIR'"),
        (["inspect", ".", "--height", "-1"], "l2sim: inspect: invalid value for '--height'"),
        (["inspect", "."], "l2sim: inspect: missing option '--height'"),
        (["bogus"], "l2sim: no such command 'bogus'"),
        (["--bogus"], "l2sim: no such option '--bogus'"),
    ],
)
def test_click_usage_errors_give_one_line_and_exit_2(tmp_path, monkeypatch, runner_calls, args, expected):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke(*args), expected)
    assert runner_calls.calls == []


def test_help_is_still_the_full_usage():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert "--data-dir" in result.stdout and len(result.stdout.splitlines()) > 5


@pytest.mark.parametrize(
    "text, sentence",
    [
        ("One. Two.", "One."),
        ("Price is 0.5 dollars. Then more.", "Price is 0.5 dollars."),
        ("No stop\nat all", "No stop at all"),
        ("", ""),
    ],
)
def test_first_sentence(text, sentence):
    assert compute_first_sentence(text) == sentence
