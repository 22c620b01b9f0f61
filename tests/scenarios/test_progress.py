"""Progress while a run runs: phase lines with wall time when there is no terminal, a bar
with labelled virtual time and an ETA when there is one."""

import io

from rich.console import Console

from scenarios.progress import PhaseLines, ProgressBar, compute_eta_s, make_progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_one_line_per_phase_as_it_ends_with_its_wall_time():
    clock, lines = Clock(), []
    progress = PhaseLines(lines.append, clock)
    for now, phase, height, virtual_s in [(0, "genesis", 0, 0.0), (1.5, "chain", 1, 1.0), (2, "chain", 12, 12.9),
                                          (4, "halted", 12, 12.9), (4, "vote", 12, 21612.9)]:
        clock.now = now
        progress.on_progress(phase, height, virtual_s)
    clock.now = 7.25
    progress.stop()
    assert lines == [
        "l2sim: genesis: contracts deployed and accounts funded: height 0, virtual time 0.0 s, 1.5 s of wall time",
        "l2sim: chain: blocks until the halt: height 12, virtual time 12.9 s, 2.5 s of wall time",
        "l2sim: halt: height 12, virtual time 12.9 s, 0.0 s of wall time",
        "l2sim: emergency: views, the plan vote and its certificate: height 12, virtual time 6 h 00 min, "
        "3.2 s of wall time",
    ]


def test_the_eta_is_the_pace_so_far():
    assert compute_eta_s(10.0, 5, 20) == 30.0
    assert compute_eta_s(0.0, 0, 20) is None
    assert compute_eta_s(10.0, 25, 20) == 0.0


def test_the_bar_labels_virtual_time_and_counts_the_discarded_heights():
    out = io.StringIO()
    clock = Clock()
    bar = ProgressBar(Console(file=out, force_terminal=True, width=200), heights=20, clock=clock)
    for now, phase, height in [(1, "chain", 1), (2, "chain", 2), (12, "chain", 12), (12, "halted", 12),
                               (13, "restored", 9)]:
        clock.now = now
        bar.on_progress(phase, height, 21600.0)
    task = bar.bar.tasks[0]
    assert task.total == 23 and task.completed == 3  # 20 heights and the 3 a rollback took back; 3 commits
    assert task.fields["virtual"] == "6 h 00 min" and task.fields["eta"] == "about 1 min 20 s left"  # 12 s for 3 commits, 20 to go
    bar.bar.console.print(bar.bar.get_renderable())
    assert "virtual time 6 h 00 min" in out.getvalue() and "about 1 min 20 s left" in out.getvalue()


def test_quiet_means_no_progress_and_a_pipe_gets_lines():
    piped = Console(file=io.StringIO())
    assert make_progress(piped, 10, quiet=True, narrate=False) is None
    assert isinstance(make_progress(piped, 10, quiet=False, narrate=False), PhaseLines)
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress(terminal, 10, quiet=False, narrate=False), ProgressBar)
    assert isinstance(make_progress(terminal, 10, quiet=False, narrate=True), PhaseLines)
