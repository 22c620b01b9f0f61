"""Vote journal: one signed message per (fork, height, round, step), across restarts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import PRECOMMIT, PREVOTE, Vote, is_signed_by, ValidatorSet
from consensus.tendermint import ResumePoint
from validators.journal import (
    DoubleSignRefused,
    MemoryJournal,
    SQLiteJournal,
    compute_record,
    get_resume_point,
    make_journaled_signer,
)
from validators.keys import derive_validator_keys

KEYS = derive_validator_keys(3, 2)
A, B = b"\xaa" * 32, b"\xbb" * 32


def vote(step, value, round=0, height=5, fork_id=1, validator=0):
    return Vote(fork_id, height, round, step, value, validator)


@pytest.fixture(params=["memory", "sqlite"])
def journal(request, tmp_path):
    if request.param == "memory":
        yield MemoryJournal()
    else:
        with SQLiteJournal(tmp_path / "journal.sqlite") as db:
            yield db


# The model: a dict slot -> digest; the journal must accept exactly what the model accepts.
attempts = st.lists(
    st.tuples(st.integers(1, 2), st.integers(0, 2), st.integers(0, 2), st.sampled_from([PREVOTE, PRECOMMIT]),
              st.sampled_from([None, A, B])),
    max_size=30,
)


@given(attempts=attempts)
@settings(max_examples=30)
def test_journal_accepts_exactly_what_a_dict_model_accepts(attempts, tmp_path_factory):
    path = tmp_path_factory.mktemp("j") / "journal.sqlite"
    with SQLiteJournal(path) as db:
        for journal in (MemoryJournal(), db):
            model: dict = {}
            for fork_id, height, round, step, value in attempts:
                record = compute_record(vote(step, value, round, height, fork_id))
                expected_ok = model.setdefault(record.slot, record.digest) == record.digest
                if expected_ok:
                    journal.record(record)
                else:
                    with pytest.raises(DoubleSignRefused):
                        journal.record(record)
            for slot, digest in model.items():
                assert journal.get_record(*slot).digest == digest


def test_second_different_value_is_refused_with_both_records(journal):
    first = compute_record(vote(PREVOTE, A))
    journal.record(first)
    journal.record(first)  # the same message again is fine
    second = compute_record(vote(PREVOTE, None))
    with pytest.raises(DoubleSignRefused) as refused:
        journal.record(second)
    assert refused.value.existing == first
    assert refused.value.attempted == second
    journal.record(compute_record(vote(PREVOTE, None, fork_id=2)))  # a new fork is a new slot


def test_last_signed_and_resume_point(journal):
    assert journal.get_last_signed(1) is None
    assert get_resume_point(journal, 1, 5) == ResumePoint()
    for record in [vote(PREVOTE, A, 0), vote(PRECOMMIT, A, 0), vote(PREVOTE, None, 1), vote(PRECOMMIT, None, 1),
                   vote(PREVOTE, B, 2)]:
        journal.record(compute_record(record))
    last = journal.get_last_signed(1)
    assert (last.height, last.round, last.step) == (5, 2, PREVOTE)
    assert get_resume_point(journal, 1, 5) == ResumePoint(round=2, locked_round=0, locked_hash=A)


def test_sqlite_journal_survives_reopen(tmp_path):
    path = tmp_path / "journal.sqlite"
    with SQLiteJournal(path) as db:
        db.record(compute_record(vote(PRECOMMIT, A, 3)))
    with SQLiteJournal(path) as db:
        with pytest.raises(DoubleSignRefused):
            db.record(compute_record(vote(PRECOMMIT, B, 3)))
        assert get_resume_point(db, 1, 5) == ResumePoint(round=3, locked_round=3, locked_hash=A)


def test_journaled_signer_signs_once_per_slot(journal):
    validator_set = ValidatorSet(tuple(k.public_key for k in KEYS), (1, 1))
    signer = make_journaled_signer(KEYS[0], journal)
    signed = signer(vote(PREVOTE, A))
    assert is_signed_by(signed, validator_set)
    assert signer(vote(PREVOTE, A)) == signed  # deterministic signatures: a re-send is identical
    with pytest.raises(DoubleSignRefused):
        signer(vote(PREVOTE, B))


def test_a_refusal_carries_the_message_already_signed(journal):
    signer = make_journaled_signer(KEYS[0], journal)
    first = signer(vote(PREVOTE, None))
    with pytest.raises(DoubleSignRefused) as refused:
        signer(vote(PREVOTE, A))
    assert refused.value.previous == first  # a restarted node re-sends this one, never a new one
