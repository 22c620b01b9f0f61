"""py-trie's nibble and hex-prefix conversions, memoised by their full input.

Every trie read and write turns its 32-byte key into 64 nibbles (a generator step each) and
decodes the hex-prefixed path of each node it passes; the same keys and paths recur in every
block, by every validator. These are pure functions of their input bytes (or nibbles), so
their results are remembered, keyed by the whole input, and shared: equal inputs give the
same tuple, which no caller can change. Adding and removing the terminator are the same
operations without a generator. Installed once, when `chain` first opens a state, into the
py-trie modules that call them (`tests/chain/test_nibbles.py` compares each with py-trie's
own on drawn inputs, and trie roots built both ways).
"""

from __future__ import annotations

import functools
from typing import Sequence

import trie.hexary
import trie.utils.nibbles
import trie.utils.nodes
from trie.constants import NIBBLE_TERMINATOR

# Distinct keys and node paths a run's tries hold are in the tens of thousands; this bound
# keeps the hot ones while a stream of new keys costs at most a few tens of MB.
MAX_CACHED = 1 << 15

STOCK = {name: getattr(trie.utils.nibbles, name) for name in (
    "bytes_to_nibbles", "decode_nibbles", "encode_nibbles", "add_nibbles_terminator", "remove_nibbles_terminator")}
_stock_bytes_to_nibbles = STOCK["bytes_to_nibbles"]
_stock_decode_nibbles = STOCK["decode_nibbles"]
_stock_encode_nibbles = STOCK["encode_nibbles"]


def add_nibbles_terminator(nibbles: Sequence[int]) -> tuple[int, ...]:
    """`nibbles` ending in the terminator (added unless it is there)."""
    nibbles = tuple(nibbles)
    return nibbles if nibbles and nibbles[-1] == NIBBLE_TERMINATOR else nibbles + (NIBBLE_TERMINATOR,)


def remove_nibbles_terminator(nibbles: Sequence[int]) -> tuple[int, ...]:
    """`nibbles` without the terminator (removed if it is there)."""
    nibbles = tuple(nibbles)
    return nibbles[:-1] if nibbles and nibbles[-1] == NIBBLE_TERMINATOR else nibbles


@functools.lru_cache(maxsize=MAX_CACHED)
def _bytes_to_nibbles(value: bytes) -> tuple[int, ...]:
    return _stock_bytes_to_nibbles(value)


@functools.lru_cache(maxsize=MAX_CACHED)
def _decode_nibbles(value: bytes) -> tuple[int, ...]:
    return _stock_decode_nibbles(value)


@functools.lru_cache(maxsize=MAX_CACHED)
def _encode_nibbles(nibbles: tuple[int, ...]) -> bytes:
    return _stock_encode_nibbles(nibbles)


def bytes_to_nibbles(value: bytes) -> tuple[int, ...]:
    """py-trie's `bytes_to_nibbles`, memoised for `bytes` (anything else is converted afresh)."""
    return _bytes_to_nibbles(value) if value.__class__ is bytes else _stock_bytes_to_nibbles(value)


def decode_nibbles(value: bytes) -> tuple[int, ...]:
    """py-trie's `decode_nibbles` (the inverse of hex-prefix), memoised for `bytes`."""
    return _decode_nibbles(value) if value.__class__ is bytes else _stock_decode_nibbles(value)


def encode_nibbles(nibbles: Sequence[int]) -> bytes:
    """py-trie's `encode_nibbles` (hex-prefix), memoised by the nibbles as a tuple."""
    return _encode_nibbles(tuple(nibbles))


INSTALLED = {"bytes_to_nibbles": bytes_to_nibbles, "decode_nibbles": decode_nibbles,
             "encode_nibbles": encode_nibbles, "add_nibbles_terminator": add_nibbles_terminator,
             "remove_nibbles_terminator": remove_nibbles_terminator}


def install(functions: dict) -> None:
    """Put `functions` (name -> function) where py-trie's modules look them up."""
    for module in (trie.utils.nibbles, trie.utils.nodes, trie.hexary):
        for name, function in functions.items():
            if hasattr(module, name):
                setattr(module, name, function)


install(INSTALLED)
