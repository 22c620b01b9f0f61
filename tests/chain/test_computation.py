"""The analysed computation is stock py-evm with its jump analysis done once per code and its
common opcodes run inline.

Properties first (the one-pass analysis agrees with py-evm's look-back at every position
of any code; the inline loop leaves what stock py-evm leaves for any program of the opcodes
it inlines, at any gas, and so does each inlined opcode on drawn words, memory just inside
and just past what is paid for), then the differential: blocks of the exchange built through
`chain.execution` replayed by stock py-evm give the same roots, receipts and gas; and a
broken analysis or a broken inline opcode, planted, is what those comparisons catch.
"""

import pytest
from eth.constants import BLANK_ROOT_HASH
from eth.vm.code_stream import CodeStream
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState
from eth.vm.message import Message
from eth.vm.stack import to_int
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from hypothesis import given, settings
from hypothesis import strategies as st

import chain.computation
from chain.computation import (
    AnalysedCodeStream,
    AnalysedComputation,
    AnalysedState,
    compute_inline_gas,
    compute_opcode_positions,
)
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


# -- the inline interpreter loop against stock py-evm's, opcode by opcode -------------------

INLINED = sorted(compute_inline_gas(PragueComputation.opcodes))
WORD = st.one_of(st.integers(0, 80), st.integers(60, 70), st.integers(0, 2**256 - 1), st.integers(2**255, 2**256 - 1),
                 st.integers(250, 300)).map(lambda v: b"\x7f" + v.to_bytes(32, "big"))
# Programs of inlined opcodes among a few stock ones (MSTORE8 and MSIZE grow and read memory,
# CALLDATALOAD pushes 32-byte words, GAS reads the meter), jumps aimed at JUMPDESTs and not;
# each opcode often after words pushed for it (signed-negative ones and shifts past 256 too).
PROGRAM_OP = st.one_of(
    st.sampled_from(INLINED),
    st.sampled_from([0x53, 0x59, 0x35, 0x5A, 0x00, 0xFE]),
    st.tuples(st.sampled_from([0x60, 0x61]), st.integers(0, 80)).map(lambda t: bytes([t[0]]) + t[1].to_bytes(
        t[0] - 0x5F, "big")),
    st.tuples(WORD, WORD, st.sampled_from(INLINED)).map(lambda t: t[0] + t[1] + bytes([t[2]])),
    st.tuples(WORD, st.sampled_from(INLINED)).map(lambda t: t[0] + bytes([t[1]])),
)


def _program(ops) -> bytes:
    return b"".join(op if isinstance(op, bytes) else bytes([op]) for op in ops)


def _run_program(computation_class, code, gas):
    store = MemoryStore()
    state = PragueState(store, ExecutionContext(
        coinbase=b"\x00" * 20, timestamp=1, block_number=1, difficulty=0, mix_hash=b"\x00" * 32,
        gas_limit=30_000_000, prev_hashes=(), chain_id=1, base_fee_per_gas=0, excess_blob_gas=0,
    ), BLANK_ROOT_HASH)
    message = Message(gas=gas, to=b"\x11" * 20, sender=b"\x22" * 20, value=0, data=bytes(range(40)), code=code)
    context = PragueState.get_transaction_context_class()(gas_price=0, origin=b"\x22" * 20)
    computation = computation_class.apply_computation(state, message, context)
    return (computation.is_error, type(computation.error).__name__ if computation.is_error else None,
            computation.get_gas_remaining(), [to_int(v) for v in computation._stack.values],
            bytes(computation._memory._bytes), computation.code.program_counter, computation.output)


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(PROGRAM_OP, max_size=40), gas=st.one_of(st.integers(0, 400), st.integers(0, 5000)))
def test_the_inline_loop_does_what_stock_py_evm_does(ops, gas):
    code = _program(ops)
    assert _run_program(AnalysedComputation, code, gas) == _run_program(PragueComputation, code, gas)


@pytest.mark.parametrize("opcode", INLINED, ids=lambda op: PragueComputation.opcodes[op].mnemonic)
@settings(max_examples=25, deadline=None)
@given(words=st.lists(WORD, min_size=0, max_size=3), grow=st.booleans(),
       gas=st.one_of(st.just(10_000), st.just(10_000), st.integers(0, 40)))
def test_each_inline_opcode_does_what_stock_py_evm_does_on_any_operands(opcode, words, grow, gas):
    # Optionally memory paid for first (MSTORE8 at 95: three words), so that MLOAD and
    # MSTORE inside it run inline.
    code = (b"\x60\x00\x60\x5f\x53" if grow else b"") + b"".join(words) + bytes([opcode, 0x00])
    assert _run_program(AnalysedComputation, code, gas) == _run_program(PragueComputation, code, gas)


@pytest.mark.parametrize("opcode", [0x51, 0x52], ids=["MLOAD", "MSTORE"])
def test_memory_inside_and_just_past_what_is_paid_for(opcode):
    # 96 bytes paid for (MSTORE8 of 7 at 95): a word at 64 is inside, at 65..96 it is not.
    for start in range(56, 100):
        code = b"\x60\x07\x60\x5f\x53" + b"\x60\x2a" + bytes([0x60, start, opcode, 0x00])
        assert _run_program(AnalysedComputation, code, 10_000) == _run_program(PragueComputation, code, 10_000), start


def test_sha3_inside_and_past_what_is_paid_for_and_at_the_edge_of_its_gas():
    # 96 bytes paid for; a hash of `size` bytes at `start` costs 30 + 6 a word.
    for start in (0, 1, 31, 32, 63, 64, 65, 95, 96, 2**255):
        for size in (0, 1, 31, 32, 33, 64, 95, 96, 97):
            code = (b"\x60\x07\x60\x5f\x53" + b"\x7f" + size.to_bytes(32, "big") + b"\x7f"
                    + start.to_bytes(32, "big") + bytes([0x20, 0x00]))
            for gas in (10_000, 9 + 9 + 6 + 30 + 6 * ((size + 31) // 32), 9 + 9 + 6 + 30 + 6 * ((size + 31) // 32) - 1):
                assert _run_program(AnalysedComputation, code, gas) == _run_program(PragueComputation, code, gas), (
                    start, size, gas)


def test_the_inline_loop_is_compared_on_what_it_inlines():
    # Planted fault: an ADD that forgets to wrap at 2**256 is caught by the comparison.
    code = _program([0x7F, b"\xff" * 32, 0x60, b"\x02", 0x01, 0x00])
    stock = _run_program(PragueComputation, code, 100)
    assert stock[3] == [1] and _run_program(AnalysedComputation, code, 100) == stock
    saved = chain.computation.UINT_256_MAX
    chain.computation.UINT_256_MAX = 2**257 - 1
    try:
        assert _run_program(AnalysedComputation, code, 100) != stock
    finally:
        chain.computation.UINT_256_MAX = saved
