"""The exchange contracts (oracle, perps, bridge): Vyper sources and the glue to use them.

The `.vy` files beside this module are the single truth; bytecode and ABI are
compiled from them in-process (vyper's Python API, EVM version prague) and
cached for the life of the process.
"""

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import eth_abi
import vyper
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector
from vyper.compiler.settings import Settings

EVM_VERSION = "prague"
CONTRACT_NAMES = ("oracle", "perps", "bridge")
_SOURCE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class CompiledContract:
    """A contract compiled from its Vyper source; `abi` is the JSON ABI as a tuple of dicts."""

    name: str
    abi: tuple
    bytecode: bytes
    runtime_bytecode: bytes
    source_hash: bytes  # sha256 of the .vy source


@functools.cache
def compile_contract(name: str) -> CompiledContract:
    """Compile chain/contracts/<name>.vy (once per process)."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; expected one of {CONTRACT_NAMES}")
    path = _SOURCE_DIR / f"{name}.vy"
    source = path.read_text()
    out = vyper.compile_code(
        source,
        contract_path=path.name,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    return CompiledContract(
        name=name,
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
        source_hash=hashlib.sha256(source.encode()).digest(),
    )


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
