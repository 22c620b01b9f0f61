"""The runner: one scenario, end to end, from one seed.

Phases, on one virtual clock (heights stand still during the halt, time does not):

1. chain: validators run Tendermint over the simulated network on the real chain; actors
   submit transactions; the price glitch starts at its height; each validator compares the
   oracle's on-chain prices with its own reference feed and, once the deviation alarm has
   held for `detection.delay_blocks` (or at the operator's halt height), commits nothing
   past that height.
2. halt: nothing happens for `response.pause_s`.
3. emergency upgrade: every validator signs a view; the restore plan is voted like a block
   on the new fork; 2/3+ of the power signed is the rollback certificate. Each validator
   applies the plan and checks its root against the certificate's expected root.
4. restart: the new fork runs until the final chain reaches `chain.heights`; its first
   block carries the reconciliation and compensation ledgers.
5. checks over everything that happened; the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from chain.blocks import Block
from chain.exchange import (
    Compensated,
    Liquidated,
    decode_events,
    get_perps_totals,
)
from chain.execution import ExecutionResult, apply_block, build_block
from chain.history import History
from chain.restore import rollback
from chain.state import get_balance
from chain.store import MemoryStore, SQLiteStore, Store
from consensus.checks import check_agreement, check_no_double_sign
from consensus.emergency import (
    EmergencyError,
    NO_BAD_HEIGHT,
    PLAN_HEIGHT,
    HaltView,
    RestorePlan,
    RollbackCertificate,
    compute_target,
    get_plan_fork_id,
    is_price_deviation,
    sign_view,
    verify_rollback_certificate,
)
from consensus.forensics import find_culprits
from consensus.messages import (
    CommitCertificate,
    Proposal,
    ValidatorSet,
    is_signature_memo_enabled,
    set_signature_memo,
)
from consensus.network import CrashFault, LinkProfile, Partition, run_until, seconds_to_us
from consensus.sim import SimConfig, Simulation, Trace, build_network, create_simulation
from consensus.tendermint import TimeoutConfig
from scenarios.actors import World, build_world
from scenarios.inspect import start_saved_run
from scenarios.market import derive_seed
from scenarios.recovery import Recovery, compute_recovery
from scenarios.schema import Scenario
from validators.journal import Journal, MemoryJournal, SQLiteJournal
from validators.keys import ValidatorKey, derive_validator_keys
from validators.node import ChainApp, NodeView, PlanApp, make_block_decoder, make_node_kit

VIEW_WINDOW = 64  # heights of roots a halt view reports (bounded: a view is a small message)
VIEW_RESEND_S = 1.0
MAX_VIEW_SENDS = 3600
PLAN_TIMEOUTS = TimeoutConfig(propose_s=5.0, propose_delta_s=2.0, prevote_s=1.0, precommit_s=1.0, commit_s=0.5)
MAX_EVENTS_PER_PHASE = 2_000_000
MIN_RESTART_BLOCKS = 3
PLAN_MAX_WAIT_S = 600.0  # after the last partition heals, give up on a certificate (and say so)
VIEW_GATHER_S = 2.0  # views gossip this long before the first plan is proposed (as in wen_restart)


class RunFailed(AssertionError):
    """Raised when an internal invariant of a run breaks (a bug, not bad input)."""


@dataclass
class Node:
    """A validator during a run: key, journal, chain view, behaviour."""

    index: int
    behaviour: str
    key: ValidatorKey
    journal: Journal
    view: NodeView
    first_bad_height: int = NO_BAD_HEIGHT
    restored_root: bytes | None = None
    restore_error: str | None = None
    plan_certificate: CommitCertificate | None = None

    @property
    def is_honest(self) -> bool:
        return self.behaviour == "honest"


@dataclass
class Timeline:
    """When things happened: heights and virtual seconds."""

    entries: list[dict] = field(default_factory=list)

    def note(self, what: str, time_s: float, height: int | None = None, detail: str = "") -> None:
        self.entries.append({"event": what, "time_s": round(time_s, 3), "height": height, "detail": detail})


@dataclass
class Run:
    """Everything one run builds and records; the report is computed from it."""

    scenario: Scenario
    seed: int
    store: Store
    world: World
    validator_set: ValidatorSet
    nodes: list[Node]
    memo: bool
    cache: dict | None
    decoded: dict | None
    results: dict[int, ExecutionResult] = field(default_factory=dict)
    prices: dict[int, dict[int, int]] = field(default_factory=dict)
    liquidations: list[tuple[int, int, bytes]] = field(default_factory=list)  # (fork, height, account)
    timeline: Timeline = field(default_factory=Timeline)
    traces: list[tuple[str, Trace]] = field(default_factory=list)
    fork_id: int = 0
    stale_until_height: int = -1
    stale_prices: dict[int, int] = field(default_factory=dict)
    required_prefix: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    restart_transactions: dict[int, tuple] = field(default_factory=dict)
    recovery: Recovery | None = None
    plan: RestorePlan | None = None
    certificate: CommitCertificate | None = None
    halt_height: int | None = None
    detected_height: int | None = None
    first_bad_height: int | None = None
    recoveries: dict[tuple[int, int, bytes], Recovery] = field(default_factory=dict)
    progress: Callable[[str, int, float], None] | None = None
    candidates: dict[tuple, list] = field(default_factory=dict)
    snapshot_root_before_restore: bytes | None = None
    decided: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (fork, height) -> hash
    split_at: tuple[int, int] | None = None  # where two honest validators decided differently
    rejected_plans: dict[bytes, dict] = field(default_factory=dict)

    @property
    def honest(self) -> list[Node]:
        return [n for n in self.nodes if n.is_honest]

    @property
    def reference(self) -> Node:
        """The honest validator whose chain the report describes: of those that restored
        cleanly (before any restore, of all honest ones), the furthest ahead, lowest index first.
        Agreement makes every other honest chain a prefix of it."""
        restored = [n for n in self.honest if n.restored_root is not None and n.restore_error is None]
        return max(restored or self.honest, key=lambda n: (n.view.history.height, -n.index))


# ---------------------------------------------------------------- the mempool


class WorldMempool:
    """The actors' candidate transactions, shared by every proposer (gossip is instant)."""

    def __init__(self, run: Run):
        self.run = run

    def candidates_for(self, parent_height: int, parent_root: bytes):
        run = self.run
        world = run.world
        if world.index.height != parent_height:
            return []  # a lagging proposer: its block could never be the one decided
        key = (run.fork_id, parent_height, parent_root)
        if key not in run.candidates:
            height = parent_height + 1
            overrides = run.stale_prices if height <= run.stale_until_height else None
            txs = list(run.restart_transactions.get(height, ()))
            txs += world.transactions_for(parent_height, parent_root, price_overrides=overrides)
            run.candidates = {key: txs}
        return run.candidates[key]


