"""Safety and liveness checks over a simulation trace.

- agreement: no two honest nodes decide different blocks at a height;
- validity: every honest decision passes an application callback;
- certificates: every honest decision carries a certificate that verifies;
- liveness: after the last fault ends (partition healed, node restarted), every honest
  node that is running decides a new height within a bound;
- journal: no honest validator signed two different messages in one slot (re-signed
  copies of one message are not two; forgeries are not its signatures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from consensus.messages import CertificateError, get_slot, is_signed_by, verify_certificate
from consensus.network import seconds_to_us
from consensus.sim import Trace


@dataclass(frozen=True)
class CheckResult:
    """Whether a property held, and a one-line detail for the report."""

    ok: bool
    detail: str


def check_agreement(trace: Trace) -> CheckResult:
    """No two honest nodes decided different blocks at the same height."""
    honest = set(trace.honest)
    decided: dict[int, tuple[int, bytes]] = {}
    for d in trace.decisions:
        if d.node not in honest:
            continue
        first = decided.setdefault(d.height, (d.node, d.block_hash))
        if first[1] != d.block_hash:
            return CheckResult(False, f"height {d.height}: node {first[0]} decided 0x{first[1].hex()[:16]}, "
                                      f"node {d.node} decided 0x{d.block_hash.hex()[:16]}")
    return CheckResult(True, f"{len(decided)} heights, honest nodes agree")


def check_validity(trace: Trace, is_valid_decision: Callable[[int, bytes, bytes | None], bool]) -> CheckResult:
    """Every honest decision satisfies `is_valid_decision(height, block_hash, payload)`."""
    honest = set(trace.honest)
    for d in trace.decisions:
        if d.node in honest and not is_valid_decision(d.height, d.block_hash, d.payload):
            return CheckResult(False, f"node {d.node} decided an invalid block at height {d.height}")
    return CheckResult(True, "every honest decision is valid")


def check_certificates(trace: Trace) -> CheckResult:
    """Every honest decision carries a commit certificate that verifies and matches it."""
    honest = set(trace.honest)
    for d in trace.decisions:
        if d.node not in honest:
            continue
        cert = d.certificate
        if (cert.height, cert.block_hash) != (d.height, d.block_hash):
            return CheckResult(False, f"node {d.node} height {d.height}: certificate is for another block")
        try:
            verify_certificate(cert, trace.validator_set)
        except CertificateError as error:
            return CheckResult(False, f"node {d.node} height {d.height}: {error}")
    return CheckResult(True, "every honest decision is certified")


def check_liveness(trace: Trace, bound_s: float, after_s: float | None = None) -> CheckResult:
    """Every honest node running at the end decides a height above the best height decided
    before `after_s` (default: when the last fault ended), within `bound_s` after it."""
    config = trace.config
    after_us = seconds_to_us(config.get_faults_end_s() if after_s is None else after_s)
    deadline_us = after_us + seconds_to_us(bound_s)
    honest = set(trace.honest)
    baseline = max((d.height for d in trace.decisions if d.node in honest and d.time_us < after_us),
                   default=config.start_height - 1)
    for node in sorted(honest):
        if not config.is_up_at_end(node):
            continue
        progressed = any(d.node == node and d.height > baseline and d.time_us <= deadline_us for d in trace.decisions)
        if not progressed:
            return CheckResult(False, f"node {node} decided no height above {baseline} within {bound_s} s "
                                      f"after {after_us / 1e6} s")
    return CheckResult(True, f"every running honest node passed height {baseline} within {bound_s} s")


def check_no_double_sign(trace: Trace) -> CheckResult:
    """No honest validator signed two different messages (digests) in one (fork, height,
    round, step). Copies of one digest are one message; a message whose signature does not
    verify (a forgery naming an honest validator) was not signed by it."""
    honest = set(trace.honest)
    seen: dict[tuple, bytes] = {}
    for message in trace.messages:
        if message.signer_index not in honest or not is_signed_by(message, trace.validator_set):
            continue
        key = (message.signer_index, get_slot(message))
        first = seen.setdefault(key, message.signing_digest())
        if first != message.signing_digest():
            return CheckResult(False, f"validator {message.signer_index} double-signed slot {key[1]}")
    return CheckResult(True, "no honest validator double-signed")
