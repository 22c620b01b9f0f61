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
- `report.json`, the JSON report, once the run has finished.

Reading never changes the files: the chain store is opened read-only, so a run still being
written, or killed half way, reads at every height it committed.
"""

from __future__ import annotations

import json
from pathlib import Path

from chain.exchange import (
    compute_exchange_addresses,
    get_collateral,
    get_equity,
    get_free_collateral,
    get_margin_requirement,
    get_position,
    is_liquidatable,
)
from chain.history import History, UnknownViewError
from chain.state import get_account
from chain.store import SQLiteStore
from scenarios.errors import SavedRunError
from scenarios.market import compute_perps_params
from scenarios.output import CHAIN_NAME, MANIFEST_NAME, check_data_dir, write_text_atomic
from scenarios.schema import MARKETS, Scenario

RUN_FORMAT = "l2sim-run-1"
REPORT_NAME = "report.json"


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
    check_data_dir(data_dir, force=False, option="data_dir", force_hint="remove it or choose another directory")
    Path(data_dir).mkdir(exist_ok=True)
    _write_json(Path(data_dir) / MANIFEST_NAME, compute_start_manifest(scenario))


def finish_saved_run(data_dir: str, report: dict, final_heights: dict[int, int], *,
                     reproduce: str | None = None) -> None:
    """Write the report, then mark the manifest finished with the digest, the final heights
    and the `l2sim run` command that replays the run (what the page of the saved run prints)."""
    directory = Path(data_dir)
    _write_json(directory / REPORT_NAME, report)
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
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise SavedRunError(f"{MANIFEST_NAME} cannot be read ({error})", file=data_dir) from None
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


def open_saved_store(data_dir: str) -> SQLiteStore:
    """The run's chain store, opened read-only."""
    path = Path(data_dir) / CHAIN_NAME
    if not path.is_file() or path.stat().st_size == 0:  # empty: killed while SQLite created it
        raise SavedRunError(f"holds no {CHAIN_NAME} yet (the run stopped before genesis)", file=data_dir)
    return SQLiteStore(path, read_only=True)


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
    indices = [v["index"] for v in manifest["validators"]]
    if validator is not None and validator not in indices:
        raise SavedRunError(f"{validator} is not a validator of this run (0..{len(indices) - 1})",
                            file=data_dir, field="--validator", value=validator)
    store = open_saved_store(data_dir)
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
