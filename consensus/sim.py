"""A consensus-only simulation: N Tendermint engines on the simulated network.

The application and the signing keys are plugged in per node through a `NodeKit`
(built by a higher layer: this module may not import `validators`), so the same
harness runs a trivial bytes app in tests and the real chain in the node:

    trace = run_simulation(config, validator_set, make_node_kit)

`make_node_kit(index)` is called once per node; the kit outlives crashes (it stands for
what a node persists: its chain and its vote journal).

A node's behaviour is an object (`Behaviour`, below) the higher layer supplies: it says
whether the node runs, what its engine is given (how it proposes, judges blocks, signs,
whether it forgets its locks) and what goes on the wire for each message it sends. The
implementations (honest, crash, withhold, equivocate, amnesia, wrong-root,
duplicate-votes) live in `validators.behaviours`. `SimConfig.byzantine` names them, for
the trace and the checks: an index it does not list is judged as honest.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

import chain  # noqa: F401  (selects the fast keccak backend before eth_hash loads)
from eth_hash.auto import keccak

from consensus.messages import (
    Commit,
    CommitCertificate,
    CommitRequest,
    ConsensusError,
    HasVotes,
    Message,
    Proposal,
    SignedMessage,
    ValidatorSet,
    Vote,
)
from consensus.network import (
    CrashFault,
    EventLoop,
    LinkProfile,
    Network,
    Partition,
    US_PER_S,
    RunResult,
    build_complete_topology,
    build_geo_cluster_topology,
    build_random_regular_topology,
    get_last_heal_s,
    run_until,
    seconds_to_us,
)
from consensus.tendermint import (
    Action,
    Broadcast,
    Decide,
    Engine,
    Refused,
    ResumePoint,
    IsValidFn,
    ProposeFn,
    ScheduleTimeout,
    SendTo,
    SignerFn,
    TimeoutConfig,
)

HONEST = "honest"
TOPOLOGIES = ("complete", "random-regular", "geo")


class SimConfigError(ConsensusError):
    """Raised when a simulation config names an unknown behaviour/topology or a bad index."""

    def __init__(self, field_name: str, value: object, reason: str):
        super().__init__(f"{field_name}={value!r}: {reason}")
        self.field_name = field_name
        self.value = value
        self.reason = reason


class App(Protocol):
    """What consensus needs from the application of one node."""

    def propose(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A new block for (height, round): (block_hash, payload)."""

    def is_valid(self, height: int, block_hash: bytes, payload: bytes) -> bool:
        """Re-execute/check the block; False makes this node prevote nil."""

    def commit(self, height: int, block_hash: bytes, payload: bytes, certificate: CommitCertificate) -> None:
        """Append the decided block."""

    def propose_conflicting(self, height: int, round: int) -> tuple[bytes, bytes]:
        """Another valid block for (height, round), used by equivocators only."""

    def propose_invalid(self, height: int, round: int) -> tuple[bytes, bytes]:
        """A block honest `is_valid` rejects (e.g. a wrong state root), for `wrong-root`."""


@dataclass(frozen=True)
class EngineInputs:
    """What a behaviour gives its node's engine."""

    propose: ProposeFn
    is_valid: IsValidFn
    signer: SignerFn
    forget_locks: bool = False


@dataclass(frozen=True)
class Transmission:
    """One action of a node on its way out: `message` (with `payload`) for `receivers`.
    `coalition` is the plan the Byzantine nodes of the run share."""

    sender: int
    message: Message
    payload: bytes | None
    receivers: tuple[int, ...]
    is_broadcast: bool
    kit: NodeKit
    coalition: Coalition

    def as_sent(self) -> list[tuple[int, Message, bytes | None]]:
        """(receiver, message, payload) for every receiver, unchanged: what an honest node sends."""
        return [(receiver, self.message, self.payload) for receiver in self.receivers]

    def is_own_signed(self) -> bool:
        """True for a proposal or vote the sender signed itself (not a relay, not a commit)."""
        return isinstance(self.message, (Proposal, Vote)) and self.message.signer_index == self.sender


