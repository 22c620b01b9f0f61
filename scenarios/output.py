"""Where a run writes: output paths checked before the run starts, and files written atomically
(the data directory of a saved run, and who owns it, is `scenarios.datadir`'s).

A report or manifest is never half written: the text goes to a temporary file in the
same directory, is flushed to disk and renamed over the target, so a reader (or a run
killed at any moment) sees the old file or the new one.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chain.files import write_bytes_atomic
from scenarios.errors import OutputPathError, format_value


def check_output_file(path: str, option: str) -> None:
    """Refuse, before anything runs, a file path `option` (e.g. `--json`) could not be written to.

    `-` (stdout) is always fine. The file's directory must exist and take a new file (that
    is how the atomic write works); a directory is not a file.
    """
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise OutputPathError("is a directory, not a file", file=path, field=option)
    if target.exists() and not target.is_file():
        if not os.access(target, os.W_OK):  # a device or pipe is written in place
            raise OutputPathError("is not writable", file=path, field=option)
        return
    check_directory_takes_files(target.parent, path, option)


def check_directory_takes_files(directory: Path, path: str, option: str) -> None:
    if not directory.exists():
        raise OutputPathError(f"directory {directory} does not exist", file=path, field=option)
    if not directory.is_dir():
        raise OutputPathError(f"{directory} is not a directory", file=path, field=option)
    try:  # permissions alone do not tell (root ignores them; read-only mounts do not show)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".l2sim-probe-")
    except OSError as error:
        raise OutputPathError(f"cannot create files in {directory}: {error.strerror}", file=path,
                              field=option) from None
    os.close(fd)
    os.unlink(probe)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` whole or not at all (`chain.files.write_bytes_atomic`).

    A failure (a full disk, `/dev/full`, a directory gone) is an `OutputPathError` naming the
    path: what was written before stays, and the command ends with one line."""
    try:
        write_bytes_atomic(path, text.encode("utf-8"))
    except OSError as error:
        raise OutputPathError(f"cannot be written: {error.strerror or error}", file=os.fspath(path)) from None


def get_path_argument(value: object, name: str) -> str | None:
    """`value` as a path string (None stays None); anything but a str or path is refused by `name`."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return path
    raise OutputPathError(f"{format_value(repr(value))} is not a path", field=name, value=value)


def get_scenario_files(scenario: str) -> list[Path]:
    """The files a scenario is read from: its own (when it is a file) and each one it extends
    (bundled ones included), so that no output of the same command overwrites them."""
    from scenarios.loader import LIBRARY_PACKAGE, read_scenario_chain

    files = []
    for source in read_scenario_chain(scenario):
        kind, _, rest = source.identity.partition(":")
        if kind == "file":
            files.append(Path(rest))
        elif kind == "bundled":
            files.append(Path(str(importlib.resources.files(LIBRARY_PACKAGE) / f"{rest}.toml")))
    return files


def check_output_paths(outputs: dict[str, str | None], *, data_dir: str | None = None,
                       data_dir_option: str = "--data-dir", inputs: Sequence[Path] = ()) -> None:
    """Refuse, before anything runs, outputs of one command that would overwrite each other, a
    file it reads (`inputs`: the scenario and the files it extends) or its data directory.

    Each output (option -> path, None when not given, `-` for stdout) is also checked alone
    (`check_output_file`, with its write probe). Devices and pipes (`/dev/null`) may repeat.
    """
    taken: dict[str, str] = {}
    for source in inputs:
        taken[os.path.realpath(source)] = f"the scenario file {source} this command reads"
    data_real = None if data_dir is None else os.path.realpath(data_dir)
    for option, path in outputs.items():
        if path is None or path == "-":
            continue
        check_output_file(path, option)
        real = os.path.realpath(path)
        if data_real is not None and (real == data_real or real.startswith(data_real + os.sep)):
            raise OutputPathError(f"is {data_dir_option} {data_dir} or inside it (it holds only the run's own "
                                  "files); give another path", file=path, field=option)
        if Path(real).exists() and not Path(real).is_file():
            continue  # a device or a pipe: written in place, as often as asked
        if real in taken:
            raise OutputPathError(f"is also {taken[real]}; give each output its own file", file=path, field=option)
        taken[real] = option


MAX_JSON_DEPTH = 200  # l2sim's own files nest a few levels; hostile ones thousands


def parse_json(text: str | bytes) -> Any:
    """JSON read back from a file l2sim wrote, or that someone damaged: nesting past
    MAX_JSON_DEPTH is a RecursionError, never a crash. (The chain's dependencies raise the
    recursion limit so far that the C parser would overflow the stack first.)"""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, depth + MAX_JSON_DEPTH))
    try:
        return json.loads(text)
    finally:
        sys.setrecursionlimit(limit)
