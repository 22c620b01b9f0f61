"""The offline HTML report: written by `run --html` and by `report DIR --html` with the same
bytes, self-contained (nothing fetched), light enough to mail, and saying what a teacher
needs: a diagram per height, the halt, the certificate and why a validator did not sign,
the checks in plain words. The page in a real browser is tested in test_html_browser.py."""

import html
import json
import re
import shlex

import pytest
from click.testing import CliRunner

from scenarios.cli import load_with_options, main
from scenarios.events import read_events
from scenarios.explain import CHECKS
from scenarios.html import (build_summary, describe_payment, draw_market_charts, explain_signers, find_reproduce,
                            funding_rows, read_saved_reproduce, render_html)
from scenarios.loader import dump_scenario, load_scenario
from teaching_support import l2sim


def printed_reproduce(page: str) -> list[str]:
    """The words of the command the page says replays the run."""
    return shlex.split(html.unescape(re.search(r'<code id="reproduce">([^<]*)</code>', page).group(1)))


def test_saved_run_gives_the_same_page_and_log(saved):
    assert (saved / "data" / "events.jsonl").read_bytes() == (saved / "events.jsonl").read_bytes()
    result = l2sim("report", str(saved / "data"), "--html", str(saved / "again.html"), "--json", str(saved / "r.json"))
    assert result.returncode == 0, result.stderr
    assert (saved / "again.html").read_bytes() == (saved / "page.html").read_bytes()
    assert json.loads((saved / "r.json").read_text()) == json.loads((saved / "data" / "report.json").read_text())


def test_page_is_self_contained_and_light(saved):
    page = (saved / "page.html").read_text()
    assert not re.search(r"<script[^>]+src=|<link\b|@import|@font-face", page)
    assert not re.search(r"https?://", page), "nothing may be fetched from the network"
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {"#arrow"}
    assert len(page.encode()) < 2_000_000


def test_page_shows_every_height_the_halt_and_the_checks(saved):
    page = (saved / "page.html").read_text()
    report = json.loads((saved / "data" / "report.json").read_text())
    halt = report["incident"]["halt_height"]
    for height in range(1, halt + 1):
        assert f'id="h-0-{height}"' in page, height
    assert re.search(rf'id="h-0-{halt}"[^>]*data-halt="yes"', page)
    assert page.count('data-halt="yes"') == 1
    for name in report["checks"]:
        assert f'<td class="mono">{name}</td>' in page
        assert CHECKS[name].replace("'", "&#39;")[:40] in page, "each check is explained in plain words"
    roots = re.findall(r"state root (0x[0-9a-f]{64})</title>", page)
    assert report["restore"]["snapshot_state_root"] in roots and report["chain"]["final_state_root"] in roots


