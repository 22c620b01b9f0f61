"""py-evm's Prague computation with its jump-destination analysis done once per contract code.

Stock py-evm decides whether a JUMP's target is an opcode (not the data of a PUSH) by
looking back up to 32 bytes from the target on every call of every contract, keeping
what it learnt only for the lifetime of one call. The answer depends on the code bytes
alone, so here it is computed once per code (one forward pass, the way the Yellow Paper
defines it) and remembered, keyed by the full bytes: two codes share an analysis only if
they are equal. Nothing else changes: gas, roots and receipts are stock py-evm's
(`tests/chain/test_computation.py` runs both side by side).
"""

from __future__ import annotations

import functools

from eth.vm.code_stream import CodeStream
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState
from eth.vm.opcode_values import PUSH1, PUSH32

# Contract codes a run executes: a handful (oracle, perps, bridge, per fork), so a small
# bound keeps every one of them while a stream of distinct codes cannot grow it.
MAX_ANALYSED_CODES = 256


@functools.lru_cache(maxsize=MAX_ANALYSED_CODES)
def compute_opcode_positions(code: bytes) -> frozenset[int]:
    """Every position of `code` that holds an opcode rather than a PUSH's immediate data."""
    positions = []
    position, length = 0, len(code)
    while position < length:  # bounded: every step moves at least one byte
        positions.append(position)
        opcode = code[position]
        position += 1 + (opcode - PUSH1 + 1 if PUSH1 <= opcode <= PUSH32 else 0)
    return frozenset(positions)


class AnalysedCodeStream(CodeStream):
    """A code stream whose `is_valid_opcode` reads the per-code analysis."""

    __slots__ = ("_opcode_positions",)

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        self._opcode_positions = compute_opcode_positions(code_bytes)

    def is_valid_opcode(self, position: int) -> bool:
        return position in self._opcode_positions


class AnalysedComputation(PragueComputation):
    """Prague's computation over an `AnalysedCodeStream`."""

    def __init__(self, state, message, transaction_context) -> None:
        super().__init__(state, message, transaction_context)
        self.code = AnalysedCodeStream(message.code)


class AnalysedState(PragueState):
    """Prague's state, running its messages as `AnalysedComputation`s."""

    computation_class = AnalysedComputation
