"""py-evm's Prague computation, run faster where it is safe.

Two changes, both invisible in gas, roots, receipts and errors (`tests/chain/test_computation.py`
runs stock py-evm beside them on the same blocks, and each inline opcode against its stock
one on drawn stacks):

- Jump destinations. Stock py-evm decides whether a JUMP's target is an opcode (not the data
  of a PUSH) by looking back up to 32 bytes from the target on every call of every contract,
  keeping what it learnt only for one call. The answer depends on the code bytes alone, so
  here it is computed once per code (one forward pass, the way the Yellow Paper defines it)
  and remembered, keyed by the full bytes: two codes share an analysis only if they are equal.
- The interpreter loop. Stock py-evm runs each opcode through five or more Python calls (the
  code stream's generator, the opcode object, two gas meter calls, the logic function, the
  stack's method). Here the opcodes that make up ~90% of what the exchange's contracts run
  (PUSH, DUP, SWAP, POP, JUMPDEST, JUMP, JUMPI, ISZERO, NOT, ADD, SUB, MUL, DIV, LT, GT, SLT,
  SGT, EQ, AND, OR, XOR, SHL, SHR, and MLOAD/MSTORE/SHA3 inside memory already paid for) are done
  inline, each only when nothing can go wrong: gas enough, the stack deep enough and not full,
  no memory to pay for, a valid jump.
  Otherwise, and for every other opcode, the stock opcode runs from the same state and does
  (or raises) what stock py-evm does.
"""

from __future__ import annotations

import functools

from eth.constants import GAS_SHA3WORD
from eth.exceptions import Halt
from eth_hash.auto import keccak
from eth.vm import computation as stock_computation
from eth.vm.code_stream import CodeStream
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState
from eth.vm.logic import arithmetic, comparison, duplication, flow, memory, sha3, stack, swap
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.opcode import _FastOpcode
from eth.vm.opcode_values import JUMPDEST, PUSH1, PUSH32, STOP

# Contract codes a run executes: a handful (oracle, perps, bridge and their init codes), so
# this bound keeps every one of them while a stream of distinct codes cannot grow it past a
# few MB (one byte a position; code is at most 24 KB, init code 48 KB).
MAX_ANALYSED_CODES = 256
STACK_LIMIT = 1024
UINT_256_MAX = 2**256 - 1


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


# The stock logic each inline opcode replaces: an opcode is inlined only if the fork's table
# holds exactly this function at exactly this gas, so a fork that changes one keeps stock.
_BINARY = {0x01: (arithmetic.add, "ADD"), 0x02: (arithmetic.mul, "MUL"), 0x03: (arithmetic.sub, "SUB"),
           0x04: (arithmetic.div, "DIV"), 0x10: (comparison.lt, "LT"), 0x11: (comparison.gt, "GT"),
           0x12: (comparison.slt, "SLT"), 0x13: (comparison.sgt, "SGT"), 0x14: (comparison.eq, "EQ"),
           0x16: (comparison.and_op, "AND"), 0x17: (comparison.or_op, "OR"), 0x18: (comparison.xor, "XOR"),
           0x1B: (arithmetic.shl, "SHL"), 0x1C: (arithmetic.shr, "SHR")}
_INLINE = {
    0x15: comparison.iszero, 0x19: comparison.not_op, 0x20: sha3.sha3, 0x50: stack.pop, 0x51: memory.mload, 0x52: memory.mstore, 0x56: flow.jump,
    0x57: flow.jumpi, 0x5B: flow.jumpdest, 0x5F: stack.push0,
    **{op: fn for op, (fn, _) in _BINARY.items()},
    **{0x60 + i: getattr(stack, f"push{i + 1}") for i in range(32)},
    **{0x80 + i: getattr(duplication, f"dup{i + 1}") for i in range(16)},
    **{0x90 + i: getattr(swap, f"swap{i + 1}") for i in range(16)},
}


def compute_inline_gas(opcodes: dict) -> dict[int, int]:
    """opcode -> gas of every opcode this loop may run inline under `opcodes` (a fork's table)."""
    return {op: fn.gas_cost for op, logic in _INLINE.items()
            if isinstance(fn := opcodes.get(op), _FastOpcode) and fn.logic_fn is logic}


