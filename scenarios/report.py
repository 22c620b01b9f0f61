"""Checks over a finished run, the JSON report (schema_version 1), the terminal summary,
and the entry point `l2sim run` calls: `run_scenario` (`inspect_run` lives in scenarios.inspect)."""

from __future__ import annotations

import hashlib
import json
import sys

from chain.exchange import MARKET_NAMES, Liquidated, Traded, decode_events
from consensus.messages import Proposal, Vote
from scenarios.checks import judge_run
from scenarios.errors import SavedRunError as InspectError  # noqa: F401  (re-exported: its old home)
from scenarios.inspect import finish_saved_run, inspect_run  # noqa: F401  (inspect_run re-exported)
from scenarios.output import write_text_atomic
from scenarios.runner import Run, run_forensics, run_scenario_once
from scenarios.schema import Scenario
from scenarios.terminal import render_summary  # noqa: F401  (re-exported: its old home)

SCHEMA_VERSION = 1


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _check(ok: bool, detail: str) -> dict:
    return {"ok": bool(ok), "detail": detail}


# ---------------------------------------------------------------- checks


def compute_checks(run: Run, culprits) -> dict[str, dict]:
    """Every check the scenario promises, each {ok, status, detail} (see `scenarios.checks`)."""
    return {name: check.to_json() for name, check in judge_run(run, culprits).items()}


# ---------------------------------------------------------------- the report


def _message_json(message) -> dict:
    if isinstance(message, Proposal):
        return {"type": "proposal", "fork_id": message.fork_id, "height": message.height, "round": message.round,
                "block_hash": _hex(message.block_hash), "validator": message.proposer,
                "signature": _hex(message.signature)}
    assert isinstance(message, Vote)
    return {"type": message.step, "fork_id": message.fork_id, "height": message.height, "round": message.round,
            "block_hash": _hex(message.block_hash), "validator": message.validator,
            "signature": _hex(message.signature)}


