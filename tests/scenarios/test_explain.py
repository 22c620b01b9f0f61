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
