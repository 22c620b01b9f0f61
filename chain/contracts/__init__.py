"""The exchange contracts (oracle, perps, bridge): Vyper sources and the glue to use them.

The `.vy` files beside this module are the single truth. What runs is their compiled
form (vyper's Python API, EVM version prague), found in this order:

1. `compiled/<name>.json` shipped beside the sources, when it was compiled from the same
   source bytes (sha256), vyper version and EVM version;
2. the user cache, `$XDG_CACHE_HOME/l2sim/contracts` (or `~/.cache/l2sim/contracts`),
   under a file name holding the same three keys;
3. a fresh compile (about 2 s for the three), then written to the user cache
   atomically; an unwritable cache is skipped.

Either way the result is kept for the life of the process. A test proves the shipped
artifacts equal a fresh compile; `python -m chain.contracts` rewrites them after a
source change.
"""

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import eth_abi
import eth_abi.exceptions
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector

from chain.files import get_user_cache_dir as get_cache_dir
from chain.files import write_bytes_atomic

EVM_VERSION = "prague"
CONTRACT_NAMES = ("oracle", "perps", "bridge")
_SOURCE_DIR = Path(__file__).parent
SHIPPED_DIR = _SOURCE_DIR / "compiled"


@dataclass(frozen=True)
class CompiledContract:
    """A contract compiled from its Vyper source; `abi` is the JSON ABI as a tuple of dicts."""

    name: str
    abi: tuple
    bytecode: bytes
    runtime_bytecode: bytes
    source_hash: bytes  # sha256 of the .vy source


def get_vyper_version() -> str:
    """The installed vyper's version (read from its metadata: importing vyper is slow)."""
    return importlib.metadata.version("vyper")


def _check_name(name: str) -> None:
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; expected one of {CONTRACT_NAMES}")


def _read_source(name: str) -> bytes:
    return (_SOURCE_DIR / f"{name}.vy").read_bytes()


def get_user_cache_dir() -> Path:
    """Where compiled contracts are cached for this user: `$XDG_CACHE_HOME/l2sim/contracts`."""
    return get_cache_dir("contracts")


def _artifact_key(name: str, source_hash: bytes) -> dict:
    return {"name": name, "source_sha256": source_hash.hex(), "vyper_version": get_vyper_version(),
            "evm_version": EVM_VERSION}


def _cache_path(key: dict) -> Path:
    return get_user_cache_dir() / (
        f"{key['name']}-{key['source_sha256'][:16]}-vyper{key['vyper_version']}-{key['evm_version']}.json"
    )