def _as_int(value: int | bytes) -> int:
    return value if value.__class__ is int else int.from_bytes(value, "big")


class AnalysedComputation(PragueComputation):
    """Prague's computation over an `AnalysedCodeStream` (or `code_stream_class`), with the
    inline interpreter loop (`apply_computation`)."""

    code_stream_class = AnalysedCodeStream

    def __init__(self, state, message, transaction_context) -> None:
        super().__init__(state, message, transaction_context)
        self.code = self.code_stream_class(message.code)

    @classmethod
    def apply_computation(cls, state, message, transaction_context, parent_computation=None):
        """Stock py-evm's `apply_computation` (the same preamble, line for line) over
        `_run_opcodes`, or stock's own loop when py-evm's opcode tracing is on."""
        if cls.logger.show_debug2:
            return super().apply_computation(state, message, transaction_context, parent_computation)
        with cls(state, message, transaction_context) as computation:
            if computation.is_origin_computation:
                computation.contracts_created = []
                if message.is_create:
                    cls.consume_initcode_gas_cost(computation)
            if parent_computation is not None:
                computation.contracts_created = parent_computation.contracts_created
            if message.is_create:
                computation.contracts_created.append(message.storage_address)
            precompile = computation.precompiles.get(message.code_address, stock_computation.NO_RESULT)
            if precompile is not stock_computation.NO_RESULT:
                if not message.is_delegation:
                    precompile(computation)
                return computation
            _run_opcodes(computation, _inline_gas_of(cls))
        return computation


@functools.lru_cache(maxsize=None)
def _inline_gas_of(computation_class: type) -> tuple[int, ...]:
    """Per opcode 0..255, its inline gas, or -1 where the stock opcode runs."""
    gas = compute_inline_gas(computation_class.opcodes)
    return tuple(gas.get(op, -1) for op in range(256))


