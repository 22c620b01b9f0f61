"""Scenario files, actors, the runner, reports and the `l2sim` command.

The Python API (stable): `scenarios.load(...) -> Scenario`, `scenarios.run(...) -> Report`;
see `scenarios.api`. Hypothesis strategies for property tests are in `scenarios.strategies`.
"""

from scenarios.api import load, run
from scenarios.errors import ScenarioError
from scenarios.report_model import Report
from scenarios.schema import Scenario

__all__ = ["Report", "Scenario", "ScenarioError", "load", "run"]
