"""Every seed and key of a run comes from its one master seed, through this module.

`derive_seed(master, *labels)` names a subsystem by labels ("network", "chain"; "trader",
index, height; ...) and gives it a 64-bit seed of its own: sha256 of the labels, so the
same scenario and seed give the same run on any machine, and adding a subsystem never
shifts the draws of another. The simulation never reads the global `random` or the clock.

The keys follow from the same master seed: the validators' (`get_validator_keys`), the
actors' and the genesis deployer's (`scenarios.market`, `chain.genesis`), each from a
derived seed.
"""

from __future__ import annotations

import hashlib
import random

from validators.keys import ValidatorKey, derive_validator_keys

SEED_BITS = 63  # what the simulations and key derivations take


def derive_seed(seed: int, *labels: object) -> int:
    """A 64-bit seed for the subsystem named by `labels`, derived from the master `seed`."""
    text = "/".join(["l2sim", str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def derive_rng(seed: int, *labels: object) -> random.Random:
    """A `random.Random` of its own for the subsystem named by `labels`."""
    return random.Random(derive_seed(seed, *labels))


def get_network_seed(seed: int, phase: str) -> int:
    """The seed of one phase's simulated network (links, latencies, drops)."""
    return derive_seed(seed, "network", phase) % (2**SEED_BITS)


def get_validator_keys(seed: int, count: int) -> tuple[ValidatorKey, ...]:
    """The run's validator keys, in index order."""
    return derive_validator_keys(derive_seed(seed, "validators") % (2**SEED_BITS), count)
