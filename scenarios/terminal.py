"""The terminal summary of a run (`l2sim run`, `l2sim report DIR`): what happened, in the
reader's units.

The report keeps amounts in wei and times in virtual seconds (they are its digest); this
is where they become dollars and hours. `wei=True` keeps the raw amounts, as the JSON has
them. Checks are listed in the order the run judged them, whether the report was just
built or read back from a saved run (whose JSON has its keys sorted).
"""

from __future__ import annotations

import re

from scenarios.units import count, format_duration, format_usd  # noqa: F401  (re-exported)

# A check detail names amounts as bare integers in wei; nothing else it counts (heights,
# accounts, transactions, power) comes near ten digits.
_WEI_AMOUNT = re.compile(r"\b(\d+) wei\b|\b(\d{10,})\b")

STATUS_MARKUP = {"held": "[green]held[/green]", "exempt": "[yellow]exempt[/yellow]",
                 "failed": "[red]FAILED[/red]", "not_reached": "[red]not reached[/red]"}

def format_amount(wei: int, *, wei_units: bool = False) -> str:
    """An amount as dollars (1e18 wei per USD), or as `N wei` on request."""
    return f"{wei} wei" if wei_units else format_usd(wei)


def format_detail(detail: str, *, wei_units: bool = False) -> str:
    """A check's detail with its wei amounts as dollars (unchanged with `wei_units`)."""
    if wei_units:
        return detail
    return _WEI_AMOUNT.sub(lambda m: format_usd(int(m.group(1) or m.group(2))), detail)


def describe_incident(incident: dict) -> str:
    """What the glitch corrupted: the price of a market, funding indices, or both."""
    market = incident["market"]
    funding = incident.get("funding_markets") or []
    indices = f"the funding {'index' if len(funding) == 1 else 'indices'} of {', '.join(funding)} reset to 0"
    kind = incident.get("kind", "price")
    if kind == "funding-reset":
        return indices[0].upper() + indices[1:]
    if kind == "both" and funding:
        return f"{market}'s oracle price corrupted and {indices}"
    return f"{market}'s oracle price corrupted"


def _halt_words(incident: dict) -> str:
    if incident["halt_height"] is not None:
        return f"halted at height {incident['halt_height']}"
    if incident.get("detected_height") is not None:
        return f"halted at height {incident['detected_height']} (no restore plan was agreed)"
    return "no halt"


def _short(value: str | None, length: int = 18) -> str:
    return "-" if value is None else (value if len(value) <= length else value[:length] + "…")


