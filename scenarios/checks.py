"""The verdict: one function per check over what a run recorded, each returning a `Check`.

A check's status is `held`, `failed`, `not_reached` (the run never got to the step it
judges) or `exempt` (the guarantee does not apply, and the detail says why); `ok` is true
for `held` and `exempt` only. Every check the scenario's settings promise is present in
every report: a run that stops early lists the rest as `not_reached`, never as held.

Each check takes plain inputs (roots, heights, histories, traces), so a test can plant the
fault it guards against and see it fail. `check_validity` may use the execution memo: it is
keyed by the parent root and the block's full bytes and holds only results that passed every
check, so a hit is the very block already verified, and any other bytes run for real.

Who is honest is known here: the checks judge the run afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from chain.diff import diff_roots
from chain.errors import ChainError
from chain.execution import ExecutionCache, apply_block, build_block
from chain.history import History
from chain.store import Store
from consensus.checks import check_agreement as check_trace_agreement
from consensus.checks import check_no_double_sign as check_trace_double_sign
from consensus.emergency import EmergencyError, RestorePlan, RollbackCertificate, verify_rollback_certificate
from consensus.messages import CertificateError, CommitCertificate, ValidatorSet
from consensus.sim import Trace

HELD, FAILED, NOT_REACHED, EXEMPT = "held", "failed", "not_reached", "exempt"
STATUSES = (HELD, FAILED, NOT_REACHED, EXEMPT)


@dataclass(frozen=True)
class Check:
    """One check's verdict and a one-line detail naming what it found."""

    status: str
    detail: str

    def __post_init__(self) -> None:
        assert self.status in STATUSES, self.status

    @property
    def ok(self) -> bool:
        return self.status in (HELD, EXEMPT)

    def to_json(self) -> dict:
        return {"ok": self.ok, "status": self.status, "detail": self.detail}


def _verdict(held: bool, detail: str) -> Check:
    return Check(HELD if held else FAILED, detail)


def not_reached(why: str) -> Check:
    """A check of a step the run never got to."""
    return Check(NOT_REACHED, why)


# ---------------------------------------------------------------- consensus


def check_agreement(traces: Sequence[Trace], byzantine_power: int, validator_set: ValidatorSet) -> Check:
    """Honest validators decided the same block at every height of every phase; exempt when
    the Byzantine power is at least a third (no BFT protocol promises agreement then)."""
    broken = [r for r in (check_trace_agreement(t) for t in traces) if not r.ok]
    if not broken:
        return Check(HELD, "honest validators decided the same block at every height of every phase")
    if byzantine_power > validator_set.max_faulty_power:
        return Check(EXEMPT, f"broken, as BFT allows with Byzantine power {byzantine_power} of "
                             f"{validator_set.total_power} (at least a third): {broken[0].detail}")
    return Check(FAILED, broken[0].detail)


def check_forensics(culprits: Iterable[int], byzantine: Iterable[int], agreement_broken: bool,
                    validator_set: ValidatorSet) -> Check:
    """No honest validator is convicted; when agreement broke, more than a third of the
    power is convicted from signed messages alone (the accountability guarantee)."""
    culprits, byzantine = set(culprits), set(byzantine)
    framed = sorted(culprits - byzantine)
    if framed:
        return Check(FAILED, f"honest validators {framed} convicted")
    if agreement_broken:
        power = validator_set.get_power(culprits)
        return _verdict(power > validator_set.max_faulty_power,
                        f"convicted {sorted(culprits)} (power {power}, need > {validator_set.max_faulty_power})")
    return Check(HELD, f"convicted {sorted(culprits)}; no honest validator among them")


def check_no_double_sign(traces: Sequence[Trace]) -> Check:
    """No honest validator signed two different messages in one slot, across every fork."""
    bad = [r for r in (check_trace_double_sign(t) for t in traces) if not r.ok]
    return _verdict(not bad, bad[0].detail if bad else
                    "no honest validator signed two values in one slot, across every fork")


# ---------------------------------------------------------------- the chain


def check_validity(store: Store, history: History, cache: ExecutionCache | None = None) -> Check:
    """Every block of the final chain re-executes to the roots it claims."""
    for height in range(1, history.height + 1):
        try:
            apply_block(store, history.root_at(height - 1), history.block_at(height), cache=cache)
        except ChainError as error:
            return Check(FAILED, f"height {height}: {error}")
    return Check(HELD, f"all {history.height} blocks of the final chain re-execute to their roots")


def check_halt(decided_heights: Iterable[int], halt_height: int | None) -> Check:
    """Nothing was committed on the halted fork above the halt height the validators agreed."""
    if halt_height is None:
        return not_reached("no halt was agreed")
    highest = max(decided_heights, default=0)
    return _verdict(highest <= halt_height,
                    f"highest height committed on the halted fork {highest}, agreed halt height {halt_height}")


# ---------------------------------------------------------------- the emergency upgrade