# ---------------------------------------------------------------- setup


def _power(scenario: Scenario) -> tuple[int, ...]:
    count = scenario.validators.count
    return tuple(scenario.validators.power) if scenario.validators.power else (1,) * count


def prepare_run(scenario: Scenario, *, data_dir: str | None = None, memo: bool = True) -> Run:
    """Genesis, keys, journals and every validator's chain view; nothing runs yet."""
    seed = scenario.seed
    if data_dir is not None:
        start_saved_run(data_dir, scenario)  # a new or empty directory; the manifest goes first
        store: Store = SQLiteStore(Path(data_dir) / "chain.sqlite")
    else:
        store = MemoryStore()
    world = build_world(scenario, store, seed)
    count = scenario.validators.count
    keys = derive_validator_keys(derive_seed(seed, "validators") % (2**63), count)
    validator_set = ValidatorSet(tuple(k.public_key for k in keys), _power(scenario))
    behaviours = {b.index: b.behaviour for b in scenario.validators.byzantine}
    nodes = []
    for index, key in enumerate(keys):
        journal = (
            SQLiteJournal(Path(data_dir) / f"journal-{index}.sqlite") if data_dir else MemoryJournal()
        )
        history = History.create(store, world.genesis.header, view=f"validator-{index}")
        view = NodeView(index=index, address=key.address, history=history, fork_id=0)
        nodes.append(Node(index, behaviours.get(index, "honest"), key, journal, view))
    if not any(n.is_honest for n in nodes):
        raise RunFailed("a run needs at least one honest validator")
    return Run(
        scenario=scenario,
        seed=seed,
        store=store,
        world=world,
        validator_set=validator_set,
        nodes=nodes,
        memo=memo,
        cache={} if memo else None,
        decoded={} if memo else None,
    )