class Behaviour(Protocol):
    """How one node behaves (honest or Byzantine); built by a higher layer."""

    name: str

    def is_running(self) -> bool:
        """False for a node that never starts (crashed for the whole run)."""

    def get_engine_inputs(self, kit: NodeKit) -> EngineInputs:
        """How the node's engine proposes, judges blocks and signs, from its kit."""

    def transmit(self, transmission: Transmission) -> list[tuple[int, Message, bytes | None]]:
        """What actually goes out for one action: (receiver, message, payload) triples."""


BehaviourLookup = Callable[[str], Behaviour]
"""Behaviour by name, for one node; raises LookupError for an unknown name."""


@dataclass(frozen=True)
class NodeKit:
    """What a node keeps across crashes: its app (chain) and its keys behind a journal,
    and how it behaves: `behaviour` when the higher layer fixed it, else `get_behaviour`
    is asked for the name `SimConfig.byzantine` gives the node ("honest" if unlisted)."""

    app: App
    signer: SignerFn  # journaled: raises SigningRefused rather than double-sign
    raw_signer: SignerFn  # bypasses the journal (Byzantine behaviours only)
    get_resume_point: Callable[[int, int], ResumePoint]  # (fork_id, height) from the journal
    get_behaviour: BehaviourLookup | None = None
    behaviour: Behaviour | None = None
    wrap_engine: Callable[[Engine], object] | None = None  # e.g. the emergency engine around the plan vote


@dataclass(frozen=True)
class SimConfig:
    """One simulated run: topology, link faults, partitions, crashes, Byzantine nodes."""

    seed: int = 0
    fork_id: int = 1
    start_height: int = 1
    target_height: int = 3  # stop once every honest node that ends up running has committed this height
    topology: str = "complete"
    latency_ms: float = 50.0
    degree: int = 3  # random-regular
    cluster_count: int = 3  # geo
    link: LinkProfile = field(default_factory=LinkProfile)
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[CrashFault, ...] = ()
    byzantine: tuple[tuple[int, str], ...] = ()  # (validator index, behaviour name): judged not honest
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    max_time_s: float = 300.0
    max_events: int = 200_000
    start_s: float = 0.0  # virtual time the run starts at (later phases continue the clock)

    def get_behaviour(self, index: int) -> str:
        """The behaviour name of validator `index` ("honest" unless listed)."""
        for node, behaviour in self.byzantine:
            if node == index:
                return behaviour
        return HONEST

    def is_honest(self, index: int) -> bool:
        """True unless `byzantine` lists the validator."""
        return self.get_behaviour(index) == HONEST

    def is_up_at_end(self, index: int) -> bool:
        """True unless the node's last scheduled crash has no restart."""
        up = True
        for crash in sorted((c for c in self.crashes if c.node == index), key=lambda c: c.at_s):
            up = crash.restart_s is not None
        return up

    def get_faults_end_s(self) -> float:
        """When the last partition heals or the last crashed node restarts."""
        restarts = [c.restart_s if c.restart_s is not None else c.at_s for c in self.crashes]
        return max([get_last_heal_s(self.partitions), *restarts])


# --- trace -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRecord:
    """Node `node` decided `block_hash` at `height` at virtual time `time_us`."""

    time_us: int
    node: int
    height: int
    round: int
    block_hash: bytes
    payload: bytes | None
    certificate: CommitCertificate