def check_certificate(plan: RestorePlan | None, certificate: CommitCertificate | None,
                      validator_set: ValidatorSet) -> Check:
    """The rollback certificate verifies from its own contents (signatures, power, plan)."""
    if plan is None or certificate is None:
        return not_reached("no rollback certificate was formed")
    try:
        power = verify_rollback_certificate(RollbackCertificate(plan, certificate), validator_set)
    except (CertificateError, EmergencyError) as error:
        return Check(FAILED, f"the rollback certificate does not verify: {error}")
    return Check(HELD, f"rollback certificate verifies from the report: power {power} of "
                       f"{validator_set.total_power} (quorum {validator_set.quorum})")


def check_target(plan: RestorePlan | None, first_bad_heights: Mapping[int, int]) -> Check:
    """The certified target lies below the first corrupted height every honest validator
    found on its own chain (`first_bad_heights`: validator -> height, 0 for none)."""
    if plan is None:
        return not_reached("no plan was certified")
    found = {i: h for i, h in first_bad_heights.items() if h}
    if not found:
        return Check(FAILED, f"target {plan.target_height} certified though no honest validator found corruption")
    earliest = min(found.values())
    return _verdict(plan.target_height < earliest,
                    f"target {plan.target_height}; the first corrupted height honest validators found is {earliest}")


def check_restored_roots(restored: Mapping[int, bytes | None], errors: Mapping[int, str | None],
                         expected_root: bytes | None) -> Check:
    """Every honest validator that applied the plan is on the certificate's expected root
    (`restored`: validator -> root, None for one that never got the certificate)."""
    if expected_root is None:
        return not_reached("no plan was certified")
    faults = [f"validator {i}: {e}" for i, e in sorted(errors.items()) if e]
    off = [i for i, root in sorted(restored.items()) if root is not None and root != expected_root]
    landed = [i for i, root in sorted(restored.items()) if root == expected_root]
    if faults:
        return Check(FAILED, faults[0])
    if off:
        return Check(FAILED, f"validators {off} restored to another root than the certificate's")
    if not landed:
        return Check(FAILED, "no honest validator restored")
    missing = [i for i, root in sorted(restored.items()) if root is None]
    return Check(HELD, f"{len(landed)} honest validators on the certificate's expected root"
                       + (f"; {missing} never received it (down)" if missing else ""))


def check_full_rollback(store: Store, snapshot_root: bytes | None, expected_root: bytes | None) -> Check:
    """A full rollback lands on exactly the snapshot: no account or slot differs."""
    if snapshot_root is None or expected_root is None:
        return not_reached("no full rollback was certified")
    changed = diff_roots(store, snapshot_root, expected_root).accounts
    if changed:
        return Check(FAILED, f"{len(changed)} accounts differ from the snapshot, first 0x{changed[0].address.hex()}")
    return _verdict(snapshot_root == expected_root,
                    f"expected root 0x{expected_root.hex()[:16]} is the snapshot's and no account differs")


def check_replay_protection(store: Store, history: History, discarded: Sequence) -> Check:
    """None of the discarded window's signed transactions applies on the final head."""
    if not discarded:
        return Check(HELD, "the discarded window held no transaction")
    head = history.head
    built = build_block(store, head, discarded, proposer=head.proposer, timestamp=head.timestamp + 1,
                        fork_id=head.fork_id)
    accepted = len(discarded) - len(built.rejected)
    return _verdict(accepted == 0, f"{len(built.rejected)} of {len(discarded)} signed transactions of the discarded "
                                   f"window rejected on fork {head.fork_id}" +
                    (f"; {accepted} replayed" if accepted else ""))


def check_exchange_conservation(balance: int, collateral: int, vault: int, fees: int) -> Check:
    """The perps contract holds exactly its collateral, vault and fees."""
    return _verdict(balance == collateral + vault + fees,
                    f"balance {balance}, collateral {collateral} + vault {vault} + fees {fees}")


def check_l1_l2_conservation(genesis_supply: int, final_supply: int, irreversible: int, settled: int) -> Check:
    """No wei is created or destroyed on L2, and what L1 already paid is settled into the bridge."""
    return _verdict(genesis_supply == final_supply and settled == irreversible,
                    f"L2 supply {final_supply} (genesis {genesis_supply}); withdrawals final on L1 inside the "
                    f"window {irreversible} wei, settled into the bridge {settled} wei")


def check_compensation_paid(planned: int, paid: int, accounts: int) -> Check:
    """What the certified plan computed for compensation is what the restart block paid."""
    return _verdict(paid == planned, f"{paid} wei paid of {planned} wei computed, to {accounts} accounts")


def check_liveness(height: int, goal: int, fork_id: int, expected_fork: int) -> Check:
    """The final chain reached its goal height on the expected fork."""
    return _verdict(height >= goal and fork_id == expected_fork,
                    f"fork {fork_id} reached height {height} (goal {goal} on fork {expected_fork})")


# ---------------------------------------------------------------- a whole run


def get_promised_checks(mode: str) -> tuple[str, ...]:
    """The checks every run of a scenario in `mode` reports, in order."""
    recovery = ("halt", "certificate", "target_before_corruption", "restored_roots")
    rollback = ("full_rollback_snapshot",) if mode == "full-rollback" else ()
    return ("agreement", "forensics", "no_double_sign", "validity", *recovery, *rollback, "replay_protection",
            "exchange_conservation", "l1_l2_conservation", "compensation_paid", "liveness")


