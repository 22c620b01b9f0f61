"""Whole runs at the validator counts of real networks: 64 and 128 validators, honest or with
a Byzantine fifth mixing every behaviour, detect, halt, restore and restart with every check
held.

Each run takes minutes (a height costs about 2 x count^2 message deliveries, and the
emergency vote and the restart add theirs), well past the suite's budget, so they run under
HYPOTHESIS_PROFILE=thorough only; the suite keeps the consensus-level properties at these
sizes (tests/consensus/test_consensus_gossip.py).
"""

import os

import pytest

import scenarios
from validators.behaviours import BYZANTINE_BEHAVIOURS

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def byzantine_fifth(count: int) -> list[dict]:
    """Every fifth validator Byzantine (below a third), cycling through every behaviour."""
    return [{"index": index, "behaviour": BYZANTINE_BEHAVIOURS[n % len(BYZANTINE_BEHAVIOURS)]}
            for n, index in enumerate(range(0, count, 5))]


@pytest.mark.skipif(not THOROUGH, reason="minutes a run: HYPOTHESIS_PROFILE=thorough")
@pytest.mark.parametrize("count", [64, 128])
@pytest.mark.parametrize("with_byzantine", [False, True], ids=["honest", "byzantine-fifth"])
def test_a_large_validator_set_recovers_with_every_check_held(count, with_byzantine):
    overrides = {"validators.count": count}
    if with_byzantine:
        overrides["validators.byzantine"] = byzantine_fifth(count)
    report = scenarios.run("paradex-2026", small=True, overrides=overrides)
    assert report.ok, report.failed_checks
    assert report.restore is not None


def test_a_byzantine_fifth_mixes_every_behaviour_below_a_third():
    for count in (64, 128):
        entries = byzantine_fifth(count)
        assert {e["behaviour"] for e in entries} == set(BYZANTINE_BEHAVIOURS)
        assert 3 * len(entries) < count
        scenarios.load("paradex-2026", small=True,
                       overrides={"validators.count": count, "validators.byzantine": entries})