def _sim_config(run: Run, *, fork_id: int, start_height: int, start_s: float, timeouts: TimeoutConfig,
                label: str) -> SimConfig:
    scenario = run.scenario
    network = scenario.network
    return SimConfig(
        seed=derive_seed(run.seed, "network", label) % (2**63),
        fork_id=fork_id,
        start_height=start_height,
        target_height=10**9,
        topology=scenario.validators.topology,
        latency_ms=network.latency_ms,
        link=LinkProfile(jitter_ms=network.jitter_ms, drop_rate=network.drop_rate,
                         duplicate_rate=network.duplicate_rate),
        partitions=tuple(Partition(p.start_s, p.end_s, tuple(tuple(g) for g in p.groups))
                         for p in network.partitions),
        crashes=tuple(
            # A crash that is over before this phase starts is history; one still under way
            # keeps the node down from the phase's start until its restart.
            CrashFault(c.node, max(c.at_s, start_s), c.restart_s)
            for c in network.crashes
            if c.restart_s is None or c.restart_s > start_s
        ),
        byzantine=tuple((b.index, b.behaviour) for b in scenario.validators.byzantine),
        timeouts=timeouts,
        max_time_s=10**9,
        max_events=MAX_EVENTS_PER_PHASE,
        start_s=start_s,
    )


# ---------------------------------------------------------------- phase 1: the chain


def _on_commit(run: Run, node: Node, block: Block, result: ExecutionResult, now_s: float) -> None:
    height = block.height
    if node.is_honest:
        first = run.decided.setdefault((run.fork_id, height), block.hash)
        if first != block.hash and run.split_at is None:
            run.split_at = (run.fork_id, height)
            run.timeline.note("agreement broken", now_s, height, "two honest validators decided different blocks")
    world = run.world
    if height not in run.results or run.results[height] is not result:
        if world.index.height == height - 1 and node.is_honest:
            run.results[height] = result
            events = world.observe(block, result)
            run.prices[height] = dict(world.index.prices)
            run.liquidations += [(run.fork_id, height, e.account) for e in events if isinstance(e, Liquidated)]
            if run.progress:
                run.progress("chain" if run.fork_id == 0 else "restart", height, now_s)
    prices = run.prices.get(height)
    if prices is None or not node.is_honest:
        return
    detection = run.scenario.detection
    reference = world.reference_prices(height)
    deviates = any(is_price_deviation(prices.get(m, 0), reference[m], detection.deviation_bps) for m in reference)
    if deviates and node.first_bad_height == NO_BAD_HEIGHT and run.fork_id == 0:
        node.first_bad_height = height
        if run.first_bad_height is None:
            run.first_bad_height = height
            run.timeline.note("glitch on chain", now_s, height, "oracle price deviates from the reference feed")
    if node.view.halt_height is not None or run.fork_id != 0:
        return
    alarm = node.first_bad_height != NO_BAD_HEIGHT and height >= node.first_bad_height + detection.delay_blocks
    operator = detection.operator_halt_height is not None and height >= detection.operator_halt_height
    if alarm or operator:
        node.view.halt_height = height
        if run.detected_height is None:
            run.detected_height = height
            run.timeline.note("halt", now_s, height, "deviation alarm" if alarm else "operator halt")


def _make_chain_kit(run: Run, mempool: WorldMempool, clock: Callable[[], float]):
    decode = make_block_decoder(run.decoded)

    def make_kit(index: int):
        node = run.nodes[index]
        app = ChainApp(
            view=node.view,
            mempool=mempool,
            decode=decode,
            get_time_s=clock,
            on_commit=lambda i, block, result: _on_commit(run, run.nodes[i], block, result, clock()),
            cache=run.cache if node.is_honest else None,
            required_prefix=run.required_prefix,
        )
        return make_node_kit(app, node.key, node.journal)

    return make_kit


def _running_honest(run: Run, sim: Simulation) -> list[Node]:
    return [n for n in run.honest if sim.nodes[n.index].engine is not None]


