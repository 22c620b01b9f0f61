"""History: a chain view's canonical blocks and state roots by height.

Many views (one per validator) share one node store; each view owns only its block log.
The log persists in the store's record table (so an `SQLiteStore` keeps it in the same
file and the same per-block transaction as the nodes), with a head pointer: truncating is
one write of the pointer, whatever the number of blocks discarded.
"""

from __future__ import annotations

from chain.blocks import Block, Header, decode_block, encode_block
from chain.errors import ChainError, HeightOutOfRangeError
from chain.state import Account, get_account, require_root
from chain.store import Store

_BLOCKS = "blocks/"
_HEAD = "head"


class BrokenChainError(ChainError):
    """Raised when a block does not extend the head (wrong height or parent hash)."""

    def __init__(self, height: int, reason: str):
        super().__init__(f"block at height {height} does not extend the head: {reason}")
        self.height = height
        self.reason = reason


class UnknownViewError(ChainError):
    """Raised when a store holds no chain view of that name."""

    def __init__(self, view: str):
        super().__init__(f"no chain view named {view!r} in this store")
        self.view = view


def _height_key(height: int) -> bytes:
    return height.to_bytes(8, "big")


class History:
    """The canonical chain of one view: blocks 0..head, each with its state root."""

    def __init__(self, store: Store, view: str, blocks: list[Block]):
        assert blocks and blocks[0].height == 0, "a history starts at genesis"
        self.store = store
        self.view = view
        self._blocks = blocks

    @classmethod
    def create(cls, store: Store, genesis: Header, view: str = "main") -> "History":
        """A new history holding only `genesis`, recorded under `view`."""
        require_root(store, genesis.state_root)
        history = cls(store, view, [Block(genesis)])
        history._record(Block(genesis))
        return history

    @classmethod
    def open(cls, store: Store, view: str = "main") -> "History":
        """Reopen a view recorded in `store` (for example after a process restart)."""
        head = store.get_record(_HEAD, view.encode())
        if head is None:
            raise UnknownViewError(view)
        blocks = []
        for height in range(int.from_bytes(head, "big") + 1):
            raw = store.get_record(_BLOCKS + view, _height_key(height))
            assert raw is not None, f"view {view} lost block {height}"
            blocks.append(decode_block(raw))
        return cls(store, view, blocks)

    def fork(self, view: str) -> "History":
        """A copy of this history under another view name, sharing the store."""
        history = History(self.store, view, list(self._blocks))
        for block in self._blocks:
            history._record(block)
        return history

    def _record(self, block: Block) -> None:
        self.store.put_record(_BLOCKS + self.view, _height_key(block.height), encode_block(block))
        self.store.put_record(_HEAD, self.view.encode(), _height_key(block.height))

    @property
    def head(self) -> Header:
        """The header at the tip."""
        return self._blocks[-1].header

    @property
    def height(self) -> int:
        """The tip's height."""
        return len(self._blocks) - 1

    @property
    def genesis(self) -> Header:
        """Header #0."""
        return self._blocks[0].header

    def append(self, block: Block) -> None:
        """Make `block` the new head; it must extend the current one. Commits the store."""
        if block.height != self.height + 1:
            raise BrokenChainError(block.height, f"head is at {self.height}")
        if block.header.parent_hash != self.head.hash:
            raise BrokenChainError(block.height, "parent hash is not the head's hash")
        require_root(self.store, block.header.state_root)
        self._blocks.append(block)
        self._record(block)
        self.store.commit()

    def _check(self, height: int) -> None:
        if not 0 <= height <= self.height:
            raise HeightOutOfRangeError(height, self.height)

    def block_at(self, height: int) -> Block:
        """The canonical block at `height`."""
        self._check(height)
        return self._blocks[height]

    def header_at(self, height: int) -> Header:
        """The canonical header at `height`."""
        return self.block_at(height).header

    def root_at(self, height: int) -> bytes:
        """The state root committed at `height`."""
        return self.block_at(height).header.state_root

    def account_at(self, height: int, address: bytes) -> Account:
        """`address` as it was in the state committed at `height`."""
        return get_account(self.store, self.root_at(height), address)

    def blocks_between(self, low: int, high: int) -> tuple[Block, ...]:
        """Canonical blocks with `low <= height <= high`."""
        self._check(low)
        self._check(high)
        return tuple(self._blocks[low : high + 1])

    def truncate_above(self, height: int) -> None:
        """Discard every block above `height` (one pointer write on disk). Commits the store."""
        self._check(height)
        del self._blocks[height + 1 :]
        self.store.put_record(_HEAD, self.view.encode(), _height_key(height))
        self.store.commit()
