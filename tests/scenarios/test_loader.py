"""Loading scenarios: bundled names and paths, `extends`, one-line errors, and the TOML round trip."""
import textwrap

import pytest
import tomli_w
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scenarios import errors
from scenarios.loader import (
    dump_scenario,
    find_key_line,
    get_bundled_names,
    load_scenario,
    merge_tables,
    parse_scenario,
)
from scenarios.schema import Scenario
from scenarios.strategies import bad_scenario_dicts, scenario_dicts

BUNDLED = [
    "paradex-2026",
    "byzantine-restore-proposer",
    "partition-during-halt",
    "equivocation-third",
    "final-withdrawals",
    "dao-selective-restore",
    "replay-after-rollback",
    "stale-oracle-restart",
    "lying-minority",
    "paradex-band",
]


def write(directory, name, text):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


TABLE_OR_INT = st.integers() | st.dictionaries(st.sampled_from("xy"), st.integers())

# ----------------------------------------------------------------------------- properties


@settings(deadline=None)
@given(bad_scenario_dicts())
def test_any_broken_file_loads_or_raises_one_scenario_error_line(data):
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):  # a value tomli_w cannot write is not a file a user can have
        return
    try:
        scenario = parse_scenario(text, file="fuzz.toml")
    except errors.ScenarioError as e:
        assert "\n" not in str(e)
        assert e.file is not None
    else:
        assert isinstance(scenario, Scenario)


@settings(deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=200))
@example('name = "x"\n[validators]\nbyzantine = [\n')
@example('name = "x"\ndescription = """\n[chain]\nseed = 1\n')
def test_any_text_loads_or_raises_a_scenario_error(text):
    try:
        parse_scenario(text, file="fuzz.toml")
    except errors.ScenarioError as e:
        assert "\n" not in str(e)


@settings(deadline=None)
@given(scenario_dicts(runnable=False))
@example(  # a "\r\n" in a multi-line TOML string came back as "\n"
    {"name": "crlf", "description": "\r\n"}
)
def test_dump_then_load_is_the_identity(data):
    scenario = Scenario.model_validate(data)
    assert parse_scenario(dump_scenario(scenario)) == scenario


@settings(deadline=None)
@given(
    base=st.dictionaries(st.sampled_from("abc"), TABLE_OR_INT),
    override=st.dictionaries(st.sampled_from("abc"), TABLE_OR_INT),
)
def test_merge_keeps_what_the_override_leaves_out(base, override):
    merged = merge_tables(base, override)
    assert set(merged) == set(base) | set(override)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert merged[key] == {**base[key], **value}
        else:
            assert merged[key] == value


# ----------------------------------------------------------------------------- bundled scenarios


def test_the_library_holds_the_teaching_scenarios():
    assert sorted(BUNDLED) == get_bundled_names()


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_scenario_loads_and_round_trips(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.extends is None
    assert len(scenario.description) > 80
    assert parse_scenario(dump_scenario(scenario)) == scenario


def test_paradex_is_the_documented_incident():
    scenario = load_scenario("paradex-2026")
    assert scenario.incident.market == "BTC-USD"
    assert scenario.incident.bad_price == 0.0
    assert scenario.response.pause_s == 21600.0
    assert scenario.response.mode == "full-rollback"
    assert scenario.validators.count == 4
    assert 2000 <= scenario.chain.accounts <= 3000


@pytest.mark.parametrize(
    "name, check",
    [
        ("byzantine-restore-proposer", lambda s: s.validators.byzantine[0].behaviour == "wrong-root"),
        ("partition-during-halt", lambda s: len(s.network.partitions) == 1),
        ("equivocation-third", lambda s: 3 * len(s.validators.byzantine) > s.validators.count),
        ("final-withdrawals", lambda s: s.chain.finality_blocks < s.incident.duration_blocks),
        ("dao-selective-restore", lambda s: s.response.mode == "selective-restore"),
        ("replay-after-rollback", lambda s: s.response.mode == "rollback-replay"),
        ("stale-oracle-restart", lambda s: s.oracle.stale_after_restart_blocks > 0),
    ],
)
def test_each_variant_changes_what_its_name_says(name, check):
    scenario = load_scenario(name)
    assert check(scenario)
    incident = load_scenario("paradex-2026").incident
    if name == "replay-after-rollback":
        # A funding reset would taint every account with a position and leave nothing to
        # replay, so this variant keeps the glitch to the one price; all else is the same.
        assert scenario.incident.kind == "price"
        incident = incident.model_copy(update={"kind": "price"})
    assert scenario.incident == incident


# ----------------------------------------------------------------------------- extends


def test_extends_merges_tables_and_replaces_arrays(tmp_path):
    write(
        tmp_path,
        "base.toml",
        """
        name = "base"
        seed = 5
        [validators]
        count = 7
        byzantine = [{index = 0, behaviour = "crash"}, {index = 1, behaviour = "crash"}]
        """,
    )
    child = write(
        tmp_path,
        "child.toml",
        """
        name = "child"
        extends = "base.toml"
        [validators]
        byzantine = [{index = 6, behaviour = "amnesia"}]
        """,
    )
    scenario = load_scenario(str(child))
    assert (scenario.name, scenario.seed, scenario.validators.count) == ("child", 5, 7)
    assert [(b.index, b.behaviour) for b in scenario.validators.byzantine] == [(6, "amnesia")]


def test_extends_chains_through_relative_paths_and_bundled_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "shared/middle.toml", 'name = "middle"\nextends = "paradex-2026"\n[response]\npause_s = 60.0\n')
    top = 'name = "top"\nextends = "shared/middle.toml"\n[oracle]\nstale_after_restart_blocks = 3\n'
    write(tmp_path, "top.toml", top)
    scenario = load_scenario("top.toml")
    assert scenario.name == "top"
    assert scenario.response.pause_s == 60.0
    assert scenario.oracle.stale_after_restart_blocks == 3
    assert scenario.chain == load_scenario("paradex-2026").chain


