"""Files l2sim writes: where the per-user caches live, and how a file is replaced whole.

Every writer (compiled contracts, genesis images, reports, saved runs) goes through
`write_bytes_atomic`, so a reader never sees half a file, even after a crash.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def get_user_cache_dir(name: str) -> Path:
    """`$XDG_CACHE_HOME/l2sim/NAME`, else `$HOME/.cache/l2sim/NAME`; a relative path when
    neither is set (callers then cache nothing: never in the working directory). An empty
    HOME is unset: `expanduser` would turn it into `/`."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache")
                                                if os.environ.get("HOME") else ".cache")
    return Path(base) / "l2sim" / name


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that it is either the old file or the whole new one, even
    if the process dies: temporary file in the same directory, fsync, rename, fsync the
    directory. A device or pipe (`/dev/stdout`) is written in place."""
    target = Path(path)
    if target.exists() and not target.is_file():  # nothing to rename over
        with open(target, "wb") as stream:
            stream.write(data)
        return
    directory = target.parent
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), _get_file_mode(target))
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _get_file_mode(target: Path) -> int:
    """The mode the file keeps (when it exists) or gets from the umask (mkstemp makes 0600)."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
