"""The narrated run (`l2sim run NAME --narrate [--step]`): a caption per event that matters,
printed as it happens; and `caption_for`, the one sentence each event kind reads as (the
HTML report uses the same sentences).

What matters to a class: the first round of each height is routine and is summed up by
its commit; a caption goes to every nil vote, timeout, round change, lock outside round
0, fault, the alarm and halt, the emergency's steps, and price readings that deviate.
"""

from __future__ import annotations

from typing import Callable

from consensus.emergency import PLAN_FORK_BASE
from scenarios.units import format_clock, format_duration, format_usd

DEVIATION_NOTE_BPS = 500  # a price reading gets a caption when on-chain and reference differ this much
QUIET_GAP_S = 60.0  # a longer stretch of virtual time without events (the halt) is said in words
MAX_LISTED = 5  # compensation payments captioned one by one; the rest are counted

# What each reopening mode means, said when the market enters it.
REOPENING_WORDS = {
    "cancel-only": "only trades that reduce or close a position go through; keepers still liquidate",
    "post-only": "the vault is the only maker and the book is thin: little flow moves the mark far from the index",
    "open": "trading as usual; the reopening-harm audit pays what the restricted phases cost, in this block",
}

# The story's chapters; `--step` can skip to the next one (`p`).
PHASE_TITLES = {
    "chain": "the chain runs",
    "halt": "the glitch, the alarm and the halt",
    "emergency": "the emergency: signed views, the plan vote and its certificate",
    "restore": "the restore",
    "restart": "the restart on a new fork",
}

STEP_HELP = "(Enter: next caption, p: next phase, c: run to the end)"


def shorten(value: str | None, length: int = 10) -> str:
    """The first `length` hex digits of a 0x-hex value and an ellipsis ('-' for None)."""
    return "-" if value is None else value[: length + 2] + "…"


NIL_REASONS = {
    "no_proposal": "no proposal arrived before its propose timeout",
    "locked": "it is locked on another block from an earlier round",
    "invalid": "the block does not re-execute to the state root it claims on this validator's chain "
               "(or the validator has halted)",
    "no_polka": "it saw no 2/3 of the prevotes for one block in time",
}


# Captions that are one sentence over the event's own fields.
TEMPLATES = {
    "timeout": "validator {validator}'s {step} timer fires in round {round}",
    "alarm": "validator {validator}'s alarm goes off at height {height}: {reason}",
    "halt": "validator {validator} halts at height {height} ({reason})",
    "crash": "validator {validator} crashes",
    "recover": "validator {validator} restarts from its saved chain and vote journal",
    "drop": "{type} {from} → {to} lost ({reason})",
    "view": "validator {validator} signs its view: halted at {halt_height}, first bad height {first_bad_height}",
    "certificate": "rollback certificate: validators {signers} signed the plan (power {power}, quorum {quorum})",
    "restart": "the chain restarts at height {height} as fork {new_fork}",
}


def caption_for(event: dict) -> str:
    """One line saying what `event` means, for a teacher (also used by the narration)."""
    kind = event["kind"]
    v = event.get("validator")
    if kind in ("propose", "vote", "decide") and event["fork"] >= PLAN_FORK_BASE:
        return _caption_plan_vote(event)
    if kind == "propose":
        again = f", re-proposing the block locked in round {event['pol_round']}" if event["pol_round"] >= 0 else ""
        return f"validator {v} proposes block {shorten(event['value'], 8)} for height {event['height']}, " \
               f"round {event['round']}{again}"
    if kind == "vote":
        if event["value"] is None:
            return f"validator {v} {event['step']}s nil in round {event['round']}: " \
                   f"{NIL_REASONS.get(event['reason'], event['reason'])}"
        return f"validator {v} {event['step']}s block {shorten(event['value'], 8)} in round {event['round']}"
    if kind == "lock":
        return f"validator {v} locks on block {shorten(event['value'], 8)} in round {event['round']}: " \
               f"it saw 2/3 of the prevotes for it"
    if kind == "decide":
        return f"validator {v} decides height {event['height']} in round {event['round']}, " \
               f"precommits from validators {event['signers']}"
    if kind in ("partition_start", "partition_end"):
        groups = " | ".join(",".join(str(i) for i in g) for g in event["groups"])
        return f"the network splits into {groups}" if kind == "partition_start" else f"the partition {groups} heals"
    if kind == "plan":
        if event["accepted"]:
            return f"the plan {shorten(event['plan_hash'], 8)} proposed by validator {event['proposer']}: go back " \
                   f"to height {event['target_height']} ({event.get('mode')}), expected root " \
                   f"{shorten(event.get('expected_root'), 8)}"
        return f"validator {event['proposer']}'s plan is rejected: {event['reason']}"
    if kind == "restore":
        if event["ok"]:
            return f"validator {v} applies the plan and lands on {shorten(event['state_root'], 8)}, " \
                   f"the root the certificate expects"
        return f"validator {v} fails to restore: {event['error']}"
    if kind == "compensation":
        return f"{shorten(event['account'], 8)} is refunded {format_usd(event['amount'])} ({event['reason']})"
    if kind == "liquidation":
        return f"{shorten(event['account'], 8)} is liquidated on {event['market']} at {format_usd(event['price'])}"
    if kind == "commit":
        return f"height {event['height']} committed on fork {event['fork']}: state root {shorten(event['state_root'], 8)}"
    if kind == "price":
        return f"{event['market']} on chain {format_usd(event['onchain'])}, reference {format_usd(event['reference'])}"
    return TEMPLATES[kind].format(**event)


