"""Consensus messages, their signing digests, the validator set and commit certificates.

Every signed message is keyed by its *slot* `(fork_id, height, round, step)`; an honest
validator signs at most one message per slot (the journal enforces it). The signing
digest is keccak over a domain-separated RLP encoding that includes the fork id, so a
vote cast on one fork can never count on another.

Only canonical (low-s) signatures verify: from any signature (r, s) anyone can make
(r, n - s), and a key holder can sign one digest with many nonces, so a message is
identified by its digest, never by its signature.

The secp256k1 primitives live here (not in `validators.keys`) because certificates must
be verified by this layer, and a lower layer never imports a higher one.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Literal, Union

import chain  # noqa: F401  (selects the fast keccak backend before eth_hash loads)
import rlp
from coincurve import PrivateKey, PublicKey
from coincurve.utils import DEFAULT_NONCE, ffi
from eth_hash.auto import keccak

from consensus.proposer import compute_proposer_schedule

PROPOSAL_DOMAIN = b"l2sim/consensus/proposal/v1"
VOTE_DOMAIN = b"l2sim/consensus/vote/v1"
PREVOTE: Literal["prevote"] = "prevote"
PRECOMMIT: Literal["precommit"] = "precommit"
PROPOSAL_STEP: Literal["proposal"] = "proposal"
VOTE_STEPS = (PREVOTE, PRECOMMIT)
HASH_BYTES = 32
# Above this period the weighted round robin is replaced by a hash-weighted draw,
# so that proposer selection stays O(1) memory for huge or coprime powers.
MAX_ROUND_ROBIN_PERIOD = 1 << 16
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_ORDER = SECP256K1_ORDER // 2


class ConsensusError(Exception):
    """Raised when the consensus layer is given input it cannot accept (base class)."""


class SigningRefused(ConsensusError):
    """Raised when a signer refuses to sign a message (e.g. it would double-sign)."""

    def __init__(self, reason: str, previous: "SignedMessage | None" = None):
        super().__init__(reason)
        self.reason = reason
        # the message already signed in that slot, if the signer kept it: re-sending it is safe
        self.previous = previous


class InvalidValidatorSetError(ConsensusError):
    """Raised when a validator set is empty, has non-positive powers or mismatched lengths."""

    def __init__(self, reason: str):
        super().__init__(f"invalid validator set: {reason}")
        self.reason = reason


class CertificateError(ConsensusError):
    """Raised when a commit certificate does not prove a commit (base class)."""


class InvalidSignatureError(CertificateError):
    """Raised when a certificate vote's signature is not from the validator it names."""

    def __init__(self, vote: "Vote"):
        super().__init__(f"bad signature on vote of validator {vote.validator}")
        self.vote = vote


class ConflictingVoteError(CertificateError):
    """Raised when a certificate vote is for another slot/value or a validator appears twice."""

    def __init__(self, vote: "Vote", reason: str):
        super().__init__(f"vote of validator {vote.validator} does not fit certificate: {reason}")
        self.vote = vote
        self.reason = reason


class InsufficientPowerError(CertificateError):
    """Raised when a certificate's votes carry no more than 2/3 of the total power."""

    def __init__(self, power: int, quorum: int):
        super().__init__(f"certificate power {power} below quorum {quorum}")
        self.power = power
        self.quorum = quorum


# --- secp256k1 -------------------------------------------------------------------------


def sign_digest(private_key: bytes, digest: bytes, extra_entropy: bytes | None = None) -> bytes:
    """Sign a 32-byte digest; returns the 65-byte recoverable signature (r, s, v in {0,1}),
    always low-s. RFC 6979 nonces make it deterministic; `extra_entropy` (32 bytes) picks
    another nonce, hence another valid signature of the same digest (what a validator that
    re-signs its votes does: they must still count once)."""
    assert len(digest) == 32, "digest must be 32 bytes"
    if extra_entropy is None:
        nonce = DEFAULT_NONCE
    else:
        assert len(extra_entropy) == 32, "extra entropy must be 32 bytes"
        nonce = (ffi.NULL, ffi.new("unsigned char[32]", extra_entropy))  # NULL: libsecp256k1's RFC 6979
    signature = PrivateKey(private_key).sign_recoverable(digest, hasher=None, custom_nonce=nonce)
    assert is_canonical_signature(signature), "libsecp256k1 produced a high-s signature"
    return signature


def is_canonical_signature(signature: bytes) -> bool:
    """True for a 65-byte signature with 1 <= r, 1 <= s <= n/2 (low-s) and v in {0, 1}.

    (r, s) and (r, n - s) both verify; accepting only the low one leaves every key holder
    one signature per nonce, and the flip s -> n - s no longer makes a "new" message.
    """
    if len(signature) != 65 or signature[64] not in (0, 1):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return 0 < r < SECP256K1_ORDER and 0 < s <= SECP256K1_HALF_ORDER


