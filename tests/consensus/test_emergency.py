"""The emergency protocol, function by function, without the event loop: the alarm, views,
the target, plans, certified sync and the engine that carries them (on a real small chain,
real keys and real certificates)."""

from __future__ import annotations

import pytest
import rlp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chain.blocks import encode_block
from chain.execution import build_block
from chain.genesis import GenesisSpec, build_genesis, derive_funded_accounts
from chain.history import History
from chain.store import MemoryStore
from consensus.emergency import (
    MAX_VIEW_SENDS,
    NO_BAD_HEIGHT,
    PLAN_HEIGHT,
    VIEW_GATHER,
    VIEW_RESEND,
    Alarm,
    EmergencyEngine,
    EmergencyError,
    HaltView,
    InvalidView,
    PlanRejected,
    RestorePlan,
    RollbackCertificate,
    SyncBlocks,
    SyncRequest,
    check_plan_shape,
    check_target_before,
    compute_target,
    decode_plan,
    encode_plan,
    find_view_conflict,
    get_plan_fork_id,
    make_view,
    on_block_committed,
    sign_view,
    validate_view,
    verify_rollback_certificate,
    verify_synced_block,
)
from consensus.messages import PRECOMMIT, CertificateError, CommitCertificate, ValidatorSet, Vote, sign_message
from consensus.tendermint import Broadcast, Engine, ScheduleTimeout, SendTo
from validators.keys import derive_validator_keys
from validators.node import NodeChain, NodeView, make_block_decoder

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEYS = derive_validator_keys(5, 7)
ROOT_A = b"\xaa" * 32


def validator_set(count: int) -> ValidatorSet:
    return ValidatorSet(tuple(k.public_key for k in KEYS[:count]), (1,) * count)


def view_of(index: int, last: int, first_bad: int, roots=None, fork_id: int = 0) -> HaltView:
    roots = roots or (lambda h: bytes([h % 256]) * 32)
    return sign_view(KEYS[index].private_key, make_view(index, fork_id, last, first_bad, roots))


# ---------------------------------------------------------------- the alarm


def test_the_alarm_halts_after_the_deviation_stood_for_the_delay():
    alarm = Alarm(deviation_bps=2000, delay_blocks=2)
    good, bad = {0: 100, 1: 50}, {0: 0, 1: 50}
    alarm = on_block_committed(alarm, 4, good, good)
    assert alarm.first_bad_height == NO_BAD_HEIGHT and not alarm.is_halted
    alarm = on_block_committed(alarm, 5, bad, good)
    assert (alarm.first_bad_height, alarm.deviating_markets, alarm.halt_height) == (5, (0,), None)
    alarm = on_block_committed(alarm, 6, good, good)
    assert alarm.halt_height is None  # the deviation is remembered even once prices look right
    alarm = on_block_committed(alarm, 7, good, good)
    assert alarm.halt_height == 7
    assert on_block_committed(alarm, 8, bad, good) == alarm  # halted: nothing changes any more


def test_an_operator_halt_needs_no_deviation_and_a_small_move_raises_no_alarm():
    alarm = Alarm(deviation_bps=2000, delay_blocks=1, operator_halt_height=3)
    alarm = on_block_committed(alarm, 2, {0: 110}, {0: 100})  # 10% < 20%
    assert alarm.first_bad_height == NO_BAD_HEIGHT and alarm.halt_height is None
    alarm = on_block_committed(alarm, 3, {0: 100}, {0: 100})
    assert alarm.halt_height == 3 and alarm.first_bad_height == NO_BAD_HEIGHT


@pytest.mark.parametrize("expected, onchain, deviates", [
    ({0: 2000, 1: -60}, {0: 0, 1: -60}, (0,)),  # a reset to 0
    ({0: 2000, 1: -60}, {0: 2000, 1: 60}, (1,)),  # a sign flip of a negative index
    ({0: 2000, 1: -60}, {0: 2300, 1: -60}, ()),  # 15 %: under the 20 % threshold
    ({0: 0, 1: 0}, {0: 0, 1: 1}, (1,)),  # any change of an index that should stay 0
])
def test_the_alarm_sees_a_funding_index_the_validator_did_not_compute(expected, onchain, deviates):
    prices = {0: 100, 1: 50}
    alarm = on_block_committed(Alarm(deviation_bps=2000, delay_blocks=0), 9, prices, prices, onchain, expected)
    assert alarm.deviating_funding == deviates and alarm.deviating_markets == ()
    assert (alarm.first_bad_height, alarm.halt_height) == ((9, 9) if deviates else (NO_BAD_HEIGHT, None))