def build_report(run: Run, virtual_s: float, wall_s: float) -> dict:
    """The JSON report (schema_version 1) of a finished run, digest included."""
    scenario = run.scenario
    forensics = run_forensics(run)
    view_conflicts = run.emergency.view_conflicts if run.emergency is not None else ()
    reference = run.reference.view.history
    before_restore = [a for fork, _, a in run.liquidations if fork == 0]
    liquidated = list(dict.fromkeys(before_restore))
    recovery = run.recovery
    plan = run.plan
    report = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario.name,
        "seed": run.seed,
        "digest": "",
        "description": scenario.description,
        "validators": {
            "count": run.validator_set.size,
            "total_power": run.validator_set.total_power,
            "byzantine": [{"index": b.index, "behaviour": b.behaviour} for b in scenario.validators.byzantine],
        },
        "chain": {
            "final_height": reference.height,
            "final_state_root": _hex(reference.head.state_root),
            "fork_id": reference.head.fork_id,
        },
        "incident": {
            "market": scenario.incident.market,
            "kind": scenario.incident.kind,
            "funding_markets": [MARKET_NAMES[m] for m in run.world.market.glitch.funding_markets]
            if run.world.market.glitch is not None else [],
            "first_bad_height": run.first_bad_height,
            "detected_height": run.detected_height,
            "halt_height": run.halt_height,
            "liquidations": len(before_restore),
            "liquidated_accounts": [_hex(a) for a in liquidated],
        },
        "restore": None,
        "reconciliation": {"irreversible": [], "total": 0},
        "compensation": {"accounts": 0, "total": 0, "entries": []},
        "forensics": {
            "culprits": sorted(set(forensics.culprits) | {c.view.validator for c in view_conflicts}),
            "evidence": [
                {"validator": e.validator, "kind": e.kind,
                 "messages": [_message_json(e.first), _message_json(e.second)]}
                for e in forensics.evidence
            ] + [
                # a signed view against the commit certificate of the header it contradicts
                {"validator": c.view.validator, "kind": "view-contradicts-certified-header", "height": c.height,
                 "view_digest": _hex(c.view.digest), "view_signature": _hex(c.view.signature),
                 "claimed_root": _hex(c.view.root_at(c.height)), "certified_root": _hex(c.certified_root)}
                for c in view_conflicts
            ],
        },
        "oracle": _stale_oracle_section(run),
        "series": [{"fork": fork, "height": height, **point}
                   for (fork, height), point in sorted(run.record.series.items())],
        "restart": _restart_section(run),
        "timeline": sorted(run.record.timeline, key=lambda entry: entry["time_s"]),
        "checks": {},
        "metrics": {},
    }
    if plan is not None and recovery is not None:
        certificate = run.certificate
        report["restore"] = {
            "mode": plan.mode,
            "old_fork_id": plan.old_fork_id,
            "new_fork_id": plan.new_fork_id,
            "halt_height": plan.halt_height,
            "target_height": plan.target_height,
            "snapshot_state_root": _hex(plan.snapshot_root),
            "expected_state_root": _hex(plan.expected_root),
            "surgery_accounts": [_hex(e.account) for e in recovery.surgery],
            "replayed_transactions": [_hex(h) for h in recovery.replay],
            "certificate": {
                "plan_hash": _hex(plan.hash),
                "fork_id": certificate.fork_id,
                "height": certificate.height,
                "round": certificate.round,
                "signers": list(certificate.signers()),
                "power": run.validator_set.get_power(certificate.signers()),
                "votes": [_message_json(v) for v in sorted(certificate.votes, key=lambda v: v.validator)],
            },
            "restored_roots": {str(n.index): _hex(n.view.restored_root) for n in run.nodes
                               if n.view.restored_root is not None},
            "restore_errors": {str(n.index): n.view.restore_error for n in run.nodes if n.view.restore_error},
            "rejected_plans": [
                {"plan_hash": _hex(h), "proposer": e["proposer"], "reason": e["reason"],
                 "rejected_by": sorted(e["rejected_by"])}
                for h, e in sorted(run.rejected_plans.items(), key=lambda item: (str(item[1]["proposer"]), item[0]))
            ],
        }
        report["reconciliation"] = {
            "policy": scenario.response.withdrawal_policy,
            "irreversible": [
                {"withdrawal_id": e.withdrawal_id, "account": _hex(e.account), "amount": e.amount,
                 "made_at_height": e.made_at_height, "final_at_height": e.final_at}
                for e in recovery.reconciliation
            ],
            "total": sum(e.amount for e in recovery.reconciliation),
        }
        report["reopening"] = _reopening_section(run, recovery)
        returned = recovery.restore_returned
        report["restore"]["returned"] = {
            "policy": "restore-returned",
            "accounts": len(returned),
            "total": sum(e.amount for e in returned),
            "entries": [{"account": _hex(e.account), "amount": e.amount, "restored_equity": e.restored_equity,
                         "halted_equity": e.halted_equity} for e in returned],
        }
        entries = sorted(run.compensation_entries, key=lambda e: (-e.amount, e.account))
        report["compensation"] = {
            "accounts": len({e.account for e in entries}),
            "total": sum(e.amount for e in entries),
            "entries": [{"account": _hex(e.account), "amount": e.amount, "reason": e.reason, "payer": e.payer,
                         "counterfactual_equity": e.counterfactual_equity, "restored_equity": e.restored_equity,
                         "detail": e.detail} for e in entries],
        }
    report["checks"] = compute_checks(run, report["forensics"]["culprits"])
    report["metrics"] = {
        "blocks": reference.height,
        "txs": sum(len(reference.block_at(h).transactions) for h in range(1, reference.height + 1)),
        "messages": sum(len(trace.messages) for _, trace in run.traces),
        "deliveries": sum(trace.deliveries for _, trace in run.traces),
        "virtual_s": round(virtual_s, 3),
        "wall_s": round(wall_s, 3),
    }
    report["digest"] = compute_digest(report)
    return report


def _restart_section(run: Run) -> dict | None:
    """The new fork after the restart: where it starts, and who was liquidated on it."""
    if run.restart is None:
        return None
    fork = run.restart.fork_id
    accounts = [a for f, _, a in run.liquidations if f == fork]
    return {"fork_id": fork, "start_height": run.recovery.restart_height, "liquidations": len(accounts),
            "liquidated_accounts": [_hex(a) for a in dict.fromkeys(accounts)]}


def _reopening_section(run: Run, recovery) -> dict:
    """The phases after the restart ({mode, start_height, end_height}; the last, open, has no
    end) and the liquidations inside the restricted ones, from the restored chain's record."""
    phases = list(recovery.reopening_phases)
    sections = [{"mode": mode, "start_height": start,
                 "end_height": phases[i + 1][0] if i + 1 < len(phases) else None}
                for i, (start, mode) in enumerate(phases)]
    if not phases:
        return {"phases": [], "liquidations": 0, "liquidated_accounts": []}
    start, end = phases[0][0], phases[-1][0]
    inside = [a for fork, height, a in run.liquidations if fork > 0 and start <= height < end]
    return {"phases": sections, "liquidations": len(inside),
            "liquidated_accounts": [_hex(a) for a in dict.fromkeys(inside)]}


