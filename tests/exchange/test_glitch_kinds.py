"""Glitch kinds: a bad price, a funding-index reset, or both, on one or several markets.

A reset index gives every open position size x cached of spurious PnL at once: shorts
lose where the index was positive. The actors' off-chain index must follow the contract
to the wei through it, or keepers would miss (or invent) liquidations.
"""

import pytest
from pydantic import ValidationError

from chain.exchange import MARKET_IDS, get_equity, get_funding_index, get_price
from scenarios.actors import compute_health
from scenarios.market import compute_glitch
from scenarios.schema import Scenario

from .exchange_support import GLITCH_START, run_world, small_scenario

BTC, ETH = MARKET_IDS["BTC-USD"], MARKET_IDS["ETH-USD"]
FUNDING = {"BTC-USD": 9_000.0, "ETH-USD": 300.0}  # ~9 % of price: past any short's margin at 20x


def funding_scenario(kind: str, **incident) -> Scenario:
    base = small_scenario().model_dump()
    base["incident"].update({"kind": kind, **incident})
    base["exchange"]["funding_index_usd"] = FUNDING
    return Scenario.model_validate(base)


def accounts_of(run):
    world = run.world
    return [a.address for a in (*world.market.traders, *world.market.profit_takers)]


def test_a_funding_reset_zeroes_the_indices_for_the_glitch_and_liquidates_shorts():
    scenario = funding_scenario("funding-reset", funding_markets=["BTC-USD", "ETH-USD"])
    run = run_world(scenario)
    history, addresses = run.history, run.world.market.addresses
    before, during = history.root_at(GLITCH_START - 1), history.root_at(GLITCH_START)
    assert get_funding_index(run.store, before, addresses, BTC) == 9_000 * 10**18
    assert get_funding_index(run.store, during, addresses, BTC) == 0
    assert get_funding_index(run.store, during, addresses, ETH) == 0
    # The price is untouched by this kind.
    assert get_price(run.store, during, addresses, BTC) > 0
    end = history.root_at(GLITCH_START + scenario.incident.duration_blocks)
    assert get_funding_index(run.store, end, addresses, BTC) == 9_000 * 10**18
    glitch_blocks = [b for b in run.blocks if b.glitch]
    assert sum(b.liquidations for b in glitch_blocks) > 0
    # Only shorts lose from a reset of a positive index.
    world = run.world
    for block in glitch_blocks:
        for account in block.liquidated_accounts:
            opening = world.market.openings.get(account)
            assert opening is None or opening.size < 0 or opening.market not in (BTC, ETH)


def test_the_actors_index_follows_funding_to_the_wei():
    run = run_world(funding_scenario("both", funding_markets=["BTC-USD"]))
    world, root = run.world, run.history.root_at(run.history.height)
    for account in accounts_of(run):
        health = compute_health(world.index, world.market.params, account)
        assert health.equity == get_equity(run.store, root, world.market.addresses, account)


def test_both_posts_the_bad_price_and_resets_the_index():
    run = run_world(funding_scenario("both", markets=["ETH-USD"], funding_markets=["BTC-USD"]))
    during, addresses = run.history.root_at(GLITCH_START), run.world.market.addresses
    assert get_price(run.store, during, addresses, BTC) == 0
    assert get_price(run.store, during, addresses, ETH) == 0
    assert get_funding_index(run.store, during, addresses, BTC) == 0
    assert get_funding_index(run.store, during, addresses, ETH) == 300 * 10**18


def test_a_price_glitch_posts_no_funding_and_all_markets_is_the_default():
    plain = run_world(small_scenario(), heights=GLITCH_START)
    world = plain.world
    assert world.market.glitch.funding_markets == ()
    assert world.posted_funding(GLITCH_START) is None
    every = funding_scenario("funding-reset")
    assert compute_glitch(every).funding_markets == tuple(sorted(MARKET_IDS.values()))
    assert compute_glitch(every).price_markets == ()


@pytest.mark.parametrize("incident, field", [
    ({"kind": "price", "funding_markets": ["BTC-USD"]}, "funding_markets"),
    ({"kind": "funding-reset", "markets": ["ETH-USD"]}, "markets"),
    ({"kind": "reset"}, "kind"),
])
def test_inconsistent_glitch_kinds_are_refused(incident, field):
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate({"name": "bad", "incident": incident})
    assert field in str(caught.value)