@dataclass
class Trace:
    """What a run recorded: decisions, every distinct signed message sent, refusals."""

    config: SimConfig
    validator_set: ValidatorSet
    honest: tuple[int, ...]
    decisions: list[DecisionRecord] = field(default_factory=list)
    messages: list[SignedMessage] = field(default_factory=list)
    refusals: list[tuple[int, int, SignedMessage]] = field(default_factory=list)
    deliveries: int = 0
    result: RunResult | None = None
    _hasher: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    _seen: set[tuple[bytes, bytes]] = field(default_factory=set)

    def digest(self) -> str:
        """Hex digest of everything that happened, in order (same seed -> same digest)."""
        return self._hasher.copy().hexdigest()

    def get_committed_heights(self, node: int) -> dict[int, bytes]:
        """height -> block hash decided by `node`."""
        return {d.height: d.block_hash for d in self.decisions if d.node == node}

    def _note(self, *parts: object) -> None:
        line = b"|".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)
        self._hasher.update(line + b"\n")

    def _note_message(self, message: Message) -> None:
        if isinstance(message, Commit):
            for vote in message.certificate.votes:
                self._note_message(vote)
            return
        if not isinstance(message, (Proposal, Vote)):
            return  # views, sync and requests: not votes, nothing for forensics
        key = (message.signing_digest(), message.signature)
        if key not in self._seen:
            self._seen.add(key)
            self.messages.append(message)


# --- nodes and events ----------------------------------------------------------------------


@dataclass
class SimNode:
    """A simulated validator: its kit (persistent) and its engine (lost on crash)."""

    index: int
    behaviour: Behaviour
    kit: NodeKit
    engine: Engine | None = None
    incarnation: int = 0
    committed_height: int = -1
    decided: dict[int, Decide] = field(default_factory=dict)  # persisted with the chain, for catch-up


@dataclass(frozen=True)
class Deliver:
    """`message` arrives at every one of `receivers` at the same instant: one heap entry for
    the copies of a transmission whose arrival times coincide, handled in receiver order."""

    receivers: tuple[int, ...]
    sender: int
    message: Message
    payload: bytes | None


@dataclass(frozen=True)
class Fire:
    node: int
    incarnation: int
    kind: str
    height: int
    round: int


@dataclass(frozen=True)
class CrashNow:
    node: int


@dataclass(frozen=True)
class RestartNow:
    node: int


@dataclass
class Coalition:
    """The Byzantine nodes' shared plan: which honest nodes see value A, which see value B,
    and the conflicting proposals made so far (by (height, round))."""

    members: tuple[int, ...]
    side_a: tuple[int, ...]
    side_b: tuple[int, ...]
    conflicts: dict[tuple[int, int], tuple[Proposal, bytes, Proposal, bytes]] = field(default_factory=dict)


