"""Saved runs: the data directory `l2sim run --data-dir DIR` writes, and reading it back.

A saved run is a directory holding:

- `run.json`, the manifest (format `l2sim-run-1`): the scenario and seed, every validator
  with its behaviour and whether it is honest, the status (`running` until the run ends,
  then `finished` with the digest, each validator's final height and the `l2sim run`
  command that replays it). It is written when
  the run starts and rewritten, atomically, when it ends: a run killed at any moment still
  says what it is.
- `chain.sqlite`, the node store and every validator's chain view (one transaction a block).
- `journal-N.sqlite`, each validator's vote journal.
- `report.json`, the JSON report, and `events.jsonl`, the event log, once the run has
  finished; the manifest says `finished` only after both are in place.

Who may write the directory, and what `--force` removes from it, is `scenarios.datadir`'s.

Reading never changes the files: the chain store is opened read-only, so a run still being
written, or killed half way, reads at every height it committed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pydantic import ValidationError

from chain.exchange import (
    compute_exchange_addresses,
    get_collateral,
    get_equity,
    get_free_collateral,
    get_margin_requirement,
    get_position,
    is_liquidatable,
)
from chain.errors import ChainError
from chain.history import History, UnknownViewError
from chain.state import get_account
from chain.store import SQLiteStore
from scenarios.errors import SavedRunError
from scenarios.events import write_events
from scenarios.market import compute_perps_params
from scenarios.datadir import CHAIN_NAME, EVENTS_NAME, MANIFEST_NAME, REPORT_NAME, RUN_FORMAT, check_data_dir
from scenarios.output import parse_json, write_text_atomic
from scenarios.schema import MARKETS, Scenario


def get_view_name(index: int, fork: int | None = None) -> str:
    """The chain view under which validator `index` records its blocks in `chain.sqlite`; with
    `fork`, the chain it held on that fork before an emergency upgrade rolled it back."""
    return f"validator-{index}" if fork is None else f"validator-{index}/fork-{fork}"


# ---------------------------------------------------------------- writing


def compute_start_manifest(scenario: Scenario) -> dict:
    """The manifest of a run that has just started: everything known before the first block."""
    behaviours = {b.index: b.behaviour for b in scenario.validators.byzantine}
    return {
        "format": RUN_FORMAT,
        "status": "running",
        "scenario": scenario.name,
        "seed": scenario.seed,
        "digest": None,
        "ok": None,
        "validators": [
            {"index": i, "behaviour": behaviours.get(i, "honest"), "honest": i not in behaviours,
             "final_height": None}
            for i in range(scenario.validators.count)
        ],
        "config": scenario.model_dump(mode="json"),
    }


def _write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def start_saved_run(data_dir: str, scenario: Scenario) -> None:
    """Claim `data_dir` for a run of `scenario`: it must be new or empty; the manifest is written first."""
    check_data_dir(data_dir, force=False, option="data_dir", force_hint="remove it or choose another directory",
                   name_holder=False)  # the caller may hold its lock
    Path(data_dir).mkdir(exist_ok=True)
    _write_json(Path(data_dir) / MANIFEST_NAME, compute_start_manifest(scenario))


def finish_saved_run(data_dir: str, report: dict, final_heights: dict[int, int], events: list[dict], *,
                     reproduce: str | None = None) -> None:
    """Write the report and the event log, then (last, once every file is in place) mark the
    manifest finished with the digest, the final heights and the `l2sim run` command that
    replays the run (what the page of the saved run prints)."""
    directory = Path(data_dir)
    _write_json(directory / REPORT_NAME, report)
    write_events(events, directory / EVENTS_NAME)
    manifest = read_manifest(data_dir)
    manifest.update(status="finished", digest=report["digest"], ok=all(c["ok"] for c in report["checks"].values()))
    if reproduce is not None:
        manifest["reproduce"] = reproduce
    for entry in manifest["validators"]:
        entry["final_height"] = final_heights.get(entry["index"])
    _write_json(directory / MANIFEST_NAME, manifest)


# ---------------------------------------------------------------- reading


def read_manifest(data_dir: str) -> dict:
    """The manifest of the saved run in `data_dir`; refuses a directory that is not one."""
    directory = Path(data_dir)
    if not directory.is_dir():
        raise SavedRunError("not a directory", file=data_dir)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise SavedRunError(f"not an l2sim run (no {MANIFEST_NAME}; save one with `l2sim run --data-dir`)",
                            file=data_dir)
    manifest = _read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise SavedRunError(f"{MANIFEST_NAME} has format {found!r}, expected {RUN_FORMAT!r}", file=data_dir)
    validators = manifest.get("validators")
    if not isinstance(validators, list) or not all(
        isinstance(v, dict) and isinstance(v.get("index"), int) and isinstance(v.get("honest"), bool)
        for v in validators
    ):
        raise SavedRunError(f"{MANIFEST_NAME} lists no validators", file=data_dir)
    return manifest


def read_saved_report(data_dir: str) -> dict:
    """The JSON report of a finished saved run, checked against the report's model."""
    from scenarios.report_model import Report

    path = Path(data_dir) / REPORT_NAME
    if not path.is_file():
        raise SavedRunError("no saved report here (run `l2sim run ... --data-dir DIR` to the end)", file=str(path))
    report = _read_json(path)
    try:
        Report.model_validate(report)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the report"
        raise SavedRunError(f"not an l2sim report ({where}: {first['msg']})", file=str(path)) from None
    return report


