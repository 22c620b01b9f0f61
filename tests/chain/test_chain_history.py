"""History: a view's canonical blocks by height; appends must extend the head."""

import pytest
from eth_hash.auto import keccak

from chain.blocks import with_header
from chain.errors import HeightOutOfRangeError, UnknownRootError
from chain.execution import build_block
from chain.history import BrokenChainError, History, UnknownViewError
from chain.state import get_account
from chain.transactions import sign_legacy

PROPOSER = b"\x0c" * 20


def _next(funded, history, value, nonce=None):
    nonce = history.height if nonce is None else nonce
    tx = sign_legacy(funded.keys[0], nonce=nonce, to=funded.addresses[1], value=value, gas_price=1)
    return build_block(funded.store, history.head, [tx], proposer=PROPOSER,
                       timestamp=history.height + 1).block


@pytest.fixture
def history(funded):
    history = History.create(funded.store, funded.genesis.header)
    for value in (10, 20, 30):
        history.append(_next(funded, history, value))
    return history


def test_heights_roots_and_accounts(funded, history):
    assert history.height == 3
    assert history.genesis == funded.genesis.header
    assert history.root_at(0) == funded.root
    bob = funded.addresses[1]
    balances = [history.account_at(h, bob).balance for h in range(4)]
    assert [b - balances[0] for b in balances] == [0, 10, 30, 60]
    for height in range(4):
        block = history.block_at(height)
        assert block.height == height
        assert history.header_at(height) == block.header
        assert history.root_at(height) == block.header.state_root
        assert history.account_at(height, bob) == get_account(funded.store, block.header.state_root, bob)
        if height:
            assert block.header.parent_hash == history.header_at(height - 1).hash
    assert history.head == history.header_at(3)
    assert [b.height for b in history.blocks_between(1, 2)] == [1, 2]


@pytest.mark.parametrize("height", [-1, 4, 100])
def test_heights_out_of_range_are_refused(history, height):
    for read in (history.block_at, history.root_at, history.header_at, history.truncate_above):
        with pytest.raises(HeightOutOfRangeError) as raised:
            read(height)
        assert (raised.value.height, raised.value.head) == (height, 3)
    with pytest.raises(HeightOutOfRangeError):
        history.account_at(height, b"\x01" * 20)
    with pytest.raises(HeightOutOfRangeError):
        history.blocks_between(0, height) if height > 0 else history.blocks_between(height, 1)


def test_append_must_extend_the_head(funded, history):
    block = _next(funded, history, 1)
    with pytest.raises(BrokenChainError) as raised:
        history.append(with_header(block, height=5))
    assert raised.value.height == 5
    with pytest.raises(BrokenChainError):
        history.append(with_header(block, height=3))
    with pytest.raises(BrokenChainError, match="parent"):
        history.append(with_header(block, parent_hash=keccak(b"elsewhere")))
    with pytest.raises(UnknownRootError):
        history.append(with_header(block, state_root=keccak(b"nowhere")))
    assert history.height == 3
    history.append(block)
    assert history.height == 4
    with pytest.raises(BrokenChainError):
        history.append(block)  # already the head


def test_truncate_then_append_again(funded, history):
    old_block_2 = history.block_at(2)
    history.truncate_above(1)
    assert history.height == 1
    assert history.head == history.header_at(1)
    replacement = _next(funded, history, 999)
    assert replacement.hash != old_block_2.hash
    history.append(replacement)
    assert history.block_at(2) == replacement
    reopened = History.open(funded.store)
    assert reopened.height == 2
    assert [reopened.block_at(h) for h in range(3)] == [history.block_at(h) for h in range(3)]


def test_open_and_fork_views(funded, history):
    again = History.open(funded.store)
    assert [again.block_at(h).hash for h in range(4)] == [history.block_at(h).hash for h in range(4)]
    side = history.fork("side")
    side.truncate_above(0)
    side.append(_next(funded, side, 5))
    assert History.open(funded.store).height == 3
    assert History.open(funded.store, "side").height == 1
    assert History.open(funded.store, "side").head == side.head
    with pytest.raises(UnknownViewError):
        History.open(funded.store, "nobody")
