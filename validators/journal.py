"""Vote journal: a validator signs at most one message per (fork_id, height, round, step).

Every signature goes through `record` first; a second, different message for a slot
already signed raises `DoubleSignRefused` (the same message again is allowed, and since
secp256k1 signing here is deterministic (RFC 6979) it yields the same signature). The
journal also tells a restarted node where it stopped: its last signed round at a height
and its lock (the highest round in which it precommitted a block), so that it resumes
without double signing and without amnesia.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from consensus.messages import (
    PRECOMMIT,
    PROPOSAL_STEP,
    Proposal,
    SignedMessage,
    SigningRefused,
    Vote,
    get_slot,
    sign_message,
)
from consensus.tendermint import ResumePoint
from validators.keys import ValidatorKey

STEP_ORDER = {"proposal": 0, "prevote": 1, "precommit": 2}


@dataclass(frozen=True)
class SignedRecord:
    """What was signed in one slot: the message digest and the value (None for nil)."""

    fork_id: int
    height: int
    round: int
    step: str
    digest: bytes
    block_hash: bytes | None
    signer: int = -1
    pol_round: int = -1  # proposals only
    signature: bytes = b""

    @property
    def slot(self) -> tuple[int, int, int, str]:
        return (self.fork_id, self.height, self.round, self.step)

    def order_key(self) -> tuple[int, int, int, str]:
        return (self.height, self.round, STEP_ORDER.get(self.step, len(STEP_ORDER)), self.step)


class DoubleSignRefused(SigningRefused):
    """Raised when asked to sign a different message for a slot that was already signed."""

    def __init__(self, existing: SignedRecord, attempted: SignedRecord):
        super().__init__(
            f"refusing to double-sign {attempted.step} at fork {attempted.fork_id} height {attempted.height} "
            f"round {attempted.round}: already signed 0x{existing.digest.hex()}, asked 0x{attempted.digest.hex()}",
            get_signed_message(existing),
        )
        self.existing = existing
        self.attempted = attempted


class Journal(Protocol):
    def record(self, record: SignedRecord) -> None: ...
    def get_record(self, fork_id: int, height: int, round: int, step: str) -> SignedRecord | None: ...
    def get_last_signed(self, fork_id: int) -> SignedRecord | None: ...
    def get_records_at(self, fork_id: int, height: int) -> tuple[SignedRecord, ...]: ...


def compute_record(message: SignedMessage) -> SignedRecord:
    """The journal record of signing `message` (with its signature, if it has one)."""
    fork_id, height, round, step = get_slot(message)
    pol_round = message.pol_round if isinstance(message, Proposal) else -1
    return SignedRecord(fork_id, height, round, step, message.signing_digest(), message.block_hash,
                        message.signer_index, pol_round, message.signature)


def get_signed_message(record: SignedRecord) -> SignedMessage | None:
    """The signed message a record keeps, or None when it was recorded without signature."""
    if not record.signature:
        return None
    if record.step == PROPOSAL_STEP:
        assert record.block_hash is not None
        message: SignedMessage = Proposal(record.fork_id, record.height, record.round, record.block_hash,
                                          record.pol_round, record.signer, record.signature)
    else:
        message = Vote(record.fork_id, record.height, record.round, record.step, record.block_hash, record.signer,
                       record.signature)
    return message if message.signing_digest() == record.digest else None


def get_resume_point(journal: Journal, fork_id: int, height: int) -> ResumePoint:
    """Where a restarted validator resumes `height`: its last signed round and its lock."""
    records = journal.get_records_at(fork_id, height)
    if not records:
        return ResumePoint()
    last_round = max(r.round for r in records)
    locks = [r for r in records if r.step == PRECOMMIT and r.block_hash is not None]
    if not locks:
        return ResumePoint(round=last_round)
    lock = max(locks, key=lambda r: r.round)
    return ResumePoint(round=last_round, locked_round=lock.round, locked_hash=lock.block_hash)


def make_journaled_signer(key: ValidatorKey, journal: Journal) -> Callable[[SignedMessage], SignedMessage]:
    """A signer callback that records each message in `journal` before signing it;
    raises DoubleSignRefused instead of signing a conflicting message."""

    def signer(message: SignedMessage) -> SignedMessage:
        assert message.signer_index == key.index, "signing for another validator"
        signed = sign_message(key.private_key, message)  # deterministic; released only once recorded
        journal.record(compute_record(signed))
        return signed

    return signer


class MemoryJournal:
    """A journal in memory (survives an engine restart, not a process crash)."""

    def __init__(self) -> None:
        self._records: dict[tuple[int, int, int, str], SignedRecord] = {}
        self._last: dict[int, SignedRecord] = {}

    def record(self, record: SignedRecord) -> None:
        """Accept `record` or raise DoubleSignRefused if its slot holds another digest."""
        existing = self._records.get(record.slot)
        if existing is not None:
            if existing.digest != record.digest:
                raise DoubleSignRefused(existing, record)
            return
        self._records[record.slot] = record
        last = self._last.get(record.fork_id)
        if last is None or record.order_key() > last.order_key():
            self._last[record.fork_id] = record

    def get_record(self, fork_id: int, height: int, round: int, step: str) -> SignedRecord | None:
        """The record of a slot, if signed."""
        return self._records.get((fork_id, height, round, step))

    def get_last_signed(self, fork_id: int) -> SignedRecord | None:
        """The highest (height, round, step) signed on `fork_id`."""
        return self._last.get(fork_id)

    def get_records_at(self, fork_id: int, height: int) -> tuple[SignedRecord, ...]:
        """All records of one height, in (round, step) order."""
        found = [r for r in self._records.values() if r.fork_id == fork_id and r.height == height]
        return tuple(sorted(found, key=SignedRecord.order_key))


class SQLiteJournal:
    """A journal in SQLite (WAL, synchronous=FULL): one row per signed slot; survives a crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS signed ("
            " fork_id INTEGER NOT NULL, height INTEGER NOT NULL, round INTEGER NOT NULL, step TEXT NOT NULL,"
            " step_order INTEGER NOT NULL, digest BLOB NOT NULL, block_hash BLOB,"
            " signer INTEGER NOT NULL, pol_round INTEGER NOT NULL, signature BLOB NOT NULL,"
            " PRIMARY KEY (fork_id, height, round, step))"
        )

    def close(self) -> None:
        """Close the database (records already returned from `record` are durable)."""
        self._db.close()

    def __enter__(self) -> "SQLiteJournal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, record: SignedRecord) -> None:
        """Accept `record` or raise DoubleSignRefused if its slot holds another digest."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            existing = self.get_record(*record.slot)
            if existing is None:
                self._db.execute(
                    "INSERT INTO signed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.fork_id, record.height, record.round, record.step,
                     STEP_ORDER.get(record.step, len(STEP_ORDER)), record.digest, record.block_hash,
                     record.signer, record.pol_round, record.signature),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if existing is not None and existing.digest != record.digest:
            raise DoubleSignRefused(existing, record)

    def get_record(self, fork_id: int, height: int, round: int, step: str) -> SignedRecord | None:
        """The record of a slot, if signed."""
        row = self._db.execute(
            "SELECT fork_id, height, round, step, digest, block_hash, signer, pol_round, signature FROM signed"
            " WHERE fork_id = ? AND height = ? AND round = ? AND step = ?",
            (fork_id, height, round, step),
        ).fetchone()
        return None if row is None else _row_to_record(row)

    def get_last_signed(self, fork_id: int) -> SignedRecord | None:
        """The highest (height, round, step) signed on `fork_id`."""
        row = self._db.execute(
            "SELECT fork_id, height, round, step, digest, block_hash, signer, pol_round, signature FROM signed WHERE fork_id = ?"
            " ORDER BY height DESC, round DESC, step_order DESC, step DESC LIMIT 1",
            (fork_id,),
        ).fetchone()
        return None if row is None else _row_to_record(row)

    def get_records_at(self, fork_id: int, height: int) -> tuple[SignedRecord, ...]:
        """All records of one height, in (round, step) order."""
        rows = self._db.execute(
            "SELECT fork_id, height, round, step, digest, block_hash, signer, pol_round, signature FROM signed"
            " WHERE fork_id = ? AND height = ? ORDER BY round, step_order, step",
            (fork_id, height),
        ).fetchall()
        return tuple(_row_to_record(row) for row in rows)


def _row_to_record(row) -> SignedRecord:
    fork_id, height, round, step, digest, block_hash, signer, pol_round, signature = row
    return SignedRecord(fork_id, height, round, step, bytes(digest), None if block_hash is None else bytes(block_hash),
                        signer, pol_round, bytes(signature))