def test_an_error_in_a_base_file_names_the_base_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "lib/base.toml", 'name = "base"\n\n[chain]\naccounts = -3\n')
    write(tmp_path, "top.toml", 'name = "top"\nextends = "lib/base.toml"\n')
    with pytest.raises(errors.OutOfRangeError) as info:
        load_scenario("top.toml")
    assert str(info.value) == "lib/base.toml:4: chain.accounts: -3 must be at least 1"


@pytest.mark.parametrize(
    "files, start, expected",
    [
        ({"a.toml": 'name = "a"\nextends = "a.toml"\n'}, "a.toml", 'a.toml:2: extends: "a.toml" leads back to itself'),
        (
            {"a.toml": 'name = "a"\nextends = "b.toml"\n', "b.toml": 'name = "b"\n\nextends = "a.toml"\n'},
            "a.toml",
            'b.toml:3: extends: "a.toml" leads back to itself: a.toml -> b.toml -> a.toml',
        ),
        (
            {"a.toml": 'name = "a"\nextends = "sub/b.toml"\n', "sub/b.toml": 'name = "b"\nextends = "../a.toml"\n'},
            "a.toml",
            'sub/b.toml:2: extends: "../a.toml" leads back to itself: a.toml -> sub/b.toml -> a.toml',
        ),
    ],
)
def test_extends_cycles_are_named(tmp_path, monkeypatch, files, start, expected):
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(errors.ExtendsCycleError) as info:
        load_scenario(start)
    assert str(info.value).startswith(expected)


# ----------------------------------------------------------------------------- bad input

