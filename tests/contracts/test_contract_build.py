"""The build glue: the .vy sources are the single truth of what runs on chain."""

import hashlib
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
