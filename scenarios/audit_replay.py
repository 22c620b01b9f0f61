"""The reopening audit's band-on replay on the second core, while the chain goes on.

The audit (`recovery.compute_reopening_audit`) replays every block of the reopening with the
price band on; computed when the block before trading opens commits, it would stop the run
for as long as the reopening took to execute. Instead, when the restart begins, a forked
process takes the restored state (it inherits the node store) and is sent each block of the
public chain as it is first certified; it replays it on its counterfactual head at once, so
that when the audit is due only the last block remains.

It is a memo, never a decision: a node uses the replay's head only if the blocks it holds
from the restart to the audit are, byte for byte, the blocks the replay was sent, from the
same restored header; otherwise (a split, a replay that failed, no second core) it replays
them itself. The replay runs the same code on the same inputs (`BandedReplay`), so the head,
the state it leaves in the store and the report are the same either way
(`tests/scenarios/test_audit_replay.py` runs both).

The process is forked, not spawned: it starts in milliseconds with the contracts compiled and
the store in memory. It ignores SIGINT (Ctrl-C reaches the whole process group; the command's
handler stops it with the pool workers) and exits when its pipe closes, so it never outlives
the run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from chain.blocks import Block, Header, decode_block, encode_block
from chain.history import History
from chain.store import OverlayStore, Store
from scenarios.recovery import BandedReplay, ExchangeSetup

# Below this many blocks of reopening the replay costs less than a second: not worth a process.
MIN_BACKGROUND_BLOCKS = 8
_FINISH = b""  # sent instead of a block: reply with the head and what the replay wrote


@dataclass(frozen=True)
class ReplayResult:
    """What the replay process computed: its head, how many blocks it replayed (the pipe is
    ordered, so they are the first `replayed` the parent sent) and every node and preimage its
    execution wrote."""

    head: Header
    replayed: int
    nodes: dict[bytes, bytes]
    preimages: dict[bytes, bytes]


def is_background_possible() -> bool:
    """Linux (where fork is safe; macOS's system libraries are not), a second core for this
    process, no other thread (forking a threaded process can deadlock the child) and not inside
    a pool worker (a daemonic process may not have children)."""
    return (sys.platform.startswith("linux") and len(os.sched_getaffinity(0)) >= 2
            and threading.active_count() == 1 and not multiprocessing.current_process().daemon)


class BackgroundReplay:
    """The parent's side: `feed` each certified block, `take_head` when the audit is due."""

    def __init__(self, store: Store, setup: ExchangeSetup, parent: Header, band_bps: int, last_height: int):
        self.store = store
        self.parent = parent
        self.last_height = last_height  # the last block the audit replays (trading opens after it)
        self._sent: list[bytes] = []
        self._result: ReplayResult | None = None
        self._failed = False
        self._tip = parent.hash
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        replay = BandedReplay(OverlayStore(store.get_forked_reader()), setup, parent, band_bps)
        self._process = context.Process(target=_serve, args=(child, self._conn, replay), daemon=True,
                                        name="l2sim-audit-replay")
        # Signals wait until the child has its own handlers: a Ctrl-C in between must not run
        # the command's handler in the child (it would print a traceback there).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._process.start()
        except BaseException:
            self._conn.close()
            child.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()

    def feed(self, block: Block) -> None:
        """Send the public chain's next block (the first certified at its height); any other
        block, or one after the audit's last, is ignored."""
        if (self._failed or self._result is not None or block.height != self.parent.height + 1 + len(self._sent)
                or block.height > self.last_height or block.header.parent_hash != self._tip):
            return
        encoded = encode_block(block)
        try:
            self._conn.send_bytes(encoded)
        except OSError:
            self._failed = True
            return
        self._sent.append(encoded)
        self._tip = block.hash

    def take_head(self, history: History) -> Header | None:
        """The replay's head, its state put into the store, if `history` holds from the restored
        header to the audit's last block exactly the blocks the replay was sent; else None."""
        start = self.parent.height + 1
        if history.height < self.last_height or history.header_at(start - 1) != self.parent:
            return None
        held = tuple(encode_block(history.block_at(h)) for h in range(start, self.last_height + 1))
        if tuple(self._sent) != held:
            return None
        result = self._receive()
        if result is None or result.replayed != len(held):
            return None
        for key, node in result.nodes.items():
            self.store[key] = node
        self.store.put_preimages(sorted(result.preimages.items()))
        return result.head

    def _receive(self) -> ReplayResult | None:
        if self._result is None and not self._failed:
            try:
                self._conn.send_bytes(_FINISH)
                reply = self._conn.recv()
            except (OSError, EOFError):
                reply = None
            if isinstance(reply, ReplayResult):
                self._result = reply
            else:
                self._failed = True  # the replay raised: the node's own replay will say why
            self.close()
        return self._result

    def close(self) -> None:
        """Stop the process (at once if it is still replaying) and wait for it."""
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _serve(conn, parent_end, replay: BandedReplay) -> None:
    """The replay process: each block received is replayed at once; `_FINISH` is answered with
    the `ReplayResult` (or, if a block failed, with the error's text) and ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    parent_end.close()  # so that the pipe reads EOF once the parent is gone
    replayed = 0
    error = None
    try:
        while True:
            encoded = conn.recv_bytes()
            if encoded == _FINISH:
                break
            replayed += 1
            if error is None:
                try:
                    replay.add(decode_block(encoded))
                except Exception as failure:  # reported to the parent, which replays itself
                    error = f"{type(failure).__name__}: {failure}"
        store = replay.store
        assert isinstance(store, OverlayStore)
        conn.send(error if error is not None else
                  ReplayResult(replay.head, replayed, store.written_nodes, store.written_preimages))
    except (EOFError, OSError):
        pass  # the parent has gone: nothing to answer
    finally:
        conn.close()


@contextmanager
def open_background_replay(store: Store, setup: ExchangeSetup, history: History, restart_height: int,
                           audit_height: int | None, band_bps: int) -> Iterator[BackgroundReplay | None]:
    """A `BackgroundReplay` for the reopening from `restart_height` to the block before
    `audit_height` on `history`'s restored header, or None where it would not pay (a short
    reopening, no audit) or cannot run; stopped on the way out."""
    if (audit_height is None or audit_height - restart_height < MIN_BACKGROUND_BLOCKS
            or history.height < restart_height - 1 or not is_background_possible()):
        yield None
        return
    try:
        replay = BackgroundReplay(store, setup, history.header_at(restart_height - 1), band_bps, audit_height - 1)
    except OSError:  # no process to be had (fork refused: memory, a process limit): replay locally
        yield None
        return
    try:
        yield replay
    finally:
        replay.close()