def _caption_plan_vote(event: dict) -> str:
    v, kind = event["validator"], event["kind"]
    if kind == "propose":
        return f"validator {v} proposes restore plan {shorten(event['value'], 8)} (round {event['round']})"
    if kind == "decide":
        return f"validator {v} holds the rollback certificate: precommits from validators {event['signers']}"
    if event["value"] is None:
        return f"validator {v} {event['step']}s nil on the plan: {NIL_REASONS.get(event['reason'], event['reason'])}"
    return f"validator {v} {event['step']}s plan {shorten(event['value'], 8)}: it recomputed the same plan " \
           f"from the views and its own chain"


class Narrator:
    """Turns events into captions as they are recorded, chapter by chapter; optionally waits
    after each for the reader's answer (see `on_answer`)."""

    def __init__(self, write: Callable[[str], None], wait: Callable[[], str | None] | None = None):
        self.write = write
        self.wait = wait
        self.scheduled: list[dict] = []  # partitions are known in advance: told when their time comes
        self.halted: set[tuple[int, int]] = set()  # (fork, validator)
        self.liquidations: list[dict] = []
        self.compensations = 0
        self.told = 0
        self.last_t_s: float | None = None
        self.phase = "chain"
        self.reopening: dict[tuple[int, int], str] = {}  # (fork, first height) -> mode, from the restart
        self.skip_to_phase = False  # `p`: no waiting until the phase changes
        self.run_to_end = False  # `c`: no waiting again

    def on_event(self, event: dict) -> None:
        """Caption `event` if it matters (listener for `EventLog`)."""
        if event["kind"] in ("partition_start", "partition_end"):
            self.scheduled.append(event)
            self.scheduled.sort(key=lambda e: e["t_s"])
            return
        if self.liquidations and (event["kind"] != "liquidation" or event["height"] != self.liquidations[0]["height"]):
            self._say_liquidations()
        if self.last_t_s is not None and event["t_s"] - self.last_t_s > QUIET_GAP_S:
            self.write(f"... {format_duration(event['t_s'] - self.last_t_s, precise=False)} of virtual time pass "
                       f"with the chain halted (heights stand still, time does not)")
        self.last_t_s = max(event["t_s"], self.last_t_s or 0.0)
        while self.scheduled and self.scheduled[0]["t_s"] <= event["t_s"]:
            self._say(self.scheduled.pop(0))
        text = self.caption(event)
        if text is not None:
            self._say(event, text)

    def finish(self) -> None:
        """Tell what is still pending at the end of the run."""
        if self.liquidations:
            self._say_liquidations()
        for event in self.scheduled:
            self._say(event)
        self.scheduled = []

    def get_phase(self, event: dict) -> str:
        """The chapter `event` belongs to: chapters only move forward (a late plan-vote decision
        told after another validator's restore stays in the restore's chapter)."""
        phase = self._get_event_phase(event)
        order = list(PHASE_TITLES)
        rank = lambda p: order.index(p) if p in order else len(order)  # noqa: E731  (reopening modes last)
        return phase if rank(phase) >= rank(self.phase) else self.phase

    def _get_event_phase(self, event: dict) -> str:
        kind, fork = event["kind"], event["fork"]
        if kind in ("alarm", "halt") and self.phase == "chain":
            return "halt"
        if kind == "view" or fork >= PLAN_FORK_BASE or kind in ("plan", "certificate"):
            return "emergency"
        if kind == "restore":
            return "restore"
        if kind == "restart":
            return "restart"
        if kind == "commit" and (fork, event["height"]) in self.reopening:
            return self.reopening[(fork, event["height"])]
        return self.phase

    def caption(self, event: dict) -> str | None:
        """The caption of `event`, or None when it does not matter on its own."""
        kind = event["kind"]
        if kind == "restart":
            self.reopening = {(event["fork"], height): mode for height, mode in event.get("phases", ())}
            modes = ", then ".join(f"{mode} from height {height}" for height, mode in event.get("phases", ()))
            return caption_for(event) + (f"; trading reopens in phases: {modes}" if modes else "")
        if kind == "halt":
            self.halted.add((event["fork"], event["validator"]))
        if kind == "liquidation":
            self.liquidations.append(event)
            return None
        if kind == "compensation":
            self.compensations += 1
            return caption_for(event) if self.compensations <= MAX_LISTED else None
        plan_vote = event["fork"] >= PLAN_FORK_BASE  # every step of the plan vote is told
        if kind in ("send", "deliver", "drop") or (kind == "decide" and not plan_vote):
            return None
        if (kind == "propose" and event["round"] == 0 and not plan_vote) or (kind == "lock" and event["round"] == 0):
            return None
        if kind == "vote":
            if event["value"] is not None:
                return caption_for(event) if plan_vote else None
            if event["reason"] == "invalid" and (event["fork"], event["validator"]) in self.halted:
                return (f"validator {event['validator']} {event['step']}s nil at height {event['height']}: "
                        f"it has halted and commits nothing more on this fork")
            return caption_for(event)
        if kind == "price":
            reference = event["reference"]
            if reference and abs(event["onchain"] - reference) * 10_000 < DEVIATION_NOTE_BPS * reference:
                return None
        if kind == "commit":
            text = f"height {event['height']} committed on fork {event['fork']} ({event['txs']} transactions), " \
                   f"state root {shorten(event['state_root'], 8)}"
            mode = self.reopening.get((event["fork"], event["height"]))
            if mode is not None:
                text += f"; the market is now {mode}: {REOPENING_WORDS.get(mode, mode)}"
            return text
        return caption_for(event)

    def _say_liquidations(self) -> None:
        first = self.liquidations[0]
        markets: dict[str, int] = {}
        for e in self.liquidations:
            markets[e["market"]] = markets.get(e["market"], 0) + 1
        listed = ", ".join(f"{count} on {market}" for market, count in sorted(markets.items()))
        self._say(first, f"{len(self.liquidations)} positions liquidated at height {first['height']} ({listed})")
        self.liquidations = []

    def _say(self, event: dict, text: str | None = None) -> None:
        phase = self.get_phase(event)
        if phase != self.phase:
            self.phase, self.skip_to_phase = phase, False
            self.write(f"== {PHASE_TITLES.get(phase, 'reopening: ' + phase)} ==")
        height = "-" if event["height"] is None else str(event["height"])
        self.write(f"[{format_clock(event['t_s'])}  h {height:>3}]  {text or caption_for(event)}")
        self.told += 1
        if self.wait is not None and not self.run_to_end and not self.skip_to_phase:
            self.on_answer(self.wait())

    def on_answer(self, answer: str | None) -> None:
        """What the reader typed after a caption: Enter (or anything else) the next caption,
        `p` the next phase, `c` the end of the run."""
        command = (answer or "").strip().lower()
        if command == "c":
            self.run_to_end = True
        elif command == "p":
            self.skip_to_phase = True


def make_narrator(*, to_stderr: bool, step: bool) -> Narrator:
    """A narrator printing to the terminal; with `step`, it waits after each caption when stdin
    is a terminal (Enter: next caption, p: next phase, c: to the end), and never waits when
    it is not."""
    import sys

    import click

    wait = None
    if step and sys.stdin.isatty():
        def wait() -> str:
            return sys.stdin.readline()

    narrator = Narrator(lambda line: click.echo(line, err=to_stderr), wait)
    if wait is not None:
        narrator.write(STEP_HELP)
    return narrator
