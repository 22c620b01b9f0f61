"""The audit's background replay never outlives its run: Ctrl-C, a kill of the run, a closed
pipe. (Its results against a local replay are tested on a real reopening in test_reopening.py.)"""

import os
import signal
import subprocess
import sys
import textwrap
import time

from test_saved_run_readers import _is_alive

# A run's process with a replay open and nothing sent: it prints the replay's pid, then waits
# inside the command's signal handling as `l2sim run` does.
WAITING = textwrap.dedent("""
    import sys
    import time
    import click
    from chain.blocks import Header
    from chain.store import MemoryStore
    from eth.constants import BLANK_ROOT_HASH
    from scenarios.audit_replay import BackgroundReplay
    from scenarios.interrupt import stop_on_signals

    try:
        with stop_on_signals():
            replay = BackgroundReplay(MemoryStore(), None, Header(0, b"\\0" * 32, BLANK_ROOT_HASH), 100, 10)
            try:
                print(replay._process.pid, flush=True)
                time.sleep(120)
            finally:
                replay.close()
    except click.exceptions.Exit as stop:  # what click does with it in a command
        sys.exit(stop.exit_code)
""")


def start_waiting():
    proc = subprocess.Popen([sys.executable, "-c", WAITING], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    child = int(proc.stdout.readline())
    assert _is_alive(child)
    return proc, child


def wait_gone(pid):
    for _ in range(1000):  # bounded (~10 s): the kernel reaps it
        if not _is_alive(pid):
            return True
        time.sleep(0.01)
    return False


def test_ctrl_c_to_the_process_group_stops_the_run_and_its_replay():
    proc, child = start_waiting()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the replay gets it too
    assert proc.wait(timeout=60) == 130
    assert proc.stderr.read().splitlines() == ["l2sim: interrupted"]  # nothing from the replay
    assert wait_gone(child)


def test_a_killed_run_leaves_no_replay_behind():
    proc, child = start_waiting()
    proc.kill()
    proc.wait(timeout=60)
    assert wait_gone(child)  # its pipe reads EOF once the parent is gone
    proc.stderr.close()
    proc.stdout.close()


def test_the_replay_ignores_sigint_alone_and_close_stops_it():
    from chain.blocks import Header
    from chain.store import MemoryStore
    from eth.constants import BLANK_ROOT_HASH
    from scenarios.audit_replay import BackgroundReplay

    replay = BackgroundReplay(MemoryStore(), None, Header(0, b"\0" * 32, BLANK_ROOT_HASH), 100, 10)
    try:
        os.kill(replay._process.pid, signal.SIGINT)
        time.sleep(0.2)
        assert replay._process.is_alive()  # a Ctrl-C is the parent's to handle
    finally:
        replay.close()
    assert replay._process.exitcode is not None


def test_a_fork_refused_means_the_nodes_replay_themselves(monkeypatch):
    import multiprocessing.context

    from chain.blocks import Header
    from chain.history import History
    from chain.store import MemoryStore
    from eth.constants import BLANK_ROOT_HASH
    import scenarios.audit_replay
    from scenarios.audit_replay import open_background_replay

    monkeypatch.setattr(scenarios.audit_replay, "is_background_possible", lambda: True)
    store = MemoryStore()
    history = History.create(store, Header(0, b"\0" * 32, BLANK_ROOT_HASH))
    with open_background_replay(store, None, history, 1, 10, 100) as replay:
        assert replay is not None  # a reopening long enough
    assert not replay._process.is_alive()

    def refuse(process):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "_Popen", staticmethod(refuse))
    with open_background_replay(store, None, history, 1, 10, 100) as replay:
        assert replay is None