def recover_public_key(digest: bytes, signature: bytes) -> bytes | None:
    """Return the 64-byte public key that made `signature` over `digest`, or None if invalid
    or not canonical (high-s, or v outside {0, 1}): see `is_canonical_signature`.

    Memoised while the signature memo is on (see `set_signature_memo`): every simulated
    validator checks the same gossiped signatures.
    """
    if _signature_memo_enabled:
        return _recover_public_key_memo(digest, signature)
    return _recover_public_key(digest, signature)


def set_signature_memo(enabled: bool) -> None:
    """Switch the memo of `recover_public_key` on or off (it starts on); either switch
    empties it. Recovery is a pure function, so results, and every trace, are the same
    either way: only the time differs."""
    global _signature_memo_enabled
    _signature_memo_enabled = bool(enabled)
    _recover_public_key_memo.cache_clear()
    _is_valid_signature_memo.cache_clear()


def is_signature_memo_enabled() -> bool:
    """True while `recover_public_key` is memoised."""
    return _signature_memo_enabled


def get_signature_memo_size() -> int:
    """How many recoveries the memo holds (0 while it is off)."""
    return _recover_public_key_memo.cache_info().currsize


def _recover_public_key(digest: bytes, signature: bytes) -> bytes | None:
    if len(digest) != 32 or not is_canonical_signature(signature):
        return None
    try:
        public = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError:
        return None
    return public.format(compressed=False)[1:]


_recover_public_key_memo = functools.lru_cache(maxsize=1 << 16)(_recover_public_key)
_signature_memo_enabled = True


