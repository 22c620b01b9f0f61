"""The charts of the offline page: line charts over committed blocks, drawn as SVG in Python.

Every chart is at least `MIN_WIDTH` wide whatever the number of blocks (a small run has a
few dozen), and every label is placed inside the picture: a label that would run past the
right edge is anchored at its end instead, and labels of nearby markers take separate
rows. Text width is estimated (`TEXT_PX` per character at 12 px), generously, so a label is
never clipped by the SVG's edge; the browser test measures the real boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape

MIN_WIDTH = 720
MAX_STEP = 60
MAX_DOTS = 60  # a chart of more blocks shows its lines only (the page must stay light enough to mail)
TEXT_PX = 7.2  # a generous width of one character of 12 px system-ui
X0, TOP, PLOT_H = 78, 14, 190


@dataclass
class Chart:
    """One chart: a point per committed block (`labels[i]` names it), lines over them,
    shaded spans, markers and bars below."""

    title: str
    labels: list[str]
    lines: list[tuple[str, str, list[int | None]]] = field(default_factory=list)  # (name, css class, values)
    spans: list[tuple[int, int, str, str]] = field(default_factory=list)  # (first, last index, class, label)
    markers: list[tuple[int, str]] = field(default_factory=list)  # (index, label)
    bars: list[int] = field(default_factory=list)  # one a point (liquidations), empty for none
    bar_label: str = "liquidations"
    ticks: list[str] = field(default_factory=list)  # a short name per point under the axis (its height)
    groups: list[tuple[int, int, str]] = field(default_factory=list)  # (first, last index, label): the forks
    value_format: str = "usd"  # "usd" (1e18 per dollar) or "plain"


def fit_text(x: float, text: str, width: int, *, anchor: str = "start") -> tuple[int, str]:
    """(x, anchor) that keeps `text` inside 0..width."""
    length = len(text) * TEXT_PX
    if anchor == "start" and x + length > width - 4:
        return (max(round(x), round(length) + 4), "end") if x - length >= 4 else (4, "start")
    return round(x), anchor


def _format(value: int, style: str) -> str:
    if style == "usd":
        dollars = value / 10**18
        sign = "-" if dollars < 0 else ""
        return f"{sign}${abs(dollars):,.0f}" if abs(dollars) >= 100 else f"{sign}${abs(dollars):,.2f}"
    return f"{value / 10**18:,.2f}"


def _label_rows(items: list[tuple[float, str]], width: int) -> list[tuple[int, str, str, int]]:
    """Each label's (x, anchor, text, row): a label takes the first row where it does not
    overlap one already placed."""
    rows: list[list[tuple[float, float]]] = []
    placed = []
    for x, text in items:
        tx, anchor = fit_text(x + 3, text, width)
        left = tx - len(text) * TEXT_PX if anchor == "end" else tx
        right = left + len(text) * TEXT_PX
        row = next((i for i, taken in enumerate(rows) if all(right < a or left > b for a, b in taken)), len(rows))
        if row == len(rows):
            rows.append([])
        rows[row].append((left - 6, right + 6))
        placed.append((tx, anchor, text, row))
    return placed


def draw_chart(chart: Chart) -> Markup:
    """The chart as one SVG element."""
    n = max(len(chart.labels), 1)
    step = max(4, min(MAX_STEP, (MIN_WIDTH - X0 - 40) // n))
    width = max(MIN_WIDTH, X0 + n * step + 40)

    def x(i: int) -> float:
        return X0 + i * step + step / 2

    labels = _label_rows([(x(i), text) for i, text in chart.markers]
                         + [(x(first) - step / 2, text) for first, _, _, text in chart.spans if text], width)
    label_h = 16 * max((row for *_, row in labels), default=-1) + 16 if labels else 0
    top = TOP + label_h
    values = [v for _, _, vs in chart.lines for v in vs if v is not None]
    low, high = (min(values), max(values)) if values else (0, 1)
    if low >= 0:  # a price: the axis never goes below zero
        low = max(0, low - (high - low) // 10)
    if high == low:
        low, high = low - max(abs(low) // 20, 1), high + max(abs(high) // 20, 1)
    pad = (high - low) // 10
    low, high = (low if low == 0 else low - pad), high + pad
    bars_h = 50 if any(chart.bars) else 0
    legend_y = top + PLOT_H + bars_h + (44 if chart.groups else 26)
    height = legend_y + 30

    def y(v: int) -> int:
        return top + PLOT_H - round((v - low) / (high - low) * PLOT_H)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(chart.title)}">']
    for first, last, cls, _ in chart.spans:
        parts.append(f'<rect class="span {cls}" x="{round(x(first) - step / 2)}" y="{top}" '
                     f'width="{(last - first + 1) * step}" height="{PLOT_H + bars_h}"/>')
    for i, _ in chart.markers:
        parts.append(f'<line class="marker" x1="{round(x(i))}" x2="{round(x(i))}" y1="{top - 4}" '
                     f'y2="{top + PLOT_H + bars_h}"/>')
    for tx, anchor, text, row in labels:
        parts.append(f'<text class="note" x="{tx}" y="{TOP + 12 + 16 * row}" text-anchor="{anchor}">'
                     f'{escape(text)}</text>')
    for frac in (0, 0.5, 1):
        # An axis that starts at zero says so (a glitch to $0 must read as $0, not as the lowest inset tick).
        value = 0 if low == 0 and frac == 0 else round(low + (high - low) * (0.05 + 0.9 * frac))
        parts.append(f'<line class="grid" x1="{X0}" x2="{width - 30}" y1="{y(value)}" y2="{y(value)}"/>'
                     f'<text class="tick" x="{X0 - 4}" y="{y(value) + 4}" text-anchor="end">'
                     f'{escape(_format(value, chart.value_format))}</text>')
    for name, cls, vs in chart.lines:
        points = " ".join(f"{round(x(i))},{y(v)}" for i, v in enumerate(vs) if v is not None)
        dots = "" if n > MAX_DOTS else "".join(f'<circle class="dot {cls}" cx="{round(x(i))}" cy="{y(v)}" r="2.5"><title>'
                       f'{escape(chart.labels[i])}: {escape(name)} {escape(_format(v, chart.value_format))}'
                       f'</title></circle>' for i, v in enumerate(vs) if v is not None)
        parts.append(f'<polyline class="{cls}" points="{points}"/>{dots}')
    if bars_h:
        most = max(chart.bars)
        base = top + PLOT_H + bars_h
        for i, count in enumerate(chart.bars):
            if count:
                bh = max(2, round(count / most * (bars_h - 8)))
                parts.append(f'<rect class="liq" x="{round(x(i) - step / 2) + 1}" y="{base - bh}" '
                             f'width="{max(step - 2, 1)}" height="{bh}"><title>{escape(chart.labels[i])}: {count} '
                             f'{escape(chart.bar_label)}</title></rect>')
        parts.append(f'<text class="tick" x="{X0 - 4}" y="{base - 2}" text-anchor="end">{escape(chart.bar_label)}</text>')
    every = max(1, round(30 / step))  # a tick label about every 30 px
    axis_y = top + PLOT_H + bars_h + 14
    for i, text in enumerate(chart.ticks):
        if i % every == 0:
            parts.append(f'<text class="tick" x="{round(x(i))}" y="{axis_y}" text-anchor="middle">{escape(text)}</text>')
    for first, last, text in chart.groups:
        centre = (x(first) + x(last)) / 2 - len(text) * TEXT_PX / 2
        tx, anchor = fit_text(max(centre, x(first) - step / 2), text, width)
        parts.append(f'<line class="group" x1="{round(x(first) - step / 2) + 2}" x2="{round(x(last) + step / 2) - 2}" '
                     f'y1="{axis_y + 5}" y2="{axis_y + 5}"/><text class="tick" x="{tx}" y="{axis_y + 18}" '
                     f'text-anchor="{anchor}">{escape(text)}</text>')
    lx = X0
    for name, cls, _ in chart.lines:
        parts.append(f'<line class="{cls}" x1="{lx}" x2="{lx + 22}" y1="{legend_y}" y2="{legend_y}"/>'
                     f'<text class="tick" x="{lx + 28}" y="{legend_y + 4}">{escape(name)}</text>')
        lx += 40 + round(len(name) * TEXT_PX)
    parts.append("</svg>")
    return Markup("".join(parts))
