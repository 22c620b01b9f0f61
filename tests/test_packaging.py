"""Packaging: the project's packages are the ones imported, and `chain` picks the fast keccak."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, **env_changes: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    # Run from outside the repo so that only the installed package can answer the import.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", check=True
    )
    return result.stdout.strip()


@pytest.mark.parametrize("package", ["validators", "chain", "consensus", "scenarios"])
def test_packages_resolve_to_this_repository(package):
    path = Path(_run(f"import {package}; print({package}.__file__)")).resolve()
    assert path.is_relative_to(REPO), path


@pytest.mark.skipif(importlib.util.find_spec("sha3") is None, reason="safe-pysha3 not installed")
def test_import_chain_selects_pysha3():
    code = (
        "import os, chain; from eth_hash.auto import keccak; keccak(b'');"
        "print(os.environ['ETH_HASH_BACKEND'], type(keccak._backend.keccak256.__self__).__module__)"
    )
    assert _run(code).split() == ["pysha3", "eth_hash.backends.pysha3"]


def test_an_explicit_backend_is_respected_and_gives_the_same_roots():
    code = (
        "import os, chain; from chain.store import MemoryStore;"
        "from chain.genesis import GenesisSpec, build_genesis, derive_funded_accounts;"
        "spec = GenesisSpec(seed=3, accounts=tuple(a for _, a in derive_funded_accounts(3, 5, 10)));"
        "print(os.environ['ETH_HASH_BACKEND'], build_genesis(MemoryStore(), spec).state_root.hex())"
    )
    default = _run(code).split()
    fallback = _run(code, ETH_HASH_BACKEND="pycryptodome").split()
    assert fallback[0] == "pycryptodome"
    assert fallback[1] == default[1]
