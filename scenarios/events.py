"""The event log of a run (`l2sim run --events PATH`): what happened, one event a line.

Every event has `t_s` (virtual seconds since genesis), `fork` (the fork id it happened
on; the restore plan is voted under its own fork id, see `consensus.emergency`),
`height` (or null where no height applies), `kind`, and the fields of its kind listed
in `KINDS`. Values are JSON-ready: ints, strings (hashes, roots and addresses as
0x-hex), booleans, null and lists of those. Prices and amounts are integers in the
token's smallest unit (1e18 per USD).

The log only observes: nothing in the run reads it, so recording it cannot change the
digest (a test runs a scenario with and without it and compares). Written as JSON Lines
with sorted keys and no spaces, in order of virtual time (events at the same instant
keep the order they happened in): the same seed gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scenarios.errors import ScenarioError
from scenarios.output import parse_json, write_text_atomic

COMMON_FIELDS = ("t_s", "fork", "height", "kind")
T_S_DECIMALS = 6  # the simulation's clock ticks in microseconds

# kind -> the fields every event of that kind carries (beyond the common four), and what it means.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    # consensus (one phase's simulation: the chain, the plan vote, the restarted chain)
    "send": (("from", "to", "type", "round"), "a validator sends a message to a peer"),
    "deliver": (("from", "to", "type", "round"), "a message reaches its receiver"),
    "drop": (("from", "to", "type", "round", "reason"),
             "a message is lost: `lost` on the link, `partition`, or `receiver_down`"),
    "propose": (("validator", "round", "value", "pol_round", "signature"), "the round's proposer signs a block"),
    "vote": (("validator", "step", "round", "value", "reason", "signature"),
             "a signed prevote/precommit; value null is nil and `reason` says why (else null)"),
    "timeout": (("validator", "step", "round"), "a step's timer fired before the step completed"),
    "lock": (("validator", "round", "value"), "a validator locks on a block after seeing 2/3 prevotes"),
    "decide": (("validator", "round", "value", "signers"), "a validator decides a block with 2/3 precommits"),
    "crash": (("validator",), "a validator stops (its chain and vote journal survive)"),
    "recover": (("validator",), "a crashed validator starts again"),
    "partition_start": (("groups",), "the network splits into groups that cannot reach each other"),
    "partition_end": (("groups",), "the partition heals"),
    # the chain and the exchange (once per height, as the reference honest validator sees it)
    "commit": (("block_hash", "state_root", "proposer", "txs"), "a block is appended to the chain"),
    "price": (("market", "onchain", "reference"), "the oracle's on-chain price (the index), the true price, "
              "and (from this version) the perps mark and the funding index"),
    "liquidation": (("account", "market", "price"), "a keeper liquidates an account's position"),
    # the emergency
    "alarm": (("validator", "reason"), "a validator's deviation alarm goes off"),
    "halt": (("validator", "reason"), "a validator stops committing past this height"),
    "view": (("validator", "halt_height", "first_bad_height"), "a validator signs its view of the halt"),
    "plan": (("proposer", "plan_hash", "target_height", "accepted", "reason"),
             "a restore plan proposed; accepted or why honest validators rejected it"),
    "certificate": (("plan_hash", "signers", "power", "quorum"), "2/3 of the power signed the plan"),
    "restore": (("validator", "state_root", "ok", "error"), "a validator applies the certified plan"),
    "restart": (("new_fork", "phases"), "the chain restarts under a new fork id; phases: the reopening's "
                                        "[first height, mode] (cancel-only, post-only, open)"),
    "compensation": (("account", "amount", "reason"), "an account is paid from the vault after the restart"),
}


class EventLogError(ScenarioError):
    """Raised when an event log file cannot be read (not JSON Lines, or an event lacks a field)."""

    def __init__(self, path: str, line: int | None, reason: str):
        super().__init__(reason, file=path, line=line)


def to_json_value(value: object) -> object:
    """`value` as JSON-ready data: bytes as 0x-hex, tuples as lists; floats only for time."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, float):
        return round(value, T_S_DECIMALS)
    raise AssertionError(f"event value {value!r} is not JSON-ready")


