"""Shared helpers for the consensus tests: keys, journals and node kits for the bytes app."""

from __future__ import annotations

import functools

from consensus.messages import ValidatorSet
from consensus.sim import BytesApp, NodeKit, SimConfig, Trace, run_simulation
from validators.journal import MemoryJournal, get_resume_point, make_journaled_signer
from validators.keys import derive_validator_keys, make_raw_signer

KEY_SEED = 7


@functools.lru_cache(maxsize=None)
def get_keys(count: int):
    return derive_validator_keys(KEY_SEED, count)


def make_validator_set(count: int, powers: tuple[int, ...] | None = None) -> ValidatorSet:
    keys = get_keys(count)
    return ValidatorSet(tuple(k.public_key for k in keys), powers or (1,) * count)


def make_kit_factory(count: int, journals: dict[int, MemoryJournal] | None = None):
    """A `make_node_kit` for the bytes app with in-memory journals (kept in `journals`)."""
    keys = get_keys(count)
    journals = {} if journals is None else journals

    def make_node_kit(index: int) -> NodeKit:
        journal = journals.setdefault(index, MemoryJournal())
        return NodeKit(
            app=BytesApp(index),
            signer=make_journaled_signer(keys[index], journal),
            raw_signer=make_raw_signer(keys[index]),
            get_resume_point=lambda fork_id, height: get_resume_point(journal, fork_id, height),
        )

    return make_node_kit


def simulate(config: SimConfig, count: int, powers: tuple[int, ...] | None = None) -> Trace:
    return run_simulation(config, make_validator_set(count, powers), make_kit_factory(count))


def is_bytes_block_valid(height: int, block_hash: bytes, payload: bytes | None) -> bool:
    return payload is not None and BytesApp(-1).is_valid(height, block_hash, payload)


# --- hypothesis strategies for fault schedules ------------------------------------------------

from hypothesis import strategies as st  # noqa: E402

from consensus.network import CrashFault, LinkProfile, Partition  # noqa: E402
from consensus.tendermint import TimeoutConfig  # noqa: E402

BYZANTINE_BEHAVIOURS = ("crash", "equivocate", "withhold", "amnesia", "wrong-root")


@st.composite
def fault_schedules(draw, min_validators=4, max_validators=7, byzantine="minority",
                    behaviours=BYZANTINE_BEHAVIOURS, crashes=True, partitions=True):
    """(SimConfig, validator count, powers). byzantine: "minority" (< 1/3 power),
    "third-or-more" (>= 1/3 power, all equivocating) or "none"."""
    count = draw(st.integers(min_validators, max_validators))
    powers = tuple(draw(st.lists(st.integers(1, 3), min_size=count, max_size=count)))
    total = sum(powers)
    order = draw(st.permutations(range(count)))
    chosen: list[int] = []
    if byzantine == "minority":
        for index in order[: draw(st.integers(0, count))]:
            if (sum(powers[i] for i in chosen) + powers[index]) * 3 < total:
                chosen.append(index)
        byz = tuple((i, draw(st.sampled_from(behaviours))) for i in sorted(chosen))
    elif byzantine == "third-or-more":
        for index in order:
            if sum(powers[i] for i in chosen) * 3 >= total:
                break
            chosen.append(index)
        byz = tuple((i, "equivocate") for i in sorted(chosen))
    else:
        byz = ()
    topology = draw(st.sampled_from(["complete", "random-regular", "geo"]))
    if topology == "random-regular" and count % 2:
        topology = "complete"
    link = LinkProfile(jitter_ms=draw(st.floats(0, 50)), drop_rate=draw(st.floats(0, 0.3)),
                       duplicate_rate=draw(st.floats(0, 0.2)))
    parts = ()
    if partitions:
        parts = tuple(
            Partition(start, start + length, (tuple(sorted(order[: cut])),))
            for start, length, cut in draw(st.lists(
                st.tuples(st.floats(0, 10), st.floats(0, 15), st.integers(1, count - 1)), max_size=2))
        )
    crash_list = ()
    if crashes:
        honest = [i for i in range(count) if i not in chosen]
        crash_list = tuple(
            CrashFault(node, at, at + down)
            for node, at, down in draw(st.lists(
                st.tuples(st.sampled_from(honest), st.floats(0, 10), st.floats(0, 8)), max_size=3))
        )
    config = SimConfig(
        seed=draw(st.integers(0, 2**32)), topology=topology, degree=4 if count > 4 else 3,
        latency_ms=draw(st.floats(5, 200)), link=link, partitions=parts, crashes=crash_list, byzantine=byz,
        timeouts=TimeoutConfig(), target_height=3, max_time_s=250.0, max_events=40_000,
    )
    return config, count, powers
