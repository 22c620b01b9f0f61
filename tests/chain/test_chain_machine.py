"""The chain beside a plain model: random transfer blocks, rollbacks and selective restores.

The model is a dict `address -> (balance, nonce)` per height, holding only accounts that
exist (EIP-161: an account with no balance and no nonce is not in the state). After every
step the head must agree with it account by account, and the head root must equal the root
py-evm computes from scratch for the model's accounts.
"""


from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chain.blocks import Block, Header
from chain.diff import diff_roots
from chain.execution import apply_block, build_block
from chain.genesis import FundedAccount, GenesisSpec, build_genesis, deployer_key_for
from chain.history import History
from chain.restore import rollback, selective_restore
from chain.state import get_account
from chain.store import MemoryStore
from chain.strategies import Transfer, sign_transfer, transfer_blocks
from chain.transactions import address_of, derive_private_key

SEED = 23
ACCOUNT_COUNT = 8
MAX_GENESIS_BALANCE_WEI = 200_000
KEYS = tuple(derive_private_key(SEED, "machine", i) for i in range(ACCOUNT_COUNT))
SENDERS = tuple(address_of(key) for key in KEYS)
STRANGERS = (b"\x5a" * 20, b"\x5b" * 20)  # never funded: they can only receive
RECIPIENTS = SENDERS + STRANGERS
PROPOSERS = (SENDERS[0], SENDERS[1], b"\x0f" * 20)  # two funded accounts and a fresh address
DEPLOYER = address_of(deployer_key_for(SEED))
DEPLOYER_BALANCE_WEI = 10**30  # GenesisSpec's default: build_genesis always funds the deployer
LATECOMERS = STRANGERS + PROPOSERS[2:]  # absent at genesis, created by transfers and fees
EVERYONE = tuple(dict.fromkeys(RECIPIENTS + PROPOSERS + (DEPLOYER,)))

Model = dict[bytes, tuple[int, int]]  # address -> (balance, nonce), existing accounts only


def apply_transfer(model: Model, transfer: Transfer, nonce: int, fork_ok: bool, proposer: bytes) -> bool:
    """Apply `transfer` signed with `nonce` to `model` the way py-evm would; False if invalid."""
    sender, recipient = SENDERS[transfer.sender], RECIPIENTS[transfer.recipient]
    balance, expected_nonce = model.get(sender, (0, 0))
    if transfer.dynamic_fee:  # base fee 0: the effective price is the priority fee
        price = min(transfer.gas_price_wei, transfer.priority_fee_wei)
        # py-evm checks gas * max fee on its own, not added to the value (see test_chain_execution).
        if balance < transfer.gas * transfer.gas_price_wei:
            return False
    else:
        price = transfer.gas_price_wei
    if not fork_ok or nonce != expected_nonce or balance < transfer.gas * price + transfer.value_wei:
        return False
    fee = 21_000 * price  # a plain transfer uses 21000; the rest of its gas is refunded
    model[sender] = (balance - fee - transfer.value_wei, expected_nonce + 1)
    _credit(model, recipient, transfer.value_wei)
    _credit(model, proposer, fee)
    return True


def _credit(model: Model, address: bytes, amount_wei: int) -> None:
    balance, nonce = model.get(address, (0, 0))
    if balance + amount_wei or nonce:
        model[address] = (balance + amount_wei, nonce)


def compute_scratch_root(model: Model) -> bytes:
    """The state root py-evm computes for the model's accounts on an empty database."""
    context = ExecutionContext(
        coinbase=ZERO_ADDRESS, timestamp=0, block_number=0, difficulty=0, mix_hash=b"\x00" * 32,
        gas_limit=30_000_000, prev_hashes=(), chain_id=1, base_fee_per_gas=0, excess_blob_gas=0,
    )
    state = PragueVM.get_state_class()(AtomicDB(), context, BLANK_ROOT_HASH)
    for address, (balance, nonce) in sorted(model.items()):
        state.set_balance(address, balance)
        state.set_nonce(address, nonce)
    state.persist()
    return state.state_root


