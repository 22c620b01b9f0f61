"""A consensus-only simulation: N Tendermint engines on the simulated network.

The application and the signing keys are plugged in per node through a `NodeKit`
(built by a higher layer: this module may not import `validators`), so the same
harness runs a trivial bytes app in tests and the real chain in the node:

    trace = run_simulation(config, validator_set, make_node_kit)

`make_node_kit(index)` is called once per node; the kit outlives crashes (it stands for
what a node persists: its chain and its vote journal). Byzantine behaviours wrap an
honest engine: `crash` (never runs), `withhold` (runs, sends nothing), `equivocate`
(signs with a key that bypasses the journal and, with its coalition, shows one value
to half of the honest nodes and another to the rest), `amnesia` (forgets its lock on
every new round and on restart), `wrong-root` (proposes blocks honest nodes reject).
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
    ScheduleTimeout,
    SendTo,
    SignerFn,
    TimeoutConfig,
)

BEHAVIOURS = ("honest", "crash", "equivocate", "withhold", "amnesia", "wrong-root")
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
class NodeKit:
    """What a node keeps across crashes: its app (chain) and its keys behind a journal."""

    app: App
    signer: SignerFn  # journaled: raises SigningRefused rather than double-sign
    raw_signer: SignerFn  # bypasses the journal (used by `equivocate` only)
    get_resume_point: Callable[[int, int], ResumePoint]  # (fork_id, height) from the journal


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
    byzantine: tuple[tuple[int, str], ...] = ()  # (validator index, behaviour)
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    max_time_s: float = 300.0
    max_events: int = 200_000
    start_s: float = 0.0  # virtual time the run starts at (later phases continue the clock)

    def get_behaviour(self, index: int) -> str:
        """The behaviour of validator `index` ("honest" unless listed)."""
        for node, behaviour in self.byzantine:
            if node == index:
                return behaviour
        return "honest"

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
        if isinstance(message, CommitRequest):
            return
        key = (message.signing_digest(), message.signature)
        if key not in self._seen:
            self._seen.add(key)
            self.messages.append(message)


# --- nodes and events ----------------------------------------------------------------------


@dataclass
class SimNode:
    """A simulated validator: its kit (persistent) and its engine (lost on crash)."""

    index: int
    behaviour: str
    kit: NodeKit
    engine: Engine | None = None
    incarnation: int = 0
    committed_height: int = -1
    decided: dict[int, Decide] = field(default_factory=dict)  # persisted with the chain, for catch-up
    last_round_seen: int = -1


@dataclass(frozen=True)
class Deliver:
    receiver: int
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
    """The equivocators' shared plan: which honest nodes see value A, which see value B."""

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

    # --- driving ------------------------------------------------------------------------

    def run(self) -> Trace:
        """Run until every honest node still running has committed `target_height` and a
        height above the best one decided before the faults ended; or to the time limit
        or the event bound."""
        faults_end_us = seconds_to_us(self.config.get_faults_end_s())
        expected = [n.index for n in self.nodes if n.behaviour == "honest" and self.config.is_up_at_end(n.index)]
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

        result = run_until(self.loop, self._handle, self.config.max_events, until_s=self.config.max_time_s, stop=is_done)
        self.trace.result = result
        self.trace._note("end", result.reason, result.now_us, result.events)
        return self.trace

    def _handle(self, time_us: int, event: object) -> None:
        if isinstance(event, Deliver):
            node = self.nodes[event.receiver]
            if node.engine is None:
                self._observe_message("drop", event.sender, event.receiver, event.message, reason="receiver_down")
                return
            self.trace.deliveries += 1
            self.trace._note(time_us, "deliver", event.receiver, event.sender, _message_id(event.message))
            self._observe_message("deliver", event.sender, event.receiver, event.message)
            self._apply(node, node.engine.on_message(event.message, event.payload))
        elif isinstance(event, Fire):
            node = self.nodes[event.node]
            if node.engine is None or node.incarnation != event.incarnation:
                return
            engine = node.engine
            if event.kind in ("propose", "prevote", "precommit") and (engine.height, engine.round) == (
                    event.height, event.round) and engine.step == event.kind:
                self._observe("timeout", event.height, validator=event.node, step=event.kind, round=event.round)
            self._apply(node, node.engine.on_timeout(event.kind, event.height, event.round))
        elif isinstance(event, CrashNow):
            node = self.nodes[event.node]
            self.trace._note(time_us, "crash", event.node)
            self._observe("crash", None, validator=event.node)
            node.engine = None
            node.incarnation += 1
        else:
            assert isinstance(event, RestartNow), event
            self.trace._note(time_us, "restart", event.node)
            self._observe("recover", None, validator=event.node)
            self._start(self.nodes[event.node])

    def _start(self, node: SimNode) -> None:
        if node.behaviour == "crash" or node.engine is not None:
            return
        app = node.kit.app
        propose = app.propose_invalid if node.behaviour == "wrong-root" else app.propose
        is_valid = (lambda h, b, p: True) if node.behaviour == "wrong-root" else app.is_valid
        signer = node.kit.raw_signer if node.behaviour == "equivocate" else node.kit.signer
        node.engine = Engine(self.config.fork_id, self.validator_set, node.index, propose, is_valid, signer,
                             self.config.timeouts)
        height = max(self.config.start_height, node.committed_height + 1)
        resume = ResumePoint() if node.behaviour == "amnesia" else node.kit.get_resume_point(self.config.fork_id, height)
        node.last_round_seen = -1
        # the certificates of committed heights persist with the chain: a node that restarts
        # after deciding a height some peers still miss must still be able to hand it over
        decided = [node.decided[h] for h in sorted(node.decided)]
        self._apply(node, node.engine.on_start(height, resume, decided))

    # --- actions ----------------------------------------------------------------------------

    def _apply(self, node: SimNode, actions: list[Action]) -> None:
        now_us = self.loop.now_us
        for action in actions:
            if isinstance(action, Broadcast):
                seen = len(self.trace.messages)
                for receiver, message, payload in self._fan_out(node, action):
                    self._send(node.index, receiver, message, payload)
                if self.observer is not None:
                    self._observe_signed(node, self.trace.messages[seen:])
            elif isinstance(action, SendTo):
                if node.behaviour != "withhold":
                    self._send(node.index, action.validator, action.message, action.payload)
            elif isinstance(action, ScheduleTimeout):
                self.loop.schedule_after_s(action.delay_s, Fire(node.index, node.incarnation, action.kind,
                                                                 action.height, action.round))
            elif isinstance(action, Decide):
                self._on_decide(node, action)
            else:
                assert isinstance(action, Refused), action
                self.trace.refusals.append((now_us, node.index, action.message))
        engine = node.engine
        if self.observer is not None and engine is not None and engine.locked_round >= 0 \
                and self._locks.get(node.index) != (engine.height, engine.locked_round):
            self._locks[node.index] = (engine.height, engine.locked_round)
            self._observe("lock", engine.height, validator=node.index, round=engine.locked_round,
                          value=engine.locked_hash)
        if node.behaviour == "amnesia" and engine is not None and engine.round > node.last_round_seen:
            node.last_round_seen = engine.round
            engine.locked_round, engine.locked_hash = -1, None

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
        if decide.payload is not None:
            node.kit.app.commit(decide.height, decide.block_hash, decide.payload, decide.certificate)

    def _send(self, sender: int, receiver: int, message: Message, payload: bytes | None) -> None:
        if receiver == sender:
            return
        self.trace._note_message(message)
        arrivals = self.network.plan_delivery_us(sender, receiver, self.loop.now_us)
        for arrival_us in arrivals:
            self.loop.schedule_at_us(arrival_us, Deliver(receiver, sender, message, payload))
        if self.observer is not None:
            self._observe_message("send", sender, receiver, message)
            if not arrivals:
                cut = self.network.is_partitioned(sender, receiver, self.loop.now_us)
                self._observe_message("drop", sender, receiver, message, reason="partition" if cut else "lost")

    # --- observing (plain data out; nothing here feeds back into the run) ------------------

    def _observe(self, kind: str, height: int | None, **fields: object) -> None:
        if self.observer is not None:
            self.observer(self.loop.now_us, kind, {"fork": self.config.fork_id, "height": height, **fields})

    def _observe_message(self, kind: str, sender: int, receiver: int, message: Message, **fields: object) -> None:
        if self.observer is not None:
            kind_of = {Proposal: "proposal", Commit: "commit", CommitRequest: "commit_request"}
            self._observe(kind, message.height, **{"from": sender, "to": receiver, **fields},
                          type=message.step if isinstance(message, Vote) else kind_of[type(message)],
                          round=getattr(message, "round", None))

    def _observe_signed(self, node: SimNode, messages: list[Message]) -> None:
        """propose/vote events for the messages `node` signed and sent for the first time."""
        for message in messages:
            if isinstance(message, Proposal) and message.proposer == node.index:
                self._observe("propose", message.height, validator=node.index, round=message.round,
                              value=message.block_hash, pol_round=message.pol_round, signature=message.signature)
            elif isinstance(message, Vote) and message.validator == node.index:
                self._observe("vote", message.height, validator=node.index, step=message.step,
                              round=message.round, value=message.block_hash, signature=message.signature,
                              reason=None if message.block_hash is not None else _nil_reason(node.engine, message))

    def _fan_out(self, node: SimNode, action: Broadcast) -> list[tuple[int, Message, bytes | None]]:
        """(receiver, message, payload) for one broadcast, after the node's behaviour."""
        everyone = [i for i in range(self.validator_set.size) if i != node.index]
        if node.behaviour == "withhold":
            return []
        if node.behaviour != "equivocate" or isinstance(action.message, (Commit, CommitRequest)) \
                or action.message.signer_index != node.index:
            return [(i, action.message, action.payload) for i in everyone]
        version_a, payload_a, version_b, payload_b = self._split(node, action.message, action.payload)
        out = []
        for i in everyone:
            if i in self.coalition.side_b:
                out.append((i, version_b, payload_b))
            else:
                out.append((i, version_a, payload_a))
        return out

    def _split(self, node: SimNode, message: SignedMessage, payload: bytes | None):
        """Two conflicting signed versions of `message`: (A, payload, B, payload)."""
        signer = node.kit.raw_signer
        key = (message.height, message.round)
        if isinstance(message, Proposal):
            if message.pol_round != -1 or payload is None:
                return message, payload, message, payload
            conflict = self.coalition.conflicts.get(key)
            if conflict is None:
                hash_b, payload_b = node.kit.app.propose_conflicting(message.height, message.round)
                proposal_b = signer(Proposal(message.fork_id, message.height, message.round, hash_b, -1, node.index))
                conflict = self.coalition.conflicts[key] = (message, payload, proposal_b, payload_b)
            return conflict
        conflict = self.coalition.conflicts.get(key)
        if conflict is not None:
            hash_a, hash_b = conflict[0].block_hash, conflict[2].block_hash
        elif message.block_hash is not None:
            hash_a, hash_b = message.block_hash, None
        else:
            return message, None, message, None
        vote_a = signer(Vote(message.fork_id, message.height, message.round, message.step, hash_a, node.index))
        vote_b = signer(Vote(message.fork_id, message.height, message.round, message.step, hash_b, node.index))
        return vote_a, None, vote_b, None


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


