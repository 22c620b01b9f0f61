"""The oracle: one reporter posts, the owner appoints the reporter, every post is logged."""

import pytest

from .conftest import BTC, ETH, SOL, USD


@pytest.fixture
def parties(evm):
    owner, reporter, stranger = evm.new_account(USD), evm.new_account(USD), evm.new_account(USD)
    oracle = evm.deploy(owner, "oracle", reporter.address)
    return oracle, owner, reporter, stranger


def test_only_the_reporter_may_post(parties):
    oracle, owner, reporter, stranger = parties
    assert oracle.reverts(stranger, "post_price", BTC, 1) == "oracle: not reporter"
    assert oracle.reverts(owner, "post_price", BTC, 1) == "oracle: not reporter"
    assert oracle.reverts(stranger, "post_prices", [BTC], [1]) == "oracle: not reporter"
    assert oracle.call("price", BTC) == 0 and oracle.call("updated_at", BTC) == 0


def test_a_post_sets_price_and_block_and_logs_them(parties, evm):
    oracle, _, reporter, _ = parties
    evm.mine(41)
    result = oracle.transact(reporter, "post_price", BTC, 97_000 * USD)
    assert oracle.events(result, "PriceUpdated") == [{"market": BTC, "price": 97_000 * USD, "block_number": 42}]
    assert oracle.call("price", BTC) == 97_000 * USD
    assert oracle.call("updated_at", BTC) == 42
    assert oracle.call("price", ETH) == 0


def test_zero_is_a_price_the_reporter_can_post(parties):
    # The incident: the reporter posts BTC = 0 and the chain takes it.
    oracle, _, reporter, _ = parties
    oracle.transact(reporter, "post_price", BTC, 100_000 * USD)
    oracle.transact(reporter, "post_price", BTC, 0)
    assert oracle.call("price", BTC) == 0
    assert oracle.call("updated_at", BTC) > 0


def test_batch_post_logs_one_event_per_market(parties):
    oracle, _, reporter, _ = parties
    markets, prices = [BTC, ETH, SOL, 7], [1, 2, 3, 4]
    result = oracle.transact(reporter, "post_prices", markets, prices)
    assert [(e["market"], e["price"]) for e in oracle.events(result, "PriceUpdated")] == list(zip(markets, prices))
    assert [oracle.call("price", m) for m in markets] == prices
    assert oracle.reverts(reporter, "post_prices", [BTC], [1, 2]) == "oracle: length mismatch"


def test_the_owner_rotates_the_reporter(parties):
    oracle, owner, reporter, stranger = parties
    assert oracle.reverts(stranger, "set_reporter", stranger.address) == "oracle: not owner"
    assert oracle.reverts(reporter, "set_reporter", stranger.address) == "oracle: not owner"
    result = oracle.transact(owner, "set_reporter", stranger.address)
    assert oracle.events(result, "ReporterChanged") == [
        {"old_reporter": "0x" + reporter.address.hex(), "new_reporter": "0x" + stranger.address.hex()}
    ]
    assert oracle.call("reporter") == "0x" + stranger.address.hex()
    assert oracle.reverts(reporter, "post_price", BTC, 1) == "oracle: not reporter"
    oracle.transact(stranger, "post_price", BTC, 1)
    assert oracle.call("price", BTC) == 1


def test_ownership_moves_only_by_the_owner(parties):
    oracle, owner, _, stranger = parties
    assert oracle.reverts(stranger, "transfer_ownership", stranger.address) == "oracle: not owner"
    oracle.transact(owner, "transfer_ownership", stranger.address)
    assert oracle.reverts(owner, "set_reporter", owner.address) == "oracle: not owner"
    oracle.transact(stranger, "set_reporter", owner.address)
