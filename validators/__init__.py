"""A validator node: secp256k1 keys, vote journal, its own chain view, mempool and behaviour."""
