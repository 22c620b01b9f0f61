"""The offline HTML report of a run: one self-contained page for a class.

Inputs are plain data: the JSON report (`scenarios.report.build_report`) and the event
log (`scenarios.events`). The SVG is drawn here, in Python, with integer coordinates and
a fixed order, so the same run gives the same bytes; a small inline script only shows and
hides what is already on the page (stepping through heights and rounds). Nothing is
fetched from the network: no scripts, styles or fonts from elsewhere.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from consensus.emergency import PLAN_FORK_BASE
from scenarios.events import read_events, write_events
from scenarios.html_charts import MIN_WIDTH, Chart, draw_chart, fit_text
from scenarios.output import write_text_atomic
from scenarios.explain import CHECKS, TERMS
from scenarios.narrate import NIL_REASONS, caption_for, format_usd, shorten

MAX_ARROWS = 240  # per diagram; a height with more (a partition, many rounds) says how many it left out
LANE_X0, LANE_DX, DIAGRAM_TOP, DIAGRAM_H = 110, 150, 64, 440
MESSAGE_COLOURS = {"proposal": "#1f6feb", "prevote": "#2da44e", "precommit": "#8250df",
                   "commit": "#bf8700", "commit_request": "#9a6700", "has_votes": "#6e7781", "HaltView": "#cf222e"}


def _fork_label(fork: int, halted: bool) -> str:
    if fork >= PLAN_FORK_BASE:
        return f"plan vote for fork {fork - PLAN_FORK_BASE}"
    if fork == 0:
        return "fork 0 (before the halt)" if halted else "fork 0"
    return f"fork {fork} (after the restart)"


# ---------------------------------------------------------------- the Lamport diagrams


def _group_by_height(events: list[dict]) -> dict[tuple[int, int], list[dict]]:
    groups: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for event in events:
        if event["height"] is not None and event["kind"] in (
                "send", "deliver", "drop", "propose", "vote", "timeout", "lock", "decide", "alarm", "halt"):
            groups[(event["fork"], event["height"])].append(event)
    return groups


def _messages(events: list[dict]) -> tuple[list[dict], int]:
    """What to draw of each (from, to, type, round): its first transmission and, when that
    one was lost, the first copy that got through. Returns (messages, copies not drawn)."""
    sent: dict[tuple, list[dict]] = defaultdict(list)
    for event in events:
        if "from" not in event:
            continue
        key = (event["from"], event["to"], event["type"], event["round"])
        if event["kind"] == "send":
            sent[key].append({"key": key, "sent": event["t_s"], "arrived": None, "dropped": None})
            continue
        waiting = [m for m in sent[key] if m["arrived"] is None and m["dropped"] is None]
        if waiting:  # copies of one message travel alike: the oldest in flight is the one that ends
            if event["kind"] == "deliver":
                waiting[0]["arrived"] = event["t_s"]
            else:
                waiting[0]["dropped"] = event["reason"]
    drawn, hidden = [], 0
    for copies in sent.values():
        chosen = [copies[0]]
        if copies[0]["arrived"] is None:
            chosen += [m for m in copies[1:] if m["arrived"] is not None][:1]
        drawn += chosen
        hidden += len(copies) - len(chosen)
    return sorted(drawn, key=lambda m: (m["sent"], m["key"])), hidden


def _fault_windows(faults: list[dict]) -> list[tuple[float, float, int | None, str]]:
    """(start_s, end_s, validator or None for the whole network, label) of every fault."""
    windows = []
    down: dict[int, float] = {}
    for event in sorted(faults, key=lambda e: e["t_s"]):
        if event["kind"] == "partition_start":
            groups = " | ".join(",".join(str(i) for i in g) for g in event["groups"])
            end = next((e["t_s"] for e in faults if e["kind"] == "partition_end" and e["groups"] == event["groups"]
                        and e["t_s"] >= event["t_s"]), float("inf"))
            windows.append((event["t_s"], end, None, f"partition {groups}"))
        elif event["kind"] == "crash":
            down.setdefault(event["validator"], event["t_s"])
        elif event["kind"] == "recover" and event["validator"] in down:
            windows.append((down.pop(event["validator"]), event["t_s"], event["validator"], "down"))
    windows += [(at, float("inf"), v, "down") for v, at in sorted(down.items())]
    return windows


def _lane_x(validator: int) -> int:
    return LANE_X0 + validator * LANE_DX


GOSSIP_TYPES = ("commit", "commit_request")  # what nodes send after deciding: drawn below the break
FOLD_GAP, FOLD_H = 34, 70


def _nice_step(span_ms: float) -> int:
    """A tick step of 1, 2 or 5 times a power of ten giving about six ticks over `span_ms`."""
    step = 1
    while span_ms / step > 7:
        step = step * 2 if str(step)[0] in "15" else step * 5 // 2
    return step


IDLE_S, BREAK_PX, MIN_PIECE_PX = 5.0, 30, 60


def _time_pieces(times: list[float], t0: float, t_end: float) -> list[tuple[float, float, int, int]]:
    """How the lane's height is shared: (t_from, t_to, y_from, y_to) pieces, alternately a
    stretch where something happens and a break over a wait of more than `IDLE_S` that is also
    most of the height's time (a partition, a long timeout), drawn `BREAK_PX` tall."""
    span = max(t_end - t0, 1e-3)
    busy, start, previous = [], t0, t0
    for t in times:
        if t - previous > IDLE_S and t - previous > span / 2:
            busy.append((start, previous))
            start = t
        previous = t
    busy.append((start, t_end))
    room = DIAGRAM_H - BREAK_PX * (len(busy) - 1)
    pieces, y = [], DIAGRAM_TOP
    for i, (a, b) in enumerate(busy):
        if i:
            pieces.append((busy[i - 1][1], a, y, y + BREAK_PX))
            y += BREAK_PX
        h = max(MIN_PIECE_PX, room // len(busy))  # each stretch alike: a short one after a wait is as readable
        pieces.append((a, b, y, y + h))
        y += h
    return pieces


def _time_label(ms: int, step_ms: int = 1000) -> str:
    """A time since the height's start: milliseconds up to ten seconds, then seconds (with
    the decimals a tick step of `step_ms` needs)."""
    if ms < 10_000:
        return f"{ms} ms"
    decimals = 0 if step_ms >= 1000 else 1 if step_ms >= 100 else 2 if step_ms >= 10 else 3
    return f"{ms / 1000:,.{decimals}f} s"


def _no_none(text: str) -> str:
    return text.replace(" round None", "").replace("None", "-")


def draw_lamport(events: list[dict], count: int, *, is_halt: bool,
                 faults: list[tuple[float, float, int | None, str]] = (),
                 byzantine: dict[int, str] | None = None) -> tuple[Markup, list[int], int]:
    """One height's diagram: a lane per validator (a Byzantine one marked), time flowing down
    in milliseconds from the height's first event, an arrow per message, fault windows shaded.
    The consensus steps fill the lane; the commit gossip that follows the decisions is folded
    below a break, on its own scale. Returns (svg, rounds present, messages left out)."""
    byzantine = byzantine or {}
    messages, _ = _messages(events)
    # the times of what is drawn (a re-sent copy that is not drawn does not stretch the lanes)
    marks = [e["t_s"] for e in events if e["kind"] not in ("send", "deliver", "drop")]
    core = marks + [t for m in messages if m["key"][2] not in GOSSIP_TYPES for t in (m["sent"], m["arrived"])
                    if t is not None]
    times = marks + [t for m in messages for t in (m["sent"], m["arrived"]) if t is not None]
    t0, t1 = min(times), max(times)
    t_break = max(core, default=t1)
    folded = t1 > t_break + 1e-9
    width = _lane_x(count - 1) + LANE_X0
    pieces = _time_pieces(sorted(set(core)), t0, t_break)
    if folded:  # the commit gossip, below a break on its own scale
        pieces.append((t_break, t1, pieces[-1][3] + FOLD_GAP, pieces[-1][3] + FOLD_GAP + FOLD_H))
    bottom = pieces[-1][3]

    def y(t: float) -> int:
        for ta, tb, ya, yb in pieces:
            if t <= tb or (ta, tb) == pieces[-1][:2]:
                return ya + round((min(max(t, ta), tb) - ta) / max(tb - ta, 1e-6) * (yb - ya))
        return bottom

    total_h = bottom + (40 if is_halt else 14) + (26 if folded else 0)
    parts = [f'<svg class="lamport" viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" role="img">']
    for start, end, validator, label in faults:
        if start <= t1 and end >= t0:
            top, low = y(max(start, t0)), y(min(end, t1))
            if validator is None:
                parts.append(f'<rect class="fault" x="0" y="{top}" width="{width}" height="{max(low - top, 2)}"/>'
                             f'<text class="fault-label" x="{width - 6}" y="{top + 13}">{escape(label)}</text>')
            else:
                x = _lane_x(validator)
                parts.append(f'<rect class="fault down" x="{x - 26}" y="{top}" width="52" '
                             f'height="{max(low - top, 2)}"/><text class="fault-label" x="{x + 24}" '
                             f'y="{top + 13}">{escape(label)}</text>')
    ticks = []
    for i, (ta, tb, ya, yb) in enumerate(pieces):
        if i % 2:  # a break: an idle stretch, or the fold before the commit gossip
            cut = (ya + yb) // 2 if i < len(pieces) - 1 or not folded else ya - FOLD_GAP // 2
            parts.append(f'<path class="break" d="M0 {cut - 3} H{width} M0 {cut + 2} H{width}"/>')
            continue
        step_ms = _nice_step((tb - ta) * 1000 * DIAGRAM_H / max(yb - ya, 1))
        first = ta if i else t0
        start_ms = round((first - t0) * 1000)
        ticks.append((_time_label(start_ms) if i == 0 else "+" + _time_label(start_ms, step_ms), ya))
        k = start_ms // step_ms + 1
        while k * step_ms <= (tb - t0) * 1000 and (i == 0 or yb - ya > 60):
            ty = y(t0 + k * step_ms / 1000)
            if ty - ticks[-1][1] >= 16:
                ticks.append((("+" if i else "") + _time_label(k * step_ms, step_ms), ty))
            k += 1
    if folded:
        ticks.append(("+" + _time_label(round((t_break - t0) * 1000)), pieces[-1][2]))
        ticks.append(("+" + _time_label(round((t1 - t0) * 1000)), bottom))
        parts.append(f'<text class="fold-label" x="66" y="{bottom + 26}">below the break: the commit gossip after the '
                     f'decisions, on its own time scale</text>')
    parts.append(f'<path class="grid" d="{"".join(f"M66 {ty}H{width - 8}" for _, ty in ticks)}"/>')
    parts += [f'<text class="axis" x="62" y="{ty + 4}">{label}</text>' for label, ty in ticks]
    parts.append(f'<text class="axis-title" x="4" y="{DIAGRAM_TOP - 14}">time ↓</text>')
    rounds = sorted({e["round"] for e in events if e.get("round") is not None})
    starts: dict[int, float] = {}
    for event in events:
        if event.get("round") is not None and event["round"] not in starts:
            starts[event["round"]] = event["t_s"]
    for r in rounds:
        if r > 0:
            ry = y(starts[r]) - 4
            parts.append(f'<g data-r="{r}"><line class="round" x1="66" x2="{width - 10}" y1="{ry}" y2="{ry}"/>'
                         f'<text class="round-label" x="{width - 10}" y="{ry - 3}" text-anchor="end">round {r}</text></g>')
    for v in range(count):
        x = _lane_x(v)
        bad = v in byzantine
        parts.append(f'<line class="lane{" byzantine" if bad else ""}" x1="{x}" x2="{x}" y1="{DIAGRAM_TOP - 8}" '
                     f'y2="{bottom + 8}"/><text class="lane-label" x="{x}" y="16">validator {v}</text>')
        if bad:
            parts.append(f'<text class="lane-label byzantine" x="{x}" y="31">Byzantine<title>validator {v} does not '
                         f'follow the protocol ({escape(byzantine[v])})</title></text><text class="lane-label byzantine" '
                         f'x="{x}" y="45">{escape(byzantine[v])}</text>')
    drawn = 0
    left_out = 0
    for m in messages:
        sender, receiver, kind, r = m["key"]
        if drawn >= MAX_ARROWS:
            left_out += 1
            continue
        drawn += 1
        x1, x2, y1 = _lane_x(sender), _lane_x(receiver), y(m["sent"])
        colour = MESSAGE_COLOURS.get(kind, "#57606a")
        attr = f' data-r="{r}"' if r is not None else ""
        title = f"{kind.replace('_', ' ')}" + (f" round {r}" if r is not None else "") + f": {sender} → {receiver}"
        if m["arrived"] is not None:
            y2 = y(m["arrived"])
            parts.append(f'<line{attr} class="msg" stroke="{colour}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                         f'marker-end="url(#arrow)"><title>{escape(title)}</title></line>')
        else:
            x2m = (x1 + x2) // 2
            if m["dropped"] is None:  # the phase ended (its goal was met) before this one arrived
                parts.append(f'<line{attr} class="msg inflight" stroke="{colour}" x1="{x1}" y1="{y1}" '
                             f'x2="{x2m}" y2="{y1 + 12}"><title>{escape(title)}: still in flight when the phase '
                             f'ended</title></line>')
            else:
                parts.append(f'<g{attr} class="dropped"><line class="msg lost" stroke="{colour}" x1="{x1}" '
                             f'y1="{y1}" x2="{x2m}" y2="{y1 + 12}"><title>{escape(title)}: lost ({m["dropped"]})'
                             f'</title></line><text class="x" x="{x2m - 4}" y="{y1 + 16}">✕</text></g>')
    for event in events:
        kind = event["kind"]
        if kind in ("send", "deliver", "drop"):
            continue
        x, ty = _lane_x(event["validator"]), y(event["t_s"])
        r = event.get("round")
        attr = f' data-r="{r}"' if r is not None else ""
        title = escape(_no_none(caption_for(event)) + f" (at {round((event['t_s'] - t0) * 1000)} ms)")
        if kind == "propose":
            parts.append(f'<rect{attr} class="propose" x="{x - 7}" y="{ty - 7}" width="14" height="14">'
                         f'<title>{title}</title></rect>')
        elif kind == "vote":
            nil = event["value"] is None
            colour = MESSAGE_COLOURS[event["step"]]
            fill = "#ffffff" if nil else colour
            dx = -12 if event["step"] == "prevote" else 12
            parts.append(f'<circle{attr} class="vote{" nil" if nil else ""}" cx="{x + dx}" cy="{ty}" r="6" '
                         f'stroke="{colour}" fill="{fill}"><title>{title}</title></circle>')
        elif kind in ICON_OFFSETS:
            parts.append(draw_icon(kind, x + ICON_OFFSETS[kind], ty, attr, title))
    if is_halt:
        band = bottom + (26 if folded else 0)
        parts.append(f'<rect class="halt-band" x="0" y="{band + 14}" width="{width}" height="22"/>'
                     f'<text class="halt-text" x="{width // 2}" y="{band + 30}">'
                     f'HALT: nothing is committed past this height</text>')
    parts.append("</svg>")
    return Markup("".join(parts)), rounds, left_out


ICON_OFFSETS = {"lock": 22, "decide": 0, "timeout": -28, "alarm": -24, "halt": -24, "view": -22}


def draw_icon(kind: str, x: int, y: int, attr: str = "", title: str = "") -> str:
    """A small shape for a lock, decision, timeout, alarm or halt (no font glyphs: the page
    must look the same on a machine without emoji fonts)."""
    inner = f"<title>{title}</title>" if title else ""
    if kind == "lock":
        shape = '<rect x="-5" y="-1" width="10" height="8" rx="1"/><path d="M-3 -1 v-3 a3 3 0 0 1 6 0 v3"/>'
    elif kind == "decide":
        shape = '<circle r="8"/><path d="M-4 0 l3 3 l5 -6"/>'
    elif kind == "timeout":
        shape = '<circle r="7"/><path d="M0 -4 v4 h3"/>'
    elif kind == "alarm":
        shape = '<path d="M0 -8 L8 6 H-8 Z"/><path class="mark" d="M0 -3 v5"/>'
    elif kind == "view":  # a signed sheet
        shape = '<path d="M-6 -8 H3 L6 -5 V8 H-6 Z"/><path class="mark" d="M-3 -3 h6 M-3 1 h6 M-3 5 h4"/>'
    else:
        assert kind == "halt", kind
        shape = '<path d="M-3 -8 H3 L8 -3 V3 L3 8 H-3 L-8 3 V-3 Z"/><path class="mark" d="M-4 0 h8"/>'
    return f'<g{attr} class="icon {kind}" transform="translate({x},{y})">{shape}{inner}</g>'


LEGEND_NAMES = {"commit_request": "commit request", "has_votes": "has votes", "HaltView": "signed halt view"}


def draw_legend() -> Markup:
    """The diagram's key: message colours and the icons."""
    items = [f'<line x1="0" x2="22" y1="0" y2="0" stroke="{c}" stroke-width="3"/>'
             f'<text x="28" y="4">{LEGEND_NAMES.get(k, k)}</text>' for k, c in MESSAGE_COLOURS.items()]
    items.append('<line class="msg lost" x1="0" x2="22" y1="0" y2="0" stroke="#57606a"/>'
                 '<text class="x" x="8" y="4">✕</text><text x="28" y="4">lost</text>')
    items.append('<rect class="propose" x="4" y="-6" width="12" height="12"/><text x="28" y="4">proposal signed</text>')
    items.append('<circle cx="10" r="6" fill="#2da44e" stroke="#2da44e"/><text x="28" y="4">vote for a block</text>')
    items.append('<circle cx="10" r="6" fill="#fff" stroke="#2da44e" stroke-width="2"/><text x="28" y="4">nil vote</text>')
    for kind in ICON_OFFSETS:
        items.append(draw_icon(kind, 10, 0) + f'<text x="28" y="4">{kind}</text>')
    width = 150
    cells = "".join(f'<g transform="translate({8 + (i % 6) * width},{14 + (i // 6) * 24})">{item}</g>'
                    for i, item in enumerate(items))
    rows = (len(items) + 5) // 6
    return Markup(f'<svg class="legend" viewBox="0 0 {6 * width} {rows * 24 + 6}" width="{6 * width}" '
                  f'height="{rows * 24 + 6}" role="img">{cells}</svg>')


def summarise_height(events: list[dict]) -> list[str]:
    """A few sentences on what happened at one height (the caption under its diagram)."""
    lines = []
    proposals = [e for e in events if e["kind"] == "propose"]
    for p in proposals:
        lines.append(caption_for(p) + ".")
    nil = [e for e in events if e["kind"] == "vote" and e["value"] is None]
    for e in nil[:6]:
        lines.append(caption_for(e) + ".")
    if len(nil) > 6:
        lines.append(f"… and {len(nil) - 6} more nil votes.")
    for e in events:
        if e["kind"] in ("alarm", "halt", "timeout"):
            lines.append(caption_for(e) + ".")
    decides = [e for e in events if e["kind"] == "decide"]
    values = sorted({e["value"] for e in decides})
    if len(values) > 1:  # only Byzantine power of a third or more can do this
        split = "; ".join(f"validators {_names(sorted({e['validator'] for e in decides if e['value'] == v}))} decided "
                          f"{shorten(v, 8)}" for v in values)
        lines.append(f"Agreement broken: {split}.")
    elif decides:
        rounds = sorted({e["round"] for e in decides})
        lines.append(f"Decided in round {rounds[0]} by validators {_names(sorted({e['validator'] for e in decides}))}.")
    else:
        lines.append("Not decided at this height.")
    drops = [e for e in events if e["kind"] == "drop"]
    if drops:
        causes = sorted({e["reason"] for e in drops})
        lines.append(f"{len(drops)} messages lost ({', '.join(causes)}).")
    return lines


def build_diagrams(report: dict, events: list[dict]) -> list[dict]:
    """Every height's diagram in run order: fork 0, the plan vote, the restarted fork."""
    count = report["validators"]["count"]
    halt = report["incident"]["halt_height"]
    first_bad = report["incident"]["first_bad_height"]
    groups = _group_by_height(events)
    fault_events = [e for e in events if e["kind"] in ("partition_start", "partition_end", "crash", "recover")]
    windows = _fault_windows(fault_events)
    order = []
    for (fork, height), group in groups.items():
        if any(e["kind"] in ("send", "propose", "vote") for e in group):
            order.append((group[0]["t_s"], fork, height))
    diagrams = []
    for _, fork, height in sorted(order):
        group = groups[(fork, height)]
        is_halt = fork == 0 and height == halt
        svg, rounds, left_out = draw_lamport(group, count, is_halt=is_halt, faults=windows,
                                             byzantine=_byzantine(report))
        t0, t1 = group[0]["t_s"], max(e["t_s"] for e in group)
        during = [f"At {e['t_s']:.1f} s {caption_for(e)}." for e in fault_events if t0 <= e["t_s"] <= t1]
        marks = []
        if fork == 0 and height == first_bad:
            marks.append("first block with the bad price")
        if is_halt:
            marks.append("halt height")
        diagrams.append({"id": f"h-{fork}-{height}", "fork": fork, "height": height, "svg": svg, "rounds": rounds,
                         "label": f"{_fork_label(fork, halt is not None)} · height {height}", "marks": marks,
                         "is_halt": is_halt, "left_out": left_out, "summary": during + summarise_height(group),
                         "resent": _messages(group)[1]})
    return diagrams


# ---------------------------------------------------------------- plots


def _commits(events: list[dict], report: dict) -> list[dict]:
    """Commits on the final history, in run order (the plan vote commits nothing to the chain)."""
    new_fork = (report.get("restore") or {}).get("new_fork_id")
    return [e for e in events if e["kind"] == "commit" and (e["fork"] == 0 or e["fork"] == new_fork)]


def draw_roots(report: dict, events: list[dict]) -> Markup:
    """The chain of state roots per fork: a box per height, the rollback point marked."""
    commits = _commits(events, report)
    if not commits:
        return Markup("")
    restore = report.get("restore") or {}
    target = restore.get("target_height")
    first_bad = report["incident"]["first_bad_height"]
    top = max(e["height"] for e in commits)
    cell = max(6, min(30, 1000 // max(top, 1)))
    width = max(MIN_WIDTH, 90 + (top + 1) * cell + 40)
    rows = {0: 30}
    if restore:
        rows[restore["new_fork_id"]] = 100
    parts = [f'<svg class="roots" viewBox="0 0 {width} 150" width="{width}" height="150" role="img">']
    for fork, y in rows.items():
        parts.append(f'<text class="row-label" x="4" y="{y + 13}">fork {fork}</text>')
    for e in commits:
        x = 90 + e["height"] * cell
        y = rows.get(e["fork"])
        if y is None:
            continue
        cls = "root"
        if e["fork"] == 0 and target is not None and e["height"] > target:
            cls += " discarded"
        if e["fork"] == 0 and first_bad is not None and e["height"] >= first_bad:
            cls += " bad"
        parts.append(f'<rect class="{cls}" x="{x}" y="{y}" width="{cell - 2}" height="18">'
                     f'<title>fork {e["fork"]} height {e["height"]}: state root {e["state_root"]}</title></rect>')
    if target is not None:
        x = 90 + target * cell + cell // 2
        hx = 90 + restore["halt_height"] * cell + cell // 2
        note = f'rollback to height {target} (root {shorten(restore["snapshot_state_root"], 8)})'
        nx, anchor = fit_text(max(x, hx) + 8, note, width)
        parts.append(f'<path class="rollback" d="M{hx} 50 C{hx} 80 {x} 60 {x} 96" marker-end="url(#arrow)"/>'
                     f'<text class="note" x="{nx}" y="72" text-anchor="{anchor}">{escape(note)}</text>')
    for h in sorted({1, top, *(v for v in (target, restore.get("halt_height")) if v)}):
        parts.append(f'<text class="tick" x="{90 + h * cell + cell // 2}" y="145" text-anchor="middle">{h}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _chain_prices(report: dict, events: list[dict]) -> dict[str, list[dict]]:
    """Market -> its price events on the final history (fork 0, then the restarted fork), in order."""
    new_fork = (report.get("restore") or {}).get("new_fork_id")
    markets: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e["kind"] == "price" and (e["fork"] == 0 or e["fork"] == new_fork):
            markets[e["market"]].append(e)
    return markets


def _point_label(event: dict) -> str:
    return f"height {event['height']}" if event["fork"] == 0 else f"fork {event['fork']} · height {event['height']}"


def _axis(points: list[dict]) -> dict:
    """The x axis of a chart over `points`: each point's height, and a bracket per fork."""
    groups, start = [], 0
    for i in range(1, len(points) + 1):
        if i == len(points) or points[i]["fork"] != points[start]["fork"]:
            fork = points[start]["fork"]
            groups.append((start, i - 1, "fork 0" if fork == 0 else f"fork {fork} (after the restart)"))
            start = i
    return {"ticks": [str(e["height"]) for e in points], "groups": groups}


def _liquidations(events: list[dict]) -> dict[tuple[int, int, str], int]:
    """(fork, height, market) -> liquidations in that block."""
    counts: dict[tuple[int, int, str], int] = defaultdict(int)
    for e in events:
        if e["kind"] == "liquidation":
            counts[(e["fork"], e["height"], e["market"])] += 1
    return counts


def draw_market_charts(report: dict, events: list[dict]) -> list[dict]:
    """A chart per market (the incident's first): the index the oracle posted on chain against
    the true price, liquidations below, the glitch shaded, the halt and the restart marked."""
    incident = report["incident"]
    first_bad, halt = incident["first_bad_height"], incident["halt_height"]
    liquidations = _liquidations(events)
    charts = []
    prices = _chain_prices(report, events)
    for market in sorted(prices, key=lambda m: (m != incident.get("market"), m)):
        points = prices[market]
        chart = Chart(title=market, labels=[_point_label(e) for e in points],
                      lines=[("true price (the feed outside)", "ref-line", [e["reference"] for e in points]),
                             ("index on chain (the oracle)", "onchain-line", [e["onchain"] for e in points])],
                      bars=[liquidations.get((e["fork"], e["height"], market), 0) for e in points], **_axis(points))
        bad = [i for i, e in enumerate(points) if e["fork"] == 0 and first_bad is not None
               and e["height"] >= first_bad]
        if bad:
            chart.spans.append((bad[0], bad[-1], "glitch", "glitch"))
        halt_at = [i for i, e in enumerate(points) if e["fork"] == 0 and e["height"] == halt]
        if halt_at:
            chart.markers.append((halt_at[0], "halt, then the pause"))
        restart = [i for i, e in enumerate(points) if e["fork"] != 0]
        if restart:
            chart.markers.append((restart[0], "restart"))
        moved = sum(1 for e in points if e["onchain"] != e["reference"])
        charts.append({"market": market, "svg": draw_chart(chart), "liquidations": sum(chart.bars),
                       "off_blocks": moved, "blocks": len(points)})
    return charts


def draw_reopening_charts(report: dict, events: list[dict]) -> list[dict]:
    """Per market, over the restarted fork: the perps mark against its index, the phases
    (cancel-only, post-only, open) shaded; the market whose mark strayed furthest comes first."""
    reopening = report.get("reopening")
    new_fork = (report.get("restore") or {}).get("new_fork_id")
    if not reopening or new_fork is None:
        return []
    charts = []
    liquidations = _liquidations(events)
    for market, all_points in _chain_prices(report, events).items():
        points = [e for e in all_points if e["fork"] == new_fork and "mark" in e]
        if not points:
            continue
        chart = Chart(title=f"{market} after the restart", labels=[_point_label(e) for e in points],
                      bars=[liquidations.get((e["fork"], e["height"], market), 0) for e in points],
                      lines=[("index (the oracle on chain)", "onchain-line", [e["onchain"] for e in points]),
                             ("mark (index plus the book's premium)", "mark-line", [e["mark"] for e in points])],
                      **_axis(points))
        for phase in reopening["phases"]:
            inside = [i for i, e in enumerate(points) if e["height"] >= phase["start_height"]
                      and (phase["end_height"] is None or e["height"] < phase["end_height"])]
            if inside:
                chart.spans.append((inside[0], inside[-1], phase["mode"], phase["mode"]))
        worst = max(points, key=lambda e: abs(e["mark"] - e["onchain"]) / max(e["onchain"], 1))
        gap_bps = round((worst["mark"] - worst["onchain"]) * 10_000 / max(worst["onchain"], 1))
        charts.append({"market": market, "svg": draw_chart(chart), "gap_bps": gap_bps, "gap_height": worst["height"],
                       "gap_mode": _phase_at(reopening, worst["height"])})
    return sorted(charts, key=lambda c: (-abs(c["gap_bps"]), c["market"]))


def _phase_at(reopening: dict | None, height: int) -> str | None:
    for phase in (reopening or {}).get("phases", ()):
        if height >= phase["start_height"] and (phase["end_height"] is None or height < phase["end_height"]):
            return phase["mode"]
    return None


def funding_rows(report: dict, events: list[dict]) -> list[dict]:
    """Per market, the funding index before the glitch, at the halt, at the restart and at the end."""
    first_bad, halt = report["incident"]["first_bad_height"], report["incident"]["halt_height"]
    rows = []
    for market, points in sorted(_chain_prices(report, events).items()):
        if not points or "funding_index" not in points[0]:
            continue
        fork0 = [e for e in points if e["fork"] == 0]
        after = [e for e in points if e["fork"] != 0]

        def at(candidates: list[dict]) -> str:
            return _format_index(candidates[-1]["funding_index"]) if candidates else "-"

        rows.append({"market": market,
                     "before": at([e for e in fork0 if first_bad is None or e["height"] < first_bad]),
                     "halt": at([e for e in fork0 if halt is not None and e["height"] == halt]),
                     "restart": at(after[:1]), "end": at(points)})
    return rows


def _format_index(value: int) -> str:
    return f"{value / 10**18:,.4f}"


# ---------------------------------------------------------------- tables


LATE_PRECOMMIT = "precommitted the plan too, but the certificate holds only the first quorum of precommits"


def _precommitted(events: list[dict], plan_hash: str | None) -> bool:
    return any(e["kind"] == "vote" and e["step"] == "precommit" and e["value"] == plan_hash for e in events)


def explain_signers(report: dict, events: list[dict]) -> list[dict]:
    """A row per validator: did it sign the rollback certificate, and if not, why not."""
    restore = report.get("restore")
    count = report["validators"]["count"]
    byzantine = {b["index"]: b["behaviour"] for b in report["validators"]["byzantine"]}
    signers = set(restore["certificate"]["signers"]) if restore else set()
    plan_hash = restore["certificate"]["plan_hash"] if restore else None
    plan_fork = restore["certificate"]["fork_id"] if restore else None
    rows = []
    for v in range(count):
        mine = [e for e in events if e["fork"] == plan_fork and e.get("validator") == v]
        if v in signers:
            why = "signed the plan" + (f" (it is Byzantine: {byzantine[v]})" if v in byzantine else "")
        elif v in byzantine:
            why = f"Byzantine ({byzantine[v]})"
            rejected = [e for e in events if e["kind"] == "plan" and e["proposer"] == v and not e["accepted"]]
            if rejected:
                why += f": its plan was rejected ({rejected[0]['reason']})"
            elif _precommitted(mine, plan_hash):
                why += f": it {LATE_PRECOMMIT}"
        elif _precommitted(mine, plan_hash):
            why = LATE_PRECOMMIT
        elif any(e["kind"] == "crash" for e in mine) or not mine:
            why = "down or cut off while the plan was voted (it got the certificate by state sync)"
        else:
            nil = [e for e in mine if e["kind"] == "vote" and e["value"] is None]
            why = f"voted nil: {NIL_REASONS.get(nil[0]['reason'], nil[0]['reason'])}" if nil else "sent no precommit"
        rows.append({"validator": v, "signed": v in signers, "why": why,
                     "root": (restore or {}).get("restored_roots", {}).get(str(v))})
    return rows


def _check_rank(name: str) -> int:
    """Checks in the order `explain.CHECKS` tells them (a saved report.json has its keys sorted)."""
    order = list(CHECKS)
    return order.index(name) if name in order else len(order)


def build_context(report: dict, events: list[dict]) -> dict:
    """Everything the template shows, as plain data and pre-drawn SVG."""
    diagrams = build_diagrams(report, events)
    index = {d["id"]: i for i, d in enumerate(diagrams)}
    incident = report["incident"]
    restore = report.get("restore")
    jumps = []
    for label, key in (("first bad block", f"h-0-{incident['first_bad_height']}"),
                       ("halt", f"h-0-{incident['halt_height']}")):
        if key in index:
            jumps.append({"label": label, "index": index[key], "id": "jump-" + label.split()[0]})
    if restore:
        plan_key = f"h-{restore['certificate']['fork_id']}-{restore['certificate']['height']}"
        restart = [d for d in diagrams if d["fork"] == restore["new_fork_id"]]
        if plan_key in index:
            jumps.append({"label": "plan vote", "index": index[plan_key], "id": "jump-plan"})
        if restart:
            jumps.append({"label": "restart", "index": index[restart[0]["id"]], "id": "jump-restart"})
    faults = [e for e in events if e["kind"] in ("partition_start", "partition_end", "crash", "recover")]
    checks = [{"name": name, "ok": c["ok"], "status": c.get("status", "held" if c["ok"] else "failed"),
               "detail": c["detail"], "explanation": CHECKS.get(name, "")} for name, c in sorted(
                  report["checks"].items(), key=lambda item: (_check_rank(item[0]), item[0]))]
    return {
        "report": report,
        "summary": build_summary(report, events),
        "diagrams": diagrams,
        "jumps": jumps,
        "halt_index": index.get(f"h-0-{incident['halt_height']}", -1),
        "roots_svg": draw_roots(report, events),
        "market_charts": draw_market_charts(report, events),
        "reopening_charts": draw_reopening_charts(report, events),
        "funding": funding_rows(report, events),
        "halt": build_halt(report, events),
        "vote": build_vote(report, events),
        "restored": build_restore(report, events),
        "compensation": build_compensation(report, events),
        "phase_rows": [dict(p, heights=_heights(p["start_height"], p["end_height"]))
                       for p in (report.get("reopening") or {}).get("phases", ())],
        "signers": explain_signers(report, events),
        "faults": [{"t_s": e["t_s"], "text": caption_for(e)} for e in faults],
        "story": [{"t_s": e["t_s"], "height": e["height"], "text": caption_for(e)} for e in events
                  if e["kind"] in ("alarm", "halt", "view", "plan", "certificate", "restore", "restart")],
        "checks": checks,
        "reconciliation_rows": [dict(e, usd=format_usd(e["amount"])) for e in report["reconciliation"]["irreversible"]],
        "usd": format_usd,
        "duration": format_duration,
        "short": shorten,
        "terms": sorted(TERMS.items()),
        "legend_svg": draw_legend(),
        "diagram_meta": json.dumps([{"id": d["id"], "rounds": d["rounds"]} for d in diagrams],
                                   separators=(",", ":")),
    }


def find_reproduce(report: dict, reproduce: str | None = None) -> str | None:
    """The `l2sim run` command that replays the run, as printed on the page: the one given
    (what `l2sim run` was called with), the failing report's own, or for a bundled scenario
    the one its name implies (`small-NAME` is `NAME --small`). None when no command is known:
    the page then names no command rather than one that would not run."""
    if reproduce or report.get("reproduce"):
        return reproduce or report["reproduce"]
    from scenarios.api import format_reproduce
    from scenarios.loader import SMALL_NAME_PREFIX, get_bundled_names

    name, bundled = report["scenario"], get_bundled_names()
    if name in bundled:
        return format_reproduce(name, report["seed"], small=False, set_options=())
    if name.startswith(SMALL_NAME_PREFIX) and name[len(SMALL_NAME_PREFIX):] in bundled:
        return format_reproduce(name[len(SMALL_NAME_PREFIX):], report["seed"], small=True, set_options=())
    return None


def render_html(report: dict, events: list[dict], *, reproduce: str | None = None) -> str:
    """The whole page as one string (the same inputs give the same bytes); `reproduce` is the
    command that replays the run (see `find_reproduce`)."""
    env = Environment(loader=PackageLoader("scenarios", "templates"), autoescape=True,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.html.j2").render(**build_context(report, events),
                                                       reproduce=find_reproduce(report, reproduce))


def write_html(report: dict, events: list[dict], path: str | Path, *, reproduce: str | None = None) -> int:
    """Write the page to `path`; returns its size in bytes."""
    text = render_html(report, events, reproduce=reproduce)
    write_text_atomic(path, text)
    return len(text.encode("utf-8"))


# ---------------------------------------------------------------- files of a run

EVENTS_FILE = "events.jsonl"


def save_run_files(report: dict, events: list[dict], *, events_path: str | None, html_path: str | None,
                   data_dir: str | None, reproduce: str | None = None) -> None:
    """Write the event log and the page where asked; a saved run keeps its log in the data dir."""
    if events_path is not None:
        write_events(events, events_path)
    if data_dir is not None:
        write_events(events, Path(data_dir) / EVENTS_FILE)
    if html_path is not None:
        write_html(report, events, html_path, reproduce=reproduce)


def read_saved_reproduce(data_dir: str) -> str | None:
    """The command that replays the run saved in `data_dir`, as its manifest records it."""
    from scenarios.inspect import read_manifest

    return read_manifest(data_dir).get("reproduce")


def load_saved_run(data_dir: str) -> tuple[dict, list[dict]]:
    """(report, events) of a run saved with `l2sim run --data-dir DIR`."""
    from scenarios.inspect import read_saved_report

    return read_saved_report(data_dir), read_events(Path(data_dir) / EVENTS_FILE)


# ---------------------------------------------------------------- the incident, section by section


def format_duration(seconds: float) -> str:
    """Seconds as hours and minutes (or seconds, when under a minute)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "") if hours else f"{minutes} min"


def _names(validators) -> str:
    """'2, 3 and 5' (a list of validator indices in words)."""
    items = [str(v) for v in validators]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _byzantine(report: dict) -> dict[int, str]:
    return {b["index"]: b["behaviour"] for b in report["validators"]["byzantine"]}


def _heights(start: int, end: int | None) -> str:
    if end is None:
        return f"from height {start} on"
    return f"height {start}" if end - 1 == start else f"heights {start}–{end - 1}"


def describe_payment(report: dict, events: list[dict]) -> str | None:
    """When the vault paid compensation, as the events say: the block and, after a restart,
    the reopening phase it was in. None when nothing was paid."""
    paid = sorted({(e["fork"], e["height"]) for e in events if e["kind"] == "compensation"})
    if not paid:
        return None
    reopening = report.get("reopening")
    parts = []
    for fork, height in paid:
        where = f"block {height} of fork {fork}"
        phase = _phase_at(reopening, height) if fork != 0 else None
        if phase == "open" and any(p["mode"] == "open" and p["start_height"] == height
                                   for p in reopening["phases"]):
            where += ", the first block of open trading (after the audit of the restricted phases)"
        elif phase is not None:
            where += f", in the {phase} phase"
        parts.append(where)
    return "; ".join(parts)


def describe_plan(restore: dict) -> str:
    """What the certified plan does, in the words of its mode."""
    target, mode = restore["target_height"], restore["mode"]
    if mode == "selective-restore":
        return (f"{mode}: rewrite the {len(restore.get('surgery_accounts', ()))} accounts the bad price touched to "
                f"their state at height {target}, keeping every other transaction")
    if mode == "rollback-replay":
        return (f"{mode}: roll back to height {target}, then replay {len(restore.get('replayed_transactions', ()))} "
                "transactions of the bad window that did not depend on the bad price")
    return f"{mode}: roll the chain back to height {target}"


def build_summary(report: dict, events: list[dict]) -> list[str]:
    """'What happened' in a few sentences, in order, from the report and the events."""
    incident, restore = report["incident"], report.get("restore")
    count, byzantine = report["validators"]["count"], _byzantine(report)
    lines = []
    first_bad, halt = incident["first_bad_height"], incident["halt_height"]
    who = f"{count} validators" + (f" ({len(byzantine)} of them Byzantine: "
                                   + ", ".join(f"{v} {b}" for v, b in sorted(byzantine.items())) + ")"
                                   if byzantine else " (all honest)")
    if first_bad is not None:
        lines.append(f"{who} ran the chain normally up to height {first_bad - 1}.")
        prices = _chain_prices(report, events).get(incident.get("market"), [])
        bad = next((e for e in prices if e["fork"] == 0 and e["height"] == first_bad), None)
        what = []
        if bad is not None and bad["onchain"] != bad["reference"]:
            what.append(f"posted {incident['market']} at {format_usd(bad['onchain'])} while the true price was "
                        f"{format_usd(bad['reference'])}")
        if incident.get("funding_markets"):
            what.append(f"reset the funding index of {', '.join(incident['funding_markets'])}")
        lines.append(f"At height {first_bad} a glitch " + (" and ".join(what) or "corrupted market data")
                     + f". Keepers liquidated {incident['liquidations']} "
                     f"position{'s' if incident['liquidations'] != 1 else ''} of "
                     f"{len(incident['liquidated_accounts'])} accounts before the halt (the cascade).")
    else:
        lines.append(f"{who} ran the chain; no market glitch reached it.")
    for t in report.get("timeline", ()):
        if t["event"] == "agreement broken":
            lines.append(f"At height {t['height']} agreement broke: {t['detail']} (only Byzantine power of a "
                         "third or more can do this).")
    if halt is not None:
        pause = next((t["time_s"] for t in report["timeline"] if t["event"] == "pause ends"), None)
        halted = next((t["time_s"] for t in report["timeline"] if t["event"] == "halt"), None)
        pause_text = f" and paused for {format_duration(pause - halted)}" if pause and halted else ""
        lines.append(f"At height {halt} the validators' alarms made them halt: nothing was committed past it"
                     f"{pause_text}.")
        views = [e for e in events if e["kind"] == "view"]
        claims = defaultdict(list)
        for e in views:
            claims[e["first_bad_height"]].append(e["validator"])
        if views:
            lines.append("Each validator signed its view of the incident and sent it to the others: "
                         + "; ".join(f"validator{'s' if len(vs) > 1 else ''} {_names(sorted(vs))} said the first bad "
                                     f"height is {h}" for h, vs in sorted(claims.items())) + ".")
    if restore:
        plans = [e for e in events if e["kind"] == "plan"]
        rejected = [e for e in plans if not e["accepted"]]
        for e in rejected:
            target = f" to height {e['target_height']}" if e.get("target_height") is not None else ""
            lines.append(f"Validator {e['proposer']} proposed a plan{target}; honest validators rejected it: "
                         f"{e['reason']}.")
        byz = _byzantine(report)
        for e in plans:
            if e["accepted"] and e["proposer"] in byz:
                lines.append(f"Validator {e['proposer']} (Byzantine, {byz[e['proposer']]}) proposed the plan; its "
                             f"target, height {e['target_height']}, lies below the first bad height the honest "
                             "validators found on their own chains, so they signed it: only a sound target is "
                             "certified.")
        cert = restore["certificate"]
        lines.append(f"Validators {_names(cert['signers'])} signed the plan ({describe_plan(restore)}) with power "
                     f"{cert['power']} of {report['validators']['total_power']}: the rollback certificate.")
        ok = sum(1 for e in events if e["kind"] == "restore" and e["ok"])
        lines.append(f"{ok} validators restored it and each checked its state root against the certificate's "
                     f"expected root ({shorten(restore['expected_state_root'], 8)}).")
        returned = restore.get("returned")
        if returned and returned["accounts"]:
            lines.append(f"The restore gave back {format_usd(returned['total'])} to {returned['accounts']} accounts "
                         "liquidated by the glitch.")
    reopening = report.get("reopening")
    if report.get("restart"):
        phases = ", then ".join(f"{p['mode']} ({_heights(p['start_height'], p['end_height'])})"
                                for p in (reopening or {}).get("phases", ()))
        lines.append(f"The chain restarted as fork {report['restart']['fork_id']} at height "
                     f"{report['restart']['start_height']}" + (f": {phases}" if phases else "") + "."
                     + (f" {reopening['liquidations']} liquidation{'s' if reopening['liquidations'] != 1 else ''} "
                        f"of {len(reopening['liquidated_accounts'])} accounts followed during the reopening."
                        if reopening and reopening["liquidations"] else ""))
    comp = report["compensation"]
    if comp["accounts"]:
        reasons = sorted({e["reason"] for e in comp["entries"]})
        lines.append(f"The liquidator vault paid {format_usd(comp['total'])} to {comp['accounts']} accounts "
                     f"({', '.join(reasons)}) in {describe_payment(report, events)}.")
    elif restore is None:
        lines.append("No rollback certificate was formed: the chain never restarted and nobody was compensated.")
    culprits = report["forensics"]["culprits"]
    if culprits:
        how = sorted({"a halt view it signed against the certified chain"
                      if e.get("kind") == "view-contradicts-certified-header" else "two messages it signed for one step"
                      for e in report["forensics"]["evidence"]})
        lines.append(f"Forensics convicted validator{'s' if len(culprits) > 1 else ''} {_names(culprits)}, each by "
                     f"{' or '.join(how) or 'what it signed'} (see the evidence).")
    failed = [name for name, c in report["checks"].items() if not c["ok"]]
    lines.append(f"Every one of the {len(report['checks'])} checks held." if not failed
                 else f"Checks that did not hold: {', '.join(failed)}.")
    return lines


def build_halt(report: dict, events: list[dict]) -> dict:
    """The halt: who halted when and why, and the signed halt views (drawn as messages)."""
    byzantine = _byzantine(report)
    halts = [{"validator": e["validator"], "t_s": e["t_s"], "reason": e["reason"]}
             for e in events if e["kind"] == "halt"]
    views = [dict(e, behaviour=byzantine.get(e["validator"])) for e in events if e["kind"] == "view"]
    gossip = [e for e in events if e.get("type") == "HaltView"]
    svg = None
    if gossip:
        svg, _, _ = draw_lamport(gossip + [dict(e, kind="view") for e in views], report["validators"]["count"],
                                 is_halt=False, byzantine=byzantine)
    honest = {e["first_bad_height"] for e in views if e["behaviour"] is None}
    return {"halts": halts, "views": views, "svg": svg, "honest_first_bad": sorted(honest)}


def build_vote(report: dict, events: list[dict]) -> dict:
    """The vote on the plan: every plan proposed (accepted or rejected, and why), and the
    evidence that convicts, naming what was signed against what."""
    plans = [e for e in events if e["kind"] == "plan"]
    rejected = list((report.get("restore") or {}).get("rejected_plans", ()))
    cards = []
    for ev in report["forensics"]["evidence"]:
        kind = ev.get("kind") or "equivocation"
        if kind == "view-contradicts-certified-header":
            cards.append({"validator": ev["validator"], "kind": kind,
                          "title": f"validator {ev['validator']} signed a halt view that contradicts the certified "
                                   f"chain at height {ev['height']}",
                          "rows": [("it signed (its halt view)", f"state root {ev['claimed_root']} at height "
                                    f"{ev['height']}"),
                                   ("against (the certified chain)", f"state root {ev['certified_root']} at "
                                    f"height {ev['height']}, " + ("the genesis every validator holds"
                                                                  if ev["height"] == 0 else
                                                                  "in the header 2/3+ of the power signed")),
                                   ("view digest", ev["view_digest"]), ("its signature", ev["view_signature"])]})
        else:
            messages = ev.get("messages", ())
            rows = [(f"message {i + 1}: {m['type']} fork {m['fork_id']} height {m['height']} round {m['round']}",
                     f"block {m['block_hash'] or 'nil'} · signature {shorten(m['signature'], 16)}")
                    for i, m in enumerate(messages)]
            cards.append({"validator": ev["validator"], "kind": kind,
                          "title": f"validator {ev['validator']}: {kind}, two messages it signed for one step",
                          "rows": rows})
    return {"plans": plans, "rejected": rejected, "evidence": cards}


def build_restore(report: dict, events: list[dict]) -> dict:
    """Each validator's restore and whether its root matched, and what the rollback gave back."""
    restore = report.get("restore") or {}
    expected = restore.get("expected_state_root")
    rows = [{"validator": e["validator"], "ok": e["ok"], "root": e["state_root"], "error": e.get("error"),
             "matches": e["state_root"] == expected}
            for e in sorted((e for e in events if e["kind"] == "restore"), key=lambda e: e["validator"])]
    returned = restore.get("returned") or {"accounts": 0, "total": 0, "entries": []}
    entries = sorted(returned["entries"], key=lambda e: (-e["amount"], e["account"]))
    return {"rows": rows, "returned": returned,
            "returned_rows": [dict(e, usd=format_usd(e["amount"]), restored=format_usd(e["restored_equity"]),
                                   halted=format_usd(e["halted_equity"])) for e in entries]}


POLICY_WORDS = ("restore-returned", "reopening-harm", "halt-drift")


def build_compensation(report: dict, events: list[dict]) -> dict:
    """Compensation: each policy the page names, explained; when it was paid; every entry."""
    entries = report["compensation"]["entries"]
    used = {e["reason"] for e in entries}
    policies = [{"name": name, "text": TERMS[name], "used": name in used or name == "restore-returned"}
                for name in POLICY_WORDS if name in TERMS]
    return {"policies": policies, "paid": describe_payment(report, events),
            "rows": [dict(e, usd=format_usd(e["amount"]), why=_wei_in_dollars(e.get("detail") or ""))
                     for e in entries]}


def _wei_in_dollars(text: str) -> str:
    """`text` with every amount in wei (a long integer) written in dollars."""
    return re.sub(r"(?<![\w.])-?\d{16,}(?![\w.])", lambda m: format_usd(int(m.group())), text)
