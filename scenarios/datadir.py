"""Directories l2sim owns while it writes them: a saved run (`run --data-dir`), a sweep's
`--out`, and the file `shrink --out` writes.

Ownership: one process at a time. An exclusive `fcntl.flock` on a lock file (`.l2sim.lock`
inside the directory, `.NAME.l2sim-lock` beside a file) is taken before anything else is
written there and held until the command ends; a second process is refused with one line
naming the holder's pid. The kernel drops the lock of a process that dies, so a killed run
never leaves its directory locked.

Recognition: a directory holds a saved run when its manifest has the run format or its
`chain.sqlite` is an l2sim store (its own `meta` record), never because of file names
alone. `--force` removes only the files l2sim writes there (each recognised by its name
and its kind: a regular file, SQLite where SQLite belongs); a directory holding anything
else is refused, naming what l2sim would not remove.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from scenarios.errors import DataDirLockedError, OutputPathError, UsedDataDirError
from scenarios.output import check_directory_takes_files, parse_json

RUN_FORMAT = "l2sim-run-1"
MANIFEST_NAME = "run.json"
CHAIN_NAME = "chain.sqlite"
REPORT_NAME = "report.json"
EVENTS_NAME = "events.jsonl"
LOCK_NAME = ".l2sim.lock"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_FILE = re.compile(r"(chain|journal-\d+)\.sqlite(-wal|-shm|-journal)?")
# write_bytes_atomic's temporary files (`.NAME.XXXX.tmp`): a run killed while it wrote one leaves it.
_TEMPORARY_FILE = re.compile(r"\.(run\.json|report\.json|events\.jsonl)\..+\.tmp")
_MAX_NAMED = 4  # entries named in a refusal; the rest are counted
_LOCK_ATTEMPTS = 8  # each retry means the holder removed the lock file just as we opened it
_HOLDER_READS = 50  # the holder writes its pid right after locking: wait at most ~0.5 s for it


# ---------------------------------------------------------------- ownership


@contextmanager
def hold_lock(lock_path: Path, *, target: str, option: str) -> Iterator[None]:
    """Hold the exclusive lock `lock_path` until the block ends (the file is removed then).

    Refuses with `DataDirLockedError` (naming the holder's pid) when another process holds it.
    """
    fd = _acquire(lock_path, target=target, option=option)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        # Removed while still held: a process that opened the old file sees it is gone and retries.
        Path(lock_path).unlink(missing_ok=True)
        os.close(fd)


def _acquire(lock_path: Path, *, target: str, option: str) -> int:
    for _ in range(_LOCK_ATTEMPTS):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise OutputPathError(f"cannot create its lock file: {error.strerror}", file=target,
                                  field=option) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirLockedError(f"is in use by another l2sim process (pid {holder}); wait for it to end "
                                     "or choose another path", file=target, field=option, value=holder) from None
        if _is_same_file(fd, lock_path):
            return fd
        os.close(fd)
    raise OutputPathError("its lock file keeps being replaced by another process", file=target, field=option)


def _is_same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> str:
    for _ in range(_HOLDER_READS):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.01)
    return "unknown"


def raise_if_held(lock_path: Path, *, target: str, option: str) -> None:
    """Refuse `target` when another process holds its lock; writes nothing (no lock file made)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DataDirLockedError(f"is in use by another l2sim process (pid {_read_holder(fd)}); wait for it to "
                                 "end or choose another path", file=target, field=option) from None
    finally:
        os.close(fd)


def get_file_lock_path(path: str) -> Path:
    """The lock file beside an output file (`shrink --out FILE`): `.FILE.l2sim-lock`."""
    target = Path(path)
    return target.parent / f".{target.name}.l2sim-lock"


# ---------------------------------------------------------------- what a directory holds


def get_entries(directory: Path) -> list[Path]:
    """What `directory` holds, its lock file left out (sorted)."""
    return sorted(p for p in directory.iterdir() if p.name != LOCK_NAME)


def is_run_file(path: Path) -> bool:
    """True when `path` is a file an l2sim run writes into its data directory (by name and kind)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):  # a directory, a link, a pipe: never written by a run
        return False
    name = path.name
    if name == MANIFEST_NAME:
        return read_manifest_format(path) == RUN_FORMAT
    if _SQLITE_FILE.fullmatch(name):
        if name.endswith(".sqlite"):
            return info.st_size == 0 or _read_head(path) == _SQLITE_MAGIC
        return True  # a side file of SQLite's journal
    return name in (REPORT_NAME, EVENTS_NAME, LOCK_NAME) or _TEMPORARY_FILE.fullmatch(name) is not None


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(_SQLITE_MAGIC))
    except OSError:
        return b""


def read_manifest_format(path: Path) -> object:
    """The `format` a manifest file declares (None when it is not a JSON object or cannot be read)."""
    try:
        if path.stat().st_size > 64 * 1024 * 1024:  # a run's manifest is kilobytes
            return None
        data = parse_json(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def is_saved_run(directory: str | os.PathLike[str]) -> bool:
    """True when `directory` holds an l2sim run: a manifest of the run format, or a chain store."""
    directory = Path(directory)
    if read_manifest_format(directory / MANIFEST_NAME) == RUN_FORMAT:
        return True
    chain = directory / CHAIN_NAME
    if not is_run_file(chain) or chain.stat().st_size == 0:
        return False
    from chain.store import SQLiteStore, StoreError  # the chain's dependencies load only when needed

    try:
        SQLiteStore(chain, immutable=True).close()  # immutable: no -shm made, no lock taken
    except StoreError:
        return False
    return True


def _describe(entries: list[Path]) -> str:
    names = [p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in entries[:_MAX_NAMED]]
    more = len(entries) - _MAX_NAMED
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def check_data_dir(path: str, *, force: bool, option: str = "--data-dir",
                   force_hint: str = "pass --force to replace it", name_holder: bool = True) -> None:
    """`check_data_dir_content`, except that a directory another process holds is refused
    naming that process (`name_holder=False` inside one's own lock)."""
    try:
        check_data_dir_content(path, force=force, option=option, force_hint=force_hint)
    except UsedDataDirError:
        if name_holder:
            raise_if_held(Path(path) / LOCK_NAME, target=path, option=option)  # a run being written: say whose
        raise


def check_data_dir_content(path: str, *, force: bool, option: str = "--data-dir",
                           force_hint: str = "pass --force to replace it") -> None:
    """Refuse, without changing anything, a data directory a run may not write into.

    New (its parent exists) or empty: fine. Holding a saved run and nothing else: only with
    `force`. Anything else in it: never (only l2sim's own files are ever removed).
    `option` and `force_hint` name the setting and the way out in the error line.
    """
    directory = Path(path)
    if not directory.exists():
        check_directory_takes_files(directory.parent, path, option)
        return
    if not directory.is_dir():
        raise OutputPathError("is not a directory", file=path, field=option)
    entries = get_entries(directory)
    if not entries:
        check_directory_takes_files(directory, path, option)
        return
    foreign = [p for p in entries if not is_run_file(p)]
    if not is_saved_run(directory) and len(foreign) == len(entries):
        raise UsedDataDirError("is not empty and holds no l2sim run; give a new or empty directory",
                               file=path, field=option)
    if foreign:
        raise UsedDataDirError(f"holds an l2sim run and files l2sim did not write ({_describe(foreign)}); "
                               "move them out or choose another directory", file=path, field=option)
    if not force:
        raise UsedDataDirError(f"already holds an l2sim run; {force_hint}", file=path, field=option)
    check_directory_takes_files(directory, path, option)


@contextmanager
def claim_data_dir(path: str, *, force: bool, option: str = "--data-dir") -> Iterator[None]:
    """Own `path` for one run until the block ends: locked, then new or empty (with `force`,
    the saved run in it removed first). Refusals are typed errors; nothing is written then,
    except in a directory that was new or held only a run."""
    directory = Path(path)
    check_data_dir(path, force=force, option=option)
    try:
        directory.mkdir(exist_ok=True)
    except OSError as error:
        raise OutputPathError(f"cannot be made: {error.strerror}", file=path, field=option) from None
    with hold_lock(directory / LOCK_NAME, target=path, option=option):
        check_data_dir_content(path, force=force, option=option)  # again: it may have changed meanwhile
        for entry in get_entries(directory):
            entry.unlink()  # every entry is a run's own file (checked just above)
        yield


@contextmanager
def claim_output_file(path: str, *, option: str) -> Iterator[None]:
    """Own the output file `path` (e.g. `shrink --out`) until the block ends."""
    with hold_lock(get_file_lock_path(path), target=path, option=option):
        yield


def claim_optional_data_dir(path: str | None, *, force: bool, option: str = "--data-dir"):
    """`claim_data_dir` when a data directory is given; nothing to own otherwise."""
    return contextlib.nullcontext() if path is None else claim_data_dir(path, force=force, option=option)
