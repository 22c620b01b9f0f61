"""Reading a run saved with `l2sim run --data-dir DIR`: the signed votes of a height
(`l2sim votes`) and what differs in the state between two heights (`l2sim diff`).

The state roots come from the event log's commits, so the discarded heights of the old
fork can still be compared: trie nodes are kept by hash and a rollback deletes none.
A diff names every account the scenario created (the contracts, the owner, each trader,
keeper, ...) and reads the exchange's own storage through its view functions: collateral
and positions per account, the vault, prices, funding indices and the trading mode; only
what changed is listed. The plan vote is signed under its own fork id (`PLAN_FORK_BASE`
plus the fork it starts) at height 0; it is shown as "plan vote, fork N".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import ValidationError

from chain.diff import diff_roots
from chain.exchange import (
    compute_exchange_addresses,
    get_collateral,
    get_funding_index,
    get_position,
    get_price,
    get_trading_mode,
    get_vault_balance,
)
from consensus.emergency import PLAN_FORK_BASE
from scenarios.errors import SavedRunError
from scenarios.events import EventLogError, get_signed, read_events
from scenarios.inspect import open_saved_store, read_manifest
from scenarios.schema import MARKETS, Scenario

EVENTS_FILE = "events.jsonl"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def describe_fork(fork: int) -> str:
    """`fork 0`, or `plan vote, fork 1` for the vote on the plan that starts fork 1."""
    return f"plan vote, fork {fork - PLAN_FORK_BASE}" if fork >= PLAN_FORK_BASE else f"fork {fork}"


# ---------------------------------------------------------------- votes


def list_votes(data_dir: str, *, height: int, fork: int | None = None, plan: bool = False) -> list[dict]:
    """Every signed proposal and vote recorded at `height` of a saved run (with `plan`, of the
    plan vote instead: `fork` then names the fork the plan starts). SavedRunError when none is."""
    events = read_events(Path(data_dir) / EVENTS_FILE)
    if plan:
        signed = [e for e in events if e["kind"] in ("propose", "vote") and e["fork"] >= PLAN_FORK_BASE
                  and (fork is None or e["fork"] == PLAN_FORK_BASE + fork)]
    else:
        signed = get_signed(events, height, fork)
    if not signed:
        raise SavedRunError(_no_votes_reason(events, height, fork, plan), file=data_dir,
                            field="--plan" if plan else "--height", value=None if plan else height)
    return [{k: e[k] for k in ("t_s", "fork", "height", "kind", "validator", "round", "value", "signature")
             if k in e} | {"vote": describe_fork(e["fork"])}
            | ({"step": e["step"], "reason": e["reason"]} if e["kind"] == "vote" else {"step": "proposal"})
            for e in signed]


def _no_votes_reason(events: list[dict], height: int, fork: int | None, plan: bool) -> str:
    if plan:
        return "no plan vote was recorded" + ("" if fork is None else f" for fork {fork}")
    heights: dict[int, set[int]] = {}
    for e in events:
        if e["kind"] in ("propose", "vote") and e["fork"] < PLAN_FORK_BASE:
            heights.setdefault(e["fork"], set()).add(e["height"])
    known = "; ".join(f"fork {f}: heights {min(h)}-{max(h)}" for f, h in sorted(heights.items()))
    where = "" if fork is None else f" of {describe_fork(fork)}"
    return f"no signed proposal or vote at height {height}{where} (votes recorded: {known or 'none'}; " \
           "the plan vote: --plan)"


def format_votes(votes: list[dict], *, width: int, full: bool = False) -> list[str]:
    """The votes as text, grouped by vote (fork and height), each wrapped to `width` columns;
    values and signatures shortened unless `full`."""
    import textwrap

    from scenarios.units import format_clock

    def short(value: str | None) -> str:
        if value is None:
            return "nil"
        return value if full else value[:10] + "…"

    lines, group = [], None
    for v in votes:
        label = v["vote"] if v["fork"] >= PLAN_FORK_BASE else f"{v['vote']}, height {v['height']}"
        if label != group:
            group = label
            lines.append(f"{label}:")
        why = f" ({v['reason']})" if v.get("reason") else ""
        text = (f"{format_clock(v['t_s'], 3)}  round {v['round']}  validator {v['validator']}  {v['step']:<9}  "
                f"{short(v['value'])}{why}  sig {short(v['signature'])}")
        lines += textwrap.wrap(text, width=max(width, 40), initial_indent="  ", subsequent_indent="      ",
                               break_long_words=True)
    return lines


# ---------------------------------------------------------------- diff


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


def compute_account_names(scenario: Scenario) -> dict[bytes, str]:
    """Every account the scenario's world creates, by address: `perps exchange (contract)`,
    `owner`, `trader 3`, ..."""
    from scenarios.market import build_market_world

    world = build_market_world(scenario)
    names = {world.owner: "owner (contracts' deployer)", world.reporter.address: "reporter (posts prices)",
             world.relayer.address: "relayer (bridge)"}
    for actor in (*world.traders, *world.keepers, *world.profit_takers, *world.aggressors):
        names[actor.address] = f"{actor.role} {actor.index}"
    names |= {address: f"holder {i}" for i, address in enumerate(world.holders)}
    addresses = world.addresses
    names |= {addresses.oracle: "oracle (contract)", addresses.perps: "perps exchange (contract)",
              addresses.bridge: "bridge (contract)"}
    return names


def _changed(before, after) -> list | None:
    return None if before == after else [before, after]


def read_exchange_changes(store, before: bytes, after: bytes, scenario: Scenario, names: dict[bytes, str]) -> dict:
    """What the exchange holds differently at `after` than at `before`, read through its view
    functions: {vault, trading_mode, markets {name: {price, funding_index}}, accounts [{address,
    name, collateral, positions {market: {size, entry_price}}}]}; each value [before, after],
    only where it changed."""
    from scenarios.market import compute_perps_params

    addresses = compute_exchange_addresses(scenario.seed)
    markets = range(compute_perps_params(scenario).num_markets)
    changes: dict = {"markets": {}, "accounts": []}
    if before == after:
        return changes  # one state: nothing to read twice
    for key, read in (("vault", get_vault_balance), ("trading_mode", get_trading_mode)):
        value = _changed(read(store, before, addresses), read(store, after, addresses))
        if value is not None:
            changes[key] = value
    for market in markets:
        entry = {key: value for key, read in (("price", get_price), ("funding_index", get_funding_index))
                 if (value := _changed(read(store, before, addresses, market), read(store, after, addresses, market)))}
        if entry:
            changes["markets"][MARKETS[market]] = entry
    traders = [a for a, name in names.items() if name.split(" ")[0] in ("trader", "keeper", "profit-taker", "aggressor")]
    for account in traders:
        entry: dict = {}
        collateral = _changed(get_collateral(store, before, addresses, account),
                              get_collateral(store, after, addresses, account))
        if collateral:
            entry["collateral"] = collateral
        positions = {}
        for market in markets:
            a, b = get_position(store, before, addresses, account, market), get_position(store, after, addresses,
                                                                                      account, market)
            if a != b:
                positions[MARKETS[market]] = {"size": [a.size, b.size], "entry_price": [a.entry_price, b.entry_price]}
        if positions:
            entry["positions"] = positions
        if entry:
            changes["accounts"].append({"address": _hex(account), "name": names[account], **entry})
    return changes


def diff_saved_run(data_dir: str, *, from_height: int, to_height: int, from_fork: int | None = None,
                   to_fork: int | None = None) -> dict:
    """What differs between two (height, fork) points of a saved run: the accounts and storage
    slots of the trie (named where the scenario created them), and the exchange's storage decoded."""
    path = str(Path(data_dir) / EVENTS_FILE)
    events = read_events(path)
    manifest = read_manifest(data_dir)
    try:
        scenario = Scenario.model_validate(manifest.get("config"))
    except ValidationError:
        raise SavedRunError("run.json holds no valid scenario (`config`)", file=data_dir) from None
    from_fork, before = get_root(events, from_height, from_fork, path)
    to_fork, after = get_root(events, to_height, to_fork, path)
    names = compute_account_names(scenario)
    rank = {address: i for i, address in enumerate(names)}  # owner, actors by role and index, contracts
    store = open_saved_store(data_dir, manifest)  # read-only: a reader never changes the run
    try:
        diff = diff_roots(store, before, after)
        exchange = read_exchange_changes(store, before, after, scenario, names)
    except sqlite3.DatabaseError as error:  # a torn or overwritten page
        raise SavedRunError(f"chain.sqlite is damaged ({error})", file=data_dir) from None
    finally:
        store.close()
    return {
        "from": {"height": from_height, "fork": from_fork, "state_root": _hex(before)},
        "to": {"height": to_height, "fork": to_fork, "state_root": _hex(after)},
        "accounts": [{"address": _hex(c.address), "key": _hex(c.key), "name": names.get(c.address),
                      "balance": [c.before.balance, c.after.balance], "nonce": [c.before.nonce, c.after.nonce]}
                     for c in sorted(diff.accounts, key=lambda c: (rank.get(c.address, len(rank)), c.key))],
        "slots": [{"address": _hex(c.address), "name": names.get(c.address), "slot": c.slot, "key": _hex(c.key),
                   "value": [c.before, c.after]} for c in diff.slots],
        "exchange": exchange,
    }


