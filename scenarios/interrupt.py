"""Ctrl-C and SIGTERM: a command stops at once with one line and exit 130 (SIGINT) or 143
(SIGTERM), its workers stopped, and says what it leaves behind.

A run's data directory stays readable: the store commits one transaction a block, so
every block committed before the signal is there, and the manifest still says `running`.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import click

EXIT_SIGNAL_BASE = 128  # the shell's convention: 128 + the signal's number


class Interrupted(BaseException):
    """Raised when SIGINT or SIGTERM stops a command (a BaseException: no `except Exception`
    on the way up may swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    for name in ("SIGINT", "SIGTERM"):  # a second signal must not break the cleanup
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    for child in multiprocessing.active_children():  # pool workers: a pool's shutdown waits for them
        child.terminate()
    raise Interrupted(signum)


@contextmanager
def stop_on_signals(*, saved_in: str | None = None, leaves: str | None = None) -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM end the command: one line on stderr, then exit 128 +
    the signal. The line names the height up to which the saved run in `saved_in` is readable,
    or says `leaves` (what the command keeps, e.g. a sweep's finished runs)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return
    # A signal the shell told us to ignore (a background job, nohup) stays ignored.
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    except Interrupted as stop:
        line = "l2sim: interrupted"
        if saved_in is not None:
            line += f"; {describe_saved_progress(saved_in)}"
        elif leaves is not None:
            line += f"; {leaves}"
        click.echo(line, err=True)
        raise click.exceptions.Exit(EXIT_SIGNAL_BASE + stop.signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def describe_saved_progress(data_dir: str) -> str:
    """`the saved run in DIR is readable up to height H` (or that it holds no block yet)."""
    from scenarios.inspect import read_saved_height

    height = read_saved_height(data_dir)
    if height is None:
        return f"the saved run in {data_dir} holds no block yet"
    return f"the saved run in {data_dir} is readable up to height {height}"
