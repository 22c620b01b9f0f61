"""The build glue: the .vy sources are the single truth of what runs on chain."""

import hashlib
import json
from pathlib import Path

import pytest

import chain.contracts
from chain.contracts import CONTRACT_NAMES, compile_contract, decode_result, deployment_code, encode_call

from .conftest import USD, deploy_exchange


def test_deployed_runtime_code_is_what_the_sources_compile_to(evm):
    owner = evm.new_account(10 * USD)
    deployed = {
        "oracle": evm.deploy(owner, "oracle", owner.address),
        "perps": evm.deploy(owner, "perps", b"\x11" * 20, 3, 1_000, 500, 10, 5, 100, 100),
        "bridge": evm.deploy(owner, "bridge", owner.address, 12),
    }
    assert set(deployed) == set(CONTRACT_NAMES)
    for name, contract in deployed.items():
        assert evm.state.get_code(contract.address) == compile_contract(name).runtime_bytecode, name
        # EIP-161: a created contract starts at nonce 1, so it is never "empty".
        assert evm.state.get_nonce(contract.address) == 1


def test_compile_is_cached_and_hashes_the_source():
    compiled = compile_contract("perps")
    assert compile_contract("perps") is compiled
    source = (Path(chain.contracts.__file__).parent / "perps.vy").read_bytes()
    assert compiled.source_hash == hashlib.sha256(source).digest()
    assert compiled.bytecode and compiled.runtime_bytecode


def test_unknown_contract_is_rejected():
    with pytest.raises(ValueError, match="unknown contract"):
        compile_contract("nope")


def test_deployment_code_appends_abi_encoded_constructor_args():
    code = deployment_code("bridge", b"\x22" * 20, 7)
    assert code.startswith(compile_contract("bridge").bytecode)
    assert code[-64:] == bytes(12) + b"\x22" * 20 + (7).to_bytes(32, "big")


def test_encode_call_and_decode_result_use_the_abi():
    perps = compile_contract("perps")
    calldata = encode_call(perps, "trade", 2, -5)
    assert calldata[:4] == bytes.fromhex("f3f6073c")  # keccak("trade(uint256,int256)")[:4]
    assert calldata[4:] == (2).to_bytes(32, "big") + (-5).to_bytes(32, "big", signed=True)
    returned = (-3).to_bytes(32, "big", signed=True) + (9).to_bytes(32, "big")
    assert decode_result(perps, "position", returned) == (-3, 9)


def test_views_through_the_harness_round_trip():
    exchange = deploy_exchange(vault_usd=5)
    assert exchange.perps.call("vault_balance") == 5 * USD
    assert exchange.perps.call("open_interest", 0) == (0, 0)


# ---------------------------------------------------------------- compiled artifacts


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_shipped_artifact_equals_a_fresh_compile(name):
    """What runs is what the sources compile to: `python -m chain.contracts` after a change."""
    shipped = json.loads((chain.contracts.SHIPPED_DIR / f"{name}.json").read_text())
    assert shipped == chain.contracts.compile_fresh(name)
    compiled = compile_contract(name)
    assert compiled.bytecode.hex() == shipped["bytecode"]
    assert compiled.runtime_bytecode.hex() == shipped["bytecode_runtime"]


@pytest.fixture
def lookup(tmp_path, monkeypatch):
    """Artifact lookup with shipped and cache dirs in `tmp_path`, counting real compiles."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(chain.contracts, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiles = []
    real = chain.contracts.compile_fresh

    def counting(name):
        compiles.append(name)
        return real(name)

    monkeypatch.setattr(chain.contracts, "compile_fresh", counting)
    return shipped, compiles


def test_a_cache_miss_compiles_once_then_the_cache_answers(lookup):
    _, compiles = lookup
    first = chain.contracts.find_artifact("oracle")
    assert compiles == ["oracle"]
    cached = list(chain.contracts.get_user_cache_dir().glob("oracle-*.json"))
    assert len(cached) == 1 and chain.contracts.get_vyper_version() in cached[0].name
    assert chain.contracts.find_artifact("oracle") == first
    assert compiles == ["oracle"]


@pytest.mark.parametrize("key, value", [("source_sha256", "00" * 32), ("vyper_version", "0.0.1"),
                                        ("evm_version", "cancun")])
def test_an_artifact_built_from_other_source_compiler_or_evm_is_not_used(lookup, key, value):
    shipped, compiles = lookup
    stale = dict(chain.contracts.compile_fresh("oracle"), bytecode="fe", **{key: value})
    (shipped / "oracle.json").write_text(json.dumps(stale))
    compiles.clear()
    assert chain.contracts.find_artifact("oracle")["bytecode"] != "fe"
    assert compiles == ["oracle"]


def test_a_matching_shipped_artifact_is_used_without_compiling(lookup):
    shipped, compiles = lookup
    artifact = chain.contracts.compile_fresh("bridge")
    (shipped / "bridge.json").write_text(json.dumps(artifact))
    compiles.clear()
    assert chain.contracts.find_artifact("bridge") == artifact
    assert compiles == []


def test_an_unwritable_cache_falls_back_to_compiling(lookup, tmp_path, monkeypatch):
    _, compiles = lookup
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a file fails
    assert chain.contracts.find_artifact("oracle")["bytecode"]
    assert chain.contracts.find_artifact("oracle")["bytecode"]
    assert compiles == ["oracle", "oracle"]


def test_a_truncated_cache_file_is_recompiled(lookup):
    _, compiles = lookup
    chain.contracts.find_artifact("oracle")
    (cached,) = chain.contracts.get_user_cache_dir().glob("oracle-*.json")
    cached.write_text(cached.read_text()[:100])
    assert chain.contracts.find_artifact("oracle")["abi"]
    assert compiles == ["oracle", "oracle"]


def test_without_a_home_directory_nothing_is_written_into_the_working_directory(lookup, tmp_path, monkeypatch):
    _, compiles = lookup
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", "")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert chain.contracts.find_artifact("oracle")["bytecode"]
    assert compiles == ["oracle"] and list(work.iterdir()) == []