class ChainMachine(RuleBasedStateMachine):
    """The real chain (store, history, execution, restore) beside one model per height."""

    @initialize(
        balances=st.lists(
            st.integers(1, MAX_GENESIS_BALANCE_WEI), min_size=ACCOUNT_COUNT, max_size=ACCOUNT_COUNT
        )
    )
    def genesis(self, balances):
        self.store = MemoryStore()
        accounts = tuple(FundedAccount(a, b) for a, b in zip(SENDERS, balances))
        genesis = build_genesis(self.store, GenesisSpec(seed=SEED, accounts=accounts))
        self.history = History.create(self.store, genesis.header)
        model = {a: (b, 0) for a, b in zip(SENDERS, balances)}
        model[DEPLOYER] = (DEPLOYER_BALANCE_WEI, 0)
        self.models: list[Model] = [model]

    @rule(
        transfers=transfer_blocks(
            ACCOUNT_COUNT, len(RECIPIENTS), max_value_wei=MAX_GENESIS_BALANCE_WEI, max_size=6
        ),
        proposer=st.sampled_from(PROPOSERS),
        upgrade=st.sampled_from((False,) * 5 + (True,)),
    )
    def add_block(self, transfers, proposer, upgrade):
        head = self.history.head
        fork_id = head.fork_id + int(upgrade)
        model = dict(self.models[-1])
        txs, expected = [], []
        for transfer in transfers:
            next_nonce = model.get(SENDERS[transfer.sender], (0, 0))[1]
            tx = sign_transfer(transfer, KEYS, RECIPIENTS, next_nonce=next_nonce, fork_id=fork_id)
            txs.append(tx)
            nonce = tx.nonce
            if apply_transfer(model, transfer, nonce, transfer.fork_offset == 0, proposer):
                expected.append(tx)
        built = build_block(
            self.store, head, txs, proposer=proposer, timestamp=head.timestamp + 2, fork_id=fork_id
        )
        assert [tx.hash for tx in built.block.transactions] == [tx.hash for tx in expected], [
            r.reason for r in built.rejected
        ]
        assert len(built.rejected) == len(txs) - len(expected)
        # Another validator re-executing the block agrees with the proposer.
        assert apply_block(self.store, head.state_root, built.block) == built.result
        self.history.append(built.block)
        self.models.append(model)

    @rule(data=st.data())
    def roll_back(self, data):
        height = data.draw(st.integers(0, self.history.height), label="height")
        recorded = self.history.root_at(height)
        assert rollback(self.history, height) == recorded
        del self.models[height + 1 :]

    @rule(
        data=st.data(),
        # Half the time only accounts that start out absent, so that restoring removes them.
        addresses=st.lists(st.sampled_from(LATECOMERS), unique=True, min_size=1)
        | st.lists(st.sampled_from(EVERYONE), unique=True, max_size=4),
    )
    def restore_accounts(self, data, addresses):
        source_height = data.draw(st.integers(0, self.history.height), label="source_height")
        head = self.history.head
        root = selective_restore(
            self.store, head.state_root, self.history.root_at(source_height), addresses
        )
        # The restored state becomes the next block, as a recovery would publish it.
        header = Header(height=head.height + 1, parent_hash=head.hash, state_root=root).copy(
            timestamp=head.timestamp + 2,
            fork_id=head.fork_id,
        )
        self.history.append(Block(header))
        model = dict(self.models[-1])
        source = self.models[source_height]
        for address in addresses:
            if address in source:
                model[address] = source[address]
            else:
                model.pop(address, None)
        self.models.append(model)

    @precondition(lambda self: self.history.height >= 1)
    @rule(data=st.data())
    def diff_two_heights(self, data):
        a = data.draw(st.integers(0, self.history.height), label="a")
        b = data.draw(st.integers(0, self.history.height), label="b")
        diff = diff_roots(self.store, self.history.root_at(a), self.history.root_at(b))
        found = {c.address: ((c.before.balance, c.before.nonce), (c.after.balance, c.after.nonce))
                 for c in diff.accounts}
        before, after = self.models[a], self.models[b]
        expected = {
            address: (before.get(address, (0, 0)), after.get(address, (0, 0)))
            for address in set(before) | set(after)
            if before.get(address) != after.get(address)
        }
        assert found == expected
        assert diff.slots == ()
        for address in EVERYONE:  # the past is still readable at every height
            account = self.history.account_at(a, address)
            assert (account.balance, account.nonce) == before.get(address, (0, 0))

    @invariant()
    def head_agrees_with_the_model(self):
        assert self.history.height == len(self.models) - 1
        model, root = self.models[-1], self.history.head.state_root
        for address in EVERYONE:
            account = get_account(self.store, root, address)
            assert (account.balance, account.nonce) == model.get(address, (0, 0)), address.hex()
        assert root == compute_scratch_root(model)


ChainMachine.TestCase.settings = settings(stateful_step_count=15)
test_chain_machine = ChainMachine.TestCase
