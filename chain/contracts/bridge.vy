# pragma version 0.4.3
"""
@title L1 <-> L2 native-token bridge, L2 side
@notice Deposits: an authorised relayer credits L2 accounts out of the bridge's
        native reserve, each L1 deposit id at most once. Withdrawals: anyone
        sends native token in with `withdraw()`; the bridge records it, and it
        becomes FINAL on L1 `finality_blocks` L2 blocks after the block it was
        made in. A final withdrawal has left the system: a rollback of L2
        cannot take it back, which is what makes it irreversible in a recovery.
@dev Amounts are wei of the native token. Withdrawal ids count up from 0 and
     their block numbers never decrease, so "final" is a prefix of the ids and
     pending totals are found by binary search over prefix sums, with no
     unbounded loop and no keeper needed to mark withdrawals final.
     Withdrawn value stays in this contract's balance (escrowed until L1
     releases it) and joins the reserve; the balance therefore equals
         funded reserve + total_withdrawn - total_credited.
"""

struct Withdrawal:
    account: address
    amount: uint256
    block_number: uint256

event DepositCredited:
    l1_deposit_id: indexed(uint256)
    account: indexed(address)
    amount: uint256

event WithdrawalInitiated:
    id: indexed(uint256)
    account: indexed(address)
    amount: uint256
    block_number: uint256

event RelayerChanged:
    old_relayer: indexed(address)
    new_relayer: indexed(address)

# 2**64 withdrawals is beyond any run; 64 halvings cover it.
SEARCH_STEPS: constant(uint256) = 64

owner: public(address)
relayer: public(address)
finality_blocks: public(uint256)

credited: public(HashMap[uint256, bool])      # L1 deposit id -> credited
total_credited: public(uint256)
deposit_count: public(uint256)

_withdrawals: HashMap[uint256, Withdrawal]
# _withdrawn_before[i] = sum of amounts of withdrawals 0 .. i-1.
_withdrawn_before: HashMap[uint256, uint256]
withdrawal_count: public(uint256)
total_withdrawn: public(uint256)


@deploy
def __init__(relayer: address, finality_blocks: uint256):
    self.owner = msg.sender
    self.relayer = relayer
    self.finality_blocks = finality_blocks
    log RelayerChanged(old_relayer=empty(address), new_relayer=relayer)


@payable
@external
def fund_reserve():
    """@notice Add msg.value to the reserve that L1 deposits are paid from."""
    assert msg.value > 0, "bridge: zero funding"


@external
def set_relayer(new_relayer: address):
    """@notice Replace the relayer. Owner only."""
    assert msg.sender == self.owner, "bridge: not owner"
    log RelayerChanged(old_relayer=self.relayer, new_relayer=new_relayer)
    self.relayer = new_relayer


@nonreentrant
@external
def credit_deposit(l1_deposit_id: uint256, account: address, amount: uint256):
    """@notice Pay an L1 deposit to `account` on L2. Relayer only, once per id."""
    assert msg.sender == self.relayer, "bridge: not relayer"
    assert not self.credited[l1_deposit_id], "bridge: already credited"
    assert amount > 0, "bridge: zero deposit"
    assert amount <= self.balance, "bridge: reserve too small"
    self.credited[l1_deposit_id] = True
    self.total_credited += amount
    self.deposit_count += 1
    log DepositCredited(l1_deposit_id=l1_deposit_id, account=account, amount=amount)
    raw_call(account, b"", value=amount)


@payable
@external
def withdraw() -> uint256:
    """@notice Withdraw msg.value to L1; returns the withdrawal id."""
    assert msg.value > 0, "bridge: zero withdrawal"
    wid: uint256 = self.withdrawal_count
    self._withdrawals[wid] = Withdrawal(account=msg.sender, amount=msg.value, block_number=block.number)
    self._withdrawn_before[wid + 1] = self._withdrawn_before[wid] + msg.value
    self.withdrawal_count = wid + 1
    self.total_withdrawn += msg.value
    log WithdrawalInitiated(id=wid, account=msg.sender, amount=msg.value, block_number=block.number)
    return wid


@view
@internal
def _final_at(wid: uint256) -> uint256:
    assert wid < self.withdrawal_count, "bridge: unknown withdrawal"
    return self._withdrawals[wid].block_number + self.finality_blocks


@view
@internal
def _first_pending() -> uint256:
    """Smallest id not yet final (withdrawal_count when all are)."""
    lo: uint256 = 0
    hi: uint256 = self.withdrawal_count
    for _: uint256 in range(SEARCH_STEPS):
        if lo >= hi:
            break
        mid: uint256 = (lo + hi) // 2
        if self._final_at(mid) <= block.number:
            lo = mid + 1
        else:
            hi = mid
    return lo


@view
@external
def withdrawal(wid: uint256) -> (address, uint256, uint256):
    """@notice (account, amount, l2 block number) of withdrawal `wid`."""
    assert wid < self.withdrawal_count, "bridge: unknown withdrawal"
    w: Withdrawal = self._withdrawals[wid]
    return w.account, w.amount, w.block_number


@view
@external
def final_at(wid: uint256) -> uint256:
    """@notice First L2 block number at which withdrawal `wid` is final on L1."""
    return self._final_at(wid)


@view
@external
def is_final(wid: uint256) -> bool:
    """@notice True once block.number >= final_at(wid)."""
    return self._final_at(wid) <= block.number


@view
@external
def pending_count() -> uint256:
    """@notice Withdrawals made but not yet final."""
    return self.withdrawal_count - self._first_pending()


@view
@external
def pending_amount() -> uint256:
    """@notice Wei in withdrawals made but not yet final."""
    return self._withdrawn_before[self.withdrawal_count] - self._withdrawn_before[self._first_pending()]


@view
@external
def final_amount() -> uint256:
    """@notice Wei in withdrawals already final on L1."""
    return self._withdrawn_before[self._first_pending()]