@dataclass
class Simulation:
    """The running state of one simulation (built by `create_simulation`)."""

    config: SimConfig
    validator_set: ValidatorSet
    nodes: list[SimNode]
    network: Network
    loop: EventLoop
    trace: Trace
    coalition: Coalition
    _check_stop: bool = False
    # Sees plain data only (time_us, kind, fields); nothing in the run reads what it records.
    observer: Callable[[int, str, dict], None] | None = None
    _locks: dict[int, tuple[int, int]] = field(default_factory=dict)  # node -> (height, locked_round) last told
    changes: int = 0  # decisions, crashes and restarts so far: a stop predicate need look again only when it moves

    # --- driving ------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """Virtual time, in seconds."""
        return self.loop.now_us / US_PER_S

    def run_until(self, *, until_s: float | None, stop: Callable[[], bool] | None = None,
                  max_events: int | None = None) -> RunResult:
        """Run events until virtual time passes `until_s`, `stop()` holds (checked after
        each event), nothing is left, or `max_events` (default: the config's) have run.
        The result is also kept as `trace.result`; the simulation can be driven on."""
        bound = self.config.max_events if max_events is None else max_events
        result = run_until(self.loop, self._handle, bound, until_s=until_s, stop=stop)
        self.trace.result = result
        return result

    def run(self) -> Trace:
        """Run until every honest node still running has committed `target_height` and a
        height above the best one decided before the faults ended; or to the time limit
        or the event bound."""
        faults_end_us = seconds_to_us(self.config.get_faults_end_s())
        expected = [i for i in self.trace.honest if self.config.is_up_at_end(i)]
        honest = set(self.trace.honest)
        baseline: list[int] = []

        def is_done() -> bool:
            if not self._check_stop or self.loop.now_us < faults_end_us:
                return False
            self._check_stop = False
            if not baseline:
                baseline.append(max((d.height for d in self.trace.decisions
                                     if d.node in honest and d.time_us < faults_end_us),
                                    default=self.config.start_height - 1))
            goal = max(self.config.target_height, baseline[0] + 1)
            return all(self.nodes[i].committed_height >= goal for i in expected)

        result = self.run_until(until_s=self.config.max_time_s, stop=is_done)
        self.trace._note("end", result.reason, result.now_us, result.events)
        return self.trace

    def _handle(self, time_us: int, event: object) -> None:
        if isinstance(event, Deliver):
            message_id = _message_id(event.message)
            for receiver in event.receivers:
                node = self.nodes[receiver]
                if node.engine is None:
                    self._observe_message("drop", event.sender, receiver, event.message, reason="receiver_down")
                    continue
                self.trace.deliveries += 1
                # the line `_note(time_us, "deliver", receiver, sender, id)` writes, built directly:
                # this runs count^2 times a height
                self.trace._hasher.update(b"%d|deliver|%d|%d|%s\n" % (time_us, receiver, event.sender, message_id))
                if self.observer is not None:
                    self._observe_message("deliver", event.sender, receiver, event.message)
                actions = node.engine.on_message(event.message, event.payload)
                if actions or self.observer is not None:
                    self._apply(node, actions)
        elif isinstance(event, Fire):
            node = self.nodes[event.node]
            if node.engine is None or node.incarnation != event.incarnation:
                return
            engine = node.engine.tendermint
            if event.kind in ("propose", "prevote", "precommit") and (engine.height, engine.round) == (
                    event.height, event.round) and engine.step == event.kind:
                self._observe("timeout", event.height, validator=event.node, step=event.kind, round=event.round)
            self._apply(node, node.engine.on_timeout(event.kind, event.height, event.round))
        elif isinstance(event, CrashNow):
            node = self.nodes[event.node]
            self.trace._note(time_us, "crash", event.node)
            self.changes += 1
            self._observe("crash", None, validator=event.node)
            node.engine = None
            node.incarnation += 1
        else:
            assert isinstance(event, RestartNow), event
            self.trace._note(time_us, "restart", event.node)
            self.changes += 1
            self._observe("recover", None, validator=event.node)
            self._start(self.nodes[event.node])

    def _start(self, node: SimNode) -> None:
        if not node.behaviour.is_running() or node.engine is not None:
            return
        inputs = node.behaviour.get_engine_inputs(node.kit)
        node.engine = Engine(self.config.fork_id, self.validator_set, node.index, inputs.propose, inputs.is_valid,
                             inputs.signer, self.config.timeouts, forget_locks=inputs.forget_locks)
        if node.kit.wrap_engine is not None:
            node.engine = node.kit.wrap_engine(node.engine)
        height = max(self.config.start_height, node.committed_height + 1)
        resume = node.kit.get_resume_point(self.config.fork_id, height)
        # the certificates of committed heights persist with the chain: a node that restarts
        # after deciding a height some peers still miss must still be able to hand it over
        decided = [node.decided[h] for h in sorted(node.decided)]
        self._apply(node, node.engine.on_start(height, resume, decided))

    # --- actions ----------------------------------------------------------------------------

    def _apply(self, node: SimNode, actions: list[Action]) -> None:
        now_us = self.loop.now_us
        for action in actions:
            if isinstance(action, (Broadcast, SendTo)):
                seen = len(self.trace.messages)
                self._send(node.index, node.behaviour.transmit(self._get_transmission(node, action)))
                if self.observer is not None and isinstance(action, Broadcast):
                    self._observe_signed(node, self.trace.messages[seen:])
            elif isinstance(action, ScheduleTimeout):
                self.loop.schedule_after_s(action.delay_s, Fire(node.index, node.incarnation, action.kind,
                                                                 action.height, action.round))
            elif isinstance(action, Decide):
                self._on_decide(node, action)
            else:
                assert isinstance(action, Refused), action
                self.trace.refusals.append((now_us, node.index, action.message))
        engine = node.engine.tendermint if node.engine is not None else None
        if self.observer is not None and engine is not None and engine.locked_round >= 0 \
                and self._locks.get(node.index) != (engine.height, engine.locked_round):
            self._locks[node.index] = (engine.height, engine.locked_round)
            self._observe("lock", engine.height, validator=node.index, round=engine.locked_round,
                          value=engine.locked_hash)

    def _get_transmission(self, node: SimNode, action: Broadcast | SendTo) -> Transmission:
        if isinstance(action, Broadcast):
            receivers = tuple(i for i in range(self.validator_set.size) if i != node.index)
        else:
            receivers = (action.validator,)
        return Transmission(node.index, action.message, action.payload, receivers, isinstance(action, Broadcast),
                            node.kit, self.coalition)

    def _on_decide(self, node: SimNode, decide: Decide) -> None:
        self.trace.decisions.append(DecisionRecord(self.loop.now_us, node.index, decide.height, decide.round,
                                                   decide.block_hash, decide.payload, decide.certificate))
        self.trace._note(self.loop.now_us, "decide", node.index, decide.height, decide.block_hash)
        self._observe("decide", decide.height, validator=node.index, round=decide.round, value=decide.block_hash,
                      signers=list(decide.certificate.signers()))
        node.committed_height = max(node.committed_height, decide.height)
        node.decided[decide.height] = decide
        for old in [h for h in node.decided if h <= node.committed_height - node.engine.certificate_window]:
            del node.decided[old]
        self._check_stop = True
        self.changes += 1
        if decide.payload is not None:
            node.kit.app.commit(decide.height, decide.block_hash, decide.payload, decide.certificate)

    def _send(self, sender: int, sent: list[tuple[int, Message, bytes | None]]) -> None:
        """Put one action's (receiver, message, payload) triples on the wire: each copy's
        arrival drawn in order, and the copies of one message that arrive at the same
        instant scheduled as one delivery."""
        now_us = self.loop.now_us
        arriving: dict[tuple[int, int, int], list[int]] = {}  # (arrival, message, payload) ids -> receivers
        carried: dict[tuple[int, int, int], tuple[Message, bytes | None]] = {}
        noted: set[int] = set()
        for receiver, message, payload in sent:
            if receiver == sender:
                continue
            if id(message) not in noted:
                noted.add(id(message))
                self.trace._note_message(message)
            arrivals = self.network.plan_delivery_us(sender, receiver, now_us)
            for arrival_us in arrivals:
                key = (arrival_us, id(message), id(payload))
                carried[key] = (message, payload)
                arriving.setdefault(key, []).append(receiver)
            if self.observer is not None:
                self._observe_message("send", sender, receiver, message)
                if not arrivals:
                    cut = self.network.is_partitioned(sender, receiver, now_us)
                    self._observe_message("drop", sender, receiver, message, reason="partition" if cut else "lost")
        for key, receivers in arriving.items():  # in the order the first copy of each was drawn
            message, payload = carried[key]
            self.loop.schedule_at_us(key[0], Deliver(tuple(receivers), sender, message, payload))

    # --- observing (plain data out; nothing here feeds back into the run) ------------------

    def _observe(self, kind: str, height: int | None, **fields: object) -> None:
        if self.observer is not None:
            self.observer(self.loop.now_us, kind, {"fork": self.config.fork_id, "height": height, **fields})

    def _observe_message(self, kind: str, sender: int, receiver: int, message: Message, **fields: object) -> None:
        if self.observer is not None:
            kind_of = {Proposal: "proposal", Commit: "commit", CommitRequest: "commit_request", HasVotes: "has_votes"}
            kind_name = message.step if isinstance(message, Vote) else kind_of.get(type(message), type(message).__name__)
            self._observe(kind, getattr(message, "height", None), **{"from": sender, "to": receiver, **fields},
                          type=kind_name, round=getattr(message, "round", None))

    def _observe_signed(self, node: SimNode, messages: list[Message]) -> None:
        """propose/vote events for the messages `node` signed and sent for the first time."""
        for message in messages:
            if isinstance(message, Proposal) and message.proposer == node.index:
                self._observe("propose", message.height, validator=node.index, round=message.round,
                              value=message.block_hash, pol_round=message.pol_round, signature=message.signature)
            elif isinstance(message, Vote) and message.validator == node.index:
                self._observe("vote", message.height, validator=node.index, step=message.step,
                              round=message.round, value=message.block_hash, signature=message.signature,
                              reason=None if message.block_hash is not None
                              else _nil_reason(node.engine.tendermint if node.engine else None, message))


