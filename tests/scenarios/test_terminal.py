"""The terminal summary speaks the reader's units: dollars (wei on request), hours and
minutes, plurals that agree, each liquidation told once, checks in the order judged, and an
incident described by what it corrupted."""

import copy
import io
import json
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from scenarios.checks import get_promised_checks
from scenarios.cli import main
from scenarios.terminal import count, describe_incident, format_detail, format_duration, render_summary


def render(report: dict, **options) -> str:
    out = io.StringIO()
    render_summary(report, Console(file=out, width=250, color_system=None), **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def report(saved):
    return json.loads((saved / "data" / "report.json").read_text())


def check_rows(text: str) -> list[str]:
    return re.findall(r"^│ ([a-z0-9_]+) +│ (?:held|exempt|FAILED|not reached)", text, flags=re.M)


def test_a_saved_report_lists_its_checks_in_the_order_run_judged_them(saved, report):
    assert list(report["checks"]) == sorted(report["checks"])  # the JSON on disk sorts its keys
    result = CliRunner().invoke(main, ["report", str(saved / "data")], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert check_rows(result.output) == list(get_promised_checks(report["restore"]["mode"]))


def test_amounts_are_dollars_unless_wei_is_asked_for(report):
    text = render(report)
    paid = report["compensation"]["total"]
    assert f"{paid} wei" not in text and str(paid) not in text
    assert f"${paid / 10**18:,.2f}" in text
    raw = render(report, wei=True)
    assert f"{paid} wei" in raw
    result = CliRunner().invoke(main, ["explain", "wei"])
    assert result.exit_code == 0 and "10^18" in result.output


def test_detail_amounts_become_dollars_and_small_numbers_stay():
    detail = "7155133594095935457274 wei paid of 7155133594095935457274 wei computed, to 2 accounts"
    assert format_detail(detail) == "$7,155.13 paid of $7,155.13 computed, to 2 accounts"
    assert format_detail("balance 5422130000000000000000000, fees 0 wei") == "balance $5,422,130.00, fees $0.00"
    assert format_detail("target 9; height 12 of 22") == "target 9; height 12 of 22"
    assert format_detail(detail, wei_units=True) == detail


@pytest.mark.parametrize("seconds, precise, text", [
    (12.94, True, "12.9 s"), (245.0, True, "4 min 05.0 s"), (21654.9, True, "6 h 00 min 54.9 s"),
    (21654.9, False, "6 h 00 min"), (90_000.0, False, "25 h 00 min"),
])
def test_durations_read_in_hours_and_minutes(seconds, precise, text):
    assert format_duration(seconds, precise=precise) == text


def test_the_summary_has_no_raw_seconds_past_a_minute(report):
    text = render(report)
    assert not re.search(r"\b\d{3,}(\.\d)? s\b", text), text
    assert "6 h 00 min" in text


def test_plurals_agree():
    assert count(1, "liquidation") == "1 liquidation" and count(2, "account") == "2 accounts"
    assert count(0, "account") == "0 accounts"


def test_a_single_liquidation_and_a_halt_without_plan(report):
    one = copy.deepcopy(report)
    one["incident"].update(liquidations=1, liquidated_accounts=one["incident"]["liquidated_accounts"][:1],
                           halt_height=None)
    text = render(one)
    assert "1 liquidation of 1 account before" in text
    assert "not reached" not in text.split("Incident:")[1].split("\n")[0]
    assert f"halted at height {one['incident']['detected_height']} (no restore plan was agreed)" in text


def test_reopening_liquidations_are_told_once(report):
    text = render(report)
    restricted = report["reopening"]["liquidations"]
    assert restricted and f"{count(restricted, 'liquidation')} during the restricted phases" in text
    assert "After the restart" not in text  # the same liquidations, once


def test_the_incident_says_what_was_corrupted():
    funding_only = {"market": "BTC-USD", "kind": "funding-reset", "funding_markets": ["ETH-USD"]}
    assert describe_incident(funding_only) == "The funding index of ETH-USD reset to 0"
    assert "BTC" not in describe_incident(funding_only)
    both = {"market": "BTC-USD", "kind": "both", "funding_markets": ["BTC-USD", "SOL-USD"]}
    assert describe_incident(both) == "BTC-USD's oracle price corrupted and the funding indices of BTC-USD, " \
                                      "SOL-USD reset to 0"
    assert describe_incident({"market": "SOL-USD", "kind": "price", "funding_markets": []}) == \
        "SOL-USD's oracle price corrupted"


def test_forensics_says_what_convicted_each_culprit(report):
    lying = copy.deepcopy(report)
    lying["forensics"] = {"culprits": [1], "evidence": [{"validator": 1, "kind": "view-contradicts-certified-header"}]}
    assert "convicted by what they signed (a signed halt view against a header with a commit certificate)" \
        in render(lying)


def test_the_clock_reads_hours_and_never_shows_sixty_seconds():
    from scenarios.units import format_clock

    assert format_clock(21656.857, 3) == " 6:00:56.857"
    assert format_clock(59.96) == " 0:01:00.0" and format_clock(2.35) == " 0:00:02.4"


def test_inspect_text_is_in_dollars_and_wei_on_request(saved, report):
    account = report["incident"]["liquidated_accounts"][0]
    args = ["inspect", str(saved / "data"), "--height", str(report["restore"]["target_height"]), "--fork", "0",
            "--account", account]
    state = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    text = CliRunner().invoke(main, args).stdout
    assert f"collateral: ${state['collateral'] / 10**18:,.2f}" in text and str(state["collateral"]) not in text
    assert f"collateral: {state['collateral']} wei" in CliRunner().invoke(main, [*args, "--wei"]).stdout
