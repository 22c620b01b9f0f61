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


# ---------------------------------------------------------------- the terminal summary


def _short(value: str | None, length: int = 18) -> str:
    return "-" if value is None else (value if len(value) <= length else value[:length] + "…")


def _usd(wei: int) -> str:
    return f"${wei / 10**18:,.2f}"


def render_summary(report: dict, console) -> None:
    """The run as a teacher would show it: timeline, incident, certificate, ledgers, checks."""
    from rich.table import Table

    console.print(f"[bold]{report['scenario']}[/bold]  seed {report['seed']}  digest {report['digest']}")
    byzantine = report["validators"]["byzantine"]
    console.print(f"{report['validators']['count']} validators, total power {report['validators']['total_power']}; "
                  + ("Byzantine: " + ", ".join(f"{b['index']} ({b['behaviour']})" for b in byzantine)
                     if byzantine else "all honest"))
    if report["checks"].get("agreement", {}).get("status") in ("failed", "exempt"):
        console.print("[bold red]This run shows a split:[/bold red] honest validators decided different blocks "
                      f"({report['checks']['agreement']['detail']}); nothing sound can be restored on a split "
                      "chain, so the recovery was not attempted.")
    timeline = Table(title="Timeline", show_lines=False)
    for column in ("virtual time", "height", "event", "detail"):
        timeline.add_column(column)
    for entry in report["timeline"]:
        timeline.add_row(f"{entry['time_s']:.1f} s", str(entry["height"] if entry["height"] is not None else "-"),
                         entry["event"], entry["detail"])
    console.print(timeline)
    incident = report["incident"]
    first_bad = incident["first_bad_height"] if incident["first_bad_height"] is not None else "not reached"
    halt = incident["halt_height"] if incident["halt_height"] is not None else "not reached"
    console.print(
        f"Incident: {incident['market']} glitch first on chain at height {first_bad}, "
        f"halt at {halt}; {incident['liquidations']} liquidations of "
        f"{len(incident['liquidated_accounts'])} accounts before the halt.")
    restore = report["restore"]
    if restore:
        cert = restore["certificate"]
        console.print(
            f"Restore: {restore['mode']} to height {restore['target_height']} "
            f"(snapshot {_short(restore['snapshot_state_root'])}, expected {_short(restore['expected_state_root'])}); "
            f"fork {restore['old_fork_id']} -> {restore['new_fork_id']}")
        console.print(
            f"Rollback certificate: plan {_short(cert['plan_hash'])} signed by validators {cert['signers']} "
            f"(power {cert['power']} of {report['validators']['total_power']})")
    else:
        console.print("Restore: not reached (no rollback certificate was formed)")
    rec = report["reconciliation"]
    comp = report["compensation"]
    if restore:
        returned = restore.get("returned")
        if returned:
            console.print(f"The restore gave back {_usd(returned['total'])} of equity to {returned['accounts']} accounts "
                          "liquidated inside the rolled-back window (reported, not paid: the rollback did it)")
        reopening = report.get("reopening")
        if reopening and reopening["phases"]:
            phases = ", ".join(f"{p['mode']} from height {p['start_height']}" for p in reopening["phases"])
            console.print(f"Reopening: {phases}; {reopening['liquidations']} liquidations of "
                          f"{len(reopening['liquidated_accounts'])} accounts during the restricted phases")
        console.print(f"Reconciliation: {len(rec['irreversible'])} withdrawals final on L1 inside the window, "
                      f"{_usd(rec['total'])} settled into the bridge")
        reasons = sorted({e["reason"] for e in comp["entries"]})
        payers = sorted({e.get("payer", "the vault") for e in comp["entries"]}) or ["the vault"]
        console.print(f"Compensation: {_usd(comp['total'])} to {comp['accounts']} accounts from {', '.join(payers)}"
                      + (f" ({', '.join(reasons)})" if reasons else ""))
    else:
        console.print("Reconciliation and compensation: not reached")
    if comp["entries"]:
        top = Table(title="Top compensation")
        top.add_column("account")
        top.add_column("amount", justify="right")
        top.add_column("why")
        for entry in comp["entries"][:5]:
            top.add_row(entry["account"], _usd(entry["amount"]), entry["reason"])
        console.print(top)
    restart = report.get("restart")
    if restart:
        console.print(f"After the restart (fork {restart['fork_id']} from height {restart['start_height']}): "
                      f"{restart['liquidations']} liquidations of {len(restart['liquidated_accounts'])} accounts")
    oracle = report["oracle"]
    if oracle["stale_heights"]:
        console.print(f"Stale feeds: heights {oracle['stale_heights'][0]}-{oracle['stale_heights'][1]} ran on pre-halt "
                      f"prices: {oracle['trades_on_stale_prices']} trades, "
                      f"{oracle['liquidations_on_stale_prices']} liquidations")
    if report["forensics"]["culprits"]:
        console.print(f"Forensics: validators {report['forensics']['culprits']} convicted by their signed messages")
    checks = Table(title="Checks")
    checks.add_column("check")
    checks.add_column("status")
    checks.add_column("detail")
    shown = {"held": "[green]held[/green]", "exempt": "[yellow]exempt[/yellow]",
             "failed": "[red]FAILED[/red]", "not_reached": "[red]not reached[/red]"}
    for name, check in report["checks"].items():
        checks.add_row(name, shown[check.get("status", "held" if check["ok"] else "failed")], check["detail"])
    console.print(checks)
    metrics = report["metrics"]
    console.print(f"{metrics['blocks']} blocks, {metrics['txs']} transactions, {metrics['messages']} signed messages, "
                  f"{metrics['virtual_s']:.0f} virtual s in {metrics['wall_s']:.1f} wall s")


