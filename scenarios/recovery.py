"""What a restore does to the exchange: the restore block, the ledgers and the expected root.

Every validator computes this from what it holds: its own chain (blocks, receipts it
re-executes, state at any height), its own price feed, the exchange's genesis setup and the
upgrade authority's keys. Nothing here knows the scenario's glitch settings or which
accounts are traders or keepers: which markets were corrupted comes from comparing the
chain's oracle prices with the feed, which transactions depend on the price from their
calldata and the events they emitted. It is a pure function of those inputs, so the
runner memoises it by the chain it was computed from.

- full-rollback: the state at the target, as it was.
- rollback-replay: the state at the target plus one restore block, on the old fork's
  signing domain, re-executing in order the window's transactions that do not depend on
  the corrupted price (not oracle price posts, not liquidation calls, not from an account
  that held or traded a corrupted market); those that no longer apply are dropped.
- selective-restore: the chain stays at the halt, plus one restore block of owner calls
  that set each account liquidated in the window back to its snapshot collateral and
  positions, paid by the vault that took them (the DAO fork's irregular state change,
  done through the contract so that its conservation invariants keep holding).

Then, for all modes:
- reconciliation: withdrawals final on L1 inside the discarded window (L1 paid them; the
  restore gave the tokens back on L2) are moved into the bridge, from the account or the
  vault by the scenario's policy;
- compensation: the window is replayed from the snapshot with the true price path (cheap:
  it shares the node store); each liquidated account is paid the shortfall between that
  counterfactual equity and its equity after the restore at the restart price, from the
  vault, in the first block after the restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Mapping

from eth.abc import SignedTransactionAPI

from chain.blocks import Block, Header
from chain.exchange import (
    BridgeWithdrawalInitiated,
    BPS,
    Call,
    ExchangeAddresses,
    Liquidated,
    Traded,
    compensate_call,
    decode_events,
    get_collateral,
    get_equity,
    get_funding_index,
    get_market_depth,
    get_position,
    get_price,
    is_funding_post,
    is_liquidation_call,
    is_price_post,
    post_funding_call,
    post_prices_call,
    restore_account_call,
    set_market_depth_call,
    set_price_band_call,
    set_trading_mode_call,
    settle_l1_withdrawal_call,
    sign_call,
)
from chain.execution import ExecutionCache, ExecutionResult, apply_block, build_block
from chain.history import History
from chain.state import ZERO_ADDRESS, get_nonce
from chain.store import Store
from chain.transactions import address_of
from consensus.emergency import compute_digest, is_index_deviation, is_price_deviation


@dataclass(frozen=True)
class ReconciliationEntry:
    """A withdrawal final on L1 inside the discarded window, and who pays it back on L2."""

    withdrawal_id: int
    account: bytes
    amount: int
    made_at_height: int
    final_at: int
    policy: str


# Compensation policies, each named where its entries are: what the restore returned
# (reported, never paid), the halt's market drift, and harm after the restart.
RESTORE_RETURNED = "restore-returned"
HALT_DRIFT = "halt-drift"
REOPENING_HARM = "reopening-harm"
COMPENSATION_POLICIES = (HALT_DRIFT, REOPENING_HARM)
PAYER = "liquidator-vault"  # the perps vault: house liquidity, liquidation penalties, refunds


@dataclass(frozen=True)
class CompensationEntry:
    """An amount paid to an account under a named policy (`reason`), by `payer`.

    Both equities are valued at one price and one moment (see the policy): `amount` is
    their difference, `counterfactual_equity - restored_equity`, and only a positive one is
    paid."""

    account: bytes
    amount: int
    reason: str
    counterfactual_equity: int
    restored_equity: int
    payer: str = PAYER
    detail: str = ""


@dataclass(frozen=True)
class ReturnedEntry:
    """What the restore gave back to an account liquidated inside the rolled-back window:
    its equity after the restore minus its equity at the halt, both at the restart price
    and the true funding indices (reported, not paid)."""

    account: bytes
    amount: int
    restored_equity: int
    halted_equity: int


@dataclass(frozen=True)
class ReopeningAudit:
    """The post-restart audit (policy "reopening-harm"): accounts liquidated during the
    restricted phases at a mark outside the band, paid the difference against a replay of
    the reopening with the band on, in the block at `height` (when trading opens)."""

    height: int
    band_bps: int
    entries: tuple[CompensationEntry, ...]
    transactions: tuple[SignedTransactionAPI, ...]
    harmed: tuple[bytes, ...]
    counterfactual_root: bytes


@dataclass(frozen=True)
class SurgeryEntry:
    """An account set back to its snapshot collateral and positions (selective restore)."""

    account: bytes
    collateral: int
    positions: tuple[tuple[int, int, int], ...]  # (market, size, entry_price)


@dataclass(frozen=True)
class Recovery:
    """Everything a restore plan commits to, computed from one chain."""

    mode: str
    target_height: int
    halt_height: int
    snapshot_root: bytes
    base_height: int  # the head the restore block (if any) extends
    restore_block: Block | None
    expected_root: bytes
    surgery: tuple[SurgeryEntry, ...]
    replay: tuple[bytes, ...]  # hashes of the re-executed transactions, in order
    reconciliation: tuple[ReconciliationEntry, ...]
    compensation: tuple[CompensationEntry, ...]
    restart_transactions: tuple[SignedTransactionAPI, ...]
    counterfactual_root: bytes
    liquidated_accounts: tuple[bytes, ...]
    corrupted_markets: tuple[int, ...]
    price_offset: int  # how far ahead of the height the true price path runs after the restart
    discarded_transactions: tuple[SignedTransactionAPI, ...] = field(default=())
    # The reopening: (first height, mode) per phase, and the owner's calls that switch
    # phases after the restart block, by height.
    reopening_phases: tuple[tuple[int, str], ...] = field(default=())
    later_ledger: tuple[tuple[int, tuple[SignedTransactionAPI, ...]], ...] = field(default=())
    restore_returned: tuple[ReturnedEntry, ...] = field(default=())
    audit_height: int | None = None  # where the reopening-harm payments go, if audited

    @property
    def restart_height(self) -> int:
        """Height of the first block of the new fork (it carries the ledgers)."""
        return self.base_height + (2 if self.restore_block is not None else 1)

    @property
    def restart_ledger(self) -> dict[int, tuple[SignedTransactionAPI, ...]]:
        """height -> the certified transactions a block at that height must start with."""
        return {self.restart_height: self.restart_transactions, **dict(self.later_ledger)}

    @property
    def surgery_digest(self) -> bytes:
        return compute_digest(
            [[e.account, e.collateral, [[m, size % 2**256, entry] for m, size, entry in e.positions]]
             for e in self.surgery]  # sizes in two's complement: RLP has no negative integers
        )

    @property
    def replay_digest(self) -> bytes:
        return compute_digest(list(self.replay))

    @property
    def compensation_digest(self) -> bytes:
        return compute_digest(
            [[e.account, e.amount, e.reason.encode()] for e in self.compensation]
            + [[tx.hash for tx in self.restart_transactions]]
            + [[height, [tx.hash for tx in txs]] for height, txs in self.later_ledger]
        )

    @property
    def reconciliation_digest(self) -> bytes:
        return compute_digest(
            [[e.withdrawal_id, e.account, e.amount, e.policy.encode()] for e in self.reconciliation]
        )


@dataclass(frozen=True)
class ExchangeSetup:
    """What a validator knows of the exchange from genesis, and the upgrade authority's keys
    (the owner signs the restore and ledger calls; the price service's key signs the
    counterfactual's true-price posts)."""

    addresses: ExchangeAddresses
    markets: tuple[int, ...]
    owner_key: bytes
    reporter_key: bytes
    deviation_bps: int

    @property
    def owner(self) -> bytes:
        return address_of(self.owner_key)


@dataclass(frozen=True)
class Reopening:
    """How trading reopens after the restart: blocks of cancel-only, then of post-only (each
    may be 0), the depth share during both, and the price band (0: off)."""

    cancel_only_blocks: int = 0
    post_only_blocks: int = 0
    depth_share: float = 1.0
    price_band_bps: int = 0
    policies: tuple[str, ...] = (HALT_DRIFT,)
    audit_band_bps: int = 100  # the band the reopening-harm audit judges liquidations by

    @property
    def is_restricted(self) -> bool:
        return self.cancel_only_blocks + self.post_only_blocks > 0


def compute_reopening(scenario) -> Reopening:
    """The scenario's `[response]` reopening in blocks."""
    response, block_time_s = scenario.response, scenario.chain.block_time_s
    return Reopening(
        cancel_only_blocks=int(response.cancel_only_s / block_time_s),
        post_only_blocks=int(response.post_only_s / block_time_s),
        depth_share=response.reopen_depth_share,
        price_band_bps=response.price_band_bps,
        policies=tuple(response.compensation_policies),
        audit_band_bps=response.price_band_bps or response.audit_band_bps,
    )


def plan_reopening(
    store: Store, root: bytes, setup: "ExchangeSetup", reopening: Reopening, restart_height: int
) -> tuple[tuple[tuple[int, str], ...], dict[int, list]]:
    """The phases ((first height, mode), ...) and, by height, the owner calls that make them:
    band and thin depth with the first restricted phase, full depth when trading opens.
    Depths are read from the chain at `root` (the restored state), not from the world."""
    if not reopening.is_restricted:
        return (), {}
    depths = {m: get_market_depth(store, root, setup.addresses, m) for m in setup.markets}
    thin = {m: int(d * Decimal(repr(reopening.depth_share))) for m, d in depths.items() if d > 0}
    phases = []
    height = restart_height
    for mode, blocks in (("cancel-only", reopening.cancel_only_blocks), ("post-only", reopening.post_only_blocks)):
        if blocks > 0:
            phases.append((height, mode))
            height += blocks
    phases.append((height, "open"))
    addresses = setup.addresses
    calls: dict[int, list] = {}
    first, first_mode = phases[0]
    calls[first] = [set_trading_mode_call(addresses, first_mode)]
    if reopening.price_band_bps:
        calls[first].append(set_price_band_call(addresses, reopening.price_band_bps))
    calls[first] += [set_market_depth_call(addresses, m, thin[m]) for m in sorted(thin)]
    for start, mode in phases[1:]:
        calls[start] = [set_trading_mode_call(addresses, mode)]
    calls[phases[-1][0]] += [set_market_depth_call(addresses, m, depths[m]) for m in sorted(thin)]
    return tuple(phases), calls


Feed = Callable[..., Mapping[int, int]]
"""A validator's own reference feed: `feed(height, offset=None) -> {market: price}`."""


def _window_results(store: Store, history: History, low: int, high: int,
                    cache: ExecutionCache | None) -> dict[int, ExecutionResult]:
    """The validator's own re-execution of its blocks low..high (memoised when `cache` is given)."""
    return {h: apply_block(store, history.root_at(h - 1), history.block_at(h), cache=cache) for h in range(low, high + 1)}


def _liquidated_in(events_by_height) -> tuple[bytes, ...]:
    seen: dict[bytes, None] = {}
    for height in sorted(events_by_height):
        for event in events_by_height[height]:
            if isinstance(event, Liquidated):
                seen.setdefault(event.account, None)
    return tuple(seen)


def find_corrupted_markets(store: Store, history: History, setup: ExchangeSetup, feed: Feed,
                           low: int, high: int) -> tuple[int, ...]:
    """Markets whose on-chain oracle price deviated from the validator's own feed, or whose
    funding index deviated from the one at height low - 1 (no funding accrues between
    posts in this model), at any height low..high of its chain."""
    found: set[int] = set()
    before = history.root_at(low - 1)
    expected = {m: get_funding_index(store, before, setup.addresses, m) for m in setup.markets}
    for height in range(low, high + 1):
        root = history.root_at(height)
        reference = feed(height)
        for market in setup.markets:
            if market not in found and (
                    is_price_deviation(get_price(store, root, setup.addresses, market), reference[market],
                                       setup.deviation_bps)
                    or is_index_deviation(get_funding_index(store, root, setup.addresses, market), expected[market],
                                          setup.deviation_bps)):
                found.add(market)
    return tuple(sorted(found))


def _is_price_dependent(setup: ExchangeSetup, tx: SignedTransactionAPI, tainted: set[bytes]) -> bool:
    return (is_price_post(setup.addresses, tx) or is_funding_post(setup.addresses, tx)
            or is_liquidation_call(setup.addresses, tx) or tx.sender in tainted)


def _tainted_accounts(store: Store, setup: ExchangeSetup, snapshot_root: bytes, window, events_by_height,
                      corrupted: tuple[int, ...]) -> set[bytes]:
    """Accounts whose window activity may depend on a corrupted price: they traded or were
    liquidated in a corrupted market, or held a position in one at the snapshot."""
    tainted = {e.account for evs in events_by_height.values() for e in evs
               if isinstance(e, (Traded, Liquidated)) and e.market in corrupted}
    senders = sorted({tx.sender for block in window for tx in block.transactions} - tainted)
    for sender in senders:
        if any(get_position(store, snapshot_root, setup.addresses, sender, m).size != 0 for m in corrupted):
            tainted.add(sender)
    return tainted


def compute_recovery(
    *,
    store: Store,
    history: History,
    setup: ExchangeSetup,
    feed: Feed,
    target_height: int,
    halt_height: int,
    mode: str,
    policy: str,
    old_fork_id: int,
    new_fork_id: int,
    finality_blocks: int,
    pause_blocks: int,
    cache: ExecutionCache | None = None,
    reopening: Reopening = Reopening(),
) -> Recovery:
    """The restore of `history` (halted at `halt_height`) to `target_height` under `mode`."""
    assert 0 <= target_height < halt_height <= history.height, "target below halt below head"
    addresses = setup.addresses
    owner_key = setup.owner_key
    snapshot = history.header_at(target_height)
    window = history.blocks_between(target_height + 1, halt_height)
    results = _window_results(store, history, target_height + 1, halt_height, cache)
    events = {h: decode_events(addresses, results[h].receipts) for h in sorted(results)}
    liquidated = _liquidated_in(events)
    corrupted = find_corrupted_markets(store, history, setup, feed, target_height + 1, halt_height)

    restore_block: Block | None = None
    surgery: tuple[SurgeryEntry, ...] = ()
    replay: tuple[bytes, ...] = ()
    standing_withdrawals: set[int] = set()
    discarded = tuple(tx for block in window for tx in block.transactions)
    if mode == "full-rollback":
        base = snapshot
    elif mode == "rollback-replay":
        base = snapshot
        tainted = _tainted_accounts(store, setup, snapshot.state_root, window, events, corrupted)
        candidates = [tx for block in window for tx in block.transactions
                      if not _is_price_dependent(setup, tx, tainted)]
        built = build_block(
            store, base, candidates, proposer=ZERO_ADDRESS,
            timestamp=history.header_at(halt_height).timestamp + 1, fork_id=old_fork_id,
        )
        restore_block = built.block
        replay = tuple(tx.hash for tx in built.block.transactions)
        replayed = decode_events(addresses, built.result.receipts)
        standing_withdrawals = {e.id for e in replayed if isinstance(e, BridgeWithdrawalInitiated)}
    else:
        assert mode == "selective-restore", mode
        base = history.header_at(halt_height)
        entries = []
        for account in sorted(liquidated):
            positions = tuple(
                (m, p.size, p.entry_price)
                for m in setup.markets
                for p in [get_position(store, snapshot.state_root, addresses, account, m)]
                if p.size != 0
            )
            entries.append(SurgeryEntry(account, get_collateral(store, snapshot.state_root, addresses, account), positions))
        surgery = tuple(entries)
        nonce = get_nonce(store, base.state_root, setup.owner)
        txs = [
            sign_call(owner_key, restore_account_call(addresses, e.account, e.collateral, e.positions),
                      nonce=nonce + i, fork_id=new_fork_id)
            for i, e in enumerate(surgery)
        ]
        built = build_block(store, base, txs, proposer=ZERO_ADDRESS, timestamp=base.timestamp + 1,
                            fork_id=new_fork_id)
        assert not built.rejected and built.result.failed_count == 0, "surgery transaction failed"
        restore_block = built.block
        # Everyone else's later activity stands, withdrawals included.
        standing_withdrawals = {e.id for evs in events.values() for e in evs
                                if isinstance(e, BridgeWithdrawalInitiated)}
    post_header = restore_block.header if restore_block is not None else base
    post_root = post_header.state_root

    reconciliation = tuple(
        ReconciliationEntry(e.id, e.account, e.amount, e.block_number, e.block_number + finality_blocks, policy)
        for height in sorted(events)
        for e in events[height]
        if isinstance(e, BridgeWithdrawalInitiated)
        and e.block_number + finality_blocks <= halt_height
        and e.id not in standing_withdrawals
    )

    counterfactual_header = _replay_with_true_prices(store, setup, feed, snapshot, window)
    counterfactual = counterfactual_header.state_root
    restart_height = post_header.height + 1
    # The market kept moving while the chain was halted: the restart price is the true price
    # as many blocks later as the discarded window and the pause would have held. Every
    # amount below is valued there: at the restart price, the true funding indices (the
    # snapshot's: funding does not move in this model) and the index price as the mark.
    price_offset = halt_height - base.height + pause_blocks
    restart_prices = feed(restart_height, offset=price_offset)
    true_funding = {m: get_funding_index(store, snapshot.state_root, addresses, m) for m in setup.markets}

    def valued(header: Header) -> bytes:
        return _valued_root(store, setup, header, restart_prices, true_funding, old_fork_id)

    restored_valued = valued(post_header)
    halted_valued = valued(history.header_at(halt_height))
    restore_returned = tuple(
        ReturnedEntry(account, restored - halted, restored, halted)
        for account in liquidated
        for restored, halted in [(get_equity(store, restored_valued, addresses, account),
                                  get_equity(store, halted_valued, addresses, account))]
    )
    compensation = []
    if HALT_DRIFT in reopening.policies:
        compensation = _owed(store, addresses, liquidated, valued(counterfactual_header), restored_valued,
                             HALT_DRIFT, "liquidated in the glitch window; equity {would_have} had the window run "
                             "on true prices, {holds} after the restore, both at the restart price")

    nonce = get_nonce(store, post_root, setup.owner)
    restart = []
    for entry in reconciliation:
        call = settle_l1_withdrawal_call(addresses, entry.account, entry.amount, entry.policy == "charge-vault")
        restart.append(sign_call(owner_key, call, nonce=nonce + len(restart), fork_id=new_fork_id))
    for entry in compensation:
        call = compensate_call(addresses, entry.account, entry.amount)
        restart.append(sign_call(owner_key, call, nonce=nonce + len(restart), fork_id=new_fork_id))
    # The reopening's owner calls: those of the restart height join its ledger; later ones
    # form ledgers of their own heights, signed with the nonces that follow (the owner
    # signs nothing else on the new fork).
    phases, phase_calls = plan_reopening(store, post_root, setup, reopening, restart_height)
    later = []
    signed = len(restart)
    for height in sorted(phase_calls):
        txs = [sign_call(owner_key, call, nonce=nonce + signed + i, fork_id=new_fork_id)
               for i, call in enumerate(phase_calls[height])]
        signed += len(txs)
        if height == restart_height:
            restart += txs
        else:
            later.append((height, tuple(txs)))

    return Recovery(
        mode=mode,
        target_height=target_height,
        halt_height=halt_height,
        snapshot_root=snapshot.state_root,
        base_height=base.height,
        restore_block=restore_block,
        expected_root=post_root,
        surgery=surgery,
        replay=replay,
        reconciliation=reconciliation,
        compensation=tuple(compensation),
        restart_transactions=tuple(restart),
        counterfactual_root=counterfactual,
        liquidated_accounts=liquidated,
        corrupted_markets=corrupted,
        price_offset=price_offset,
        discarded_transactions=discarded,
        reopening_phases=phases,
        later_ledger=tuple(later),
        restore_returned=restore_returned,
        audit_height=phases[-1][0] if phases and REOPENING_HARM in reopening.policies else None,
    )


def _replay_with_true_prices(store: Store, setup: ExchangeSetup, feed: Feed, snapshot: Header, window) -> Header:
    """The window re-executed from the snapshot with every price post at the feed's price and
    every funding post at the snapshot's indices (funding does not move in this model, so the
    snapshot's index is the true one: read from the chain, not from the world)."""
    true_funding = {m: get_funding_index(store, snapshot.state_root, setup.addresses, m) for m in setup.markets}
    parent = snapshot
    for block in window:
        txs = []
        for tx in block.transactions:
            if is_price_post(setup.addresses, tx):
                tx = sign_call(setup.reporter_key, post_prices_call(setup.addresses, feed(block.height)),
                               nonce=tx.nonce, fork_id=block.header.fork_id)
            elif is_funding_post(setup.addresses, tx):
                tx = sign_call(setup.reporter_key, post_funding_call(setup.addresses, true_funding),
                               nonce=tx.nonce, fork_id=block.header.fork_id)
            txs.append(tx)
        parent = build_block(
            store, parent, txs, proposer=block.header.proposer,
            timestamp=block.header.timestamp, fork_id=block.header.fork_id,
        ).block.header
    return parent


def _owed(store: Store, addresses: ExchangeAddresses, accounts, counterfactual_root: bytes, actual_root: bytes,
          policy: str, detail: str) -> list[CompensationEntry]:
    """One entry per account whose equity at `counterfactual_root` exceeds its equity at
    `actual_root` (two roots valued alike), for the difference; `detail` is formatted with
    `would_have` and `holds`."""
    entries = []
    for account in accounts:
        would_have = get_equity(store, counterfactual_root, addresses, account)
        holds = get_equity(store, actual_root, addresses, account)
        if would_have > holds:
            entries.append(CompensationEntry(account, would_have - holds, policy, would_have, holds,
                                             detail=detail.format(would_have=would_have, holds=holds)))
    return entries


def _valued_root(store: Store, setup: ExchangeSetup, header: Header, prices: Mapping[int, int],
                 funding: Mapping[int, int] | None, fork_id: int) -> bytes:
    """`header`'s state one probe block later, in which the reporter posts `prices` (and
    `funding`, unless None) and the owner sets every market's depth to 0, so that each
    account's equity reads at those prices with the index price as the mark. Never on chain."""
    root = header.state_root
    reporter = address_of(setup.reporter_key)
    nonce = get_nonce(store, root, reporter)
    txs = []
    if prices:
        txs.append(sign_call(setup.reporter_key, post_prices_call(setup.addresses, prices), nonce=nonce,
                             fork_id=fork_id))
    if funding is not None:
        txs.append(sign_call(setup.reporter_key, post_funding_call(setup.addresses, funding),
                             nonce=nonce + len(txs), fork_id=fork_id))
    owner_nonce = get_nonce(store, root, setup.owner)
    deep = [m for m in setup.markets if get_market_depth(store, root, setup.addresses, m) > 0]
    txs += [sign_call(setup.owner_key, set_market_depth_call(setup.addresses, m, 0), nonce=owner_nonce + i,
                      fork_id=fork_id) for i, m in enumerate(deep)]
    built = build_block(store, header, txs, proposer=ZERO_ADDRESS, timestamp=header.timestamp + 1, fork_id=fork_id)
    assert not built.rejected and built.result.failed_count == 0, "valuation probe failed"
    return built.block.header.state_root


@dataclass
class BandedReplay:
    """The reopening replayed with the band on, one block at a time: the owner's
    `set_price_band` first, in the first block; each later owner call re-signed one nonce on.
    `head` is the last counterfactual header. A pure function of the store's state at
    `parent` and the blocks added, so that a second process fed the same blocks holds the
    same head (`scenarios/audit_replay.py`)."""

    store: Store
    setup: ExchangeSetup
    head: Header
    band_bps: int
    is_started: bool = False  # the band's call went into the first block

    def add(self, block: Block) -> None:
        """Replay `block` (the real chain's next block) on the counterfactual head."""
        setup, parent = self.setup, self.head
        assert block.height == parent.height + 1, "the replay takes the reopening's blocks in order"
        owner, fork_id = setup.owner, block.header.fork_id
        txs = []
        if not self.is_started:
            first = get_nonce(self.store, parent.state_root, owner)
            txs.append(sign_call(setup.owner_key, set_price_band_call(setup.addresses, self.band_bps),
                                 nonce=first, fork_id=fork_id))
            self.is_started = True
        for tx in block.transactions:
            if tx.sender == owner:
                tx = sign_call(setup.owner_key, Call(tx.to, bytes(tx.data), tx.value), nonce=tx.nonce + 1,
                               fork_id=fork_id)
            txs.append(tx)
        self.head = build_block(self.store, parent, txs, proposer=block.header.proposer,
                                timestamp=block.header.timestamp, fork_id=fork_id).block.header


def compute_reopening_audit(store: Store, history: History, setup: ExchangeSetup, recovery: Recovery,
                            band_bps: int, cache: ExecutionCache | None = None,
                            replay_band_bps: int | None = None, banded_head: Header | None = None) -> ReopeningAudit:
    """Policy "reopening-harm", from the chain alone, once the block before trading opens is
    committed: every account liquidated during cancel-only or post-only at a mark further
    than `band_bps` from the index price is paid what it lost against a replay of the same
    blocks with the band on (`BandedReplay`). Both sides are valued at that moment, the index
    price as the mark. The payments follow the planned calls of the block at the audit
    height. `replay_band_bps` (default `band_bps`) is the band of the replay; `banded_head`,
    the replay's last header if it was already computed from these blocks (its state in
    `store`)."""
    audit_height = recovery.audit_height
    assert audit_height is not None and history.height >= audit_height - 1, "audit before trading opens"
    replay_band = band_bps if replay_band_bps is None else replay_band_bps
    last = history.header_at(audit_height - 1)
    addresses, owner = setup.addresses, setup.owner
    start = recovery.restart_height
    harmed: dict[bytes, None] = {}
    for height in range(start, audit_height):
        result = apply_block(store, history.root_at(height - 1), history.block_at(height), cache=cache)
        index_root = history.root_at(height)
        for event in decode_events(addresses, result.receipts):
            if isinstance(event, Liquidated):
                index = get_price(store, index_root, addresses, event.market)
                if abs(event.price - index) * BPS > band_bps * index:
                    harmed.setdefault(event.account, None)
    if banded_head is None:
        replay = BandedReplay(store, setup, history.header_at(start - 1), replay_band)
        for height in range(start, audit_height):
            replay.add(history.block_at(height))
        banded_head = replay.head
    assert banded_head.height == last.height, "the replay ends where the reopening does"
    fork_id = last.fork_id
    actual = _valued_root(store, setup, last, {}, None, fork_id)
    banded = _valued_root(store, setup, banded_head, {}, None, fork_id)
    entries = _owed(store, addresses, harmed, banded, actual, REOPENING_HARM,
                    f"liquidated after the restart at a mark outside the {band_bps} bps band; equity "
                    "{would_have} had the band been on, {holds} as it went, both at height "
                    f"{last.height} at the index price")
    planned = len(recovery.restart_ledger.get(audit_height, ()))
    nonce = get_nonce(store, last.state_root, owner) + planned
    txs = tuple(sign_call(setup.owner_key, compensate_call(addresses, e.account, e.amount), nonce=nonce + i,
                          fork_id=fork_id) for i, e in enumerate(entries))
    return ReopeningAudit(audit_height, band_bps, tuple(entries), txs, tuple(harmed), banded_head.state_root)
