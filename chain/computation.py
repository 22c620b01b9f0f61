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

# Contract codes a run executes: a handful (oracle, perps, bridge and their init codes), so
# this bound keeps every one of them while a stream of distinct codes cannot grow it past a
# few MB (one byte a position; code is at most 24 KB, init code 48 KB).
MAX_ANALYSED_CODES = 256


@functools.lru_cache(maxsize=MAX_ANALYSED_CODES)
def compute_opcode_positions(code: bytes) -> bytes:
    """One byte per position of `code`: 1 where an opcode stands, 0 in a PUSH's immediate data
    (a byte map rather than a set of positions: a byte a position, whatever the code)."""
    positions = bytearray(len(code))
    position, length = 0, len(code)
    while position < length:  # bounded: every step moves at least one byte
        positions[position] = 1
        opcode = code[position]
        position += 1 + (opcode - PUSH1 + 1 if PUSH1 <= opcode <= PUSH32 else 0)
    return bytes(positions)


class AnalysedCodeStream(CodeStream):
    """A code stream whose `is_valid_opcode` reads the per-code analysis."""

    __slots__ = ("_opcode_positions",)

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        self._opcode_positions = compute_opcode_positions(code_bytes)

    def is_valid_opcode(self, position: int) -> bool:
        return 0 <= position < self._length_cache and self._opcode_positions[position] == 1


class AnalysedComputation(PragueComputation):
    """Prague's computation over an `AnalysedCodeStream` (or `code_stream_class`)."""

    code_stream_class = AnalysedCodeStream

    def __init__(self, state, message, transaction_context) -> None:
        super().__init__(state, message, transaction_context)
        self.code = self.code_stream_class(message.code)


class AnalysedState(PragueState):
    """Prague's state, running its messages as `AnalysedComputation`s."""

    computation_class = AnalysedComputation
