# pragma version 0.4.3
"""
@title Price oracle
@notice Last posted price per market, written by one authorised reporter.
@dev Prices carry 18 decimals: USD per 1 whole unit of the base asset, times
     1e18 (BTC at $97,000.5 is 97_000_500_000_000_000_000_000). 18 decimals
     match the perps contract, where 1e18 wei of collateral is 1 USD and sizes
     are base units times 1e18, so notional_wei = size * price // 1e18 with no
     rescaling.
     A price of 0 is accepted on purpose: the incident this chain replays is a
     reporter posting BTC = 0, and the simulator must be able to do exactly that.
     Market ids are plain integers (0 = BTC-USD, 1 = ETH-USD, 2 = SOL-USD, more
     as needed); the oracle does not keep a list of them.
"""

event PriceUpdated:
    market: indexed(uint256)
    price: uint256
    block_number: uint256

event ReporterChanged:
    old_reporter: indexed(address)
    new_reporter: indexed(address)

event OwnershipTransferred:
    old_owner: indexed(address)
    new_owner: indexed(address)

MAX_BATCH: constant(uint256) = 32

owner: public(address)
reporter: public(address)

# Storage, not immutables: the deployed runtime code then equals the compiled
# runtime code byte for byte, which the tests check.
_prices: HashMap[uint256, uint256]
# Block number of the last update; 0 means the market was never priced.
_updated_at: HashMap[uint256, uint256]


@deploy
def __init__(reporter: address):
    self.owner = msg.sender
    self.reporter = reporter
    log ReporterChanged(old_reporter=empty(address), new_reporter=reporter)


@external
def set_reporter(new_reporter: address):
    """@notice Replace the reporter (the owner rotates a compromised key)."""
    assert msg.sender == self.owner, "oracle: not owner"
    log ReporterChanged(old_reporter=self.reporter, new_reporter=new_reporter)
    self.reporter = new_reporter


@external
def transfer_ownership(new_owner: address):
    """@notice Hand the owner role to another address."""
    assert msg.sender == self.owner, "oracle: not owner"
    assert new_owner != empty(address), "oracle: zero owner"
    log OwnershipTransferred(old_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@internal
def _post(market: uint256, price: uint256):
    self._prices[market] = price
    self._updated_at[market] = block.number
    log PriceUpdated(market=market, price=price, block_number=block.number)


@external
def post_price(market: uint256, price: uint256):
    """@notice Post one market's price (18 decimals). Reporter only."""
    assert msg.sender == self.reporter, "oracle: not reporter"
    self._post(market, price)


@external
def post_prices(markets: DynArray[uint256, MAX_BATCH], prices: DynArray[uint256, MAX_BATCH]):
    """@notice Post several prices in one transaction, one event each. Reporter only."""
    assert msg.sender == self.reporter, "oracle: not reporter"
    assert len(markets) == len(prices), "oracle: length mismatch"
    for i: uint256 in range(len(markets), bound=MAX_BATCH):
        self._post(markets[i], prices[i])


@view
@external
def price(market: uint256) -> uint256:
    """@notice Last posted price of `market` (18 decimals); 0 if never posted."""
    return self._prices[market]


@view
@external
def updated_at(market: uint256) -> uint256:
    """@notice Block number of the last update of `market`; 0 if never posted."""
    return self._updated_at[market]
