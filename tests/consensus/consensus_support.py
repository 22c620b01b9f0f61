"""Shared helpers for the consensus tests: keys, journals and node kits for the bytes app."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

from consensus.messages import ValidatorSet
from consensus.sim import BytesApp, NodeKit, SimConfig, Trace, create_simulation, run_simulation
from validators.journal import MemoryJournal, SignedRecord, SQLiteJournal, get_resume_point, make_journaled_signer
from validators.behaviours import make_behaviour_lookup
from validators.keys import derive_validator_keys, make_raw_signer

KEY_SEED = 7


@functools.lru_cache(maxsize=None)
def get_keys(count: int):
    return derive_validator_keys(KEY_SEED, count)


def make_validator_set(count: int, powers: tuple[int, ...] | None = None) -> ValidatorSet:
    keys = get_keys(count)
    return ValidatorSet(tuple(k.public_key for k in keys), powers or (1,) * count)


class ReopenedSQLiteJournal:
    """An SQLiteJournal on one file that a restart closes and opens again, as a process
    restart would: nothing survives but what the file holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = 0
        self._db: SQLiteJournal | None = None
        self.reopen()

    def reopen(self) -> None:
        self.close()
        self._db = SQLiteJournal(self.path)
        self.opened += 1

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def record(self, record: SignedRecord) -> None:
        self._db.record(record)

    def get_record(self, fork_id: int, height: int, round: int, step: str) -> SignedRecord | None:
        return self._db.get_record(fork_id, height, round, step)

    def get_last_signed(self, fork_id: int) -> SignedRecord | None:
        return self._db.get_last_signed(fork_id)

    def get_records_at(self, fork_id: int, height: int) -> tuple[SignedRecord, ...]:
        return self._db.get_records_at(fork_id, height)


def make_kit_factory(count: int, journals: dict | None = None, sqlite_dir: Path | None = None):
    """A `make_node_kit` for the bytes app. Journals (kept in `journals`) are in memory, or
    with `sqlite_dir` one SQLite file per node, closed and reopened at every (re)start: the
    harness asks the kit for its resume point exactly when a node (re)starts."""
    keys = get_keys(count)
    journals = {} if journals is None else journals
    if sqlite_dir is not None:
        sqlite_dir.mkdir(parents=True, exist_ok=True)

    def make_node_kit(index: int) -> NodeKit:
        if sqlite_dir is None:
            journal = journals.setdefault(index, MemoryJournal())
        else:
            journal = journals.setdefault(index, ReopenedSQLiteJournal(sqlite_dir / f"journal-{index}.sqlite"))

        def resume(fork_id: int, height: int):
            if sqlite_dir is not None:
                journal.reopen()
            return get_resume_point(journal, fork_id, height)

        return NodeKit(
            app=BytesApp(index),
            signer=make_journaled_signer(keys[index], journal),
            raw_signer=make_raw_signer(keys[index]),
            get_resume_point=resume,
            get_behaviour=make_behaviour_lookup(keys[index]),
        )

    return make_node_kit


def simulate(config: SimConfig, count: int, powers: tuple[int, ...] | None = None,
             sqlite_dir: Path | None = None) -> Trace:
    """Run `config` on `count` bytes-app validators (journals in memory, or SQLite files in
    `sqlite_dir`, closed when the run ends)."""
    journals: dict = {}
    try:
        return run_simulation(config, make_validator_set(count, powers), make_kit_factory(count, journals, sqlite_dir))
    finally:
        for journal in journals.values():
            if isinstance(journal, ReopenedSQLiteJournal):
                journal.close()


def get_signing_times_us(config: SimConfig, count: int, node: int) -> list[int]:
    """The distinct virtual times at which `node` signs something in a run of `config`."""
    running: list = []
    times: list[int] = []
    make_plain_kit = make_kit_factory(count)

    def make_node_kit(index: int) -> NodeKit:
        kit = make_plain_kit(index)
        if index != node:
            return kit

        def signer(message):
            signed = kit.signer(message)
            times.append(running[0].loop.now_us if running else 0)  # nodes start (and may sign) at 0
            return signed

        return replace(kit, signer=signer)

    simulation = create_simulation(config, make_validator_set(count), make_node_kit)
    running.append(simulation)
    simulation.run()
    return sorted(set(times))


def is_bytes_block_valid(height: int, block_hash: bytes, payload: bytes | None) -> bool:
    return payload is not None and BytesApp(-1).is_valid(height, block_hash, payload)
