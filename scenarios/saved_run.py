"""Reading a run saved with `l2sim run --data-dir DIR`: the signed votes of a height
(`l2sim votes`) and what differs in the state between two heights (`l2sim diff`).

The state roots come from the event log's commits, so the discarded heights of the old
fork can still be compared: trie nodes are kept by hash and a rollback deletes none.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chain.diff import diff_roots
from scenarios.errors import SavedRunError
from scenarios.events import EventLogError, get_signed, read_events
from scenarios.inspect import open_saved_store, read_manifest

EVENTS_FILE = "events.jsonl"
CHAIN_FILE = "chain.sqlite"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def list_votes(data_dir: str, *, height: int, fork: int | None = None) -> list[dict]:
    """Every signed proposal and vote recorded at `height` of a saved run."""
    events = read_events(Path(data_dir) / EVENTS_FILE)
    return [{k: e[k] for k in ("t_s", "fork", "height", "kind", "validator", "round", "value", "signature")
             if k in e} | ({"step": e["step"], "reason": e["reason"]} if e["kind"] == "vote" else {"step": "proposal"})
            for e in get_signed(events, height, fork)]


def get_root(events: list[dict], height: int, fork: int | None, path: str) -> tuple[int, bytes]:
    """(fork, state root) at `height`: on `fork`, or on the final chain (the latest fork that
    committed the height; the old fork's commits stay recorded after a rollback)."""
    commits = [e for e in events if e["kind"] == "commit" and (fork is None or e["fork"] <= fork)]
    found = [e for e in commits if e["height"] == height]
    if not found:
        raise EventLogError(path, None, f"--height {height}: no block committed there"
                                        f"{'' if fork is None else f' on fork {fork}'}")
    last = max(found, key=lambda e: e["fork"])
    return last["fork"], bytes.fromhex(last["state_root"][2:])


def diff_saved_run(data_dir: str, *, from_height: int, to_height: int, fork: int | None = None) -> dict:
    """Accounts and storage slots that differ between two heights of a saved run."""
    path = str(Path(data_dir) / EVENTS_FILE)
    events = read_events(path)
    from_fork, before = get_root(events, from_height, fork, path)
    to_fork, after = get_root(events, to_height, fork, path)
    chain = Path(data_dir) / CHAIN_FILE
    if not chain.is_file():
        raise EventLogError(str(chain), None, "no saved chain here (run `l2sim run ... --data-dir DIR`)")
    store = open_saved_store(data_dir, read_manifest(data_dir))  # read-only: a reader never changes the run
    try:
        diff = diff_roots(store, before, after)
    except sqlite3.DatabaseError as error:
        raise SavedRunError(f"{CHAIN_FILE} is damaged ({error})", file=data_dir) from None
    finally:
        store.close()
    return {
        "from": {"height": from_height, "fork": from_fork, "state_root": _hex(before)},
        "to": {"height": to_height, "fork": to_fork, "state_root": _hex(after)},
        "accounts": [{"address": _hex(c.address), "key": _hex(c.key),
                      "balance": [c.before.balance, c.after.balance], "nonce": [c.before.nonce, c.after.nonce]}
                     for c in diff.accounts],
        "slots": [{"address": _hex(c.address), "slot": c.slot, "key": _hex(c.key), "value": [c.before, c.after]}
                  for c in diff.slots],
    }
