"""CometBFT's Byzantine consensus tests (`internal/consensus/byzantine_test.go`, v1.x), ported.

CometBFT runs full nodes over a p2p switch; here honest engines exchange their actions
through a small in-memory network the test cuts and heals, and validator 0, the Byzantine
proposer of round 0 at `HEIGHT`, is played by the test with its raw key (no journal).
"""

from collections import deque

from consensus.forensics import EQUIVOCATION, find_culprits
from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote
from consensus.tendermint import Broadcast, Decide, SendTo, TimeoutConfig
from cometbft_support import FORK, HEIGHT, Node, make_block

BYZANTINE = 0
HONEST = (1, 2, 3)
MAX_DELIVERIES = 10_000


class Wires:
    """Honest engines joined by links the test can cut; each keeps the actions it returned."""

    def __init__(self, nodes: dict[int, Node]):
        self.nodes = nodes
        self.cut: set[frozenset[int]] = set()
        self.queue: deque = deque()
        self.delivered: list = []  # every signed message that reached an engine

    def is_linked(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self.cut

    def send(self, sender: int, receivers, message, payload=None) -> None:
        """Queue `message` from `sender` to each linked receiver among `receivers`."""
        for receiver in receivers:
            if receiver != sender and receiver in self.nodes and self.is_linked(sender, receiver):
                self.queue.append((receiver, message, payload))

    def route(self, sender: int, actions) -> None:
        """Queue what an engine's actions send."""
        for action in actions:
            if isinstance(action, Broadcast):
                self.send(sender, self.nodes, action.message, action.payload)
            elif isinstance(action, SendTo):
                self.send(sender, (action.validator,), action.message, action.payload)

    def run(self) -> None:
        """Deliver until nothing is in flight."""
        for _ in range(MAX_DELIVERIES):
            if not self.queue:
                return
            receiver, message, payload = self.queue.popleft()
            if isinstance(message, (Proposal, Vote)):
                self.delivered.append(message)
            node = self.nodes[receiver]
            self.route(receiver, node.keep(node.engine.on_message(message, payload)))
        raise AssertionError("messages still in flight")

    def get_decided(self, index: int) -> list[bytes]:
        return [a.block_hash for a in self.nodes[index].actions if isinstance(a, Decide)]


def make_wires(timeouts: TimeoutConfig = TimeoutConfig()) -> Wires:
    wires = Wires({i: Node(4, index=i, timeouts=timeouts) for i in HONEST})
    for i, node in wires.nodes.items():
        wires.route(i, node.start())
    return wires


def byzantine_round_zero(wires: Wires, block: tuple[bytes, bytes], receivers) -> list:
    """The Byzantine proposer's proposal of `block` in round 0, with its prevote and
    precommit for it, sent to `receivers`; returns the signed messages."""
    signer = wires.nodes[HONEST[0]]
    proposal = signer.sign(Proposal(FORK, HEIGHT, 0, block[0], -1, BYZANTINE))
    votes = [signer.sign(Vote(FORK, HEIGHT, 0, step, block[0], BYZANTINE)) for step in (PREVOTE, PRECOMMIT)]
    wires.send(BYZANTINE, receivers, proposal, block[1])
    for vote in votes:
        wires.send(BYZANTINE, receivers, vote)
    return [proposal, *votes]


def test_byzantine_prevote_equivocation():
    """TestByzantinePrevoteEquivocation: the Byzantine validator sends every validator two
    prevotes of one round, nil and a block; every honest validator holds the pair as
    evidence against it, at that height. (CometBFT then commits the DuplicateVoteEvidence
    in a block; l2sim's engines keep the pair and its forensics name the culprit from the
    messages, for the run's report.)"""
    wires = make_wires()
    block = make_block(BYZANTINE, 0)
    signer = wires.nodes[HONEST[0]]
    pair = [signer.sign(Vote(FORK, HEIGHT, 0, PREVOTE, value, BYZANTINE)) for value in (None, block[0])]
    for vote in pair:
        wires.send(BYZANTINE, HONEST, vote)
    wires.run()
    for i in HONEST:
        ((first, second),) = wires.nodes[i].engine.evidence
        assert {first.block_hash, second.block_hash} == {None, block[0]}
        assert (first.validator, second.validator, first.height) == (BYZANTINE, BYZANTINE, HEIGHT)
    report = find_culprits(wires.delivered, signer.validator_set)
    assert report.culprits == (BYZANTINE,)
    assert [(e.validator, e.kind) for e in report.evidence] == [(BYZANTINE, EQUIVOCATION)]


def test_byzantine_conflicting_proposals_with_partition():
    """TestByzantineConflictingProposalsWithPartition: the honest validators are split into
    A = {1} and B = {2, 3}; the Byzantine proposer, linked to both, proposes, prevotes and
    precommits block A to A and block B to B. B commits block B, A commits nothing; once
    the partition heals, A learns the commit (block B) and never commits block A."""
    wires = make_wires()
    wires.cut = {frozenset((1, 2)), frozenset((1, 3))}
    block_a = make_block(BYZANTINE, 0, kind="conflicting")
    block_b = make_block(BYZANTINE, 0)
    byzantine_round_zero(wires, block_a, (1,))
    byzantine_round_zero(wires, block_b, (2, 3))
    wires.run()
    assert wires.get_decided(2) == wires.get_decided(3) == [block_b[0]]
    assert wires.get_decided(1) == []
    wires.nodes[1].validate_prevote(0, block_a[0])

    wires.cut = set()
    node = wires.nodes[1]
    wires.route(1, node.keep(node.engine.on_timeout("rebroadcast", HEIGHT, 0)))
    wires.run()
    assert wires.get_decided(1) == [block_b[0]]