def _nil_reason(engine: Engine | None, vote: Vote) -> str:
    """Why `engine` voted nil, as far as its own state tells (for the event log only)."""
    if vote.step == "precommit":
        return "no_polka"  # no 2/3 of the prevotes for one block in time
    entry = engine._proposals.get(vote.round) if engine is not None else None
    if entry is None:
        return "no_proposal"  # the propose timeout fired first
    if engine.locked_round != -1 and engine.locked_hash != entry[0].block_hash:
        return "locked"  # locked on another block in an earlier round
    return "invalid"  # the block does not re-execute to what it claims on this node's chain


def _message_id(message: Message) -> bytes:
    if isinstance(message, HasVotes):
        return b"has-votes:" + str((message.fork_id, message.height, message.round, message.sender)).encode()
    if not isinstance(message, (Proposal, Vote, Commit, CommitRequest)):
        return type(message).__name__.encode() + b":" + keccak(repr(message).encode())
    if isinstance(message, CommitRequest):
        return b"request:" + str((message.fork_id, message.height, message.requester)).encode()
    if isinstance(message, Commit):
        cert = message.certificate
        return b"commit:" + str((cert.height, cert.round)).encode() + cert.block_hash
    return message.signing_digest() + message.signature


def build_network(config: SimConfig, size: int) -> Network:
    """The simulated network of `config` for `size` nodes (topology and link randomness seeded)."""
    master = random.Random(config.seed)
    topology_rng = random.Random(master.getrandbits(64))
    link_rng = random.Random(master.getrandbits(64))
    if config.topology == "complete":
        graph = build_complete_topology(size, config.latency_ms)
    elif config.topology == "random-regular":
        graph = build_random_regular_topology(size, config.degree, config.latency_ms, topology_rng)
    elif config.topology == "geo":
        graph = build_geo_cluster_topology(size, config.cluster_count, topology_rng)
    else:
        raise SimConfigError("topology", config.topology, f"expected one of {', '.join(TOPOLOGIES)}")
    return Network(graph, config.link, link_rng, tuple(config.partitions))


