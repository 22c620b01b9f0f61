"""Where a run writes: output paths checked before the run starts, files written atomically,
and the data directory of a saved run (new, or replaced only on request).

A report or manifest is never half written: the text goes to a temporary file in the
same directory, is flushed to disk and renamed over the target, so a reader (or a run
killed at any moment) sees the old file or the new one. A data directory is used only
when it is new or empty; one that holds a saved run is replaced only with `--force`,
and a directory with anything else in it is never emptied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from chain.files import write_bytes_atomic
from scenarios.errors import OutputPathError, UsedDataDirError

MANIFEST_NAME = "run.json"  # what marks a directory as an l2sim run (see scenarios.inspect)
CHAIN_NAME = "chain.sqlite"


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
    _check_directory_takes_files(target.parent, path, option)


def _check_directory_takes_files(directory: Path, path: str, option: str) -> None:
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
    """Write `text` (UTF-8) to `path` whole or not at all (`chain.files.write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def is_saved_run(directory: str | os.PathLike[str]) -> bool:
    """True when `directory` holds an l2sim run: a run manifest or a chain store."""
    return any((Path(directory) / name).is_file() for name in (MANIFEST_NAME, CHAIN_NAME))


def check_data_dir(path: str, *, force: bool, option: str = "--data-dir",
                   force_hint: str = "pass --force to replace it") -> None:
    """Refuse, without changing anything, a data directory a run may not write into.

    New (its parent exists) or empty: fine. Holding a saved run: only with `force`.
    Anything else in it: never (a saved run is the only thing `force` replaces).
    `option` and `force_hint` name the setting and the way out in the error line.
    """
    directory = Path(path)
    if not directory.exists():
        _check_directory_takes_files(directory.parent, path, option)
        return
    if not directory.is_dir():
        raise OutputPathError("is not a directory", file=path, field=option)
    if not any(directory.iterdir()):
        _check_directory_takes_files(directory, path, option)
        return
    if not is_saved_run(directory):
        raise UsedDataDirError("is not empty and holds no l2sim run; give a new or empty directory",
                               file=path, field=option)
    if not force:
        raise UsedDataDirError(f"already holds an l2sim run; {force_hint}", file=path, field=option)
    _check_directory_takes_files(directory, path, option)


def prepare_data_dir(path: str, *, force: bool, option: str = "--data-dir") -> None:
    """Make `path` a new, empty directory for a run (see `check_data_dir` for what is refused).

    With `force`, the saved run in it is removed first, entry by entry (the directory itself
    stays, with its permissions)."""
    check_data_dir(path, force=force, option=option)
    directory = Path(path)
    if not directory.exists():
        directory.mkdir()
        return
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