def is_valid_signature(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """True when `signature` over `digest` was made by the 64-byte `public_key`.

    Memoised with `recover_public_key` (same switch): keyed by all three, the whole content
    the answer is a function of, so every validator of a process checks a gossiped vote once."""
    if _signature_memo_enabled:
        return _is_valid_signature_memo(public_key, digest, signature)
    return _recover_public_key(digest, signature) == public_key


def _is_valid_signature(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    return recover_public_key(digest, signature) == public_key


_is_valid_signature_memo = functools.lru_cache(maxsize=1 << 17)(_is_valid_signature)


def compute_address(public_key: bytes) -> bytes:
    """The 20-byte address of a 64-byte uncompressed public key (last 20 bytes of keccak)."""
    assert len(public_key) == 64, "public key must be 64 bytes (uncompressed, no prefix)"
    return keccak(public_key)[-20:]


# --- messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """⟨PROPOSAL, h, r, v, vr⟩ signed by the proposer of (h, r); `pol_round` is -1 or the polka round."""

    fork_id: int
    height: int
    round: int
    block_hash: bytes
    pol_round: int
    proposer: int
    signature: bytes = b""

    @functools.cached_property
    def digest(self) -> bytes:
        """The signing digest (memoised)."""
        body = [self.fork_id, self.height, self.round, self.block_hash, self.pol_round + 1, self.proposer]
        return keccak(PROPOSAL_DOMAIN + rlp.encode(body))

    def signing_digest(self) -> bytes:
        """keccak(domain || rlp([fork_id, height, round, block_hash, pol_round + 1, proposer]))."""
        return self.digest

    @functools.cached_property
    def has_valid_shape(self) -> bool:
        """`is_well_formed`'s answer, memoised: the fields of a frozen message never change,
        and every receiver of a broadcast holds the same object."""
        return _has_valid_shape(self)

    @property
    def step(self) -> str:
        return PROPOSAL_STEP

    @property
    def signer_index(self) -> int:
        return self.proposer


@dataclass(frozen=True)
class Vote:
    """⟨PREVOTE|PRECOMMIT, h, r, id(v) or nil⟩ signed by `validator`."""

    fork_id: int
    height: int
    round: int
    step: str
    block_hash: bytes | None
    validator: int
    signature: bytes = b""

    @functools.cached_property
    def digest(self) -> bytes:
        """The signing digest (memoised)."""
        is_nil = 1 if self.block_hash is None else 0
        body = [self.fork_id, self.height, self.round, self.step.encode(), is_nil,
                self.block_hash or b"", self.validator]
        return keccak(VOTE_DOMAIN + rlp.encode(body))

    def signing_digest(self) -> bytes:
        """keccak(domain || rlp([fork_id, height, round, step, is_nil, block_hash, validator]))."""
        return self.digest

    @functools.cached_property
    def has_valid_shape(self) -> bool:
        """`is_well_formed`'s answer, memoised (see `Proposal.has_valid_shape`)."""
        return _has_valid_shape(self)

    @property
    def signer_index(self) -> int:
        return self.validator


@dataclass(frozen=True)
class CommitCertificate:
    """2/3+ (by power) precommits for `block_hash` at (fork_id, height, round)."""

    fork_id: int
    height: int
    round: int
    block_hash: bytes
    votes: tuple[Vote, ...]

    def signers(self) -> tuple[int, ...]:
        """Validator indices that signed, ascending."""
        return tuple(sorted(v.validator for v in self.votes))


@dataclass(frozen=True)
class Commit:
    """Catch-up message: a certificate for a height a lagging peer is still working on."""

    certificate: CommitCertificate

    @property
    def height(self) -> int:
        return self.certificate.height


@dataclass(frozen=True)
class CommitRequest:
    """Unsigned catch-up request: `requester` is still at `height` and saw peers ahead.
    Harmless to forge: the answer is a certificate the requester verifies."""

    fork_id: int
    height: int
    requester: int


@dataclass(frozen=True)
class HasVotes:
    """Unsigned gossip summary: `sender` is still deciding `height` (in `round`) and holds
    the proposals of `proposal_rounds` (with their blocks) and, for each (round, step,
    value), the votes of the validators whose bits are set in `voters` (bit i: validator
    i). CometBFT's NewRoundStep and VoteSetBits in one message: a peer answers with the
    signed messages the sender lacks, nothing else. Harmless to forge: the answer is
    signed messages the sender checks, at most one answer per peer per re-gossip beat."""

    fork_id: int
    height: int
    round: int
    sender: int
    proposal_rounds: tuple[int, ...]
    voters: tuple[tuple[int, str, bytes | None, int], ...]  # (round, step, value, bitmask)

    def get_known(self) -> dict[tuple[int, str, bytes | None], int]:
        """(round, step, value) -> the bitmask of validators whose vote the sender holds."""
        return {(round, step, value): bits for round, step, value, bits in self.voters}


def is_well_formed_summary(summary: HasVotes, validator_count: int) -> bool:
    """True for a HasVotes whose fields have the types and ranges an answer reads."""
    fields = (summary.fork_id, summary.height, summary.round, summary.sender)
    if not all(_is_int(v) and v >= 0 for v in fields) or summary.sender >= validator_count:
        return False
    if not isinstance(summary.proposal_rounds, tuple) or not isinstance(summary.voters, tuple):
        return False
    return all(_is_int(r) for r in summary.proposal_rounds) and all(
        isinstance(entry, tuple) and len(entry) == 4 and _is_int(entry[0]) and entry[1] in VOTE_STEPS
        and (entry[2] is None or _is_hash(entry[2])) and _is_int(entry[3]) and entry[3] >= 0
        for entry in summary.voters)


SignedMessage = Union[Proposal, Vote]
Message = Union[Proposal, Vote, Commit, CommitRequest, HasVotes]


def get_slot(message: SignedMessage) -> tuple[int, int, int, str]:
    """The (fork_id, height, round, step) slot in which a validator may sign only once."""
    return (message.fork_id, message.height, message.round, message.step)


def get_value(message: SignedMessage) -> bytes | None:
    """The block hash a signed message is for (None: a nil vote)."""
    return message.block_hash


def sign_message(private_key: bytes, message: SignedMessage, extra_entropy: bytes | None = None) -> SignedMessage:
    """A copy of `message` signed with `private_key` (no journal: callers that must not
    double-sign go through `validators.journal.make_journaled_signer`); `extra_entropy`
    as in `sign_digest`."""
    return replace(message, signature=sign_digest(private_key, message.signing_digest(), extra_entropy))


def is_well_formed(message: object) -> bool:
    """True for a Proposal or Vote whose fields have the types and ranges its signing digest
    and every rule assume (CometBFT's `ValidateBasic`): fork id, height, round and signer
    are non-negative integers; a proposal names a 32-byte block and a POL round of -1 or
    more; a vote is a prevote or a precommit, for a 32-byte block or nil (None); the
    signature is bytes (whether it verifies is `is_signed_by`'s question). Anything else
    is dropped unread, however it was signed: its digest may not even be computable (RLP
    has no negative integers)."""
    return isinstance(message, (Proposal, Vote)) and message.has_valid_shape


def _has_valid_shape(message: "Proposal | Vote") -> bool:
    if isinstance(message, Proposal):
        shape = _is_hash(message.block_hash) and _is_int(message.pol_round) and message.pol_round >= -1
        signer = message.proposer
    else:
        shape = message.step in VOTE_STEPS and (message.block_hash is None or _is_hash(message.block_hash))
        signer = message.validator
    return (shape and all(_is_int(v) and v >= 0 for v in (message.fork_id, message.height, message.round, signer))
            and isinstance(message.signature, bytes))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def is_signed_by(message: SignedMessage, validator_set: "ValidatorSet") -> bool:
    """True when the message is well formed and its signature is valid for the validator
    it names."""
    if not is_well_formed(message):
        return False
    index = message.signer_index
    if not 0 <= index < validator_set.size:
        return False
    return is_valid_signature(validator_set.public_keys[index], message.signing_digest(), message.signature)


# --- validator set -------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatorSet:
    """Public keys (64 bytes each) and voting powers, indexed 0..n-1."""

    public_keys: tuple[bytes, ...]
    powers: tuple[int, ...]
    _schedule: list[int] = field(default_factory=list, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.public_keys:
            raise InvalidValidatorSetError("no validators")
        if len(self.public_keys) != len(self.powers):
            raise InvalidValidatorSetError(f"{len(self.public_keys)} keys but {len(self.powers)} powers")
        for index, power in enumerate(self.powers):
            if not isinstance(power, int) or power <= 0:
                raise InvalidValidatorSetError(f"validator {index} has power {power!r}")
        for index, key in enumerate(self.public_keys):
            if len(key) != 64:
                raise InvalidValidatorSetError(f"validator {index} public key is {len(key)} bytes, not 64")

    @property
    def size(self) -> int:
        return len(self.powers)

    @functools.cached_property
    def total_power(self) -> int:
        return sum(self.powers)

    @functools.cached_property
    def quorum(self) -> int:
        """Smallest power strictly above 2/3 of the total (2f+1)."""
        return self.total_power * 2 // 3 + 1

    @functools.cached_property
    def max_faulty_power(self) -> int:
        """Largest Byzantine power the protocol tolerates (strictly below 1/3): f."""
        return (self.total_power - 1) // 3

    @functools.cached_property
    def skip_threshold(self) -> int:
        """f+1: power that must include at least one honest validator."""
        return self.max_faulty_power + 1

    @functools.cached_property
    def addresses(self) -> tuple[bytes, ...]:
        return tuple(compute_address(key) for key in self.public_keys)

    def get_power(self, indices) -> int:
        """Total power of distinct validator indices."""
        return sum(self.powers[i] for i in set(indices))

    def get_proposer(self, height: int, round: int) -> int:
        """Proposer of (height, round): CometBFT's weighted round robin (`consensus.proposer`)
        over the slot `height + round`, ties broken by the lower index; deterministic and
        stateless."""
        assert height >= 0 and round >= 0
        slot = height + round
        period = self._period
        if period > MAX_ROUND_ROBIN_PERIOD:
            draw = int.from_bytes(keccak(b"l2sim/proposer" + slot.to_bytes(32, "big")), "big") % self.total_power
            for index, power in enumerate(self.powers):
                if draw < power:
                    return index
                draw -= power
            raise AssertionError("draw exceeds total power")
        slot %= period
        self._extend_schedule(slot + 1)
        return self._schedule[slot]

    @functools.cached_property
    def _period(self) -> int:
        gcd = math.gcd(*self.powers)
        return self.total_power // gcd

    def _extend_schedule(self, length: int) -> None:
        # CometBFT's priority steps (`consensus.proposer`), one per slot. From the zero
        # genesis priorities of a fixed set the rescale and the centring never act, so
        # powers divided by their gcd divide every priority by it and change no choice,
        # and the sequence repeats every `_period` slots.
        schedule = self._schedule
        if len(schedule) >= length:
            return
        gcd = math.gcd(*self.powers)
        schedule[:] = compute_proposer_schedule([p // gcd for p in self.powers], self._period)


# --- certificates ----------------------------------------------------------------------


def verify_certificate(certificate: CommitCertificate, validator_set: ValidatorSet) -> None:
    """Check that `certificate` proves a commit under `validator_set`; raise a CertificateError if not."""
    seen: set[int] = set()
    for vote in certificate.votes:
        if (vote.fork_id, vote.height, vote.round) != (certificate.fork_id, certificate.height, certificate.round):
            raise ConflictingVoteError(vote, "vote for another fork, height or round")
        if vote.step != PRECOMMIT:
            raise ConflictingVoteError(vote, f"step {vote.step!r} is not a precommit")
        if vote.block_hash != certificate.block_hash:
            raise ConflictingVoteError(vote, "vote for another block")
        if not 0 <= vote.validator < validator_set.size:
            raise ConflictingVoteError(vote, "unknown validator")
        if vote.validator in seen:
            raise ConflictingVoteError(vote, "validator appears twice")
        seen.add(vote.validator)
        if not is_signed_by(vote, validator_set):
            raise InvalidSignatureError(vote)
    power = validator_set.get_power(seen)
    if power < validator_set.quorum:
        raise InsufficientPowerError(power, validator_set.quorum)