def run_chain_phase(run: Run) -> float:
    """Phase 1: blocks until every honest validator halts or the chain reaches its height."""
    holder: list[Simulation] = []
    clock = lambda: holder[0].loop.now_us / 1e6 if holder else 0.0  # noqa: E731
    heights = run.scenario.chain.heights
    config = _sim_config(run, fork_id=0, start_height=1, start_s=0.0,
                         timeouts=TimeoutConfig(commit_s=run.scenario.chain.block_time_s), label="chain")
    sim = create_simulation(config, run.validator_set, _make_chain_kit(run, WorldMempool(run), clock))
    holder.append(sim)

    def is_done() -> bool:
        if run.split_at is not None:
            return True  # nothing sound can be built on a split chain: stop and convict
        running = _running_honest(run, sim)
        return bool(running) and all(
            (n.view.halt_height is not None and n.view.history.height >= n.view.halt_height)
            or n.view.history.height >= heights
            for n in running
        )

    result = run_until(sim.loop, sim._handle, config.max_events, until_s=heights * 60.0 + 3600.0,
                       stop=is_done)
    sim.trace.result = result
    run.traces.append(("chain", sim.trace))
    return sim.loop.now_us / 1e6


# ---------------------------------------------------------------- state sync


def sync_lagging_nodes(run: Run) -> None:
    """Honest nodes behind the reference copy its blocks, re-executing each (state sync)."""
    reference = max(run.honest, key=lambda n: (n.view.history.height, -n.index)).view.history
    for node in run.honest:
        align_history(run, node.view.history, reference)


def align_history(run: Run, history: History, reference: History) -> None:
    """Make `history` the reference's chain: keep the common prefix, re-execute the rest."""
    common = min(history.height, reference.height)
    while common > 0 and history.block_at(common).hash != reference.block_at(common).hash:
        common -= 1  # bounded by the height
    history.truncate_above(common)
    for height in range(common + 1, reference.height + 1):
        block = reference.block_at(height)
        apply_block(run.store, history.head.state_root, block, cache=run.cache)
        history.append(block)


# ---------------------------------------------------------------- phase 3: the plan


def _make_view(run: Run, node: Node) -> HaltView | None:
    history = node.view.history
    if node.behaviour in ("crash", "withhold"):
        return None
    start = max(0, history.height - VIEW_WINDOW)
    roots = tuple(history.root_at(h) for h in range(start, history.height + 1))
    first_bad = node.first_bad_height
    if node.behaviour == "wrong-root":
        roots = tuple(bytes(32) for _ in roots)
        first_bad = 1  # tries to drag everyone back to genesis
    view = HaltView(node.index, run.fork_id, history.height, first_bad, start, roots)
    return sign_view(node.key.private_key, view)


def _view_arrivals(run: Run, config: SimConfig, views: dict[int, HaltView], start_us: int) -> dict[tuple[int, int], int]:
    """When each view first reaches each validator: resent every second until it arrives."""
    network = build_network(config, run.validator_set.size)
    arrivals: dict[tuple[int, int], int] = {}
    for sender in sorted(views):
        for receiver in range(run.validator_set.size):
            if receiver == sender:
                arrivals[(sender, receiver)] = start_us
                continue
            for attempt in range(MAX_VIEW_SENDS):
                sent_us = start_us + seconds_to_us(attempt * VIEW_RESEND_S)
                times = network.plan_delivery_us(sender, receiver, sent_us)
                if times:
                    arrivals[(sender, receiver)] = min(times)
                    break
    return arrivals


def compute_plan_for(run: Run, node: Node, views: tuple[HaltView, ...]) -> RestorePlan:
    """The plan `node` computes from `views` and its own chain (the recovery is memoised)."""
    target = compute_target(views, run.validator_set)
    halt = node.view.history.height
    if not target.height < halt:
        raise EmergencyError(f"validator {node.index} holds no block past the target {target.height}")
    # Keyed by the chain it is computed from: a validator on another chain never shares it.
    key = (target.height, halt, node.view.history.head.hash)
    recovery = run.recoveries.get(key)
    if recovery is None:
        recovery = compute_recovery(
            store=run.store,
            history=node.view.history,
            world=run.world,
            results=run.results,
            target_height=target.height,
            halt_height=halt,
            mode=run.scenario.response.mode,
            policy=run.scenario.response.withdrawal_policy,
            old_fork_id=run.fork_id,
            new_fork_id=run.fork_id + 1,
            finality_blocks=run.scenario.chain.finality_blocks,
            pause_blocks=int(run.scenario.response.pause_s / run.scenario.chain.block_time_s),
        )
        run.recoveries[key] = recovery
    return RestorePlan(
        old_fork_id=run.fork_id,
        new_fork_id=run.fork_id + 1,
        halt_height=halt,
        target_height=target.height,
        snapshot_root=recovery.snapshot_root,
        mode=recovery.mode,
        surgery_digest=recovery.surgery_digest,
        replay_digest=recovery.replay_digest,
        compensation_digest=recovery.compensation_digest,
        reconciliation_digest=recovery.reconciliation_digest,
        expected_root=recovery.expected_root,
        views=tuple(sorted(views, key=lambda v: v.validator)),
    )


