"""The units a reader reads: dollars for wei, hours and minutes for virtual seconds, and
nouns that agree with their counts. Every terminal output formats through these."""

from __future__ import annotations

USD = 10**18  # wei per dollar: the chain's token is priced 1:1 with the dollar


def format_usd(wei: int) -> str:
    """An amount in wei (1e18 per USD) as dollars."""
    return f"${wei / USD:,.2f}"


def format_duration(seconds: float, *, precise: bool = True) -> str:
    """`12.9 s`, `4 min 05.0 s`, `6 h 00 min 12.9 s` (`6 h 00 min` when not `precise`)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if not precise:
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02.0f} s"
    if hours:
        return f"{hours} h {minutes:02d} min {rest:04.1f} s"
    return f"{minutes} min {rest:04.1f} s"


def format_clock(t_s: float, decimals: int = 1) -> str:
    """Virtual time since genesis as a clock, `6:00:15.1` (hours:minutes:seconds)."""
    minutes, seconds = divmod(round(t_s, decimals), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:>2}:{minutes:02d}:{seconds:0{3 + decimals}.{decimals}f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 liquidation`, `3 liquidations`, `0 accounts`."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
