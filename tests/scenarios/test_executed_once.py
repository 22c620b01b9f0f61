"""Executed once: in a whole run (proposals, every validator's re-execution, the restore plan's
replay, the reopening audit's counterfactual, the checks) no block's transactions reach
py-evm twice on the same pre-state in the same block context.

The audit's counterfactual is executed in full, and must be: from the first block on it
holds the band, so no pre-state of it equals one of the real chain's.
"""

import collections

import pytest

import chain.execution
from chain.execution import apply_block
from scenarios.loader import load_scenario
from scenarios.runner import run_scenario_once


def _counting(counts: collections.Counter):
    original = chain.execution._run

    def run(store, parent_root, context, transactions, strict):
        transactions = list(transactions)
        counts[(parent_root, context, tuple(tx.hash for tx in transactions))] += 1
        return original(store, parent_root, context, transactions, strict)

    return run


def executed_twice(counts: collections.Counter) -> list:
    """The (pre-state root, context, transaction hashes) executed more than once."""
    return [key for key, count in counts.items() if count > 1]


@pytest.fixture(scope="module")
def counted_run():
    counts: collections.Counter = collections.Counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain.execution, "_run", _counting(counts))
        run, _, _ = run_scenario_once(load_scenario("paradex-2026", small=True))
    return run, counts


def test_no_block_is_executed_twice_with_the_same_pre_state_and_transactions(counted_run):
    run, counts = counted_run
    assert run.reference.audit is not None  # the counterfactual ran
    assert sum(len(key[2]) for key in counts) > 100  # a run's worth of transactions
    assert executed_twice(counts) == []


def test_a_block_executed_again_without_the_memo_is_seen(counted_run):
    # The planted fault: a re-execution that bypasses the memo.
    run, counts = counted_run
    history = run.reference.view.history
    height = max(range(1, history.height + 1), key=lambda h: len(history.block_at(h).transactions))
    planted = collections.Counter(counts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain.execution, "_run", _counting(planted))
        apply_block(run.store, history.root_at(height - 1), history.block_at(height))
    assert len(executed_twice(planted)) == 1