def _run_opcodes(computation: AnalysedComputation, inline_gas: tuple[int, ...]) -> None:
    """The interpreter loop: `computation`'s code from its program counter until it halts.
    Every inline branch first checks that it cannot fail; if it could, it falls through to the
    stock opcode, which then sees the state unchanged."""
    code = computation.code
    raw, length, is_valid = code._raw_code_bytes, code._length_cache, code.is_valid_opcode
    values = computation._stack.values
    push, pop = values.append, values.pop
    meter = computation._gas_meter
    memory_ = computation._memory
    opcodes = computation.opcodes
    while True:  # bounded by gas: every opcode costs some, and the meter only falls
        pc = code.program_counter
        if pc < length:
            opcode = raw[pc]
            pc += 1
            code.program_counter = pc
        else:
            opcode = STOP
        cost = inline_gas[opcode]
        if 0 <= cost <= meter.gas_remaining:
            depth = len(values)
            if 0x60 <= opcode <= 0x7F:  # PUSH1..PUSH32
                if depth < STACK_LIMIT:
                    size = opcode - 0x5F
                    value = raw[pc:pc + size]
                    if len(value) != size:
                        value = value.ljust(size, b"\x00")
                    code.program_counter = pc + size
                    meter.gas_remaining -= cost
                    push(value)
                    continue
            elif 0x80 <= opcode <= 0x8F:  # DUP1..DUP16
                position = opcode - 0x7F
                if position <= depth < STACK_LIMIT:
                    meter.gas_remaining -= cost
                    push(values[-position])
                    continue
            elif 0x90 <= opcode <= 0x9F:  # SWAP1..SWAP16
                position = opcode - 0x8E
                if position <= depth:
                    meter.gas_remaining -= cost
                    values[-1], values[-position] = values[-position], values[-1]
                    continue
            elif opcode == 0x51:  # MLOAD inside memory already paid for
                if depth:
                    start = _as_int(values[-1])
                    data = memory_._bytes
                    if start + 32 <= len(data):
                        meter.gas_remaining -= cost
                        values[-1] = bytes(data[start:start + 32])
                        continue
            elif opcode == 0x52:  # MSTORE inside memory already paid for
                if depth >= 2:
                    start = _as_int(values[-1])
                    data = memory_._bytes
                    if start + 32 <= len(data):
                        meter.gas_remaining -= cost
                        pop()
                        value = pop()
                        data[start:start + 32] = (value.to_bytes(32, "big") if value.__class__ is int
                                                  else value.rjust(32, b"\x00"))
                        continue
            elif opcode == 0x57:  # JUMPI
                if depth >= 2:
                    destination, condition = _as_int(values[-1]), _as_int(values[-2])
                    if not condition:
                        meter.gas_remaining -= cost
                        del values[-2:]
                        continue
                    if destination < length and raw[destination] == JUMPDEST and is_valid(destination):
                        meter.gas_remaining -= cost
                        del values[-2:]
                        code.program_counter = destination
                        continue
            elif opcode == 0x56:  # JUMP
                if depth:
                    destination = _as_int(values[-1])
                    if destination < length and raw[destination] == JUMPDEST and is_valid(destination):
                        meter.gas_remaining -= cost
                        pop()
                        code.program_counter = destination
                        continue
            elif opcode == 0x5B:  # JUMPDEST
                meter.gas_remaining -= cost
                continue
            elif opcode == 0x50:  # POP
                if depth:
                    meter.gas_remaining -= cost
                    pop()
                    continue
            elif opcode == 0x5F:  # PUSH0
                if depth < STACK_LIMIT:
                    meter.gas_remaining -= cost
                    push(b"")
                    continue
            elif opcode == 0x15:  # ISZERO
                if depth:
                    meter.gas_remaining -= cost
                    values[-1] = 0 if _as_int(values[-1]) else 1
                    continue
            elif opcode == 0x20:  # SHA3 of memory already paid for, its word gas affordable
                if depth >= 2:
                    start, size = _as_int(values[-1]), _as_int(values[-2])
                    data = memory_._bytes
                    if size == 0 or start + size <= len(data):
                        total = cost + GAS_SHA3WORD * ((size + 31) // 32)
                        if total <= meter.gas_remaining:
                            meter.gas_remaining -= total
                            del values[-2:]
                            push(keccak(bytes(data[start:start + size])))
                            continue
            elif opcode == 0x19:  # NOT
                if depth:
                    meter.gas_remaining -= cost
                    values[-1] = UINT_256_MAX - _as_int(values[-1])
                    continue
            elif depth >= 2:  # the binary operations: top is the left operand
                left, right = _as_int(values[-1]), _as_int(values[-2])
                if opcode == 0x01:
                    result = (left + right) & UINT_256_MAX
                elif opcode == 0x16:
                    result = left & right
                elif opcode == 0x18:
                    result = left ^ right
                elif opcode == 0x10:
                    result = 1 if left < right else 0
                elif opcode == 0x14:
                    result = 1 if left == right else 0
                elif opcode == 0x17:
                    result = left | right
                elif opcode == 0x12:  # signed: two's complement
                    result = 1 if (left - (left >> 255 << 256)) < (right - (right >> 255 << 256)) else 0
                elif opcode == 0x13:
                    result = 1 if (left - (left >> 255 << 256)) > (right - (right >> 255 << 256)) else 0
                elif opcode == 0x1C:
                    result = 0 if left >= 256 else (right >> left) & UINT_256_MAX
                elif opcode == 0x1B:
                    result = 0 if left >= 256 else (right << left) & UINT_256_MAX
                elif opcode == 0x02:
                    result = (left * right) & UINT_256_MAX
                elif opcode == 0x04:
                    result = 0 if right == 0 else (left // right) & UINT_256_MAX
                elif opcode == 0x03:
                    result = (left - right) & UINT_256_MAX
                else:
                    result = 1 if left > right else 0
                meter.gas_remaining -= cost
                pop()
                values[-1] = result
                continue
        try:
            opcode_fn = opcodes[opcode]
        except KeyError:
            opcode_fn = InvalidOpcode(opcode)
        try:
            opcode_fn(computation=computation)
        except Halt:
            break


class AnalysedState(PragueState):
    """Prague's state, running its messages as `AnalysedComputation`s."""

    computation_class = AnalysedComputation