def render_summary(report: dict, console, *, wei: bool = False) -> None:
    """The run as a teacher would show it: timeline, incident, certificate, ledgers, checks.

    Amounts in dollars (in wei with `wei`), virtual times in hours and minutes."""
    from rich.table import Table

    usd = lambda amount: format_amount(amount, wei_units=wei)  # noqa: E731
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
        timeline.add_row(format_duration(entry["time_s"]),
                         str(entry["height"] if entry["height"] is not None else "-"),
                         entry["event"], _format_timeline_detail(entry["detail"]))
    console.print(timeline)
    incident = report["incident"]
    if incident["first_bad_height"] is None and incident.get("detected_height") is None:
        console.print(f"Incident: {describe_incident(incident)} was planned, but the run never got there; "
                      f"{count(incident['liquidations'], 'liquidation')}.")
    else:
        first = incident["first_bad_height"]
        console.print(
            f"Incident: {describe_incident(incident)}, first on chain at height "
            f"{first if first is not None else '-'}; {_halt_words(incident)}; "
            f"{count(incident['liquidations'], 'liquidation')} of "
            f"{count(len(incident['liquidated_accounts']), 'account')} before the halt.")
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
            console.print(f"The restore gave back {usd(returned['total'])} of equity to "
                          f"{count(returned['accounts'], 'account')} liquidated inside the rolled-back window "
                          "(reported, not paid: the rollback did it)")
        _print_after_restart(report, console)
        console.print(f"Reconciliation: {count(len(rec['irreversible']), 'withdrawal')} final on L1 inside the "
                      f"window, {usd(rec['total'])} settled into the bridge")
        reasons = sorted({e["reason"] for e in comp["entries"]})
        payers = sorted({e.get("payer", "the vault") for e in comp["entries"]}) or ["the vault"]
        console.print(f"Compensation: {usd(comp['total'])} to {count(comp['accounts'], 'account')} from "
                      f"{', '.join(payers)}" + (f" ({', '.join(reasons)})" if reasons else ""))
    else:
        console.print("Reconciliation and compensation: not reached")
    if comp["entries"]:
        top = Table(title="Top compensation")
        top.add_column("account")
        top.add_column("amount", justify="right")
        top.add_column("why")
        for entry in comp["entries"][:5]:
            top.add_row(entry["account"], usd(entry["amount"]), entry["reason"])
        console.print(top)
    oracle = report["oracle"]
    if oracle["stale_heights"]:
        console.print(f"Stale feeds: heights {oracle['stale_heights'][0]}-{oracle['stale_heights'][1]} ran on pre-halt "
                      f"prices: {count(oracle['trades_on_stale_prices'], 'trade')}, "
                      f"{count(oracle['liquidations_on_stale_prices'], 'liquidation')}")
    if report["forensics"]["culprits"]:
        console.print(f"Forensics: validators {report['forensics']['culprits']} convicted by what they signed "
                      f"({_evidence_kinds(report)})")
    checks = Table(title="Checks")
    checks.add_column("check")
    checks.add_column("status")
    checks.add_column("detail")
    from scenarios.checks import order_checks

    for name in order_checks(report["checks"]):
        check = report["checks"][name]
        status = check.get("status", "held" if check["ok"] else "failed")
        checks.add_row(name, STATUS_MARKUP[status], format_detail(check["detail"], wei_units=wei))
    console.print(checks)
    metrics = report["metrics"]
    console.print(f"{metrics['blocks']} blocks, {metrics['txs']} transactions, {metrics['messages']} signed messages; "
                  f"{format_duration(metrics['virtual_s'], precise=False)} of virtual time in "
                  f"{format_duration(metrics['wall_s'])} of wall time")


def _print_after_restart(report: dict, console) -> None:
    """The reopening's phases and the liquidations after the restart, each liquidation told once."""
    reopening = report.get("reopening")
    restart = report.get("restart")
    after = restart["liquidations"] if restart else 0
    if reopening and reopening["phases"]:
        phases = ", ".join(f"{p['mode']} from height {p['start_height']}" for p in reopening["phases"])
        restricted = reopening["liquidations"]
        opened = max(after - restricted, 0)
        console.print(f"Reopening: {phases}; {count(restricted, 'liquidation')} during the restricted phases"
                      f", {opened} once trading opened")
    elif restart:
        console.print(f"After the restart (fork {restart['fork_id']} from height {restart['start_height']}): "
                      f"{count(after, 'liquidation')} of {count(len(restart['liquidated_accounts']), 'account')}")


_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?) s\b")


def _format_timeline_detail(detail: str) -> str:
    """`21600 s halted` -> `6 h 00 min halted`: long spans in hours and minutes."""
    return _SECONDS.sub(lambda m: format_duration(float(m.group(1)), precise=False)
                        if float(m.group(1)) >= 60 else m.group(0), detail)


EVIDENCE_WORDS = {
    "equivocation": "two messages signed for one slot",
    "amnesia": "a prevote against its own earlier precommit, with no polka between",
    "view-contradicts-certified-header": "a signed halt view against a header with a commit certificate",
}


def _evidence_kinds(report: dict) -> str:
    kinds = sorted({e["kind"] for e in report["forensics"]["evidence"]})
    return "; ".join(EVIDENCE_WORDS.get(k, k) for k in kinds) if kinds else "signed messages"


AMOUNT_KEYS = ("balance", "collateral", "equity", "margin_requirement", "free_collateral")


def format_state(state: dict, *, wei: bool = False) -> list[str]:
    """`l2sim inspect`'s answer as `key: value` lines, amounts in dollars (in wei with `wei`)
    and positions as sizes and entry prices."""
    lines = []
    for key, value in state.items():
        if key in AMOUNT_KEYS and isinstance(value, int):
            value = format_amount(value, wei_units=wei)
        elif key == "positions" and isinstance(value, dict):
            value = ", ".join(f"{market} {p['size'] / 10**18:g} at {format_amount(p['entry_price'], wei_units=wei)}"
                              for market, p in value.items()) or "none"
        lines.append(f"{key}: {value}")
    return lines