def run_plan_phase(run: Run, start_s: float) -> float:
    """Phase 3: views, the plan voted like a block, the rollback certificate."""
    views = {n.index: v for n in run.nodes if (v := _make_view(run, n)) is not None}
    holder: list[Simulation] = []
    new_fork = run.fork_id + 1
    config = _sim_config(run, fork_id=get_plan_fork_id(new_fork), start_height=PLAN_HEIGHT, start_s=start_s + VIEW_GATHER_S,
                         timeouts=PLAN_TIMEOUTS, label="plan")
    view_config = _sim_config(run, fork_id=new_fork, start_height=PLAN_HEIGHT, start_s=start_s,
                              timeouts=PLAN_TIMEOUTS, label="views")
    arrivals = _view_arrivals(run, view_config, views, seconds_to_us(start_s))
    run.timeline.note("views exchanged", start_s, None, f"{len(views)} signed halt views")

    def known_views(index: int) -> tuple[HaltView, ...]:
        now_us = holder[0].loop.now_us if holder else seconds_to_us(start_s + VIEW_GATHER_S)
        return tuple(v for sender, v in sorted(views.items())
                     if arrivals.get((sender, index), 1 << 62) <= now_us)

    def on_certificate(index: int, plan: RestorePlan, certificate: CommitCertificate) -> None:
        node = run.nodes[index]
        node.plan_certificate = certificate
        if run.plan is None and node.is_honest:
            run.plan, run.certificate = plan, certificate
            # holder is empty when a validator with 2/3 of the power decides alone, while the
            # simulation is created (at its start time)
            now_s = holder[0].loop.now_us / 1e6 if holder else start_s + VIEW_GATHER_S
            run.timeline.note("rollback certificate", now_s, plan.target_height,
                              f"plan 0x{plan.hash.hex()[:16]} signed by {len(certificate.votes)} validators")

    def make_kit(index: int):
        node = run.nodes[index]
        app = PlanApp(
            view=node.view,
            validator_set=run.validator_set,
            known_views=lambda i=index: known_views(i),
            compute_plan=lambda vs, n=node: compute_plan_for(run, n, vs),
            on_certificate=on_certificate,
        )
        return make_node_kit(app, node.key, node.journal)

    sim = create_simulation(config, run.validator_set, make_kit)
    holder.append(sim)

    def is_done() -> bool:
        running = _running_honest(run, sim)
        return bool(running) and all(n.plan_certificate is not None for n in running)

    last_heal = max([p.end_s for p in run.scenario.network.partitions] + [start_s])
    result = run_until(sim.loop, sim._handle, MAX_EVENTS_PER_PHASE, until_s=last_heal + PLAN_MAX_WAIT_S, stop=is_done)
    sim.trace.result = result
    run.traces.append(("plan", sim.trace))
    proposers = {m.block_hash: m.proposer for m in sim.trace.messages if isinstance(m, Proposal)}
    for node in run.honest:
        for plan_hash, reason in sim.nodes[node.index].kit.app.rejections:
            entry = run.rejected_plans.setdefault(plan_hash, {"proposer": proposers.get(plan_hash),
                                                              "reason": reason, "rejected_by": []})
            if node.index not in entry["rejected_by"]:
                entry["rejected_by"].append(node.index)
    for plan_hash, entry in sorted(run.rejected_plans.items(), key=lambda item: str(item[1]["proposer"])):
        run.timeline.note("plan rejected", start_s, None,
                          f"proposer {entry['proposer']}: {entry['reason']} (by {entry['rejected_by']})")
    return sim.loop.now_us / 1e6


# ---------------------------------------------------------------- phase 4: restore


def apply_plan(run: Run, node: Node, plan: RestorePlan, recovery: Recovery) -> None:
    """Apply the certified plan on `node`'s own chain; check the root before it votes again."""
    history = node.view.history
    if plan.mode in ("full-rollback", "rollback-replay"):
        rollback(history, plan.target_height)
    if recovery.restore_block is not None:
        try:
            apply_block(run.store, history.head.state_root, recovery.restore_block, cache=run.cache)
            history.append(recovery.restore_block)
        except Exception as error:  # noqa: BLE001 — reported, the node stays halted
            node.restore_error = f"restore block does not apply: {error}"
            return
    node.restored_root = history.head.state_root
    if node.restored_root != plan.expected_root:
        node.restore_error = (
            f"restored root 0x{node.restored_root.hex()} != certificate's expected 0x{plan.expected_root.hex()}"
        )


