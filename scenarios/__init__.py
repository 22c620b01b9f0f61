"""Scenario files, actors, the runner, reports and the `l2sim` command."""
