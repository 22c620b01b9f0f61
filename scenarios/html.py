"""The offline HTML report of a run: one self-contained page for a class.

Inputs are plain data: the JSON report (`scenarios.report.build_report`) and the event
log (`scenarios.events`). The SVG is drawn here, in Python, with integer coordinates and
a fixed order, so the same run gives the same bytes; a small inline script only shows and
hides what is already on the page (stepping through heights and rounds). Nothing is
fetched from the network: no scripts, styles or fonts from elsewhere.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from consensus.emergency import PLAN_FORK_BASE
from scenarios.events import EventLogError, read_events, write_events
from scenarios.output import write_text_atomic
from scenarios.explain import CHECKS, TERMS
from scenarios.narrate import NIL_REASONS, caption_for, format_usd, shorten

COMPENSATION_ROWS = 40  # the rest are summed in one line: the page must stay light enough to mail
MAX_ARROWS = 240  # per diagram; a height with more (a partition, many rounds) says how many it left out
LANE_X0, LANE_DX, DIAGRAM_TOP, DIAGRAM_H = 90, 150, 40, 440
MESSAGE_COLOURS = {"proposal": "#1f6feb", "prevote": "#2da44e", "precommit": "#8250df",
                   "commit": "#bf8700", "commit_request": "#9a6700"}


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


def draw_lamport(events: list[dict], count: int, *, is_halt: bool,
                 faults: list[tuple[float, float, int | None, str]] = ()) -> tuple[Markup, list[int], int]:
    """One height's diagram: a lane per validator, time flowing down, an arrow per message,
    fault windows shaded. Returns (svg, rounds present, messages left out)."""
    messages, _ = _messages(events)
    times = [e["t_s"] for e in events]
    t0, t1 = min(times), max(times)
    span = max(t1 - t0, 1e-3)
    width = _lane_x(count - 1) + LANE_X0

    def y(t: float) -> int:
        return DIAGRAM_TOP + round((t - t0) / span * DIAGRAM_H)

    parts = [f'<svg class="lamport" viewBox="0 0 {width} {DIAGRAM_TOP + DIAGRAM_H + 40}" '
             f'width="{width}" height="{DIAGRAM_TOP + DIAGRAM_H + 40}" role="img">']
    for start, end, validator, label in faults:
        if start <= t1 and end >= t0:
            top, bottom = y(max(start, t0)), y(min(end, t1))
            if validator is None:
                parts.append(f'<rect class="fault" x="0" y="{top}" width="{width}" height="{max(bottom - top, 2)}"/>'
                             f'<text class="fault-label" x="{width - 6}" y="{top + 13}">{escape(label)}</text>')
            else:
                x = _lane_x(validator)
                parts.append(f'<rect class="fault down" x="{x - 26}" y="{top}" width="52" '
                             f'height="{max(bottom - top, 2)}"/><text class="fault-label" x="{x + 24}" '
                             f'y="{top + 13}">{escape(label)}</text>')
    rounds = sorted({e["round"] for e in events if e.get("round") is not None})
    starts: dict[int, float] = {}
    for event in events:
        if event.get("round") is not None and event["round"] not in starts:
            starts[event["round"]] = event["t_s"]
    for r in rounds:
        if r > 0:
            ry = y(starts[r]) - 4
            parts.append(f'<g data-r="{r}"><line class="round" x1="10" x2="{width - 10}" y1="{ry}" y2="{ry}"/>'
                         f'<text class="round-label" x="12" y="{ry - 3}">round {r}</text></g>')
    for v in range(count):
        x = _lane_x(v)
        parts.append(f'<line class="lane" x1="{x}" x2="{x}" y1="{DIAGRAM_TOP - 8}" y2="{DIAGRAM_TOP + DIAGRAM_H + 8}"/>'
                     f'<text class="lane-label" x="{x}" y="18">validator {v}</text>')
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
        title = f"{kind} round {r}: {sender} → {receiver}"
        if m["arrived"] is not None:
            y2 = y(m["arrived"])
            parts.append(f'<line data-r="{r}" class="msg" stroke="{colour}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                         f'marker-end="url(#arrow)"><title>{escape(title)}</title></line>')
        else:
            x2m = (x1 + x2) // 2
            if m["dropped"] is None:  # the phase ended (its goal was met) before this one arrived
                parts.append(f'<line data-r="{r}" class="msg inflight" stroke="{colour}" x1="{x1}" y1="{y1}" '
                             f'x2="{x2m}" y2="{y1 + 12}"><title>{escape(title)}: still in flight when the phase '
                             f'ended</title></line>')
            else:
                parts.append(f'<g data-r="{r}" class="dropped"><line class="msg lost" stroke="{colour}" x1="{x1}" '
                             f'y1="{y1}" x2="{x2m}" y2="{y1 + 12}"><title>{escape(title)}: lost ({m["dropped"]})'
                             f'</title></line><text class="x" x="{x2m - 4}" y="{y1 + 16}">✕</text></g>')
    for event in events:
        kind = event["kind"]
        if kind in ("send", "deliver", "drop"):
            continue
        x, ty = _lane_x(event["validator"]), y(event["t_s"])
        r = event.get("round")
        attr = f' data-r="{r}"' if r is not None else ""
        title = escape(caption_for(event))
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
        parts.append(f'<rect class="halt-band" x="0" y="{DIAGRAM_TOP + DIAGRAM_H + 14}" width="{width}" height="22"/>'
                     f'<text class="halt-text" x="{width // 2}" y="{DIAGRAM_TOP + DIAGRAM_H + 30}">'
                     f'HALT: nothing is committed past this height</text>')
    parts.append("</svg>")
    return Markup("".join(parts)), rounds, left_out


ICON_OFFSETS = {"lock": 22, "decide": 0, "timeout": -28, "alarm": 10, "halt": 10}


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
    else:
        assert kind == "halt", kind
        shape = '<path d="M-3 -8 H3 L8 -3 V3 L3 8 H-3 L-8 3 V-3 Z"/><path class="mark" d="M-4 0 h8"/>'
    return f'<g{attr} class="icon {kind}" transform="translate({x},{y})">{shape}{inner}</g>'


def draw_legend() -> Markup:
    """The diagram's key: message colours and the icons."""
    items = [f'<line x1="0" x2="22" y1="0" y2="0" stroke="{c}" stroke-width="3"/>'
             f'<text x="28" y="4">{k.replace("_", " ")}</text>' for k, c in MESSAGE_COLOURS.items()]
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
        split = "; ".join(f"validators {sorted({e['validator'] for e in decides if e['value'] == v})} decided "
                          f"{shorten(v, 8)}" for v in values)
        lines.append(f"Agreement broken: {split}.")
    elif decides:
        rounds = sorted({e["round"] for e in decides})
        lines.append(f"Decided in round {rounds[0]} by validators {sorted({e['validator'] for e in decides})}.")
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
        svg, rounds, left_out = draw_lamport(group, count, is_halt=is_halt, faults=windows)
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
    cell = max(6, min(18, 1000 // max(top, 1)))
    width = 90 + (top + 1) * cell + 40
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
        parts.append(f'<path class="rollback" d="M{hx} 50 C{hx} 80 {x} 60 {x} 96" marker-end="url(#arrow)"/>'
                     f'<text class="note" x="{x + 6}" y="72">rollback to height {target} '
                     f'(root {escape(shorten(restore["snapshot_state_root"], 8))})</text>')
    for h in sorted({1, top, *(v for v in (target, restore.get("halt_height")) if v)}):
        parts.append(f'<text class="tick" x="{90 + h * cell}" y="145">{h}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: list[tuple[int, int]], cls: str) -> str:
    return f'<polyline class="{cls}" points="{" ".join(f"{x},{y}" for x, y in points)}"/>'


def draw_prices(report: dict, events: list[dict]) -> Markup:
    """The incident market's on-chain and reference price per committed block, liquidations
    below, with the glitch, the halt and the restart marked."""
    market = report["incident"]["market"]
    new_fork = (report.get("restore") or {}).get("new_fork_id")
    prices = [e for e in events if e["kind"] == "price" and e["market"] == market
              and (e["fork"] == 0 or e["fork"] == new_fork)]
    if not prices:
        return Markup("")
    liquidations: dict[tuple[int, int], int] = defaultdict(int)
    for e in events:
        if e["kind"] == "liquidation":
            liquidations[(e["fork"], e["height"])] += 1
    step = max(3, min(10, 1000 // len(prices)))
    x0, width, top, plot_h, bars_h = 70, 70 + len(prices) * step + 30, 20, 220, 70
    high = max(max(e["onchain"], e["reference"]) for e in prices) * 1.05 or 1
    most = max(liquidations.values(), default=1)

    def y(price: int) -> int:
        return top + plot_h - round(price / high * plot_h)

    parts = [f'<svg class="prices" viewBox="0 0 {width} {top + plot_h + bars_h + 40}" width="{width}" '
             f'height="{top + plot_h + bars_h + 40}" role="img">']
    onchain, reference = [], []
    bars: list[str] = []  # drawn over the glitch shading
    glitch_x = []
    halt_x = restart_x = None
    first_bad, halt = report["incident"]["first_bad_height"], report["incident"]["halt_height"]
    for i, e in enumerate(prices):
        x = x0 + i * step
        onchain.append((x, y(e["onchain"])))
        reference.append((x, y(e["reference"])))
        if e["fork"] == 0 and first_bad is not None and e["height"] >= first_bad:
            glitch_x.append(x)
        if e["fork"] == 0 and e["height"] == halt:
            halt_x = x
        if e["fork"] == new_fork and restart_x is None:
            restart_x = x
        n = liquidations.get((e["fork"], e["height"]), 0)
        if n:
            bh = max(1, round(n / most * bars_h))
            base = top + plot_h + bars_h + 10
            bars.append(f'<rect class="liq" x="{x - step // 2}" y="{base - bh}" width="{max(step - 1, 1)}" '
                         f'height="{bh}"><title>height {e["height"]}: {n} liquidations</title></rect>')
    if glitch_x:
        parts.append(f'<rect class="glitch" x="{glitch_x[0] - step // 2}" y="{top}" '
                     f'width="{glitch_x[-1] - glitch_x[0] + step}" height="{plot_h + bars_h + 10}"/>'
                     f'<text class="note" x="{glitch_x[0]}" y="{top + 14}">glitch</text>')
    parts.extend(bars)
    for x, label, dy in ((halt_x, "halt, then a pause", 30), (restart_x, "restart", 46)):
        if x is not None:
            parts.append(f'<line class="marker" x1="{x + step // 2}" x2="{x + step // 2}" y1="{top}" '
                         f'y2="{top + plot_h + bars_h + 10}"/><text class="note" x="{x + step // 2 + 3}" '
                         f'y="{top + dy}">{label}</text>')
    parts.append(_polyline(reference, "ref-line") + _polyline(onchain, "onchain-line"))
    for frac in (0, 0.5, 1):
        value = round(high / 1.05 * frac)
        parts.append(f'<text class="tick" x="4" y="{y(value) + 4}">{escape(format_usd(value)[:-3])}</text>')
    parts.append(f'<text class="tick" x="4" y="{top + plot_h + bars_h + 10}">liquidations</text>')
    parts.append(f'<text class="tick" x="{x0}" y="{top + plot_h + bars_h + 30}">each step is one committed block, '
                 f'fork 0 then the restarted fork; the 6-hour halt takes no width</text></svg>')
    return Markup("".join(parts))


# ---------------------------------------------------------------- tables


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
        elif any(e["kind"] == "vote" and e["step"] == "precommit" and e["value"] == plan_hash for e in mine):
            why = "precommitted the plan too, but the certificate holds only the first quorum of precommits"
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
    compensation = report["compensation"]["entries"]
    return {
        "report": report,
        "diagrams": diagrams,
        "jumps": jumps,
        "halt_index": index.get(f"h-0-{incident['halt_height']}", -1),
        "roots_svg": draw_roots(report, events),
        "prices_svg": draw_prices(report, events),
        "signers": explain_signers(report, events),
        "faults": [{"t_s": e["t_s"], "text": caption_for(e)} for e in faults],
        "story": [{"t_s": e["t_s"], "height": e["height"], "text": caption_for(e)} for e in events
                  if e["kind"] in ("alarm", "halt", "view", "plan", "certificate", "restore", "restart")],
        "checks": checks,
        "compensation_rows": [dict(e, usd=format_usd(e["amount"])) for e in compensation[:COMPENSATION_ROWS]],
        "compensation_rest": (len(compensation[COMPENSATION_ROWS:]),
                              format_usd(sum(e["amount"] for e in compensation[COMPENSATION_ROWS:]))),
        "reconciliation_rows": [dict(e, usd=format_usd(e["amount"])) for e in report["reconciliation"]["irreversible"]],
        "usd": format_usd,
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
REPORT_FILE = "report.json"


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
    report_path = Path(data_dir) / REPORT_FILE
    if not report_path.is_file():
        raise EventLogError(str(report_path), None, "no saved report here (run `l2sim run ... --data-dir DIR`)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise EventLogError(str(report_path), error.lineno, f"not JSON: {error.msg}") from None
    return report, read_events(Path(data_dir) / EVENTS_FILE)