def test_without_funding_to_compare_only_prices_raise_the_alarm():
    prices = {0: 100}
    alarm = on_block_committed(Alarm(2000, 0), 3, prices, prices, {0: 0}, None)
    assert alarm.first_bad_height == NO_BAD_HEIGHT


# ---------------------------------------------------------------- views


def test_a_well_formed_signed_view_validates():
    vset = validator_set(4)
    view = view_of(2, 10, 7)
    assert validate_view(view, vset, 0) == view
    assert view.root_at(10) == bytes([10]) * 32 and view.root_at(11) is None


def _malformed_views():
    good = view_of(1, 10, 7)
    key = KEYS[1].private_key
    return {
        "another fork": sign_view(key, good.copy(fork_id=1, signature=b"")),
        "unknown validator": good.copy(validator=9),
        "window too long": sign_view(key, make_view(1, 0, 100, 7, lambda h: ROOT_A).copy(window_start=0, roots=(ROOT_A,) * 101)),
        "roots do not fill the window": sign_view(key, good.copy(roots=good.roots[:-1], signature=b"")),
        "first bad above its last height": sign_view(key, good.copy(first_bad_height=11, signature=b"")),
        "signed by someone else": sign_view(KEYS[2].private_key, good.copy(signature=b"")),
        "unsigned": good.copy(signature=b""),
        "a root that is not bytes": good.copy(roots=(None,) * len(good.roots)),
        "a negative height": good.copy(window_start=-1),
        "high-s signature": good.copy(signature=_flip_s(good.signature)),
        "not a view at all": SyncRequest(0, 1, 1),
    }


def _flip_s(signature: bytes) -> bytes:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v ^ 1])


@pytest.mark.parametrize("what", sorted(_malformed_views()))
def test_a_malformed_view_is_refused_with_a_typed_error_never_a_crash(what):
    # Bug pinned: a view whose roots did not fill its window raised IndexError in every
    # honest validator that computed a target from it.
    with pytest.raises(InvalidView):
        validate_view(_malformed_views()[what], validator_set(4), 0)


@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_view_or_raise_an_rlp_error(raw):
    try:
        view = rlp.decode(raw, sedes=HaltView)
    except (rlp.DecodingError, rlp.DeserializationError):
        return
    with pytest.raises(InvalidView):
        validate_view(view, validator_set(4), 0)  # never signed by anyone


def test_a_view_contradicting_the_certified_chain_is_evidence():
    certified = {h: bytes([h]) * 32 for h in range(0, 9)}
    honest = view_of(1, 8, 5)
    assert find_view_conflict(honest, certified.get) is None
    lying = view_of(2, 8, 5, roots=lambda h: b"\x00" * 32 if h == 6 else bytes([h]) * 32)
    conflict = find_view_conflict(lying, certified.get)
    assert conflict is not None and (conflict.height, conflict.certified_root) == (6, certified[6])


# ---------------------------------------------------------------- the target


def test_the_target_is_the_height_before_the_first_bad_one_f_plus_one_vouch_for():
    vset = validator_set(4)  # f = 1
    views = [view_of(0, 12, 9), view_of(1, 12, 9), view_of(2, 12, 9), view_of(3, 12, 1)]
    target = compute_target(views, vset, 0)
    assert (target.height, target.state_root) == (8, bytes([8]) * 32)  # one Byzantine "1" cannot drag it back


def test_views_without_a_quorum_give_no_target():
    with pytest.raises(EmergencyError, match="quorum"):
        compute_target([view_of(0, 12, 9), view_of(1, 12, 9)], validator_set(4), 0)


