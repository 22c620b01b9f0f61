"""The runner: one scenario, end to end, from one seed.

It wires phases on one virtual clock (heights stand still during the halt, time does not)
and records what happened; every decision inside a phase is a validator's own, made from
what that validator holds (see `consensus.emergency` and `validators.node`):

1. chain: validators run Tendermint over the simulated network on the real chain; actors
   submit transactions; each validator runs its own deviation alarm after every commit
   and halts when it fires.
2. halt: nothing happens for `response.pause_s`.
3. emergency upgrade: every validator gossips its signed view, syncs certified blocks it
   lacks, and votes on a restore plan like a block; a validator that decides the plan
   applies it to its own chain and checks its root against the certificate.
4. restart: the new fork runs until the final chain reaches `chain.heights`; its first
   block carries the reconciliation and compensation ledgers each validator certified.
5. the record (`Run`), which `scenarios.report` judges.

Each phase takes the setup and returns a frozen result. Who is honest is known here only
to the checks and the report, which judge the run afterwards.
"""

from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from chain.blocks import Block
from chain.exchange import (
    Compensated,
    Liquidated,
    decode_events,
    get_funding_index,
    get_mark_price,
    get_open_interest,
    get_price,
    get_vault_balance,
)
from chain.execution import ExecutionResult, apply_block
from chain.history import History
from chain.restore import rollback
from chain.state import get_balance
from chain.store import MemoryStore, SQLiteStore, Store
from consensus.emergency import (
    PLAN_HEIGHT,
    Alarm,
    EmergencyEngine,
    EmergencyError,
    HaltView,
    RestorePlan,
    ViewConflict,
    compute_target,
    get_plan_fork_id,
    sign_view,
)
from consensus.forensics import find_culprits
from consensus.messages import (
    CommitCertificate,
    Proposal,
    ValidatorSet,
    is_signature_memo_enabled,
    set_signature_memo,
)
from consensus.network import CrashFault, LinkProfile, Partition
from consensus.sim import SimConfig, Simulation, Trace, create_simulation
from consensus.tendermint import TimeoutConfig
from scenarios.actors import World, build_world
from scenarios.audit_replay import BackgroundReplay, open_background_replay
from scenarios.seeds import get_network_seed, get_validator_keys
from scenarios.recovery import (
    ExchangeSetup,
    Recovery,
    ReopeningAudit,
    compute_recovery,
    compute_reopening,
    compute_reopening_audit,
)
from scenarios.errors import RunFailed
from scenarios.events import EventLog
from scenarios.inspect import get_view_name, start_saved_run
from scenarios.schema import MARKETS, Scenario
from validators.behaviours import Honest, get_behaviour
from validators.journal import Journal, MemoryJournal, SQLiteJournal
from validators.keys import ValidatorKey
from validators.node import ChainApp, NodeChain, NodeView, PlanApp, make_block_decoder, make_node_kit

PLAN_TIMEOUTS = TimeoutConfig(propose_s=5.0, propose_delta_s=2.0, prevote_s=1.0, precommit_s=1.0, commit_s=0.5)
MAX_EVENTS_PER_PHASE = 2_000_000
MIN_RESTART_BLOCKS = 3
PLAN_MAX_WAIT_S = 600.0  # after the last fault ends, give up on a certificate (and say so)
# The vote waits for a partition to heal or a crashed validator to restart at most this long
# after it starts; a fault that lasts longer outlasts the run, which ends without waiting.
MAX_FAULT_WAIT_S = 86_400.0


# ---------------------------------------------------------------- setup


@dataclass
class Node:
    """A validator during a run: its key, journal, behaviour and own chain view."""

    index: int
    behaviour: str
    key: ValidatorKey
    journal: Journal
    view: NodeView
    recovery: Recovery | None = None  # what it computed for the plan it applied
    audit: ReopeningAudit | None = None  # its post-reopening audit, once trading opened

    @property
    def is_honest(self) -> bool:
        """For judging the run only: no decision inside a phase reads it."""
        return self.behaviour == "honest"


@dataclass(frozen=True)
class RunSetup:
    """Everything fixed before a run starts: scenario, genesis, keys, validators, memos."""

    scenario: Scenario
    seed: int
    store: Store
    world: World
    validator_set: ValidatorSet
    nodes: tuple[Node, ...]
    exchange: ExchangeSetup
    memo: bool
    cache: dict | None
    decoded: dict | None
    recoveries: dict = field(default_factory=dict)  # memo: (chain head, target, mode) -> Recovery


@dataclass
class Recorder:
    """What the harness observes while phases run (the public chain, as the actors see it)."""

    results: dict[bytes, ExecutionResult] = field(default_factory=dict)  # block hash -> result
    prices: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)  # (fork, height) -> on-chain
    series: dict[tuple[int, int], dict] = field(default_factory=dict)  # (fork, height) -> what the market showed
    liquidations: list[tuple[int, int, bytes]] = field(default_factory=list)  # (fork, height, account)
    timeline: list[dict] = field(default_factory=list)
    decided: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (fork, height) -> first block hash
    split_at: tuple[int, int] | None = None
    progress: Callable[[str, int, float], None] | None = None
    first_bad_height: int | None = None
    detected_height: int | None = None
    events: EventLog | None = None  # recorded for `--events`/`--html`; never read by the run
    _alarmed: set[int] = field(default_factory=set)
    _halted: set[int] = field(default_factory=set)

    def emit(self, kind: str, t_s: float, fork: int, height: int | None, **fields: object) -> None:
        """One event of the log, when a log is kept."""
        if self.events is not None:
            self.events.emit(kind, t_s=t_s, fork=fork, height=height, **fields)

    def get_observer(self):
        """The consensus simulation's observer hook, or None when nothing is recorded."""
        return self.events.make_observer() if self.events is not None else None

    def note(self, what: str, time_s: float, height: int | None = None, detail: str = "") -> None:
        self.timeline.append({"event": what, "time_s": round(time_s, 3), "height": height, "detail": detail})