def format_diff(diff: dict, *, wei: bool = False, slots: bool = False) -> list[str]:
    """The diff as text: accounts by name, the exchange decoded, amounts in dollars (in wei with
    `wei`), unchanged values left out; raw storage slots only counted unless `slots`."""
    from scenarios.terminal import format_amount

    def amount(pair: list[int]) -> str:
        return f"{format_amount(pair[0], wei_units=wei)} -> {format_amount(pair[1], wei_units=wei)}"

    lines = [f"{side}: height {diff[side]['height']} on fork {diff[side]['fork']}, root {diff[side]['state_root']}"
             for side in ("from", "to")]
    lines.append(f"{len(diff['accounts'])} accounts and {len(diff['slots'])} storage slots differ")
    for a in diff["accounts"]:
        parts = []
        if a["balance"][0] != a["balance"][1]:
            parts.append(f"balance {amount(a['balance'])}")
        if a["nonce"][0] != a["nonce"][1]:
            parts.append(f"nonce {a['nonce'][0]} -> {a['nonce'][1]}")
        lines.append(f"  {a['name'] or a['address'] or a['key']}: {', '.join(parts) or 'storage only'}")
    exchange = diff["exchange"]
    if any(exchange.get(k) for k in ("vault", "trading_mode", "markets", "accounts")):
        lines.append("the exchange:")
    if "vault" in exchange:
        lines.append(f"  vault {amount(exchange['vault'])}")
    if "trading_mode" in exchange:
        lines.append(f"  trading mode {exchange['trading_mode'][0]} -> {exchange['trading_mode'][1]}")
    for market, entry in exchange["markets"].items():
        parts = [f"price {amount(entry['price'])}"] if "price" in entry else []
        if "funding_index" in entry:
            parts.append(f"funding index {amount(entry['funding_index'])}")
        lines.append(f"  {market}: {', '.join(parts)}")
    for entry in exchange["accounts"]:
        parts = [f"collateral {amount(entry['collateral'])}"] if "collateral" in entry else []
        for market, position in entry.get("positions", {}).items():
            size = position["size"]
            parts.append(f"{market} position {size[0] / 10**18:g} -> {size[1] / 10**18:g}")
        lines.append(f"  {entry['name']} ({entry['address'][:10]}…): {', '.join(parts)}")
    if slots:
        for s in diff["slots"]:
            where = s["name"] or s["address"] or "?"
            lines.append(f"  slot {where}[{s['slot'] if s['slot'] is not None else s['key']}]: "
                         f"{s['value'][0]} -> {s['value'][1]}")
    elif diff["slots"]:
        lines.append(f"({len(diff['slots'])} raw storage slots; --slots lists them)")
    return lines
