"""The bridge: each L1 deposit is credited once; a withdrawal is final `finality_blocks` later."""

import pytest

from .conftest import USD

FINALITY_BLOCKS = 10


@pytest.fixture
def bridge_parties(evm):
    owner, relayer, alice, bob = (evm.new_account(1_000_000 * USD) for _ in range(4))
    bridge = evm.deploy(owner, "bridge", relayer.address, FINALITY_BLOCKS)
    bridge.transact(owner, "fund_reserve", value=100_000 * USD)
    return bridge, owner, relayer, alice, bob


def test_a_deposit_is_credited_once_out_of_the_reserve(evm, bridge_parties):
    bridge, _, relayer, alice, _ = bridge_parties
    wallet = evm.balance(alice.address)
    result = bridge.transact(relayer, "credit_deposit", 7, alice.address, 500 * USD)
    assert bridge.events(result, "DepositCredited") == [
        {"l1_deposit_id": 7, "account": "0x" + alice.address.hex(), "amount": 500 * USD}
    ]
    assert evm.balance(alice.address) == wallet + 500 * USD
    assert evm.balance(bridge.address) == 99_500 * USD
    assert bridge.call("credited", 7) is True
    assert bridge.reverts(relayer, "credit_deposit", 7, alice.address, 500 * USD) == "bridge: already credited"
    assert evm.balance(alice.address) == wallet + 500 * USD
    assert bridge.call("total_credited") == 500 * USD and bridge.call("deposit_count") == 1


def test_only_the_relayer_credits_and_only_what_the_reserve_holds(bridge_parties):
    bridge, owner, relayer, alice, bob = bridge_parties
    assert bridge.reverts(alice, "credit_deposit", 1, alice.address, USD) == "bridge: not relayer"
    assert bridge.reverts(owner, "credit_deposit", 1, alice.address, USD) == "bridge: not relayer"
    assert bridge.reverts(relayer, "credit_deposit", 1, alice.address, 100_001 * USD) == "bridge: reserve too small"
    assert bridge.call("credited", 1) is False  # a rejected credit does not burn the id
    assert bridge.reverts(alice, "set_relayer", alice.address) == "bridge: not owner"
    bridge.transact(owner, "set_relayer", bob.address)
    assert bridge.reverts(relayer, "credit_deposit", 1, alice.address, USD) == "bridge: not relayer"
    bridge.transact(bob, "credit_deposit", 1, alice.address, USD)


def test_a_withdrawal_is_recorded_with_its_block(evm, bridge_parties):
    bridge, _, _, alice, _ = bridge_parties
    evm.mine(99)  # block 100
    result = bridge.transact(alice, "withdraw", value=3 * USD)
    assert result.returned == (0,)
    assert bridge.events(result, "WithdrawalInitiated") == [
        {"id": 0, "account": "0x" + alice.address.hex(), "amount": 3 * USD, "block_number": 100}
    ]
    assert bridge.call("withdrawal", 0) == ("0x" + alice.address.hex(), 3 * USD, 100)
    assert bridge.call("final_at", 0) == 100 + FINALITY_BLOCKS
    assert bridge.reverts(alice, "withdraw") == "bridge: zero withdrawal"
    assert bridge.call_reverts("final_at", 1) == "bridge: unknown withdrawal"
    assert bridge.call_reverts("is_final", 1) == "bridge: unknown withdrawal"


def test_a_withdrawal_becomes_final_after_finality_blocks(evm, bridge_parties):
    bridge, _, _, alice, bob = bridge_parties
    bridge.transact(alice, "withdraw", value=1 * USD)  # id 0, block 1
    evm.mine(3)
    bridge.transact(bob, "withdraw", value=2 * USD)  # id 1, block 4
    bridge.transact(alice, "withdraw", value=4 * USD)  # id 2, block 4
    assert (bridge.call("pending_count"), bridge.call("pending_amount")) == (3, 7 * USD)

    evm.mine(FINALITY_BLOCKS - 4)  # block 10: one short for id 0
    assert bridge.call("is_final", 0) is False
    evm.mine()  # block 11 = 1 + FINALITY_BLOCKS
    assert [bridge.call("is_final", i) for i in range(3)] == [True, False, False]
    assert (bridge.call("pending_count"), bridge.call("pending_amount")) == (2, 6 * USD)
    assert bridge.call("final_amount") == 1 * USD

    evm.mine(3)  # block 14 = 4 + FINALITY_BLOCKS
    assert [bridge.call("is_final", i) for i in range(3)] == [True, True, True]
    assert (bridge.call("pending_count"), bridge.call("pending_amount")) == (0, 0)
    assert bridge.call("final_amount") == 7 * USD == bridge.call("total_withdrawn")


def test_pending_totals_with_no_withdrawals_are_zero(bridge_parties):
    bridge = bridge_parties[0]
    assert (bridge.call("pending_count"), bridge.call("pending_amount"), bridge.call("final_amount")) == (0, 0, 0)