def _power(scenario: Scenario) -> tuple[int, ...]:
    count = scenario.validators.count
    return tuple(scenario.validators.power) if scenario.validators.power else (1,) * count


def _make_market_reader(store: Store, exchange: ExchangeSetup, get, memo: dict | None):
    """root -> {market: get(store, root, addresses, market)} there, e.g. the oracle's prices
    (a pure function of the root; memoised when `memo`)."""

    def read(root: bytes) -> dict[int, int]:
        if memo is not None and root in memo:
            return memo[root]
        values = {m: get(store, root, exchange.addresses, m) for m in exchange.markets}
        if memo is not None:
            memo[root] = values
        return values

    return read


def prepare_run(scenario: Scenario, *, data_dir: str | None = None, memo: bool = True) -> RunSetup:
    """Genesis, keys, journals and every validator's chain view; nothing runs yet."""
    seed = scenario.seed
    if data_dir is not None:
        start_saved_run(data_dir, scenario)  # a new or empty directory; the manifest goes first
        store: Store = SQLiteStore(Path(data_dir) / "chain.sqlite")
    else:
        store = MemoryStore()
    world = build_world(scenario, store, seed)
    market = world.market
    detection = scenario.detection
    exchange = ExchangeSetup(market.addresses, market.markets, market.owner_key, market.reporter.key,
                             detection.deviation_bps)
    count = scenario.validators.count
    keys = get_validator_keys(seed, count)
    validator_set = ValidatorSet(tuple(k.public_key for k in keys), _power(scenario))
    behaviours = {b.index: b.behaviour for b in scenario.validators.byzantine}
    read_prices = _make_market_reader(store, exchange, get_price, {} if memo else None)
    read_funding = _make_market_reader(store, exchange, get_funding_index, {} if memo else None)
    nodes = []
    for index, key in enumerate(keys):
        journal = (
            SQLiteJournal(Path(data_dir) / f"journal-{index}.sqlite") if data_dir else MemoryJournal()
        )
        history = History.create(store, world.genesis.header, view=get_view_name(index))
        alarm = Alarm(detection.deviation_bps, detection.delay_blocks, detection.operator_halt_height)
        view = NodeView(index=index, address=key.address, history=history, fork_id=0,
                        feed=world.reference_prices, read_prices=read_prices, alarm=alarm,
                        read_funding=read_funding, expected_funding=read_funding(history.root_at(0)))
        nodes.append(Node(index, behaviours.get(index, "honest"), key, journal, view))
    if not any(n.is_honest for n in nodes):
        raise RunFailed("a run needs at least one honest validator", seed=seed)
    return RunSetup(scenario, seed, store, world, validator_set, tuple(nodes), exchange, memo,
                    {} if memo else None, {} if memo else None)


