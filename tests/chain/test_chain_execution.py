"""Execution: valid transfers move value and fees; invalid ones are named and leave no trace."""

import pytest

from chain.blocks import compute_transactions_root, encode_block, with_header
from chain.errors import InvalidBlockError, InvalidTransactionError
from chain.execution import apply_block, build_block, context_for, execute_transactions
from chain.state import BLOCK_GAS_LIMIT, get_account, get_balance, get_nonce, get_storage
from chain.transactions import DEFAULT_GAS, sign_dynamic_fee, sign_legacy

PROPOSER = b"\x0b" * 20


def _build(funded, txs, **kwargs):
    return build_block(funded.store, funded.genesis.header, txs, proposer=PROPOSER, timestamp=1, **kwargs)


def _snapshot(funded, root):
    return [get_account(funded.store, root, a) for a in funded.addresses + (PROPOSER, funded.contract)]


def test_legacy_transfer_moves_value_and_pays_the_proposer(funded):
    alice, bob = funded.addresses[:2]
    tx = sign_legacy(funded.keys[0], nonce=0, to=bob, value=1_000, gas=30_000, gas_price=3)
    built = _build(funded, [tx])
    root = built.block.header.state_root
    assert built.rejected == () and built.block.transactions == (tx,)
    assert built.result.gas_used == DEFAULT_GAS  # unused gas above 21000 is refunded
    assert get_balance(funded.store, root, alice) == funded.balance_wei - 1_000 - 3 * DEFAULT_GAS
    assert get_balance(funded.store, root, bob) == funded.balance_wei + 1_000
    assert get_balance(funded.store, root, PROPOSER) == 3 * DEFAULT_GAS
    assert get_nonce(funded.store, root, alice) == 1
    assert built.result.failed_count == 0
    assert built.block.header.transactions_root == compute_transactions_root([tx])


def test_dynamic_fee_transfer_pays_the_priority_fee(funded):
    alice, bob = funded.addresses[:2]
    tx = sign_dynamic_fee(funded.keys[1], nonce=0, to=alice, value=77,
                          max_fee_per_gas=10, max_priority_fee_per_gas=4)
    built = _build(funded, [tx])
    root = built.block.header.state_root
    # The base fee is 0, so the effective gas price is the priority fee.
    assert get_balance(funded.store, root, bob) == funded.balance_wei - 77 - 4 * DEFAULT_GAS
    assert get_balance(funded.store, root, alice) == funded.balance_wei + 77
    assert get_balance(funded.store, root, PROPOSER) == 4 * DEFAULT_GAS
    assert get_nonce(funded.store, root, bob) == 1


def test_receipts_carry_cumulative_gas(funded):
    alice, bob, carol = funded.addresses[:3]
    txs = [sign_legacy(funded.keys[0], nonce=n, to=bob, value=1) for n in range(3)]
    built = _build(funded, txs)
    assert [r.gas_used for r in built.result.receipts] == [DEFAULT_GAS, 2 * DEFAULT_GAS, 3 * DEFAULT_GAS]
    assert built.result.gas_used == 3 * DEFAULT_GAS
    assert get_nonce(funded.store, built.block.header.state_root, alice) == 3


def test_contract_call_writes_storage_and_a_failed_call_is_kept(funded):
    ok = sign_legacy(funded.keys[0], nonce=0, to=funded.contract,
                     data=funded.sstore_call(9, 1234), gas=100_000)
    out_of_gas = sign_legacy(funded.keys[0], nonce=1, to=funded.contract,
                             data=funded.sstore_call(10, 1), gas=25_000)
    built = _build(funded, [ok, out_of_gas])
    root = built.block.header.state_root
    assert built.block.transactions == (ok, out_of_gas)
    assert built.result.failed_count == 1
    assert get_storage(funded.store, root, funded.contract, 9) == 1234
    assert get_storage(funded.store, root, funded.contract, 10) == 0
    assert get_nonce(funded.store, root, funded.addresses[0]) == 2  # the failed call still counts


