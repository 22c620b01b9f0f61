"""Blocks: encoding roundtrips, the hash commits to every header field, garbage is refused."""


import pytest
from hypothesis import given, settings, strategies as st
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak

from chain.blocks import (
    HEADER_FIELD_NAMES,
    Block,
    Header,
    MalformedBlockError,
    ZERO_HASH,
    compute_receipts_root,
    compute_trie_root,
    compute_transactions_root,
    decode_block,
    encode_block,
    with_header,
)
from chain.transactions import derive_private_key, sign_dynamic_fee, sign_legacy
from trie import HexaryTrie

KEY = derive_private_key(5, "account", 0)
TXS = (
    sign_legacy(KEY, nonce=0, to=b"\x42" * 20, value=1),
    sign_dynamic_fee(KEY, nonce=1, to=b"\x43" * 20, value=2, max_fee_per_gas=3),
)
HEADER = Header(
    height=3,
    parent_hash=keccak(b"parent"),
    state_root=keccak(b"state"),
    transactions_root=compute_transactions_root(TXS),
    receipts_root=keccak(b"receipts"),
    proposer=b"\x07" * 20,
    timestamp=1234,
    fork_id=1,
    gas_used=42_000,
)


def _changed(name: str) -> object:
    value = getattr(HEADER, name)
    if isinstance(value, int):
        return value + 1
    return bytes([value[0] ^ 1]) + value[1:]


@pytest.mark.parametrize("block", [Block(HEADER, TXS), Block(HEADER), Block(Header(0, ZERO_HASH, BLANK_ROOT_HASH))])
def test_block_roundtrip(block):
    decoded = decode_block(encode_block(block))
    assert decoded == block
    assert decoded.hash == block.hash


@pytest.mark.parametrize("name", HEADER_FIELD_NAMES)
def test_hash_changes_with_every_header_field(name):
    changed = with_header(Block(HEADER, TXS), **{name: _changed(name)})
    assert getattr(changed.header, name) != getattr(HEADER, name)
    assert changed.hash != HEADER.hash
    assert changed.transactions == TXS


def test_hash_is_keccak_of_the_header_rlp():
    fields = [getattr(HEADER, name) for name in HEADER_FIELD_NAMES]
    assert HEADER.hash == keccak(rlp.encode(fields))


def test_transactions_root_is_the_index_trie():
    trie = HexaryTrie({})
    for index, tx in enumerate(TXS):
        trie[rlp.encode(index)] = tx.encode()
    assert compute_transactions_root(TXS) == trie.root_hash
    assert compute_transactions_root(TXS[::-1]) != trie.root_hash
    assert compute_transactions_root(()) == BLANK_ROOT_HASH
    assert compute_receipts_root(()) == BLANK_ROOT_HASH


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc0",
        b"\x80",
        rlp.encode([[1, 2], []]),  # header too short
        rlp.encode([[b"\x01"] * 9, [b"not a transaction"]]),
        rlp.encode([[b"\x01"] * 9]),  # no transaction list
        encode_block(Block(HEADER, TXS))[:-5],
        b"\xff" * 64,
    ],
)
def test_malformed_block_is_refused(raw):
    with pytest.raises(MalformedBlockError):
        decode_block(raw)


# Bad-input fuzzing: any bytes, and any RLP shape, either decode or raise the typed error.
_rlp_items = st.recursive(st.binary(max_size=40), lambda inner: st.lists(inner, max_size=10), max_leaves=30)


@given(st.one_of(st.binary(max_size=200), _rlp_items.map(rlp.encode)))
def test_decode_block_accepts_or_raises_malformed(raw):
    try:
        block = decode_block(raw)
    except MalformedBlockError as error:
        assert error.raw == raw
    else:
        assert isinstance(block, Block)


@given(st.lists(st.binary(max_size=40), min_size=9, max_size=9), st.lists(_rlp_items, max_size=3))
def test_decode_block_with_nine_header_fields_accepts_or_raises_malformed(fields, txs):
    raw = rlp.encode([fields, txs])
    try:
        decode_block(raw)
    except MalformedBlockError:
        pass


@settings(max_examples=200)
@given(st.dictionaries(st.binary(min_size=0, max_size=33), st.binary(min_size=1, max_size=80), max_size=40))
def test_one_pass_trie_root_equals_the_hexary_trie(pairs):
    """compute_trie_root builds in memory what py-trie builds node by node: same root, any keys."""
    trie = HexaryTrie({})
    for key, value in pairs.items():
        trie[key] = value
    assert compute_trie_root(pairs) == trie.root_hash
