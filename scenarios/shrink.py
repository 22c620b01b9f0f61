"""Shrink a failing scenario: the smallest change to its base that still fails the same check.

The scenario (with `--set` applied, before `--small`) is compared with its base (the
scenario it `extends`; itself when it is a bundled one that extends nothing; the schema's
defaults otherwise). What differs is a list of items: each entry of a list key
(a partition, a crash, a Byzantine validator) and each other key. Delta debugging drops
items, keeping a change only when the same check still fails the same way (`failed` or
`not_reached`, as on the original) with the same seed and no check that held now fails; then each number left is moved toward its base value (or toward 0
inside a list entry) by halving. Candidates run in parallel on the sweep's executor,
within a bound on candidates and on time, and the smallest failing scenario found is
written as TOML that `extends` the base.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from scenarios.errors import InvalidValueError, ScenarioError, format_value
from scenarios.loader import (
    compute_layered_scenario,
    compute_scenario,
    expand_dotted_keys,
    format_set_options,
    load_scenario_table,
    merge_tables,
    read_scenario_chain,
)
from scenarios.output import write_text_atomic
from scenarios.schema import Scenario
from scenarios.sweep import open_pool

FAILING = ("failed", "not_reached")
NUMBER_ROUNDS = 4  # halvings per number: each round runs one candidate per number, in parallel
IDENTITY_KEYS = ("name", "seed", "description")
ENTRY_INDEX_FIELDS = ("index", "node")  # which validator an entry is about: not a size to shrink


@dataclass(frozen=True)
class ShrinkLimits:
    """How much a shrink may spend: candidates run, and seconds before no new one starts."""

    max_candidates: int = 200
    max_seconds: float = 600.0


@dataclass(frozen=True)
class Item:
    """One difference from the base: a whole key, or one entry of a list key."""

    key: str
    entry: int | None = None

    def describe(self, original: Mapping[str, Any]) -> str:
        """`key = value` or `key[i] = entry`, in TOML."""
        value = original[self.key] if self.entry is None else original[self.key][self.entry]
        if isinstance(value, dict):  # a field left out is its default (None cannot be written in TOML)
            value = {name: v for name, v in value.items() if v is not None}
        label = self.key if self.entry is None else f"{self.key}[{self.entry}]"
        return f"{label} = {format_set_options({'v': value})[0].partition('=')[2]}"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every leaf of a table (arrays are leaves: they replace when merged)."""
    leaves: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves.update(flatten(value, dotted + "."))
        else:
            leaves[dotted] = value
    return leaves


