"""Every check is worth the fault it catches: each test plants the fault its check guards
against, on the record of one real (small) run, and sees the check fail with a detail that
names it; the untouched record holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

import scenarios
from chain.blocks import Block
from chain.transactions import sign_legacy
from consensus.messages import Vote, sign_message
from scenarios.checks import (
    EXEMPT,
    FAILED,
    HELD,
    NOT_REACHED,
    check_agreement,
    check_certificate,
    check_compensation_paid,
    check_exchange_conservation,
    check_forensics,
    check_full_rollback,
    check_halt,
    check_l1_l2_conservation,
    check_liveness,
    check_no_double_sign,
    check_replay_protection,
    check_restored_roots,
    check_target,
    check_validity,
    get_promised_checks,
    judge_run,
)
from scenarios.report import build_report, is_report_ok
from scenarios.runner import run_scenario_once, total_supply


@pytest.fixture(scope="module")
def done():
    run, virtual_s, wall_s = run_scenario_once(scenarios.load("paradex-2026", small=True))
    return run, build_report(run, virtual_s, wall_s)


def test_the_untouched_run_holds_every_promised_check(done):
    run, report = done
    assert list(report["checks"]) == list(get_promised_checks("full-rollback"))
    assert all(c["status"] == HELD for c in report["checks"].values()), report["checks"]
    assert is_report_ok(report)


def test_validity_catches_a_tampered_committed_block_with_every_memo_on(done):
    run, _ = done
    final = run.reference.view.history
    height = next(h for h in range(1, final.height + 1) if len(final.block_at(h).transactions) >= 2)
    tampered = final.fork("tampered")
    tampered.truncate_above(height - 1)
    honest = final.block_at(height)
    swapped = Block(honest.header, tuple(reversed(honest.transactions)))  # same header, same hash
    assert swapped.hash == honest.hash and run.cache  # the execution memo holds this block's result
    tampered.append(swapped)
    check = check_validity(run.store, tampered, run.cache)
    assert check.status == FAILED and f"height {height}" in check.detail and "transactions root" in check.detail
    assert check_validity(run.store, tampered, None).status == FAILED
    assert check_validity(run.store, final, run.cache).status == HELD


def test_halt_catches_a_commit_past_the_agreed_halt_height(done):
    run, _ = done
    halt = run.halt_height
    assert check_halt([halt - 1, halt], halt).status == HELD
    check = check_halt([halt, halt + 1], halt)
    assert check.status == FAILED and str(halt + 1) in check.detail
    assert check_halt([3], None).status == NOT_REACHED


def test_certificate_catches_a_forged_rollback_certificate(done):
    run, _ = done
    vset = run.validator_set
    assert check_certificate(run.plan, run.certificate, vset).status == HELD
    weak = replace(run.certificate, votes=run.certificate.votes[:2])
    assert check_certificate(run.plan, weak, vset).status == FAILED
    other_plan = run.plan.copy(expected_root=b"\x11" * 32)
    check = check_certificate(other_plan, run.certificate, vset)
    assert check.status == FAILED and "another plan" in check.detail
    assert check_certificate(None, None, vset).status == NOT_REACHED


def test_target_catches_a_rollback_point_inside_the_corrupted_window(done):
    run, _ = done
    found = {n.index: n.view.first_bad_height for n in run.honest}
    assert check_target(run.plan, found).status == HELD
    late = run.plan.copy(target_height=min(found.values()))
    check = check_target(late, found)
    assert check.status == FAILED and f"target {late.target_height}" in check.detail
    assert check_target(run.plan, {i: 0 for i in found}).status == FAILED


def test_restored_roots_catch_a_validator_off_the_snapshot(done):
    run, _ = done
    expected = run.plan.expected_root
    restored = {n.index: n.view.restored_root for n in run.honest}
    assert check_restored_roots(restored, {}, expected).status == HELD
    off = {**restored, 2: b"\x22" * 32}
    check = check_restored_roots(off, {}, expected)
    assert check.status == FAILED and "[2]" in check.detail
    check = check_restored_roots(restored, {1: "restored root 0xab != certificate's expected 0xcd"}, expected)
    assert check.status == FAILED and "validator 1" in check.detail
    assert check_restored_roots({i: None for i in restored}, {}, expected).status == FAILED


def test_full_rollback_catches_an_account_that_differs_from_the_snapshot(done):
    run, _ = done
    snapshot = run.snapshot_root_before_restore
    assert check_full_rollback(run.store, snapshot, run.plan.expected_root).status == HELD
    later = run.reference.view.history.head.state_root  # the restarted chain: accounts moved since
    check = check_full_rollback(run.store, snapshot, later)
    assert check.status == FAILED and "accounts differ" in check.detail


def test_no_double_sign_catches_an_honest_validator_signing_two_values_in_a_slot(done):
    run, _ = done
    trace = run.chain_phase.trace
    assert check_no_double_sign([trace]).status == HELD
    node = run.honest[0]
    first = next(m for m in trace.messages if isinstance(m, Vote) and m.validator == node.index and m.block_hash)
    second = sign_message(node.key.private_key, replace(first, block_hash=b"\x33" * 32, signature=b""))
    planted = replace(trace, messages=[*trace.messages, second])
    check = check_no_double_sign([planted])
    assert check.status == FAILED and str(node.index) in check.detail


def test_agreement_catches_two_honest_decisions_at_one_height_and_is_exempt_past_a_third(done):
    run, _ = done
    trace = run.chain_phase.trace
    vset = run.validator_set
    assert check_agreement([trace], 0, vset).status == HELD
    d = next(d for d in trace.decisions if d.node in trace.honest)
    other = next(i for i in trace.honest if i != d.node)
    split = replace(trace, decisions=[*trace.decisions, replace(d, node=other, block_hash=b"\x44" * 32)])
    check = check_agreement([split], 0, vset)
    assert check.status == FAILED and f"height {d.height}" in check.detail
    assert check_agreement([split], vset.max_faulty_power + 1, vset).status == EXEMPT


def test_forensics_catches_an_honest_validator_convicted(done):
    run, _ = done
    vset = run.validator_set
    assert check_forensics([], [], False, vset).status == HELD
    check = check_forensics([1], [], False, vset)
    assert check.status == FAILED and "[1]" in check.detail
    assert check_forensics([0], [0, 1], True, vset).status == FAILED  # a split needs more than f convicted


def test_replay_protection_catches_an_old_transaction_that_still_applies(done):
    run, _ = done
    final = run.reference.view.history
    discarded = run.recovery.discarded_transactions
    assert check_replay_protection(run.store, final, discarded).status == HELD
    owner = run.world.market.owner_key
    from chain.state import get_nonce
    nonce = get_nonce(run.store, final.head.state_root, run.world.market.owner)
    replayable = sign_legacy(owner, nonce=nonce, to=b"\x55" * 20, value=1, gas_price=0, fork_id=final.head.fork_id)
    check = check_replay_protection(run.store, final, (*discarded, replayable))
    assert check.status == FAILED and "1 replayed" in check.detail


def test_conservation_catches_wei_created_or_destroyed(done):
    run, _ = done
    final = run.reference.view.history
    genesis, now = total_supply(run, final.root_at(0)), total_supply(run, final.head.state_root)
    assert check_l1_l2_conservation(genesis, now, 0, 0).status == HELD
    assert check_l1_l2_conservation(genesis, now + 1, 0, 0).status == FAILED
    assert check_l1_l2_conservation(genesis, now, 10, 0).status == FAILED  # L1 paid, nothing settled
    assert check_exchange_conservation(100, 60, 30, 10).status == HELD
    check = check_exchange_conservation(101, 60, 30, 10)
    assert check.status == FAILED and "balance 101" in check.detail


def test_compensation_and_liveness_catch_an_unpaid_refund_and_a_stalled_restart(done):
    run, report = done
    planned = report["compensation"]["total"]
    assert check_compensation_paid(planned, planned, 1).status == HELD
    assert check_compensation_paid(planned + 1, planned, 1).status == FAILED
    final = run.reference.view.history
    assert check_liveness(final.height, final.height, 1, 1).status == HELD
    check = check_liveness(final.height - 1, final.height, 1, 1)
    assert check.status == FAILED and f"height {final.height - 1}" in check.detail
    assert check_liveness(final.height, final.height, 0, 1).status == FAILED  # never left the old fork


def test_a_run_that_never_halts_is_not_reported_as_held(done):
    run, _ = done
    # The same record, judged as if no plan had been certified: nothing past the halt holds.
    stalled = replace(run, emergency=replace(run.emergency, plan=None, certificate=None), restart=None,
                      recovery=None)
    checks = judge_run(stalled, [])
    assert checks["certificate"].status == NOT_REACHED
    assert checks["liveness"].status == NOT_REACHED and not checks["liveness"].ok
    assert not all(c.ok for c in checks.values())
