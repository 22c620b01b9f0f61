"""The narrated run: a caption per event that matters, in the order things happen, nil votes
with their reason, the halt's six hours said in words; with --step it waits for Enter on a
terminal and never blocks when stdin is not one."""

import json
import os
import pty
import re

from scenarios.narrate import Narrator
from teaching_support import FAULTS, l2sim, write_small


def vote(t_s, validator, value, reason, *, height=5, fork=0, step="prevote", round=0):
    return {"kind": "vote", "t_s": t_s, "fork": fork, "height": height, "validator": validator, "step": step,
            "round": round, "value": value, "reason": reason}


def narrate(events):
    lines, waits = [], []
    narrator = Narrator(lines.append, lambda: waits.append(len(lines)))
    for event in events:
        narrator.on_event(event)
    narrator.finish()
    return [line for line in lines if not line.startswith("== ")], waits  # without the chapter titles


def test_nil_votes_say_why_and_routine_votes_are_silent():
    lines, waits = narrate([vote(1.0, 1, "0xab", None), vote(1.1, 2, None, "invalid"),
                            vote(1.2, 3, None, "no_proposal", round=1)])
    assert len(lines) == 2 and waits == [1, 2], "one caption, one pause, per event that matters"
    assert "validator 2 prevotes nil in round 0: the block does not re-execute to the state root" in lines[0]
    assert "validator 3 prevotes nil in round 1: no proposal arrived" in lines[1]


def test_a_halted_validator_says_it_has_halted():
    halt = {"kind": "halt", "t_s": 2.0, "fork": 0, "height": 5, "validator": 2, "reason": "deviation alarm"}
    lines, _ = narrate([halt, vote(2.5, 2, None, "invalid", height=6)])
    assert lines[0].endswith("validator 2 halts at height 5 (deviation alarm)")
    assert "it has halted" in lines[1]


def test_partitions_known_in_advance_are_told_when_they_happen():
    start = {"kind": "partition_start", "t_s": 4.0, "fork": 0, "height": None, "groups": [[0, 1], [2, 3]]}
    end = {"kind": "partition_end", "t_s": 7.0, "fork": 0, "height": None, "groups": [[0, 1], [2, 3]]}
    lines, _ = narrate([start, end, vote(3.0, 1, None, "no_polka", step="precommit"),
                        vote(5.0, 1, None, "no_proposal"), vote(9.0, 1, None, "no_proposal")])
    told = [re.search(r"\[\s*(\d+:\d\d:[\d.]+) ", line).group(1) for line in lines]
    assert told == ["0:00:03.0", "0:00:04.0", "0:00:05.0", "0:00:07.0", "0:00:09.0"]
    assert "splits into 0,1 | 2,3" in lines[1] and "heals" in lines[3]


def test_liquidations_are_counted_per_height_and_the_pause_is_said():
    liquidations = [{"kind": "liquidation", "t_s": 10.0, "fork": 0, "height": 46, "account": f"0x{i:040x}",
                     "market": market, "price": 0} for i, market in enumerate(["BTC-USD"] * 3 + ["ETH-USD"])]
    view = {"kind": "view", "t_s": 21610.0, "fork": 0, "height": 48, "validator": 0, "halt_height": 48,
            "first_bad_height": 45}
    lines, _ = narrate([*liquidations, view])
    assert lines[0].endswith("4 positions liquidated at height 46 (3 on BTC-USD, 1 on ETH-USD)")
    assert lines[1].startswith("... 6 h 00 min of virtual time pass with the chain halted")