def restore_all(run: Run, now_s: float) -> None:
    """Phase 4 on every honest validator that holds the certificate."""
    plan = run.plan
    assert plan is not None
    reference = run.reference.view.history
    mine = compute_plan_for(run, run.reference, plan.views)  # memoised if it voted
    assert mine.hash == plan.hash, "the reference validator's own plan differs from the certified one"
    recovery = run.recoveries[(plan.target_height, plan.halt_height, reference.head.hash)]
    run.recovery = recovery
    run.snapshot_root_before_restore = run.reference.view.history.root_at(plan.target_height)
    for node in run.honest:
        if node.plan_certificate is None:
            # Down or cut off while the plan was voted: a peer hands it the certificate, which
            # it verifies from its own contents before applying anything (state sync).
            verify_plan_certificate(run)
            node.plan_certificate = run.certificate
        apply_plan(run, node, plan, recovery)
    for node in run.nodes:
        if not node.is_honest and node.behaviour != "crash":
            align_history(run, node.view.history, run.reference.view.history)
    run.timeline.note("restore", now_s, recovery.base_height, plan.mode)
    world = run.world
    if plan.mode in ("full-rollback", "rollback-replay"):
        world.rewind(plan.target_height)
        for height in [h for h in run.results if h > plan.target_height]:
            del run.results[height]
    if recovery.restore_block is not None:
        parent_root = run.reference.view.history.header_at(recovery.base_height).state_root
        result = apply_block(run.store, parent_root, recovery.restore_block, cache=run.cache)
        world.observe(recovery.restore_block, result)
        run.results[recovery.restore_block.height] = result
        run.prices[recovery.restore_block.height] = dict(world.index.prices)
        if recovery.surgery:
            world.resync_accounts(result.state_root, [e.account for e in recovery.surgery])
    run.fork_id = plan.new_fork_id
    world.set_fork(plan.new_fork_id)
    world.set_price_offset(recovery.price_offset)
    for node in run.nodes:
        node.view.fork_id = plan.new_fork_id
        node.view.halt_height = None
    run.required_prefix[recovery.restart_height] = tuple(tx.hash for tx in recovery.restart_transactions)
    run.restart_transactions[recovery.restart_height] = recovery.restart_transactions
    stale = run.scenario.oracle.stale_after_restart_blocks
    if stale:
        run.stale_until_height = recovery.restart_height + stale - 1
        run.stale_prices = dict(run.prices.get(plan.target_height, world.index.prices))


# ---------------------------------------------------------------- phase 5: restart


def run_restart_phase(run: Run, start_s: float) -> float:
    """Phase 5: the new fork runs until the final chain reaches `chain.heights`."""
    holder: list[Simulation] = []
    clock = lambda: holder[0].loop.now_us / 1e6 if holder else start_s  # noqa: E731
    mempool = WorldMempool(run)
    healthy = [n for n in run.honest if n.restore_error is None and n.restored_root is not None]
    start_height = run.reference.view.history.height + 1
    goal = max(run.scenario.chain.heights, start_height + MIN_RESTART_BLOCKS - 1)
    config = _sim_config(run, fork_id=run.fork_id, start_height=start_height, start_s=start_s,
                         timeouts=TimeoutConfig(commit_s=run.scenario.chain.block_time_s), label="restart")
    make_kit = _make_chain_kit(run, mempool, clock)
    sim = create_simulation(config, run.validator_set, make_kit)
    holder.append(sim)
    run.timeline.note("restart", start_s, start_height, f"fork {run.fork_id}")

    def is_done() -> bool:
        running = [n for n in healthy if sim.nodes[n.index].engine is not None]
        return bool(running) and all(n.view.history.height >= goal for n in running)

    result = run_until(sim.loop, sim._handle, MAX_EVENTS_PER_PHASE,
                       until_s=start_s + (goal - start_height + 1) * 60.0 + 3600.0, stop=is_done)
    sim.trace.result = result
    run.traces.append(("restart", sim.trace))
    return sim.loop.now_us / 1e6


# ---------------------------------------------------------------- the whole run