def order_checks(names: Iterable[str]) -> list[str]:
    """Check names in the one order every output uses: the promised order of the modes, then any other by name.

    A report's checks come in this order; a report read back from JSON written with sorted keys, or
    the union of several runs' checks, is put back in it with this."""
    known = {name: i for i, name in enumerate(get_promised_checks("full-rollback"))}
    return sorted(set(names), key=lambda name: (known.get(name, len(known)), name))


def judge_run(run, culprits: Iterable[int]) -> dict[str, Check]:
    """Every promised check of `run` (a `scenarios.runner.Run`), judged from its record."""
    from chain.exchange import get_perps_totals  # the exchange's reads, only for judging
    from chain.state import get_balance
    from scenarios.runner import MIN_RESTART_BLOCKS, compensation_paid, total_supply

    vset = run.validator_set
    byzantine = [n.index for n in run.nodes if not n.is_honest]
    byzantine_power = vset.get_power(byzantine)
    checks: dict[str, Check] = {}
    checks["agreement"] = check_agreement([t for _, t in run.traces], byzantine_power, vset)
    broken = checks["agreement"].status != HELD
    checks["forensics"] = check_forensics(culprits, byzantine, broken, vset)
    checks["no_double_sign"] = check_no_double_sign([t for _, t in run.traces])
    final = run.reference.view.history
    checks["validity"] = check_validity(run.store, final, run.cache)
    addresses = run.world.market.addresses
    final_root = final.head.state_root
    totals = get_perps_totals(run.store, final_root, addresses)
    checks["exchange_conservation"] = check_exchange_conservation(
        get_balance(run.store, final_root, addresses.perps), totals.total_collateral, totals.vault, totals.fees_accrued)
    irreversible = sum(e.amount for e in run.recovery.reconciliation) if run.recovery is not None else 0
    checks["l1_l2_conservation"] = check_l1_l2_conservation(
        total_supply(run, final.root_at(0)), total_supply(run, final_root), irreversible, totals.total_l1_settled)

    promised = get_promised_checks(run.scenario.response.mode)
    if broken:
        why = (checks["agreement"].detail if checks["agreement"].status == EXEMPT
               else "agreement broke: nothing sound can be restored on a split chain")
        status = EXEMPT if checks["agreement"].status == EXEMPT else NOT_REACHED
        for name in promised:
            checks.setdefault(name, Check(status, f"no restore on a split chain; {why}"))
        return {name: checks[name] for name in promised}

    chain_trace = run.chain_phase.trace
    honest = set(chain_trace.honest)
    checks["halt"] = check_halt((d.height for d in chain_trace.decisions if d.node in honest),
                                run.halt_height if run.plan is not None else run.detected_height)
    checks["certificate"] = check_certificate(run.plan, run.certificate, vset)
    checks["target_before_corruption"] = check_target(
        run.plan, {n.index: n.view.first_bad_height for n in run.honest})
    plan = run.plan
    checks["restored_roots"] = check_restored_roots(
        {n.index: n.view.restored_root for n in run.honest}, {n.index: n.view.restore_error for n in run.honest},
        None if plan is None else plan.expected_root)
    if run.scenario.response.mode == "full-rollback":
        checks["full_rollback_snapshot"] = check_full_rollback(
            run.store, run.snapshot_root_before_restore, None if plan is None else plan.expected_root)
    recovery = run.recovery
    if recovery is None:
        for name in ("replay_protection", "compensation_paid", "liveness"):
            checks[name] = not_reached("the chain never restarted")
    else:
        checks["replay_protection"] = check_replay_protection(run.store, final, recovery.discarded_transactions)
        entries = run.compensation_entries  # the plan's, then the post-reopening audit's
        if recovery.audit_height is not None and final.height < recovery.audit_height:
            checks["compensation_paid"] = not_reached(
                f"trading never opened (height {recovery.audit_height}): the final chain ends at {final.height}, "
                "so the reopening was never audited")
        else:
            checks["compensation_paid"] = check_compensation_paid(
                sum(e.amount for e in entries), compensation_paid(run), len(entries))
        goal = max(run.scenario.chain.heights, recovery.restart_height + MIN_RESTART_BLOCKS - 1)
        checks["liveness"] = check_liveness(final.height, goal, final.head.fork_id, plan.new_fork_id)
        if not checks["liveness"].ok and run.restart is not None and run.restart.outlasting:
            # No BFT protocol is live while a fault cuts the quorum for good: not reached, not failed.
            checks["liveness"] = not_reached(f"fork {final.head.fork_id} stopped at height {final.height} of {goal}")
    stopped_by = run.stopped_by
    if stopped_by:  # what could not be reached is named by the fault that outlasted the run
        checks = {name: Check(NOT_REACHED, f"{c.detail}: {stopped_by}") if c.status == NOT_REACHED else c
                  for name, c in checks.items()}
    return {name: checks[name] for name in promised}