# (case, file text, error class, expected message prefix); the file is always bad.toml.
BAD_INPUT = [
    ("broken TOML", 'name = "x"\n[chain\n', errors.ScenarioSyntaxError, "bad.toml:2:7: invalid TOML"),
    ("no name", "seed = 1\n", errors.MissingKeyError, "bad.toml: name: required key is missing"),
    (
        "unknown key",
        'name = "x"\n[validators]\ncont = 4\n',
        errors.UnknownKeyError,
        'bad.toml:3: validators.cont: unknown key; did you mean "count"?',
    ),
    (
        "unknown table",
        'name = "x"\n[validatorz]\ncount = 4\n',
        errors.UnknownKeyError,
        "bad.toml:2: validatorz: unknown key",
    ),
    (
        "wrong type",
        'name = "x"\n[chain]\naccounts = "many"\n',
        errors.WrongTypeError,
        'bad.toml:3: chain.accounts: "many" is not an integer',
    ),
    (
        "negative count",
        'name = "x"\n[validators]\ncount = -1\n',
        errors.OutOfRangeError,
        "bad.toml:3: validators.count: -1 must be at least 1",
    ),
    (
        "byzantine index",
        'name = "x"\n[validators]\ncount = 4\n\n[[validators.byzantine]]\nindex = 7\nbehaviour = "crash"\n',
        errors.OutOfRangeError,
        "bad.toml:6: validators.byzantine[0].index: 7 is out of range for 4 validators",
    ),
    (
        "unknown behaviour",
        'name = "x"\n[validators]\nbyzantine = [\n  {index = 0, behaviour = "crash"},\n'
        '  {index = 1, behaviour = "liar"},\n]\n',
        errors.InvalidChoiceError,
        'bad.toml:5: validators.byzantine[1].behaviour: "liar" is not one of crash, equivocate',
    ),
    (
        "unknown extends",
        'name = "x"\nextends = "nope"\n',
        errors.UnknownExtendsError,
        'bad.toml:2: extends: "nope" is not a bundled scenario',
    ),
    (
        "probability",
        'name = "x"\n[workload]\ntrade_probability = 1.5\n',
        errors.OutOfRangeError,
        "bad.toml:3: workload.trade_probability: 1.5 is not a probability in [0, 1]",
    ),
    (
        "unknown mode",
        'name = "x"\n[response]\nmode = "undo"\n',
        errors.InvalidChoiceError,
        'bad.toml:3: response.mode: "undo" is not one of full-rollback',
    ),
    (
        "empty window",
        'name = "x"\n[network]\npartitions = [{start_s = 5.0, end_s = 5.0, groups = [[0, 1], [2, 3]]}]\n',
        errors.InconsistentScenarioError,
        "bad.toml:3: network.partitions[0].end_s: 5.0 is not after start_s = 5.0",
    ),
    (
        "partition index",
        'name = "x"\n[[network.partitions]]\nstart_s = 0\nend_s = 60\ngroups = [\n  [0, 1],\n  [2, 9],\n]\n',
        errors.OutOfRangeError,
        "bad.toml:7: network.partitions[0].groups[1][1]: 9 is out of range for 4 validators",
    ),
    (
        "duplicate index",
        'name = "x"\n[validators]\nbyzantine = [{index = 1, behaviour = "crash"}, {index = 1, behaviour = "crash"}]\n',
        errors.InconsistentScenarioError,
        "bad.toml:3: validators.byzantine[1].index: validator 1 is listed twice",
    ),
    ("not utf-8", b'name = "x"\n\xff = 1\n', errors.ScenarioSyntaxError, "bad.toml:2: not UTF-8 text"),
]


@pytest.mark.parametrize("case, text, error, prefix", BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_names_file_line_field_and_value(tmp_path, monkeypatch, case, text, error, prefix):
    monkeypatch.chdir(tmp_path)
    if isinstance(text, bytes):
        (tmp_path / "bad.toml").write_bytes(text)
    else:
        (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(error) as info:
        load_scenario("bad.toml")
    assert str(info.value).startswith(prefix)


def test_missing_file_and_unknown_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.ScenarioNotFoundError, match=r"^gone\.toml: no such scenario file$"):
        load_scenario("gone.toml")
    with pytest.raises(errors.ScenarioNotFoundError, match=r'^unknown scenario "paradox"; bundled: '):
        load_scenario("paradox")


def test_errors_carry_the_offending_value(tmp_path):
    path = write(tmp_path, "bad.toml", 'name = "x"\n[validators]\ncount = -1\n')
    with pytest.raises(errors.OutOfRangeError) as info:
        load_scenario(path)
    assert (info.value.value, info.value.field, info.value.line) == (-1, "validators.count", 3)


# ----------------------------------------------------------------------------- key lines

KEY_LINES_TEXT = """\
name = "x"
description = '''
[validators]
count = 1
'''
chain.accounts = 5

[validators]
count = 4 # [not a table]
byzantine = [
  { index = 0, behaviour = "crash" },  # "quoted ] bracket"
  { index = 1, behaviour = "amnesia" },
]

[[network.partitions]]
start_s = 0
groups = [[0], [1]]

[[network.partitions]]
groups = [
  [0, 1],
  [2],
]
"""


@pytest.mark.parametrize(
    "path, line",
    [
        (("name",), 1),
        (("description",), 2),
        (("chain", "accounts"), 6),
        (("validators",), 8),
        (("validators", "count"), 9),
        (("validators", "byzantine"), 10),
        (("validators", "byzantine", 1, "behaviour"), 12),
        (("network", "partitions", 0, "start_s"), 16),
        (("network", "partitions", 0, "groups", 1, 0), 17),
        (("network", "partitions", 1), 19),
        (("network", "partitions", 1, "groups", 1, 0), 22),
        (("incident", "market"), None),
    ],
)
def test_find_key_line_follows_tables_arrays_and_strings(path, line):
    assert find_key_line(KEY_LINES_TEXT, path) == line
