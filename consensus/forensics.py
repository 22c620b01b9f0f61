"""Forensics: from every signed message seen, name the validators that provably misbehaved.

Two kinds of evidence, each a pair of messages signed by the culprit:

- equivocation: two different messages in one slot (fork, height, round, step);
- amnesia: a precommit for v in round r and a prevote for v' != v (not nil) in a later
  round r' with no polka (2/3+ prevotes) for v' in any round r'' with r <= r'' < r'
  among the messages seen; an honest validator locked on v only prevotes another
  value after such a polka.

A message is its signing digest: copies re-signed with other nonces are one message,
never equivocation by themselves; a signature that does not verify, or is high-s, is
ignored. Polkas count each validator once, as the engine does, so a polka an honest
engine acted on is among the messages whenever they include everything honest nodes
received (a simulation trace does): an honest validator signs one message per slot and
unlocks only after a real polka, so it is never named. When two commit certificates
conflict, the validators in both quorums (>= f+1 by power) are culprits of one kind or
the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    SignedMessage,
    ValidatorSet,
    Vote,
    get_slot,
    is_signed_by,
    is_well_formed,
)

EQUIVOCATION = "equivocation"
AMNESIA = "amnesia"


@dataclass(frozen=True)
class Evidence:
    """`validator` signed both `first` and `second`, which no honest validator would."""

    validator: int
    kind: str
    first: SignedMessage
    second: SignedMessage


@dataclass(frozen=True)
class ForensicsReport:
    """Culprits (ascending), one evidence pair per (culprit, kind), conflicting certificates."""

    culprits: tuple[int, ...]
    evidence: tuple[Evidence, ...]
    conflicts: tuple[tuple[CommitCertificate, CommitCertificate], ...]

    def get_culprit_power(self, validator_set: ValidatorSet) -> int:
        """Total power of the culprits."""
        return validator_set.get_power(self.culprits)


def find_conflicting_certificates(certificates: Iterable[CommitCertificate]) -> tuple[tuple[CommitCertificate, CommitCertificate], ...]:
    """Pairs of certificates for different blocks at the same (fork, height)."""
    first: dict[tuple[int, int], CommitCertificate] = {}
    conflicts = []
    for cert in certificates:
        key = (cert.fork_id, cert.height)
        seen = first.setdefault(key, cert)
        if seen.block_hash != cert.block_hash and all(c[1].block_hash != cert.block_hash for c in conflicts
                                                      if (c[0].fork_id, c[0].height) == key):
            conflicts.append((seen, cert))
    return tuple(conflicts)


def find_culprits(messages: Iterable[SignedMessage], validator_set: ValidatorSet,
                  certificates: Iterable[CommitCertificate] = ()) -> ForensicsReport:
    """Evidence of equivocation and amnesia in `messages` (and in the votes of
    `certificates`); messages whose signature does not verify are ignored."""
    distinct: dict[bytes, SignedMessage] = {}
    for message in [*messages, *(v for c in certificates for v in c.votes)]:
        if not is_well_formed(message):
            continue  # its digest may not be computable; it could never be evidence
        digest = message.signing_digest()
        if digest not in distinct and is_signed_by(message, validator_set):
            distinct[digest] = message
    ordered = sorted(distinct.values(), key=_order_key)
    evidence: dict[tuple[int, str], Evidence] = {}
    by_slot: dict[tuple[int, tuple], SignedMessage] = {}
    for message in ordered:
        key = (message.signer_index, get_slot(message))
        other = by_slot.setdefault(key, message)
        if other is not message:
            evidence.setdefault((message.signer_index, EQUIVOCATION),
                                Evidence(message.signer_index, EQUIVOCATION, other, message))
    for item in _find_amnesia([m for m in ordered if isinstance(m, Vote)], validator_set):
        evidence.setdefault((item.validator, AMNESIA), item)
    items = tuple(evidence[k] for k in sorted(evidence))
    culprits = tuple(sorted({e.validator for e in items}))
    return ForensicsReport(culprits, items, find_conflicting_certificates(certificates))


def _order_key(message: SignedMessage) -> tuple:
    fork_id, height, round, step = get_slot(message)
    return (fork_id, height, round, step, message.signer_index, message.signing_digest())


def _find_amnesia(votes: list[Vote], validator_set: ValidatorSet) -> list[Evidence]:
    polka_voters: dict[tuple[int, int, int, bytes], set[int]] = {}
    precommits: dict[tuple[int, int, int], list[Vote]] = {}
    prevotes: dict[tuple[int, int, int], list[Vote]] = {}
    for vote in votes:
        if vote.block_hash is None:
            continue
        if vote.step == PREVOTE:
            polka_voters.setdefault((vote.fork_id, vote.height, vote.round, vote.block_hash), set()).add(vote.validator)
            prevotes.setdefault((vote.validator, vote.fork_id, vote.height), []).append(vote)
        elif vote.step == PRECOMMIT:
            precommits.setdefault((vote.validator, vote.fork_id, vote.height), []).append(vote)
    polkas: dict[tuple[int, int, bytes], list[int]] = {}
    for (fork_id, height, round, value), voters in sorted(polka_voters.items()):
        if validator_set.get_power(voters) >= validator_set.quorum:
            polkas.setdefault((fork_id, height, value), []).append(round)
    found = []
    for key in sorted(precommits):
        validator, fork_id, height = key
        for precommit in precommits[key]:
            for prevote in prevotes.get(key, ()):
                if prevote.round <= precommit.round or prevote.block_hash == precommit.block_hash:
                    continue
                rounds = polkas.get((fork_id, height, prevote.block_hash), ())
                if not any(precommit.round <= r < prevote.round for r in rounds):
                    found.append(Evidence(validator, AMNESIA, precommit, prevote))
    return found
