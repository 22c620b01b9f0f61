"""Scenario files: find them, read them, resolve `extends`, validate, and write them back.

A scenario is named either by a bundled name (`paradex-2026`, a file in
`scenarios/library/`) or by a path to a TOML file. `extends` starts from another
scenario (a bundled name, or a path relative to the extending file); tables merge
key by key, arrays and scalars replace. Every file in the chain must give its own
`name`; the resolved scenario carries no `extends`.

Two layers can go on top of the resolved file, in this order: the small preset
(`small=True`, `l2sim run --small`: the same faults and response with fewer accounts,
traders and heights) and overrides (`{"detection.delay_blocks": 2}`, `--set KEY=VALUE`),
each merged like one more file that extends the scenario.

Every failure is a `ScenarioError` whose message is one line naming the file, the
line where it can be found, the dotted field and the bad value; a bad override is
named by its key, after `--set` (the command) or `overrides` (the Python API).
"""

import dataclasses
import difflib
import errno
import importlib.resources
import math
import os
import re
import stat
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from scenarios.errors import (
    NO_VALUE,
    ExtendsCycleError,
    InconsistentScenarioError,
    InvalidChoiceError,
    InvalidValueError,
    MissingKeyError,
    OutOfRangeError,
    ScenarioError,
    ScenarioNotFoundError,
    ScenarioSyntaxError,
    UnknownExtendsError,
    UnknownKeyError,
    WrongTypeError,
    format_value,
)
from scenarios.schema import FieldPath, Scenario, format_path

LIBRARY_PACKAGE = "scenarios.library"
MAX_EXTENDS_DEPTH = 16
MAX_SCENARIO_BYTES = 1_000_000
MAX_NESTING_DEPTH = 16

# The small preset: the most of each that a small run keeps (a scenario already below keeps
# its own); and, when it cuts the traders, the trade probability the fewer traders take at
# least, so that blocks still carry trades (a scenario without trading keeps none).
SMALL_AT_MOST: dict[str, int] = {
    "chain.accounts": 80,
    "chain.heights": 16,
    "incident.start_height": 10,
    "incident.duration_blocks": 4,
    "detection.delay_blocks": 2,
    "workload.traders": 30,
    "workload.keepers": 2,
    "workload.profit_takers": 4,
    "workload.max_liquidations_per_keeper": 20,
}
SMALL_TRADE_PROBABILITY = 0.05
SMALL_NAME_PREFIX = "small-"
# What follows the restart (cancel-only, post-only, a stale feed) shrinks with the chain's
# tail after the incident, each phase to at least this many blocks, and the chain grows
# to hold it and then this many blocks of open trading (the audit pays in the first).
SMALL_MIN_PHASE_BLOCKS = 2
SMALL_OPEN_BLOCKS = 3
# A selective restore restarts two heights after the halt (the restore block, then the
# first block of the new fork); a rollback restarts earlier.
SMALL_RESTART_AFTER_HALT = 2
_DOTTED_KEY = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")


@dataclasses.dataclass(frozen=True)
class ScenarioSource:
    """One scenario file as read: how errors name it, its text and its parsed table."""

    display: str  # as errors name it: the path as given, or `NAME.toml` for a bundled one
    identity: str  # equal for the same file however it was reached; detects cycles
    text: str
    data: dict[str, Any]
    directory: Path | None  # where relative `extends` paths resolve; None when bundled


# ----------------------------------------------------------------------------- public API


def get_bundled_names() -> list[str]:
    """Names of the bundled scenarios, sorted."""
    library = importlib.resources.files(LIBRARY_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in library.iterdir() if p.name.endswith(".toml"))


def load_scenario(
    name_or_path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    small: bool = False,
    overrides_label: str = "overrides",
) -> Scenario:
    """The resolved, validated scenario for a bundled name or a TOML path.

    `small` applies the small preset; `overrides` maps dotted keys to values (errors name
    them after `overrides_label`).
    """
    return compute_layered_scenario(read_scenario_chain(name_or_path), overrides=overrides, small=small,
                                    overrides_label=overrides_label)


