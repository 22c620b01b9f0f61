"""Plain-language explanations of every check and every term the output uses.

`l2sim explain TERM` prints one of these; the HTML report shows them next to the checks
and in its glossary. A check that has no explanation here is a test failure (see
tests/scenarios/test_explain.py), so a new check cannot reach a teacher unexplained.
"""

from __future__ import annotations

from scenarios.errors import ScenarioError

# check name -> (what it guarantees, what it would mean if it failed)
CHECKS: dict[str, str] = {
    "agreement": (
        "No two honest validators ever decided different blocks at the same height, in any phase. "
        "This is safety: if it fails, the chain has split and there is no single history to restore."),
    "forensics": (
        "When something went wrong, the validators convicted are ones that really were Byzantine, each by "
        "what it signed: two messages that contradict each other (an equivocation: two values for one slot; "
        "or amnesia: a precommit for one block, then a prevote for another with no polka between), or a "
        "signed halt view whose state root contradicts a header that carries a commit certificate (how "
        "lying-minority convicts the validator that forged its views). No honest validator is ever blamed."),
    "no_double_sign": (
        "No honest validator signed two different values for the same slot (fork, height, round, step), "
        "even across a crash and a restart: its vote journal refuses the second signature."),
    "validity": (
        "Every block of the final chain re-executes, from its parent's state, to exactly the state root "
        "it claims. Nobody has to trust a validator's word for the state."),
    "liveness": (
        "The chain kept producing blocks: after the restart the new fork reached the number of heights "
        "the scenario asks for (or, with no incident, the old fork did)."),
    "halt": (
        "Once the alarm went off, nothing was committed past the halt height: the chain stopped instead "
        "of building more blocks on a bad price."),
    "certificate": (
        "The rollback certificate checks out from the report alone: the plan's hash, the signatures on "
        "it, and that they carry more than two thirds of the voting power (the quorum)."),
    "restored_roots": (
        "Every honest validator applied the certified plan to its own copy of the chain and arrived at "
        "exactly the state root the certificate promised, before voting on anything new."),
    "full_rollback_snapshot": (
        "For a full rollback, the restored state is the state committed at the target height, with "
        "no account different: the rollback really went back to the snapshot."),
    "target_before_corruption": (
        "The certified restore target lies below the first corrupted height every honest validator "
        "found on its own chain with its own price feed: no Byzantine minority, by choosing which "
        "views a plan carries, could move the rollback point inside the corrupted window."),
    "replay_protection": (
        "Transactions signed on the old fork inside the discarded window cannot be replayed on the new "
        "fork: each names its fork id, and the new fork rejects every one of them."),
    "exchange_conservation": (
        "The exchange's books balance after the restore: the contract's balance equals all collateral "
        "plus the insurance vault plus the fees it accrued. No money appeared or vanished."),
    "l1_l2_conservation": (
        "No tokens were minted or burnt: the L2's total supply is the genesis supply, and withdrawals "
        "that were already final on L1 (which a rollback cannot undo) are settled into the bridge."),
    "compensation_paid": (
        "The refunds were paid to the wei: what the certified plan computed (halt-drift, paid in the "
        "first block after the restart) and what the reopening audit computed (reopening-harm, paid in the "
        "first block of the open phase, once the restricted phases are over and can be judged)."),
}

