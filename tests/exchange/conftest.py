"""Fixtures of the exchange-world tests: the small scenario run once per module, with and without the glitch."""

import pytest
from exchange_support import Run, run_world, small_scenario


@pytest.fixture(scope="session")
def glitch_run() -> Run:
    return run_world(small_scenario())


@pytest.fixture(scope="session")
def calm_run() -> Run:
    return run_world(small_scenario(), glitch=False)