def test_malformed_views_are_left_out_of_the_target_not_a_crash():
    vset = validator_set(4)
    broken = view_of(3, 12, 9).copy(roots=(ROOT_A,))  # window 0..12 with one root
    views = [view_of(0, 12, 9), view_of(1, 12, 9), view_of(2, 12, 9), broken]
    assert compute_target(views, vset, 0).height == 8
    with pytest.raises(EmergencyError):
        compute_target(views[1:], vset, 0)  # without it there is no quorum left


@settings(max_examples=50, deadline=None)
@given(down=st.sampled_from([0, 1, 2, 3, 4]), late=st.integers(11, 20),
       chosen=st.sets(st.integers(0, 6), min_size=5, max_size=7))
@example(down=0, late=15, chosen={0, 1, 4, 5, 6})
# The bug this pins: 7 validators, one honest validator down (its view says it saw nothing),
# two Byzantine ones reporting a late first bad height, and a proposer choosing which views
# its plan carries moved the certified target from height 9 to 14, inside the corrupted
# window; every honest validator signed it because none compared it with its own chain.
def test_no_choice_of_views_gets_a_target_past_what_an_honest_validator_saw(down, late, chosen):
    vset = validator_set(7)  # f = 2; validators 5 and 6 are Byzantine
    first_bad = 10
    views = {i: view_of(i, 20, NO_BAD_HEIGHT if i == down else first_bad) for i in range(5)}
    views.update({i: view_of(i, 20, late) for i in (5, 6)})
    plan_views = tuple(views[i] for i in sorted(chosen))
    try:
        target = compute_target(plan_views, vset, 0)
    except EmergencyError:
        return  # no plan at all: safe
    plan = _plan(target.height, target.state_root, plan_views, halt=20)
    if target.height < first_bad:
        check_target_before(plan, first_bad)  # an honest validator accepts a sound target
    else:
        with pytest.raises(PlanRejected, match="first corrupted height"):
            check_target_before(plan, first_bad)


def test_a_validator_that_found_no_corruption_signs_no_rollback():
    plan = _plan(8, ROOT_A, (), halt=12)
    with pytest.raises(PlanRejected, match="no corrupted height"):
        check_target_before(plan, NO_BAD_HEIGHT)


# ---------------------------------------------------------------- plans


def _plan(target: int, snapshot: bytes, views, *, halt: int, mode: str = "full-rollback", old: int = 0,
          new: int | None = None, expected: bytes | None = None) -> RestorePlan:
    zero = b"\x00" * 32
    return RestorePlan(old, old + 1 if new is None else new, halt, target, snapshot, mode, zero, zero, zero,
                       zero, snapshot if expected is None else expected, tuple(views))


def _quorum_views(last: int = 12, first_bad: int = 9, count: int = 4):
    return tuple(view_of(i, last, first_bad) for i in range(count))


def test_a_plan_survives_its_encoding_and_garbage_decodes_to_none():
    plan = _plan(8, bytes([8]) * 32, _quorum_views(), halt=12)
    assert decode_plan(encode_plan(plan)) == plan
    assert decode_plan(encode_plan(plan)).hash == plan.hash
    for raw in (b"", b"no-plan", b"\xc0", encode_plan(plan)[:-3], rlp.encode([1, 2, 3])):
        assert decode_plan(raw) is None


def test_check_plan_shape_accepts_the_plan_its_views_imply():
    vset = validator_set(4)
    plan = _plan(8, bytes([8]) * 32, _quorum_views(), halt=12)
    assert check_plan_shape(plan, vset).height == 8


@pytest.mark.parametrize("fault, match", [
    ("mode", "unknown mode"),
    ("fork", "plus one"),
    ("target", "not what its views imply"),
    ("snapshot", "not what its views imply"),
    ("view past the halt", "past the halt height"),
    ("no quorum", "quorum"),
])
def test_check_plan_shape_rejects_each_planted_fault(fault, match):
    vset = validator_set(4)
    views = _quorum_views()
    plan = {
        "mode": _plan(8, bytes([8]) * 32, views, halt=12, mode="yolo"),
        "fork": _plan(8, bytes([8]) * 32, views, halt=12, new=5),
        "target": _plan(7, bytes([7]) * 32, views, halt=12),
        "snapshot": _plan(8, ROOT_A, views, halt=12),
        "view past the halt": _plan(8, bytes([8]) * 32, views, halt=11),
        "no quorum": _plan(8, bytes([8]) * 32, views[:2], halt=12),
    }[fault]
    with pytest.raises(PlanRejected, match=match):
        check_plan_shape(plan, vset)