# ---------------------------------------------------------------- entry points


def format_unheld_checks(report: dict) -> str:
    """`check failed: a, b; not reached: c`: the checks that make a run exit 1, by status."""
    parts = []
    for status, words in (("failed", "check failed"), ("not_reached", "not reached")):
        names = [name for name, check in report["checks"].items() if check["status"] == status]
        if names:
            parts.append(f"{words}: {', '.join(names)}")
    return "; ".join(parts)


def run_scenario(scenario: Scenario, *, json_path: str | None, data_dir: str | None, quiet: bool,
                 reproduce: str, events_path: str | None = None, html_path: str | None = None,
                 narrate: bool = False, step: bool = False) -> bool:
    """Run `scenario`, write the report, print the summary; True when every check held."""
    from rich.console import Console

    from scenarios.events import EventLog
    from scenarios.narrate import make_narrator

    console = Console(stderr=json_path == "-")
    interactive = console.is_terminal and not quiet and not narrate
    log = EventLog() if events_path or html_path or data_dir or narrate else None
    narrator = make_narrator(to_stderr=json_path == "-", step=step) if narrate else None
    if narrator is not None:
        log.listener = narrator.on_event
    if not quiet:
        console.print(f"seed {scenario.seed}")
    progress_bar = None
    on_progress = None
    if interactive:
        from rich.progress import BarColumn, Progress, TextColumn

        progress_bar = Progress(TextColumn("{task.fields[phase]:>8}"), BarColumn(),
                                TextColumn("height {task.completed:.0f}/{task.total:.0f}"),
                                TextColumn("t={task.fields[virtual]:.0f}s"), console=console, transient=True)
        task = progress_bar.add_task("run", total=scenario.chain.heights, phase="chain", virtual=0.0)

        def on_progress(phase: str, height: int, virtual_s: float) -> None:
            progress_bar.update(task, completed=height, phase=phase, virtual=virtual_s)

        progress_bar.start()
    try:
        run, virtual_s, wall_s = run_scenario_once(scenario, data_dir=data_dir, progress=on_progress, events=log)
    finally:
        if progress_bar is not None:
            progress_bar.stop()
    if narrator is not None:
        narrator.finish()
    report = build_report(run, virtual_s, wall_s)
    if data_dir is not None:
        run.store.close()
        finish_saved_run(data_dir, report, {n.index: n.view.history.height for n in run.nodes},
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

        save_run_files(report, log.get_ordered(), events_path=events_path, html_path=html_path, data_dir=data_dir,
                       reproduce=reproduce)
    if not quiet:
        render_summary(report, console)
    if not ok:
        # Plain text, never wrapped: the last thing said is the command that replays the failure.
        sys.stderr.write(f"l2sim: {format_unheld_checks(report)} (seed {scenario.seed}); "
                         f"reproduce with: {reproduce}\n")
    return ok