def _sim_config(setup: RunSetup, *, fork_id: int, start_height: int, start_s: float, timeouts: TimeoutConfig,
                label: str) -> SimConfig:
    scenario = setup.scenario
    network = scenario.network
    return SimConfig(
        seed=get_network_seed(setup.seed, label),
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


def _is_running(sim: Simulation, index: int) -> bool:
    return sim.nodes[index].engine is not None


def _on_changes(sim: Simulation, predicate: Callable[[], bool]) -> Callable[[], bool]:
    """`predicate` over the nodes, asked again only when a commit, crash or restart happened
    since (`sim.changes` moved): a stop predicate runs after every event, and a pass over
    every validator per event would cost a count-squared per message."""
    looked = [(-1, False)]  # (sim.changes, answer) when last asked

    def ask() -> bool:
        if looked[0][0] != sim.changes:
            looked[0] = (sim.changes, predicate())
        return looked[0][1]

    return ask


# ---------------------------------------------------------------- the mempool


class WorldMempool:
    """The actors' candidate transactions, shared by every proposer (gossip is instant)."""

    def __init__(self, world: World, fork_id: int, stale_until_height: int = -1,
                 stale_prices: dict[int, int] | None = None):
        self.world = world
        self.fork_id = fork_id
        self.stale_until_height = stale_until_height
        self.stale_prices = stale_prices or {}
        self._candidates: dict[tuple, list] = {}

    def candidates_for(self, parent_height: int, parent_root: bytes):
        world = self.world
        if world.index.height != parent_height:
            return []  # a lagging proposer: its block could never be the one decided
        key = (self.fork_id, parent_height, parent_root)
        if key not in self._candidates:
            height = parent_height + 1
            overrides = self.stale_prices if height <= self.stale_until_height else None
            self._candidates = {key: world.transactions_for(parent_height, parent_root, price_overrides=overrides)}
        return self._candidates[key]


# ---------------------------------------------------------------- phase 1 and 4: blocks


@dataclass(frozen=True)
class BlocksPhase:
    """A phase that commits blocks (the first fork, or the restart): its trace and end."""

    label: str
    fork_id: int
    trace: Trace
    start_s: float
    end_s: float
    goal_height: int
    outlasting: tuple[str, ...] = ()  # faults still under way when it stopped short of its goal, in words


def _observe_commit(setup: RunSetup, rec: Recorder, node: Node, block: Block, result: ExecutionResult,
                    now_s: float, phase: str, replay: BackgroundReplay | None = None) -> None:
    """The harness's record of a commit: the first block certified at each (fork, height) is
    the public chain the actors follow (and the one the audit's background replay is sent);
    a second one is a split."""
    fork, height = block.header.fork_id, block.height
    first = rec.decided.setdefault((fork, height), block.hash)
    if replay is not None and first == block.hash:
        replay.feed(block)
    if first != block.hash and rec.split_at is None:
        rec.split_at = (fork, height)
        rec.note("agreement broken", now_s, height, "two certified blocks at the same height")
    world = setup.world
    if first == block.hash and block.hash not in rec.results and world.index.height == height - 1 \
            and world.fork_id == fork:
        rec.results[block.hash] = result
        events = world.observe(block, result)
        rec.prices[(fork, height)] = dict(world.index.prices)
        rec.liquidations += [(fork, height, e.account) for e in events if isinstance(e, Liquidated)]
        rec.series[(fork, height)] = _read_series(setup, block, result, events, rec.prices[(fork, height)])
        _emit_commit(setup, rec, block, result, events, now_s)
        if rec.progress:
            rec.progress(phase, height, now_s)
    _install_reopening_audit(setup, rec, node, block, now_s, replay)
    alarm = node.view.alarm
    if alarm is None or fork != node.view.alarm_fork_id:
        return
    if alarm.first_bad_height and node.index not in rec._alarmed:
        rec._alarmed.add(node.index)
        reason = describe_alarm(alarm)
        rec.emit("alarm", now_s, fork, alarm.first_bad_height, validator=node.index, reason=reason)
        if rec.first_bad_height is None:
            rec.first_bad_height = alarm.first_bad_height
            rec.note("glitch on chain", now_s, alarm.first_bad_height, f"validator {node.index}: {reason}")
    if alarm.halt_height is not None and node.index not in rec._halted:
        rec._halted.add(node.index)
        reason = "deviation alarm" if alarm.first_bad_height else "operator halt"
        rec.emit("halt", now_s, fork, alarm.halt_height, validator=node.index, reason=reason)
        if rec.detected_height is None:
            rec.detected_height = alarm.halt_height
            rec.note("halt", now_s, alarm.halt_height, f"validator {node.index}: {reason}")


def describe_alarm(alarm: Alarm) -> str:
    """Why a validator's alarm fired, naming the markets: `oracle price of BTC-USD deviates from its own feed`."""
    reasons = []
    if alarm.deviating_markets:
        reasons.append(f"oracle price of {', '.join(MARKETS[m] for m in alarm.deviating_markets)} deviates from "
                       "its own feed")
    if alarm.deviating_funding:
        reasons.append(f"funding index of {', '.join(MARKETS[m] for m in alarm.deviating_funding)} deviates from "
                       "the one it computes")
    return "; ".join(reasons)


def _read_series(setup: RunSetup, block: Block, result: ExecutionResult, events: tuple,
                 onchain: dict[int, int]) -> dict:
    """One point of the per-fork series: prices on chain and outside, liquidations, open
    interest and the vault, at the block's root."""
    exchange, root = setup.exchange, result.state_root
    reference = setup.world.reference_prices(block.height)
    return {
        "onchain": {MARKETS[m]: onchain.get(m, 0) for m in exchange.markets},
        "reference": {MARKETS[m]: reference[m] for m in exchange.markets},
        "liquidations": sum(isinstance(e, Liquidated) for e in events),
        "open_interest": {MARKETS[m]: list(get_open_interest(setup.store, root, exchange.addresses, m))
                          for m in exchange.markets},
        "vault": get_vault_balance(setup.store, root, exchange.addresses),
    }


def _emit_commit(setup: RunSetup, rec: Recorder, block: Block, result: ExecutionResult, events: tuple,
                 now_s: float) -> None:
    if rec.events is None:
        return
    fork, height = block.header.fork_id, block.height
    proposer = next((n.index for n in setup.nodes if n.key.address == block.header.proposer), None)
    rec.emit("commit", now_s, fork, height, block_hash=block.hash, state_root=result.state_root,
             proposer=proposer, txs=len(block.transactions))
    reference = setup.world.reference_prices(height)
    onchain = rec.prices[(fork, height)]
    addresses = setup.exchange.addresses
    for market in sorted(reference):  # the mark and the funding index are read (views), never written
        rec.emit("price", now_s, fork, height, market=MARKETS[market], onchain=onchain.get(market, 0),
                 reference=reference[market], mark=get_mark_price(setup.store, result.state_root, addresses, market),
                 funding_index=get_funding_index(setup.store, result.state_root, addresses, market))
    for e in events:
        if isinstance(e, Liquidated):
            rec.emit("liquidation", now_s, fork, height, account=e.account, market=MARKETS[e.market], price=e.price)


def _install_reopening_audit(setup: RunSetup, rec: Recorder, node: Node, block: Block, now_s: float,
                             replay: BackgroundReplay | None) -> None:
    """Once `node` commits the block before trading opens, it audits the reopening from its own
    chain and its next block must start with the planned calls and then the audit's payments
    (memoised by chain head: nodes on one chain compute it once; the band-on replay is the
    background one's when that replayed exactly the blocks `node` holds)."""
    recovery = node.recovery
    if (recovery is None or recovery.audit_height is None or node.audit is not None
            or block.height != recovery.audit_height - 1 or block.header.fork_id != node.view.fork_id
            or node.view.history.head.hash != block.hash):
        return
    key = ("audit", block.hash)
    audit = setup.recoveries.get(key)
    if audit is None:
        banded_head = replay.take_head(node.view.history) if replay is not None else None
        audit = compute_reopening_audit(setup.store, node.view.history, setup.exchange, recovery,
                                        compute_reopening(setup.scenario).audit_band_bps, cache=setup.cache,
                                        banded_head=banded_head)
        setup.recoveries[key] = audit
        for entry in sorted(audit.entries, key=lambda e: (-e.amount, e.account)):
            rec.emit("compensation", now_s, block.header.fork_id, audit.height, account=entry.account,
                     amount=entry.amount, reason=entry.reason)
    node.audit = audit
    planned = recovery.restart_ledger.get(audit.height, ())
    node.view.restart_ledger = {**node.view.restart_ledger, audit.height: planned + audit.transactions}


def _make_chain_kit(setup: RunSetup, rec: Recorder, mempool: WorldMempool, sim_box: list, phase: str,
                    start_s: float, replay: BackgroundReplay | None = None):
    decode = make_block_decoder(setup.decoded)

    def now_s() -> float:
        return sim_box[0].now_s if sim_box else start_s

    def make_kit(index: int):
        node = setup.nodes[index]
        app = ChainApp(
            view=node.view,
            mempool=mempool,
            decode=decode,
            get_time_s=now_s,
            on_commit=lambda i, block, result: _observe_commit(setup, rec, setup.nodes[i], block, result,
                                                               now_s(), phase, replay),
            cache=setup.cache,
        )
        return make_node_kit(app, node.key, node.journal)

    return make_kit


def run_chain_phase(setup: RunSetup, rec: Recorder) -> BlocksPhase:
    """Phase 1: blocks until every running validator has halted or the chain reached its height."""
    heights = setup.scenario.chain.heights
    config = _sim_config(setup, fork_id=0, start_height=1, start_s=0.0,
                         timeouts=TimeoutConfig(commit_s=setup.scenario.chain.block_time_s), label="chain")
    box: list[Simulation] = []
    sim = create_simulation(config, setup.validator_set,
                            _make_chain_kit(setup, rec, WorldMempool(setup.world, 0), box, "chain", 0.0),
                            observer=rec.get_observer())
    box.append(sim)

    def is_every_node_done() -> bool:
        running = [n for n in setup.nodes if _is_running(sim, n.index)]
        return bool(running) and all(
            (n.view.halt_height is not None and n.view.history.height >= n.view.halt_height)
            or n.view.history.height >= heights
            for n in running
        )

    is_nodes_done = _on_changes(sim, is_every_node_done)
    split_seen_s: list[float] = []

    def is_done() -> bool:
        if rec.split_at is not None:
            # Nothing sound can be built on a split chain: stop and convict, once every
            # running validator has decided the split height (or a block time has passed),
            # so the record holds each side's decision, not only the first two seen.
            if not split_seen_s:
                split_seen_s.append(sim.now_s)
            height = rec.split_at[1]
            return sim.now_s >= split_seen_s[0] + setup.scenario.chain.block_time_s or all(
                node.committed_height >= height for node in sim.nodes if node.engine is not None)
        return is_nodes_done()

    sim.run_until(until_s=heights * 60.0 + 3600.0, stop=is_done, max_events=config.max_events)
    return BlocksPhase("chain", 0, sim.trace, 0.0, sim.now_s, heights,
                       () if is_done() else describe_faults_outlasting(config, 0.0, sim.now_s))


# ---------------------------------------------------------------- phase 3: the emergency upgrade


@dataclass(frozen=True)
class EmergencyPhase:
    """The plan vote: its trace, the certified plan (if any) and what each validator did."""

    trace: Trace
    start_s: float
    end_s: float
    old_fork_id: int
    new_fork_id: int
    plan: RestorePlan | None
    certificate: CommitCertificate | None
    rejected_plans: dict[bytes, dict]
    view_conflicts: tuple[ViewConflict, ...]  # signed views that contradict a certified header
    views_rejected: int
    outlasting: tuple[str, ...] = ()  # faults that had not ended when the vote stopped waiting, in words


def compute_plan_for(setup: RunSetup, node: Node, views: tuple[HaltView, ...]) -> RestorePlan:
    """The plan `node` computes from `views` and its own chain (the recovery is memoised by
    the chain it is computed from: a validator on another chain never shares it)."""
    view = node.view
    old_fork = view.fork_id
    target = compute_target(views, setup.validator_set, old_fork)
    history = view.history
    halt = history.height
    if not target.height < halt:
        raise EmergencyError(f"validator {node.index} holds no block past the target {target.height}")
    recovery = get_recovery(setup, node, target.height)
    return RestorePlan(
        old_fork_id=old_fork,
        new_fork_id=old_fork + 1,
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


def get_recovery(setup: RunSetup, node: Node, target_height: int) -> Recovery:
    """What restoring `node`'s own chain to `target_height` gives (memoised by its head)."""
    history = node.view.history
    scenario = setup.scenario
    key = (history.head.hash, target_height, history.height)
    recovery = setup.recoveries.get(key)
    if recovery is None:
        recovery = compute_recovery(
            store=setup.store,
            history=history,
            setup=setup.exchange,
            feed=node.view.feed,
            target_height=target_height,
            halt_height=history.height,
            mode=scenario.response.mode,
            policy=scenario.response.withdrawal_policy,
            old_fork_id=node.view.fork_id,
            new_fork_id=node.view.fork_id + 1,
            finality_blocks=scenario.chain.finality_blocks,
            pause_blocks=int(scenario.response.pause_s / scenario.chain.block_time_s),
            cache=setup.cache,
            reopening=compute_reopening(scenario),
        )
        setup.recoveries[key] = recovery
    return recovery


def apply_certified_plan(setup: RunSetup, node: Node, plan: RestorePlan, certificate: CommitCertificate) -> None:
    """`node` applies the plan it decided to its own chain, then checks its root against the
    certificate's expected root; on a mismatch it reports and never votes on the new fork."""
    view = node.view
    if view.plan_certificate is not None:
        return
    try:
        recovery = get_recovery(setup, node, plan.target_height)
    except (EmergencyError, AssertionError) as error:
        view.plan_certificate = certificate
        view.restore_error = f"cannot compute the certified plan from its own chain: {error}"
        return
    mine = compute_plan_for(setup, node, plan.views) if recovery.halt_height == plan.halt_height else None
    view.plan_certificate = certificate
    if mine is None or mine.hash != plan.hash:
        view.restore_error = "the certified plan is not the one this validator computes from its own chain"
        return
    node.recovery = recovery
    history = view.history
    if plan.mode in ("full-rollback", "rollback-replay"):
        history.fork(get_view_name(node.index, plan.old_fork_id))  # the old fork stays readable
        rollback(history, plan.target_height)
    if recovery.restore_block is not None:
        apply_block(setup.store, history.head.state_root, recovery.restore_block, cache=setup.cache)
        history.append(recovery.restore_block)
    view.restored_root = history.head.state_root
    view.fork_id = plan.new_fork_id  # its alarm watches the first fork only: no halt on this one
    view.restart_ledger = recovery.restart_ledger
    if view.restored_root != plan.expected_root:
        view.restore_error = (f"restored root 0x{view.restored_root.hex()} != certificate's expected "
                              f"0x{plan.expected_root.hex()}")


def _view_signer(node: Node, behaviour: Honest, rec: Recorder, now_s: Callable[[], float]):
    """How `node` signs its own view: honestly, or as its behaviour lies (and the log's entry)."""

    def sign(view: HaltView) -> HaltView | None:
        signed = behaviour.make_view(sign_view(node.key.private_key, view), node.key)
        if signed is not None:
            rec.emit("view", now_s(), signed.fork_id, signed.last_height, validator=node.index,
                     halt_height=signed.last_height,
                     first_bad_height=signed.first_bad_height if signed.first_bad_height else None)
        return signed

    return sign


def run_emergency_phase(setup: RunSetup, rec: Recorder, start_s: float) -> EmergencyPhase:
    """Phase 3: views and sync through the network, the plan voted like a block, each
    validator applying the plan it decided."""
    old_fork = max(n.view.fork_id for n in setup.nodes)
    new_fork = old_fork + 1
    config = _sim_config(setup, fork_id=get_plan_fork_id(new_fork), start_height=PLAN_HEIGHT, start_s=start_s,
                         timeouts=PLAN_TIMEOUTS, label="plan")
    decode = make_block_decoder(setup.decoded)
    engines: dict[int, EmergencyEngine] = {}
    certified: dict[int, RestorePlan] = {}  # validator -> the plan it decided
    box: list[Simulation] = []
    rec.note("views exchanged", start_s, None, "every validator gossips its signed halt view")

    def on_certificate(index: int, plan: RestorePlan, certificate: CommitCertificate) -> None:
        node = setup.nodes[index]
        now_s = box[0].now_s if box else start_s  # a validator holding 2/3 alone may decide at once
        first = not certified
        certified[index] = plan
        apply_certified_plan(setup, node, plan, certificate)
        if first:
            rec.note("rollback certificate", now_s, plan.target_height,
                     f"plan 0x{plan.hash.hex()[:16]} decided by validator {index}, "
                     f"{len(certificate.votes)} signatures")
            proposer = next((m.proposer for m in box[0].trace.messages
                             if isinstance(m, Proposal) and m.block_hash == plan.hash), None)
            rec.emit("plan", now_s, old_fork, plan.target_height, proposer=proposer, plan_hash=plan.hash,
                     target_height=plan.target_height, accepted=True, reason=None, mode=plan.mode,
                     snapshot_root=plan.snapshot_root, expected_root=plan.expected_root)
            rec.emit("certificate", now_s, old_fork, plan.target_height, plan_hash=plan.hash,
                     signers=list(certificate.signers()), power=setup.validator_set.get_power(certificate.signers()),
                     quorum=setup.validator_set.quorum)
        view = node.view
        rec.emit("restore", now_s, old_fork, view.history.height, validator=index, state_root=view.restored_root,
                 ok=view.restore_error is None and view.restored_root is not None, error=view.restore_error)

    def make_kit(index: int):
        node = setup.nodes[index]
        behaviour = get_behaviour(node.behaviour, node.key)
        app = PlanApp(
            view=node.view,
            validator_set=setup.validator_set,
            known_views=lambda i=index: engines[i].get_known_views() if i in engines else (),
            compute_plan=lambda views, n=node: compute_plan_for(setup, n, views),
            on_certificate=on_certificate,
            choose_views=lambda views, b=behaviour: b.choose_plan_views(views, setup.validator_set),
        )
        kit = make_node_kit(app, node.key, node.journal, behaviour)
        chain = NodeChain(node.view, old_fork, setup.validator_set, decode, setup.cache)

        def wrap(engine, i=index, node_chain=chain):
            engines[i] = EmergencyEngine(i, setup.validator_set, old_fork, node_chain, engine,
                                         _view_signer(node, behaviour, rec, lambda: box[0].now_s if box else start_s))
            return engines[i]

        return replace(kit, wrap_engine=wrap)

    sim = create_simulation(config, setup.validator_set, make_kit, observer=rec.get_observer())
    box.append(sim)
    faults_end_s, outlasting = compute_fault_wait(config, start_s)

    def is_every_node_certified() -> bool:
        running = [n for n in setup.nodes if _is_running(sim, n.index)]
        return bool(running) and all(n.view.plan_certificate is not None for n in running)

    is_certified = _on_changes(sim, is_every_node_certified)

    def is_done() -> bool:
        return sim.now_s >= faults_end_s and is_certified()

    sim.run_until(until_s=faults_end_s + PLAN_MAX_WAIT_S, stop=is_done, max_events=MAX_EVENTS_PER_PHASE)
    plan = certificate = None
    if certified:
        first = next(iter(certified))  # the first certificate formed, as the log tells it
        plan, certificate = certified[first], setup.nodes[first].view.plan_certificate
    proposers = {m.block_hash: m.proposer for m in sim.trace.messages if isinstance(m, Proposal)}
    rejected: dict[bytes, dict] = {}
    for node in setup.nodes:
        app = sim.nodes[node.index].kit.app
        for plan_hash, reason in app.rejections:
            entry = rejected.setdefault(plan_hash, {"proposer": proposers.get(plan_hash), "reason": reason,
                                                    "rejected_by": []})
            if node.index not in entry["rejected_by"]:
                entry["rejected_by"].append(node.index)
    for plan_hash, entry in sorted(rejected.items(), key=lambda item: (str(item[1]["proposer"]), item[0])):
        rec.note("plan rejected", start_s, None,
                 f"proposer {entry['proposer']}: {entry['reason']} (by {sorted(entry['rejected_by'])})")
        rec.emit("plan", sim.now_s, old_fork, None, proposer=entry["proposer"], plan_hash=plan_hash,
                 target_height=None, accepted=False, reason=entry["reason"], rejected_by=sorted(entry["rejected_by"]))
    conflicts: dict[tuple[int, int], ViewConflict] = {}
    for i in sorted(engines):
        for conflict in engines[i].conflicts:
            conflicts.setdefault((conflict.view.validator, conflict.height), conflict)
    return EmergencyPhase(sim.trace, start_s, sim.now_s, old_fork, new_fork, plan, certificate, rejected,
                          tuple(conflicts[k] for k in sorted(conflicts)), sum(e.rejected_views for e in engines.values()),
                          () if is_done() else outlasting)


def compute_fault_wait(config: SimConfig, start_s: float) -> tuple[float, tuple[str, ...]]:
    """How long the vote starting at `start_s` waits for faults to end, and the faults it does
    not wait for, in words: a partition that heals, or a crashed validator that restarts, more
    than `MAX_FAULT_WAIT_S` later (or never heals) outlasts the run. A crash for good "ends"
    when it happens, as before; a fault that starts after the horizon never happens in the run."""
    horizon_s = start_s + MAX_FAULT_WAIT_S
    ends = [start_s]
    ends += [p.end_s for p in config.partitions if start_s < p.end_s <= horizon_s and p.start_s < horizon_s]
    ends += [c.at_s if c.restart_s is None else c.restart_s for c in config.crashes
             if c.at_s < horizon_s and (c.restart_s is None or c.restart_s <= horizon_s)]
    return max(ends), describe_faults_outlasting(config, start_s, horizon_s)


def describe_faults_outlasting(config: SimConfig, from_s: float, until_s: float) -> tuple[str, ...]:
    """In words, each partition or crash under way at some time in [from_s, until_s] that is
    still under way at `until_s` (a crash for good is not: nothing will change)."""
    out = []
    for p in config.partitions:
        if p.start_s < until_s and p.end_s > until_s and p.end_s > from_s:
            out.append(f"the partition {[list(g) for g in p.groups]} from {format_duration_s(p.start_s)} heals "
                       f"only at {format_duration_s(p.end_s)}")
    for c in config.crashes:
        if c.at_s < until_s and c.restart_s is not None and c.restart_s > until_s:
            out.append(f"validator {c.node}, down from {format_duration_s(c.at_s)}, restarts only at "
                       f"{format_duration_s(c.restart_s)}")
    return tuple(out)


def format_duration_s(t_s: float) -> str:
    """Virtual seconds since genesis for a sentence: `600 s`, `1e+07 s`."""
    return f"{t_s:.0f} s" if t_s < 1e7 else f"{t_s:.3g} s"


# ---------------------------------------------------------------- the world after the restore


def follow_restore(setup: RunSetup, rec: Recorder, emergency: EmergencyPhase, now_s: float) -> Recovery | None:
    """The actors follow the restored public chain: the chain of the lowest-indexed validator
    whose restore matched the certificate (any such chain is the same)."""
    plan = emergency.plan
    restored = [n for n in setup.nodes if n.view.restored_root is not None and n.view.restore_error is None]
    if plan is None or not restored:
        return None
    source = min(restored, key=lambda n: n.index)
    recovery = source.recovery
    assert recovery is not None, f"validator {source.index} restored without its recovery (seed {setup.seed})"
    rec.note("restore", now_s, recovery.base_height, plan.mode)
    world = setup.world
    if plan.mode in ("full-rollback", "rollback-replay"):
        world.rewind(plan.target_height)
    if recovery.restore_block is not None:
        block = recovery.restore_block
        parent_root = source.view.history.header_at(recovery.base_height).state_root
        result = apply_block(setup.store, parent_root, block, cache=setup.cache)
        world.observe(block, result)
        rec.results[block.hash] = result
        rec.prices[(block.header.fork_id, block.height)] = dict(world.index.prices)
        if recovery.surgery:
            world.resync_accounts(result.state_root, [e.account for e in recovery.surgery])
    world.set_fork(plan.new_fork_id)
    world.set_price_offset(recovery.price_offset)
    return recovery


def get_stale_until_height(scenario: Scenario, recovery: Recovery) -> int:
    """The last height whose feeds still post pre-halt prices after the restart (-1: none)."""
    stale = scenario.oracle.stale_after_restart_blocks
    return recovery.restart_height + stale - 1 if stale else -1


def run_restart_phase(setup: RunSetup, rec: Recorder, recovery: Recovery, fork_id: int, start_s: float) -> BlocksPhase:
    """Phase 4: the new fork runs until the final chain reaches `chain.heights`."""
    scenario = setup.scenario
    start_height = recovery.restart_height
    goal = max(scenario.chain.heights, start_height + MIN_RESTART_BLOCKS - 1)
    stale_prices = rec.prices.get((fork_id - 1, recovery.target_height), dict(setup.world.index.prices))
    mempool = WorldMempool(setup.world, fork_id, get_stale_until_height(scenario, recovery), stale_prices)
    config = _sim_config(setup, fork_id=fork_id, start_height=start_height, start_s=start_s,
                         timeouts=TimeoutConfig(commit_s=scenario.chain.block_time_s), label="restart")
    rec.note("restart", start_s, start_height, f"fork {fork_id}")
    rec.emit("restart", start_s, fork_id, start_height, new_fork=fork_id,
             phases=[[height, mode] for height, mode in recovery.reopening_phases])
    for entry in sorted(recovery.compensation, key=lambda e: (-e.amount, e.account)):
        rec.emit("compensation", start_s, fork_id, start_height, account=entry.account, amount=entry.amount,
                 reason=entry.reason)
    restored = [n for n in setup.nodes if n.view.restored_root is not None and n.view.restore_error is None]
    box: list[Simulation] = []
    with _open_audit_replay(setup, recovery, restored) as replay:
        sim = create_simulation(config, setup.validator_set,
                                _make_chain_kit(setup, rec, mempool, box, "restart", start_s, replay),
                                observer=rec.get_observer())
        box.append(sim)

        def is_every_node_done() -> bool:
            running = [n for n in restored if _is_running(sim, n.index)]
            return bool(running) and all(n.view.history.height >= goal for n in running)

        is_done = _on_changes(sim, is_every_node_done)
        sim.run_until(until_s=start_s + (goal - start_height + 1) * 60.0 + 3600.0, stop=is_done,
                      max_events=MAX_EVENTS_PER_PHASE)
    return BlocksPhase("restart", fork_id, sim.trace, start_s, sim.now_s, goal,
                       () if is_done() else describe_faults_outlasting(config, start_s, sim.now_s))


def _open_audit_replay(setup: RunSetup, recovery: Recovery, restored: list[Node]):
    """The audit's band-on replay in the background (`scenarios/audit_replay.py`), from the
    restored header most restored validators hold (ties to the lowest index); with the memos
    off every node replays for itself, so that the two can be compared."""
    start = recovery.restart_height
    held = [n.view.history for n in restored if n.view.history.height >= start - 1]
    if not setup.memo or not held:
        return contextlib.nullcontext(None)
    counts = collections.Counter(h.header_at(start - 1).hash for h in held)
    history = next(h for h in held if counts[h.header_at(start - 1).hash] == max(counts.values()))
    return open_background_replay(setup.store, setup.exchange, history, start, recovery.audit_height,
                                  compute_reopening(setup.scenario).audit_band_bps)


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class Run:
    """A finished run: the setup, one frozen result per phase, and the harness's record."""

    setup: RunSetup
    chain_phase: BlocksPhase
    emergency: EmergencyPhase | None
    restart: BlocksPhase | None
    recovery: Recovery | None  # what the restored public chain's validators computed
    record: Recorder
    virtual_s: float

    # --- what the report reads ---------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self.setup.scenario

    @property
    def seed(self) -> int:
        return self.setup.seed

    @property
    def store(self) -> Store:
        return self.setup.store

    @property
    def world(self) -> World:
        return self.setup.world

    @property
    def validator_set(self) -> ValidatorSet:
        return self.setup.validator_set

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.setup.nodes

    @property
    def cache(self) -> dict | None:
        return self.setup.cache

    @property
    def traces(self) -> list[tuple[str, Trace]]:
        phases = [("chain", self.chain_phase.trace)]
        if self.emergency is not None:
            phases.append(("plan", self.emergency.trace))
        if self.restart is not None:
            phases.append(("restart", self.restart.trace))
        return phases

    @property
    def plan(self) -> RestorePlan | None:
        return None if self.emergency is None else self.emergency.plan

    @property
    def certificate(self) -> CommitCertificate | None:
        return None if self.emergency is None else self.emergency.certificate

    @property
    def rejected_plans(self) -> dict[bytes, dict]:
        return {} if self.emergency is None else self.emergency.rejected_plans

    @property
    def halt_height(self) -> int | None:
        """The halt height the certificate agreed (None without a certificate)."""
        return None if self.plan is None else self.plan.halt_height

    @property
    def detected_height(self) -> int | None:
        return self.record.detected_height

    @property
    def first_bad_height(self) -> int | None:
        return self.record.first_bad_height

    @property
    def split_at(self) -> tuple[int, int] | None:
        return self.record.split_at

    @property
    def liquidations(self) -> list[tuple[int, int, bytes]]:
        return self.record.liquidations

    @property
    def honest(self) -> list[Node]:
        """For judging only."""
        return [n for n in self.nodes if n.is_honest]

    @property
    def reference(self) -> Node:
        """The honest validator whose chain the report describes: of those that restored
        cleanly (before any restore, of all honest ones), the furthest ahead, lowest index first."""
        restored = [n for n in self.honest if n.view.restored_root is not None and n.view.restore_error is None]
        return max(restored or self.honest, key=lambda n: (n.view.history.height, -n.index))

    @property
    def compensation_entries(self) -> tuple:
        """Every compensation the final chain pays: the plan's, then the reopening audit's."""
        if self.recovery is None:
            return ()
        audit = self.reference.audit
        return tuple(self.recovery.compensation) + (audit.entries if audit is not None else ())

    @property
    def results(self) -> dict[int, ExecutionResult]:
        """height -> execution result along the reference's final chain."""
        history = self.reference.view.history
        out = {}
        for height in range(1, history.height + 1):
            result = self.record.results.get(history.block_at(height).hash)
            if result is not None:
                out[height] = result
        return out

    @property
    def snapshot_root_before_restore(self) -> bytes | None:
        """The root the first fork committed at the target (from a validator's archive)."""
        if self.plan is None:
            return None
        if self.plan.target_height == 0:
            return self.reference.view.history.root_at(0)
        for node in sorted(self.honest, key=lambda n: n.index):
            root = node.view.archived_roots.get((self.plan.old_fork_id, self.plan.target_height))
            if root is not None:
                return root
        return None

    @property
    def stopped_by(self) -> str | None:
        """Why the run stopped before its end, in words: the faults that outlasted it (or None)."""
        phases = [self.chain_phase, self.emergency, self.restart]
        faults = [f for phase in phases if phase is not None for f in phase.outlasting]
        return "; ".join(dict.fromkeys(faults)) or None

    @property
    def stale_until_height(self) -> int:
        return -1 if self.recovery is None else get_stale_until_height(self.scenario, self.recovery)


# ---------------------------------------------------------------- the whole run


def execute_run(setup: RunSetup, rec: Recorder) -> Run:
    """Run every phase; returns the record."""
    chain_phase = run_chain_phase(setup, rec)
    now_s = chain_phase.end_s

    def finish(emergency=None, restart=None, recovery=None, end_s=now_s) -> Run:
        return Run(setup, chain_phase, emergency, restart, recovery, rec, end_s)

    if rec.split_at is not None or rec.detected_height is None:
        if chain_phase.outlasting:
            height = max(n.view.history.height for n in setup.nodes)
            rec.note("chain stalled", now_s, height, "; ".join(chain_phase.outlasting))
        return finish()  # no restore on a split chain (the report convicts); nothing to recover
    halted = max(n.view.history.height for n in setup.nodes)
    if rec.progress:
        rec.progress("halted", halted, now_s)
    resume_s = now_s + setup.scenario.response.pause_s
    rec.note("pause ends", resume_s, halted, f"{setup.scenario.response.pause_s:.0f} s halted")
    if rec.progress:
        rec.progress("vote", halted, resume_s)
    emergency = run_emergency_phase(setup, rec, resume_s)
    now_s = emergency.end_s
    if emergency.plan is None:
        if emergency.outlasting:
            why = f"no plan gathered 2/3 of the power; the run does not wait: {'; '.join(emergency.outlasting)}"
        else:
            why = f"no plan gathered 2/3 of the power within {PLAN_MAX_WAIT_S:.0f} s of the last fault"
        rec.note("no certificate", now_s, None, why)
        return finish(emergency, end_s=now_s)
    recovery = follow_restore(setup, rec, emergency, now_s)
    if recovery is None:
        rec.note("no restore", now_s, None, "no validator restored to the certificate's expected root")
        return finish(emergency, end_s=now_s)
    if rec.progress:
        rec.progress("restored", recovery.base_height, now_s)
    restart = run_restart_phase(setup, rec, recovery, emergency.new_fork_id, now_s)
    return finish(emergency, restart, recovery, restart.end_s)


def collect_certificates(run: Run) -> list[CommitCertificate]:
    """Every commit certificate any node decided, across phases."""
    return [d.certificate for _, trace in run.traces for d in trace.decisions]


def run_forensics(run: Run):
    """Culprits with evidence from every signed message seen in the run."""
    messages = [m for _, trace in run.traces for m in trace.messages]
    return find_culprits(messages, run.validator_set, collect_certificates(run))


def total_supply(run: Run, root: bytes) -> int:
    """Native tokens held by every account the run knows (none are ever minted or burnt)."""
    world = run.world
    addresses = set(world.market.all_addresses) | {world.market.owner}
    addresses |= {world.market.addresses.oracle, world.market.addresses.perps, world.market.addresses.bridge}
    return sum(get_balance(run.store, root, a) for a in sorted(addresses))


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


def run_scenario_once(scenario: Scenario, *, data_dir: str | None = None, memo: bool = True,
                      progress: Callable[[str, int, float], None] | None = None,
                      events: EventLog | None = None) -> tuple[Run, float, float]:
    """Prepare and execute a run; returns (run, virtual seconds, wall seconds).

    `memo=False` turns off both memos (execution across validators, signature checks):
    the report must be byte-identical either way.
    """
    started = time.perf_counter()
    memo_was = is_signature_memo_enabled()
    set_signature_memo(memo)  # execution and signature memos go together: both must be invisible
    try:
        if progress:
            progress("genesis", 0, 0.0)  # contracts load and genesis is built before height 1
        setup = prepare_run(scenario, data_dir=data_dir, memo=memo)
        rec = Recorder(progress=progress, events=events)
        for p in scenario.network.partitions:
            groups = [list(g) for g in p.groups]
            rec.emit("partition_start", p.start_s, 0, None, groups=groups)
            rec.emit("partition_end", p.end_s, 0, None, groups=groups)
        run = execute_run(setup, rec)
    finally:
        set_signature_memo(memo_was)
    return run, run.virtual_s, time.perf_counter() - started