def _precommits(fork_id: int, height: int, block_hash: bytes, signers) -> tuple[Vote, ...]:
    return tuple(sign_message(KEYS[i].private_key, Vote(fork_id, height, 0, PRECOMMIT, block_hash, i))
                 for i in signers)


def test_a_rollback_certificate_verifies_only_for_its_plan_domain_and_a_quorum():
    vset = validator_set(4)
    plan = _plan(8, bytes([8]) * 32, _quorum_views(), halt=12)
    domain = get_plan_fork_id(plan.new_fork_id)
    good = CommitCertificate(domain, PLAN_HEIGHT, 0, plan.hash, _precommits(domain, PLAN_HEIGHT, plan.hash, [0, 1, 2]))
    assert verify_rollback_certificate(RollbackCertificate(plan, good), vset) == 3
    other = _plan(7, bytes([7]) * 32, _quorum_views(first_bad=8), halt=12)
    forged = {
        "another plan": RollbackCertificate(other, good),
        "the new fork's own domain": RollbackCertificate(plan, CommitCertificate(
            1, PLAN_HEIGHT, 0, plan.hash, _precommits(1, PLAN_HEIGHT, plan.hash, [0, 1, 2]))),
        "two signers": RollbackCertificate(plan, CommitCertificate(
            domain, PLAN_HEIGHT, 0, plan.hash, _precommits(domain, PLAN_HEIGHT, plan.hash, [0, 1]))),
        "one signer three times": RollbackCertificate(plan, CommitCertificate(
            domain, PLAN_HEIGHT, 0, plan.hash, _precommits(domain, PLAN_HEIGHT, plan.hash, [0, 0, 0]))),
    }
    for what, rollback in forged.items():
        with pytest.raises((EmergencyError, CertificateError)):
            verify_rollback_certificate(rollback, vset)


# ---------------------------------------------------------------- a real small chain


class SmallChain:
    """Genesis plus `length` empty blocks, each certified by validators 0..2 of 4."""

    def __init__(self, length: int):
        self.store = MemoryStore()
        pairs = derive_funded_accounts(3, 2, 10**18)
        genesis = build_genesis(self.store, GenesisSpec(seed=3, accounts=tuple(a for _, a in pairs)))
        self.vset = validator_set(4)
        self.blocks = []
        self.certificates = []
        parent = genesis.header
        for height in range(1, length + 1):
            block = build_block(self.store, parent, [], proposer=b"\x01" * 20, timestamp=height).block
            self.blocks.append(block)
            self.certificates.append(CommitCertificate(0, height, 0, block.hash,
                                                       _precommits(0, height, block.hash, [0, 1, 2])))
            parent = block.header
        self.genesis = genesis

    def node(self, index: int, upto: int) -> NodeChain:
        history = History.create(self.store, self.genesis.header, view=f"v{index}")
        view = NodeView(index, bytes([index]) * 20, history, 0, feed=lambda h: {}, read_prices=lambda r: {})
        for block, cert in zip(self.blocks[:upto], self.certificates[:upto]):
            history.append(block)
            view.note_commit(block, encode_block(block), cert)
        return NodeChain(view, 0, self.vset, make_block_decoder(None))


@pytest.fixture(scope="module")
def small_chain():
    return SmallChain(6)


def _engine(chain: NodeChain, index: int) -> EmergencyEngine:
    vset = chain.validator_set
    plan_engine = Engine(get_plan_fork_id(1), vset, index, propose=lambda h, r: (b"\x01" * 32, b"p"),
                         is_valid=lambda h, b, p: False,
                         signer=lambda m: sign_message(KEYS[index].private_key, m))
    return EmergencyEngine(index, vset, 0, chain, plan_engine,
                           lambda view: sign_view(KEYS[index].private_key, view))