def compile_fresh(name: str) -> dict:
    """Compile chain/contracts/<name>.vy with vyper now: the artifact as JSON-ready data."""
    _check_name(name)
    import vyper  # only a cache miss pays for importing the compiler
    from vyper.compiler.settings import Settings

    raw = _read_source(name)
    out = vyper.compile_code(
        raw.decode(),
        contract_path=f"{name}.vy",
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    return {
        **_artifact_key(name, hashlib.sha256(raw).digest()),
        "abi": out["abi"],
        "bytecode": out["bytecode"].removeprefix("0x"),
        "bytecode_runtime": out["bytecode_runtime"].removeprefix("0x"),
    }


def _read_artifact(path: Path, key: dict) -> dict | None:
    """The artifact at `path` if it is readable and was built from exactly `key`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
        return None
    return data


def _write_atomically(path: Path, data: dict) -> None:
    """Write the artifact as JSON, whole or not at all: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def find_artifact(name: str) -> dict:
    """The compiled artifact of `name`: shipped, else cached, else compiled now (and cached)."""
    _check_name(name)
    key = _artifact_key(name, hashlib.sha256(_read_source(name)).digest())
    cache = _cache_path(key)
    use_cache = cache.is_absolute()  # no home directory: `~` stays relative; never write into the cwd
    for path in (SHIPPED_DIR / f"{name}.json", cache) if use_cache else (SHIPPED_DIR / f"{name}.json",):
        data = _read_artifact(path, key)
        if data is not None:
            return data
    data = compile_fresh(name)
    if use_cache:
        try:
            _write_atomically(cache, data)
        except OSError:  # a read-only home or a full disk: compiling every time still works
            pass
    return data


@functools.cache
def compile_contract(name: str) -> CompiledContract:
    """The compiled form of chain/contracts/<name>.vy (looked up once per process)."""
    data = find_artifact(name)
    return CompiledContract(
        name=name,
        abi=tuple(data["abi"]),
        bytecode=bytes.fromhex(data["bytecode"]),
        runtime_bytecode=bytes.fromhex(data["bytecode_runtime"]),
        source_hash=bytes.fromhex(data["source_sha256"]),
    )


def write_shipped_artifacts() -> list[Path]:
    """Compile every contract afresh and write `compiled/<name>.json` (after a source change)."""
    paths = []
    for name in CONTRACT_NAMES:
        path = SHIPPED_DIR / f"{name}.json"
        _write_atomically(path, compile_fresh(name))
        paths.append(path)
    return paths


def _abi_types(params: list) -> list[str]:
    """Canonical ABI type strings, tuples (structs) expanded."""
    types = []
    for param in params:
        if param["type"].startswith("tuple"):
            inner = ",".join(_abi_types(param["components"]))
            types.append(f"({inner}){param['type'][len('tuple'):]}")
        else:
            types.append(param["type"])
    return types


def _entry(compiled: CompiledContract, kind: str, name: str | None = None) -> dict:
    for item in compiled.abi:
        if item["type"] == kind and (name is None or item.get("name") == name):
            return item
    raise ValueError(f"{compiled.name} has no {kind} {name or ''}".rstrip())


def deployment_code(name: str, *constructor_args) -> bytes:
    """Init code that deploys contract `name` with `constructor_args` (ABI-encoded)."""
    compiled = compile_contract(name)
    try:
        params = _entry(compiled, "constructor")["inputs"]
    except ValueError:
        params = []
    return compiled.bytecode + eth_abi.encode(_abi_types(params), list(constructor_args))


def encode_call(compiled: CompiledContract, fn_name: str, *args) -> bytes:
    """Calldata for `fn_name(*args)`: 4-byte selector + ABI-encoded arguments."""
    types = _abi_types(_entry(compiled, "function", fn_name)["inputs"])
    selector = function_signature_to_4byte_selector(f"{fn_name}({','.join(types)})")
    return selector + eth_abi.encode(types, list(args))


def decode_result(compiled: CompiledContract, fn_name: str, data: bytes) -> tuple:
    """The return values of `fn_name` decoded from returndata, always as a tuple."""
    types = _abi_types(_entry(compiled, "function", fn_name)["outputs"])
    return tuple(eth_abi.decode(types, data))


def event_topic(compiled: CompiledContract, event_name: str) -> bytes:
    """topic0 of `event_name`: keccak of its canonical signature."""
    types = _abi_types(_entry(compiled, "event", event_name)["inputs"])
    return event_signature_to_log_topic(f"{event_name}({','.join(types)})")


def decode_event(compiled: CompiledContract, event_name: str, topics: list[bytes], data: bytes) -> dict:
    """Fields of one `event_name` log by name; topics[0] must be the event's topic."""
    if topics[0] != event_topic(compiled, event_name):
        raise ValueError(f"log is not a {compiled.name}.{event_name} event")
    inputs = _entry(compiled, "event", event_name)["inputs"]
    indexed = [param for param in inputs if param["indexed"]]
    plain = [param for param in inputs if not param["indexed"]]
    fields = {}
    for param, topic in zip(indexed, topics[1:], strict=True):
        (fields[param["name"]],) = eth_abi.decode(_abi_types([param]), topic)
    values = eth_abi.decode(_abi_types(plain), data)
    fields.update({param["name"]: value for param, value in zip(plain, values, strict=True)})
    return fields


ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string): what Vyper's `assert ..., "reason"` reverts with


def decode_revert_reason(output: bytes) -> str:
    """Why a call reverted, from its output: the contract's `Error(string)` message, else
    the raw output in hex ("0x" when it ran out of gas or hit an invalid opcode)."""
    output = bytes(output)
    if output[:4] == ERROR_SELECTOR:
        try:
            return eth_abi.decode(["string"], output[4:])[0]
        except (eth_abi.exceptions.DecodingError, UnicodeDecodeError, OverflowError):
            pass
    return "0x" + output.hex()