def compute_items(original: Mapping[str, Any], base: Mapping[str, Any]) -> list[Item]:
    """What `original` changes in `base`, in key order: list entries one by one, other keys whole."""
    items = []
    for key in sorted(original):
        if key in IDENTITY_KEYS or original[key] == base.get(key) or original[key] is None:
            continue  # a None cannot be written in TOML: a key the original clears stays as the base has it
        value = original[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            items.extend(Item(key, i) for i in range(len(value)))
        else:
            items.append(Item(key))
    return items


def compute_overrides(items: Sequence[Item], original: Mapping[str, Any], edits: Mapping[tuple, Any],
                      base: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted overrides a set of kept items makes, with the numbers edited so far."""
    overrides: dict[str, Any] = {}
    for item in items:
        if item.entry is None:
            overrides[item.key] = edits.get((item.key,), original[item.key])
        else:
            # A field left out is its default (None cannot be written in TOML).
            entry = {name: edits.get((item.key, item.entry, name), value)
                     for name, value in original[item.key][item.entry].items() if value is not None}
            overrides.setdefault(item.key, []).append(entry)
    return {k: v for k, v in overrides.items() if v != base.get(k)}


class Shrinker:
    """The search: candidates evaluated in parallel on a pool, each at most once, within limits."""

    def __init__(self, *, pool: Any, base_json: dict[str, Any], identity: dict[str, Any], small: bool,
                 failure: Failure, seed: int, limits: ShrinkLimits, say: Callable[[str], None] = print):
        self.pool, self.base_json, self.identity, self.small = pool, base_json, identity, small
        self.failure, self.seed, self.limits, self.say = failure, seed, limits, say
        self.started = time.monotonic()
        self.candidates = 0
        self.known: dict[str, bool] = {}
        self.stopped_at: str | None = None  # the bound that refused a candidate, in words

    def is_out_of_budget(self) -> bool:
        """True when no further candidate may start (the bound reached is kept, to be told)."""
        bound = self.get_bound()
        self.stopped_at = self.stopped_at or bound
        return bound is not None

    def get_bound(self) -> str | None:
        """The bound reached (`--max-candidates 200`, `--max-seconds 600`), or None."""
        if self.candidates >= self.limits.max_candidates:
            return f"--max-candidates {self.limits.max_candidates}"
        if time.monotonic() - self.started >= self.limits.max_seconds:
            return f"--max-seconds {self.limits.max_seconds:g}"
        return None


    def evaluate(self, batch: Sequence[Mapping[str, Any]]) -> list[bool]:
        """For each candidate: does it still fail the check? Unknown candidates run in parallel, within budget."""
        texts: list[str | None] = []
        for overrides in batch:
            scenario = make_candidate(self.base_json, self.identity, overrides, small=self.small)
            texts.append(None if scenario is None else scenario.model_dump_json())
        todo, labels = [], []
        for overrides, text in zip(batch, texts):
            if text is None or text in self.known or text in todo:
                continue
            bound = self.get_bound()
            if bound is not None:
                self.stopped_at = self.stopped_at or bound
                continue
            todo.append(text)
            self.candidates += 1
            labels.append(f"candidate {self.candidates}: {describe_candidate(overrides)}")
        for position, outcome in self.pool.run_all([(text, self.seed) for text in todo]):
            fails = outcome.result is not None and self.failure.is_reproduced_by(outcome.result["report"])
            self.known[todo[position]] = fails
            verdict = "still fails the same way" if fails else (
                "does not fail the same way" if outcome.result is not None else f"did not run ({outcome.error})")
            self.say(f"{labels[position]}: {verdict} "
                     f"({time.monotonic() - self.started:.0f} s)")
        return [text is not None and self.known.get(text, False) for text in texts]


def describe_candidate(overrides: Mapping[str, Any], width: int = 110) -> str:
    """A candidate by what it sets over the base, cut to `width` characters."""
    options = format_set_options(overrides)
    text = "; ".join(options) if options else "the base alone"
    return text if len(text) <= width else text[: width - 1] + "…"


def make_candidate(base_json: Mapping[str, Any], identity: Mapping[str, Any], overrides: Mapping[str, Any], *,
                   small: bool) -> Scenario | None:
    """The base with `overrides` (as `--small` runs it when asked), or None when that is not a valid scenario."""
    table = merge_tables(dict(base_json), expand_dotted_keys(overrides, label="shrink"))
    try:
        return load_scenario_table({**table, **identity}, small=small, label="<shrink candidate>")
    except ScenarioError:
        return None


@dataclass(frozen=True)
class Failure:
    """The failure a candidate must keep: the check with the same status, and no check newly not ok.

    A candidate that also breaks what held (a crash moved before the halt makes `halt` not
    reached too) fails for another reason; keeping it would trade the bug for a new one."""

    check: str
    status: str
    not_ok: frozenset[str]

    @classmethod
    def of(cls, report: Mapping[str, Any], check: str) -> "Failure":
        """The failure of `check` in the original's report."""
        not_ok = frozenset(name for name, entry in report["checks"].items() if not entry["ok"])
        return cls(check, compute_status(report, check), not_ok)

    def is_reproduced_by(self, report: Mapping[str, Any]) -> bool:
        """True when `report` fails the same check the same way, and breaks nothing else."""
        not_ok = {name for name, entry in report["checks"].items() if not entry["ok"]}
        return compute_status(report, self.check) == self.status and not_ok <= self.not_ok


def compute_status(report: Mapping[str, Any], check: str) -> str | None:
    """The status of `check` in a report dict (None when the run did not report it)."""
    entry = report["checks"].get(check)
    return None if entry is None else entry.get("status") or ("held" if entry["ok"] else "failed")


def minimise_items(shrinker: Shrinker, items: list[Item], build: Callable[[Sequence[Item]], dict]) -> list[Item]:
    """Delta debugging (ddmin) over `items`: each granularity's subsets and complements in one parallel batch."""
    if shrinker.evaluate([build([])])[0]:
        return []
    n = 2
    while len(items) >= 2 and not shrinker.is_out_of_budget():
        size = -(-len(items) // n)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        complements = [[x for x in items if x not in chunk] for chunk in chunks] if len(chunks) > 2 else []
        verdicts = shrinker.evaluate([build(c) for c in chunks + complements])
        failing_chunk = next((c for c, v in zip(chunks, verdicts, strict=False) if v), None)
        failing_complement = next((c for c, v in zip(complements, verdicts[len(chunks):], strict=True) if v), None)
        if failing_chunk is not None:
            items, n = failing_chunk, 2
        elif failing_complement is not None:
            items, n = failing_complement, max(n - 1, 2)
        elif n >= len(items):
            break
        else:
            n = min(len(items), 2 * n)
    if len(items) == 1 and shrinker.evaluate([build([])])[0]:
        return []
    return items


def find_numbers(items: Sequence[Item], original: Mapping[str, Any], base: Mapping[str, Any]) -> dict[tuple, Any]:
    """Every number the kept items set, with the value it moves toward: its base value, or 0 in a list entry."""
    numbers: dict[tuple, Any] = {}
    for item in items:
        if item.entry is None:
            value, target = original[item.key], base.get(item.key)
            if _is_number(value) and _is_number(target):
                numbers[(item.key,)] = target
            continue
        for name, value in original[item.key][item.entry].items():
            if _is_number(value) and name not in ENTRY_INDEX_FIELDS:
                numbers[(item.key, item.entry, name)] = 0 if isinstance(value, int) else 0.0
    return numbers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _midpoint(low: Any, high: Any) -> Any:
    return (low + high) // 2 if isinstance(high, int) and isinstance(low, int) else (low + high) / 2


def minimise_numbers(shrinker: Shrinker, items: Sequence[Item], original: Mapping[str, Any],
                     base: Mapping[str, Any]) -> tuple[dict[tuple, Any], list[tuple]]:
    """Move each number toward its target by halving, all numbers probed in parallel per round.

    Returns the edits kept and the numbers that reached their target (any value between fails)."""
    targets = find_numbers(items, original, base)
    edits: dict[tuple, Any] = {}
    low = dict(targets)  # the highest value known not to fail, or the target before any probe
    at_target: list[tuple] = []

    def current(path: tuple) -> Any:
        if path in edits:
            return edits[path]
        return original[path[0]] if len(path) == 1 else original[path[0]][path[1]][path[2]]

    def build(extra: Mapping[tuple, Any]) -> dict[str, Any]:
        return compute_overrides(items, original, {**edits, **extra}, base)

    for round_index in range(NUMBER_ROUNDS):
        probes = {}
        for path, target in targets.items():
            value = current(path)
            probe = target if round_index == 0 else _midpoint(low[path], value)
            if probe != value and path not in at_target and (round_index == 0 or probe != low[path]):
                probes[path] = probe
        if not probes or shrinker.is_out_of_budget():
            break
        paths = list(probes)
        verdicts = shrinker.evaluate([build({p: probes[p]}) for p in paths])
        still_failing = [p for p, v in zip(paths, verdicts, strict=True) if v]
        for p, v in zip(paths, verdicts, strict=True):
            if not v:
                low[p] = probes[p]
        if not still_failing:
            continue
        combined = {p: probes[p] for p in still_failing}
        if len(still_failing) > 1 and not shrinker.evaluate([build(combined)])[0]:
            combined = {still_failing[0]: probes[still_failing[0]]}  # together they stop failing: keep one
        edits.update(combined)
        if round_index == 0:
            at_target.extend(p for p in combined)
    return edits, at_target


def _format_path(path: tuple) -> str:
    return path[0] if len(path) == 1 else f"{path[0]}[{path[1]}].{path[2]}"


def shrink_scenario(scenario: str, *, check: str, seed: int | None, overrides: Mapping[str, Any], small: bool,
                    out_path: str, workers: int | None = None, scheduler: str | None = None,
                    limits: ShrinkLimits = ShrinkLimits(), say: Callable[[str], None] = print) -> bool:
    """Write to `out_path` the smallest scenario found that fails `check` with the same seed.

    False (nothing written) when the check does not fail on the original."""
    chain = read_scenario_chain(scenario)
    original_scenario = compute_layered_scenario(chain, overrides=overrides, overrides_label="--set")
    if seed is not None:
        original_scenario = original_scenario.model_copy(update={"seed": seed})
    seed = original_scenario.seed
    base_chain, extends = _find_base(chain, out_path)
    base_scenario = (compute_scenario(base_chain) if base_chain
                     else Scenario(name=original_scenario.name))
    base_json = base_scenario.model_dump(mode="json", exclude_none=True)
    original = flatten(original_scenario.model_dump(mode="json"))
    base = flatten(base_scenario.model_dump(mode="json"))
    name = f"{original_scenario.name[:57]}-shrunk"
    identity = {"name": name, "seed": seed}
    items = compute_items(original, base)

    with open_pool(workers, scheduler) as pool:
        first = make_candidate(base_json, identity, compute_overrides(items, original, {}, base), small=small)
        assert first is not None, "the original scenario loaded, so its differences from the base load too"
        result = next(iter(pool.run_all([(first.model_dump_json(), seed)])))[1]
        if result.result is None:
            raise InvalidValueError(f"the original did not run: {result.error}", file=scenario)
        report = result.result["report"]
        status = compute_status(report, check)
        if status is None:
            raise InvalidValueError(f"{format_value(check)} is not a check of this run; its checks: "
                                    f"{', '.join(report['checks'])}", file="--check", value=check)
        if status not in FAILING:
            say(f"l2sim: shrink: check {check} is {status} on the original with seed {seed}: nothing to shrink")
            return False
        shrinker = Shrinker(pool=pool, base_json=base_json, identity=identity, small=small,
                            failure=Failure.of(report, check), seed=seed, limits=limits, say=say)
        shrinker.known[first.model_dump_json()] = True
        say(f"seed {seed}: {check} is {status} on the original; {len(items)} differences from the base")
        kept = minimise_items(shrinker, items, lambda subset: compute_overrides(subset, original, {}, base))
        edits, anything = minimise_numbers(shrinker, kept, original, base)

    final = compute_overrides(kept, original, edits, base)
    table: dict[str, Any] = {"name": name}
    if extends is not None:
        table["extends"] = extends
    table["seed"] = seed
    table["description"] = (f"{original_scenario.name} shrunk by l2sim shrink: still fails check {check} "
                            f"with seed {seed}{' (run with --small)' if small else ''}.")
    table = merge_tables(table, expand_dotted_keys(final, label="shrink"))
    small_flag = " --small" if small else ""
    header = (f"# l2sim shrink: {check} is still {status} with seed {seed}, and no other check fails that held.\n"
              f"# Reproduce with: l2sim run {out_path}{small_flag}\n")
    write_text_atomic(out_path, header + tomli_w.dumps(table))
    removed = [item for item in items if item not in kept]
    for item in removed:
        say(f"removed: {item.describe(original)}")
    for path in sorted(edits, key=str):
        if path not in anything:
            say(f"smaller: {_format_path(path)} = {format_value(edits[path])}")
    for path in anything:
        say(f"could be anything: {_format_path(path)} ({format_value(edits[path])} and the original "
            f"{format_value(_original_value(original, path))} both fail the same way)")
    for option in format_set_options(final):
        say(f"kept: {option.replace('=', ' = ', 1)}")
    if shrinker.stopped_at is not None:
        say(f"stopped at {shrinker.stopped_at}: the scenario written fails the same way, but a smaller one may "
            "exist (raise the bound to look further)")
    say(f"{shrinker.candidates} candidate{'' if shrinker.candidates == 1 else 's'} run in "
        f"{time.monotonic() - shrinker.started:.0f} s; "
        f"wrote {out_path}; reproduce with: l2sim run {out_path}{small_flag}")
    return True


def _original_value(original: Mapping[str, Any], path: tuple) -> Any:
    return original[path[0]] if len(path) == 1 else original[path[0]][path[1]][path[2]]


def _find_base(chain: list, out_path: str) -> tuple[list, str | None]:
    """The chain the shrunk file extends, and how it names the base (None: the schema's defaults)."""
    top = chain[0]
    if top.data.get("extends") is not None:
        parent = chain[1]
        if parent.identity.startswith("bundled:"):
            return chain[1:], parent.identity.removeprefix("bundled:")
        parent_path = parent.identity.removeprefix("file:")
        return chain[1:], os.path.relpath(parent_path, Path(out_path).resolve().parent)
    if top.identity.startswith("bundled:"):
        return chain, top.identity.removeprefix("bundled:")
    return [], None
