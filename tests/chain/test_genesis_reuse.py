"""Genesis built once per spec and copied after: the new store holds exactly what a fresh build
writes, and nothing is shared between specs that differ."""

import pytest

import chain.genesis
from chain.genesis import GenesisError, GenesisSpec, build_genesis, build_genesis_once, derive_funded_accounts
from chain.store import MemoryStore, SQLiteStore


def _spec(seed: int = 5, count: int = 6, balance: int = 10**18) -> GenesisSpec:
    return GenesisSpec(seed=seed, accounts=tuple(a for _, a in derive_funded_accounts(seed, count, balance)))


def _content(store: MemoryStore) -> tuple[dict, dict]:
    return dict(store._nodes), dict(store._preimages)


def test_a_reused_genesis_is_exactly_a_fresh_one(monkeypatch):
    spec = _spec(seed=11)
    fresh_store = MemoryStore()
    fresh = build_genesis(fresh_store, spec)
    builds = []
    real = chain.genesis.build_genesis
    monkeypatch.setattr(chain.genesis, "build_genesis", lambda store, s: builds.append(s) or real(store, s))
    first_store, second_store = MemoryStore(), MemoryStore()
    first = build_genesis_once(first_store, spec)
    second = build_genesis_once(second_store, spec)
    assert len(builds) == 1, "the second build of one spec copies the first"
    assert first == second == fresh
    assert _content(first_store) == _content(second_store) == _content(fresh_store)


def test_specs_that_differ_do_not_share_a_genesis():
    one, other = build_genesis_once(MemoryStore(), _spec(balance=1)), build_genesis_once(MemoryStore(), _spec(balance=2))
    assert one.state_root != other.state_root
    assert chain.genesis.compute_spec_key(_spec(balance=1)) != chain.genesis.compute_spec_key(_spec(balance=2))


def test_a_copied_genesis_persists_in_sqlite(tmp_path):
    spec = _spec(seed=12)
    fresh = MemoryStore()
    build_genesis(fresh, spec)
    build_genesis_once(MemoryStore(), spec)  # kept: the SQLite store below gets a copy
    store = SQLiteStore(tmp_path / "g.sqlite")
    build_genesis_once(store, spec)
    store.close()
    reopened = SQLiteStore(tmp_path / "g.sqlite")
    try:
        nodes, preimages = _content(fresh)
        assert all(reopened[key] == node for key, node in nodes.items())
        assert all(reopened.get_preimage(key) == value for key, value in preimages.items())
    finally:
        reopened.close()


def test_a_failing_spec_raises_every_time_and_is_not_kept():
    _, account = derive_funded_accounts(3, 1, 1)[0]
    bad = GenesisSpec(seed=3, accounts=(account, account))
    for _ in range(2):
        with pytest.raises(GenesisError, match="listed twice"):
            build_genesis_once(MemoryStore(), bad)
    assert chain.genesis.compute_spec_key(bad) not in chain.genesis._images


def test_at_most_a_few_images_are_kept():
    for seed in range(chain.genesis.MAX_KEPT_GENESIS_IMAGES + 3):
        build_genesis_once(MemoryStore(), _spec(seed=100 + seed, count=1))
    assert len(chain.genesis._images) == chain.genesis.MAX_KEPT_GENESIS_IMAGES
