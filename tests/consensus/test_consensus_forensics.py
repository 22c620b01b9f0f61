"""Forensics: equivocation and amnesia are convicted with two signed messages; honest never."""

from consensus.forensics import AMNESIA, EQUIVOCATION, find_conflicting_certificates, find_culprits
from consensus.messages import PRECOMMIT, PREVOTE, CommitCertificate, Vote, sign_message
from consensus_support import get_keys, make_validator_set

KEYS = get_keys(4)
VSET = make_validator_set(4)
A, B = b"\xaa" * 32, b"\xbb" * 32


def vote(validator, step, value, round, height=1):
    return sign_message(KEYS[validator].private_key, Vote(1, height, round, step, value, validator))


def test_conflicting_votes_in_one_round_convict_with_both_messages():
    first, second = vote(2, PREVOTE, A, 0), vote(2, PREVOTE, B, 0)
    report = find_culprits([first, vote(1, PREVOTE, A, 0), second], VSET)
    assert report.culprits == (2,)
    (evidence,) = report.evidence
    assert evidence.kind == EQUIVOCATION and {evidence.first, evidence.second} == {first, second}


def test_precommit_then_unjustified_prevote_is_amnesia():
    report = find_culprits([vote(3, PRECOMMIT, A, 0), vote(3, PREVOTE, B, 2)], VSET)
    assert report.culprits == (3,) and report.evidence[0].kind == AMNESIA


def test_a_polka_in_between_justifies_changing_value():
    polka = [vote(v, PREVOTE, B, 1) for v in (0, 1, 2)]
    report = find_culprits([vote(3, PRECOMMIT, A, 0), *polka, vote(3, PREVOTE, B, 2)], VSET)
    assert report.culprits == ()


def test_nil_prevotes_and_repeats_are_never_evidence():
    messages = [vote(0, PRECOMMIT, A, 0), vote(0, PREVOTE, None, 1), vote(0, PREVOTE, A, 2), vote(0, PREVOTE, A, 2)]
    assert find_culprits(messages, VSET).culprits == ()


def test_forged_messages_cannot_frame_a_validator():
    forged = Vote(1, 1, 0, PREVOTE, B, 1, signature=vote(2, PREVOTE, B, 0).signature)
    assert find_culprits([vote(1, PREVOTE, A, 0), forged], VSET).culprits == ()


def test_conflicting_certificates_are_paired():
    cert_a = CommitCertificate(1, 1, 0, A, tuple(vote(v, PRECOMMIT, A, 0) for v in (0, 1, 2)))
    cert_b = CommitCertificate(1, 1, 0, B, tuple(vote(v, PRECOMMIT, B, 0) for v in (1, 2, 3)))
    assert find_conflicting_certificates([cert_a, cert_a, cert_b]) == ((cert_a, cert_b),)
    report = find_culprits([], VSET, [cert_a, cert_b])
    assert report.culprits == (1, 2) and report.get_culprit_power(VSET) > VSET.max_faulty_power