def test_a_synced_block_needs_a_certificate_for_that_block_at_that_height(small_chain):
    vset, block, cert = small_chain.vset, small_chain.blocks[0], small_chain.certificates[0]
    verify_synced_block(encode_block(block), cert, block.hash, 1, 0, vset)
    faults = {
        "height": (cert, 2, 0),
        "fork": (cert, 1, 1),
        "block": (CommitCertificate(0, 1, 0, small_chain.blocks[1].hash, cert.votes), 1, 0),
        "power": (CommitCertificate(0, 1, 0, block.hash, cert.votes[:2]), 1, 0),
    }
    for what, (certificate, height, fork) in faults.items():
        with pytest.raises(EmergencyError):
            verify_synced_block(encode_block(block), certificate, block.hash, height, fork, vset)


def test_the_engine_sends_its_view_and_starts_the_plan_vote_only_after_the_gather_time(small_chain):
    engine = _engine(small_chain.node(0, 6), 0)
    actions = engine.on_start(PLAN_HEIGHT)
    views = [a.message for a in actions if isinstance(a, Broadcast)]
    assert len(views) == 1 and views[0].last_height == 6 and validate_view(views[0], small_chain.vset, 0)
    assert {a.kind for a in actions if isinstance(a, ScheduleTimeout)} == {VIEW_RESEND, VIEW_GATHER}
    assert engine.height == -1  # the plan engine has not started
    engine.on_timeout(VIEW_GATHER, PLAN_HEIGHT, 0)
    assert engine.height == PLAN_HEIGHT


def test_a_view_from_further_ahead_makes_a_laggard_sync_certified_blocks_and_resign(small_chain):
    ahead, behind = small_chain.node(1, 6), small_chain.node(2, 3)
    server, laggard = _engine(ahead, 1), _engine(behind, 2)
    server_view = [a.message for a in server.on_start(PLAN_HEIGHT) if isinstance(a, Broadcast)][0]
    laggard.on_start(PLAN_HEIGHT)
    asks = laggard.on_message(server_view)
    request = [a for a in asks if isinstance(a, SendTo)]
    assert len(request) == 1 and request[0].validator == 1 and request[0].message == SyncRequest(0, 4, 2)
    answer = server.on_message(request[0].message)
    assert isinstance(answer[0].message, SyncBlocks) and len(answer[0].message.blocks) == 3
    resent = laggard.on_message(answer[0].message)
    assert behind.height == 6
    assert [a.message.last_height for a in resent if isinstance(a, Broadcast)] == [6]


def test_synced_blocks_with_a_forged_certificate_are_refused(small_chain):
    behind = small_chain.node(3, 3)
    laggard = _engine(behind, 3)
    block = small_chain.blocks[3]
    weak = CommitCertificate(0, 4, 0, block.hash, small_chain.certificates[3].votes[:2])
    laggard.on_message(SyncBlocks(0, ((encode_block(block), weak),)))
    assert behind.height == 3
    other = small_chain.blocks[4]  # a real block, certified, but not the next one
    laggard.on_message(SyncBlocks(0, ((encode_block(other), small_chain.certificates[4]),)))
    assert behind.height == 3


def test_the_engine_keeps_valid_views_counts_malformed_ones_and_convicts_contradicting_ones(small_chain):
    engine = _engine(small_chain.node(0, 6), 0)
    engine.on_start(PLAN_HEIGHT)
    good = sign_view(KEYS[1].private_key, make_view(1, 0, 6, 0, small_chain.node(1, 6).get_certified_root))
    assert engine.on_message(good) == [] and engine.views[1] == good
    bad_views = [v for v in _malformed_views().values() if isinstance(v, HaltView)]
    for bad in bad_views:
        assert engine.on_message(bad) == []
    assert engine.rejected_views == len(bad_views)
    lying = view_of(2, 6, 0, roots=lambda h: ROOT_A)
    engine.on_message(lying)
    assert 2 not in engine.views and engine.conflicts and engine.conflicts[0].view == lying


