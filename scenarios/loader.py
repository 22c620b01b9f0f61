"""Scenario files: find them, read them, resolve `extends`, validate, and write them back.

A scenario is named either by a bundled name (`paradex-2026`, a file in
`scenarios/library/`) or by a path to a TOML file. `extends` starts from another
scenario (a bundled name, or a path relative to the extending file); tables merge
key by key, arrays and scalars replace. Every file in the chain must give its own
`name`; the resolved scenario carries no `extends`.

Every failure is a `ScenarioError` whose message is one line naming the file, the
line where it can be found, the dotted field and the bad value.
"""

import dataclasses
import difflib
import importlib.resources
import os
import re
import tomllib
import typing
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


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """The resolved, validated scenario for a bundled name or a TOML path."""
    return compute_scenario(read_scenario_chain(name_or_path))


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
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioNotFoundError("no such scenario file", file=display, value=display) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        reason = getattr(e, "strerror", None) or str(e)
        raise ScenarioNotFoundError(f"cannot read: {reason}", file=display, value=display) from None
    return _parse_source(
        _decode(raw, display), display=display, identity=f"file:{path.resolve()}", directory=path.parent
    )


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
    source = ScenarioSource(display=display, identity=identity, text=text, data=data, directory=directory)
    if "name" not in data:
        raise MissingKeyError(
            "required key is missing (every scenario file names itself)", file=display, field="name"
        )
    extends = data.get("extends")
    if extends is not None and not (isinstance(extends, str) and extends):
        raise WrongTypeError(
            f"{format_value(extends)} is not a scenario name or path",
            file=display,
            line=find_key_line(text, ("extends",)),
            field="extends",
            value=extends,
        )
    return source


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