def load_scenario_table(
    data: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    small: bool = False,
    label: str = "<dict>",
    overrides_label: str = "overrides",
) -> Scenario:
    """The resolved, validated scenario a TOML-shaped table describes, as if it were a file.

    Errors name it `label`; a relative `extends` resolves against the current directory.
    """
    if not isinstance(data, Mapping):
        raise WrongTypeError(f"{format_value(data)} is not a table", file=label, value=data)
    source = ScenarioSource(display=label, identity=f"table:{label}", text="", data=dict(data),
                            directory=Path("."))
    _check_source(source)
    return compute_layered_scenario(_read_extends(source), overrides=overrides, small=small,
                                    overrides_label=overrides_label)


def compute_layered_scenario(
    chain: list[ScenarioSource],
    *,
    overrides: Mapping[str, Any] | None = None,
    small: bool = False,
    overrides_label: str = "overrides",
) -> Scenario:
    """`compute_scenario(chain)` with the small preset, then `overrides`, merged on top."""
    if small:
        table = expand_dotted_keys(compute_small_overrides(compute_scenario(chain)), label="--small")
        chain = [_layer("--small", table), *chain]
    if overrides:
        chain = [_layer(overrides_label, expand_dotted_keys(overrides, label=overrides_label)), *chain]
    return compute_scenario(chain)


def compute_small_overrides(scenario: Scenario) -> dict[str, Any]:
    """The dotted keys the small preset changes in `scenario`, with their new values.

    Sizes are capped (`SMALL_AT_MOST`, `SMALL_TRADE_PROBABILITY`); the incident moves earlier, and an
    operator halt and every partition and crash move with it, so each fault lands where it
    did relative to the incident (times after its start shift by the same amount, times
    before it shrink in proportion). Faults, validators and the response are kept.
    """
    data = scenario.model_dump(mode="python")
    changes: dict[str, Any] = {"name": (SMALL_NAME_PREFIX + scenario.name)[:64]}
    for key, most in SMALL_AT_MOST.items():
        if _get_dotted(data, key) > most:
            changes[key] = most
    probability = scenario.workload.trade_probability
    if "workload.traders" in changes and 0 < probability < SMALL_TRADE_PROBABILITY:
        changes["workload.trade_probability"] = SMALL_TRADE_PROBABILITY
    old_start = scenario.incident.start_height
    new_start = changes.get("incident.start_height", old_start)
    heights = changes.get("chain.heights", scenario.chain.heights)
    halt = scenario.detection.operator_halt_height
    if halt is not None and min(heights, halt - old_start + new_start) != halt:
        changes["detection.operator_halt_height"] = min(heights, halt - old_start + new_start)
    changes.update(_compute_small_reopening(scenario, changes))
    if new_start != old_start:
        shift = _make_time_shift(old_start * scenario.chain.block_time_s, new_start * scenario.chain.block_time_s)
        network = scenario.network
        if network.partitions:
            changes["network.partitions"] = [
                dict(p.model_dump(mode="python"), start_s=shift(p.start_s), end_s=shift(p.end_s))
                for p in network.partitions
            ]
        if network.crashes:
            changes["network.crashes"] = [
                dict(c.model_dump(mode="python", exclude_none=True), at_s=shift(c.at_s),
                     **({} if c.restart_s is None else {"restart_s": shift(c.restart_s)}))
                for c in network.crashes
            ]
    return changes


