"""Every seed and every accepted input builds a valid world: the genesis draws are constrained
where they are made (`scenarios.market`), so no setup transaction can revert.

A property over the draws alone (no EVM, many seeds and inputs) against the contract's own
opening rules written in Python (`compute_opening_refusal`); the contract checked against
that model on a sample, at and around the bound; whole genesis of the full paradex-2026 for
seeds other than the calibrated one; and a planted bad draw that must end the run with exit
1, the seed and the decoded reason, never exit 2.
"""

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import scenarios.market as market
from chain.exchange import USD, deposit_call, exchange_deployments, post_prices_call, sign_call, trade_call
from chain.genesis import FundedAccount, GenesisSpec, SetupRevertedError, build_genesis, deployer_key_for
from chain.store import MemoryStore
from chain.transactions import address_of, derive_private_key
from scenarios.cli import main
from scenarios.loader import load_scenario
from scenarios.market import (
    OpeningPosition,
    compute_leverage_cap,
    compute_opening_refusal,
    compute_perps_params,
    compute_size,
    draw_opening,
    initial_prices,
)
from scenarios.schema import MARKETS, Scenario
from scenarios.seeds import derive_rng

TRADERS_PER_EXAMPLE = 60


@st.composite
def accepted_exchange_inputs(draw) -> Scenario:
    """A scenario whose workload, margins, fees and prices are anywhere the schema accepts."""
    leverage = sorted(draw(st.lists(st.floats(1.0, 100.0), min_size=2, max_size=2)))
    initial = draw(st.none() | st.integers(2, 10_000))
    data = {
        "name": "draws",
        "workload": {
            "leverage_min": leverage[0],
            "leverage_max": leverage[1],
            "deposit_median_usd": draw(st.floats(1e-9, 1e9)),
            "deposit_spread": draw(st.floats(0.0, 3.0)),
            "long_share": draw(st.floats(0.0, 1.0)),
            "market_weights": {m: draw(st.floats(0.0, 1.0)) for m in MARKETS},
        },
        "exchange": {
            "trading_fee_bps": draw(st.integers(0, 1_000)),
            **({} if initial is None else {"initial_margin_bps": initial,
                                           "maintenance_margin_bps": draw(st.integers(1, max(1, initial - 1)))}),
        },
        "prices": {"initial_usd": {m: draw(st.floats(1e-6, 1e12)) for m in MARKETS}},
    }
    try:
        return Scenario.model_validate(data)
    except ValidationError:
        assume(False)  # e.g. no market with a positive weight: the schema refuses it


@settings(max_examples=settings.default.max_examples * 10)  # no EVM: ci 200 examples in a few seconds
@given(scenario=accepted_exchange_inputs(), seed=st.integers(0, 2**64 - 1))
def test_every_drawn_opening_passes_the_contracts_opening_rules(scenario, seed):
    params = compute_perps_params(scenario)
    prices = initial_prices(scenario)
    for index in range(TRADERS_PER_EXAMPLE):
        opening = draw_opening(derive_rng(seed, "trader", index, "opening"), scenario, params, prices, 0.5)
        refusal = compute_opening_refusal(opening, prices[opening.market], params)
        assert refusal is None, f"seed {seed}, trader {index}: {opening}: {refusal}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4242, 2026, 7])
def test_every_paradex_opening_passes_for_seeds_beyond_the_calibrated_one(seed):
    """The draws that made `l2sim run paradex-2026 --seed 1` revert at genesis (issue 17)."""
    world = market.build_market_world(load_scenario("paradex-2026"), seed)
    prices = initial_prices(world.scenario)
    refused = {a: compute_opening_refusal(o, prices[o.market], world.params) for a, o in world.openings.items()}
    assert not any(refused.values())


# ---------------------------------------------------------------- the model against the contract