def _stale_oracle_section(run: Run) -> dict:
    """What happened while feeds still posted pre-halt prices after the restart."""
    stale = run.scenario.oracle.stale_after_restart_blocks
    section = {"stale_after_restart_blocks": stale, "stale_heights": None,
               "liquidations_on_stale_prices": 0, "trades_on_stale_prices": 0}
    if not stale or run.recovery is None:
        return section
    low, high = run.recovery.restart_height, run.stale_until_height
    section["stale_heights"] = [low, high]
    addresses = run.world.market.addresses
    for height in range(low, high + 1):
        result = run.results.get(height)
        if result is None:
            continue
        for event in decode_events(addresses, result.receipts):
            if isinstance(event, Liquidated):
                section["liquidations_on_stale_prices"] += 1
            elif isinstance(event, Traded):
                section["trades_on_stale_prices"] += 1
    return section


def compute_digest(report: dict) -> str:
    """sha256 of the report's canonical JSON without the digest, the wall-clock time and the
    reproduce command added to a failing report (it names the file, not the run)."""
    stripped = dict(report, digest="", metrics={k: v for k, v in report["metrics"].items() if k != "wall_s"})
    stripped.pop("reproduce", None)
    return "0x" + hashlib.sha256(json.dumps(stripped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_report_ok(report: dict) -> bool:
    """True when every check held or was exempt: nothing failed, nothing was not reached."""
    return all(check.get("status", "held" if check["ok"] else "failed") in ("held", "exempt")
               for check in report["checks"].values())


# ---------------------------------------------------------------- entry points


def format_unheld_checks(report: dict) -> str:
    """`check failed: a, b; not reached: c`: the checks that make a run exit 1, by status."""
    parts = []
    for status, words in (("failed", "check failed"), ("not_reached", "not reached")):
        names = [name for name, check in report["checks"].items() if check["status"] == status]
        if names:
            parts.append(f"{words}: {', '.join(names)}")
    return "; ".join(parts)


def describe_outputs(*, json_path: str | None, events_path: str | None, html_path: str | None,
                     data_dir: str | None) -> list[str]:
    """One line per file or folder the run wrote, saying what it is and how to open it."""
    lines = []
    if json_path not in (None, "-"):
        lines.append(f"wrote the JSON report: {json_path}")
    if events_path is not None:
        lines.append(f"wrote the event log: {events_path}")
    if html_path is not None:
        lines.append(f"wrote the page: {html_path} (open it in a browser)")
    if data_dir is not None:
        lines.append(f"saved the run: {data_dir} (l2sim report {data_dir}; l2sim inspect {data_dir} --height H)")
    return lines


def run_scenario(scenario: Scenario, *, json_path: str | None, data_dir: str | None, quiet: bool,
                 reproduce: str, events_path: str | None = None, html_path: str | None = None,
                 narrate: bool = False, step: bool = False, wei: bool = False) -> bool:
    """Run `scenario`, write the report, print the summary (amounts in wei with `wei`) and
    the paths written; True when every check held."""
    from rich.console import Console

    from scenarios.events import EventLog
    from scenarios.narrate import make_narrator
    from scenarios.progress import make_progress

    console = Console(stderr=json_path == "-")
    log = EventLog() if events_path or html_path or data_dir or narrate else None
    narrator = make_narrator(to_stderr=json_path == "-", step=step) if narrate else None
    if narrator is not None:
        log.listener = narrator.on_event
    if not quiet:
        console.print(f"seed {scenario.seed}")
    progress = make_progress(console, scenario.chain.heights, quiet=quiet, narrate=narrate)
    if progress is not None:
        progress.start()
    try:
        run, virtual_s, wall_s = run_scenario_once(scenario, data_dir=data_dir, events=log,
                                                   progress=None if progress is None else progress.on_progress)
    finally:
        if progress is not None:
            progress.stop()
    if narrator is not None:
        narrator.finish()
    report = build_report(run, virtual_s, wall_s)
    if data_dir is not None:
        run.store.close()
        finish_saved_run(data_dir, report, {n.index: n.view.history.height for n in run.nodes}, log.get_ordered(),
                         reproduce=reproduce)
    ok = is_report_ok(report)
    if not ok:
        report["reproduce"] = reproduce
    if json_path == "-":
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    elif json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    if log is not None:
        from scenarios.html import save_run_files

        save_run_files(report, log.get_ordered(), events_path=events_path, html_path=html_path, data_dir=None,
                       reproduce=reproduce)
    if not quiet:
        render_summary(report, console, wei=wei)
        for line in describe_outputs(json_path=json_path, events_path=events_path, html_path=html_path,
                                     data_dir=data_dir):
            console.print(line, soft_wrap=True)
    if not ok:
        # Plain text, never wrapped: the last thing said is the command that replays the failure.
        sys.stderr.write(f"l2sim: {format_unheld_checks(report)} (seed {scenario.seed}); "
                         f"reproduce with: {reproduce}\n")
    return ok