def _compute_small_reopening(scenario: Scenario, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The small preset's keys for what follows the restart: the reopening's phases and the
    stale feed scaled by the tail the small chain keeps after the incident (heights after
    `incident.start_height`), each phase at least `SMALL_MIN_PHASE_BLOCKS` and never longer
    than it was, and `chain.heights` raised so that the restart, every phase and
    `SMALL_OPEN_BLOCKS` of open trading all fit."""
    heights = changes.get("chain.heights", scenario.chain.heights)
    start = changes.get("incident.start_height", scenario.incident.start_height)
    full_tail = scenario.chain.heights - scenario.incident.start_height
    ratio = (heights - start) / full_tail
    if ratio >= 1:
        return {}
    block_s = scenario.chain.block_time_s

    def scaled(blocks: int) -> int:
        return min(blocks, max(SMALL_MIN_PHASE_BLOCKS, round(blocks * ratio))) if blocks > 0 else 0

    out: dict[str, Any] = {}
    reopening = 0
    response = scenario.response
    for key, seconds in (("response.cancel_only_s", response.cancel_only_s), ("response.post_only_s", response.post_only_s)):
        blocks = int(seconds / block_s)
        if scaled(blocks) != blocks:
            out[key] = compute_seconds_for_blocks(scaled(blocks), block_s)
        reopening += scaled(blocks)
    stale = scaled(scenario.oracle.stale_after_restart_blocks)
    if stale != scenario.oracle.stale_after_restart_blocks:
        out["oracle.stale_after_restart_blocks"] = stale
    after_restart = max(reopening, stale) + SMALL_OPEN_BLOCKS if max(reopening, stale) else 0
    halt = changes.get("detection.operator_halt_height", scenario.detection.operator_halt_height)
    if halt is None:
        halt = start + changes.get("detection.delay_blocks", scenario.detection.delay_blocks)
    # Never longer than the full-length chain: what it does not reach, the small one need not.
    needed = min(scenario.chain.heights, halt + SMALL_RESTART_AFTER_HALT + after_restart - 1)
    if needed > heights:
        out["chain.heights"] = needed
    return out


def compute_seconds_for_blocks(blocks: int, block_s: float) -> float:
    """The fewest seconds that make `blocks` whole blocks of `block_s` (`int(s / block_s)`,
    as the runner counts them, despite binary rounding)."""
    seconds = blocks * block_s
    for _ in range(8):  # a product of two doubles is off by at most an ulp or two
        if int(seconds / block_s) >= blocks:
            return seconds
        seconds = math.nextafter(seconds, math.inf)
    raise AssertionError(f"no seconds give {blocks} blocks of {block_s} s")


def describe_small_preset(scenario: Scenario) -> list[str]:
    """One line per key the small preset changes in `scenario`: `key = new (was old)`."""
    data = scenario.model_dump(mode="python")
    changes = compute_small_overrides(scenario)
    lines = []
    for key, option in zip(sorted(changes), format_set_options(changes), strict=True):
        was = format_set_options({key: _get_dotted(data, key)})[0].partition("=")[2]
        lines.append(f"{key} = {option.partition('=')[2]} (was {was})")
    return lines


def _make_time_shift(old_s: float, new_s: float):
    """Virtual time of a fault when the incident moves from `old_s` to `new_s` (monotonic)."""

    def shift(t: float) -> float:
        # Not rounded: rounding could merge two distinct times into an empty window.
        return t - (old_s - new_s) if t >= old_s else t * new_s / old_s

    return shift


def parse_set_options(pairs: Sequence[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` options as overrides: dotted keys, values in TOML syntax.

    A value that is not TOML (a bare word such as `selective-restore`) is taken as a string.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioSyntaxError(f"{format_value(pair)} is not KEY=VALUE", file="--set", value=pair)
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        except RecursionError:
            raise ScenarioSyntaxError(f"{key}: nested too deeply", file="--set", value=pair) from None
        if key in overrides:
            raise InconsistentScenarioError("set twice", file="--set", field=key, value=value)
        overrides[key] = value
    return overrides


def format_set_options(overrides: Mapping[str, Any]) -> list[str]:
    """`overrides` as `--set KEY=VALUE` arguments, values in TOML syntax, keys sorted."""
    return [f"{key}={_toml_value(overrides[key])}" for key in sorted(overrides)]


def _toml_value(value: Any) -> str:
    """`value` as TOML text on one line (arrays and inline tables, never `[[sections]]`)."""
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")  # tomli_w writes a scalar exactly


def _toml_key(key: Any) -> str:
    return tomli_w.dumps({str(key): 0}).strip().removesuffix(" = 0")


def expand_dotted_keys(overrides: Mapping[str, Any], *, label: str) -> dict[str, Any]:
    """`{"detection.delay_blocks": 2}` -> `{"detection": {"delay_blocks": 2}}`, checking every key."""
    for key in overrides:
        if not isinstance(key, str) or not _DOTTED_KEY.match(key):
            raise InvalidValueError(
                f"{format_value(key)} is not a dotted key such as detection.delay_blocks", file=label, value=key
            )
        if key.split(".")[0] == "extends":
            raise InvalidValueError("cannot be overridden: name the scenario to extend instead", file=label,
                                    field=key, value=overrides[key])
    table: dict[str, Any] = {}
    leaves: set[tuple[str, ...]] = set()
    for key in sorted(overrides):  # a key sorts before every key inside it
        parts = tuple(key.split("."))
        for k in range(1, len(parts)):
            if parts[:k] in leaves:
                raise InconsistentScenarioError(
                    f"is inside {'.'.join(parts[:k])}, which is set too", file=label, field=key,
                    value=overrides[key],
                )
        parent = table
        for part in parts[:-1]:
            parent = parent.setdefault(part, {})
        parent[parts[-1]] = overrides[key]
        leaves.add(parts)
    return table


def _get_dotted(data: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _layer(label: str, table: dict[str, Any]) -> ScenarioSource:
    """A table merged on top of a scenario, named `label` in errors (it has no lines)."""
    return ScenarioSource(display=label, identity=f"layer:{label}", text="", data=table, directory=None)


def parse_scenario(text: str, *, file: str = "<string>", directory: Path | None = None) -> Scenario:
    """The resolved, validated scenario written in `text` (errors name it `file`).

    A relative `extends` resolves against `directory` (the current directory when None).
    """
    source = _parse_source(text, display=file, identity=f"text:{file}", directory=directory or Path("."))
    return compute_scenario(_read_extends(source))


def read_scenario_chain(name_or_path: str | os.PathLike[str]) -> list[ScenarioSource]:
    """The scenario and, in order, each one it extends (most derived first)."""
    return _read_extends(_open_top(name_or_path))


def compute_scenario(chain: list[ScenarioSource]) -> Scenario:
    """Merge a chain of sources (most derived first) and validate the result."""
    assert chain, "a chain holds at least the scenario itself"
    merged: dict[str, Any] = {}
    for source in reversed(chain):
        merged = merge_tables(merged, source.data)
    merged.pop("extends", None)
    try:
        return Scenario.model_validate(merged)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        raise _compute_field_error(errors[0], chain, more=len(errors) - 1) from None


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: tables merge key by key; arrays and scalars replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def dump_scenario(scenario: Scenario) -> str:
    """TOML of a resolved scenario, every key written out, None values left out."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    return tomli_w.dumps(data)  # multi-line strings would not keep a "\r\n" exactly


def find_key_line(text: str, path: FieldPath) -> int | None:
    """1-based line of the key at `path` in TOML `text`, or of its nearest enclosing key or table.

    Best effort: scans the text rather than parsing it, so it follows `[table]`,
    `[[array.of.tables]]`, dotted keys and the elements of multi-line arrays.
    """
    lines = compute_key_lines(text)
    for k in range(len(path), 0, -1):
        line = lines.get(tuple(path[:k]))
        if line is not None:
            return line
    return None


# ----------------------------------------------------------------------------- opening files


def _is_path_like(name: str) -> bool:
    return name.endswith(".toml") or "/" in name or "\\" in name


def _open_top(name_or_path: str | os.PathLike[str]) -> ScenarioSource:
    if isinstance(name_or_path, os.PathLike):
        return _open_file(Path(name_or_path), display=os.fspath(name_or_path))
    name = str(name_or_path)
    if not _is_path_like(name):
        if name in get_bundled_names():
            return _open_bundled(name)
        if not _is_file(Path(name)):
            raise ScenarioNotFoundError(
                f"unknown scenario {format_value(name)}; bundled: {', '.join(get_bundled_names())}",
                value=name,
            )
    return _open_file(Path(name), display=name)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the OS, a NUL byte: not a file either way
        return False


def _open_bundled(name: str) -> ScenarioSource:
    resource = importlib.resources.files(LIBRARY_PACKAGE) / f"{name}.toml"
    display = f"{name}.toml"
    text = _decode(resource.read_bytes(), display)
    return _parse_source(text, display=display, identity=f"bundled:{name}", directory=None)


def _open_file(path: Path, *, display: str) -> ScenarioSource:
    try:
        raw = read_scenario_bytes(path)
    except FileNotFoundError:
        raise ScenarioNotFoundError("no such scenario file", file=display, value=display) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        reason = getattr(e, "strerror", None) or str(e)
        raise ScenarioNotFoundError(f"cannot read: {reason}", file=display, value=display) from None
    return _parse_source(
        _decode(raw, display), display=display, identity=f"file:{path.resolve()}", directory=path.parent
    )


def read_scenario_bytes(path: Path) -> bytes:
    """The bytes of a scenario file: a regular file of at most MAX_SCENARIO_BYTES (`/dev/zero`
    would be read without end, a named pipe would wait for a writer for ever). OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a pipe opens without waiting
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(os.dup(fd), "rb") as stream:
            raw = stream.read(MAX_SCENARIO_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_SCENARIO_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SCENARIO_BYTES // 1000} kB (a scenario is a few kB)")
    return raw


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioSyntaxError("not UTF-8 text", file=display, line=line) from None


_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def _parse_source(text: str, *, display: str, identity: str, directory: Path | None) -> ScenarioSource:
    try:
        data = tomllib.loads(text)
        depth = compute_nesting_depth(data)
    except RecursionError:  # tomllib parses nested arrays by recursion
        depth = MAX_NESTING_DEPTH + 1
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        match = _TOML_POSITION.search(message)
        line = column = None
        if match is not None:
            message = message[: match.start()]
            if match.group(1) is not None:
                line, column = int(match.group(1)), int(match.group(2))
            else:
                line = max(1, len(text.rstrip("\n").split("\n")))
        raise ScenarioSyntaxError(f"invalid TOML: {message}", file=display, line=line, column=column) from None
    if depth > MAX_NESTING_DEPTH:
        raise ScenarioSyntaxError(f"nested more than {MAX_NESTING_DEPTH} arrays or tables deep (a scenario needs 6)",
                                  file=display)
    source = ScenarioSource(display=display, identity=identity, text=text, data=data, directory=directory)
    _check_source(source)
    return source


def compute_nesting_depth(value: Any) -> int:
    """How many arrays and tables deep `value` goes (a scalar is 0)."""
    depth, level = 0, [value]
    while True:  # level by level: a deep value cannot exhaust the stack
        containers = [item for item in level if isinstance(item, (list, dict))]
        if not containers:
            return depth
        depth += 1
        level = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]


def _check_source(source: ScenarioSource) -> None:
    """What every file of a chain must hold before merging: its own `name`, a usable `extends`."""
    if "name" not in source.data:
        raise MissingKeyError(
            "required key is missing (every scenario file names itself)", file=source.display, field="name"
        )
    extends = source.data.get("extends")
    if extends is not None and not (isinstance(extends, str) and extends):
        raise WrongTypeError(
            f"{format_value(extends)} is not a scenario name or path",
            file=source.display,
            line=find_key_line(source.text, ("extends",)),
            field="extends",
            value=extends,
        )


def _read_extends(source: ScenarioSource) -> list[ScenarioSource]:
    chain = [source]
    for _ in range(MAX_EXTENDS_DEPTH):
        current = chain[-1]
        extends = current.data.get("extends")
        if extends is None:
            return chain
        parent = _open_extends(extends, current)
        if any(s.identity == parent.identity for s in chain):
            trail = " -> ".join([*(s.display for s in chain), parent.display])
            raise ExtendsCycleError(
                f"{format_value(extends)} leads back to itself: {trail}",
                file=current.display,
                line=find_key_line(current.text, ("extends",)),
                field="extends",
                value=extends,
            )
        chain.append(parent)
    current = chain[-1]
    raise ExtendsCycleError(
        f"more than {MAX_EXTENDS_DEPTH} scenarios deep",
        file=current.display,
        line=find_key_line(current.text, ("extends",)),
        field="extends",
        value=current.data.get("extends"),
    )


def _open_extends(extends: str, source: ScenarioSource) -> ScenarioSource:
    bundled = get_bundled_names()
    if not _is_path_like(extends) and extends in bundled:
        return _open_bundled(extends)
    if source.directory is not None:
        path = source.directory / extends
        if _is_file(path):
            display = os.path.normpath(os.path.join(os.path.dirname(source.display), extends))
            return _open_file(path, display=display)
    where = "a file next to it" if source.directory is not None else "bundled scenarios extend bundled names"
    raise UnknownExtendsError(
        f"{format_value(extends)} is not a bundled scenario ({', '.join(bundled)}) or {where}",
        file=source.display,
        line=find_key_line(source.text, ("extends",)),
        field="extends",
        value=extends,
    )


# ----------------------------------------------------------------------------- validation errors


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "tuple_type": "an array",
    "list_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}

_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}

_CUSTOM_KINDS: dict[str, type[ScenarioError]] = {
    "out_of_range": OutOfRangeError,
    "inconsistent": InconsistentScenarioError,
}


def _compute_field_error(err: dict[str, Any], chain: list[ScenarioSource], *, more: int) -> ScenarioError:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    loc: FieldPath = tuple(err["loc"])
    value = err.get("input", NO_VALUE)
    if "path" in ctx:
        loc = loc + tuple(ctx["path"])
        value = ctx["value"]
    shown = format_value(value)

    cls: type[ScenarioError]
    if kind == "extra_forbidden":
        cls, reason = UnknownKeyError, _describe_unknown_key(loc)
    elif kind == "missing":
        cls, reason, value = MissingKeyError, "required key is missing", NO_VALUE
    elif kind in _TYPE_NAMES:
        cls, reason = WrongTypeError, f"{shown} is not {_TYPE_NAMES[kind]}"
    elif kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", ctx.get("expected", "")))
        cls, reason = InvalidChoiceError, f"{shown} is not one of {choices}"
    elif kind in _BOUNDS:
        bound, template = _BOUNDS[kind]
        cls, reason = OutOfRangeError, f"{shown} {template.format(format_value(ctx.get(bound)))}"
    elif kind in _CUSTOM_KINDS:
        cls, reason = _CUSTOM_KINDS[kind], ctx["reason"]
    elif kind == "finite_number":
        cls, reason = InvalidValueError, f"{shown} is not a finite number"
    elif kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length")
        reason = "must not be empty" if least == 1 else f"{shown} must have at least {least} items"
        cls = InvalidValueError
    elif kind in ("too_long", "string_too_long"):
        cls, reason = InvalidValueError, f"{shown} is longer than {ctx.get('max_length')}"
    elif kind == "string_pattern_mismatch":
        cls, reason = InvalidValueError, f"{shown} must match {ctx.get('pattern')}"
    else:
        cls, reason = InvalidValueError, f"{shown}: {err.get('msg', kind)}"
    if more:
        reason += f" (and {more} more {'error' if more == 1 else 'errors'})"

    owner = _find_owner(chain, loc)
    return cls(
        reason,
        file=owner.display,
        line=find_key_line(owner.text, loc),
        field=format_path(loc) or None,
        value=value,
    )


def _describe_unknown_key(loc: FieldPath) -> str:
    model = _get_model_at(loc[:-1])
    if model is None:
        return "unknown key"
    valid = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    if close:
        return f'unknown key; did you mean "{close[0]}"?'
    return f"unknown key; expected one of {', '.join(valid)}"


def _get_model_at(path: FieldPath) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        assert model is not None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _find_model(field.annotation)
        if model is None:
            return None
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _find_owner(chain: list[ScenarioSource], loc: FieldPath) -> ScenarioSource:
    """The most derived file that sets the deepest part of `loc` (arrays replace, so it owns them)."""
    for k in range(len(loc), 0, -1):
        for source in chain:
            if _has_path(source.data, loc[:k]):
                return source
    return chain[0]


def _has_path(data: Any, path: FieldPath) -> bool:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False
    return True


# ----------------------------------------------------------------------------- key lines

_KEY_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEYS = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_KEYS})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_KEYS})\s*\]")
_KEY_VALUE = re.compile(rf"^\s*({_KEYS})\s*=(.*)$")


def compute_key_lines(text: str) -> dict[FieldPath, int]:
    """First line (1-based) of every table, key and multi-line array element in TOML `text`."""
    lines: dict[FieldPath, int] = {}
    table: FieldPath = ()
    last_index: dict[FieldPath, int] = {}  # array of tables -> index of its latest element
    open_string: str | None = None  # delimiter of a multi-line string being skipped
    array = _ArrayScan()
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if open_string is not None:
            end = raw.find(open_string)
            if end < 0:
                continue
            code, open_string = _strip_strings(raw[end + 3 :])
            array.feed(code, lineno, lines)
            continue
        if array.depth > 0:
            code, open_string = _strip_strings(raw)
            array.feed(code, lineno, lines)
            continue
        if m := _ARRAY_HEADER.match(raw):
            parent = _resolve(_split_keys(m.group(1)), last_index)
            index = last_index.get(parent, -1) + 1
            last_index[parent] = index
            table = parent + (index,)
            lines.setdefault(parent, lineno)
            lines.setdefault(table, lineno)
        elif m := _TABLE_HEADER.match(raw):
            table = _resolve(_split_keys(m.group(1)), last_index)
            lines.setdefault(table, lineno)
        elif m := _KEY_VALUE.match(raw):
            path = table + _split_keys(m.group(1))
            lines.setdefault(path, lineno)
            code, open_string = _strip_strings(m.group(2))
            array = _ArrayScan(path=path)
            array.feed(code, lineno, lines)
    return lines


class _ArrayScan:
    """Tracks a multi-line array value to find the line of each top-level element."""

    def __init__(self, path: FieldPath = ()):
        self.path = path
        self.depth = 0
        self.count = 0
        self.expecting = False

    def feed(self, code: str, lineno: int, lines: dict[FieldPath, int]) -> None:
        for c in code:
            if self.depth == 1 and self.expecting and c not in " \t\r,]}":
                lines.setdefault(self.path + (self.count,), lineno)
                self.count += 1
                self.expecting = False
            if c in "[{":
                self.depth += 1
                if self.depth == 1:
                    self.expecting = c == "["
            elif c in "]}":
                self.depth = max(0, self.depth - 1)
            elif c == "," and self.depth == 1:
                self.expecting = True


def _strip_strings(line: str) -> tuple[str, str | None]:
    """`line` with string contents and comments removed; and the delimiter of a string left open."""
    out: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if line.startswith('"""', i) or line.startswith("'''", i):
            delimiter = line[i : i + 3]
            end = line.find(delimiter, i + 3)
            out.append('""')
            if end < 0:
                return "".join(out), delimiter
            i = end + 3
        elif c in "\"'":
            j = i + 1
            while j < len(line) and line[j] != c:
                j += 2 if c == '"' and line[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "#":
            break
        else:
            out.append(c)
            i += 1
    return "".join(out), None


def _split_keys(keys: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, keys)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _resolve(parts: tuple[str, ...], last_index: dict[FieldPath, int]) -> FieldPath:
    """A header's path with the current element of every enclosing array of tables filled in."""
    path: FieldPath = ()
    for k, part in enumerate(parts):
        path += (part,)
        if k < len(parts) - 1 and path in last_index:
            path += (last_index[path],)
    return path