def _one_opening_genesis(params, price: int, deposit_wei: int, size: int, market_id: int = 0) -> GenesisSpec:
    """Genesis with the exchange, one price post and one trader's deposit and opening."""
    seed = 99
    reporter = derive_private_key(seed, "reporter", 0)
    relayer = derive_private_key(seed, "relayer", 0)
    trader = derive_private_key(seed, "trader", 0)
    deployments, addresses = exchange_deployments(seed, reporter=address_of(reporter), relayer=address_of(relayer),
                                                  finality_blocks=10, params=params)
    prices = {m: price for m in range(params.num_markets)}
    setup = (
        sign_call(reporter, post_prices_call(addresses, prices), nonce=0, fork_id=0),
        sign_call(trader, deposit_call(addresses, deposit_wei), nonce=0, fork_id=0),
        sign_call(trader, trade_call(addresses, market_id, size), nonce=1, fork_id=0),
    )
    assert deployer_key_for(seed)  # the deployer is derived from the seed, as in every world
    accounts = (FundedAccount(address_of(reporter), 0), FundedAccount(address_of(trader), deposit_wei * 2))
    return GenesisSpec(seed=seed, accounts=accounts, deployments=deployments, setup=setup)


def _contract_refusal(spec: GenesisSpec) -> str | None:
    try:
        build_genesis(MemoryStore(), spec)
    except SetupRevertedError as error:
        return error.reason.removeprefix("reverted: ")
    return None


@settings(max_examples=max(6, settings.default.max_examples // 2), deadline=None)
@given(
    fee_bps=st.integers(0, 1_000),
    max_leverage=st.integers(1, 100),
    price_usd=st.floats(1e-6, 1e6),
    deposit_usd=st.integers(1, 10**7),
    # around the cap: below it must pass; far above it, the contract and the model both refuse
    over_cap=st.sampled_from([0.5, 0.99, 1.0, 1.05, 1.2, 3.0]),
    side=st.sampled_from([1, -1]),
)
def test_the_contract_refuses_an_opening_exactly_when_the_model_does(fee_bps, max_leverage, price_usd, deposit_usd,
                                                                     over_cap, side):
    scenario = Scenario.model_validate({"name": "m", "workload": {"leverage_max": float(max_leverage)},
                                        "exchange": {"trading_fee_bps": fee_bps}})
    params = compute_perps_params(scenario)
    price = market.usd_to_wei(price_usd)
    deposit = deposit_usd * USD
    size = max(1, compute_size(int(deposit * compute_leverage_cap(params) * over_cap), price)) * side
    model = compute_opening_refusal(OpeningPosition(deposit, 0, size), price, params)
    assert _contract_refusal(_one_opening_genesis(params, price, deposit, size)) == model
    if over_cap <= 1.0:
        assert model is None  # at or below the cap every opening passes


# ---------------------------------------------------------------- whole genesis, other seeds


@pytest.mark.parametrize("seed", [1, 4242])
def test_full_paradex_genesis_builds_for_other_seeds(seed):
    """Genesis only (every deposit and opening of 730 accounts, in py-evm), not the whole run."""
    world = market.build_market_world(load_scenario("paradex-2026"), seed)
    genesis = build_genesis(MemoryStore(), world.genesis_spec)
    assert all(r.state_root == b"\x01" for r in genesis.receipts)
    assert len(genesis.receipts) == len(world.genesis_spec.deployments) + len(world.genesis_spec.setup)


# ---------------------------------------------------------------- a setup that still reverts is a bug


def test_a_setup_transaction_that_reverts_is_l2sims_fault_exit_1_with_seed_and_reason(monkeypatch):
    """Plant a bad draw (leverage past the cap): the run ends with exit 1, naming the trader,
    the opening, the contract's reason and the seed, and how to reproduce it; never exit 2."""
    monkeypatch.setattr(market, "draw_leverage", lambda rng, scenario, params: 1.6 * compute_leverage_cap(params))
    result = CliRunner().invoke(main, ["run", "paradex-2026", "--small", "--seed", "5", "--quiet"])
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("l2sim: internal error: genesis setup transaction #")
    assert " opens a " in line and "x with $" in line and "perps: below initial margin" in line, line
    assert "(seed 5)" in line and "reproduce with: l2sim run paradex-2026 --seed 5 --small" in line
    assert "Traceback" not in result.stderr
