"""What a run says while it runs (`l2sim run`), so a long wait is never silent.

Without a terminal (piped, a CI log) it writes one line per phase on stderr as the phase
ends, with the wall seconds it took; on a terminal, a bar with the height, the virtual
time (labelled as such) and the wall time spent and left. The runner reports
`(phase, height, virtual_s)`; the phases are the runner's: genesis, chain, halted, vote,
restored, restart.
"""

from __future__ import annotations

import time
from typing import Callable

from scenarios.units import format_duration

PHASE_NAMES = {
    "genesis": "genesis: contracts deployed and accounts funded",
    "chain": "chain: blocks until the halt",
    "halted": "halt",
    "vote": "emergency: views, the plan vote and its certificate",
    "restored": "restore",
    "restart": "restart: the new fork and its reopening",
}


def describe_phase(phase: str) -> str:
    """The words a phase is told by (its own name when it has none)."""
    return PHASE_NAMES.get(phase, phase)


def compute_eta_s(elapsed_s: float, done: int, total: int) -> float | None:
    """Wall seconds left at the pace so far (None before the first unit of work is done)."""
    if done <= 0 or elapsed_s <= 0:
        return None
    return max(total - done, 0) * elapsed_s / done


class PhaseLines:
    """One line per phase, written when it ends: `l2sim: chain: blocks until the halt:
    height 12, virtual 12.9 s, 3.1 s of wall time`."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.write, self.clock = write, clock
        self.phase: str | None = None
        self.started = clock()
        self.height = 0
        self.virtual_s = 0.0

    def on_progress(self, phase: str, height: int, virtual_s: float) -> None:
        """Runner callback: a new phase closes the last one."""
        if phase != self.phase:
            self.finish()
            self.phase, self.started = phase, self.clock()
        self.height, self.virtual_s = height, virtual_s

    def start(self) -> None:
        """Nothing to draw: lines are written as phases end."""

    def stop(self) -> None:
        """The run ended: write the line of the last phase."""
        self.finish()

    def finish(self) -> None:
        """Write the line of the phase still open (if any)."""
        if self.phase is None:
            return
        wall = self.clock() - self.started
        self.write(f"l2sim: {describe_phase(self.phase)}: height {self.height}, "
                   f"virtual time {format_duration(self.virtual_s, precise=False)}, "
                   f"{format_duration(wall)} of wall time")
        self.phase = None


class ProgressBar:
    """A bar on the terminal: phase, height, virtual time, wall time and an ETA.

    The work is counted in commits the runner reports (monotonic, unlike the height,
    which a rollback takes back); the total is the scenario's heights plus the heights a
    rollback discarded, once known."""

    def __init__(self, console, heights: int, clock: Callable[[], float] = time.monotonic):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.clock, self.heights = clock, heights
        self.bar = Progress(TextColumn("{task.fields[phase]:>9}"), BarColumn(),
                            TextColumn("height {task.fields[height]}"),
                            TextColumn("virtual time {task.fields[virtual]}"),
                            TextColumn("wall"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                            console=console, transient=True)
        self.task = self.bar.add_task("run", total=heights, phase="genesis", height=0,
                                      virtual=format_duration(0), eta="")
        self.commits = 0
        self.discarded = 0
        self.halted_at: int | None = None
        self.first_commit_s: float | None = None

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()

    def on_progress(self, phase: str, height: int, virtual_s: float) -> None:
        """Runner callback."""
        if phase == "halted":
            self.halted_at = height
        elif phase == "restored" and self.halted_at is not None:
            self.discarded = max(self.halted_at - height, 0)
        elif phase in ("chain", "restart"):
            self.commits += 1
            if self.first_commit_s is None:
                self.first_commit_s = self.clock()
        total = self.heights + self.discarded
        eta = None if self.first_commit_s is None else compute_eta_s(
            self.clock() - self.first_commit_s, self.commits, total)
        self.bar.update(self.task, completed=min(self.commits, total), total=total, phase=phase, height=height,
                        virtual=format_duration(virtual_s, precise=False),
                        eta="" if eta is None else f"about {format_duration(eta, precise=False)} left")


def make_progress(console, heights: int, *, quiet: bool, narrate: bool):
    """The progress report fitting where the output goes: a bar on a terminal (not while
    narrating: the captions are the progress), phase lines on stderr otherwise, nothing
    when quiet. Returns an object with `on_progress`, `start`, `stop`, or None."""
    if quiet:
        return None
    if console.is_terminal and not narrate:
        return ProgressBar(console, heights)
    import click

    return PhaseLines(lambda line: click.echo(line, err=True))

