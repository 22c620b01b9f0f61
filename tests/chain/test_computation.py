"""The analysed computation is stock py-evm with its jump analysis done once per code.

A property first (the one-pass analysis agrees with py-evm's look-back at every position
of any code), then the differential: blocks of the exchange built through `chain.execution`
replayed by stock py-evm give the same roots, receipts and gas; and a broken analysis,
planted, is what that comparison catches.
"""

import pytest
from eth.vm.code_stream import CodeStream
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.computation import AnalysedCodeStream, AnalysedComputation, AnalysedState, compute_opcode_positions
from chain.blocks import compute_receipts_root
from chain.execution import context_for
from chain.history import History
from chain.store import MemoryStore
from scenarios.actors import build_world
from scenarios.schema import Scenario
from scenarios.single_node import run_blocks

PUSH_HEAVY = st.one_of(st.integers(0x60, 0x7F), st.sampled_from([0x5B, 0x56, 0x57, 0x00]), st.integers(0, 255))


@settings(max_examples=60, deadline=None)
@given(code=st.lists(PUSH_HEAVY, max_size=90).map(bytes))
def test_one_pass_analysis_agrees_with_py_evm_at_every_position(code):
    stock = CodeStream(code)
    analysed = AnalysedCodeStream(code)
    for position in range(len(code) + 40):
        assert analysed.is_valid_opcode(position) == stock.is_valid_opcode(position), position


def test_push_data_is_never_an_opcode_even_when_it_looks_like_a_jumpdest():
    # PUSH2 0x5b5b JUMPDEST: positions 1 and 2 are data, 3 is the real JUMPDEST.
    assert compute_opcode_positions(bytes.fromhex("615b5b5b")) == bytes([1, 0, 0, 1])
    # A PUSH32 cut short by the end of the code: everything after it is data.
    assert compute_opcode_positions(bytes.fromhex("7f5b5b")) == bytes([1, 0, 0])


@pytest.fixture(scope="module")
def exchange_blocks():
    """Five blocks of a tiny exchange world (trades, price posts, a funding post)."""
    scenario = Scenario.model_validate({
        "name": "tiny", "seed": 5,
        "chain": {"accounts": 24, "heights": 5, "finality_blocks": 2},
        "incident": {"market": "BTC-USD", "start_height": 3, "duration_blocks": 1},
        "workload": {"traders": 12, "keepers": 1, "profit_takers": 2, "trade_probability": 0.5},
    })
    store = MemoryStore()
    world = build_world(scenario, store)
    history = History.create(store, world.genesis.header)
    run_blocks(world, history, 5)
    return store, [(history.root_at(h - 1), history.block_at(h)) for h in range(1, history.height + 1)]


def replay(store, parent_root, block, state_class):
    """(state root, receipts root, gas used) of `block`'s transactions applied by `state_class`."""
    context = context_for(block.header)
    state = state_class(store, ExecutionContext(
        coinbase=context.coinbase, timestamp=context.timestamp, block_number=context.height, difficulty=0,
        mix_hash=b"\x00" * 32, gas_limit=context.gas_limit, prev_hashes=(), chain_id=context.chain_id,
        base_fee_per_gas=0, excess_blob_gas=0,
    ), parent_root)
    receipts, gas_used = [], 0
    for tx in block.transactions:
        state.lock_changes()
        computation = state.apply_transaction(tx)
        gas_used += PragueVM.finalize_gas_used(tx, computation)
        status = b"" if computation.is_error else b"\x01"
        receipts.append(tx.make_receipt(status, gas_used, computation.get_log_entries()))
    state.persist()
    return state.state_root, compute_receipts_root(receipts), gas_used


def test_stock_py_evm_gives_the_same_roots_receipts_and_gas(exchange_blocks):
    store, blocks = exchange_blocks
    assert sum(len(b.transactions) for _, b in blocks) > 20  # contract calls, not an empty chain
    for parent_root, block in blocks:
        header = block.header
        claimed = (header.state_root, header.receipts_root, header.gas_used)
        assert replay(store, parent_root, block, PragueVM.get_state_class()) == claimed, block.height
        assert replay(store, parent_root, block, AnalysedState) == claimed, block.height


class _NoJumpdests(AnalysedCodeStream):
    """A planted fault: an analysis that finds no opcode anywhere."""

    def is_valid_opcode(self, position: int) -> bool:
        return False


class _BrokenComputation(AnalysedComputation):
    code_stream_class = _NoJumpdests


class _BrokenState(AnalysedState):
    computation_class = _BrokenComputation


def test_the_comparison_catches_a_broken_analysis(exchange_blocks):
    store, blocks = exchange_blocks
    parent_root, block = max(blocks, key=lambda pair: len(pair[1].transactions))
    header = block.header
    assert replay(store, parent_root, block, _BrokenState) != (header.state_root, header.receipts_root,
                                                               header.gas_used)
