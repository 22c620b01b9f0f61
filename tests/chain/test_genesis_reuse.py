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


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test has its own disk cache of genesis images, empty at the start."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "l2sim" / "genesis"


def _counting_builds(monkeypatch) -> list:
    builds = []
    real = chain.genesis.build_genesis
    monkeypatch.setattr(chain.genesis, "build_genesis", lambda store, s: builds.append(s) or real(store, s))
    return builds


def test_a_genesis_image_read_back_from_disk_is_exactly_a_fresh_build(monkeypatch, own_cache):
    spec = _spec(seed=21)
    fresh_store = MemoryStore()
    fresh = build_genesis(fresh_store, spec)
    build_genesis_once(MemoryStore(), spec)  # builds, and writes the image
    assert len(list(own_cache.glob("*.img"))) == 1
    chain.genesis._images.clear()  # as a new process would start
    builds = _counting_builds(monkeypatch)
    store = MemoryStore()
    assert build_genesis_once(store, spec) == fresh
    assert builds == [] and _content(store) == _content(fresh_store)


def test_a_torn_or_foreign_image_is_built_again(monkeypatch, own_cache):
    spec = _spec(seed=22)
    fresh_store = MemoryStore()
    build_genesis(fresh_store, spec)
    build_genesis_once(MemoryStore(), spec)
    (image,) = own_cache.glob("*.img")
    for damaged in (image.read_bytes()[:-7], b"junk", image.read_bytes()[:60] + b"x" + image.read_bytes()[61:]):
        image.write_bytes(damaged)
        chain.genesis._images.clear()
        builds = _counting_builds(monkeypatch)
        store = MemoryStore()
        build_genesis_once(store, spec)
        assert len(builds) == 1 and _content(store) == _content(fresh_store)


def test_without_a_home_no_image_is_written(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", "")
    monkeypatch.chdir(tmp_path)
    build_genesis_once(MemoryStore(), _spec(seed=23))
    assert list(tmp_path.iterdir()) == []


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