def test_narrated_run_tells_the_story_in_order(tmp_path):
    # Not quiet, and stdin a terminal (a pty) answering `p` at every caption and then `c`: the
    # run goes through every phase without waiting on a caption it skipped, and ends.
    scenario = write_small(tmp_path, "paradex-2026", extra=FAULTS)
    controller, terminal = pty.openpty()
    os.write(controller, b"p\n" * 12 + b"c\n")
    try:
        result = l2sim("run", str(scenario), "--small", "--narrate", "--step", "--json", str(tmp_path / "r.json"),
                       stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ("the network splits into", "crashes", "alarm goes off", "halts at height", "signs its view",
                   "proposes restore plan", "rollback certificate", "applies the plan", "restarts at height",
                   "is refunded", "positions liquidated", "p: next phase"):
        assert needle in out, needle
    times = [int(h) * 3600 + int(m) * 60 + float(sec)
             for h, m, sec in re.findall(r"^\[\s*(\d+):(\d\d):([\d.]+) ", out, flags=re.M)]
    assert max(times) > 6 * 3600  # the six-hour pause is on the clock
    assert times == sorted(times) and len(times) > 40
    # the reopening is narrated: each phase change, in order, with what it means
    report = json.loads((tmp_path / "r.json").read_text())
    banners = re.findall(r"^== (.*) ==$", out, flags=re.M)
    modes = [p["mode"] for p in report["reopening"]["phases"]]
    assert banners[-len(modes):] == [f"reopening: {mode}" for mode in modes]
    for phase in report["reopening"]["phases"]:
        assert f"committed on fork 1 " in out and f"the market is now {phase['mode']}: " in out
    # without a terminal for its output, one line per phase on stderr with wall time; paths echoed
    phase_lines = [line for line in result.stderr.splitlines() if line.startswith("l2sim: ")]
    assert [line.split(":")[1].strip() for line in phase_lines] == \
        ["genesis", "chain", "halt", "emergency", "restore", "restart"]
    assert all(line.endswith("of wall time") for line in phase_lines)
    assert f"wrote the JSON report: {tmp_path / 'r.json'}" in out


def test_step_answers_skip_to_the_next_phase_or_to_the_end():
    answers = iter(["p", "", "c"])
    lines, waits = [], []

    def wait():
        waits.append(lines[-1])
        return next(answers)

    narrator = Narrator(lines.append, wait)
    halt = {"kind": "halt", "t_s": 3.0, "fork": 0, "height": 5, "validator": 0, "reason": "deviation alarm"}
    view = {"kind": "view", "t_s": 4.0, "fork": 0, "height": 5, "validator": 0, "halt_height": 5,
            "first_bad_height": 4}
    for event in [vote(1.0, 1, None, "no_polka"), vote(2.0, 2, None, "no_polka"), halt,
                  dict(halt, validator=1), view, dict(view, validator=1), dict(view, validator=2)]:
        narrator.on_event(event)
    narrator.finish()
    # `p` after the first caption: silent until the halt; Enter waits again; `c`: never again
    assert [w.split("]  ")[1] for w in waits] == [
        "validator 1 prevotes nil in round 0: it saw no 2/3 of the prevotes for one block in time",
        "validator 0 halts at height 5 (deviation alarm)", "validator 1 halts at height 5 (deviation alarm)"]
    assert [line for line in lines if line.startswith("==")] == [
        "== the glitch, the alarm and the halt ==", "== the emergency: signed views, the plan vote and its certificate =="]
    assert len([line for line in lines if line.startswith("[")]) == 7


def test_chapters_only_move_forward():
    # validators restore as soon as they hold the certificate: a later plan decision is told
    # inside the restore's chapter, not as a second emergency
    from consensus.emergency import PLAN_FORK_BASE

    decide = {"kind": "decide", "t_s": 5.0, "fork": PLAN_FORK_BASE + 1, "height": 0, "validator": 0, "round": 0,
              "signers": [0, 1, 2]}
    restore = {"kind": "restore", "t_s": 5.1, "fork": 0, "height": 9, "validator": 0, "ok": True, "state_root": "0x" + "ab" * 32}
    lines = []
    narrator = Narrator(lines.append)
    for event in [decide, restore, dict(decide, validator=1, t_s=5.2), dict(restore, validator=1, t_s=5.3)]:
        narrator.on_event(event)
    assert [line for line in lines if line.startswith("==")] == [
        "== the emergency: signed views, the plan vote and its certificate ==", "== the restore =="]
