"""Typed errors of the scenarios layer: bad input from a user, carrying the offending value.

Every error renders as one line, `FILE:LINE: FIELD: REASON`, leaving out the
parts that are not known (a missing file has no line; broken TOML has no field).
The CLI prints that line after `l2sim: ` and exits with status 2.
"""

import datetime
import json
import math
from typing import Any

_MAX_VALUE_CHARS = 60


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


#: Marks an error that carries no offending value (distinct from a value of None).
NO_VALUE: Any = _NoValue()


class ScenarioError(Exception):
    """Raised when a scenario cannot be found, parsed or validated, or another input of a
    command is bad: an output path, a saved run (base class)."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        value: Any = NO_VALUE,
    ):
        self.reason = _one_line(reason)
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.value = value
        super().__init__(self.format())

    def format(self) -> str:
        """The one-line message: `FILE:LINE[:COLUMN]: FIELD: REASON`."""
        location = ""
        if self.file is not None:
            location = _one_line(self.file)
            if self.line is not None:
                location += f":{self.line}"
                if self.column is not None:
                    location += f":{self.column}"
        parts = [p for p in (location, self.field) if p]
        return ": ".join([*parts, self.reason])

    def __str__(self) -> str:
        return self.format()


class ScenarioNotFoundError(ScenarioError):
    """Raised when a scenario name is not bundled and no readable file exists at the path."""


class UnknownExtendsError(ScenarioNotFoundError):
    """Raised when `extends` names neither a bundled scenario nor a file next to the extending one."""


class ExtendsCycleError(ScenarioError):
    """Raised when a chain of `extends` leads back to a scenario already in it (or is too deep)."""


class ScenarioSyntaxError(ScenarioError):
    """Raised when a scenario file is not valid UTF-8 TOML."""


class UnknownKeyError(ScenarioError):
    """Raised when a scenario file has a key (or table) that the schema does not define."""


class MissingKeyError(ScenarioError):
    """Raised when a key without a default (`name`) is absent."""


class WrongTypeError(ScenarioError):
    """Raised when a value has the wrong TOML type (a string where an integer belongs, ...)."""


class InvalidValueError(ScenarioError):
    """Raised when a value has the right type but is not allowed (base of the value errors)."""


class OutOfRangeError(InvalidValueError):
    """Raised when a number is outside its bounds: a negative count, a probability above 1, a validator index."""


class InvalidChoiceError(InvalidValueError):
    """Raised when a value is not one of a fixed set: a behaviour, market, response mode or policy."""


class InconsistentScenarioError(InvalidValueError):
    """Raised when values are valid alone but contradict each other: a duplicate index, an empty time window."""


def format_value(value: Any) -> str:
    """Render a user's value as it would read in TOML, on one line and at most 60 characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, (datetime.date, datetime.time)):
        text = value.isoformat()
    elif value is None:
        text = "nothing"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except ValueError:  # circular containers cannot come from TOML; repr is a safe fallback
            text = repr(value)
    text = _one_line(text)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class OutputPathError(ScenarioError):
    """Raised when an output path (`--json`, `--data-dir`, ...) cannot be written: a missing
    or read-only directory, a directory given for a file, a file given for a directory."""


class UsedDataDirError(OutputPathError):
    """Raised when a data directory already holds something: a saved run (replaced only with
    `--force`) or files that are not a run (never replaced)."""


class DataDirLockedError(UsedDataDirError):
    """Raised when another l2sim process holds the lock of a data directory or output path."""


class SavedRunError(ScenarioError):
    """Raised when `l2sim inspect` is pointed at something that is not a readable saved run,
    or asked for a validator or account it does not hold."""


class RunFailed(AssertionError):
    """Raised when an internal invariant of a run breaks: a bug in l2sim, not bad input
    (the command exits 1 with the seed and the command that reproduces it, never 2)."""

    def __init__(self, reason: str, *, seed: int | None = None):
        super().__init__(_one_line(reason) if seed is None else f"{_one_line(reason)} (seed {seed})")
        self.reason = _one_line(reason)
        self.seed = seed