def _read_json(path: Path) -> object:
    """A JSON file written by a run; a damaged one (not UTF-8, not JSON, nested without end) is one line."""
    try:
        return parse_json(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise SavedRunError(f"not UTF-8 text (byte {error.start})", file=str(path)) from None
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise SavedRunError(f"not JSON ({reason})", file=str(path)) from None
    except OSError as error:
        raise SavedRunError(f"cannot be read: {error.strerror}", file=str(path)) from None


def open_saved_store(data_dir: str, manifest: dict | None = None) -> SQLiteStore:
    """The run's chain store, opened read-only; `immutable` (no lock, no side file) when the
    `manifest` says the run finished and its store was left whole, out of WAL."""
    path = Path(data_dir) / CHAIN_NAME
    if not path.is_file() or path.stat().st_size == 0:  # empty: killed while SQLite created it
        raise SavedRunError(f"holds no {CHAIN_NAME} yet (the run stopped before genesis)", file=data_dir)
    is_finished = manifest is not None and manifest.get("status") == "finished"
    return SQLiteStore(path, immutable=is_finished and not Path(f"{path}-wal").exists(), read_only=True)


def read_saved_height(data_dir: str) -> int | None:
    """The height of the furthest honest chain a saved run recorded (None: none yet, or unreadable)."""
    try:
        manifest = read_manifest(data_dir)
        store = open_saved_store(data_dir, manifest)
    except (SavedRunError, ChainError):
        return None
    try:
        chains = read_saved_chains(store, [v["index"] for v in manifest["validators"]])
        return chains[pick_chain(data_dir, manifest, chains, None)].height
    except (SavedRunError, ChainError, sqlite3.Error):
        return None
    finally:
        store.close()


def read_saved_chains(store: SQLiteStore, indices: list[int]) -> dict[int, History]:
    """The recorded chain of each validator in `indices` that has one, read as one snapshot."""
    chains = {}
    with store.read_snapshot():
        for index in indices:
            try:
                chains[index] = History.open(store, get_view_name(index))
            except UnknownViewError:
                continue  # killed before this validator's view was recorded
    return chains


def pick_chain(data_dir: str, manifest: dict, chains: dict[int, History], validator: int | None) -> int:
    """Which validator's chain to read: `validator` when given, else the furthest honest one
    (lowest index first): agreement makes every other honest chain a prefix of it."""
    if validator is not None:
        if validator not in chains:
            count = len(manifest["validators"])
            raise SavedRunError(f"validator {validator} recorded no chain here ({count} validators)",
                                file=data_dir, field="--validator", value=validator)
        return validator
    is_honest = {v["index"]: v["honest"] for v in manifest["validators"]}
    honest = [i for i in chains if is_honest.get(i)]
    if not honest:
        raise SavedRunError("no honest validator recorded a chain yet", file=data_dir)
    return max(honest, key=lambda i: (chains[i].height, -i))


def inspect_run(data_dir: str, *, height: int, account: str | None = None, validator: int | None = None,
                fork: int | None = None) -> dict:
    """State at `height` of the furthest honest chain of a saved run (or of `validator`'s; with
    `fork`, of the chain it held on that fork, the rolled-back heights included):
    {height, state_root, fork_id, block_hash, transactions, validator} and, with `account`,
    {account, balance, nonce, collateral, positions, equity, margin_requirement,
    free_collateral, liquidatable}; JSON-ready values."""
    manifest = read_manifest(data_dir)
    address = None if account is None else _parse_address(data_dir, account)
    if address is not None:  # the exchange's layout comes from the run's scenario
        try:
            Scenario.model_validate(manifest.get("config"))
        except ValidationError:
            raise SavedRunError(f"{MANIFEST_NAME} holds no valid scenario (`config`)", file=data_dir) from None
    indices = [v["index"] for v in manifest["validators"]]
    if validator is not None and validator not in indices:
        raise SavedRunError(f"{validator} is not a validator of this run (0..{len(indices) - 1})",
                            file=data_dir, field="--validator", value=validator)
    store = open_saved_store(data_dir, manifest)
    try:
        chains = read_saved_chains(store, [validator] if validator is not None else indices)
        index = pick_chain(data_dir, manifest, chains, validator)
        history = chains[index]
        if fork is not None and history.head.fork_id != fork:
            with store.read_snapshot():
                try:
                    history = History.open(store, get_view_name(index, fork))
                except UnknownViewError:
                    raise SavedRunError(f"validator {index} recorded no chain of fork {fork}", file=data_dir,
                                        field="--fork", value=fork) from None
        header = history.header_at(height)
        result: dict = {"height": height, "state_root": _hex(header.state_root), "fork_id": header.fork_id,
                        "block_hash": _hex(header.hash), "transactions": len(history.block_at(height).transactions),
                        "validator": index}
        if address is not None:
            state = get_account(store, header.state_root, address)
            result.update({"account": _hex(address), "balance": state.balance, "nonce": state.nonce})
            result.update(read_exchange_account(store, header.state_root, manifest, address))
        return result
    except sqlite3.DatabaseError as error:  # a torn or overwritten page: the file was damaged after the run
        raise SavedRunError(f"{CHAIN_NAME} is damaged ({error})", file=data_dir) from None
    finally:
        store.close()


def read_exchange_account(store: SQLiteStore, root: bytes, manifest: dict, address: bytes) -> dict:
    """What the perps exchange holds for `address` at `root`: collateral, positions, equity,
    margin (amounts in wei, sizes in 1e18 base units, prices in 1e18 USD)."""
    scenario = Scenario.model_validate(manifest["config"])
    addresses = compute_exchange_addresses(scenario.seed)
    positions = {}
    for market in range(compute_perps_params(scenario).num_markets):
        position = get_position(store, root, addresses, address, market)
        if position.size:
            positions[MARKETS[market]] = {"size": position.size, "entry_price": position.entry_price}
    return {
        "collateral": get_collateral(store, root, addresses, address),
        "positions": positions,
        "equity": get_equity(store, root, addresses, address),
        "margin_requirement": get_margin_requirement(store, root, addresses, address),
        "free_collateral": get_free_collateral(store, root, addresses, address),
        "liquidatable": is_liquidatable(store, root, addresses, address),
    }


def _parse_address(data_dir: str, account: str) -> bytes:
    try:
        address = bytes.fromhex(account.removeprefix("0x"))
    except ValueError:
        address = b""
    if len(address) != 20:
        raise SavedRunError(f"{account!r} is not a 20-byte hex address", file=data_dir, field="--account",
                            value=account)
    return address


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