def test_views_are_resent_a_bounded_number_of_times(small_chain):
    engine = _engine(small_chain.node(0, 6), 0)
    engine.on_start(PLAN_HEIGHT)
    sends = 1
    for _ in range(MAX_VIEW_SENDS + 5):
        actions = engine.on_timeout(VIEW_RESEND, PLAN_HEIGHT, 0)
        sends += sum(isinstance(a, Broadcast) for a in actions)
        if not actions:
            break
    assert sends == MAX_VIEW_SENDS


def test_an_honest_node_rejects_a_plan_whose_target_its_own_chain_calls_corrupted(small_chain):
    # Planted fault: f+1 views report the corruption later than this validator saw it. The
    # plan is consistent with its views and the node would recompute the very same plan;
    # only its own first bad height stops it.
    from validators.node import PlanApp

    node = small_chain.node(0, 6)
    node.view.alarm = Alarm(2000, 1, first_bad_height=4, halt_height=6)
    views = tuple(view_of(i, 6, 6 if i < 3 else 4, roots=node.get_certified_root) for i in range(4))
    plan = _plan(5, node.get_certified_root(5), views, halt=6)
    assert check_plan_shape(plan, small_chain.vset).height == 5
    app = PlanApp(view=node.view, validator_set=small_chain.vset, known_views=lambda: views,
                  compute_plan=lambda vs: plan, on_certificate=lambda *a: None)
    assert not app.is_valid(PLAN_HEIGHT, plan.hash, encode_plan(plan))
    assert "first corrupted height 4" in app.rejections[-1][1]
    sound = _plan(3, node.get_certified_root(3), tuple(view_of(i, 6, 4, roots=node.get_certified_root)
                                                         for i in range(4)), halt=6)
    app.compute_plan = lambda vs: sound
    assert app.is_valid(PLAN_HEIGHT, sound.hash, encode_plan(sound))


def test_a_view_claiming_blocks_nobody_served_never_gets_into_a_plan(small_chain):
    # Bug this pins: a Byzantine view claiming a last height past everyone's head was kept as
    # that validator's view, and every plan an honest proposer built from it was rejected by
    # every honest validator ("view past the halt height"): no certificate, ever.
    engine = _engine(small_chain.node(0, 6), 0)
    engine.on_start(PLAN_HEIGHT)
    honest = sign_view(KEYS[1].private_key, make_view(1, 0, 6, 0, small_chain.node(1, 6).get_certified_root))
    engine.on_message(honest)
    boast = view_of(1, 9, 0, roots=lambda h: small_chain.node(1, 6).get_certified_root(h) or ROOT_A)
    asks = engine.on_message(boast)
    assert [a.message for a in asks if isinstance(a, SendTo)] == [SyncRequest(0, 7, 0)]
    assert engine.get_known_views()[1] == honest  # still the view it could check


def test_a_laggard_adopts_the_views_it_could_not_check_once_it_synced(small_chain):
    ahead, behind = small_chain.node(1, 6), small_chain.node(2, 3)
    server, laggard = _engine(ahead, 1), _engine(behind, 2)
    view = [a.message for a in server.on_start(PLAN_HEIGHT) if isinstance(a, Broadcast)][0]
    laggard.on_start(PLAN_HEIGHT)
    request = [a for a in laggard.on_message(view) if isinstance(a, SendTo)][0]
    assert 1 not in laggard.views
    laggard.on_message(server.on_message(request.message)[0].message)
    assert laggard.views[1] == view


def test_a_malformed_sync_answer_is_ignored_never_a_crash(small_chain):
    behind = small_chain.node(3, 3)
    laggard = _engine(behind, 3)
    good = (encode_block(small_chain.blocks[3]), small_chain.certificates[3])
    for junk in (None, [good], ((b"x",),), ((1, 2),), ((b"not a block", small_chain.certificates[3]),)):
        assert laggard.on_message(SyncBlocks(0, junk)) == []
    assert behind.height == 3
    laggard.on_message(SyncBlocks(0, (good,)))
    assert behind.height == 4
