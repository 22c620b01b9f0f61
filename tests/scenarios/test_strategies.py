"""The package's hypothesis strategies keep their promises: runnable scenarios run, broken
ones do not load, fault overrides fit the API, and no two layers share a strategy name."""

import inspect

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import chain.strategies
import consensus.strategies
import scenarios
import scenarios.strategies
from scenarios import errors
from scenarios.strategies import byzantine_entries, compute_fault_windows, fault_overrides, scenario_dicts


@settings(max_examples=6, deadline=None)
@given(scenario_dicts())
def test_a_drawn_scenario_loads_and_runs_to_a_report(data):
    report = scenarios.run(data)
    assert report.scenario == data["name"] and report.seed == data["seed"]
    assert report.checks, "a run reports its checks"


@settings(deadline=None)
@given(scenario_dicts())
def test_a_drawn_scenario_keeps_one_validator_honest_and_stays_small(data):
    scenario = scenarios.load(data)
    assert len(scenario.validators.byzantine) < scenario.validators.count
    assert scenario.chain.heights <= 30 and scenario.chain.accounts <= 80


@settings(deadline=None)
@given(scenario_dicts(runnable=False))
def test_the_wide_space_still_validates(data):
    assert isinstance(scenarios.load(data), scenarios.Scenario)


@settings(deadline=None)
@given(scenario_dicts(broken=True))
def test_broken_draws_are_broken_or_harmless(data):
    try:
        scenarios.load(data)
    except errors.ScenarioError as e:
        assert "\n" not in str(e)


def _fails_to_load(data) -> bool:
    try:
        scenarios.load(data)
    except errors.ScenarioError:
        return True
    return False


def test_broken_draws_include_files_that_do_not_load():
    """A bad-input strategy whose every draw loads would test nothing."""
    # The first failing draw is enough: shrinking it would only cost time.
    found = find(scenario_dicts(broken=True), _fails_to_load,
                 settings=settings(database=None, max_examples=200, phases=[Phase.generate]))
    assert _fails_to_load(found)


@settings(deadline=None)
@given(st.integers(2, 7).flatmap(lambda count: st.tuples(st.just(count), fault_overrides(count, horizon_s=60.0))))
def test_fault_overrides_apply_to_a_scenario_of_that_size(drawn):
    count, faults = drawn
    scenario = scenarios.load("paradex-2026", small=True, overrides={"validators.count": count, **faults})
    assert 3 * len(scenario.validators.byzantine) < count
    assert all(p.end_s <= 60.0 for p in scenario.network.partitions)


@settings(deadline=None)
@given(fault_overrides("paradex-2026", small=True))
def test_faults_drawn_for_a_scenario_fall_where_its_run_is_busy(faults):
    """Before the halt or in the vote after the six-hour pause, never in the pause itself,
    where nothing is sent and a fault would test nothing."""
    small = scenarios.load("paradex-2026", small=True)
    (chain_start, chain_end), (vote_start, vote_end) = compute_fault_windows(small)
    assert chain_end < small.response.pause_s < vote_start
    windows = [(p["start_s"], p["end_s"]) for p in faults["network.partitions"]]
    windows += [(c["at_s"], c["restart_s"]) for c in faults["network.crashes"]]
    for start, end in windows:
        assert chain_start <= start < end <= chain_end or vote_start <= start < end <= vote_end


def test_faults_drawn_for_a_scenario_reach_the_vote():
    starts = find(fault_overrides("paradex-2026", small=True),
                  lambda f: any(p["start_s"] > 21_600 for p in f["network.partitions"]),
                  settings=settings(database=None, max_examples=200))
    assert starts["network.partitions"]


@settings(deadline=None)
@given(byzantine_entries(4, min_faulty=1, max_faulty=1))
def test_byzantine_entries_honours_its_bounds(entries):
    assert len(entries) == 1 and 0 <= entries[0]["index"] < 4


def test_strategy_names_do_not_collide_across_layers():
    modules = [chain.strategies, consensus.strategies, scenarios.strategies]
    seen: dict[str, str] = {}
    for module in modules:
        for name, value in vars(module).items():
            if name.startswith("_") or not callable(value) or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(value):
                continue
            assert name not in seen, f"{name} is in both {seen[name]} and {module.__name__}"
            seen[name] = module.__name__


SHRINK_BUDGET = 60  # whole small runs: at the second a warm small run takes, a minute


def test_a_planted_failure_shrinks_to_its_cause_within_a_minutes_worth_of_runs():
    """Plant a failure that needs one crash of validator 1 during the vote: Hypothesis must
    find its minimal form (that crash alone, at the vote's first tenth of a second) in at
    most SHRINK_BUDGET examples after the first failing one, because each is a whole run."""
    tried = []

    def planted(faults):
        return any(c["node"] == 1 and c["at_s"] > 21_600 for c in faults["network.crashes"])

    @settings(database=None, max_examples=200, derandomize=True, deadline=None)
    @given(fault_overrides("paradex-2026", small=True))
    def prop(faults):
        tried.append(faults)
        assert not planted(faults)

    with pytest.raises(AssertionError):
        prop()
    first = next(i for i, faults in enumerate(tried) if planted(faults))
    assert len(tried) - first - 1 <= SHRINK_BUDGET
    (vote_start, _), = compute_fault_windows(scenarios.load("paradex-2026", small=True))[1:]
    assert tried[-1] == {"validators.byzantine": [], "network.drop_rate": 0.0, "network.duplicate_rate": 0.0,
                         "network.partitions": [],
                         "network.crashes": [{"node": 1, "at_s": vote_start, "restart_s": round(vote_start + 0.1, 1)}]}


def test_the_l2sim_profile_is_registered_for_whole_runs():
    profile = settings.get_profile("l2sim")
    assert profile.deadline is None and profile.max_examples <= 50
