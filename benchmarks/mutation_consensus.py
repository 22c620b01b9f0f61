"""Mutation check of the consensus tests: plant classic bugs in consensus/ one at a time and
see which tests catch each.

    python benchmarks/mutation_consensus.py [--quick] [--only NAME[,NAME...]] [--list]

Every mutant is one bug written as exact text replacements in a file of consensus/ (a
replacement that no longer matches the source exactly once stops the script: a mutant
that silently plants nothing would count as killed by nobody, or worse, as survived). The
source tree is copied once to a temporary directory; each mutant is written into the copy,
its tests run there (imports resolve to the copy, which the script checks first), and the
original file is put back before the next. The worktree is never touched.

For each mutant the CometBFT ports (tests/consensus/test_cometbft_*.py) run first; by
default the engine's own tests (the other consensus unit tests, no whole simulations)
run too, so the two suites can be compared; `--quick` runs the ports alone. Each run
stops at its first failure. A mutant is killed when pytest fails (a crash counts: the bug made
the code unusable, which a test saw). The exit code is 1 when any mutant survives the
ports, 0 otherwise. Before the mutants, the unmutated copy must pass every file it runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("chain", "consensus", "validators", "scenarios", "tests", "setup.cfg", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
PORTED_TESTS = (
    "tests/consensus/test_cometbft_state.py",
    "tests/consensus/test_cometbft_vote_set.py",
    "tests/consensus/test_cometbft_validator_set.py",
    "tests/consensus/test_cometbft_byzantine.py",
)
OWN_TESTS = (
    "tests/consensus/test_consensus_tendermint.py",
    "tests/consensus/test_consensus_byzantine_votes.py",
    "tests/consensus/test_consensus_messages.py",
    "tests/consensus/test_consensus_forensics.py",
    "tests/consensus/test_emergency.py",
)
TIMEOUT_S = 600  # per pytest run; a mutant that loops forever is caught by the engine's own bound first


@dataclass(frozen=True)
class Mutant:
    """A bug: `edits` are (old, new) replacements in `path`, each `old` found exactly once."""

    name: str
    path: str
    edits: tuple[tuple[str, str], ...]
    bug: str


ENGINE = "consensus/tendermint.py"
MUTANTS = (
    Mutant("line-22-lock-check", ENGINE, ((
        "ok = self._is_payload_valid(proposal, payload) and (\n"
        "                    self.locked_round == -1 or self.locked_hash == proposal.block_hash)",
        "ok = self._is_payload_valid(proposal, payload)"),),
        "Algorithm 1 line 23 without its lock check: a locked node prevotes any new proposal"),
    Mutant("line-28-lock-check", ENGINE, ((
        "ok = self._is_payload_valid(proposal, payload) and (\n"
        "                    self.locked_round <= vr or self.locked_hash == proposal.block_hash)",
        "ok = self._is_payload_valid(proposal, payload)"),),
        "Algorithm 1 line 29 without its lock check: a POL older than the lock overrides it"),
    Mutant("never-lock", ENGINE, ((
        "                    self.locked_hash, self.locked_round = proposal.block_hash, r\n", ""),),
        "line 36 precommits the polka's value but never locks on it"),
    Mutant("quorum-half", "consensus/messages.py", ((
        "return self.total_power * 2 // 3 + 1", "return self.total_power // 2 + 1"),),
        "quorum of 1/2 + 1 instead of more than 2/3"),
    Mutant("quorum-two-thirds", "consensus/messages.py", ((
        "return self.total_power * 2 // 3 + 1", "return self.total_power * 2 // 3"),),
        "quorum of 2/3 (rounded down) instead of more than 2/3"),
    Mutant("valid-not-updated", ENGINE, ((
        "self.valid_hash, self.valid_round, self.valid_payload = proposal.block_hash, r, payload",
        "pass"),),
        "line 42: the valid value is never updated on a polka"),
    Mutant("valid-not-reproposed", ENGINE, ((
        "        if self.valid_hash is not None:\n            if self.valid_payload is None:",
        "        if False:\n            if self.valid_payload is None:"),),
        "line 15: a proposer proposes a new block even when it holds a valid one"),
    Mutant("equivocator-counted-twice", ENGINE, ((
        "        first = self.votes.get(vote.validator)\n        if first is not None:\n            return first\n"
        "        self.votes[vote.validator] = vote\n        self.power += power\n",
        "        first = self.votes.get(vote.validator)\n        self.power += power\n"
        "        if first is not None:\n            return first\n        self.votes[vote.validator] = vote\n"),),
        "a vote counted twice: an equivocator's second vote adds its power to the +2/3-any total again"),
    Mutant("duplicate-counted-twice", ENGINE, (
        ("return counted is not None and counted.digest == vote.digest",
         "return counted is not None and counted.signature == vote.signature"),
        ('        assert vote.validator not in voters, "one digest per (validator, value) in a tally"\n', "")),
        "a vote counted twice: duplicates recognised by signature, so a re-signed vote counts again"),
    Mutant("equivocation-not-kept", ENGINE, ((
        "            self.evidence.append((first, vote))\n", ""),),
        "equivocation not reported: the engine drops the conflicting pair of votes"),
    Mutant("equivocation-not-convicted", "consensus/forensics.py", ((
        "        if other is not message:", "        if other is not message and False:"),),
        "equivocation not reported: forensics never names a double signer"),
    Mutant("no-propose-timeout", ENGINE, ((
        '        actions.append(ScheduleTimeout("propose", self.height, round, '
        'self.timeouts.get_delay_s("propose", round)))\n', ""),),
        "timeouts not scheduled: no timeoutPropose at the start of a round (line 21)"),
    Mutant("no-prevote-timeout", ENGINE, ((
        '            actions.append(ScheduleTimeout("prevote", self.height, r, '
        'self.timeouts.get_delay_s("prevote", r)))\n', ""),),
        "timeouts not scheduled: no timeoutPrevote on +2/3 prevotes of anything (line 35)"),
    Mutant("no-precommit-timeout", ENGINE, ((
        '            actions.append(ScheduleTimeout("precommit", self.height, r, '
        'self.timeouts.get_delay_s("precommit", r)))\n', ""),),
        "timeouts not scheduled: no timeoutPrecommit on +2/3 precommits of anything (line 48)"),
    Mutant("timeout-marks-kept", ENGINE, ((
        "        self._fired = set()\n", ""),),
        "the 'timeout already triggered' marks survive into the next height"),
    Mutant("skip-on-f", ENGINE, ((
        "if k > r and power >= self.validator_set.skip_threshold]",
        "if k > r and power >= self.validator_set.max_faulty_power]"),),
        "line 55 skips rounds on f (one Byzantine validator) instead of f+1"),
    Mutant("commit-current-round-only", ENGINE, ((
        "for round in sorted(k[0] for k in self._tallies if k[1] == PRECOMMIT):",
        "for round in ([r] if (r, PRECOMMIT) in self._tallies else []):"),),
        "line 49 only for the current round: a commit of an earlier round is missed"),
    Mutant("any-proposer", ENGINE, ((
        "        if proposal.proposer != self.validator_set.get_proposer(proposal.height, proposal.round):\n"
        "            return\n", ""),),
        "a proposal is accepted from a validator that is not the round's proposer"),
    Mutant("malformed-read", ENGINE, ((
        "if not is_well_formed(message) or message.fork_id != self.fork_id",
        "if message.fork_id != self.fork_id"),),
        "malformed messages reach the signature check (the crash the TestInvalidVotes port found)"),
    Mutant("priority-not-centred", "consensus/proposer.py", ((
        "    current = list(compute_centred_priorities(\n"
        "        compute_rescaled_priorities(priorities, PRIORITY_WINDOW_SIZE_FACTOR * total)))",
        "    current = list(compute_rescaled_priorities(priorities, PRIORITY_WINDOW_SIZE_FACTOR * total))"),),
        "proposer priorities not centred on their average before a step"),
    Mutant("priority-not-rescaled", "consensus/proposer.py", ((
        "    current = list(compute_centred_priorities(\n"
        "        compute_rescaled_priorities(priorities, PRIORITY_WINDOW_SIZE_FACTOR * total)))",
        "    current = list(compute_centred_priorities(priorities))"),),
        "proposer priorities not rescaled when their spread exceeds twice the total power"),
    Mutant("priority-tie-to-higher-index", "consensus/proposer.py", ((
        "        if priorities[i] > priorities[best]:", "        if priorities[i] >= priorities[best]:"),),
        "proposer ties go to the higher index"),
    Mutant("emergency-target-single-reporter", "consensus/emergency.py", ((
        "        if power > validator_set.max_faulty_power:", "        if power > 0:"),),
        "the emergency target taken from a single reporter, not from f+1 of the power"),
)


def copy_tree(destination: Path) -> None:
    """The source and the tests, without caches."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=IGNORED)
        else:
            shutil.copy2(source, destination / name)