def execute_run(run: Run) -> float:
    """Run every phase; returns the virtual time at the end."""
    now_s = run_chain_phase(run)
    if run.split_at is not None or not _has_agreement(run):
        return now_s  # no restore on a split chain; the report convicts the culprits
    if run.detected_height is None:
        return now_s
    sync_lagging_nodes(run)  # a validator that was down or cut off catches up first
    run.halt_height = run.reference.view.history.height
    if run.progress:
        run.progress("halted", run.halt_height, now_s)
    resume_s = now_s + run.scenario.response.pause_s
    run.timeline.note("pause ends", resume_s, run.halt_height, f"{run.scenario.response.pause_s:.0f} s halted")
    now_s = run_plan_phase(run, resume_s)
    if run.plan is None:
        run.timeline.note("no certificate", now_s, None,
                          f"no plan gathered 2/3 of the power within {PLAN_MAX_WAIT_S:.0f} s of the last heal")
        return now_s
    restore_all(run, now_s)
    if run.progress:
        run.progress("restored", run.reference.view.history.height, now_s)
    return run_restart_phase(run, now_s)


def _has_agreement(run: Run) -> bool:
    return all(check_agreement(trace).ok for _, trace in run.traces)


def collect_certificates(run: Run) -> list[CommitCertificate]:
    """Every commit certificate any node decided, across phases."""
    return [d.certificate for _, trace in run.traces for d in trace.decisions]


def run_forensics(run: Run):
    """Culprits with evidence from every signed message seen in the run."""
    messages = [m for _, trace in run.traces for m in trace.messages]
    return find_culprits(messages, run.validator_set, collect_certificates(run))


def verify_plan_certificate(run: Run) -> int:
    """Verify the rollback certificate from its own contents; the power that signed it."""
    assert run.plan is not None and run.certificate is not None
    return verify_rollback_certificate(RollbackCertificate(run.plan, run.certificate), run.validator_set)


def total_supply(run: Run, root: bytes) -> int:
    """Native tokens held by every account the run knows (none are ever minted or burnt)."""
    world = run.world
    addresses = set(world.market.all_addresses) | {world.market.owner}
    addresses |= {world.market.addresses.oracle, world.market.addresses.perps, world.market.addresses.bridge}
    return sum(get_balance(run.store, root, a) for a in sorted(addresses))


def perps_identities(run: Run, root: bytes) -> tuple[bool, str]:
    """The exchange's two conservation identities at `root`."""
    totals = get_perps_totals(run.store, root, run.world.market.addresses)
    balance = get_balance(run.store, root, run.world.market.addresses.perps)
    first = balance == totals.total_collateral + totals.vault + totals.fees_accrued
    return first, (f"balance {balance}, collateral {totals.total_collateral} + vault {totals.vault} "
                   f"+ fees {totals.fees_accrued}")


def compensation_paid(run: Run) -> int:
    """Sum of Compensated events on the final chain after the restart."""
    if run.recovery is None:
        return 0
    paid = 0
    for height, result in sorted(run.results.items()):
        if height >= run.recovery.restart_height:
            paid += sum(e.amount for e in decode_events(run.world.market.addresses, result.receipts)
                        if isinstance(e, Compensated))
    return paid


def replay_rejections(run: Run) -> tuple[int, int]:
    """(rejected, tried): the discarded window's signed transactions against the final head."""
    if run.recovery is None:
        return 0, 0
    head = run.reference.view.history.head
    txs = run.recovery.discarded_transactions
    built = build_block(run.store, head, txs, proposer=head.proposer, timestamp=head.timestamp + 1,
                        fork_id=head.fork_id)
    return len(built.rejected), len(txs)


def run_scenario_once(scenario: Scenario, *, data_dir: str | None = None, memo: bool = True,
                      progress: Callable[[str, int, float], None] | None = None) -> tuple[Run, float, float]:
    """Prepare and execute a run; returns (run, virtual seconds, wall seconds).

    `memo=False` turns off both memos (execution across honest validators, signature checks):
    the report must be byte-identical either way.
    """
    started = time.perf_counter()
    memo_was = is_signature_memo_enabled()
    set_signature_memo(memo)  # execution and signature memos go together: both must be invisible
    try:
        run = prepare_run(scenario, data_dir=data_dir, memo=memo)
        run.progress = progress
        virtual_s = execute_run(run)
    finally:
        set_signature_memo(memo_was)
    return run, virtual_s, time.perf_counter() - started