def get_node_behaviour(config: SimConfig, index: int, kit: NodeKit,
                       get_behaviour: BehaviourLookup | None = None) -> Behaviour:
    """The behaviour of node `index`: the kit's own, else the one its name in `config`
    gives through the kit's lookup (or `get_behaviour`). A fixed behaviour must carry the
    name `config` judges the node by."""
    name = config.get_behaviour(index)
    if kit.behaviour is not None:
        if kit.behaviour.name != name:
            raise SimConfigError("byzantine.behaviour", name,
                                 f"node {index}'s kit behaves as {kit.behaviour.name!r}")
        return kit.behaviour
    lookup = kit.get_behaviour or get_behaviour
    if lookup is None:
        raise SimConfigError("byzantine.behaviour", name, f"node {index}'s kit gives no behaviour lookup")
    try:
        return lookup(name)
    except LookupError as error:
        raise SimConfigError("byzantine.behaviour", name, str(error)) from None


def create_simulation(config: SimConfig, validator_set: ValidatorSet, make_node_kit: Callable[[int], NodeKit],
                      get_behaviour: BehaviourLookup | None = None,
                      observer: Callable[[int, str, dict], None] | None = None) -> Simulation:
    """Build nodes, topology and the initial events of a run (nothing runs yet).
    `get_behaviour` is the name -> behaviour lookup for kits that carry none; `observer`,
    if given, is told every send, delivery, drop, vote, lock, timeout, decision and crash."""
    size = validator_set.size
    for index, _ in config.byzantine:
        if not 0 <= index < size:
            raise SimConfigError("byzantine.index", index, f"expected 0..{size - 1}")
    for crash in config.crashes:
        if not 0 <= crash.node < size:
            raise SimConfigError("crashes.node", crash.node, f"expected 0..{size - 1}")
    network = build_network(config, size)
    kits = [make_node_kit(i) for i in range(size)]
    nodes = [SimNode(i, get_node_behaviour(config, i, kits[i], get_behaviour), kits[i]) for i in range(size)]
    honest = tuple(i for i in range(size) if config.is_honest(i))
    members = tuple(i for i in range(size) if not config.is_honest(i))
    half = (len(honest) + 1) // 2
    coalition = Coalition(members, honest[:half], honest[half:])
    loop = EventLoop(now_us=seconds_to_us(config.start_s))
    sim = Simulation(config, validator_set, nodes, network, loop, Trace(config, validator_set, honest), coalition,
                     observer=observer)
    for crash in sorted(config.crashes, key=lambda c: (c.at_s, c.node)):
        loop.schedule_at_us(max(loop.now_us, seconds_to_us(crash.at_s)), CrashNow(crash.node))
        if crash.restart_s is not None:
            loop.schedule_at_us(max(loop.now_us, seconds_to_us(crash.restart_s)), RestartNow(crash.node))
    for node in nodes:
        sim._start(node)
    return sim