@dataclass
class EventLog:
    """Records events in the order they happen; never read by the run itself."""

    events: list[dict] = field(default_factory=list)
    listener: Callable[[dict], None] | None = None  # told each event as it is recorded (narration)

    def emit(self, kind: str, *, t_s: float, fork: int, height: int | None, **fields: object) -> None:
        """Record one event of `kind` (every field `KINDS[kind]` names must be given)."""
        assert kind in KINDS, f"unknown event kind {kind!r}"
        missing = [f for f in KINDS[kind][0] if f not in fields]
        assert not missing, f"{kind} event lacks {missing}"
        event = {name: to_json_value(value) for name, value in fields.items()}
        event.update(t_s=round(t_s, T_S_DECIMALS), fork=fork, height=height, kind=kind)
        self.events.append(event)
        if self.listener is not None:
            self.listener(event)

    def make_observer(self):
        """A callable for `consensus.sim.create_simulation(observer=...)`: (time_us, kind, fields)."""
        def observe(time_us: int, kind: str, fields: dict) -> None:
            fields = dict(fields)
            self.emit(kind, t_s=time_us / 1e6, fork=fields.pop("fork"), height=fields.pop("height"), **fields)
        return observe

    def get_ordered(self) -> list[dict]:
        """The events by virtual time; the same instant keeps the order of emission."""
        return sorted(self.events, key=lambda e: e["t_s"])  # stable


def encode_event(event: dict) -> str:
    """One event as its canonical JSON line (sorted keys, no spaces)."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


def write_events(events: list[dict], path: str | Path) -> None:
    """Write `events` as JSON Lines, atomically (the same events give the same bytes)."""
    write_text_atomic(path, "".join(encode_event(event) + "\n" for event in events))


def read_events(path: str | Path) -> list[dict]:
    """The events of a JSON Lines log; EventLogError names the first bad line."""
    events = []
    if not Path(path).is_file():
        raise EventLogError(str(path), None, "no event log here")
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise EventLogError(str(path), None, f"not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise EventLogError(str(path), None, f"cannot be read: {error.strerror}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            event = parse_json(line)
        except json.JSONDecodeError as error:
            raise EventLogError(str(path), number, f"not JSON: {error.msg}") from None
        except RecursionError:
            raise EventLogError(str(path), number, "not JSON: nested too deeply") from None
        if not isinstance(event, dict) or any(f not in event for f in COMMON_FIELDS):
            raise EventLogError(str(path), number, f"an event needs {', '.join(COMMON_FIELDS)}")
        if not isinstance(event["kind"], str) or event["kind"] not in KINDS:
            raise EventLogError(str(path), number, f"unknown kind {event['kind']!r}")
        problem = compute_event_problem(event)
        if problem is not None:
            raise EventLogError(str(path), number, problem)
        events.append(event)
    return events


def compute_event_problem(event: dict) -> str | None:
    """Why a decoded event (of a known kind) cannot be read back, or None: a field of its kind
    missing, or a common field of the wrong type (a damaged or hand-edited log)."""
    missing = [f for f in KINDS[event["kind"]][0] if f not in event]
    if missing:
        return f"a {event['kind']} event needs {', '.join(missing)}"
    if isinstance(event["t_s"], bool) or not isinstance(event["t_s"], (int, float)):
        return f"t_s {event['t_s']!r} is not a number of seconds"
    for name, value in (("fork", event["fork"]), ("height", event["height"])):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{name} {value!r} is not an integer"
    return None


def get_signed(events: list[dict], height: int, fork: int | None = None) -> list[dict]:
    """Every signed proposal and vote recorded at `height` (of `fork`, or of every fork),
    in the order they were signed."""
    return [e for e in events if e["kind"] in ("propose", "vote") and e["height"] == height
            and (fork is None or e["fork"] == fork)]
