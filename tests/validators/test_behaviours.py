"""Behaviours as objects: the lookup, the hooks each one overrides, and the runner's kit path."""

import pytest

from consensus.emergency import HaltView, is_view_signed, sign_view
from consensus.sim import BytesApp, SimConfig, create_simulation
from validators.behaviours import (
    BEHAVIOUR_NAMES,
    BYZANTINE_BEHAVIOURS,
    DuplicateVotes,
    Honest,
    UnknownBehaviourError,
    get_behaviour,
)
from validators.journal import MemoryJournal
from validators.keys import ValidatorError, derive_validator_keys
from validators.node import make_node_kit

from consensus.messages import ValidatorSet

KEYS = derive_validator_keys(3, 4)
VSET = ValidatorSet(tuple(k.public_key for k in KEYS), (1, 1, 1, 1))


def test_every_name_gives_its_own_class_and_an_unknown_name_a_typed_error():
    behaviours = [get_behaviour(name, KEYS[0]) for name in BEHAVIOUR_NAMES]
    assert [b.name for b in behaviours] == list(BEHAVIOUR_NAMES)
    assert len({type(b) for b in behaviours}) == len(BEHAVIOUR_NAMES)
    assert "duplicate-votes" in BYZANTINE_BEHAVIOURS and "honest" not in BYZANTINE_BEHAVIOURS
    with pytest.raises(UnknownBehaviourError, match="liar") as error:
        get_behaviour("liar")
    assert isinstance(error.value, ValidatorError) and isinstance(error.value, LookupError)


def test_view_hooks_honest_passes_through_crash_and_withhold_send_none_wrong_root_forges():
    view = sign_view(KEYS[2].private_key, HaltView(2, 0, 5, 4, 3, (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32), b""))
    assert get_behaviour("honest").make_view(view, KEYS[2]) is view
    assert get_behaviour("honest").choose_plan_views((view,)) == (view,)
    assert get_behaviour("crash").make_view(view, KEYS[2]) is None
    assert get_behaviour("withhold").make_view(view, KEYS[2]) is None
    forged = get_behaviour("wrong-root").make_view(view, KEYS[2])
    assert forged.first_bad_height == 1 and set(forged.roots) == {bytes(32)} and is_view_signed(forged, VSET)


def test_a_subclass_overrides_one_hook_and_keeps_the_rest_honest():
    class ForgeViews(Honest):
        name = "forge-views"

        def make_view(self, view, key):
            return None

    behaviour = ForgeViews()
    assert behaviour.is_running() and behaviour.choose_plan_views(()) == ()


def test_duplicate_votes_needs_the_key_it_re_signs_with():
    with pytest.raises(AssertionError):
        DuplicateVotes()


def test_the_runner_kit_is_honest_by_default_and_takes_the_config_s_behaviour():
    def make_kit(index):
        return make_node_kit(BytesApp(index), KEYS[index], MemoryJournal())

    assert make_kit(0).behaviour is None
    assert make_node_kit(BytesApp(0), KEYS[0], MemoryJournal(), "amnesia").behaviour.name == "amnesia"
    sim = create_simulation(SimConfig(byzantine=((3, "equivocate"),)), VSET, make_kit)
    assert [n.behaviour.name for n in sim.nodes] == ["honest", "honest", "honest", "equivocate"]
    assert sim.trace.honest == (0, 1, 2)