def plant(text: str, mutant: Mutant) -> str:
    """`text` with the mutant's edits; fails loudly if an edit does not match exactly once."""
    for old, new in mutant.edits:
        found = text.count(old)
        if found != 1:
            raise SystemExit(f"mutant {mutant.name}: {old!r} found {found} times in {mutant.path}; update the mutant")
        text = text.replace(old, new)
    return text


def run_pytest(tree: Path, files: tuple[str, ...]) -> tuple[bool, str]:
    """(passed, the first failing test or error line) for `files` in `tree`, stopping at
    the first failure."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_PROFILE": "ci"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--no-header", "-rf", "-x", *files]
    try:
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TIMEOUT_S} s"
    if result.returncode == 0:
        return True, ""
    lines = (result.stdout + result.stderr).splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return False, (failed[0] if failed else (lines[-1] if lines else f"exit code {result.returncode}"))[:110]


def check_imports_resolve_to(tree: Path) -> None:
    """The copy, not the installed worktree, must be what the tests import."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = "import consensus, validators; print(consensus.__file__); print(validators.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True, text=True, check=True)
    for line in out.stdout.split():
        if not Path(line).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"tests would import {line}, not the copy in {tree}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CometBFT ports only")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--plant-only", action="store_true",
                        help="check that every mutant still plants in the current source, run no tests (a smoke run)")
    args = parser.parse_args()
    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:34} {mutant.path:24} {mutant.bug}")
        return 0
    if args.plant_only:
        for mutant in MUTANTS:
            plant((ROOT / mutant.path).read_text(), mutant)  # exits naming the mutant whose edit no longer matches
        print(f"all {len(MUTANTS)} mutants plant in the current source")
        return 0
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - {m.name for m in MUTANTS})
    if unknown:
        print(f"--only: no mutant named {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not names or m.name in names]
    suites = [("ports", PORTED_TESTS)] + ([] if args.quick else [("own tests", OWN_TESTS)])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="l2sim-mutants-") as temp:
        tree = Path(temp)
        copy_tree(tree)
        check_imports_resolve_to(tree)
        for label, files in suites:
            passed, detail = run_pytest(tree, files)
            if not passed:
                print(f"the unmutated copy fails the {label}: {detail}", file=sys.stderr)
                return 2
        print(f"{'mutant':34} " + " ".join(f"{label:>9}" for label, _ in suites) + "  first failure (ports)")
        survivors = []
        for mutant in chosen:
            target = tree / mutant.path
            original = target.read_text()
            target.write_text(plant(original, mutant))
            try:
                results = [run_pytest(tree, files) for _, files in suites]
            finally:
                target.write_text(original)
            if results[0][0]:
                survivors.append(mutant.name)
            cells = " ".join(f"{'survived' if ok else 'killed':>9}" for ok, _ in results)
            print(f"{mutant.name:34} {cells}  {results[0][1]}", flush=True)
    killed = len(chosen) - len(survivors)
    print(f"ports killed {killed} of {len(chosen)} mutants in {time.perf_counter() - started:.0f} s"
          + (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
