"""Node stores: both kinds read what was written; SQLite makes a block durable only on commit."""

import pytest
from eth_hash.auto import keccak

from chain.execution import build_block
from chain.genesis import build_genesis
from chain.history import History
from chain.state import get_balance, get_nonce, get_storage
from chain.store import MemoryStore, SQLiteStore, StoreError
from chain.transactions import sign_legacy


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield store
    store.close()


def test_store_reads_back_nodes_preimages_and_records(store):
    node = b"\xc1\x80"
    key = keccak(node)
    assert key not in store
    store[key] = node
    assert key in store and store[key] == node
    store.commit()
    assert store[key] == node
    del store[key]
    assert key not in store
    with pytest.raises(KeyError):
        store[key]

    store.put_preimages([(keccak(b"a"), b"a")])
    assert store.get_preimage(keccak(b"a")) == b"a"
    assert store.get_preimage(keccak(b"b")) is None

    store.put_record("t", b"k", b"v1")
    assert store.get_record("t", b"k") == b"v1"
    store.commit()
    store.put_record("t", b"k", b"v2")
    assert store.get_record("t", b"k") == b"v2"
    store.put_record("t", b"k", None)
    assert store.get_record("t", b"k") is None
    assert store.get_record("other", b"k") is None


def test_store_atomic_batch_writes_on_success_only(store):
    node = b"\xc2\x01\x02"
    with store.atomic_batch() as batch:
        batch[keccak(node)] = node
    assert store[keccak(node)] == node
    with pytest.raises(RuntimeError), store.atomic_batch() as batch:
        batch[keccak(b"x")] = b"x"
        raise RuntimeError("abort")
    assert keccak(b"x") not in store


def test_sqlite_uncommitted_block_is_invisible_to_a_second_connection(funded, tmp_path):
    path = tmp_path / "chain.db"
    keys, spec = funded.keys, funded.spec
    writer = SQLiteStore(path)
    genesis = build_genesis(writer, spec)  # commits
    history = History.create(writer, genesis.header)
    history.append(  # commits block 1 (and the genesis record)
        build_block(
            writer,
            genesis.header,
            [sign_legacy(keys[0], nonce=0, to=spec.accounts[1].address, value=3)],
            proposer=b"\x01" * 20,
            timestamp=1,
        ).block
    )
    committed_nodes = SQLiteStore(path).node_count

    # Block 2 is executed and written, but not committed.
    built = build_block(
        writer,
        history.head,
        [sign_legacy(keys[0], nonce=1, to=spec.accounts[1].address, value=4)],
        proposer=b"\x01" * 20,
        timestamp=2,
    )
    pending_root = built.block.header.state_root
    assert pending_root in writer

    reader = SQLiteStore(path)
    assert pending_root not in reader
    assert reader.node_count == committed_nodes
    assert History.open(reader).height == 1
    reader.close()

    writer.commit()
    reader = SQLiteStore(path)
    assert pending_root in reader
    assert get_nonce(reader, pending_root, spec.accounts[0].address) == 2
    reader.close()
    writer.close()


def test_sqlite_close_and_reopen_keeps_roots_balances_and_history(funded, tmp_path):
    path = tmp_path / "chain.db"
    keys, spec = funded.keys, funded.spec
    alice, bob = spec.accounts[0].address, spec.accounts[1].address
    store = SQLiteStore(path)
    genesis = build_genesis(store, spec)
    history = History.create(store, genesis.header)
    for nonce in range(3):
        tx = sign_legacy(keys[0], nonce=nonce, to=bob, value=10 + nonce, gas_price=1)
        history.append(
            build_block(store, history.head, [tx], proposer=b"\x02" * 20, timestamp=nonce + 1).block
        )
    before = [
        (history.root_at(h), get_balance(store, history.root_at(h), alice),
         get_balance(store, history.root_at(h), bob), history.block_at(h).hash)
        for h in range(history.height + 1)
    ]
    store.close()

    reopened = SQLiteStore(path)
    again = History.open(reopened)
    after = [
        (again.root_at(h), get_balance(reopened, again.root_at(h), alice),
         get_balance(reopened, again.root_at(h), bob), again.block_at(h).hash)
        for h in range(again.height + 1)
    ]
    assert after == before
    assert len(after) == 4
    slot, value = funded.contract_storage[0]
    assert get_storage(reopened, again.head.state_root, funded.contract, slot) == value
    assert reopened.get_preimage(keccak(alice)) == alice
    reopened.close()


def test_sqlite_rejects_a_file_that_is_not_a_store(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the nodes you are looking for\n" * 100)
    with pytest.raises(StoreError) as raised:
        SQLiteStore(path)
    assert raised.value.path == str(path)


def test_sqlite_rejects_a_store_of_another_format(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', 'someone-else-9')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="someone-else-9"):
        SQLiteStore(path)
