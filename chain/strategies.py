"""Hypothesis strategies for chain workloads, reusable by any layer's property tests.

A workload is data: `Transfer` names its sender and recipient by index and says how it
should be signed (nonce and fork offsets make it deliberately invalid). `sign_transfer` is
the one interpreter that turns a `Transfer` into a signed transaction, given the keys and
the sender's current nonce. Hypothesis is imported inside the strategy functions, so
importing `chain` (or this module) never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from eth.abc import SignedTransactionAPI

from chain.transactions import DEFAULT_GAS, sign_dynamic_fee, sign_legacy

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy


@dataclass(frozen=True)
class Transfer:
    """A value transfer to sign later: who pays whom, how, and how it is (in)valid."""

    sender: int  # index into the signing keys
    recipient: int  # index into the recipient addresses
    value_wei: int
    gas_price_wei: int  # legacy gas price, or max fee per gas for EIP-1559
    priority_fee_wei: int = 0  # EIP-1559 only; never above gas_price_wei
    dynamic_fee: bool = False
    gas: int = DEFAULT_GAS
    nonce_offset: int = 0  # 0: the sender's next nonce; anything else is a wrong nonce
    fork_offset: int = 0  # 0: the block's fork; anything else signs for another fork


def sign_transfer(
    transfer: Transfer,
    keys: Sequence[bytes],
    recipients: Sequence[bytes],
    *,
    next_nonce: int,
    fork_id: int,
) -> SignedTransactionAPI:
    """Sign `transfer` with `keys[transfer.sender]`, its nonce and fork offsets applied."""
    nonce = next_nonce + transfer.nonce_offset
    if nonce < 0:  # "one behind" a fresh account: sign one ahead instead, so it stays wrong
        nonce = next_nonce + 1
    common = dict(
        nonce=nonce,
        to=recipients[transfer.recipient],
        value=transfer.value_wei,
        gas=transfer.gas,
        fork_id=fork_id + transfer.fork_offset,
    )
    if transfer.dynamic_fee:
        return sign_dynamic_fee(
            keys[transfer.sender],
            max_fee_per_gas=transfer.gas_price_wei,
            max_priority_fee_per_gas=transfer.priority_fee_wei,
            **common,
        )
    return sign_legacy(keys[transfer.sender], gas_price=transfer.gas_price_wei, **common)


def transfers(
    sender_count: int,
    recipient_count: int,
    *,
    max_value_wei: int,
    max_gas_price_wei: int = 3,
    invalid: bool = True,
) -> "SearchStrategy[Transfer]":
    """Transfers among `sender_count` keys and `recipient_count` addresses.

    With `invalid`, some are signed with a wrong nonce (one ahead, or one behind where
    possible) or for the next fork; overdrafts come from `max_value_wei` exceeding balances.
    """
    from hypothesis import strategies as st

    assert sender_count >= 1 and recipient_count >= 1

    @st.composite
    def build(draw) -> Transfer:
        # sampled_from rather than integers: hypothesis favours 0 for small integer ranges, and
        # a workload of free transactions would never exercise fees.
        dynamic_fee = draw(st.booleans())
        gas_price = draw(st.sampled_from(range(max_gas_price_wei + 1)))
        priority = draw(st.sampled_from(range(gas_price + 1))) if dynamic_fee else 0
        nonce_offset, fork_offset = 0, 0
        if invalid:
            # Mostly valid: a wrong nonce or fork in about one transfer out of eight each.
            nonce_offset = draw(st.sampled_from((0,) * 7 + (1,) + (-1,)))
            fork_offset = draw(st.sampled_from((0,) * 7 + (1,)))
        return Transfer(
            sender=draw(st.integers(0, sender_count - 1)),
            recipient=draw(st.integers(0, recipient_count - 1)),
            # Mostly affordable amounts, sometimes up to the maximum (overdrafts).
            value_wei=draw(st.integers(0, max_value_wei // 8) | st.integers(0, max_value_wei)),
            gas_price_wei=gas_price,
            priority_fee_wei=priority,
            dynamic_fee=dynamic_fee,
            gas=draw(st.sampled_from((DEFAULT_GAS, DEFAULT_GAS + 5_000))),
            nonce_offset=nonce_offset,
            fork_offset=fork_offset,
        )

    return build()


def transfer_blocks(
    sender_count: int,
    recipient_count: int,
    *,
    max_value_wei: int,
    max_size: int = 6,
    invalid: bool = True,
) -> "SearchStrategy[list[Transfer]]":
    """Lists of 0..`max_size` transfers: the candidates of one block."""
    from hypothesis import strategies as st

    return st.lists(
        transfers(sender_count, recipient_count, max_value_wei=max_value_wei, invalid=invalid),
        max_size=max_size,
    )