def run_simulation(config: SimConfig, validator_set: ValidatorSet, make_node_kit: Callable[[int], NodeKit],
                   get_behaviour: BehaviourLookup | None = None) -> Trace:
    """Build and run one simulation; returns its trace."""
    return create_simulation(config, validator_set, make_node_kit, get_behaviour).run()


# --- a trivial application -------------------------------------------------------------------


@dataclass
class BytesApp:
    """A stand-in application: a block is a byte string, its hash is keccak of it, and it
    is valid unless it starts with b"INVALID"."""

    node: int
    chain: dict[int, bytes] = field(default_factory=dict)

    def propose(self, height: int, round: int) -> tuple[bytes, bytes]:
        payload = f"block h={height} r={round} by={self.node}".encode()
        return keccak(payload), payload

    def propose_conflicting(self, height: int, round: int) -> tuple[bytes, bytes]:
        payload = f"block h={height} r={round} by={self.node} (conflicting)".encode()
        return keccak(payload), payload

    def propose_invalid(self, height: int, round: int) -> tuple[bytes, bytes]:
        payload = f"INVALID root h={height} r={round} by={self.node}".encode()
        return keccak(payload), payload

    def is_valid(self, height: int, block_hash: bytes, payload: bytes) -> bool:
        return keccak(payload) == block_hash and not payload.startswith(b"INVALID")

    def commit(self, height: int, block_hash: bytes, payload: bytes, certificate: CommitCertificate) -> None:
        assert height not in self.chain or self.chain[height] == payload, "app asked to commit twice"
        self.chain[height] = payload
