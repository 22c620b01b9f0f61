"""The L2 chain as a deterministic state machine over py-evm state in a hexary Merkle Patricia trie.

Importing this package selects the fast keccak backend (safe-pysha3) for eth-hash
when it is installed, before eth_hash is first imported; where it is missing,
eth-hash falls back to pycryptodome and the roots are the same.
"""

import importlib.util as _importlib_util
import os as _os

if "ETH_HASH_BACKEND" not in _os.environ and _importlib_util.find_spec("sha3") is not None:
    _os.environ["ETH_HASH_BACKEND"] = "pysha3"