TERMS: dict[str, str] = {
    "validator": (
        "One of the machines that run the chain. Each holds a signing key, its own copy of the chain "
        "and a journal of what it signed. Named by its index, 0, 1, 2, ..."),
    "power": (
        "How much a validator's vote weighs. Every decision counts power, not heads; with four "
        "validators of power 1 the total is 4."),
    "quorum": (
        "More than two thirds of the total power (2f+1 when f is the most power that may be Byzantine). "
        "Two quorums always share an honest validator, so two conflicting decisions cannot both get one."),
    "height": "The number of a block in the chain: block 1 follows genesis (height 0).",
    "round": (
        "One attempt to decide a height. If a round fails (no proposal in time, or not enough votes), "
        "the validators move to the next round with the next proposer."),
    "proposal": "The block the round's proposer offers for a height, signed by it.",
    "prevote": (
        "A validator's first vote in a round: for the proposed block if it re-executed the block and got "
        "the same state root, or nil (against) if not, or if the proposal did not arrive in time."),
    "precommit": (
        "The second vote: sent for a block once the validator saw a quorum of prevotes for it (a polka), "
        "else nil. A quorum of precommits for one block decides it."),
    "nil": "A vote for no block: 'not this one, not in this round'.",
    "polka": "A quorum of prevotes for the same block in one round.",
    "lock": (
        "After seeing a polka, a validator locks on that block: in later rounds it prevotes only that "
        "block unless it sees a newer polka. Locks are why two rounds cannot decide two blocks."),
    "timeout": (
        "A step's timer ran out: no proposal, or no quorum of votes, arrived in time. The validator "
        "votes nil or moves to the next round."),
    "decide": "A validator saw a quorum of precommits for a block: the block is final at that height.",
    "commit certificate": "The quorum of signed precommits that proves a block was decided.",
    "state root": (
        "A 32-byte hash of the whole state (every balance, every contract's storage) after a block. "
        "Two validators with the same state root hold the same state."),
    "oracle": (
        "The contract that posts market prices on chain. In the incident it posted BTC at 0 while the "
        "world traded it near 95,000 dollars."),
    "reference price": "The true price each validator reads from its own outside feed to check the oracle.",
    "alarm": (
        "A validator's own check: the oracle's price deviates from its reference feed by more than the "
        "scenario's threshold. Held for a few blocks, the alarm halts it."),
    "halt": (
        "The validators stop committing blocks past one height. Time goes on (six hours in paradex-2026) "
        "while heights stand still."),
    "liquidation": (
        "A keeper closes an account's leveraged position because its collateral no longer covers it "
        "at the oracle's price. On a price of 0 every long is liquidated."),
    "view": (
        "A validator's signed account of the chain at the halt: its last height, the first height it "
        "thinks bad, and its state roots over a window. Views are the evidence a plan is built from."),
    "signed halt view": (
        "A view (see `l2sim explain view`) as the page draws it: the message each validator signs and "
        "sends to every other after the halt, so that each can build the plan from what others signed."),
    "plan": (
        "The restore plan: which height to go back to (the target), the snapshot's state root, the mode, "
        "the refunds and the state root expected after the restore. It is proposed and voted like a block."),
    "certificate": (
        "The rollback certificate: signed votes for one plan by more than two thirds of the power. "
        "A validator applies a plan only with it, and anyone can check it from the report."),
    "rollback": "Going back to the state at the target height: blocks after it are discarded.",
    "target height": "The last good height: the plan restores the state committed there.",
    "fork id": (
        "A number in every block header, vote and transaction naming the version of the chain. The restart "
        "uses a new fork id, so nothing signed for the discarded blocks is valid on the new chain."),
    "replay protection": (
        "Why old transactions cannot be sent again after a rollback: each signs its fork id, and the new "
        "fork refuses those signed for the old one."),
    "reconciliation": (
        "What a rollback cannot undo: withdrawals already final on L1 inside the discarded window. They "
        "are kept as debts and settled into the bridge rather than paid twice."),
    "compensation": (
        "Refunds from the liquidator vault to the accounts hurt by what the restore could not undo, by "
        "policy: halt-drift is computed by the plan and paid in the first block after the restart; "
        "reopening-harm is computed by the audit of the restricted reopening and paid in the first block "
        "of the open phase. What the rollback itself gave back is restore-returned, reported, never paid."),
    "digest": (
        "A hash of the whole report (without wall-clock time). Same scenario and seed, same digest, "
        "on any machine: the run is reproducible."),
    "wei": (
        "The smallest unit of the chain's token: 10^18 wei make one dollar here. The JSON report keeps "
        "every amount in wei (exact integers); the terminal shows dollars, and wei with --wei."),
    "seed": "The one number every random choice of the run comes from. Rerun with it to see the same run.",
    "partition": "A window of time in which the network is split into groups that cannot reach each other.",
    "crash": "A validator stops; it keeps its chain and vote journal and may restart later.",
    "byzantine": (
        "A validator that breaks the protocol on purpose: it may equivocate, withhold votes, forget its "
        "lock, or propose wrong roots. The protocol tolerates less than a third of the power doing so."),
    "equivocate": (
        "Sign two different values for the same slot: the evidence that convicts a validator. As a "
        "behaviour, the equivocators show one block to half of the honest validators and another to the rest."),
    "withhold": "A Byzantine behaviour: the validator runs the protocol but sends nothing, views included.",
    "amnesia": "A Byzantine behaviour: the validator forgets its lock at every round (and on restart).",
    "wrong-root": (
        "A Byzantine behaviour: the validator proposes blocks and plans whose state root is not what "
        "execution gives, prevotes anything, and signs a halt view calling every height bad."),
    "duplicate-votes": (
        "A Byzantine behaviour: the validator re-signs each of its votes with other valid signatures "
        "and sends every copy. Honest validators count a validator once per value, whatever it signs again."),
    "forge-views": (
        "A Byzantine behaviour: the validator signs halt views with false state roots and a false first "
        "corrupted height. Honest validators compare each view with their own certified chain, drop it, "
        "and keep it as evidence that convicts the signer."),
    "lie-target": (
        "A Byzantine behaviour: as proposer of the restore plan, the validator picks the views that put "
        "the rollback target as late as it can. Honest validators prevote a plan only if its target lies "
        "below the first corrupted height they found on their own chain."),
    "restore-returned": (
        "What the restore itself gave back: the equity of accounts liquidated inside the rolled-back "
        "window, returned by the rollback. Reported, never paid."),
    "reopening-harm": (
        "A compensation policy: accounts liquidated during the restricted reopening (cancel-only, "
        "post-only) at marks outside the audit band are paid the difference against a replay of the "
        "reopening with the price band on, from the liquidator vault."),
    "halt-drift": (
        "A compensation policy (optional): what the market's drift during the halt cost an account "
        "liquidated in the window, valued at the restart price only."),
    "reopening": (
        "After the restart trading reopens in phases the certificate fixes: cancel-only (only reduce "
        "or close), then post-only, then open; an optional price band clamps the mark meanwhile."),
    "funding index": (
        "Per market, the integral of the funding premium; a position's accrued funding is its size "
        "times the index minus the index cached when it last changed. A reset to zero distorts every "
        "open position's equity at once."),
    "sync": (
        "A validator that comes back behind asks a peer for the blocks it missed; it accepts each only "
        "with a commit certificate it verifies, re-executes it, and runs its own alarm over it."),
    "snapshot": (
        "The state at the restore's target height, named by its state root: the last state every honest "
        "validator agrees was good. A snapshot costs nothing to keep: trie nodes are never deleted."),
    "expected root": (
        "The state root the plan promises after the restore (the snapshot, plus the restore block's "
        "ledgers for the modes that write one). Each validator applies the plan to its own chain and "
        "checks it lands exactly there before it votes on anything new."),
    "restore": (
        "Applying the certified plan: each validator goes back to the snapshot (full-rollback, "
        "rollback-replay) or keeps its chain and rewrites the harmed accounts (selective-restore), then "
        "checks that its state root is the expected root."),
    "restart": (
        "The chain starts producing blocks again after the restore, under a new fork id; its first block "
        "carries the certified ledgers, and trading reopens in phases (cancel-only, post-only, open)."),
    "cancel only": (
        "The first reopening phase: only trades that reduce or close a position go through, nothing "
        "that opens risk; keepers still liquidate."),
    "post only": (
        "The second reopening phase. On Paradex, orders may rest on the book but not take; in l2sim's "
        "exchange the vault is the only maker, so any trade fills, but the book is thin: little flow moves "
        "the mark far from the index."),
    "open": "The last reopening phase: trading as usual. Reopening-harm compensation is paid in its first block.",
    "price band": (
        "An optional protection during cancel-only and post-only: the exchange holds the mark within a "
        "band (in basis points) of the index price (paradex-band shows it on)."),
    "audit band": (
        "The band the reopening-harm audit judges by: a liquidation in the restricted phases at a mark "
        "further than this from the index price is harm, paid the difference against a replay of the "
        "reopening with the price band on."),
    "mark": (
        "The price the exchange values positions and fills trades at: the index price plus a premium "
        "from the recent trade flow against the market's depth. In a thin reopening it can drift far from "
        "the index, as PAXG did after Paradex's restart."),
    "index price": "The outside price of a market, posted on chain by the oracle; the mark is judged against it.",
    "keeper": (
        "An account that watches the exchange and calls liquidate on any account whose equity falls "
        "below its margin requirement, earning a fee. Keepers drove the cascade."),
    "held": "A check's status: the guarantee was tested on this run and it held.",
    "failed": "A check's status: the guarantee was tested on this run and broke; the run exits 1.",
    "not reached": (
        "A check's status: the run never got to the step it judges (no certificate, say, so no restored "
        "roots to compare). The run exits 1: a guarantee not tested is not a guarantee kept."),
    "exempt": (
        "A check's status: the guarantee does not apply to this run, and the detail says why (with a third "
        "of the power Byzantine, BFT promises no agreement, so nothing can be restored)."),
    "full rollback": (
        "A restore mode: go back to the state at the target height and discard every block after it. "
        "Everything in the window is undone, the good with the bad."),
    "selective restore": (
        "A restore mode (The DAO, 2016): keep the chain and add one restore block that sets each account "
        "liquidated in the window back to its snapshot collateral and positions, paid by the vault."),
    "rollback replay": (
        "A restore mode: go back to the target, then re-execute in order the window's transactions that "
        "did not depend on the corrupted price (not price posts, not liquidations, nothing from an account "
        "that held or traded the market)."),
    "debit account": (
        "A withdrawal policy: a withdrawal already final on L1 inside the window is taken back from the "
        "account's restored balance into the bridge."),
    "charge vault": "A withdrawal policy: the vault pays into the bridge what L1 already paid out.",
    "withdrawal policy": "Who pays for withdrawals already final on L1 inside the window: debit-account or charge-vault.",
    "compensation policy": (
        "Which harms are paid: halt-drift (the plan's, in the first block after the restart) and/or "
        "reopening-harm (the audit's, in the first block of the open phase)."),
    "mode": "How the plan restores: full-rollback, selective-restore or rollback-replay (explain each).",
    "timeline": "The run's milestones in virtual time: the glitch, the halt, the pause, the vote, the restore, the restart.",
    "incident": (
        "The glitch the scenario plants: a market's oracle price corrupted (kind price), every funding index "
        "reset to 0 (funding-reset), or both, from a height for some blocks."),
    "glitch": "The corrupted market data the incident writes on chain (a price, funding indices, or both).",
    "rollback certificate": (
        "The certificate of the plan vote: precommits for one plan by more than two thirds of the power. "
        "A validator restores only with one, and anyone can verify it from the report."),
    "checks": "The guarantees judged after the run, each held, failed, not reached or exempt (explain each).",
    "stale feeds": (
        "After the restart the validators' price feeds may still post pre-halt prices for some blocks "
        "(stale-oracle-restart); the summary counts trades and liquidations made on them."),
    "virtual time": (
        "The simulated clock, in seconds since genesis: network delays, timeouts and the pause all run "
        "on it, so a six-hour halt takes seconds of wall time."),
    "wall time": "Real time on this machine, as a clock on the wall measures it; not part of the digest.",
    "has votes": (
        "The summary an undecided validator gossips about once a second: which votes of its height and "
        "round it already holds. A peer answers with exactly the signed messages it lacks (or the commit "
        "certificate, if the peer decided), instead of every validator re-sending everything it holds."),
    "commit request": (
        "A message a validator that fell behind sends to ask a peer for a decided block and its commit "
        "certificate (the commit it receives back is drawn as a commit message)."),
    "commit": (
        "A decided block appended to a validator's chain; as a message, the block with its commit "
        "certificate, gossiped to validators still deciding that height."),
    "plan vote": (
        "The vote on the restore plan, run like a block's: proposal, prevotes, precommits. Its messages "
        "are signed for their own fork id (plan vote, fork 1 is the vote on the plan that starts fork 1), "
        "so a plan vote can never be taken for a block vote."),
    "evidence": (
        "What convicts a validator, all signed by it: two contradicting messages (equivocation; amnesia, "
        "see amnesia evidence), "
        "or a halt view against a certified header (view-contradicts-certified-header)."),
    "view contradicts certified header": (
        "Evidence: a validator signed a halt view claiming a state root at a height where the chain holds "
        "a header with a commit certificate for another root. The signed view and the certificate convict it."),
    "amnesia evidence": (
        "Evidence: a precommit for one block and, in a later round, a prevote for another with no polka for "
        "it in between: the validator forgot its lock."),
    "equivocation": "Evidence: two different messages signed by one validator for one slot (fork, height, round, step).",
    "lost": "In the diagram: a message the network dropped (drop_rate, or a partition).",
    "pause": (
        "The planned time the chain stays halted before the validators vote on the plan (response.pause_s; "
        "six hours in paradex-2026)."),
    "reproduce": "The command printed when a run fails: run it as printed to see the same run again.",
    "glitch on chain": "Timeline: the first height at which a validator's own checks found the corrupted data on chain.",
    "pause ends": "Timeline: the planned pause is over (response.pause_s after the halt); the validators exchange views.",
    "views exchanged": "Timeline: every validator gossips its signed halt view; the plan is built from them.",
    "plan rejected": (
        "Timeline: honest validators prevoted nil on a proposed plan, because it did not match the plan "
        "they recomputed from the views and their own chain (the reason is given)."),
    "no certificate": "Timeline: no plan gathered more than two thirds of the power; nothing is restored.",
    "no restore": "Timeline: a plan was certified, but no validator restored to its expected root.",
    "chain stalled": "Timeline: a fault that outlasts the run (a partition, a crash) cut the quorum; the run ends there.",
    "agreement broken": (
        "Timeline: two certified blocks at one height: more than a third of the power was Byzantine, so BFT "
        "promises nothing, and nothing sound can be restored."),
    "lamport diagram": (
        "The picture in the report: a lane per validator, time flowing down, an arrow for each message "
        "from the moment it is sent to the moment it arrives."),
}


class UnknownTermError(ScenarioError):
    """Raised when `l2sim explain` is asked about a term it does not know."""


def normalise(term: str) -> str:
    """`term` as a key: lower case, '-' and '_' as spaces."""
    return " ".join(term.lower().replace("_", " ").replace("-", " ").split())


def get_known_terms() -> list[str]:
    """Every term and check `explain` knows, sorted."""
    return sorted(set(TERMS) | set(CHECKS))


def explain(term: str) -> str:
    """The explanation of a term or a check (both, where a name is both); UnknownTermError
    lists the known ones."""
    key = normalise(term)
    found = [f"{name} (check): {text}" for name, text in CHECKS.items() if normalise(name) == key]
    found += [f"{name} (term): {text}" for name, text in TERMS.items() if normalise(name) == key]
    if found:
        return "\n".join(found)  # `halt` and `certificate` are both a term and a check
    raise UnknownTermError(f"unknown term {term!r}; known: {', '.join(get_known_terms())}", field="TERM", value=term)


def explain_check(name: str) -> str:
    """What check `name` guarantees, in plain words ('' when it has no explanation)."""
    return CHECKS.get(name, "")