def test_same_inputs_same_bytes(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    events = read_events(saved / "events.jsonl")
    reproduce = read_saved_reproduce(str(saved / "data"))
    assert render_html(report, events, reproduce=reproduce) == render_html(report, events, reproduce=reproduce)
    assert render_html(report, events, reproduce=reproduce) == (saved / "page.html").read_text()


def test_the_printed_reproduce_line_replays_the_small_run(saved, tmp_path):
    words = printed_reproduce((saved / "page.html").read_text())
    assert words[:2] == ["l2sim", "run"] and "--small" in words, words
    result = CliRunner().invoke(main, [*words[1:], "--quiet", "--json", str(tmp_path / "again.json")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again.json").read_text())
    report = json.loads((saved / "data" / "report.json").read_text())
    assert again["digest"] == report["digest"]
    # A page made from the report alone (its scenario is a file, not bundled) names no command.
    page = render_html(report, read_events(saved / "events.jsonl"))
    assert 'id="reproduce"' not in page and f"--seed {report['seed']}" in page


@pytest.mark.parametrize("name", ["paradex-2026", "lying-minority"])
def test_a_bundled_small_run_is_replayed_by_name_and_small(name):
    """Without the command line (a page rendered from a report alone), a bundled scenario's
    small run is `NAME --small`, never the report's `small-NAME` (which is no scenario)."""
    small = load_scenario(name, small=True)
    words = shlex.split(find_reproduce({"scenario": small.name, "seed": 11}))
    assert words == ["l2sim", "run", name, "--seed", "11", "--small"]
    assert dump_scenario(load_with_options(words[2], (), True)) == dump_scenario(small)
    assert find_reproduce({"scenario": "not-bundled", "seed": 1}) is None


def test_a_missing_signer_is_explained(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    events = read_events(saved / "events.jsonl")
    rows = explain_signers(report, events)
    assert [r["validator"] for r in rows if r["signed"]] == report["restore"]["certificate"]["signers"]
    # Plant: a signer dropped from the certificate must get a reason, not a blank.
    dropped = report["restore"]["certificate"]["signers"].pop(0)
    row = explain_signers(report, events)[dropped]
    assert not row["signed"] and "precommitted the plan too" in row["why"]
    report["validators"]["byzantine"] = [{"index": dropped, "behaviour": "withhold"}]
    assert explain_signers(report, events)[dropped]["why"].startswith("Byzantine (withhold)")


def test_unwritable_outputs_are_refused_before_the_run(tmp_path):
    for option in ("--html", "--events"):
        result = l2sim("run", "paradex-2026", option, str(tmp_path / "missing" / "out"))
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and option in result.stderr and "Traceback" not in result.stderr
    result = l2sim("report", str(tmp_path))
    assert result.returncode == 2 and "no saved report" in result.stderr


def test_no_tooltip_says_none_and_the_compensation_says_when_it_was_paid(saved):
    page = (saved / "page.html").read_text()
    titles = re.findall(r"<title>([^<]*)</title>", page)
    assert titles and not [t for t in titles if "None" in t]
    events = read_events(saved / "events.jsonl")
    (height,) = {e["height"] for e in events if e["kind"] == "compensation"}
    paid = re.search(r'<p id="paid-when">([^<]*)</p>', page).group(1)
    assert f"paid in block {height} of fork 1" in paid and "after the restart" not in paid


def test_a_run_that_never_restarted_says_so_and_still_charts_its_one_block():
    """equivocation-third breaks agreement at height 1: one price point per market, no restart."""
    report = {"scenario": "x", "seed": 1, "incident": {"market": "BTC-USD", "first_bad_height": None,
                                                         "halt_height": None, "liquidations": 0,
                                                         "liquidated_accounts": []},
              "restore": None, "reopening": None, "restart": None, "timeline": [],
              "validators": {"count": 4, "total_power": 4, "byzantine": []},
              "compensation": {"accounts": 0, "total": 0, "entries": []}, "forensics": {"culprits": [], "evidence": []},
              "checks": {}}
    events = [{"kind": "price", "fork": 0, "height": 1, "t_s": 0.1, "market": "BTC-USD", "onchain": 9 * 10**22,
               "reference": 9 * 10**22}]
    (chart,) = draw_market_charts(report, events)
    assert chart["svg"].count("<circle") == 2, "one block still shows its two prices"
    assert describe_payment(report, events) is None
    assert not [line for line in build_summary(report, events) if "restart" in line and "never" not in line]


def test_the_funding_reset_and_its_restore_are_on_the_page(saved):
    """The glitch resets the funding index of its funding markets: the page shows it at zero at
    the halt and back at its value after the restart (read from the chain, not assumed)."""
    report = json.loads((saved / "data" / "report.json").read_text())
    rows = {r["market"]: r for r in funding_rows(report, read_events(saved / "events.jsonl"))}
    assert report["incident"]["funding_markets"]
    for market in report["incident"]["funding_markets"]:
        row = rows[market]
        assert row["halt"] == "0.0000" and row["before"] not in ("0.0000", "-"), row
        assert row["restart"] == row["before"], row


def test_a_rejected_plan_is_shown_with_its_reason(saved):
    """A rejected plan's event names no mode or target (byzantine-restore-proposer): the page
    still shows it, who rejected it and why."""
    report = json.loads((saved / "data" / "report.json").read_text())
    events = read_events(saved / "events.jsonl")
    rejected = {"accepted": False, "fork": 0, "height": None, "kind": "plan", "plan_hash": "0x" + "cc" * 32,
                "proposer": 0, "reason": "differs from this validator's own plan in expected_root",
                "rejected_by": [1, 2, 3], "t_s": events[-1]["t_s"], "target_height": None}
    page = html.unescape(render_html(report, [*events, rejected]))
    assert "rejected by validators 1, 2, 3: differs from this validator's own plan in expected_root" in page
    assert "Validator 0 proposed a plan; honest validators rejected it" in page