def create_simulation(config: SimConfig, validator_set: ValidatorSet,
                      make_node_kit: Callable[[int], NodeKit],
                      observer: Callable[[int, str, dict], None] | None = None) -> Simulation:
    """Build nodes, topology and the initial events of a run (nothing runs yet); `observer`,
    if given, is told every send, delivery, drop, vote, lock, timeout, decision and crash."""
    size = validator_set.size
    for index, behaviour in config.byzantine:
        if behaviour not in BEHAVIOURS:
            raise SimConfigError("byzantine.behaviour", behaviour, f"expected one of {', '.join(BEHAVIOURS)}")
        if not 0 <= index < size:
            raise SimConfigError("byzantine.index", index, f"expected 0..{size - 1}")
    for crash in config.crashes:
        if not 0 <= crash.node < size:
            raise SimConfigError("crashes.node", crash.node, f"expected 0..{size - 1}")
    network = build_network(config, size)
    nodes = [SimNode(i, config.get_behaviour(i), make_node_kit(i)) for i in range(size)]
    honest = tuple(n.index for n in nodes if n.behaviour == "honest")
    members = tuple(n.index for n in nodes if n.behaviour == "equivocate")
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


def run_simulation(config: SimConfig, validator_set: ValidatorSet, make_node_kit: Callable[[int], NodeKit]) -> Trace:
    """Build and run one simulation; returns its trace."""
    return create_simulation(config, validator_set, make_node_kit).run()


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
