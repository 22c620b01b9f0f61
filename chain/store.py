"""Content-addressed node stores (node hash -> node bytes) that py-evm state runs over.

Trie nodes and contract code are keyed by their keccak, so a node never changes once
written: every validator view, snapshot and historical root can share one store, and a
snapshot is nothing but a root. Two stores:

- `MemoryStore`: a dict.
- `SQLiteStore`: one SQLite file in WAL mode; writes collect in memory and land in one
  transaction per `commit()` (once per block), so a crash loses at most the block in flight
  and never leaves half a block. Reopened after a restart, every committed root is readable.
  `read_only=True` opens a saved run for reading (even while its run still writes): the file
  is never created, changed or switched to WAL, and a file that is not an l2sim store is refused;
  `immutable=True` reads a finished one without locks or side files.

Both also keep keccak preimages (hashed address -> address, hashed slot -> slot) so that a
diff can name the accounts and slots it finds, and a small key/value table for the chain
views' own records (block logs) so that they persist in the same file and transaction.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB

from chain.errors import ChainError


class StoreError(ChainError):
    """Raised when a store file cannot be opened or is not an l2sim store."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class MemoryStore(BaseAtomicDB):
    """Node store in a dict; `commit()` is a no-op kept so both stores read the same."""

    def __init__(self) -> None:
        self._nodes: dict[bytes, bytes] = {}
        self._preimages: dict[bytes, bytes] = {}
        self._records: dict[tuple[str, bytes], bytes] = {}

    # -- py-evm's database interface -------------------------------------------------
    def __getitem__(self, key: bytes) -> bytes:
        return self._nodes[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._nodes[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._nodes[key]

    def _exists(self, key: bytes) -> bool:
        return key in self._nodes

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with AtomicDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    # -- preimages and records ------------------------------------------------------
    def put_preimages(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Remember `hash -> preimage` pairs (hashed addresses and slots)."""
        self._preimages.update(pairs)

    def get_preimage(self, hashed: bytes) -> bytes | None:
        """The preimage of a hashed trie key, or None if it was never recorded."""
        return self._preimages.get(hashed)

    def put_record(self, table: str, key: bytes, value: bytes | None) -> None:
        """Write (or, with None, delete) one record of a chain view's own data."""
        if value is None:
            self._records.pop((table, key), None)
        else:
            self._records[(table, key)] = value

    def get_record(self, table: str, key: bytes) -> bytes | None:
        """One record of a chain view's own data, or None."""
        return self._records.get((table, key))

    def commit(self) -> None:
        """Make everything written so far durable (nothing to do in memory)."""

    def close(self) -> None:
        """Release the store (nothing to do in memory)."""

    @property
    def node_count(self) -> int:
        """How many nodes the store holds (committed or not)."""
        return len(self._nodes)

    def get_forked_reader(self) -> Callable[[bytes], bytes]:
        """A node reader for a process forked from this one: it reads what this process held
        at the fork and never touches this store's file handles (an SQLite connection must
        not be used across a fork). Raises KeyError for an unknown node."""
        return self._nodes.__getitem__


_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (hash BLOB PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS preimages (hash BLOB PRIMARY KEY, preimage BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    tbl TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_FORMAT = "l2sim-store-1"


def _can_read(store: MemoryStore, key: bytes) -> bool:
    """Whether `store[key]` reads a node (for stores whose reads go beyond their own dict)."""
    try:
        store[key]
    except KeyError:
        return False
    return True

_DELETED = object()


class SQLiteStore(MemoryStore):
    """Node store in one SQLite file (WAL); writes are batched until `commit()`.

    Reads go to the pending writes first, then to a read cache, then to SQLite. Nodes are
    immutable, so the cache never goes stale.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, immutable: bool = False) -> None:
        super().__init__()
        self.path = str(path)
        self.read_only = read_only or immutable
        try:
            if self.read_only:
                self._db = _connect_read_only(self.path, immutable=immutable)
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except sqlite3.DatabaseError as error:
            raise StoreError(self.path, f"not an l2sim store ({error})") from None
        if row is None and self.read_only:
            raise StoreError(self.path, "not an l2sim store (no format record)")
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (_FORMAT,))
        elif row[0] != _FORMAT:
            raise StoreError(self.path, f"store format {row[0]!r}, expected {_FORMAT!r}")
        self._pending_nodes: dict[bytes, object] = {}
        self._pending_preimages: dict[bytes, bytes] = {}
        self._pending_records: dict[tuple[str, bytes], object] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self._pending_nodes.get(key)
        if value is _DELETED:
            raise KeyError(key)
        if value is not None:
            return value  # type: ignore[return-value]
        cached = self._nodes.get(key)
        if cached is not None:
            return cached
        row = self._db.execute("SELECT node FROM nodes WHERE hash=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        self._nodes[key] = row[0]
        return row[0]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending_nodes[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending_nodes[key] = _DELETED
        self._nodes.pop(key, None)

    def _exists(self, key: bytes) -> bool:
        return _can_read(self, key)

    def put_preimages(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        for hashed, preimage in pairs:
            if hashed not in self._preimages:
                self._preimages[hashed] = preimage
                self._pending_preimages[hashed] = preimage

    def get_preimage(self, hashed: bytes) -> bytes | None:
        found = self._preimages.get(hashed)
        if found is None:
            row = self._db.execute(
                "SELECT preimage FROM preimages WHERE hash=?", (hashed,)
            ).fetchone()
            if row is not None:
                found = self._preimages[hashed] = row[0]
        return found

    def put_record(self, table: str, key: bytes, value: bytes | None) -> None:
        self._pending_records[(table, key)] = _DELETED if value is None else value

    def get_record(self, table: str, key: bytes) -> bytes | None:
        pending = self._pending_records.get((table, key))
        if pending is _DELETED:
            return None
        if pending is not None:
            return pending  # type: ignore[return-value]
        row = self._db.execute(
            "SELECT value FROM records WHERE tbl=? AND key=?", (table, key)
        ).fetchone()
        return None if row is None else row[0]

    def commit(self) -> None:
        """Write every pending node, preimage and record in one SQLite transaction."""
        if not (self._pending_nodes or self._pending_preimages or self._pending_records):
            return
        if self.read_only:
            raise StoreError(self.path, "opened read-only: nothing may be written")
        nodes = self._pending_nodes
        records = self._pending_records
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO nodes VALUES (?, ?)",
                [(k, v) for k, v in nodes.items() if v is not _DELETED],
            )
            db.executemany(
                "DELETE FROM nodes WHERE hash=?", [(k,) for k, v in nodes.items() if v is _DELETED]
            )
            db.executemany(
                "INSERT OR IGNORE INTO preimages VALUES (?, ?)", self._pending_preimages.items()
            )
            db.executemany(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                [(t, k, v) for (t, k), v in records.items() if v is not _DELETED],
            )
            db.executemany(
                "DELETE FROM records WHERE tbl=? AND key=?",
                [(t, k) for (t, k), v in records.items() if v is _DELETED],
            )
        for key, value in nodes.items():
            if value is not _DELETED:
                self._nodes[key] = value  # type: ignore[assignment]
        self._pending_nodes = {}
        self._pending_preimages = {}
        self._pending_records = {}

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state of the file, whatever a writer commits meanwhile."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Commit what is pending and close the file (left as one self-contained file, out of WAL)."""
        self.commit()
        if not self.read_only:
            try:  # so that a reader opening it read-only later needs no -wal/-shm files beside it
                self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                pass  # a reader holds it open: it stays in WAL, which reads the same
        self._db.close()

    def get_forked_reader(self) -> Callable[[bytes], bytes]:
        """Pending writes, then the read cache, then the file through a read-only connection
        of the forked process's own (opened on the first miss)."""
        pending, cached, path = self._pending_nodes, self._nodes, self.path
        connection: list[sqlite3.Connection] = []

        def read(key: bytes) -> bytes:
            value = pending.get(key)
            if value is None:
                value = cached.get(key)
            if value is None:
                if not connection:
                    connection.append(_connect_read_only(path, immutable=False))
                row = connection[0].execute("SELECT node FROM nodes WHERE hash=?", (key,)).fetchone()
                value = None if row is None else row[0]
            if value is None or value is _DELETED:
                raise KeyError(key)
            return value  # type: ignore[return-value]

        return read

    @property
    def node_count(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM nodes").fetchone()
        return count + sum(1 for v in self._pending_nodes.values() if v is not _DELETED)


def _connect_read_only(path: str, *, immutable: bool) -> sqlite3.Connection:
    """A connection that can only read `path` (`mode=ro`): no file created, no schema, no pragma.
    `immutable` (a file no process writes any more) also takes no lock and opens no -shm/-wal file."""
    if not Path(path).is_file():
        raise StoreError(path, "no such file")
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


class OverlayStore(MemoryStore):
    """Writes kept in memory over a store that is only read (`read`, e.g. a forked reader):
    what a computation wrote, node by node and preimage by preimage, can then be handed to
    the store it read from (`written_nodes`, `written_preimages`). Nodes are content-addressed,
    so a node written here and in the base is the same node."""

    def __init__(self, read: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self._read = read

    def __getitem__(self, key: bytes) -> bytes:
        value = self._nodes.get(key)
        return self._read(key) if value is None else value

    def _exists(self, key: bytes) -> bool:
        return _can_read(self, key)

    @property
    def written_nodes(self) -> dict[bytes, bytes]:
        """Every node written here (a copy)."""
        return dict(self._nodes)

    @property
    def written_preimages(self) -> dict[bytes, bytes]:
        """Every preimage written here (a copy)."""
        return dict(self._preimages)


Store = MemoryStore
"""The type every chain function takes: a `MemoryStore` or an `SQLiteStore`."""
