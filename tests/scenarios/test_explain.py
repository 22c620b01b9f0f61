"""`l2sim explain`: every check the report can hold and every term the issue names is
explained; an unknown term is one line and exit 2, listing the known ones."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenarios.cli import main
from scenarios.explain import CHECKS, TERMS, UnknownTermError, explain

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_every_check_the_code_can_report_is_explained():
    # Wherever a check is named (`checks["name"] = ...`), a teacher must find it explained.
    named = set()
    for source in sorted(SCENARIOS.glob("*.py")):
        named |= set(re.findall(r'checks\["([a-z0-9_]+)"\]\s*=', source.read_text()))
    assert named, "no check found: the pattern no longer matches how checks are named"
    assert named - set(CHECKS) == set()


@pytest.mark.parametrize("term", ["quorum", "power", "view", "plan", "certificate", "fork id", "replay protection",
                                  "Fork-ID", "replay_protection", "lock", "nil"])
def test_terms_the_output_uses_are_explained(term):
    text = explain(term)
    assert len(text) > 40 and ":" in text


def test_a_name_that_is_both_a_term_and_a_check_gives_both():
    text = explain("certificate")
    assert "(check)" in text and "(term)" in text


def test_unknown_term_is_one_line_and_exit_2():
    with pytest.raises(UnknownTermError):
        explain("flux capacitor")
    result = CliRunner().invoke(main, ["explain", "flux", "capacitor"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "'flux capacitor'" in result.output and "quorum" in result.output


def test_explain_on_the_command_line():
    result = CliRunner().invoke(main, ["explain", "replay", "protection"])
    assert result.exit_code == 0
    assert result.output.splitlines() == [explain("replay_protection").splitlines()[0],
                                          f"replay protection (term): {TERMS['replay protection']}"]
    assert set(TERMS) & set(CHECKS) == {"halt", "certificate"}


def collect_printed_terms(saved) -> set[str]:
    """Every word a heading, status, policy, mode or legend of l2sim's outputs prints."""
    import io
    import json
    from typing import get_args

    from rich.console import Console

    from scenarios import html, schema
    from scenarios.checks import STATUSES, get_promised_checks
    from scenarios.terminal import render_summary

    out = io.StringIO()
    render_summary(json.loads((saved / "data" / "report.json").read_text()), Console(file=out, width=250))
    text = out.getvalue()
    headings = set(re.findall(r"^([A-Z][a-z]+(?: [a-z]+)?): ", text, flags=re.M))
    titles = {line.strip().removeprefix("Top ") for line in text.splitlines()
              if re.fullmatch(r" *[A-Z][a-z]+(?: [a-z]+)? *", line)}
    assert {"Incident", "Restore", "Rollback certificate", "Compensation"} <= headings and "Checks" in titles
    timeline = set(re.findall(r'rec\.note\("([a-z ]+)"', (SCENARIOS / "runner.py").read_text()))
    assert {"halt", "pause ends", "views exchanged"} <= timeline
    policies = {*get_args(schema.WithdrawalPolicy), *get_args(schema.CompensationPolicy), "restore-returned"}
    modes = {*get_args(schema.ResponseMode), "cancel-only", "post-only", "open"}
    legend = {*(html.LEGEND_NAMES.get(k, k.replace("_", " ")) for k in html.MESSAGE_COLOURS), *html.ICON_OFFSETS,
              "lost"}
    return (headings | titles | timeline | set(get_promised_checks("full-rollback")) | set(STATUSES) | policies
            | modes | legend | set(get_args(schema.Behaviour)) | {"virtual time", "wall time", "plan vote"})


def test_explain_knows_every_term_the_outputs_print(saved):
    terms = collect_printed_terms(saved)
    unknown = []
    for term in sorted(terms):
        try:
            explain(term)
        except UnknownTermError:
            unknown.append(term)
    assert unknown == []
    result = CliRunner().invoke(main, ["explain", "not_reached"])
    assert result.exit_code == 0 and "never got to" in result.output


def test_forensics_and_compensation_say_what_the_run_does(saved):
    # lying-minority convicts by a signed view against a certified header, not a message pair
    from consensus.forensics import AMNESIA, EQUIVOCATION

    kinds = set(re.findall(r'"kind": "([a-z-]+)"', (SCENARIOS / "report.py").read_text())) | {AMNESIA, EQUIVOCATION}
    assert "view-contradicts-certified-header" in kinds
    for kind in kinds:
        assert kind in explain("evidence") and explain(kind)
    assert "halt view" in explain("forensics") and "commit certificate" in explain("forensics")
    # compensation is paid where the events put it: reopening-harm in the open phase's first block
    import json

    events = [json.loads(line) for line in (saved / "events.jsonl").read_text().splitlines()]
    report = json.loads((saved / "data" / "report.json").read_text())
    opens = [p["start_height"] for p in report["reopening"]["phases"] if p["mode"] == "open"]
    paid = {e["height"] for e in events if e["kind"] == "compensation" and e["reason"] == "reopening-harm"}
    assert paid == set(opens)
    assert "first block of the open phase" in explain("compensation_paid")
    assert "first block of the open phase" in explain("compensation")