def _invalid_cases(funded):
    """Each invalid transaction, named, with the valid prefix it needs in the block."""
    alice, bob = funded.addresses[:2]
    key = funded.keys[0]
    good = sign_legacy(key, nonce=0, to=bob, value=5, gas_price=1)
    return {
        # Tampering with r either breaks recovery or recovers a stranger with no funds.
        "forged": ([], good.copy(r=good.r ^ 0xFF)),
        "forged s": ([], good.copy(s=good.s ^ 0xFF)),
        "nonce ahead": ([], sign_legacy(key, nonce=1, to=bob, value=5)),
        "nonce replayed": ([good], sign_legacy(key, nonce=0, to=bob, value=6)),
        "overdraft": ([], sign_legacy(key, nonce=0, to=bob, value=funded.balance_wei + 1)),
        "overdraft by fees": ([], sign_legacy(key, nonce=0, to=bob, value=funded.balance_wei - 100, gas_price=1)),
        # py-evm checks value + gas * effective price, and gas * max fee on its own (not
        # their sum, as execution-specs does): this overdraft fails the second check.
        "1559 overdraft by max fee": ([], sign_dynamic_fee(
            key, nonce=0, to=bob, value=0, max_fee_per_gas=funded.balance_wei // DEFAULT_GAS + 1)),
        "other fork": ([], sign_legacy(key, nonce=0, to=bob, value=5, fork_id=1)),
        "other fork 1559": ([], sign_dynamic_fee(key, nonce=0, to=bob, value=5, fork_id=3)),
    }


CASES = ["forged", "forged s", "nonce ahead", "nonce replayed", "overdraft", "overdraft by fees",
         "1559 overdraft by max fee", "other fork", "other fork 1559"]


@pytest.mark.parametrize("case", CASES)
def test_strict_execution_names_the_invalid_transaction(funded, case):
    prefix, bad = _invalid_cases(funded)[case]
    before = _snapshot(funded, funded.root)
    context = context_for(with_header(_build(funded, []).block).header)
    with pytest.raises(InvalidTransactionError) as raised:
        execute_transactions(funded.store, funded.root, context, prefix + [bad])
    assert raised.value.tx_hash == bad.hash
    assert raised.value.index == len(prefix)
    assert raised.value.reason
    assert _snapshot(funded, funded.root) == before


@pytest.mark.parametrize("case", CASES)
def test_build_block_leaves_the_invalid_transaction_out(funded, case):
    prefix, bad = _invalid_cases(funded)[case]
    carol = funded.addresses[2]
    after = sign_legacy(funded.keys[1], nonce=0, to=carol, value=9, gas_price=2)
    before = _snapshot(funded, funded.root)

    built = _build(funded, prefix + [bad, after])
    assert built.block.transactions == tuple(prefix) + (after,)
    assert [r.transaction for r in built.rejected] == [bad]
    assert built.rejected[0].reason
    # Leaving it out is the same as never having seen it, and the parent is untouched.
    without = _build(funded, prefix + [after])
    assert built.block.header == without.block.header
    assert _snapshot(funded, funded.root) == before


def test_a_block_of_only_invalid_transactions_keeps_the_parent_root(funded):
    bad = [_invalid_cases(funded)[case][1] for case in ("forged", "nonce ahead", "overdraft", "other fork")]
    built = _build(funded, bad)
    assert built.block.transactions == ()
    assert len(built.rejected) == 4
    assert built.block.header.state_root == funded.root
    assert built.result.gas_used == 0


def test_block_gas_limit_leaves_out_what_does_not_fit(funded):
    bob = funded.addresses[1]
    # The limit counts gas used so far plus the next transaction's whole gas allowance.
    big = [sign_legacy(funded.keys[0], nonce=n, to=bob, value=1, gas=BLOCK_GAS_LIMIT - 10_000)
           for n in range(2)]
    built = _build(funded, big)
    assert built.block.transactions == (big[0],)
    assert len(built.rejected) == 1 and built.rejected[0].transaction == big[1]


def _honest_block(funded):
    alice, bob = funded.addresses[:2]
    txs = [
        sign_legacy(funded.keys[0], nonce=0, to=bob, value=5, gas_price=1),
        sign_dynamic_fee(funded.keys[1], nonce=0, to=alice, value=6, max_fee_per_gas=3,
                         max_priority_fee_per_gas=1),
    ]
    return _build(funded, txs)


def test_apply_block_reproduces_the_built_result(funded):
    built = _honest_block(funded)
    result = apply_block(funded.store, funded.root, built.block)
    assert result == built.result


@pytest.mark.parametrize("field", ["state_root", "receipts_root", "transactions_root", "gas_used"])
def test_apply_block_refuses_an_altered_header(funded, field):
    built = _honest_block(funded)
    value = getattr(built.block.header, field)
    altered = value + 1 if isinstance(value, int) else bytes([value[0] ^ 1]) + value[1:]
    block = with_header(built.block, **{field: altered})
    with pytest.raises(InvalidBlockError) as raised:
        apply_block(funded.store, funded.root, block)
    assert raised.value.height == 1


def test_apply_block_refuses_an_invalid_transaction_even_with_matching_roots(funded):
    built = _honest_block(funded)
    bad = _invalid_cases(funded)["other fork"][1]
    txs = built.block.transactions + (bad,)
    block = with_header(built.block, transactions_root=compute_transactions_root(txs))
    block = type(block)(block.header, txs)
    with pytest.raises(InvalidBlockError, match="rejected"):
        apply_block(funded.store, funded.root, block)


def test_apply_block_on_the_wrong_parent_is_refused(funded):
    built = _honest_block(funded)
    with pytest.raises(InvalidBlockError):
        apply_block(funded.store, built.block.header.state_root, built.block)


def test_cache_returns_the_same_result_and_a_wrong_root_block_bypasses_it(funded):
    built = _honest_block(funded)
    cache = {}
    first = apply_block(funded.store, funded.root, built.block, cache=cache)
    assert cache == {(funded.root, encode_block(built.block)): first}
    assert apply_block(funded.store, funded.root, built.block, cache=cache) is first
    assert first == apply_block(funded.store, funded.root, built.block)

    forged = with_header(built.block, state_root=funded.root)
    with pytest.raises(InvalidBlockError):
        apply_block(funded.store, funded.root, forged, cache=cache)
    assert list(cache) == [(funded.root, encode_block(built.block))]


def test_the_cache_never_skips_the_check_for_other_transactions_under_the_same_header(funded):
    # Bug pinned: the memo was keyed by (parent root, header hash), so a block carrying the
    # same header with its transactions swapped or dropped got the cached result unchecked.
    built = _honest_block(funded)
    assert len(built.block.transactions) >= 2
    cache = {}
    apply_block(funded.store, funded.root, built.block, cache=cache)
    swapped = type(built.block)(built.block.header, tuple(reversed(built.block.transactions)))
    assert swapped.hash == built.block.hash
    with pytest.raises(InvalidBlockError, match="transactions root"):
        apply_block(funded.store, funded.root, swapped, cache=cache)
